"""Benchmark: police.uk ``crimes-street`` for a ward polygon and ``/api/v1/choropleth``, cold and revalidated.

Run from the repository root::

    python bench/bench_policeuk_api.py            # 4 cases x 10 s at 10 clients
    python bench/bench_policeuk_api.py --quick    # 3 s per case
    python bench/bench_policeuk_api.py --write    # also rewrite its section of bench/RESULTS.md

It loads the real 2018 instance (2018 wards, LAD 2022 boroughs, 2011 LSOAs
with the mid-2020 population, the three police.uk API months 2018-03..05)
into a temporary folder (or reuses ``--instance``), starts ``crimemap serve``
(gunicorn, the configured workers and threads) on a free 127.0.0.1 port with
the rate limit off (``CRIMEMAP_POLICEUK_RATE_LIMIT=``), and drives it with
``wrk`` (the helpers of bench_postcodes_http.py). Cases:

- ``crimes-street/all-crime?poly=<West End ward, 2018 layer>&date=2018-04``
  (the ward's polygon simplified to fit police.uk's 4,094-character GET);
- ``/api/v1/choropleth?level=ward`` (every ward with web geometry);

each **cold** (a plain GET: the answer is computed and sent) and **with ETag
revalidation** (``If-None-Match`` with the current ETag: a 304 answered
before the view runs). The ratio of the two is the point: revalidation costs
one data-version query, whatever the request.
"""

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _results  # noqa: E402 - bench/ is on sys.path when a bench runs as a script
from bench_postcodes_http import (DATA, cpu_seconds, ensure_wrk, free_port, machine, process_tree, run_wrk,
                                  server)

SECTION = "## police.uk API and choropleth: requests/s and p99"
CLIENTS = 10
WARD = "E05000649"  # West End (City of Westminster), in the 2018 layer
INPUTS = {
    ("boundaries", "ward"): DATA / "boundaries" / "London-wards-2018" / "London_Ward.shp",
    ("boundaries", "borough"): DATA / "boundaries" / "london-2021-lad22-gen20.shp",
    ("boundaries", "lsoa"): DATA / "boundaries" / "london-2011-lsoa-gen20.shp",
    ("population", None): DATA / "population" / "london-mid2020-lsoa11-pop.csv",
}
LUA = """
wrk.method = "GET"
request = function()
  return wrk.format("GET", "%(path)s", %(headers)s)
end
"""


def crimemap(instance, *args):
    subprocess.run([sys.executable, "-m", "crimemap", "--instance", str(instance), *map(str, args)], check=True,
                   stdout=subprocess.DEVNULL)


def build_instance(instance):
    start = time.perf_counter()
    for (command, level), path in INPUTS.items():
        if command == "boundaries":
            crimemap(instance, "boundaries", "load", level, path)
        else:
            crimemap(instance, "population", "load", path)
    crimemap(instance, "crimes", "ingest", *sorted((DATA / "crime" / "police_uk_api_partial").glob("*.jsonl.gz")))
    return time.perf_counter() - start


def ward_poly():
    """The West End ward of the 2018 layer as a police.uk ``poly`` that fits a GET."""
    import geopandas as gpd

    wards = gpd.read_file(INPUTS[("boundaries", "ward")]).to_crs("EPSG:4326")
    geom = wards.loc[wards["GSS_CODE"] == WARD, "geometry"].iloc[0]
    geom = max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)
    tolerance = 0.000001
    while True:
        coords = list(geom.simplify(tolerance).exterior.coords)[:-1]
        poly = ":".join(f"{lat:.6f},{lon:.6f}" for lon, lat in coords)
        if len(poly) < 3800:
            return poly, len(coords)
        tolerance *= 1.5


def lua_script(folder, name, path, etag=None):
    headers = "{}" if etag is None else "{[\"If-None-Match\"] = '%s'}" % etag
    script = Path(folder) / f"{name}.lua"
    script.write_text(LUA % {"path": path, "headers": headers}, encoding="utf-8")
    return script


def measure(port, pids, script, seconds):
    run_wrk(port, script, CLIENTS, 1)  # warm-up at the level
    before = cpu_seconds(pids)
    row = run_wrk(port, script, CLIENTS, seconds)
    row["server_cpu_s"] = cpu_seconds(pids) - before
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per case instead of 10")
    parser.add_argument("--write", action="store_true", help="rewrite this section of bench/RESULTS.md")
    parser.add_argument("--instance", help="reuse an instance folder that already holds the 2018 data")
    args = parser.parse_args()
    if not ensure_wrk():
        raise SystemExit("wrk is needed (apt-get install wrk)")
    seconds = 3 if args.quick else 10
    os.environ["CRIMEMAP_POLICEUK_RATE_LIMIT"] = ""  # measure the server, not the limiter
    import requests

    with tempfile.TemporaryDirectory(prefix="bench-policeuk-") as tmp:
        instance = Path(args.instance) if args.instance else Path(tmp) / "instance"
        setup_s = 0.0 if args.instance else build_instance(instance)
        poly, vertices = ward_poly()
        cases = [("crimes-street, ward polygon", f"/api/crimes-street/all-crime?poly={poly}&date=2018-04"),
                 ("/api/v1/choropleth?level=ward", "/api/v1/choropleth?level=ward")]
        port = free_port()
        rows = []
        with server(instance, port) as proc:
            pids = process_tree(proc.pid)
            for name, path in cases:
                first = requests.get(f"http://127.0.0.1:{port}{path}", timeout=60)
                first.raise_for_status()
                etag = first.headers["ETag"]
                check = requests.get(f"http://127.0.0.1:{port}{path}", headers={"If-None-Match": etag}, timeout=60)
                if check.status_code != 304:
                    raise SystemExit(f"{name}: revalidation answered {check.status_code}, not 304")
                size = len(first.content)
                for mode, tag in (("cold", None), ("ETag revalidation (304)", etag)):
                    script = lua_script(tmp, f"case{len(rows)}", path, tag)
                    row = measure(port, pids, script, seconds)
                    row.update(case=name, mode=mode, bytes=size if tag is None else 0)
                    rows.append(row)
                    print(f"{name:32} {mode:24} {row['rps']:8.0f} req/s  p50 {row['p50_ms']:7.2f} ms  "
                          f"p99 {row['p99_ms']:7.2f} ms  non-2xx/3xx {row['non_2xx']}", flush=True)
            crimes = len(requests.get(f"http://127.0.0.1:{port}{cases[0][1]}", timeout=60).json())
    section = report(args, rows, setup_s, vertices, len(poly), crimes, seconds)
    print(section)
    if args.write:
        _results.write_section(SECTION, section)


def report(args, rows, setup_s, vertices, poly_chars, crimes, seconds):
    from crimemap.config import load_settings

    settings = load_settings(environ=os.environ)
    command = "python bench/bench_policeuk_api.py" + (" --quick" if args.quick else "")
    lines = [SECTION, "",
             f"Command: `{command}` ({datetime.date.today().isoformat()}; {machine()} at the start). Server: "
             f"`crimemap serve` = gunicorn, {settings['WORKERS']} workers × {settings['THREADS']} threads, on "
             f"127.0.0.1, rate limit off. Instance: the real 2018 one (2018 wards, LAD 2022 boroughs, 2011 LSOAs "
             f"and mid-2020 population, police.uk API months 2018-03..05){f', built in {setup_s:.0f} s' if setup_s else ''}. "
             f"Load: wrk, {CLIENTS} concurrent clients, {seconds} s per case after a 1 s warm-up.",
             f"`crimes-street` asks for the West End ward ({WARD}, 2018 layer) as a {vertices}-point `poly` "
             f"({poly_chars:,} characters, under police.uk's 4,094 GET limit), 2018-04: {crimes:,} crimes. "
             "Cold = a plain GET, computed and sent; revalidation = the same GET with `If-None-Match: <ETag>`, "
             "answered 304 before the view runs.", "",
             "| request | mode | requests/s | p50 | p99 | body | non-2xx/3xx | server CPU |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        body = f"{r['bytes'] / 1024:,.0f} KB" if r["bytes"] else "none (304)"
        lines.append(f"| {r['case']} | {r['mode']} | {r['rps']:,.0f} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms"
                     f" | {body} | {r['non_2xx']} | {r['server_cpu_s']:.1f} s |")
    ratios = [f"{rows[i + 1]['rps'] / rows[i]['rps']:.0f}× for {rows[i]['case']}" for i in range(0, len(rows), 2)]
    lines += ["", f"Revalidation against cold, requests/s: {', '.join(ratios)}. The machine has 2 cores shared "
              "by wrk, the server and anything else running; compare rows of one run, not across runs."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
