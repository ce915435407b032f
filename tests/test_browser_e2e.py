"""End to end in headless Chromium: search, keyboard-only use, no console errors, nothing leaves loopback.

The server is ``crimemap serve`` (gunicorn) on 127.0.0.1 over a copy of the
real 2018 instance (``api_2018``: lad22 boroughs, 2018 wards, three months of
police.uk API crimes) plus the real Code-Point Open London extract. Chromium is
driven over the DevTools protocol (tests/_browser.py): keys and clicks are
input events, as a keyboard and a mouse send them, and every network request
and console message of the page is recorded. Without Chromium the tests skip,
except under ``CI=true`` where they fail.
"""

import gzip

import geopandas as gpd
import pytest
import requests
from shapely.geometry import Point

from tests._browser import Tab
from tests._faults import live_server, run_to_end
from tests.test_browser import _need_chromium
from tests.test_embed import copy_instance
from tests.test_ingest_interrupted import _cli

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

POSTCODE = "SW1A 1AA"
LOOPBACK = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def server(api_2018, tmp_path_factory):
    """The real 2018 instance with the postcode lookup, served on loopback."""
    from tests.conftest import _need_shared

    _need_chromium()
    instance = copy_instance(api_2018.instance, tmp_path_factory.mktemp("e2e") / "instance")
    code, out = run_to_end(lambda: _cli(instance, "postcodes", "refresh",
                                        _need_shared("postcodes/codepoint_open_2025-10_london.csv.gz")))
    assert code == 0, out
    with live_server(instance, workers=2) as base:
        yield base


@pytest.fixture
def tab(tmp_path):
    page = Tab(tmp_path / "profile")
    yield page
    page.close()


@pytest.fixture(scope="module")
def expected_ward(need_shared_module):
    """The 2018 ward holding SW1A 1AA, by plain geopandas from the source files (not through crimemap)."""
    with gzip.open(need_shared_module("postcodes/codepoint_open_2025-10_london.csv.gz"), "rt") as fh:
        row = next(line.split(",") for line in fh if line.startswith(POSTCODE + ","))
    wards = gpd.read_file(need_shared_module("boundaries/London-wards-2018/London_Ward.shp"))
    hit = wards[wards.contains(Point(float(row[2]), float(row[3])))]
    assert len(hit) == 1
    return hit.iloc[0]["GSS_CODE"], hit.iloc[0]["NAME"]


@pytest.fixture(scope="module")
def need_shared_module():
    from tests.conftest import _need_shared

    return _need_shared


def _path(tab):
    return tab.js("location.pathname + location.search")


def test_postcode_search_then_the_area_page(server, tab, expected_ward):
    code, name = expected_ward
    tab.goto(server + "/search")
    box = tab.js("(r => [r.x + r.width / 2, r.y + r.height / 2])(document.querySelector('main input[name=q], "
                 "#q').getBoundingClientRect())")
    tab.click(*box)
    tab.type(POSTCODE.lower())
    tab.press("Enter")
    tab.wait_load()
    assert tab.js("location.pathname") == f"/area/ward/{code}"
    assert name in tab.js("document.querySelector('h1').textContent")
    assert POSTCODE in tab.js("document.body.innerText")


def test_keyboard_only_search_and_data_table(server, tab, expected_ward):
    code, _ = expected_ward
    tab.goto(server + "/")
    tab.tab_to("el.id === 'q'")
    tab.type("sw1a1aa")
    tab.press("Enter")
    tab.wait_load()
    assert tab.js("location.pathname") == f"/area/ward/{code}"

    # The London map's table: Tab to the "Crimes" sort button, Enter sorts ascending, Space descending.
    counts = {f["id"]: f["properties"]["count"] for f in requests.get(
        f"{server}/api/v1/choropleth?level=borough&geometry=none", timeout=60).json()["features"]}
    tab.goto(server + "/?level=borough")
    tab.tab_to("el.matches('#figures button.sort') && el.textContent.trim() === 'Crimes'")
    rows = "Array.from(document.querySelectorAll('#figures tbody tr'), tr => tr.dataset.code)"
    sort_state = "document.activeElement.closest('th').getAttribute('aria-sort')"
    tab.press("Enter")
    ascending = tab.js(rows)
    assert tab.js(sort_state) == "ascending"
    assert sorted(ascending) == sorted(counts)
    known = [counts[c] for c in ascending if counts[c] is not None]
    assert known == sorted(known) and len(set(known)) > 5
    tab.press(" ")
    descending = tab.js(rows)
    assert tab.js(sort_state) == "descending"
    known = [counts[c] for c in descending if counts[c] is not None]
    assert known == sorted(known, reverse=True)


def test_no_console_errors_and_no_request_leaves_loopback(server, tab, expected_ward):
    code, _ = expected_ward
    pages = ["/", "/?level=ward&crime=burglary", f"/area/ward/{code}", "/area/borough/E09000033", "/search",
             f"/search?q={POSTCODE.replace(' ', '+')}", "/embed/map?level=borough&crime=all-crime",
             "/embed/map?level=ward&crime=burglary"]
    seen = {}
    for path in pages:
        tab.goto(server + path, settle=2.0)
        seen[path] = tab.js("document.querySelectorAll('path.leaflet-interactive').length")
        # The browser's own /favicon.ico request (no page asks for it; the site has none) is not a page error.
        errors = [e for e in tab.errors if not e.endswith("/favicon.ico)")]
        assert errors == [], (path, errors)
    # The maps drew (so their scripts and styles loaded), and the requests were recorded.
    assert seen["/"] >= 33 and seen["/embed/map?level=borough&crime=all-crime"] >= 33, seen
    assert any("/static/" in url for url in tab.requests), tab.requests
    assert tab.hosts() <= LOOPBACK, sorted(u for u in tab.requests if "127.0.0.1" not in u)
