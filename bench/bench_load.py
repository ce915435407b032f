"""Load test: locust user journeys (bench/locustfile.py) against ``crimemap serve`` on loopback, real data.

Run from the repository root (needs ``pip install -e '.[bench]'`` for locust)::

    python bench/bench_load.py                      # 2 minutes, 50 users, the configured workers/threads
    python bench/bench_load.py --write              # also rewrite "Load test (locust)" in bench/RESULTS.md
    python bench/bench_load.py --sweep              # 30 s per workers x threads combination, no think time
    python bench/bench_load.py --users 10 --run-time 20 --max-requests 5000

It builds an instance in a temporary folder from ../shared/data (LAD 2022
boroughs, 2018 wards, 2011 LSOAs with the mid-2020 population, the three
police.uk API months 2018-03 to 2018-05 and the Code-Point Open London
extract), starts ``crimemap serve`` (gunicorn) on a free 127.0.0.1 port and
runs locust headless, bounded by ``--run-time`` and ``--max-requests``. It
reports requests/s and p50/p95/p99 per route, and the failures (any status
other than the expected one, or no answer). Locust runs on the same 2 cores
as the server; the load average at the start and the CPU seconds of the
server and of locust are reported with the figures.

``--sweep`` runs each workers x threads combination with no think time
between requests (each user sends its next request when the last one
answered), so throughput is what the server can do rather than what 50
people ask of it.
"""

import argparse
import csv
import datetime
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _results  # noqa: E402 - bench/ is on sys.path when a bench runs as a script
from bench_postcodes_http import cpu_seconds, free_port, machine, process_tree

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CRIMEMAP_SHARED_DATA", REPO.parent / "shared" / "data"))
SECTION = "## Load test (locust)"
SWEEP_SECTION = "## Load test: gunicorn workers and threads"
REPEAT_SECTION = "## Load test: workers and threads, interleaved repeats"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
SWEEP = ((1, 4), (2, 2), (2, 4), (2, 8), (3, 4), (4, 2))


def crimemap(instance, *args):
    subprocess.run([sys.executable, "-m", "crimemap", "--instance", str(instance), *map(str, args)], check=True,
                   stdout=subprocess.DEVNULL)


def build_instance(instance):
    start = time.perf_counter()
    crimemap(instance, "boundaries", "load", "borough", DATA / "boundaries" / "london-2021-lad22-gen20.shp")
    crimemap(instance, "boundaries", "load", "ward", DATA / "boundaries" / "London-wards-2018" / "London_Ward.shp")
    crimemap(instance, "boundaries", "load", "lsoa", DATA / "boundaries" / "london-2011-lsoa-gen20.shp")
    crimemap(instance, "population", "load", DATA / "population" / "london-mid2020-lsoa11-pop.csv")
    crimemap(instance, "crimes", "ingest", *sorted((DATA / "crime" / "police_uk_api_partial").glob("*.jsonl.gz")))
    crimemap(instance, "postcodes", "refresh", DATA / "postcodes" / "codepoint_open_2025-10_london.csv.gz")
    return time.perf_counter() - start


def write_inputs(base, target, seed=7):
    """The journeys' inputs, from the running server and the postcode file."""
    import requests

    rng = random.Random(seed)
    with gzip.open(DATA / "postcodes" / "codepoint_open_2025-10_london.csv.gz", "rt", encoding="utf-8") as fh:
        next(fh)
        rows = [line.split(",") for line in fh]
    chosen = rng.sample(rows, 3000)
    areas = {}
    for level in ("borough", "ward"):
        features = requests.get(f"{base}/api/v1/choropleth?level={level}&geometry=none", timeout=120).json()
        areas[level] = [f["id"] for f in features["features"]]
    types = [t["id"] for t in requests.get(f"{base}/api/v1/crime-types", timeout=60).json()["crime_types"]
             if t["loaded"] and "police.uk" in t["answered_by"]]
    inputs = {"postcodes": [r[0] for r in chosen[:2000]],
              "points": [[float(r[10]), float(r[11])] for r in chosen[2000:2300]],
              "areas": areas, "crime_types": types}
    target.write_text(json.dumps(inputs), encoding="utf-8")
    return inputs


class Server:
    """``crimemap serve`` with the given workers and threads; the access log goes to a file."""

    def __init__(self, instance, workers, threads):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(instance).parent / f"serve-{workers}x{threads}.log", "w", encoding="utf-8")
        # The access log on, into the log file, as in the recorded runs (it is off by default since the
        # postcode fast path work; one line costs about 65 µs of server CPU).
        env = dict(os.environ, PYTHONUNBUFFERED="1", CRIMEMAP_THREADS=str(threads), CRIMEMAP_ACCESS_LOG="-")
        self.proc = subprocess.Popen([sys.executable, "-m", "crimemap", "--instance", str(instance), "serve",
                                      "--port", str(self.port), "--workers", str(workers)], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait(self, inputs=None):
        import requests

        deadline = time.monotonic() + 180
        while True:
            try:
                requests.get(self.base + "/api/v1/status", timeout=60).raise_for_status()
                break
            except (requests.ConnectionError, requests.Timeout):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("server did not start")
                time.sleep(0.5)
        if inputs:  # warm every worker: the first postcode lookup and the first map build their caches
            session = requests.Session()
            for _ in range(4):
                for level in ("borough", "ward"):
                    session.get(f"{self.base}/?level={level}", timeout=120)
                    session.get(f"{self.base}/api/v1/choropleth?level={level}", timeout=120)
                    session.get(f"{self.base}/embed/map?level={level}", timeout=120)
                session.get(f"{self.base}/search?q={inputs['postcodes'][0]}", timeout=120)

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()


def run_locust(base, inputs_path, users, seconds, max_requests, prefix, think=True):
    env = dict(os.environ, CRIMEMAP_LOAD_INPUTS=str(inputs_path), CRIMEMAP_LOAD_THINK="1" if think else "0")
    cmd = ["locust", "-f", str(LOCUSTFILE), "--headless", "--host", base, "-u", str(users),
           "-r", str(max(1, users // 5)), "-t", f"{seconds}s", "--max-requests", str(max_requests),
           "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "10"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=seconds + 300)
    return proc.pid, out


def read_stats(prefix):
    with open(f"{prefix}_stats.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    failures = []
    if Path(f"{prefix}_failures.csv").exists():
        with open(f"{prefix}_failures.csv", encoding="utf-8") as fh:
            failures = list(csv.DictReader(fh))
    return rows, failures


def one_run(instance, inputs_path, inputs, workers, threads, users, seconds, max_requests, folder, think):
    server = Server(instance, workers, threads)
    try:
        server.wait(inputs)
        pids = process_tree(server.proc.pid)
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        cpu0 = cpu_seconds(pids)
        wall0 = time.monotonic()
        usage0 = os.times()
        _, out = run_locust(server.base, inputs_path, users, seconds, max_requests,
                            folder / f"locust-{workers}x{threads}", think)
        usage1 = os.times()
        wall = time.monotonic() - wall0
        server_cpu = cpu_seconds(pids) - cpu0
    finally:
        server.stop()
    rows, failures = read_stats(folder / f"locust-{workers}x{threads}")
    client_cpu = (usage1.children_user + usage1.children_system) - (usage0.children_user + usage0.children_system)
    return {"workers": workers, "threads": threads, "rows": rows, "failures": failures, "load": load,
            "server_cpu": server_cpu, "client_cpu": client_cpu, "wall": wall, "log": out}


def _total(result):
    return next(r for r in result["rows"] if r["Name"] == "Aggregated")


def _f(row, key):
    value = row.get(key, "")
    return float(value) if value not in ("", "N/A") else float("nan")


def table(result):
    lines = ["| route | requests | failures | requests/s | p50 | p95 | p99 |", "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        name = "**all routes**" if row["Name"] == "Aggregated" else f"`{row['Type']} {row['Name']}`"
        lines.append(f"| {name} | {int(row['Request Count']):,} | {int(row['Failure Count'])} | "
                     f"{_f(row, 'Requests/s'):.1f} | {_f(row, '50%'):.0f} ms | {_f(row, '95%'):.0f} ms | "
                     f"{_f(row, '99%'):.0f} ms |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--run-time", type=int, default=120, help="seconds of load")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests")
    parser.add_argument("--workers", type=int, default=None, help="default: the WORKERS setting (2)")
    parser.add_argument("--threads", type=int, default=None, help="default: the THREADS setting (4)")
    parser.add_argument("--sweep", action="store_true", help="try workers x threads combinations, no think time")
    parser.add_argument("--sweep-time", type=int, default=30, help="seconds per combination in --sweep")
    parser.add_argument("--combos", default=None,
                        help="with --sweep: the combinations to run, in order, e.g. 2x4,2x8,2x4,2x8 (repeats allowed)")
    parser.add_argument("--write", action="store_true", help="rewrite this section of bench/RESULTS.md")
    args = parser.parse_args()

    from crimemap.config import DEFAULTS

    workers = args.workers or DEFAULTS["WORKERS"]
    threads = args.threads or DEFAULTS["THREADS"]
    with tempfile.TemporaryDirectory(prefix="crimemap-load-") as tmp:
        folder = Path(tmp)
        instance = folder / "instance"
        print("building the instance ...", file=sys.stderr)
        setup_s = build_instance(instance)
        server = Server(instance, 1, 2)
        try:
            server.wait()
            inputs = write_inputs(server.base, folder / "inputs.json")
        finally:
            server.stop()
        if args.sweep:
            results = []
            combos = SWEEP if not args.combos else [tuple(map(int, c.split("x"))) for c in args.combos.split(",")]
            for w, t in combos:
                print(f"sweep: {w} workers x {t} threads ...", file=sys.stderr)
                results.append(one_run(instance, folder / "inputs.json", inputs, w, t, args.users, args.sweep_time,
                                       args.max_requests, folder, think=False))
                total = _total(results[-1])
                print(f"  {_f(total, 'Requests/s'):.1f} requests/s, p99 {_f(total, '99%'):.0f} ms, "
                      f"{int(total['Failure Count'])} failures, load {results[-1]['load']}", file=sys.stderr)
            text = sweep_report(args, results, setup_s)
        else:
            result = one_run(instance, folder / "inputs.json", inputs, workers, threads, args.users, args.run_time,
                             args.max_requests, folder, think=True)
            text = run_report(args, result, setup_s)
    print(text)
    if args.write:
        title = (REPEAT_SECTION if args.combos else SWEEP_SECTION) if args.sweep else SECTION
        _results.write_section(title, text)


def _command(args):
    parts = ["python bench/bench_load.py"]
    if args.sweep:
        parts += ["--sweep", f"--sweep-time {args.sweep_time}"] + ([f"--combos {args.combos}"] if args.combos else [])
    else:
        parts += [f"--run-time {args.run_time}"]
        if args.workers:
            parts.append(f"--workers {args.workers}")
        if args.threads:
            parts.append(f"--threads {args.threads}")
    parts += [f"--users {args.users}", f"--max-requests {args.max_requests}"]
    return " ".join(parts + (["--write"] if args.write else []))


INSTANCE_TEXT = ("Instance (built in {setup:.0f} s from ../shared/data): LAD 2022 boroughs, 2018 wards, 2011 LSOAs "
                 "with the mid-2020 population, the police.uk API months 2018-03 to 2018-05 (25 boroughs) and the "
                 "Code-Point Open London extract.")
JOURNEYS = ("Journeys (bench/locustfile.py): postcode search (a random real postcode in any spelling, 302) then the "
            "ward page; the London map and its choropleth JSON switching borough/ward and two crime types; "
            "`/embed/map`; `/api/v1/areas/<level>/<code>` and police.uk's `/api/crimes-street/all-crime` one mile "
            "around a random postcode.")


def run_report(args, result, setup_s):
    total = _total(result)
    today = datetime.date.today().isoformat()
    lines = [SECTION, "",
             f"Command: `{_command(args)}` ({today}; {machine()} before the build; load average {result['load']} "
             f"at the start of the run). Server: `crimemap serve` = gunicorn, {result['workers']} workers × "
             f"{result['threads']} threads (gthread), access log on, on 127.0.0.1. "
             + INSTANCE_TEXT.format(setup=setup_s) + " " + JOURNEYS +
             f" Load: locust, {args.users} users each waiting 0.5 to 2 s between journeys, for {args.run_time} s "
             f"or {args.max_requests:,} requests, on the same 2 cores as the server.", "",
             f"Result: **{int(total['Request Count']):,} requests in {result['wall']:.0f} s, "
             f"{_f(total, 'Requests/s'):.1f} requests/s, {int(total['Failure Count'])} errors**; p50 "
             f"{_f(total, '50%'):.0f} ms, p95 {_f(total, '95%'):.0f} ms, p99 {_f(total, '99%'):.0f} ms over all "
             f"routes. CPU: server {result['server_cpu']:.0f} s, locust {result['client_cpu']:.0f} s of "
             f"{2 * result['wall']:.0f} core-seconds.", ""]
    lines += table(result)
    if result["failures"]:
        lines += ["", "Failures:"] + [f"- {f['Method']} {f['Name']}: {f['Error']} ({f['Occurrences']})"
                                      for f in result["failures"]]
    return "\n".join(lines) + "\n"


def sweep_report(args, results, setup_s):
    today = datetime.date.today().isoformat()
    lines = [REPEAT_SECTION if args.combos else SWEEP_SECTION, "",
             f"Command: `{_command(args)}` ({today}; {machine()} before the build). Each combination: a fresh "
             f"`crimemap serve --workers W` with `CRIMEMAP_THREADS=T`, warmed, then locust with {args.users} "
             f"users and no think time for {args.sweep_time} s (closed loop: the throughput is what the server "
             "manages, not what the users ask). " + INSTANCE_TEXT.format(setup=setup_s) + " Same journeys as "
             "above. Load average at the start of each combination in the table: the machine is shared, so "
             "compare rows with similar load.", "",
             "| workers × threads | requests/s | p50 | p95 | p99 | requests | errors | server CPU | locust CPU "
             "| load |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        total = _total(result)
        lines.append(f"| {result['workers']} × {result['threads']} | {_f(total, 'Requests/s'):.1f} | "
                     f"{_f(total, '50%'):.0f} ms | {_f(total, '95%'):.0f} ms | {_f(total, '99%'):.0f} ms | "
                     f"{int(total['Request Count']):,} | {int(total['Failure Count'])} | "
                     f"{result['server_cpu']:.0f} s | {result['client_cpu']:.0f} s | {result['load']} |")
    best = max(results, key=lambda r: _f(_total(r), "Requests/s"))
    lines += ["", f"Most throughput in this run: {best['workers']} workers × {best['threads']} threads "
              f"({_f(_total(best), 'Requests/s'):.1f} requests/s)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
