"""Benchmark: vector tiles, cold and cached, against the GeoJSON choropleth and a naive per-request build.

Run from the repository root::

    python bench/bench_tiles.py            # ~2-3 minutes: load the real data, then measure
    python bench/bench_tiles.py --write    # also rewrite "Vector tiles" in bench/RESULTS.md

It loads the same real data as ``bench_pages.py`` (2018 wards, lad22
boroughs, 2011 LSOAs with the mid-2020 population, the police.uk API months
2018-03..05) into a temporary instance and times in-process requests (Flask
test client) with TILES_DIR in a temporary folder, for wards and LSOAs at
zoom ``--zoom`` (12 by default), every tile that touches the layer:

- **cold**: no tile on disk (each is built: clip, encode, write), the layer's
  figures and simplified geometry already in the process (what a server
  that has answered one tile of the query pays per tile);
- **cached**: the same tiles again, read from ``tiles/``;
- **naive**: the baseline: a tile built with nothing kept between requests
  (figures and geometry recomputed per tile), on a few tiles;
- **GeoJSON**: the other baseline: ``/api/v1/choropleth`` for the whole
  layer (wards only: the API has no LSOA level), the one request a GeoJSON
  map makes.

It also reports the size of the z12 ward tile over central London (Trafalgar
Square) and the spread of tile sizes.
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

SECTION = "## Vector tiles"
LEVELS = ("ward", "lsoa")
CENTRAL = (-0.1281, 51.5080)  # Trafalgar Square
NAIVE_TILES = 5
NAIVE_QUERY = "?from=2017-07&to=2018-05"  # 11 months instead of the default 12: as much work, another cache key


def _tile_of(lon, lat, z):
    import math

    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _get(client, url):
    start = time.perf_counter()
    response = client.get(url)
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code} {response.data[:300]!r}")
    return response, seconds


def _clear_process_caches():
    from crimemap.tiles import build

    with build._lock:
        build._GEOMETRY.clear()
        build._FIGURES.clear()


def measure(zoom, repeat):
    from crimemap.tiles import TileOptions, tiles_covering
    from crimemap.tiles.build import layer_geometry
    from crimemap.web import create_app

    folder = Path(tempfile.mkdtemp(prefix="bench-tiles-"))
    start = time.perf_counter()
    store = load(folder / "instance")
    load_s = time.perf_counter() - start
    app = create_app({"INSTANCE": str(folder / "instance"), "TESTING": True, "TILES_DIR": str(folder / "tiles")})
    client = app.test_client()
    options = TileOptions.from_config(app.config)
    rows, sizes = [], {}
    for level in LEVELS:
        layer = store.layer(level)
        bounds = layer_geometry(store, layer, options.full_detail_zoom, options).bounds
        central = _tile_of(*CENTRAL, zoom)
        # The central tile first: the first tile of a query pays for its figures and geometry.
        urls = [f"/tiles/{level}/{z}/{x}/{y}.pbf" for z, x, y in
                sorted(tiles_covering(bounds, zoom), key=lambda t: (t[1], t[2]) != central)]
        _clear_process_caches()
        _first, first_s = _get(client, urls[0])  # figures and geometry of the layer, once
        cold = [_get(client, url) for url in urls[1:]]
        if any(r.headers["X-Tile-Cache"] != "miss" for r, _ in cold):
            raise SystemExit("a cold tile came from the cache")
        kept = [url for url, (r, _) in zip(urls[1:], cold) if r.data]  # empty tiles are not written
        cached = [_get(client, url) for url in kept]
        if any(r.headers["X-Tile-Cache"] != "hit" for r, _ in cached):
            raise SystemExit("a cached tile was built again")
        naive = []
        for url in kept[:NAIVE_TILES]:
            _clear_process_caches()
            # Another period, so another query key: built, not read from disk.
            response, seconds = _get(client, url + NAIVE_QUERY)
            if response.headers["X-Tile-Cache"] != "miss" or not response.data:
                raise SystemExit("a naive tile was not built")
            naive.append(seconds)
        cold_s = sum(s for _, s in cold)
        cached_s = sum(s for _, s in cached)
        rows.append({"level": level, "tiles": len(urls), "kept": len(kept), "first_s": first_s, "cold_tps": len(cold) / cold_s,
                     "cached_tps": len(cached) / cached_s, "naive_tps": len(naive) / sum(naive),
                     "bytes": [len(r.data) for r, _ in cold if r.data]})
        sizes[level] = sorted(len(r.data) for r, _ in cold if r.data)
    x, y = _tile_of(*CENTRAL, 12)
    ward_tile, _ = _get(client, f"/tiles/ward/12/{x}/{y}.pbf")
    geojson = [_get(client, "/api/v1/choropleth?level=ward")[1] for _ in range(repeat + 1)][1:]
    geojson_body = client.get("/api/v1/choropleth?level=ward").data
    return {"rows": rows, "load_s": load_s, "ward_tile": ward_tile.data, "central": (12, x, y),
            "geojson_s": statistics.median(geojson), "geojson_bytes": len(geojson_body),
            "geojson_gz": len(gzip.compress(geojson_body, 6))}


def render(result, zoom, repeat, elapsed, load_at_start):
    today = datetime.date.today().isoformat()
    geo_tps = 1 / result["geojson_s"]
    lines = [SECTION, "",
             f"Command: `python bench/bench_tiles.py --zoom {zoom}` ({today}; {os.cpu_count()} cores, "
             f"{platform.python_implementation()} {platform.python_version()}; whole run {elapsed:.0f} s, of which "
             f"loading the data {result['load_s']:.0f} s; load average {load_at_start:.1f} at the start). Data: lad22 "
             "boroughs, 2018 wards, 2011 LSOAs, the police.uk API months 2018-03..05; tiles of all crime for the "
             f"latest 12 months. Every zoom-{zoom} tile touching the layer, through the Flask test client. "
             "*Cold*: built and written (the layer's figures and simplified geometry already in the process); "
             "*cached*: the tiles with features read back from `tiles/` (empty ones are not kept); *naive* (baseline): figures and geometry recomputed for each tile "
             f"({NAIVE_TILES} tiles with features, 2017-07 to 2018-05 so that none is on disk); *first tile*: the first of a query (the central London tile), which computes and keeps them. The "
             "machine is shared: rates can move by up to 2x between runs, ratios less, sizes not at all.", "",
             "| layer | tiles (with features) | first tile | cold tiles/s | cached tiles/s | naive tiles/s | cold × naive | "
             "cached × cold | median tile | largest tile |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        sizes = row["bytes"]
        lines.append(f"| {row['level']} | {row['tiles']} ({row['kept']}) | {row['first_s'] * 1000:,.0f} ms | {row['cold_tps']:,.1f} | "
                     f"{row['cached_tps']:,.0f} | {row['naive_tps']:,.2f} | {row['cold_tps'] / row['naive_tps']:,.0f} | "
                     f"{row['cached_tps'] / row['cold_tps']:,.0f} | {statistics.median(sizes) / 1024:,.1f} KB | "
                     f"{max(sizes) / 1024:,.1f} KB |")
    tile = result["ward_tile"]
    z, x, y = result["central"]
    ward = next(r for r in result["rows"] if r["level"] == "ward")
    lines += ["",
              f"- **z12 ward tile** over central London (`/tiles/ward/{z}/{x}/{y}.pbf`): {len(tile) / 1024:,.1f} KB, "
              f"{len(gzip.compress(tile, 6)) / 1024:,.1f} KB gzipped.",
              f"- **GeoJSON baseline**: `/api/v1/choropleth?level=ward` (all 657 wards, simplified) takes "
              f"{result['geojson_s'] * 1000:,.0f} ms (median of {repeat}, {geo_tps:,.1f}/s) for "
              f"{result['geojson_bytes'] / 1024:,.0f} KB ({result['geojson_gz'] / 1024:,.0f} KB gzipped); a screen "
              f"of about 20 z12 ward tiles costs {20 / ward['cold_tps'] * 1000:,.0f} ms cold and "
              f"{20 / ward['cached_tps'] * 1000:,.0f} ms cached. LSOAs have no GeoJSON API level (4,835 areas against "
              "657 wards): `/map/lsoa` draws them from tiles.", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoom", type=int, default=12, help="zoom of the tiles timed")
    parser.add_argument("--repeat", type=int, default=5, help="GeoJSON requests timed (median reported)")
    parser.add_argument("--write", action="store_true", help="rewrite this section of bench/RESULTS.md")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"shared data not found: {DATA} (set CRIMEMAP_SHARED_DATA)")
    load_at_start = os.getloadavg()[0]
    start = time.perf_counter()
    result = measure(args.zoom, args.repeat)
    section = render(result, args.zoom, args.repeat, time.perf_counter() - start, load_at_start)
    print(section)
    if args.write:
        _results.write_section(SECTION, section)


if __name__ == "__main__":
    main()
