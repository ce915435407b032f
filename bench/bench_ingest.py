"""Benchmark: crimemap ingest (read + join + store) against a plain geopandas pipeline.

Run from the repository root::

    python bench/bench_ingest.py            # full run, ~6-8 minutes on 2 cores
    python bench/bench_ingest.py --quick    # smaller synthetic inputs, ~1-2 minutes
    python bench/bench_ingest.py --write    # full run, then rewrite "Ingest (read + join + store)"
                                            # in bench/RESULTS.md
    python bench/bench_ingest.py --quick --profile   # also print cProfile's top functions of each ingest
    python bench/bench_ingest.py --real-only --rounds 4  # the real police.uk points only, ~1 minute

Inputs:

- real: the three police.uk API JSON Lines files (``crime/police_uk_api_partial``),
  191,699 crimes snapped to far fewer map points, against the 657 wards of 2018
  and the 33 lad22 boroughs;
- synthetic: 1M and 10M rows written as a police.uk street CSV (a temporary file),
  with distinct coordinates uniform inside the 2018 wards, against those wards.

Every case runs in its own subprocess (``--case NAME``) so that the peak resident
memory it reports, ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` read at its end,
is its own. The parent collects the JSON line each case prints and renders the
tables. Throughput is points per second of wall time, imports and reading the
boundary files excluded, building the spatial index included; crimemap and the
baseline take turns so that a change in the machine's load hits both. The baseline is a
plain pipeline on the same input in the same run: the standard library's ``json``
(or ``pandas.read_csv`` in chunks) into a GeoDataFrame, ``to_crs`` and
``geopandas.sjoin(predicate="within")``, one sjoin per layer.
"""

import argparse
import contextlib
import cProfile
import functools
import gzip
import io
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

import _results  # noqa: E402 - bench/ is on sys.path when a bench runs as a script
from _ingest_report import render  # noqa: E402

from _ingest_common import (  # noqa: E402 - bench/ is on sys.path when a bench runs as a script
    REPO, WARDS, BOROUGHS, API, SECTION, CHUNK_ROWS, GENERATE_ROWS, INGEST_TIMEOUT_S, CSV_HEADER, CRIME_TYPES, OUTCOMES)


def peak_rss_mb():
    # Linux reports ru_maxrss in kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stopwatch:
    """Wall time per label; ``wrap`` and ``wrap_iter`` time functions and generators in place."""

    def __init__(self):
        self.seconds = Counter()

    @contextlib.contextmanager
    def __call__(self, label):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[label] += time.perf_counter() - start

    def wrap(self, label, func):
        @functools.wraps(func)
        def timed(*args, **kwargs):
            with self(label):
                return func(*args, **kwargs)
        return timed

    def wrap_iter(self, label, iterable):
        items = iter(iterable)
        while True:
            with self(label):
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item


def api_files():
    files = sorted(API.glob("*.jsonl.gz"))
    if len(files) != 3:
        sys.exit(f"expected the three police.uk API files in {API}")
    return files


def read_layers(levels):
    """Boundary layers as crimemap reads them (EPSG:27700, ``code`` column)."""
    from crimemap.io.boundaries import read_boundaries

    paths = {"ward": WARDS, "borough": BOROUGHS}
    return [read_boundaries(paths[level], level).gdf[["code", "geometry"]] for level in levels]


def build_indexes(layers):
    """One AreaIndex per layer, built in parallel as crimemap.ingest does (build_indexes)."""
    from crimemap.ingest import build_indexes as build

    return build([(layer.geometry.values, layer["code"].to_numpy()) for layer in layers])


def best(repeat, func):
    """Run ``func`` ``repeat`` times; keep the result of the fastest run (``func`` returns its seconds first)."""
    runs = [func() for _ in range(repeat)]
    return min(runs, key=lambda run: run[0])


def pipeline(repeat, body):
    """Best of ``repeat`` runs of ``body(clock, extra)``, which returns how many points it handled."""
    def run():
        clock, extra = Stopwatch(), {}
        start, cpu = time.perf_counter(), time.process_time()
        n = body(clock, extra)
        return time.perf_counter() - start, n, dict(clock.seconds), time.process_time() - cpu, extra

    seconds, n, parts, cpu, extra = best(repeat, run)
    return {"points": n, "seconds": seconds, "parts": parts, "cpu_s": cpu, **extra}


@contextlib.contextmanager
def profiled(args, into):
    """cProfile the block when ``--profile`` was given; the top functions go into ``into["profile"]``."""
    if not args.profile:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
        into["profile"] = out.getvalue()


# ------------------------------------------------------ real police.uk points


def case_real_reader(args):
    """The police.uk JSON reader alone: records per second of wall and of CPU time (one thread)."""
    from crimemap.io.crimes import read_points

    files = api_files()

    def run():
        wall, cpu, n = time.perf_counter(), time.process_time(), 0
        for path in files:
            for chunk in read_points(path, chunk_rows=CHUNK_ROWS):
                n += len(chunk)
        return time.perf_counter() - wall, time.process_time() - cpu, n

    def parse_only(loads):
        def parse():
            wall, cpu, n = time.perf_counter(), time.process_time(), 0
            for path in files:
                with gzip.open(path, "rb") as lines:
                    n += sum(1 for _ in map(loads, lines))
            return time.perf_counter() - wall, time.process_time() - cpu, n
        return parse

    import orjson

    run()  # warm-up: imports, schemas, the files in the page cache
    wall, cpu, n = best(args.repeat, run)
    stdlib_wall, stdlib_cpu, _ = best(args.repeat, parse_only(json.loads))
    orjson_wall, orjson_cpu, _ = best(args.repeat, parse_only(orjson.loads))
    return {"points": n, "wall_s": wall, "cpu_s": cpu, "stdlib_wall_s": stdlib_wall, "stdlib_cpu_s": stdlib_cpu,
            "orjson_wall_s": orjson_wall, "orjson_cpu_s": orjson_cpu}


def case_real_ours(args):
    """crimemap's reader and a LocationCache over wards and boroughs (reprojection and join per new location); no store.

    The cache starts empty: each map point is reprojected and joined the first
    time a chunk holds it, as the store's location tables do in a first ingest.
    Then, apart from the measure of the target, the same pass again with the
    cache kept (every location known), as a later ingest of the same places.
    """
    from crimemap.io.blocks import one_file_ahead
    from crimemap.io.crimes import read_points
    from crimemap.join_cache import LocationCache

    layers, files = read_layers(["ward", "borough"]), api_files()

    def one_pass(clock, cache):
        n = 0
        # As crimemap.ingest reads them: the next file starts reading while this one is worked on.
        for _, chunks in one_file_ahead(files, lambda path: read_points(path, chunk_rows=CHUNK_ROWS)):
            for chunk in clock.wrap_iter("read", chunks):
                with clock("join"):
                    cache.assign(chunk["lon"].to_numpy(), chunk["lat"].to_numpy())
                n += len(chunk)
        return n

    def body(clock, extra):
        with clock("index build"):
            cache = LocationCache(build_indexes(layers), lonlat=True)
        n = one_pass(clock, cache)
        extra["joined_locations"] = cache.joined
        extra["grids_built"] = sum(index._grid is not None for index in cache.indexes)
        return n

    result = pipeline(args.repeat, body)
    warm = LocationCache(build_indexes(layers), lonlat=True)
    one_pass(Stopwatch(), warm)
    result["warm"] = pipeline(args.repeat, lambda clock, extra: one_pass(clock, warm))
    result["warm"]["joined_locations"] = warm.joined
    return result


def plain_json_frame(path):
    """What a plain pipeline does: the standard library's json, record by record, into a GeoDataFrame."""
    import geopandas
    import pandas as pd

    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            location = record.get("location") or {}
            rows.append((record.get("id"), record.get("persistent_id"), record.get("category"),
                         record.get("month"), location.get("longitude"), location.get("latitude")))
    frame = pd.DataFrame(rows, columns=["id", "crime_id", "category", "month", "lon", "lat"])
    lon = pd.to_numeric(frame["lon"], errors="coerce")
    lat = pd.to_numeric(frame["lat"], errors="coerce")
    return geopandas.GeoDataFrame(frame, geometry=geopandas.points_from_xy(lon, lat), crs="EPSG:4326")


def case_real_baseline(args):
    """The plain pipeline: stdlib json -> GeoDataFrame -> to_crs -> sjoin(within), wards and boroughs."""
    import geopandas

    layers, files = read_layers(["ward", "borough"]), api_files()

    def body(clock, extra):
        rights = [layer.copy() for layer in layers]  # no spatial index carried over from an earlier run
        n = 0
        for path in files:
            with clock("read"):
                points = plain_json_frame(path)
            with clock("reproject"):
                points = points.to_crs(27700)
            with clock("join"):
                for right in rights:
                    geopandas.sjoin(points, right, how="left", predicate="within")
            n += len(points)
        return n

    return pipeline(args.repeat, body)


# -------------------------------------------------------------- full ingest


def install_hooks(clock):
    """Time the stages of crimemap.ingest.ingest_crimes from the outside (nothing in production code)."""
    from crimemap import ingest
    from crimemap.join import AreaIndex
    from crimemap.store.sqlite import SQLiteWriter

    original_read_points = ingest.read_points

    def read_points(*args, **kwargs):
        # ingest opens a file's reader one file ahead and starts it; the timing wrapper
        # has no start(), so start it here, when ingest opens it.
        chunks = original_read_points(*args, **kwargs)
        getattr(chunks, "start", lambda: None)()
        return clock.wrap_iter("read", chunks)

    ingest.read_points = read_points
    ingest.lonlat_to_bng = clock.wrap("reproject", ingest.lonlat_to_bng)
    ingest._placement = clock.wrap("store: placement query", ingest._placement)
    ingest.build_indexes = clock.wrap("index build", ingest.build_indexes)  # every layer, side by side
    AreaIndex.assign = clock.wrap("join", AreaIndex.assign)
    for name in ("location_ids", "stage_points", "commit_staged", "unjoined_locations", "set_location_areas",
                 "layer_geometries", "finish", "log_ingest"):
        label = "store: finish (point counts)" if name == "finish" else f"store: {name}"
        setattr(SQLiteWriter, name, clock.wrap(label, getattr(SQLiteWriter, name)))


def run_ingest(args, files, levels, workdir, progress_every=None):
    """Load ``levels`` into a fresh store (not timed), then time ingest_crimes on ``files``."""
    from crimemap.config import load_settings
    from crimemap.ingest import ingest_crimes, load_boundaries
    from crimemap.store import open_store

    paths = {"ward": WARDS, "borough": BOROUGHS}
    instance = Path(tempfile.mkdtemp(prefix="instance-", dir=workdir))
    settings = load_settings(instance=instance, overrides={}, environ={})
    store = open_store(settings)
    for level in levels:
        load_boundaries(store, paths[level], level, settings=settings)
    clock = Stopwatch()
    install_hooks(clock)
    rows = [0]
    start, cpu = time.perf_counter(), time.process_time()

    def progress(n):
        rows[0] += n
        if progress_every and rows[0] % progress_every < n:
            print(json.dumps({"progress": rows[0], "seconds": time.perf_counter() - start}), flush=True)

    result = {}
    with profiled(args, result):
        report = ingest_crimes(store, files, settings=settings, progress=progress)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    summary = report.summary()
    result.update({"points": summary["rows_read"], "joined": summary["joined"], "rejected": summary["rejected"],
                   "outside": summary["outside"], "seconds": seconds, "cpu_s": cpu, "parts": dict(clock.seconds),
                   "store_mb": store.path.stat().st_size / 2**20})
    shutil.rmtree(instance, ignore_errors=True)
    return result


def case_real_ingest(args):
    """crimemap.ingest.ingest_crimes of the three API files into a fresh store with wards and boroughs."""
    return run_ingest(args, api_files(), ["borough", "ward"], args.workdir)


# -------------------------------------------------------- synthetic points


def case_generate(args):
    """Write ``--points`` rows of police.uk street CSV with distinct coordinates uniform inside the wards."""
    import shapely

    from crimemap.crs import bng_to_lonlat

    wards = read_layers(["ward"])[0]
    london = shapely.coverage_union_all(np.asarray(wards.geometry.values))
    shapely.prepare(london)
    minx, miny, maxx, maxy = london.bounds
    rng = np.random.default_rng(2018)
    taken = np.empty(0, dtype=np.int64)  # every (lon, lat) written so far, as one sorted int64 key each
    start, written = time.perf_counter(), 0
    with open(args.path, "w", encoding="utf-8", newline="") as out:
        out.write(CSV_HEADER)
        while written < args.points:
            want = min(GENERATE_ROWS, args.points - written)
            x = rng.uniform(minx, maxx, 2 * want + 1000)
            y = rng.uniform(miny, maxy, 2 * want + 1000)
            inside = shapely.contains_xy(london, x, y)
            lon, lat = bng_to_lonlat(x[inside], y[inside])
            lon_e6, lat_e6 = np.round(lon * 1e6).astype(np.int64), np.round(lat * 1e6).astype(np.int64)
            key = (lon_e6 + 10**7) * 10**9 + lat_e6
            _, first = np.unique(key, return_index=True)  # distinct within this step ...
            first = np.sort(first)
            first = first[~np.isin(key[first], taken)][:want]  # ... and from every earlier step
            taken = np.union1d(taken, key[first])
            for part in np.array_split(first, max(1, len(first) // 200_000)):  # ~50 MB of text at a time
                out.write(_csv_rows(rng, lon_e6[part], lat_e6[part]))
            written += len(first)
    return {"points": written, "seconds": time.perf_counter() - start, "bytes": os.path.getsize(args.path)}


def _csv_rows(rng, lon_e6, lat_e6):
    n = len(lon_e6)
    kind = rng.integers(0, len(CRIME_TYPES), n)
    asb = kind == 0  # anti-social behaviour has no Crime ID and no outcome, as in police.uk files
    ids = rng.bytes(32 * n).hex()
    month = rng.integers(1, 13, n)
    street = rng.integers(0, 20_000, n)
    lsoa = rng.integers(0, 4_994, n)
    outcome = rng.integers(0, len(OUTCOMES), n)
    rows = [
        f"{'' if a else ids[64 * i:64 * i + 64]},2023-{m:02d},Metropolitan Police Service,"
        f"Metropolitan Police Service,{lo / 1e6:.6f},{la / 1e6:.6f},On or near Street {s},E0100{l:04d},"
        f"Area {l:04d}X,{CRIME_TYPES[k]},{'' if a else OUTCOMES[o]},\n"
        for i, (a, m, lo, la, s, l, k, o) in enumerate(zip(asb.tolist(), month.tolist(), lon_e6.tolist(),
                                                            lat_e6.tolist(), street.tolist(), lsoa.tolist(),
                                                            kind.tolist(), outcome.tolist()))
    ]
    return "".join(rows)


def case_synth_ours(args):
    """crimemap's streaming read (read_points chunks), reprojection and AreaIndex.assign against the wards."""
    from crimemap.crs import lonlat_to_bng
    from crimemap.io.crimes import read_points

    layers = read_layers(["ward"])

    def body(clock, extra):
        with clock("index build"):
            (index,) = build_indexes(layers)
        extra["rss_before_mb"], n, extra["inside"] = peak_rss_mb(), 0, 0
        for chunk in clock.wrap_iter("read", read_points(args.path, chunk_rows=CHUNK_ROWS)):
            with clock("reproject"):
                x, y = lonlat_to_bng(chunk["lon"].to_numpy(), chunk["lat"].to_numpy())
            with clock("join"):
                # The points are distinct: assign, since de-duplicating (assign_unique) would find nothing.
                extra["inside"] += int((index.assign(x, y).index >= 0).sum())
            n += len(chunk)
        return n

    return pipeline(1, body)


def case_synth_baseline(args):
    """The plain pipeline: pandas.read_csv in chunks -> GeoDataFrame -> to_crs -> sjoin(within) with the wards."""
    import geopandas
    import pandas as pd

    (wards,) = read_layers(["ward"])

    def body(clock, extra):
        extra["rss_before_mb"], n, extra["inside"] = peak_rss_mb(), 0, 0
        for chunk in clock.wrap_iter("read", pd.read_csv(args.path, chunksize=CHUNK_ROWS)):
            with clock("reproject"):
                points = geopandas.GeoDataFrame(
                    chunk, geometry=geopandas.points_from_xy(chunk["Longitude"], chunk["Latitude"]), crs="EPSG:4326"
                ).to_crs(27700)
            with clock("join"):
                joined = geopandas.sjoin(points, wards, how="left", predicate="within")
                extra["inside"] += int(joined["index_right"].notna().sum())
            n += len(chunk)
        return n

    return pipeline(1, body)


def case_synth_ingest(args):
    """crimemap.ingest.ingest_crimes of the synthetic CSV into a fresh store with the 2018 wards."""
    return run_ingest(args, [args.path], ["ward"], args.workdir, progress_every=1_000_000)


CASES = {"real-reader": case_real_reader, "real-ours": case_real_ours, "real-baseline": case_real_baseline,
         "real-ingest": case_real_ingest, "generate": case_generate, "synth-ours": case_synth_ours,
         "synth-baseline": case_synth_baseline, "synth-ingest": case_synth_ingest}


def run_case(name, *extra, timeout=None):
    """Run one case in its own subprocess; its JSON result, or ``timeout`` and its last progress line."""
    command = [sys.executable, __file__, "--case", name, *map(str, extra)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        last = [json.loads(line) for line in out.splitlines() if line.startswith('{"progress"')]
        return {"timeout": timeout, "progress": last[-1] if last else None}
    if done.returncode != 0:
        sys.exit(f"case {name} {extra} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ report


def alternate(rounds, *cases):
    """Run the cases in turn ``rounds`` times; for each, the fastest run, with the largest peak RSS of all."""
    runs = [[] for _ in cases]
    for _ in range(rounds):
        for done, case in zip(runs, cases):
            done.append(run_case(*case))
    fastest = [min(done, key=lambda run: run["seconds"]) for done in runs]
    for run, done in zip(fastest, runs):
        run["rss_max_mb"] = max(r["rss_max_mb"] for r in done)
    return fastest


def report(args):
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    small, big = (200_000, 1_000_000) if args.quick else (1_000_000, 10_000_000)
    rounds = 1 if args.quick else 2
    profile = ("--profile",) if args.profile else ()
    workdir = tempfile.mkdtemp(prefix="crimemap-bench-")
    try:
        reader = run_case("real-reader", "--repeat", 3)
        # crimemap and the baseline take turns, so that a change in the machine's load hits both.
        ours, base = alternate(args.rounds or rounds, ("real-ours", "--repeat", 2), ("real-baseline", "--repeat", 1))
        ingest = run_case("real-ingest", "--workdir", workdir, *profile)
        synth = None if args.real_only else {}
        for n in () if args.real_only else (small, big):
            path = Path(workdir) / f"synthetic-{n}.csv"
            synth[n] = {"generate": run_case("generate", "--points", n, "--path", path)}
            if n == small or args.full_baseline:
                synth[n]["ours"], synth[n]["baseline"] = alternate(
                    rounds if n == small else 1, ("synth-ours", "--path", path), ("synth-baseline", "--path", path))
            else:
                synth[n]["ours"] = run_case("synth-ours", "--path", path)
            synth[n]["ingest"] = run_case("synth-ingest", "--path", path, "--workdir", workdir, *profile,
                                          timeout=None if n == small else INGEST_TIMEOUT_S)
            path.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    text = render(args, reader, ours, base, ingest, synth, small, big, elapsed, load_before)
    print(text)
    for name, case in [("real", ingest)] + [(f"synthetic {n:,}", synth[n]["ingest"]) for n in (small, big) if synth]:
        if case.get("profile"):
            print(f"\ncProfile of the {name} ingest (top functions by own time):\n{case['profile']}")
    if args.write and args.real_only:
        print("\n--real-only measures part of the section: --write left bench/RESULTS.md alone")
    elif args.write:
        _results.write_section(SECTION, text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="synthetic 200k and 1M rows instead of 1M and 10M")
    parser.add_argument("--write", action="store_true", help="rewrite this section of bench/RESULTS.md")
    parser.add_argument("--full-baseline", action="store_true",
                        help="also run the baseline on the larger synthetic file instead of extrapolating it")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of each ingest")
    parser.add_argument("--real-only", action="store_true",
                        help="only the real police.uk points (reader, ingest + join against the baseline, full "
                             "ingest); prints their table and targets, never writes")
    parser.add_argument("--rounds", type=int, default=None,
                        help="turns of crimemap and the baseline on the real points (default 2, 1 with --quick)")
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--points", type=int, default=1_000_000, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is None:
        report(args)
        return
    sys.path.insert(0, str(REPO))
    result = CASES[args.case](args)
    result["rss_max_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
