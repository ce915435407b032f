"""Benchmark: the embed page, its PNG and oEmbed against the London map page ``/`` in the same run.

Run from the repository root::

    python bench/bench_embed.py            # ~1-2 minutes: load the real data, then measure
    python bench/bench_embed.py --repeat 3 # fewer requests per case
    python bench/bench_embed.py --write    # also rewrite "Embeds" in bench/RESULTS.md

It loads the same real data as ``bench_pages.py`` (2018 wards, lad22
boroughs, 2011 LSOAs with the mid-2020 population, the police.uk API months
2018-03..05) into a temporary instance, then times in-process requests (Flask
test client) at borough and ward level:

- ``/``, the baseline: the London map page, which also draws the "Embed this map" button;
- ``/embed/map`` pinned to the current version, its snapshot already frozen (what every view of a published embed
  costs);
- ``/embed/map`` the first time an embed is made (freezing: the figures are computed and the snapshot written),
  each repetition with another crime type so that every one is a first;
- ``/embed/map.png`` at 1200 x 900 (matplotlib on the server);
- ``/oembed`` for the London map URL.

Times are medians after one warm-up; the ratio is against ``/`` at the same level in the same run.
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
from bench_pages import DATA, load

SECTION = "## Embeds"
LEVELS = ("borough", "ward")
PERIOD = {"from": "2018-03", "to": "2018-05"}
FIRST_CRIMES = ["burglary", "robbery", "vehicle-crime", "shoplifting", "drugs", "criminal-damage-arson",
                "public-order", "other-theft", "bicycle-theft", "theft-from-the-person", "possession-of-weapons"]


def timed(client, url, query=None):
    start = time.perf_counter()
    response = client.get(url, query_string=query)
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{url} {query}: {response.status_code} {response.data[:300]!r}")
    return response.data, seconds


def median_of(client, url, query, repeat):
    body, _ = timed(client, url, query)  # warm-up
    times = [timed(client, url, query)[1] for _ in range(repeat)]
    return body, statistics.median(times)


def measure(repeat):
    from crimemap.web import create_app

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp) / "instance"
        start = time.perf_counter()
        store = load(instance)
        load_s = time.perf_counter() - start
        client = create_app({"INSTANCE": str(instance)}).test_client()
        version = store.data_version()
        for level in LEVELS:
            pinned = {"level": level, "crime": "all-crime", **PERIOD, "version": version}
            base_body, base_s = median_of(client, "/", {"level": level}, repeat)
            rows.append((level, "`/` (baseline)", base_body, base_s, base_s))
            body, seconds = median_of(client, "/embed/map", pinned, repeat)
            rows.append((level, "`/embed/map`, pinned, snapshot frozen", body, seconds, base_s))
            firsts = []
            for crime in FIRST_CRIMES[:max(repeat, 1)]:
                body, seconds = timed(client, "/embed/map", dict(pinned, crime=crime))
                firsts.append(seconds)
            rows.append((level, "`/embed/map`, first view (computes and freezes the snapshot)", body,
                         statistics.median(firsts), base_s))
            body, seconds = median_of(client, "/embed/map.png", pinned, repeat)
            rows.append((level, "`/embed/map.png` 1200 x 900", body, seconds, base_s))
            body, seconds = median_of(client, "/oembed", {"url": f"http://localhost/?level={level}",
                                                          "format": "json"}, repeat)
            rows.append((level, "`/oembed` (London map URL)", body, seconds, base_s))
        snapshots = sorted((instance / "embeds").rglob("*.json.gz"))
        sizes = {path.parent.name: sum(p.stat().st_size for p in snapshots if p.parent == path.parent)
                 for path in snapshots}
        counts = {p.parent.name: sum(1 for q in snapshots if q.parent == p.parent) for p in snapshots}
    return rows, load_s, sizes, counts


def render(rows, load_s, sizes, counts, repeat, elapsed, load_at_start):
    today = datetime.date.today().isoformat()
    lines = [SECTION, "",
             f"Command: `python bench/bench_embed.py --repeat {repeat}` ({today}; {os.cpu_count()} cores, "
             f"{platform.python_implementation()} {platform.python_version()}; whole run {elapsed:.0f} s, of which "
             f"loading the data {load_s:.0f} s; load average {load_at_start:.1f} at the start). Data: the lad22 "
             "boroughs and 2018 wards with the police.uk API months 2018-03..05, embeds of 2018-03 to 2018-05. "
             f"Server time is the median of {repeat} in-process requests (Flask test client) after one warm-up; "
             "the first view is the median over that many crime types, each embedded for the first time. The "
             "ratio is against `/` at the same level in the same run. The machine is shared: times can move by "
             "up to 2x between runs, ratios less, sizes not at all.", "",
             "| level | what | raw | gzipped | server time | × `/` |", "|---|---|---|---|---|---|"]
    for level, what, body, seconds, base in rows:
        raw, gz = len(body), len(gzip.compress(body, compresslevel=6))
        lines.append(f"| {level} | {what} | {raw / 1024:,.0f} KB | {gz / 1024:,.0f} KB | {seconds * 1000:,.0f} ms | "
                     f"{seconds / base:.2f} |")
    files = ", ".join(f"`{name}/` {counts[name]} files, {size / 1024:,.0f} KB" for name, size in sorted(sizes.items()))
    lines += ["", f"Snapshots on disk after the run (`<INSTANCE>/embeds/`): {files}. The geometry files are "
              "written once per boundary layer load and shared by every snapshot of that layer.", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="requests timed per case (median reported)")
    parser.add_argument("--write", action="store_true", help="rewrite this section of bench/RESULTS.md")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"shared data not found: {DATA} (set CRIMEMAP_SHARED_DATA)")
    load_at_start = os.getloadavg()[0]
    start = time.perf_counter()
    rows, load_s, sizes, counts = measure(args.repeat)
    section = render(rows, load_s, sizes, counts, args.repeat, time.perf_counter() - start, load_at_start)
    print(section)
    if args.write:
        _results.write_section(SECTION, section)


if __name__ == "__main__":
    main()
