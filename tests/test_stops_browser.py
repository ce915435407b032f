"""The stop and search map and a borough page in headless Chromium, against a live server on real data.

The instance holds the lad22 boroughs, Census 2011 QS201EW and the 2016-06 Met
stop and search file. Chromium reaches only 127.0.0.1, so a page that needed
a CDN would draw nothing. Set ``CRIMEMAP_UPDATE_SCREENSHOTS=1`` to write the
screenshots to ``docs/screenshots/`` (docs/stops.md shows them).
"""

import os
import re
import subprocess
import sys

import pytest
import requests

from tests.live_server import live_server

from tests.test_browser import AREA_PATH, SCREENSHOTS, _need_chromium, chromium  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]
LAMBETH = "E09000022"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server on an instance with real stop and search data."""
    from tests.conftest import _need_shared

    _need_chromium()
    instance = tmp_path_factory.mktemp("stops-browser") / "instance"
    run = [sys.executable, "-m", "crimemap", "--instance", str(instance)]
    for args in (["boundaries", "load", "borough", _need_shared("boundaries/london-2021-lad22-gen20.shp")],
                 ["stops", "population", _need_shared("population/census2011_ethnic_group_by_local_authority_EW.csv")],
                 ["stops", "ingest", _need_shared("crime/police_uk/stop-and-search/2016-06-metropolitan-stop-and-search.csv")],
                 ["taser", "load", _need_shared("police_other/taser_use_by_force_by_year_2015-2020.csv")]):
        done = subprocess.run([*run, *map(str, args)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    with live_server(instance, ready="/api/v1/stops/status") as base:
        yield base


def test_stops_map_draws_every_borough_with_legend_and_table(server, chromium):  # noqa: F811
    codes = [f["id"] for f in requests.get(f"{server}/api/v1/stops/choropleth?geometry=none", timeout=30).json()
             ["features"]]
    dom = chromium(f"{server}/stops", "--dump-dom")
    assert len(AREA_PATH.findall(dom)) >= len(codes) == 33
    legend = dom[dom.index('class="legend-inline"'):]
    legend = legend[:legend.index("</ul>")]
    for label in ("Much lower", "Lower", "Around average", "Higher", "Much higher", "No data"):
        assert f"</span>{label}</li>" in legend
    table = dom[dom.index('<table class="figures" id="figures">'):]
    assert sorted(re.findall(r'<tr data-code="([^"]+)"', table[:table.index("</table>")])) == sorted(codes)


def test_borough_page_shows_ratios_with_counts(server, chromium):  # noqa: F811
    dom = chromium(f"{server}/stops/borough/{LAMBETH}", "--dump-dom")
    assert "4.9 (616 : 275)" in dom and 'id="by-object"' in dom and 'id="by-outcome"' in dom
    assert "<svg" in dom and "Arrest rate" in dom


def test_screenshots(server, chromium, tmp_path):  # noqa: F811
    folder = SCREENSHOTS if os.environ.get("CRIMEMAP_UPDATE_SCREENSHOTS") == "1" else tmp_path
    shots = {"stops-map.png": ("/stops", "1280,1000"), "stops-borough.png": (f"/stops/borough/{LAMBETH}", "1280,1700"),
             "taser.png": ("/taser", "1280,700")}
    for name, (path, size) in shots.items():
        target = folder / name
        target.unlink(missing_ok=True)
        chromium(server + path, f"--window-size={size}", f"--screenshot={target}")
        data = target.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 40_000, (name, len(data))
