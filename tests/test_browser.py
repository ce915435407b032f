"""The London map in a real browser: headless Chromium against a live `crimemap serve --demo`, offline.

Chromium runs with its network features off and reaches only 127.0.0.1, so a
map that needed a CDN would draw nothing here. ``--dump-dom`` gives the page
after Leaflet has drawn it (``--virtual-time-budget`` lets the scripts run);
``--screenshot`` gives the picture. Without Chromium the tests skip, except
under ``CI=true`` where they fail (.ci/run installs it).

Set ``CRIMEMAP_UPDATE_SCREENSHOTS=1`` to write the screenshots to
``docs/screenshots/`` (the README and docs show them); otherwise they go to
the test's temporary folder, so a test run never changes the repository.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.live_server import free_port as _free_port  # noqa: F401 - other tests import it from here
from tests.live_server import live_server

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--virtual-time-budget=5000"]
AREA_PATH = re.compile(r'<path\b[^>]*\bclass="leaflet-interactive"[^>]*>')
FILL = re.compile(r'\bfill="([^"]*)"')

pytestmark = pytest.mark.slow


def _need_chromium():
    if CHROMIUM is None:
        message = "chromium not installed (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: failing instead of skipping)")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The base URL of a live demo server on loopback."""
    _need_chromium()
    folder = tmp_path_factory.mktemp("browser")
    with live_server(folder / "instance", "--demo") as base:
        yield base


@pytest.fixture
def chromium(tmp_path):
    """Run headless Chromium with a throwaway profile: ``chromium(url, "--dump-dom")``."""
    binary = _need_chromium()

    def run(url, *args):
        result = subprocess.run([binary, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args, url],
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    return run


def _features(server, level):
    return requests.get(f"{server}/api/v1/choropleth?level={level}&geometry=none", timeout=30).json()["features"]


def _areas(server, level):
    return [f["id"] for f in _features(server, level)]


def _fills(dom):
    return [FILL.search(tag).group(1) for tag in AREA_PATH.findall(dom)]


@pytest.mark.parametrize("level", ["borough", "ward"])
def test_map_draws_every_area_with_legend_and_table(server, chromium, level):
    codes = _areas(server, level)
    dom = chromium(f"{server}/?level={level}", "--dump-dom")
    fills = _fills(dom)
    assert len(fills) >= len(codes) > 0  # Leaflet drew a path per area (a multipolygon is still one path)
    assert all(fill.startswith("#") or fill.startswith("url(#cm-hatch)") for fill in fills)
    legend = dom[dom.index('class="legend-inline"'):]
    legend = legend[:legend.index("</ul>")]
    for label in ("Much lower", "Lower", "Around average", "Higher", "Much higher", "No data"):
        assert f"</span>{label}</li>" in legend
    table = dom[dom.index('<table class="figures" id="figures"'):]
    table = table[:table.index("</table>")]
    assert sorted(re.findall(r'<tr data-code="([^"]+)"', table)) == sorted(codes)
    # sortable.js ran: every column heading is a sort button.
    assert re.findall(r'<button type="button" class="sort">([^<]+)</button>', table)[:3] == \
        ["Area", "Borough", "Crimes"] if level != "borough" else ["Area", "Crimes", "Residents"]


def test_changing_the_crime_type_changes_the_shading(server, chromium):
    everything = _fills(chromium(f"{server}/?crime=all-crime", "--dump-dom"))
    burglary = _fills(chromium(f"{server}/?crime=burglary", "--dump-dom"))
    assert len(everything) == len(burglary) >= len(_areas(server, "borough"))
    assert everything != burglary


def test_the_period_picker_changes_the_map_and_the_table(server, chromium):
    latest = chromium(f"{server}/?period=latest-month", "--dump-dom")
    year = chromium(f"{server}/?period=rolling-12-months", "--dump-dom")
    assert re.search(r'name="period" value="latest-month" checked', latest)
    assert len(_fills(latest)) == len(_fills(year)) >= len(_areas(server, "borough"))
    assert _fills(latest) != _fills(year)
    month = re.search(r'id="to" name="to" type="month"[^>]*value="(\d{4}-\d{2})"', latest).group(1)
    assert f"All crime by borough, {month} to {month}</caption>" in latest


POINT_FILL = "#7a3b9f"  # crimemap.web.maps.points_layer


def test_area_page_draws_its_chart_and_points(server, chromium):
    ward = next(f["id"] for f in _features(server, "ward") if f["properties"]["force"] == "metropolitan")
    dom = chromium(f"{server}/area/ward/{ward}", "--dump-dom")
    chart = dom[dom.index('<svg class="chart"'):]
    chart = chart[:chart.index("</svg>")]
    assert len(re.findall(r'<rect class="bar-(?:now|before|no-data)"', chart)) == 24
    locations = int(re.search(r"crimes\s+at ([\d,]+) locations", dom).group(1).replace(",", ""))
    drawn = [tag for tag in AREA_PATH.findall(dom) if f'fill="{POINT_FILL}"' in tag]
    assert len(drawn) == locations > 0  # one circle per published location
    for section in ("trend", "three-months", "target", "neighbours", "no-location"):
        assert f'id="{section}"' in dom


def test_screenshots(server, chromium, tmp_path):
    folder = SCREENSHOTS if os.environ.get("CRIMEMAP_UPDATE_SCREENSHOTS") == "1" else tmp_path
    # A Met borough: the City of London is the exception, not the typical area page.
    borough = next(f["id"] for f in _features(server, "borough") if f["properties"]["force"] == "metropolitan")
    shots = {"london-map.png": "/", "area-page.png": f"/area/borough/{borough}", "ward-map.png": "/?level=ward"}
    for name, path in shots.items():
        target = folder / name
        target.unlink(missing_ok=True)
        size = "1280,2800" if name == "area-page.png" else "1280,900"  # the area page's sections, whole
        chromium(server + path, f"--window-size={size}", f"--screenshot={target}")
        data = target.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        # A blank or error page compresses to a few KB; a drawn map with a table does not.
        assert len(data) > 40_000, (name, len(data))
