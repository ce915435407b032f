"""Hypothesis on path segments and query parameters of pages, embeds, tiles and the APIs.

Any text in any segment or parameter is answered with a 2xx, 3xx or 4xx, never
a 5xx; errors under /api, /tiles and /postcodes.io are JSON naming the
problem; and a value a page sends back never comes back unescaped (JSON
errors quote it as data: they are served with nosniff and ``default-src
'none'``, so no browser renders them). Tile addresses are also checked directly against
:func:`crimemap.tiles.grid.parse_address`: an address is accepted exactly when
it names a tile of the grid.
"""

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crimemap.errors import BadQuery, NotFound
from crimemap.tiles.grid import parse_address
from crimemap.web import create_app
from tests.test_security_headers import END

HOSTILE = ["<script>alert(1)</script>", "..", "%2e%2e%2f", "../../etc/passwd", "' OR 1=1 --", "\u0000", "ward",
           "E09000022", "-1", "1e9", "9" * 40, "😀", " ", "%", "?", "#", ";", "\\"]
SEGMENT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40))
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from crimemap import demo

    folder = tmp_path_factory.mktemp("paths") / "instance"
    demo.build_demo_instance(folder, end_month=END)
    return create_app({"INSTANCE": str(folder), "POLICEUK_RATE_LIMIT": ""}).test_client()


def _seg(text):
    return quote(text, safe="")


def _never_5xx(response, json_errors):
    data = response.get_data()
    if response.status_code == 503:  # documented: no postcode lookup loaded (the demo has none)
        assert response.get_json()["error"].startswith("Postcode lookup unavailable"), data[:300]
        return
    assert response.status_code < 500, data[:300]
    assert b"Traceback" not in data
    if response.mimetype == "text/html":  # JSON may quote it: it is never rendered (nosniff, default-src 'none')
        assert b"<script>alert(1)</script>" not in data  # sent back only escaped
    text = data[:300]
    if json_errors and response.status_code >= 400:
        body = response.get_json()
        assert body["status"] == response.status_code and body["error"], text[:300]


PAGES = ["/area/{a}/{b}", "/stops/borough/{a}", "/area/ward/{a}?crime={b}", "/?level={a}&crime={b}",
         "/?period=custom&from={a}&to={b}", "/search?q={a}", "/stops?from={a}&to={b}", "/map/{a}?crime={b}",
         "/embed/map?level={a}&code={b}", "/embed/map?level=borough&version={a}&crime={b}",
         "/embed/map.png?level=borough&width={a}&height={b}"]
APIS = ["/api/v1/areas/{a}/{b}", "/api/v1/choropleth?level={a}&crime={b}", "/api/v1/choropleth?from={a}&to={b}",
        "/api/v1/choropleth?classify={a}&k={b}", "/api/v1/choropleth?geometry={a}&format={b}",
        "/api/v1/areas/borough/E09000001?from={a}&to={b}&format={a}&table={b}",
        "/api/v1/stops/choropleth?from={a}&to={b}", "/api/v1/stops/areas/{a}/{b}",
        "/api/v1/taser/forces/{a}", "/api/v1/taser/boroughs?quarter={a}", "/api/v1/taser/forces?year={a}",
        "/api/{a}/neighbourhoods", "/api/{a}/{b}", "/api/{a}/{b}/boundary", "/api/forces/{a}",
        "/api/crime-categories?date={a}", "/api/crimes-no-location?category={a}&force={b}",
        "/tiles/{a}/{b}/0/0.pbf", "/tiles/ward/{a}/{b}/1.pbf", "/tiles/borough/3/{a}/{b}",
        "/oembed?url={a}&maxwidth={b}", "/postcodes.io/postcodes/{a}", "/postcodes.io/outcodes/{a}"]


@pytest.mark.parametrize("template", PAGES)
@given(a=SEGMENT, b=SEGMENT)
@FUZZ
def test_any_page_segment_or_parameter_is_never_a_server_error(client, template, a, b):
    response = client.get(template.format(a=_seg(a), b=_seg(b)))
    _never_5xx(response, json_errors=False)


@pytest.mark.parametrize("template", APIS)
@given(a=SEGMENT, b=SEGMENT)
@FUZZ
def test_any_api_segment_or_parameter_is_never_a_server_error(client, template, a, b):
    response = client.get(template.format(a=_seg(a), b=_seg(b)))
    _never_5xx(response, json_errors=not template.startswith("/oembed"))


DIGITS = st.one_of(st.integers(-3, 2 ** 40).map(str), SEGMENT)


@given(z=DIGITS, x=DIGITS, y=DIGITS, max_zoom=st.integers(0, 22))
@example(z="0", x="0", y="0", max_zoom=0)
@example(z="16", x="65535", y="65535", max_zoom=16)
@example(z="16", x="65536", y="0", max_zoom=16)
@settings(max_examples=300, deadline=None)
def test_a_tile_address_is_accepted_exactly_when_the_tile_exists(z, x, y, max_zoom):
    whole = [t.isascii() and t.isdigit() and len(t) <= 10 for t in (z, x, y)]
    exists = all(whole) and int(z) <= max_zoom and max(int(x), int(y)) < 2 ** int(z)
    try:
        got = parse_address(z, x, y, max_zoom)
    except BadQuery:
        assert not all(whole)
    except NotFound:
        assert all(whole) and not exists
    else:
        assert exists and got == (int(z), int(x), int(y))
