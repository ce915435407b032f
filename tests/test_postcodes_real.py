"""Acceptance on the real London files: every postcode resolves to the ward polygon that contains it.

The expectation is computed independently: the postcode file is read with
pandas, the ward file with geopandas, and the points are placed with
``geopandas.sjoin``; nothing of crimemap's store, join or lookup is used.
"""

import json

import numpy as np
import pandas as pd
import pytest

from crimemap.postcodes import clear_cache, get_lookup, resolve
from tests.conftest import settings_for

POSTCODES = "postcodes/codepoint_open_2025-10_london.csv.gz"
WARDS = "boundaries/london-wards-2022-approx.gpkg"
BOROUGHS = "boundaries/london-2021-lad22-gen20.shp"


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    from tests.conftest import _need_shared

    paths = {name: _need_shared(rel) for name, rel in (("postcodes", POSTCODES), ("wards", WARDS),
                                                        ("boroughs", BOROUGHS))}
    from click.testing import CliRunner

    from crimemap.cli import main

    instance = tmp_path_factory.mktemp("real") / "instance"
    cli = CliRunner()
    for args in (["boundaries", "load", "ward", paths["wards"]], ["boundaries", "load", "borough", paths["boroughs"]],
                 ["postcodes", "refresh", paths["postcodes"]]):
        result = cli.invoke(main, ["--instance", str(instance), *map(str, args)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    clear_cache()
    yield instance, paths
    clear_cache()


@pytest.fixture(scope="module")
def expected(real):
    """Ward of each postcode by an independent geopandas sjoin."""
    import geopandas as gpd

    _, paths = real
    frame = pd.read_csv(paths["postcodes"], dtype={"Postcode": str, "Admin_district_code": str,
                                                   "Admin_ward_code": str})
    wards = gpd.read_file(paths["wards"])[["WD22CD", "WD22NM", "LAD22CD", "geometry"]]
    points = gpd.GeoDataFrame(frame[["Postcode"]], geometry=gpd.points_from_xy(frame.Eastings, frame.Northings),
                              crs=wards.crs)
    within = gpd.sjoin(points, wards, how="left", predicate="within")
    # Points exactly on a shared edge are "within" no ward; list them apart.
    assert within.index.is_unique
    frame["ward"] = within["WD22CD"].to_numpy()
    frame["ward_name"] = within["WD22NM"].to_numpy()
    frame["ward_borough"] = within["LAD22CD"].to_numpy()
    touching = gpd.sjoin(points[frame["ward"].isna().to_numpy()], wards, how="inner", predicate="intersects")
    return frame, touching.groupby("Postcode")["WD22CD"].agg(set).to_dict()


def test_every_postcode_resolves_to_the_ward_polygon_containing_it(real, expected):
    instance, _ = real
    frame, on_edge = expected
    from crimemap.store import open_store

    settings = settings_for(instance)
    lookup = get_lookup(settings, open_store(settings, readonly=True))
    assert lookup.count == 180_792
    typed = frame["Postcode"].str.lower().str.replace(" ", "", regex=False)
    results = [resolve(lookup, text) for text in typed]

    got = pd.DataFrame({
        "postcode": [r["postcode"] for r in results],
        "ward": [r["ward"]["code"] if r["ward"] else None for r in results],
        "ward_name": [r["ward"]["name"] if r["ward"] else None for r in results],
        "snt": [r["snt"]["code"] if r["snt"] else None for r in results],
        "borough": [r["borough"]["code"] if r["borough"] else None for r in results],
        "force": [r["force"] for r in results],
    })
    assert got["postcode"].tolist() == frame["Postcode"].tolist()
    inside = frame["ward"].notna().to_numpy()
    # Inside a ward: exactly the sjoin's ward, its name, SNT = ward, and that ward's borough.
    assert (got["ward"][inside].to_numpy() == frame["ward"][inside].to_numpy()).all()
    assert (got["ward_name"][inside].to_numpy() == frame["ward_name"][inside].to_numpy()).all()
    assert (got["snt"][inside].to_numpy() == frame["ward"][inside].to_numpy()).all()
    assert (got["borough"][inside].to_numpy() == frame["ward_borough"][inside].to_numpy()).all()
    # Not within any ward: either exactly on an edge (then on one of the touching wards) or outside all.
    outside = ~inside
    edge = outside & frame["Postcode"].isin(list(on_edge)).to_numpy()
    for postcode, ward in zip(got["postcode"][edge], got["ward"][edge]):
        assert ward in on_edge[postcode]
    beyond = outside & ~edge
    assert got["ward"][beyond].isna().all()
    # SOURCES.md section 7: 22 postcodes lie outside London's generalised outline; they stay the Met's or
    # the City's, with the directory's borough.
    assert int(beyond.sum()) == 22
    assert set(got["force"][beyond]) <= {"metropolitan", "city-of-london"}
    assert (got["borough"][beyond].to_numpy() == frame["Admin_district_code"][beyond].to_numpy()).all()
    # The City of London's postcodes are the City of London Police's; all others the Met's.
    city = got["borough"] == "E09000001"
    assert (got["force"][city] == "city-of-london").all() and (got["force"][~city] == "metropolitan").all()
    city_expected = (frame["ward_borough"] == "E09000001") | (beyond & (frame["Admin_district_code"] == "E09000001"))
    assert (city.to_numpy() == city_expected.to_numpy()).all() and int(city.sum()) > 1500


def test_status_counts_directory_ward_codes_that_disagree_with_the_polygons(real, expected):
    instance, _ = real
    frame, _ = expected
    from click.testing import CliRunner

    from crimemap.cli import main

    clear_cache()
    out = CliRunner().invoke(main, ["--instance", str(instance), "status", "--json"], catch_exceptions=False).output
    doc = json.loads(out)["postcodes"]
    assert doc["loaded"] and doc["version"] == "1" and doc["count"] == 180_792 and doc["live"] == 180_792
    assert doc["source"].endswith("codepoint_open_2025-10_london.csv.gz") and doc["refreshed_at"]
    inside = frame["ward"].notna()
    independent = int((frame["Admin_ward_code"][inside] != frame["ward"][inside]).sum())
    assert doc["ward_disagreements"] == independent
    assert doc["cross_check"]["compared"] == int(inside.sum())
    # SOURCES.md section 7 measured 44 postcodes in a neighbouring borough's ward polygon.
    assert independent == 44
    text = CliRunner().invoke(main, ["--instance", str(instance), "status"], catch_exceptions=False).output
    assert "Postcode lookup: version 1" in text and "44 of 180,770 live postcodes" in text


def test_nearest_and_outcode_on_real_data(real, expected):
    instance, _ = real
    frame, _ = expected
    lookup = get_lookup(settings_for(instance))
    row = frame.iloc[12345]
    near = lookup.nearest(row["Latitude"], row["Longitude"], limit=5, radius_m=500)
    # Independent: distances by numpy over the whole file.
    d = np.hypot(frame["Eastings"] - row["Eastings"], frame["Northings"] - row["Northings"])
    order = np.lexsort((frame["Postcode"].to_numpy(), d.to_numpy()))[:5]
    assert [r["distance"] for r in near] == pytest.approx(d.to_numpy()[order].tolist(), abs=3)
    summary = lookup.outcode("se1")
    se1 = frame[frame["Postcode"].str.startswith("SE1 ")]
    assert summary["postcodes"] == len(se1)
    assert summary["latitude"] == pytest.approx(se1["Latitude"].mean())
    assert summary["admin_district"][0] == se1["Admin_district_code"].mode()[0]
