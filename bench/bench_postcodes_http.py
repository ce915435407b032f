"""Benchmark: ``GET /api/v1/postcodes/<pc>`` over HTTP against the production server.

Run from the repository root::

    python bench/bench_postcodes_http.py            # ~6 minutes: 1, 10 and 50 clients, 10 s each, 3 rounds
    python bench/bench_postcodes_http.py --quick    # 3 s per level
    python bench/bench_postcodes_http.py --rounds 5 # more interleaved rounds (medians reported)
    python bench/bench_postcodes_http.py --write    # also rewrite "Postcode lookup (HTTP)" in bench/RESULTS.md
    python bench/bench_postcodes_http.py --profile  # where the time of one request goes, in process

It builds an instance (the 2022 approximate wards, the LAD 2022 boroughs and
the Code-Point Open London extract from ../shared/data) in a temporary
folder, starts three servers (gunicorn, the configured
workers and threads) on free 127.0.0.1 ports, and drives them with ``wrk``
(Debian package ``wrk``; installed with apt-get when missing and running as
root):

- **current**: the configured server (the postcode fast path on, no access
  log, as shipped);
- **baseline**: the same server with every request through Flask and the
  access log on (``POSTCODES_FAST_PATH=0``, ``ACCESS_LOG=-``), as before the
  fast path;
- **floor**: gunicorn with the same settings serving a do-nothing WSGI app
  (``bench/_floor_wsgi.py``): what the server and the machine cost alone, so
  a busy machine's share of p99 can be told from the app's.

Each level is ``wrk -t1 -cN -dS --latency`` with a Lua script cycling through
2,000 random real postcodes in a random spelling (lower case, no space),
after a warm-up (3 s at 50 clients, so every worker has built its lookup,
then 1 s at the level). The servers take turns, level by level and round
by round (the order alternates), so a busy machine weighs on all alike; the
table gives the median of the rounds. wrk is a closed loop: each of the N
connections sends its next request when the last answer arrives, so N is the
number of concurrent clients.

The load generator shares the machine's 2 cores with the server, unpinned:
the kernel schedules wrk (one thread) and the gunicorn workers on either
core. The script reads the CPU time used by the gunicorn processes and by
wrk from /proc and reports both, and the load average before and after.
Without wrk, ``--python`` uses a thread pool of ``requests.Session`` clients
instead; it is much slower than the server, so its figures measure the
client more than the server.
"""

import argparse
import contextlib
import cProfile
import datetime
import gzip
import io
import os
import platform
import pstats
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _results  # noqa: E402 - bench/ is on sys.path when a bench runs as a script

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the crimemap package of this checkout, installed or not
DATA = Path(os.environ.get("CRIMEMAP_SHARED_DATA", REPO.parent / "shared" / "data"))
WARDS = DATA / "boundaries" / "london-wards-2022-approx.gpkg"
BOROUGHS = DATA / "boundaries" / "london-2021-lad22-gen20.shp"
POSTCODES = DATA / "postcodes" / "codepoint_open_2025-10_london.csv.gz"
SECTION = "## Postcode lookup (HTTP)"
LEVELS = (1, 10, 50)
SAMPLE = 2000

LUA = """
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local i = math.random(#paths)
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


# ------------------------------------------------------------------ setup


def crimemap(instance, *args):
    subprocess.run([sys.executable, "-m", "crimemap", "--instance", str(instance), *map(str, args)], check=True,
                   stdout=subprocess.DEVNULL)


def build_instance(instance):
    start = time.perf_counter()
    crimemap(instance, "boundaries", "load", "ward", WARDS)
    crimemap(instance, "boundaries", "load", "borough", BOROUGHS)
    crimemap(instance, "postcodes", "refresh", POSTCODES)
    return time.perf_counter() - start


def sample_paths(n, seed=3):
    with gzip.open(POSTCODES, "rt", encoding="utf-8") as f:
        next(f)
        postcodes = [line.split(",", 1)[0] for line in f]
    rng = random.Random(seed)
    chosen = rng.sample(postcodes, n)
    # Users type postcodes every way: half canonical, half lower case without the space.
    spelt = [pc if i % 2 else pc.lower().replace(" ", "") for i, pc in enumerate(chosen)]
    return ["/api/v1/postcodes/" + pc.replace(" ", "%20") for pc in spelt]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(instance, port, env=None, name="serve", floor_of=None):
    """``crimemap serve`` on ``port``; with ``floor_of`` (settings), gunicorn serving bench/_floor_wsgi.py instead."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    log = open(Path(instance) / f"{name}.log", "w", encoding="utf-8")
    if floor_of is None:
        command = [sys.executable, "-m", "crimemap", "--instance", str(instance), "serve", "--port", str(port)]
    else:  # the same worker class, workers, threads and keep-alive as crimemap/server.py
        command = [sys.executable, "-m", "gunicorn", "--pythonpath", str(Path(__file__).parent), "--bind",
                   f"127.0.0.1:{port}", "--worker-class", "gthread", "--workers", str(floor_of["WORKERS"]),
                   "--threads", str(floor_of["THREADS"]), "--keep-alive", "5", "_floor_wsgi:app"]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        import requests

        deadline = time.monotonic() + 120
        while True:
            try:
                # The first lookup in a worker joins every postcode to the wards (a second or two).
                requests.get(f"http://127.0.0.1:{port}/api/v1/postcodes/SW1A1AA", timeout=60)
                break
            except (requests.ConnectionError, requests.Timeout):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("server did not start; see " + log.name) from None
                time.sleep(0.3)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def process_tree(pid):
    """pid and every descendant (gunicorn's arbiter and its workers)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids):
    """User + system CPU seconds of the processes (those still alive)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


# ------------------------------------------------------------------ load generators


def ensure_wrk():
    if shutil.which("wrk"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk from Debian (apt-get install wrk)", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") is not None


def _ms(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_wrk(port, script, clients, seconds):
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", script, url],
                            stdout=subprocess.PIPE, text=True)
    wrk_cpu = 0.0
    while proc.poll() is None:
        wrk_cpu = max(wrk_cpu, cpu_seconds([proc.pid]))
        time.sleep(0.2)
    out = proc.stdout.read()
    if proc.returncode:
        raise SystemExit(f"wrk failed:\n{out}")
    dist = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)\s*$", out, flags=re.M))
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)$", out, flags=re.M)
    return {"p50_ms": _ms(dist["50"]), "p99_ms": _ms(dist["99"]), "rps": float(re.search(r"Requests/sec:\s+([\d.]+)",
                                                                                       out).group(1)),
            "requests": requests_done, "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else "", "client_cpu_s": wrk_cpu,
            "raw": out}


def run_python(port, paths, clients, seconds):
    import requests

    url = f"http://127.0.0.1:{port}"
    stop = time.monotonic() + seconds
    latencies, bad = [], [0]
    lock = threading.Lock()

    def client(k):
        session = requests.Session()
        mine, i = [], k * 97
        while time.monotonic() < stop:
            i = (i + 1) % len(paths)
            t0 = time.perf_counter()
            response = session.get(url + paths[i], timeout=10)
            mine.append((time.perf_counter() - t0) * 1e3)
            if response.status_code != 200:
                with lock:
                    bad[0] += 1
        with lock:
            latencies.extend(mine)

    before = time.process_time()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50_ms": q[49], "p99_ms": q[98], "rps": len(latencies) / wall, "requests": len(latencies),
            "non_2xx": bad[0], "socket_errors": "", "client_cpu_s": time.process_time() - before, "raw": ""}


# ------------------------------------------------------------------ in-process profile


def profile(instance, paths, n=3000):
    """Where one request's time goes: the lookup, JSON, and Flask's own dispatch, in process."""
    from flask import json as flask_json

    from crimemap.postcodes import get_lookup, resolve
    from crimemap.web import create_app, get_store

    app = create_app({"INSTANCE": str(instance)})
    names = [p.rsplit("/", 1)[1].replace("%20", " ") for p in paths]
    with app.app_context():
        lookup = get_lookup(app.config, get_store())
        t0 = time.perf_counter()
        for i in range(n):
            get_lookup(app.config, get_store())
        t_get = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        results = [resolve(lookup, names[i % len(names)]) for i in range(n)]
        t_resolve = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for r in results:
            flask_json.dumps({"status": 200, "result": r})
        t_json = (time.perf_counter() - t0) / n
    from werkzeug.test import EnvironBuilder

    # Prebuilt WSGI environs: what gunicorn hands Flask, without the test client's own URL work.
    environs = [EnvironBuilder(path=p.replace("%20", " ")).get_environ() for p in paths]

    def call(i, wsgi=app.wsgi_app):
        body = wsgi(dict(environs[i % len(environs)]), lambda status, headers, exc_info=None: None)
        b"".join(body)

    flask_only = getattr(app.wsgi_app, "wrapped", app.wsgi_app)  # behind the fast path: Flask's own wsgi_app
    for i in range(200):
        call(i)
        call(i, flask_only)
    t0 = time.perf_counter()
    for i in range(n):
        call(i, flask_only)
    t_flask = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for i in range(n):
        call(i)
    t_full = (time.perf_counter() - t0) / n
    prof = cProfile.Profile()
    prof.enable()
    for i in range(n):
        call(i)
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(12)
    return {"get_lookup_us": t_get * 1e6, "resolve_us": t_resolve * 1e6, "json_us": t_json * 1e6,
            "full_request_us": t_full * 1e6, "flask_request_us": t_flask * 1e6, "top": text.getvalue()}


# ------------------------------------------------------------------ report


def machine():
    return f"{os.cpu_count()} cores, CPython {platform.python_version()}"


def load_average():
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


# The servers the bench compares, each a name, a label and CRIMEMAP_* settings; "floor" is gunicorn with
# the same settings serving a do-nothing app (bench/_floor_wsgi.py): what the server and machine cost alone.
SERVERS = (
    ("current", "fast path, no access log (as shipped)", {}),
    ("baseline", "Flask route, access log on (before)", {"CRIMEMAP_POSTCODES_FAST_PATH": "0",
                                                         "CRIMEMAP_ACCESS_LOG": "-"}),
    ("floor", "gunicorn serving a do-nothing app", {}),
)


def _median(rows, key):
    return statistics.median(r[key] for r in rows)


def report(args, results, setup_s, settings, generator, prof, loads):
    """The RESULTS.md section: medians per level and server, every 10-client round, and the targets."""
    today = datetime.date.today().isoformat()
    command = "python bench/bench_postcodes_http.py" + (" --quick" if args.quick else "") + \
        (f" --rounds {args.rounds}" if args.rounds != 3 else "") + (" --python" if args.python else "")
    seconds = results[0]["seconds"]
    lines = [SECTION, "",
             f"Command: `{command}` ({today}; {machine()}; load average {loads[0]:.2f} at the start, "
             f"{loads[1]:.2f} at the end). Servers: `crimemap serve` = gunicorn, {settings['WORKERS']} workers "
             f"× {settings['THREADS']} threads (gthread), on 127.0.0.1: **current** as shipped (the postcode "
             f"fast path, no access log) and **baseline** with `POSTCODES_FAST_PATH=0 ACCESS_LOG=-` (every "
             f"request through Flask, one access line each: the server before the fast path); **floor** is "
             f"gunicorn with the same settings serving a do-nothing app (`bench/_floor_wsgi.py`, a fixed "
             f"440-byte JSON body): what gunicorn, the sockets and the machine cost alone. Instance: 2022 "
             f"approximate wards + LAD 2022 boroughs + the Code-Point Open London extract (180,792 postcodes), "
             f"built in {setup_s:.0f} s. Requests: `GET /api/v1/postcodes/<pc>` over {SAMPLE:,} random real "
             f"postcodes, half typed lower case without the space. {generator}", "",
             "| clients | server | requests/s | p50 | p99 | non-200 | server CPU per request | client CPU |",
             "|---|---|---|---|---|---|---|---|"]
    for clients in LEVELS:
        for name, label, _ in SERVERS:
            rows = [r for r in results if r["clients"] == clients and r["server"] == name]
            cpu_us = statistics.median(1e6 * r["server_cpu_s"] / max(r["requests"], 1) for r in rows)
            bad = sum(r["non_2xx"] for r in rows)
            errors = "; ".join(r["socket_errors"] for r in rows if r["socket_errors"])
            lines.append(f"| {clients} | {name} | {_median(rows, 'rps'):,.0f} | {_median(rows, 'p50_ms'):.2f} ms | "
                         f"{_median(rows, 'p99_ms'):.2f} ms | {bad}{' (' + errors + ')' if errors else ''} | "
                         f"{cpu_us:.0f} µs | {_median(rows, 'client_cpu_s'):.1f} s |")
    rounds = max(r["round"] for r in results) + 1
    lines += ["", f"Medians of {rounds} rounds of {seconds} s per level and server, the servers taking turns "
              "(alternating order) so that a busy machine weighs on all alike; every level after a 3 s warm-up "
              "of every worker at 50 clients and 1 s at the level. Server CPU per request is the gunicorn "
              "processes' user + system CPU over the level divided by the requests answered; client CPU is "
              f"wrk's, of {2 * seconds} core-seconds available on 2 cores per level."]
    at10 = {name: [r for r in results if r["clients"] == 10 and r["server"] == name] for name, _, _ in SERVERS}
    held = {name: sum(r["p99_ms"] < 10 for r in rows) for name, rows in at10.items()}
    n10 = len(at10["current"])
    lines += ["", "At 10 clients, round by round (1-minute load average when the round started): current p99 " +
              ", ".join(f"{r['p99_ms']:.1f} ms ({r['load']:.1f})" for r in at10["current"]) +
              "; baseline p99 " + ", ".join(f"{r['p99_ms']:.1f} ms" for r in at10["baseline"]) +
              "; floor p99 " + ", ".join(f"{r['p99_ms']:.1f} ms" for r in at10["floor"]) +
              f". p99 under 10 ms at 10 clients held in **{held['current']} of {n10}** rounds of the current "
              f"server ({held['baseline']} of {n10} for the baseline, {held['floor']} of {n10} for the floor); "
              f"requests/s at 10 clients {_median(at10['current'], 'rps'):,.0f} "
              f"({_median(at10['current'], 'rps') / _median(at10['baseline'], 'rps'):.1f}× the baseline's).",
              "",
              "Targets: p99 under 10 ms at 10 clients, and at least 2,000 requests/s. The machine is shared: a "
              "load average above 2 means other processes competed for the 2 cores, and p99 then measures the "
              "scheduler as much as the server (the floor row shows how much: a server that does nothing); "
              "expect large swings between runs."]
    if prof:
        current10 = at10["current"]
        per_request = statistics.median(1e6 * r["server_cpu_s"] / r["requests"] for r in current10)
        lines += ["", "Where one request's time goes. In process, without HTTP: `get_lookup` "
                  f"{prof['get_lookup_us']:.1f} µs, `resolve` {prof['resolve_us']:.1f} µs and JSON encoding by Flask's "
                  f"encoder {prof['json_us']:.1f} µs (the fast path uses orjson); the whole request through the fast path {prof['full_request_us']:.0f} "
                  f"µs, and through Flask's WSGI app (routing, request and response objects, the hooks) "
                  f"{prof['flask_request_us']:.0f} µs. Over HTTP the current server spent {per_request:.0f} µs "
                  "of CPU per request at 10 clients: the rest is gunicorn (HTTP parsing, the gthread pool) and "
                  "sockets."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per level instead of 10")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per level and server (3)")
    parser.add_argument("--write", action="store_true", help="rewrite this section of bench/RESULTS.md")
    parser.add_argument("--python", action="store_true", help="use a requests.Session thread pool, not wrk")
    parser.add_argument("--profile", action="store_true", help="also profile one request in process")
    parser.add_argument("--instance", help="reuse an instance folder that already has the lookup loaded")
    parser.add_argument("--workers", type=int, help="gunicorn workers (CRIMEMAP_WORKERS; default from config)")
    parser.add_argument("--threads", type=int, help="threads per worker (CRIMEMAP_THREADS; default from config)")
    args = parser.parse_args()
    for path in (WARDS, BOROUGHS, POSTCODES):
        if not path.exists():
            raise SystemExit(f"missing {path}; set CRIMEMAP_SHARED_DATA")
    use_wrk = not args.python and ensure_wrk()
    if not args.python and not use_wrk:
        print("wrk is not installed; falling back to --python", file=sys.stderr)
        args.python = True
    seconds = 3 if args.quick else 10
    if args.workers:
        os.environ["CRIMEMAP_WORKERS"] = str(args.workers)
    if args.threads:
        os.environ["CRIMEMAP_THREADS"] = str(args.threads)

    from crimemap.config import load_settings

    def load(port, clients, secs):
        return run_wrk(port, str(script), clients, secs) if use_wrk else run_python(port, paths, clients, secs)

    with tempfile.TemporaryDirectory(prefix="crimemap-bench-") as tmp:
        instance = Path(args.instance) if args.instance else Path(tmp) / "instance"
        setup_s = 0.0 if args.instance else build_instance(instance)
        settings = load_settings(instance=instance)
        paths = sample_paths(SAMPLE)
        script = Path(tmp) / "paths.lua"
        (Path(tmp) / "paths.txt").write_text("\n".join(paths) + "\n", encoding="utf-8")
        script.write_text(LUA % {"paths": Path(tmp) / "paths.txt"}, encoding="utf-8")
        results = []
        loads = [load_average()]
        with contextlib.ExitStack() as stack:
            ports, pids = {}, {}
            for name, _, env in SERVERS:
                ports[name] = free_port()
                proc = stack.enter_context(server(instance, ports[name], env=env, name=f"serve-{name}",
                                                  floor_of=settings if name == "floor" else None))
                pids[name] = process_tree(proc.pid)
                # Every worker builds its lookup's areas on its first request: warm them all up first.
                load(ports[name], 50, 3)
            for clients in LEVELS:
                for round_ in range(args.rounds):
                    order = SERVERS if round_ % 2 == 0 else SERVERS[::-1]
                    for name, _, _ in order:
                        load(ports[name], clients, 1)
                        before, load_now = cpu_seconds(pids[name]), load_average()
                        row = load(ports[name], clients, seconds)
                        row.update(clients=clients, seconds=seconds, server=name, round=round_, load=load_now,
                                   server_cpu_s=cpu_seconds(pids[name]) - before)
                        results.append(row)
                        print(f"{clients:>3} clients, {name:<8} round {round_}: {row['rps']:,.0f} req/s, p50 "
                              f"{row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, {row['non_2xx']} non-200, "
                              f"load {load_now:.1f}", file=sys.stderr)
        loads.append(load_average())
        prof = profile(instance, paths) if args.profile else None
        generator = ("Load: `wrk -t1 -cN` (one wrk thread, N keep-alive connections), unpinned on the same 2 "
                     "cores as the server (no `taskset`: the kernel places wrk and the workers)." if use_wrk else
                     "Load: a thread pool of N `requests.Session` clients in one Python process, on the same 2 "
                     "cores as the server (the client, not the server, is the bottleneck).")
        text = report(args, results, setup_s, settings, generator, prof, loads)
        print(text)
        if prof:
            print(prof["top"])
        if args.write:
            _results.write_section(SECTION, text)


if __name__ == "__main__":
    main()
