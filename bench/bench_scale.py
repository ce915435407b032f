"""Benchmark: national-scale data on both stores (embedded SQLite, PostGIS) against their peers in the same run.

Run from the repository root::

    python bench/bench_scale.py --quick          # 200k points, 2 copies of London: a smoke test, ~3 minutes
    python bench/bench_scale.py                  # 1M and 10M points over 14 copies (9,198 wards): ~30-40 minutes
    python bench/bench_scale.py --write          # full run, then rewrite "National scale" in bench/RESULTS.md
    python bench/bench_scale.py --sizes 1000000  # one size only

The data comes from ``bench/synth_national.py`` (London's real points and 2018
wards copied across the map; see its docstring and docs/scale.md). PostgreSQL
runs as a throw-away cluster on loopback (``tests/pg_cluster.py``), or the
server of ``--url`` (a database with PostGIS that the bench may create schemas
in). Every case runs in its own subprocess (``--case NAME``) so that its peak
RSS (``getrusage(RUSAGE_SELF).ru_maxrss`` at its end) is its own; for the
cases whose work runs in PostgreSQL, the serving backend's own peak RSS
(``VmHWM``) is reported beside it. Cases, at each size:

- **crimemap, SQLite store**: ``load_boundaries`` of the scaled wards (timed
  apart), then ``ingest_crimes`` of every street CSV (read, join, store);
- **crimemap, PostGIS store**: the same with ``CRIMEMAP_DATABASE_URL`` set;
- **geopandas.sjoin** (peer): ``pandas.read_csv`` in chunks, ``points_from_xy``,
  ``to_crs``, ``sjoin(predicate="within")``, counts per ward; stores nothing;
- **PostGIS itself** (peer): ``COPY`` every CSV into a table, then the join in
  the database against a GiST index on the wards, ``GROUP BY`` ward: per
  distinct location (``ST_Intersects`` and ``ST_Contains``) and per row;
- **DuckDB** (peer) with the spatial extension loaded from the
  ``duckdb-ext-spatial`` wheel, when installed (else "not installable offline"
  and why).

Then, on the largest size loaded into each store: ``/api/v1/choropleth?level=ward``
(computed with the answer cache off, and from the cache) and
``/api/v1/areas/ward/<code>``, p50/p99 through the Flask test client in
process; and vector tiles at zoom 12, cold and cached, on a sample of the
national tiles (bench_tiles' helpers), with the size of the z12 ward tile over
central London.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(REPO))

import _results  # noqa: E402
from _scale_report import SECTION, render  # noqa: E402

FULL_SIZES = (1_000_000, 10_000_000)
QUICK = {"sizes": (200_000,), "copies": 2, "requests": 5, "tiles": 30}
FULL = {"copies": 14, "requests": 30, "tiles": 200}
ENV_KEYS = ("CRIMEMAP_DATABASE_URL", "CRIMEMAP_DATABASE_SCHEMA", "CRIMEMAP_TEST_BACKEND")


def run_case(name, *extra, env=None, timeout=None):
    """One case in a subprocess with ``env`` added to a clean copy of this environment; its JSON dict."""
    environ = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    environ.update(env or {})
    command = [sys.executable, __file__, "--case", name, *map(str, extra)]
    print(f"  {name} {' '.join(map(str, extra))}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=environ, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {timeout} s"}
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        print(f"case {name} failed:\n{tail}", file=sys.stderr, flush=True)
        return {"error": tail.splitlines()[-1] if tail else f"exit status {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def tune(cluster):
    """Settings of a dedicated database server of this size (the throw-away cluster starts with 64 MB buffers)."""
    for setting in ("shared_buffers = '2GB'", "work_mem = '256MB'", "maintenance_work_mem = '512MB'",
                    "max_wal_size = '8GB'", "max_parallel_workers_per_gather = 2"):
        cluster.psql(f"ALTER SYSTEM SET {setting}", database="postgres")
    cluster.stop()
    cluster.start()


def postgis_server(args, stack):
    """The PostgreSQL URL to use: ``--url``, or a tuned throw-away cluster; (url, note) or (None, why not)."""
    if args.url:
        return args.url, "the server of --url"
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from pg_cluster import ClusterError, pg_cluster
    except ImportError as error:
        return None, f"tests/pg_cluster.py not found ({error})"
    try:
        cluster = stack.enter_context(pg_cluster())
        tune(cluster)
    except ClusterError as error:
        return None, str(error)
    version = cluster.psql("SELECT split_part(version(), ' ', 2) || ', PostGIS ' || postgis_lib_version()")
    return cluster.url, (f"PostgreSQL {version}, a throw-away cluster on 127.0.0.1 (tests/pg_cluster.py; fsync off; "
                         "shared_buffers 2GB, work_mem 256MB, 2 parallel workers per gather)")


def _save(args, results):
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")


def measure(args, workdir, url, results):
    """Every case at every size; the stores of the largest size stay loaded for the API and tile cases."""
    settings = QUICK if args.quick else FULL
    copies = args.copies or settings["copies"]
    sizes = args.sizes or (QUICK["sizes"] if args.quick else FULL_SIZES)
    results.update(sizes={}, copies=copies)
    for n in sizes:
        data = workdir / f"data-{n}"
        row = results["sizes"][n] = {}
        _save(args, results)
        row["generate"] = run_case("generate", "--data", data, "--points", n, "--copies", copies, "--seed", args.seed)
        largest = n == max(sizes)
        sqlite_instance = workdir / f"sqlite-{n}"
        row["sqlite"] = run_case("store-ingest", "--data", data, "--instance", sqlite_instance)
        row["sjoin"] = run_case("sjoin", "--data", data)
        row["areaindex"] = run_case("areaindex", "--data", data)
        if url:
            pg_env = {"CRIMEMAP_DATABASE_URL": url, "CRIMEMAP_DATABASE_SCHEMA": f"bench_scale_{n}"}
            row["postgis_raw"] = run_case("postgis-raw", "--data", data, "--url", url)
            row["postgis"] = run_case("store-ingest", "--data", data, "--instance", workdir / f"postgis-{n}",
                                      env=pg_env, timeout=args.ingest_timeout)
        row["duckdb"] = run_case("duckdb", "--data", data)
        _save(args, results)
        if largest:
            backends = [("sqlite", sqlite_instance, {})]
            if url and "error" not in row.get("postgis", {"error": 1}):
                backends.append(("postgis", workdir / f"postgis-{n}", pg_env))
            for name, instance, env in backends:
                common = ("--data", data, "--instance", instance, "--requests", settings["requests"])
                results[f"api_{name}"] = run_case("api", *common, env=env)
                results[f"tiles_{name}"] = run_case("tiles", *common, "--tiles", settings["tiles"], env=env)
                _save(args, results)
            results["largest"] = n
        shutil.rmtree(data, ignore_errors=True)
        if not largest:
            shutil.rmtree(sqlite_instance, ignore_errors=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k points over 2 copies of London")
    parser.add_argument("--write", action="store_true", help="rewrite the National scale section of RESULTS.md")
    parser.add_argument("--sizes", type=int, nargs="+", help="points per size (default 1M and 10M)")
    parser.add_argument("--copies", type=int, help="copies of London (default 14; 2 with --quick)")
    parser.add_argument("--url", help="a PostgreSQL server with PostGIS instead of a throw-away cluster")
    parser.add_argument("--no-postgis", action="store_true", help="skip every PostgreSQL case")
    parser.add_argument("--workdir", type=Path, help="where the data and stores go (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--ingest-timeout", type=int, default=1800, help="seconds before a store ingest is stopped")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--from-json", type=Path, help="render (and --write) the results saved by --json; run nothing")
    parser.add_argument("--note", default="", help="a paragraph added under the tables (e.g. what was not run)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    for hidden in ("--data", "--instance", "--points", "--requests", "--tiles"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        import _scale_cases

        for key, kind in (("points", int), ("copies", int), ("requests", int), ("tiles", int)):
            if getattr(args, key) is not None:
                setattr(args, key, kind(getattr(args, key)))
        print(json.dumps(_scale_cases.run(args.case, args), default=str))
        return
    import contextlib

    if args.from_json:
        results = json.loads(args.from_json.read_text(encoding="utf-8"))
        results["sizes"] = {int(n): row for n, row in results["sizes"].items()}
        results["notes"] = args.note or results.get("notes", "")
        args.quick, args.sizes = results.get("quick", False), results.get("size_args")
    else:
        started = time.perf_counter()
        results = {"load_start": os.getloadavg(), "date": datetime.date.today().isoformat(), "quick": args.quick,
                   "size_args": args.sizes, "machine": f"{os.cpu_count()} cores, CPython {platform.python_version()}"}
        workdir = Path(tempfile.mkdtemp(prefix="crimemap-scale-", dir=args.workdir))
        try:
            with contextlib.ExitStack() as stack:
                url, results["server"] = ((None, "skipped (--no-postgis)") if args.no_postgis
                                          else postgis_server(args, stack))
                measure(args, workdir, url, results)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        results.update(load_end=os.getloadavg(), elapsed=time.perf_counter() - started, notes=args.note)
        _save(args, results)
    text = render(args, results)
    print(text)
    if args.write:
        _results.write_section(SECTION, text)


if __name__ == "__main__":
    main()
