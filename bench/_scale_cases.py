"""The cases of bench_scale.py; each runs in its own subprocess and returns a dict (printed as JSON).

Arguments every case reads (``args``): ``data`` (a folder written by
synth_national.generate), ``instance``, ``requests``, ``tiles``; the PostGIS
cases read ``url``. The store cases choose their backend from the
environment the parent gives them (``CRIMEMAP_DATABASE_URL`` and
``CRIMEMAP_DATABASE_SCHEMA`` set for the PostGIS store, unset for SQLite).
"""

import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from _ingest_common import CHUNK_ROWS
from bench_ingest import Stopwatch, peak_rss_mb
from bench_tiles import CENTRAL, _clear_process_caches, _get, _tile_of

import synth_national

ZOOM = 12


def _inputs(args):
    data = Path(args.data)
    files = synth_national.street_files(data)
    if not files:
        raise SystemExit(f"no street CSVs under {data}/street: run the generate case first")
    return data / "wards.gpkg", files


def _backend_settings(args):
    from crimemap.config import load_settings

    return load_settings(instance=args.instance, environ=os.environ)


def _open_store(settings):
    from crimemap.store import open_store

    store = open_store(settings)
    if settings.get("DATABASE_URL") and store.dialect != "postgresql":
        raise SystemExit("CRIMEMAP_DATABASE_URL is set but open_store gave the embedded store: "
                         "this checkout has no PostGIS store yet")
    return store


# ---------------------------------------------------------------- ingest + join


def case_store_ingest(args):
    """crimemap: the scaled wards into a fresh store (timed apart), then ingest_crimes of every street CSV."""
    from crimemap.ingest import ingest_crimes, load_boundaries

    wards, files = _inputs(args)
    settings = _backend_settings(args)
    store = _open_store(settings)
    start = time.perf_counter()
    load_boundaries(store, wards, "ward", settings=settings)
    boundary_s = time.perf_counter() - start
    done = []

    def echo(line):
        done.append(line)
        if len(done) == len(files):  # what follows the last file: the location join, the recount, the commit
            rss.enter("join + recount + commit")

    with _RssByPhase("reading + staging") as rss:
        start, cpu = time.perf_counter(), time.process_time()
        report = ingest_crimes(store, files, settings=settings, echo=echo)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    summary = report.summary()
    out = {"backend": store.dialect, "points": summary["rows_read"], "joined": summary["joined"],
           "outside": summary["outside"], "rejected": summary["rejected"], "seconds": seconds, "cpu_s": cpu,
           "boundary_s": boundary_s, "rss_by_phase_mb": rss.peaks}
    path = getattr(store, "path", None)
    if path is not None and Path(path).exists():
        out["store_mb"] = Path(path).stat().st_size / 2**20
    return out


class _RssByPhase:
    """Peak resident memory by phase, sampled every 20 ms from /proc/self/statm in a thread."""

    def __init__(self, phase):
        import threading

        self.phase, self.peaks = phase, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def enter(self, phase):
        self.phase = phase

    def _sample(self):
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.02):
            with open("/proc/self/statm") as f:
                mb = int(f.read().split()[1]) * page / 2**20
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), mb)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def case_sjoin(args):
    """The plain pipeline: pandas.read_csv in chunks -> points_from_xy -> to_crs -> sjoin(within) -> counts."""
    import geopandas
    import pandas as pd

    wards_path, files = _inputs(args)
    wards = geopandas.read_file(wards_path, engine="pyogrio")[["GSS_CODE", "geometry"]]
    counts = np.zeros(len(wards), dtype=np.int64)
    clock, n = Stopwatch(), 0
    start, cpu = time.perf_counter(), time.process_time()
    for path in files:
        for chunk in clock.wrap_iter("read", pd.read_csv(path, chunksize=CHUNK_ROWS)):
            with clock("reproject"):
                points = geopandas.GeoDataFrame(
                    chunk, geometry=geopandas.points_from_xy(chunk["Longitude"], chunk["Latitude"]),
                    crs="EPSG:4326").to_crs(27700)
            with clock("join"):
                joined = geopandas.sjoin(points, wards, how="inner", predicate="within")
                counts += np.bincount(joined["index_right"].to_numpy(), minlength=len(wards))
            n += len(chunk)
    return {"points": n, "joined": int(counts.sum()), "seconds": time.perf_counter() - start,
            "cpu_s": time.process_time() - cpu, "parts": dict(clock.seconds), "wards_with_crimes": int((counts > 0).sum())}


def case_areaindex(args):
    """crimemap's join alone, as the store ingests use it: distinct locations of every CSV -> BNG -> AreaIndex."""
    import geopandas

    from crimemap.crs import lonlat_to_bng
    from crimemap.ingest import build_indexes
    from crimemap.io.crimes import read_points

    wards_path, files = _inputs(args)
    wards = geopandas.read_file(wards_path, engine="pyogrio")
    clock, lon, lat = Stopwatch(), [], []
    start = time.perf_counter()
    for path in files:
        for chunk in clock.wrap_iter("read", read_points(path, chunk_rows=CHUNK_ROWS)):
            lon.append(chunk["lon"].to_numpy())
            lat.append(chunk["lat"].to_numpy())
    with clock("distinct"):
        pairs = np.column_stack([np.concatenate(lon), np.concatenate(lat)])
        n = len(pairs)
        locations, counts = np.unique(pairs, axis=0, return_counts=True)
    with clock("reproject"):
        x, y = lonlat_to_bng(locations[:, 0], locations[:, 1])
    with clock("index build"):
        (index,) = build_indexes([(wards.geometry.values, wards["GSS_CODE"].to_numpy())])
    with clock("join"):
        found = index.assign(x, y).index
    return {"points": n, "locations": len(locations), "joined": int(counts[found >= 0].sum()),
            "seconds": time.perf_counter() - start, "parts": dict(clock.seconds)}


# ---------------------------------------------------------------- PostGIS itself

_POINT = "ST_Transform(ST_SetSRID(ST_MakePoint({t}.lon, {t}.lat), 4326), 27700)"
_POINTS_DDL = ("CREATE TABLE points (crime_id text, month text, reported_by text, falls_within text, lon float8, "
               "lat float8, location text, lsoa_code text, lsoa_name text, crime_type text, outcome text, "
               "context text)")
_LOCATIONS = "WITH loc AS (SELECT lon, lat, count(*) AS n FROM points GROUP BY lon, lat) "
# name -> (statements run first, timed with the join; the join; run only up to this many rows or None).
RAW_JOINS = {
    # Each distinct location once (police.uk snaps crimes to map points) as a BNG point with a GiST index of
    # its own; the wards drive the join, so each ward's prepared polygon is reused for all its points.
    "locations (GiST on both), wards outer": (
        ["CREATE TABLE loc AS SELECT lon, lat, count(*) AS n, " + _POINT.format(t="points")
         + " AS geom FROM points GROUP BY lon, lat", "CREATE INDEX ON loc USING gist (geom)", "ANALYZE loc"],
        "SELECT w.code, sum(l.n) FROM wards w JOIN loc l ON ST_Intersects(w.geom, l.geom) GROUP BY w.code", None),
    # The same points, each looked up in the wards' GiST index (the planner's choice without an index on points).
    "locations, GiST on wards": (
        [], _LOCATIONS + "SELECT w.code, sum(loc.n) FROM loc JOIN wards w ON ST_Intersects(w.geom, "
        + _POINT.format(t="loc") + ") GROUP BY w.code", 2_000_000),
    # Every row's point looked up in the wards' GiST index, no de-duplication.
    "rows, GiST on wards": (
        [], "SELECT w.code, count(*) FROM points p JOIN wards w ON ST_Intersects(w.geom, "
        + _POINT.format(t="p") + ") GROUP BY w.code", 2_000_000),
}
BEST_RAW = "locations (GiST on both), wards outer"


def _backend_hwm_mb(conn):
    """Peak RSS (VmHWM) of the PostgreSQL backend serving ``conn`` (same machine), in MB; None if unreadable."""
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def case_postgis_raw(args):
    """PostGIS by hand: COPY every CSV into a table, then GROUP BY ward of an ST_Intersects join (GiST on wards)."""
    import geopandas
    import psycopg
    import shapely

    wards_path, files = _inputs(args)
    wards = geopandas.read_file(wards_path, engine="pyogrio")
    schema = f"bench_raw_{os.getpid()}"
    clock = Stopwatch()
    out = {"joins": {}}
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}, public")
        conn.execute("SET work_mem = '256MB'")
        try:
            start = time.perf_counter()
            conn.execute("CREATE TABLE wards (code text PRIMARY KEY, geom geometry(MultiPolygon, 27700))")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO wards VALUES (%s, ST_Multi(ST_GeomFromWKB(%s, 27700)))",
                                list(zip(wards["GSS_CODE"], shapely.to_wkb(wards.geometry.values))))
            conn.execute("CREATE INDEX ON wards USING gist (geom)")
            conn.execute("ANALYZE wards")
            out["wards_s"] = time.perf_counter() - start
            conn.execute(_POINTS_DDL)
            with clock("copy"):
                with conn.cursor() as cur:
                    for path in files:
                        with cur.copy("COPY points FROM STDIN (FORMAT csv, HEADER true)") as copy, \
                                open(path, "rb") as src:
                            while block := src.read(1 << 20):
                                copy.write(block)
                conn.execute("ANALYZE points")
            out["points"] = conn.execute("SELECT count(*) FROM points").fetchone()[0]
            out["locations"] = conn.execute("SELECT count(*) FROM (SELECT DISTINCT lon, lat FROM points) d").fetchone()[0]
            for name, (setup, sql, most) in RAW_JOINS.items():
                if most is not None and out["points"] > most:
                    out["joins"][name] = {"skipped": f"run only up to {most:,} rows"}
                    continue
                start = time.perf_counter()
                for statement in setup:
                    conn.execute(statement)
                query = time.perf_counter()
                rows = conn.execute(sql).fetchall()
                end = time.perf_counter()
                out["joins"][name] = {"seconds": end - start, "setup_s": query - start, "query_s": end - query,
                                      "joined": int(sum(r[1] for r in rows)), "wards": len(rows)}
                out.setdefault("plans", {})[name] = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql))
            out["server_hwm_mb"] = _backend_hwm_mb(conn)
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    out["copy_s"] = clock.seconds["copy"]
    out["seconds"] = out["copy_s"] + out["joins"][BEST_RAW]["seconds"]
    return out


# ---------------------------------------------------------------- DuckDB


def duckdb_spatial():
    """A DuckDB connection with the spatial extension loaded from the ``duckdb-ext-spatial`` wheel, or the error."""
    try:
        import duckdb
        import duckdb_ext
    except ImportError as error:
        return None, f"not installable offline here: {error} (pip install duckdb duckdb-ext-spatial)"
    found = sorted(p for root in duckdb_ext.__path__ for p in Path(root).glob(
        f"extensions/{duckdb.__version__ if duckdb.__version__.startswith('v') else 'v' + duckdb.__version__}/*/"
        "spatial.duckdb_extension"))
    con = duckdb.connect()
    try:
        if not found:
            con.execute("LOAD spatial")  # fails without the network unless already installed
        else:
            con.execute(f"LOAD '{found[0]}'")
    except duckdb.Error as error:
        return None, f"spatial extension not loadable offline: {error}"
    return con, f"duckdb {duckdb.__version__}, spatial from the PyPI wheel duckdb-ext-spatial"


def case_duckdb(args):
    """DuckDB: read_csv of every CSV into a table, points transformed to BNG, ST_Intersects join, GROUP BY ward."""
    import geopandas
    import shapely

    con, note = duckdb_spatial()
    if con is None:
        return {"unavailable": note}
    wards_path, files = _inputs(args)
    wards = geopandas.read_file(wards_path, engine="pyogrio")
    frame = wards[["GSS_CODE"]].assign(wkb=shapely.to_wkb(wards.geometry.values))  # noqa: F841 - read by DuckDB
    con.execute("CREATE TABLE wards AS SELECT GSS_CODE AS code, ST_GeomFromWKB(wkb) AS geom FROM frame")
    clock = Stopwatch()
    listed = ", ".join(f"'{p}'" for p in files)
    with clock("read"):
        con.execute(f"CREATE TABLE points AS SELECT * FROM read_csv([{listed}], header = true)")
    with clock("join"):
        con.execute("CREATE TABLE pts AS SELECT ST_Transform(ST_Point(Longitude, Latitude), 'EPSG:4326', "
                    "'EPSG:27700', always_xy := true) AS geom FROM points")
        rows = con.execute("SELECT w.code, count(*) FROM pts p JOIN wards w ON ST_Intersects(w.geom, p.geom) "
                           "GROUP BY w.code").fetchall()
    plan = con.execute("EXPLAIN SELECT w.code, count(*) FROM pts p JOIN wards w ON ST_Intersects(w.geom, p.geom) "
                       "GROUP BY w.code").fetchall()
    n = con.execute("SELECT count(*) FROM points").fetchone()[0]
    return {"note": note, "points": n, "joined": int(sum(r[1] for r in rows)), "wards": len(rows),
            "seconds": sum(clock.seconds.values()), "parts": dict(clock.seconds),
            "spatial_join": "SPATIAL_JOIN" in str(plan), "threads": con.execute("SELECT current_setting('threads')").fetchone()[0]}


# ---------------------------------------------------------------- API and tiles


def _percentiles(seconds):
    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max())}


def _app(args, **config):
    from crimemap.web import create_app

    folder = tempfile.mkdtemp(prefix="bench-scale-app-")
    return create_app({"INSTANCE": str(args.instance), "TESTING": True, "TILES_DIR": str(Path(folder) / "tiles"),
                       **config})


def case_api(args):
    """In-process (Flask test client): /api/v1/choropleth?level=ward and the area API, at each level of caching.

    *computed*: the answer cache off and the process's figures cache
    (:mod:`crimemap.figures.layer_cache`) emptied before each request, as
    after a new data version; *figures kept*: the answer cache off, the
    figures cache warm (what is left is encoding); *cached*: the answer cache
    on and warm (``X-Answer-Cache: hit``). The area API: distinct random
    wards, the first after emptying the figures cache, the rest warm.
    """
    from crimemap.figures import layer_cache

    client = _app(args, FIGURE_CACHE_MAX_ENTRIES=0).test_client()
    url = "/api/v1/choropleth?level=ward"
    first, first_s = _get(client, url)  # the simplified geometry is computed once and kept in the instance
    features = len(first.get_json()["features"])
    computed = []
    for _ in range(args.requests):
        layer_cache.clear()
        computed.append(_get(client, url)[1])
    _get(client, url)
    kept = [_get(client, url)[1] for _ in range(args.requests)]
    cached_client = _app(args).test_client()
    _get(cached_client, url)
    answers = [_get(cached_client, url) for _ in range(args.requests)]
    hits = sum(response.headers.get("X-Answer-Cache") == "hit" for response, _ in answers)
    codes = [f["properties"]["code"] for f in first.get_json()["features"]]
    rng = np.random.default_rng(7)
    picked = rng.choice(len(codes), size=min(args.requests + 1, len(codes)), replace=False)
    layer_cache.clear()
    area_first = _get(client, f"/api/v1/areas/ward/{codes[picked[0]]}")[1]
    area = [_get(client, f"/api/v1/areas/ward/{codes[i]}")[1] for i in picked[1:]]
    return {"features": features, "bytes": len(first.data), "first_s": first_s,
            "computed": _percentiles(computed), "kept": _percentiles(kept), "cached": _percentiles(
                [seconds for _, seconds in answers]), "cache_hits": hits, "area_first_s": area_first,
            "area": _percentiles(area)}


def _copy_tiles(copies, zoom):
    """Every zoom-``zoom`` tile touching each copy of London's bounding box (Web Mercator), in copy order."""
    from pyproj import Transformer

    from crimemap.tiles import tiles_covering

    bounds = synth_national.read_wards().total_bounds
    to_merc = Transformer.from_crs(27700, 3857, always_xy=True)
    tiles = []
    for dx, dy in synth_national.offsets(copies, bounds):
        xs, ys = to_merc.transform([bounds[0] + dx, bounds[2] + dx], [bounds[1] + dy, bounds[3] + dy])
        tiles += [t for t in tiles_covering((min(xs), min(ys), max(xs), max(ys)), zoom) if t not in tiles]
    return tiles


def case_tiles(args):
    """Tiles/s cold and cached on a sample of the national zoom-12 ward tiles, and the central z12 tile's size."""
    app = _app(args)
    client = app.test_client()
    copies = len({code.rsplit("-", 1)[-1] if "-" in code else "00"
                  for code in (f["properties"]["code"] for f in
                               client.get("/api/v1/choropleth?level=ward&geometry=none").get_json()["features"])})
    everything = _copy_tiles(copies, ZOOM)
    step = max(1, len(everything) // args.tiles)
    central = (ZOOM, *_tile_of(*CENTRAL, ZOOM))
    sample = [central] + [t for t in everything[::step] if t != central][: args.tiles - 1]
    urls = [f"/tiles/ward/{z}/{x}/{y}.pbf" for z, x, y in sample]
    _clear_process_caches()
    first, first_s = _get(client, urls[0])
    cold = [_get(client, url) for url in urls[1:]]
    kept = [url for url, (r, _) in zip(urls[1:], cold) if r.data]
    cached = [_get(client, url) for url in kept]
    if any(r.headers.get("X-Tile-Cache") != "hit" for r, _ in cached):
        raise SystemExit("a cached tile was built again")
    sizes = sorted(len(r.data) for r, _ in cold if r.data)
    return {"copies": copies, "tiles_national": len(everything), "sampled": len(urls), "with_features": len(kept),
            "first_s": first_s, "cold_tps": len(cold) / sum(s for _, s in cold),
            "cached_tps": len(cached) / sum(s for _, s in cached), "central": list(central),
            "central_bytes": len(first.data), "median_bytes": statistics.median(sizes) if sizes else 0,
            "max_bytes": max(sizes) if sizes else 0}


def case_generate(args):
    """synth_national.generate into ``args.data``."""
    return synth_national.generate(args.data, args.points, args.copies, seed=args.seed)


CASES = {"generate": case_generate, "store-ingest": case_store_ingest, "sjoin": case_sjoin, "areaindex": case_areaindex,
         "postgis-raw": case_postgis_raw, "duckdb": case_duckdb, "api": case_api, "tiles": case_tiles}


def run(name, args):
    """Run one case; its dict with the process's peak RSS."""
    result = CASES[name](args)
    result["rss_max_mb"] = peak_rss_mb()
    return result
