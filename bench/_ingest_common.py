"""Inputs and settings shared by bench_ingest.py and its report."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CRIMEMAP_SHARED_DATA", REPO.parent / "shared" / "data"))
WARDS = DATA / "boundaries" / "London-wards-2018" / "London_Ward.shp"
BOROUGHS = DATA / "boundaries" / "london-2021-lad22-gen20.shp"
API = DATA / "crime" / "police_uk_api_partial"
SECTION = "## Ingest (read + join + store)"
CHUNK_ROWS = 200_000  # crimemap's default INGEST_CHUNK_ROWS, and the baseline's read_csv chunksize
GENERATE_ROWS = 1_000_000  # synthetic rows generated and written per step
INGEST_TIMEOUT_S = 180  # the 10M ingest is stopped (and reported as such) after this long
CSV_HEADER = ("Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,"
              "Crime type,Last outcome category,Context\n")
CRIME_TYPES = ("Anti-social behaviour", "Bicycle theft", "Burglary", "Criminal damage and arson", "Drugs",
               "Other theft", "Possession of weapons", "Public order", "Robbery", "Shoplifting",
               "Theft from the person", "Vehicle crime", "Violence and sexual offences", "Other crime")
OUTCOMES = ("Investigation complete; no suspect identified", "Unable to prosecute suspect",
            "Under investigation", "Status update unavailable", "Awaiting court outcome")


# ------------------------------------------------------------------ helpers
