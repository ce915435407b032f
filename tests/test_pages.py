"""Public pages on a demo instance: banner, attribution, data table, offline assets, escaping."""

import re
from html.parser import HTMLParser

import folium
import folium.plugins
import pytest
from markupsafe import escape

from crimemap import demo, figures
from crimemap.attribution import ATTRIBUTION, DEMO_NOTICE
from crimemap.store import open_store
from crimemap.web import create_app

HOSTILE = "<script>alert(1)</script> Demo Ward"
END = "2024-06"


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    """A demo instance (built once for the module) with one ward given a hostile name."""
    folder = tmp_path_factory.mktemp("pages") / "demo"
    demo.build_demo_instance(folder, end_month=END)
    store = open_store({"INSTANCE": str(folder)})
    with store.writer() as writer:
        writer.conn.execute("UPDATE areas SET name = ? WHERE code = 'E05900001'", (HOSTILE,))
        writer.changed = True
    return folder


@pytest.fixture
def app(instance):
    return create_app({"INSTANCE": str(instance), "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


class _Table(HTMLParser):
    """Crimes per area code from the page's data table (rows carry data-code)."""

    def __init__(self):
        super().__init__()
        self.counts, self._code, self._in_count = {}, None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-code" in attrs:
            self._code = attrs["data-code"]
        elif tag == "td" and self._code and "count" in (attrs.get("class") or "").split():
            self._in_count = True
            self.counts[self._code] = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_count = False
        elif tag == "tr":
            self._code = None

    def handle_data(self, data):
        if self._in_count:
            self.counts[self._code] += data


def _table_counts(html):
    parser = _Table()
    parser.feed(html)
    # "1,234" or "no data", maybe followed by "(n of 12 months)".
    return {code: text.split("(")[0].strip() for code, text in parser.counts.items()}


def _expected(instance, level):
    store = open_store({"INSTANCE": str(instance)}, readonly=True)
    result = figures.area_figures(store, level, figures.latest_months(store, 12), with_geometry=False)
    return {code: "no data" if n is None else f"{n:,}" for code, n in zip(result["code"], result["count"])}


def _page(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def _has(html, text):
    """``text in html`` as a plain bool: pytest's diff of a 500 kB page would take minutes."""
    return html.find(text) >= 0


def _every_page_shows(html):
    assert _has(html, DEMO_NOTICE)
    assert _has(html, 'class="demo-banner"')
    assert _has(html, f"Data as of {END}")
    assert re.search(r"data version \d+", html) is not None
    for line in ATTRIBUTION:
        assert _has(html, str(escape(line)))


@pytest.mark.parametrize("level", ["borough", "ward"])
def test_map_page_table_matches_the_figures(client, instance, level):
    html = _page(client, f"/?level={level}")
    _every_page_shows(html)
    expected = _expected(instance, level)
    assert _table_counts(html) == expected
    assert len(expected) == 33 if level == "borough" else len(expected) > 300
    assert _has(html, "City of London Police (separate force)")
    assert _has(html, "No base map configured")
    assert _has(html, "<table") and _has(html, "<caption")


def test_map_page_is_served_offline(client):
    html = _page(client, "/")
    remote = re.findall(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^>]*>", html, flags=re.I)
    # rel="alternate" (the oEmbed discovery link) names a URL; a browser loads nothing from it.
    assert [tag for tag in remote if not re.search(r"\brel=[\"']?alternate", tag)] == []
    assert not _has(html, "cdn.jsdelivr") and not _has(html, "code.jquery")
    local = re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", html) + \
        re.findall(r"<link\b[^>]*\bhref=\"([^\"]+\.css)\"", html)
    assert "/static/vendor/leaflet/leaflet.js" in local
    for url in local:
        with client.get(url) as response:  # a file response holds the file open until closed
            assert response.status_code == 200, url


def test_a_remote_asset_is_refused(app):
    fmap = folium.Map(tiles=None)
    folium.plugins.Fullscreen().add_to(fmap)
    from crimemap.web.maps import render_map

    with app.test_request_context("/"), pytest.raises(ValueError, match="does not serve"):
        render_map(fmap)


def test_hostile_area_names_are_escaped(client):
    for url in ("/?level=ward", "/area/ward/E05900001"):
        html = _page(client, url)
        assert not _has(html, "<script>alert(1)")
        # Inside the map data the name would be JSON-encoded; it must be escaped HTML there too.
        assert not _has(html, "\\u003cscript\\u003ealert")
        assert _has(html, "&lt;script&gt;alert(1)&lt;/script&gt;")


def test_area_page(client, instance):
    html = _page(client, "/area/ward/E05900002")
    _every_page_shows(html)
    store = open_store({"INSTANCE": str(instance)}, readonly=True)
    months = figures.latest_months(store, 12)
    row = figures.find_area(figures.area_figures(store, "ward", months, with_geometry=False), "E05900002")
    assert _has(html, row["name"]) and _has(html, row["borough_name"])
    assert _has(html, "Metropolitan Police Service")
    assert _has(html, f"{row['rate_per_1000']:,.1f}")
    by_type = figures.area_by_type(store, "ward", "E05900002", months)
    total = by_type[by_type["crime"] == "all-crime"].iloc[0]
    assert re.search(rf"All crime</th>\s*<td class=\"num\">{total['count']:,}</td><td class=\"num\">"
                     rf"{total['previous_count']:,}</td>", html)
    assert _has(html, "folium-map")


def test_city_and_borough_pages(client):
    city = _page(client, "/area/borough/E09000001")
    assert _has(city, "City of London Police (separate force)")
    assert _has(city, "not part of the London average")
    borough = _page(client, "/area/borough/E09900001")
    assert _has(borough, "Wards in Demo Borough 01")
    snt = _page(client, "/area/snt/E05900002")
    assert _has(snt, "SNT = ward")


def test_unknown_area_and_bad_level(client):
    html = _page(client, "/area/ward/E05999999", status=404)
    assert _has(html, "no ward with code")
    assert _has(html, DEMO_NOTICE)
    assert _has(_page(client, "/area/county/E05900001", status=400), "unknown level")
    assert _has(_page(client, "/?level=county", status=400), "unknown level")
    assert _has(_page(client, "/?crime=murder", status=400), "unknown crime")


def test_search_says_it_is_not_available_and_escapes_the_query(client):
    html = _page(client, "/search?q=<b>x</b>")
    assert _has(html, "Postcode search is not available yet: no postcode lookup is loaded")
    assert not _has(html, "<b>x</b>")
    assert _has(html, "&lt;b&gt;x&lt;/b&gt;")
    _every_page_shows(html)


def test_tile_layer_from_config(instance):
    app = create_app({"INSTANCE": str(instance), "TESTING": True, "TILE_URL": "/tiles/{z}/{x}/{y}.png",
                      "TILE_ATTRIBUTION": "Test tiles"})
    html = _page(app.test_client(), "/")
    assert _has(html, "/tiles/{z}/{x}/{y}.png")
    assert not _has(html, "No base map configured")


def test_empty_instance_says_nothing_is_loaded(tmp_path):
    app = create_app({"INSTANCE": str(tmp_path), "TESTING": True})
    html = _page(app.test_client(), "/")
    assert _has(html, "nothing to map")
    assert _has(html, "No crime data loaded yet")
    assert not _has(html, DEMO_NOTICE)
