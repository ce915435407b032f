"""Benchmark: page weight and server render time of the London map and the choropleth API.

Run from the repository root::

    python bench/bench_pages.py            # ~1-2 minutes: load the real data, then measure
    python bench/bench_pages.py --repeat 3 # fewer requests per case
    python bench/bench_pages.py --write    # also rewrite "Page weight" in bench/RESULTS.md
    python bench/bench_pages.py --met-area [--write]  # area pages on the Met ward table, cold and warm

It loads the 2018 wards, the lad22 boroughs, the 2011 LSOAs with the mid-2020
population and the three police.uk API months (2018-03..05) into a temporary
instance through crimemap's own loaders, then requests ``/`` and
``/api/v1/choropleth`` at borough and ward level with the Flask test client
(in-process: no HTTP, no network). For each it reports the raw and gzipped
size (gzip level 6, what nginx and most servers use) and the median server
time of N requests after one warm-up (the warm-up builds the web geometry
cache). The reference is folium's default output of the same layer at full
resolution in the same run: ``folium.GeoJson(gdf)`` on a map saved to HTML.
"""

import argparse
import datetime
import gzip
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _results  # noqa: E402 - bench/ is on sys.path when a bench runs as a script

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CRIMEMAP_SHARED_DATA", REPO.parent / "shared" / "data"))
SECTION = "## Page weight"
MET_SECTION = "## Area pages on the Met ward table"
MET_WARDS = "crime/mps_ward_level/MPS_Ward_Level_Crime_2023-07_to_2025-06.csv"
PERIOD = "from=2018-03&to=2018-05"
LEVELS = ("borough", "ward")


def load(instance):
    from crimemap.config import load_settings
    from crimemap.ingest import ingest_crimes, load_boundaries
    from crimemap.population import load_population
    from crimemap.store import open_store

    settings = load_settings(instance=instance, overrides={}, environ={})
    store = open_store(settings)
    load_boundaries(store, DATA / "boundaries/london-2021-lad22-gen20.shp", "borough", settings=settings)
    load_boundaries(store, DATA / "boundaries/London-wards-2018/London_Ward.shp", "ward", settings=settings)
    load_boundaries(store, DATA / "boundaries/london-2011-lsoa-gen20.shp", "lsoa", settings=settings)
    load_population(store, DATA / "population/london-mid2020-lsoa11-pop.csv", settings=settings)
    ingest_crimes(store, sorted((DATA / "crime/police_uk_api_partial").glob("*.jsonl.gz")), settings=settings)
    return store


def weigh(body):
    return len(body), len(gzip.compress(body, compresslevel=6))


def time_requests(client, url, repeat):
    response = client.get(url)  # warm-up: catalog, month caches, web geometry
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code} {response.data[:300]!r}")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        body = client.get(url).data
        times.append(time.perf_counter() - start)
    return body, statistics.median(times)


def folium_default(store, level, folder):
    """folium's default output: the layer at full resolution in a plain GeoJson, saved to HTML."""
    import folium

    from crimemap.crs import to_wgs84

    areas = to_wgs84(store.areas(store.layer(level)["id"]))[["code", "name", "geometry"]]
    start = time.perf_counter()
    fmap = folium.Map(location=[51.5, -0.1], zoom_start=10)
    folium.GeoJson(areas).add_to(fmap)
    path = Path(folder) / f"folium-{level}.html"
    fmap.save(str(path))
    seconds = time.perf_counter() - start
    return path.read_bytes(), seconds


def measure(repeat):
    from crimemap.web import create_app

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp) / "instance"
        start = time.perf_counter()
        store = load(instance)
        load_s = time.perf_counter() - start
        for tolerance, label in ((None, "crimemap"), (0.0, "crimemap, WEB_SIMPLIFY_M=0")):
            overrides = {"INSTANCE": str(instance)} | ({} if tolerance is None else {"WEB_SIMPLIFY_M": tolerance})
            client = create_app(overrides).test_client()
            for level in LEVELS:
                for what, url in (("`/`", f"/?level={level}"),
                                  ("`/api/v1/choropleth`", f"/api/v1/choropleth?level={level}&{PERIOD}")):
                    if tolerance is not None and what == "`/api/v1/choropleth`":
                        url += "&geometry=full"
                        shown = f"{what} `geometry=full`"
                    else:
                        shown = what if tolerance is None else f"{what} ({label})"
                    body, seconds = time_requests(client, url, repeat)
                    rows.append((level, shown, *weigh(body), seconds))
        for level in LEVELS:
            body, seconds = folium_default(store, level, tmp)
            rows.append((level, "folium default (`folium.GeoJson(gdf)`, full resolution, saved)", *weigh(body),
                         seconds))
        counts = {level: len(store.areas(store.layer(level)["id"], with_geometry=False)) for level in LEVELS}
    return rows, counts, load_s


def render(rows, counts, load_s, repeat, elapsed, load_at_start):
    today = datetime.date.today().isoformat()
    lines = [SECTION, "",
             f"Command: `python bench/bench_pages.py --repeat {repeat}` ({today}; {os.cpu_count()} cores, "
             f"{platform.python_implementation()} {platform.python_version()}; whole run {elapsed:.0f} s, of which "
             f"loading the data {load_s:.0f} s; load average {load_at_start:.1f} at the start). Data: "
             f"{counts['borough']} lad22 boroughs, {counts['ward']} 2018 wards, the police.uk API months "
             "2018-03..05. Sizes are of the response body; gzip at level 6. Server time is the median of "
             f"{repeat} in-process requests (Flask test client) after one warm-up, so the cached web geometry "
             "is warm; for folium it is building and saving the map once. The machine is shared: times can "
             "move by up to 2x between runs, sizes do not.", "",
             "| level | what | raw | gzipped | server time |", "|---|---|---|---|---|"]
    for level, what, raw, gz, seconds in rows:
        lines.append(f"| {level} | {what} | {raw / 1024:,.0f} KB | **{gz / 1024:,.0f} KB** | "
                     f"{seconds * 1000:,.0f} ms |")
    lines += ["", "Targets (issue 4): the whole `/` page at ward level at most 500 KB gzipped, the borough "
              "layer at most 100 KB. The page carries the map script and the accessible data table; "
              "Leaflet's own JS and CSS (served from `/static`, cached by the browser) are not counted.", ""]
    return "\n".join(lines)




def load_met(instance):
    """The approximate 2022 wards, lad22 boroughs, population and the Met ward-level table."""
    from crimemap.config import load_settings
    from crimemap.ingest import ingest_crimes, load_boundaries
    from crimemap.population import load_population
    from crimemap.store import open_store

    settings = load_settings(instance=instance, overrides={}, environ={})
    store = open_store(settings)
    load_boundaries(store, DATA / "boundaries/london-2021-lad22-gen20.shp", "borough", settings=settings)
    load_boundaries(store, DATA / "boundaries/london-wards-2022-approx.gpkg", "ward", settings=settings)
    load_boundaries(store, DATA / "boundaries/london-2011-lsoa-gen20.shp", "lsoa", settings=settings)
    load_population(store, DATA / "population/london-mid2020-lsoa11-pop.csv", settings=settings)
    ingest_crimes(store, [DATA / MET_WARDS], settings=settings)
    return store


def measure_met_area(repeat):
    """Cold and warm times of a ward's summary and page when the Met ward table answers.

    Cold: a new app and the in-process caches of the catalog and the Met
    months emptied, as in a server process's first request of a data
    version. Warm: the same request again. Each case is timed for ``repeat``
    different wards; the median is reported.
    """
    from crimemap.figures import sources
    from crimemap.web import create_app

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp) / "instance"
        start = time.perf_counter()
        load_met(instance)
        load_s = time.perf_counter() - start
        client = create_app({"INSTANCE": str(instance)}).test_client()
        codes = [f["id"] for f in client.get("/api/v1/choropleth?level=ward&geometry=none").get_json()["features"]
                 if f["properties"]["force"] == "metropolitan"][::97][:repeat]
        packed = sources._packed_months
        # The baseline in the same run: every month read row by row, as before the packed read. The two
        # reads take turns ward by ward, so a change in the machine's load hits both alike.
        reads = (("packed", packed), ("row by row (baseline)", lambda *args: {}))
        cases = (("`/api/v1/areas/ward/<code>`", "/api/v1/areas/ward/{}"), ("`/area/ward/<code>`", "/area/ward/{}"))
        times = {(what, read): ([], []) for what, _path in cases for read, _reader in reads}
        try:
            for code in codes:
                for what, path in cases:
                    for read, reader in reads:
                        sources._packed_months = reader
                        with sources._LOCK:
                            sources._CACHE.clear()
                            sources._MONTHS.clear()
                        client = create_app({"INSTANCE": str(instance)}).test_client()
                        for kept in times[(what, read)]:
                            began = time.perf_counter()
                            response = client.get(path.format(code))
                            kept.append(time.perf_counter() - began)
                            if response.status_code != 200:
                                raise SystemExit(f"{path.format(code)}: {response.status_code}")
        finally:
            sources._packed_months = packed
        for (what, read), (cold, warm) in times.items():
            rows.append((what, read, statistics.median(cold), statistics.median(warm), len(codes)))
    return rows, load_s


def render_met(rows, load_s, repeat, elapsed, load_at_start):
    today = datetime.date.today().isoformat()
    lines = [MET_SECTION, "",
             f"Command: `python bench/bench_pages.py --met-area --repeat {repeat}` ({today}; {os.cpu_count()} cores, "
             f"{platform.python_implementation()} {platform.python_version()}; whole run {elapsed:.0f} s, of which "
             f"loading the data {load_s:.0f} s; load average {load_at_start:.1f} at the start). Data: the "
             "approximate 2022 wards, lad22 boroughs, mid-2020 population and the Met ward-level table "
             "2023-07..2025-06. Cold is a server process's first request of a data version (catalog and Met month "
             "caches empty); warm is the same request again. Medians over different wards.", "",
             "| request | Met table read | wards | cold | warm |", "|---|---|---|---|---|"]
    base = {what: cold for what, read, cold, _warm, _n in rows if read != "packed"}
    for what, read, cold, warm, n in rows:
        ratio = f" ({base[what] / cold:.1f}x faster)" if read == "packed" and cold else ""
        lines.append(f"| {what} | {read} | {n} | **{cold * 1000:,.0f} ms**{ratio} | {warm * 1000:,.0f} ms |")
    lines += ["", "A cold request reads the 24 months of the ward table the summary compares (about 290,000 rows) "
              "into the per-month cache, which later requests of the same data version reuse for any ward. Read "
              "packed (`crimemap/figures/sources.py`: one row per month, each text column joined by SQLite's "
              "`group_concat` and split in Python) instead of one Python tuple per row.", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="requests timed per case (median reported)")
    parser.add_argument("--write", action="store_true", help="rewrite this section of bench/RESULTS.md")
    parser.add_argument("--met-area", action="store_true",
                        help="time area pages on the Met ward table, cold and warm, instead")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"shared data not found: {DATA} (set CRIMEMAP_SHARED_DATA)")
    load_at_start = os.getloadavg()[0]
    start = time.perf_counter()
    if args.met_area:
        rows, load_s = measure_met_area(args.repeat)
        section = render_met(rows, load_s, args.repeat, time.perf_counter() - start, load_at_start)
        print(section)
        if args.write:
            _results.write_section(MET_SECTION, section)
        return
    rows, counts, load_s = measure(args.repeat)
    section = render(rows, counts, load_s, args.repeat, time.perf_counter() - start, load_at_start)
    print(section)
    if args.write:
        _results.write_section(SECTION, section)


if __name__ == "__main__":
    main()
