"""Stored XSS: area names and crime locations holding HTML show as text on every page, tooltip and popup.

The instance is built from tests/data/hostile/: two boroughs and two wards
whose names hold ``<script>``, ``<img onerror>`` and ``"><svg onload>``, and
a police.uk street CSV whose Location strings hold the same (and a
``</textarea>``). It is served by ``crimemap serve`` on loopback and opened in
headless Chromium (tests/_browser.py). On each page the test hovers and
clicks every drawn map shape (areas and crime points), so Leaflet opens each
tooltip and popup, and then checks:

- each hostile string appears literally, as text, in the page, the tooltips
  or the popups where that page shows it (and never double-escaped);
- no payload ran: the ``window.__xss`` flag every payload would set stays
  unset, no element the payloads would create exists (``img[src=x]``,
  ``svg[onload]``, a ``<script>`` holding a payload), and the console is
  free of errors (a payload blocked by the Content-Security-Policy would
  log one).
"""

import pytest

from tests._browser import Tab
from tests._faults import live_server, run_to_end
from tests.conftest import FIXTURES
from tests.test_browser import _need_chromium
from tests.test_ingest_interrupted import _cli

pytestmark = pytest.mark.slow

HOSTILE = FIXTURES / "hostile"
BW = '<script>window.__xss="borough-west"</script> West & Co'
BE = "<img src=x onerror=\"window.__xss='borough-east'\"> East"
WW = '<script>window.__xss="ward-west"</script> West Ward'
WE = "\"><svg onload=\"window.__xss='ward-east'\"> East Ward"
SW = 'On or near <script>window.__xss="street-west"</script> Street'
SI = "On or near <img src=x onerror=\"window.__xss='street-img'\"> Lane"
SE = "On or near </textarea><svg onload=\"window.__xss='street-east'\"> Road"
QUERY = "<script>window.__xss='query'</script>"

# page: (in the page text, in tooltips, in popups)
PAGES = {
    "/": ([BW, BE], [BW, BE], [BW, BE]),
    "/?level=ward": ([WW, WE, BW, BE], [WW, WE, BW, BE], [WW, WE]),
    "/area/borough/E09000033": ([BW], [SW, SI], [SW, SI]),
    "/area/borough/E09000022": ([BE], [SE], [SE]),
    "/area/ward/E05990101": ([WW, BW], [SW, SI], [SW, SI]),
    "/area/ward/E05990102": ([WE, BE], [SE], [SE]),
    "/embed/map?level=borough&crime=all-crime": ([], [BW, BE], [BW, BE]),
    "/embed/map?level=ward&crime=all-crime": ([], [WW, WE], [WW, WE]),
    "/search?q=%3Cscript%3Ewindow.__xss%3D%27query%27%3C%2Fscript%3E": ([QUERY], [], []),
}

SHAPES = """Array.from(document.querySelectorAll('path.leaflet-interactive'), p => {
    const r = p.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })"""
SEND = """((i, type) => {
    const p = document.querySelectorAll('path.leaflet-interactive')[i], r = p.getBoundingClientRect();
    p.dispatchEvent(new MouseEvent(type, {bubbles: true, clientX: r.x + r.width / 2, clientY: r.y + r.height / 2}));
    return true; })"""
TIPS = "Array.from(document.querySelectorAll('.leaflet-tooltip'), e => e.innerText).join('\\n')"
POPUPS = "Array.from(document.querySelectorAll('.leaflet-popup-content'), e => e.innerText).join('\\n')"
RAN = """({flag: typeof window.__xss === 'undefined' ? null : String(window.__xss),
    injected: document.querySelectorAll('img[src="x"], svg[onload], [onerror]').length,
    scripts: Array.from(document.scripts).filter(s => /^\\s*window\\.__xss/.test(s.textContent)).length})"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _need_chromium()
    instance = tmp_path_factory.mktemp("hostile") / "instance"
    for args in (("boundaries", "load", "borough", HOSTILE / "boroughs.geojson"),
                 ("boundaries", "load", "ward", HOSTILE / "wards.geojson"),
                 ("crimes", "ingest", HOSTILE / "street.csv")):
        code, out = run_to_end(lambda: _cli(instance, *args))  # noqa: B023 - called at once
        assert code == 0, out
        assert "rejected 0" in out or args[0] == "boundaries", out
    with live_server(instance) as base:
        yield base


@pytest.fixture(scope="module")
def tab(tmp_path_factory):
    page = Tab(tmp_path_factory.mktemp("hostile-profile"))
    yield page
    page.close()


@pytest.mark.parametrize("path", list(PAGES))
def test_hostile_text_shows_as_text_and_never_runs(server, tab, path):
    in_text, in_tips, in_popups = PAGES[path]
    tab.errors.clear()
    tab.goto(server + path, settle=1.5)
    tips, popups = [], []
    for i, (x, y) in enumerate(tab.js(SHAPES)):
        tab.hover(x, y)  # the mouse, as a user moves it: the shape on top at that point
        tips.append(tab.js(TIPS))
        tab.click(x, y)
        popups.append(tab.js(POPUPS))
        # Shapes under others (crime points close together) get the same events sent to them directly.
        tab.js(f"{SEND}({i}, 'mouseover')")
        tips.append(tab.js(TIPS))
        tab.js(f"{SEND}({i}, 'click')")
        popups.append(tab.js(POPUPS))
        assert tab.js("location.pathname") == path.split("?")[0]  # a click opens a popup, it does not navigate
    text, tips, popups = tab.js("document.body.innerText"), "\n".join(tips), "\n".join(popups)
    for wanted, where, name in ((in_text, text, "page"), (in_tips, tips, "tooltips"), (in_popups, popups, "popups")):
        for value in wanted:
            assert value in where, (path, name, value, where[:2000])
        assert "&amp;" not in where and "&lt;" not in where and "&quot;" not in where, (path, name)  # no double escape
    assert tab.js(RAN) == {"flag": None, "injected": 0, "scripts": 0}, path
    errors = [e for e in tab.errors if not e.endswith("/favicon.ico)")]  # the browser's own icon request
    assert errors == [], (path, errors)
