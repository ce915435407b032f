"""Ward and LSOA layers drawn from vector tiles in headless Chromium, offline.

A live ``crimemap serve`` on the real 2018 instance (api_2018, read-only)
with ``TILES_GEOJSON_MAX_AREAS=0``, so the London map draws even wards from
tiles, and a temporary TILES_DIR pre-built with ``crimemap tiles build`` (so
the browser does not wait for cold tiles). Chromium runs with its network
features off and reaches only 127.0.0.1: the plugin, Leaflet and the tiles
all come from crimemap. ``CRIMEMAP_UPDATE_SCREENSHOTS=1`` writes
``docs/screenshots/lsoa-tiles.png``.
"""

import os
import re
import subprocess
import sys

import pytest
import requests

from tests.live_server import live_server

from tests.test_browser import AREA_PATH, FILL, SCREENSHOTS, chromium  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

BAND_FILLS = {"#2c7bb6", "#abd9e9", "#ffffbf", "#fdae61", "#d7191c", "url(#cm-hatch)", "#8c6bb1"}


@pytest.fixture(scope="module")
def server(api_2018, tmp_path_factory):
    from tests.test_browser import _need_chromium

    _need_chromium()
    tiles = tmp_path_factory.mktemp("browser-tiles")
    env = dict(os.environ, PYTHONUNBUFFERED="1", CRIMEMAP_TILES_DIR=str(tiles), CRIMEMAP_TILES_GEOJSON_MAX_AREAS="0")
    for layer, zooms in (("ward", ("9", "11")), ("lsoa", ("10", "10"))):
        built = subprocess.run([sys.executable, "-m", "crimemap", "--instance", str(api_2018.instance), "tiles",
                                "build", "--layer", layer, "--minzoom", zooms[0], "--maxzoom", zooms[1]],
                               env=env, capture_output=True, text=True, timeout=600)
        assert built.returncode == 0, built.stdout + built.stderr
    with live_server(api_2018.instance, env={"CRIMEMAP_TILES_DIR": str(tiles),
                                            "CRIMEMAP_TILES_GEOJSON_MAX_AREAS": "0"}) as base:
        yield base


def _drawn(dom):
    return [FILL.search(tag).group(1) for tag in AREA_PATH.findall(dom) if FILL.search(tag)]


def _no_remote_assets(html):
    remote = re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="(https?:)?//', html)
    assert not remote


@pytest.mark.parametrize("page,level", [("/map/lsoa", "lsoa"), ("/?level=ward", "ward")])
def test_layers_are_drawn_from_vector_tiles(api_2018, server, chromium, page, level):
    html = requests.get(server + page, timeout=60).text
    _no_remote_assets(html)
    assert "vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js" in html
    assert '"type": "FeatureCollection"' not in html and "FeatureCollection" not in html  # no inline GeoJSON
    dom = chromium(server + page, "--window-size=1280,1000", "--virtual-time-budget=20000", "--dump-dom")
    assert f'data-tiles="{level}"' in dom  # the tile layer's script ran
    fills = _drawn(dom)
    areas = len(api_2018.store.areas(api_2018.store.layer(level)["id"], with_geometry=False))
    # Every area is drawn at least once (an area cut by a tile edge is drawn once per tile).
    assert len(fills) >= areas > 600
    assert set(fills) <= BAND_FILLS and len(set(fills) - {"url(#cm-hatch)"}) >= 4


def test_lsoa_tiles_screenshot(server, chromium, tmp_path):
    folder = SCREENSHOTS if os.environ.get("CRIMEMAP_UPDATE_SCREENSHOTS") == "1" else tmp_path
    target = folder / "lsoa-tiles.png"
    target.unlink(missing_ok=True)
    chromium(server + "/map/lsoa", "--window-size=1280,1000", "--virtual-time-budget=20000",
             f"--screenshot={target}")
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 150_000, len(data)  # an empty map is ~90 KB; thousands of shaded LSOAs are far more
