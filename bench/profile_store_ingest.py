"""Where an ``ingest_crimes`` spends its time, phase by phase, on both stores in one run.

Run from the repository root on a folder written by ``bench/synth_national.py``
(``python bench/bench_scale.py --case generate ...``)::

    python bench/profile_store_ingest.py /tmp/nat3m              # SQLite store, then PostGIS store
    python bench/profile_store_ingest.py /tmp/nat3m --rounds 2 --statements

Each round loads the data's wards into a fresh instance of each store, then
times ``ingest_crimes`` of every street CSV, wrapping the writer methods of
each phase: ``location_ids``, ``stage_points``, ``commit_staged``,
``join_locations`` (of which ``unjoined_locations`` and ``set_location_areas``),
``_placement``, the refresh (``_refresh_point_counts``) and the COMMIT
(from the end of ``finish`` to the end of the ingest). Reading the CSVs runs
one file ahead in a thread, so it overlaps the phases. PostgreSQL is a
throw-away cluster (tests/pg_cluster.py) with bench_scale's settings and
``pg_stat_statements``; ``--statements`` prints its 15 heaviest statements
after each PostGIS round. One JSON line per store and round.
"""

import argparse
import contextlib
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH), str(REPO / "tests")]

import synth_national  # noqa: E402

TIMES = {}
PHASES = [("location_ids", "location_ids"), ("stage_points", "stage_points"), ("commit_staged", "commit_staged"),
          ("unjoined_locations", "join: unjoined_locations"), ("set_location_areas", "join: set_location_areas"),
          ("_refresh_point_counts", "refresh")]


def _timed(owner, name, phase, on_end=None):
    function = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            end = time.perf_counter()
            TIMES[phase] = TIMES.get(phase, 0.0) + end - start
            if on_end:
                on_end(end)
    setattr(owner, name, wrapper)


def instrument():
    """Wrap each phase's method (on the class that defines it) with a clock; returns the dict of end times."""
    import crimemap.ingest as ingest
    from crimemap.store import postgis_writer, sqlite, writer_base

    for cls in (postgis_writer.PostGISWriter, sqlite.SQLiteWriter, writer_base.PortableWriter):
        for name, phase in PHASES:
            if name in cls.__dict__:
                _timed(cls, name, phase)
    ends = {}
    _timed(writer_base.PortableWriter, "finish", "finish", on_end=lambda t: ends.__setitem__("finish", t))
    _timed(ingest, "join_locations", "join_locations")
    _timed(ingest, "_placement", "placement")
    return ends


def run_one(backend, data, url, ends):
    """Wards, then every street CSV, into a fresh instance of one store; the phase times."""
    from crimemap.config import load_settings
    from crimemap.ingest import ingest_crimes, load_boundaries
    from crimemap.store import open_store

    environ = {"CRIMEMAP_DATABASE_URL": url, "CRIMEMAP_DATABASE_SCHEMA": "instance"} if backend == "postgis" else {}
    settings = load_settings(instance=tempfile.mkdtemp(prefix=f"profile-{backend}-"), environ=environ)
    store = open_store(settings)
    start = time.perf_counter()
    load_boundaries(store, Path(data) / "wards.gpkg", "ward", settings=settings)
    boundary_s = time.perf_counter() - start
    TIMES.clear()
    ends.clear()
    start = time.perf_counter()
    report = ingest_crimes(store, synth_national.street_files(Path(data)), settings=settings)
    end = time.perf_counter()
    out = {"store": backend, "points": report.summary()["rows_read"], "joined": report.summary()["joined"],
           "boundary_s": round(boundary_s, 1), "ingest_s": round(end - start, 1),
           "commit_s": round(end - ends.get("finish", end), 2)}
    out.update({phase: round(seconds, 2) for phase, seconds in TIMES.items()})
    with contextlib.suppress(AttributeError):
        store.close()
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a folder written by synth_national.generate (wards.gpkg, street/*.csv)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--stores", default="sqlite,postgis", help="comma-separated, in the order to run them")
    parser.add_argument("--statements", action="store_true", help="the heaviest statements of each PostGIS round")
    args = parser.parse_args(argv)
    ends = instrument()
    from bench_scale import tune
    from pg_cluster import pg_cluster

    with pg_cluster() as cluster:
        cluster.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'", database="postgres")
        tune(cluster)  # restarts the server
        cluster.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for round_ in range(args.rounds):
            for backend in args.stores.split(","):
                if backend == "postgis":
                    cluster.psql("SELECT pg_stat_statements_reset()")
                print(json.dumps({"round": round_, **run_one(backend, args.data, cluster.url, ends)}), flush=True)
                if backend == "postgis" and args.statements:
                    print(cluster.psql(
                        "SELECT round(total_exec_time::numeric / 1000, 2) || ' s  x' || calls || '  ' || "
                        "left(regexp_replace(query, '\\s+', ' ', 'g'), 160) FROM pg_stat_statements "
                        "ORDER BY total_exec_time DESC LIMIT 15"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
