"""Public pages on a demo instance: banner, attribution, data table, offline assets, escaping."""

import html as htmllib
import io
import json
import re
from html.parser import HTMLParser

import folium
import folium.plugins
import geopandas as gpd
import pandas as pd
import pytest
import shapely
from markupsafe import escape

from crimemap import demo, figures
from crimemap.attribution import ATTRIBUTION, DEMO_NOTICE
from crimemap.store import open_store
from crimemap.web import create_app
from tests.conftest import settings_for

HOSTILE = "<script>alert(1)</script> Demo Ward"
HOSTILE_STREET = "<script>alert(2)</script> On or near <b>Evil</b> Street"
WARD = "E05900002"
END = "2024-06"


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    """A demo instance (built once for the module) with one ward given a hostile name."""
    folder = tmp_path_factory.mktemp("pages") / "demo"
    demo.build_demo_instance(folder, end_month=END)
    store = open_store(settings_for(folder))
    with store.writer() as writer:
        writer.execute("UPDATE areas SET name = ? WHERE code = 'E05900001'", (HOSTILE,))
        # One published location of WARD gets a hostile street text (the map's popups show it).
        writer.execute(
            "UPDATE crimes SET street = ? WHERE location_id = (SELECT la.location_id FROM location_areas la "
            "JOIN layers l ON l.id = la.layer_id JOIN crimes c ON c.location_id = la.location_id "
            "WHERE l.level = 'ward' AND la.code = ? AND c.month = ? LIMIT 1)", (HOSTILE_STREET, WARD, END))
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
    store = open_store(settings_for(instance), readonly=True)
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
    store = open_store(settings_for(instance), readonly=True)
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


# --- independent computations, straight from the store's tables with pandas and shapely -------------


class _Db:
    """Plain SQL on the test leg's store (SQLite file or PostGIS schema), as a context manager."""

    def __init__(self, instance):
        self.store = open_store(settings_for(instance), readonly=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def rows(self, sql, params=()):
        return self.store.query(sql, list(params))

    def frame(self, sql, params=()):
        return self.store.read_frame(sql, list(params))


def _db(instance):
    return _Db(instance)


def _months_back(n, end=END):
    return [p.strftime("%Y-%m") for p in pd.period_range(end=end, periods=n, freq="M")]


def _months_between(first, last):
    return [p.strftime("%Y-%m") for p in pd.period_range(first, last, freq="M")]


def _layer_id(db, level):
    return db.rows("SELECT id FROM layers WHERE level = ?", (level,))[0][0]


def _point_counts(instance, level):
    """police.uk counts per area and month of a layer, with each area's force."""
    with _db(instance) as db:
        layer = _layer_id(db, level)
        counts = db.frame("SELECT code, month, n FROM point_counts WHERE layer_id = ?", (layer,))
        areas = db.frame("SELECT code, force FROM areas WHERE layer_id = ?", (layer,))
    return counts, areas


def _sums(instance, level, months):
    counts, areas = _point_counts(instance, level)
    sums = counts[counts["month"].isin(months)].groupby("code")["n"].sum()
    return {code: f"{int(sums.get(code, 0)):,}" for code in areas["code"]}


# --- the period picker ------------------------------------------------------------------------------


@pytest.mark.parametrize("query, months", [
    ("period=latest-month", _months_back(1)),
    ("period=last-3-months", _months_back(3)),
    ("period=rolling-12-months", _months_back(12)),
    ("", _months_back(12)),
    ("period=custom&from=2023-02&to=2023-05", _months_between("2023-02", "2023-05")),
    ("from=2022-12&to=2023-01", _months_between("2022-12", "2023-01")),  # from/to alone mean custom
    ("period=latest-month&from=2023-02&to=2023-05", _months_back(1)),  # the form always sends from/to
])
def test_period_picker_sets_the_table_caption_and_downloads(client, instance, query, months):
    html = _page(client, f"/?level=ward&{query}")
    assert _table_counts(html) == _sums(instance, "ward", months)
    assert _has(html, f"All crime by ward, {months[0]} to {months[-1]}</caption>")
    assert _has(html, f"({len(months)} month{'s' if len(months) > 1 else ''})")
    expected_period = re.search(r"period=([a-z-0-9]+)", query).group(1) if "period=" in query else \
        ("custom" if "from=" in query else "rolling-12-months")
    checked = re.findall(r'name="period" value="([a-z0-9-]+)" checked', html)
    assert checked == [expected_period]
    assert re.search(rf'id="from" name="from" type="month"[^>]*value="{months[0]}"', html)
    links = dict((name, htmllib.unescape(url)) for url, name in
                 re.findall(r'<a href="([^"]*/api/v1/choropleth[^"]*)" download>([^<]+)</a>', html))
    assert set(links) == {"CSV", "GeoJSON", "Excel (XLSX)"}
    assert f"from={months[0]}" in links["CSV"] and f"to={months[-1]}" in links["CSV"]
    text = client.get(links["CSV"]).get_data(as_text=True)
    assert text.splitlines()[0] == f"# crimemap: All crime by ward, {months[0]} to {months[-1]} ({len(months)} months)"
    table = pd.read_csv(io.StringIO(text), comment="#", dtype={"count": "Int64"})
    assert {c: f"{int(n):,}" for c, n in zip(table["code"], table["count"])} == _sums(instance, "ward", months)


def test_period_picker_follows_the_crime_type(client, instance):
    with _db(instance) as db:
        layer = _layer_id(db, "borough")
        frame = db.frame("SELECT code, month, n FROM point_counts WHERE layer_id = ? AND category = 'burglary'",
                         (layer,))
        codes = [r[0] for r in db.rows("SELECT code FROM areas WHERE layer_id = ?", (layer,))]
    months = _months_back(3)
    sums = frame[frame["month"].isin(months)].groupby("code")["n"].sum()
    html = _page(client, "/?crime=burglary&period=last-3-months")
    assert _table_counts(html) == {c: f"{int(sums.get(c, 0)):,}" for c in codes}
    assert _has(html, '<option value="burglary" selected>')


@pytest.mark.parametrize("query, words", [
    ("period=forever", "unknown period 'forever'"),
    ("period=custom&from=2024-05&to=2023-04", "after it ends"),
    ("period=custom&from=2001-01&to=2024-06", "at most 120"),
    ("period=custom&from=2024-13", "bad from '2024-13'"),
])
def test_bad_periods_are_400s_that_say_why(client, query, words):
    html = _page(client, f"/?{query}", status=400)
    assert _has(html, str(escape(words)))


# --- the area page's sections --------------------------------------------------------------------


def _ward_series(instance, code=WARD):
    """Monthly police.uk counts of one ward, and of all Met wards (London)."""
    counts, areas = _point_counts(instance, "ward")
    met = set(areas.loc[areas["force"] == "metropolitan", "code"])
    area = counts[counts["code"] == code].groupby("month")["n"].sum()
    london = counts[counts["code"].isin(met)].groupby("month")["n"].sum()
    return area, london


def _section(html, start, end="</section>"):
    i = html.index(start)
    return html[i:html.index(end, i)]


def test_trend_chart_and_its_table(client, instance):
    html = _page(client, f"/area/ward/{WARD}")
    area, london = _ward_series(instance)
    months = _months_back(24)
    table = _section(html, 'id="monthly-table"', "</table>")
    rows = re.findall(r'<tr data-month="(\d{4}-\d{2})"[^>]*><th scope="row">\1</th>\s*'
                      r'<td class="num">([^<]+)</td><td class="num">([^<]+)</td>', table)
    assert [r[0] for r in rows] == months
    assert {m: (a, b) for m, a, b in rows} == \
        {m: (f"{int(area.get(m, 0)):,}", f"{int(london.get(m, 0)):,}") for m in months}
    bars = re.findall(r'<rect class="bar-(now|before)" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)">'
                      r'<title>(\d{4}-\d{2}): ([\d,]+)</title>', _section(html, 'class="chart"', "</svg>"))
    assert [b[3] for b in bars] == months
    assert [b[0] for b in bars] == ["before"] * 12 + ["now"] * 12
    assert [int(b[4].replace(",", "")) for b in bars] == [int(area.get(m, 0)) for m in months]
    # Heights are proportional to the counts (one scale), and every bar stands on the same baseline.
    heights = [(float(h), int(n.replace(",", ""))) for _c, _y, h, _m, n in bars]
    tallest = max(heights, key=lambda hn: hn[1])
    assert all(abs(h - n * tallest[0] / tallest[1]) <= 0.1 for h, n in heights)  # heights are rounded to 0.1
    assert len({round(float(y) + float(h), 1) for _c, y, h, _m, _n in bars}) == 1


def test_last_three_months_against_a_year_earlier(client, instance):
    html = _page(client, f"/area/ward/{WARD}")
    area, london = _ward_series(instance)
    now, before = _months_back(3), _months_back(3, end=_months_back(13)[0])
    section = _section(html, 'id="three-months"')
    assert _has(section, f"{now[0]} to {now[-1]} against {before[0]} to {before[-1]}")
    for name, series in (("Cherrywell", area), ("London (Metropolitan Police area)", london)):
        a, b = int(series.reindex(now).fillna(0).sum()), int(series.reindex(before).fillna(0).sum())
        pct = f"{100.0 * (a - b) / b:+.0f}%" if b else "–"
        cells = re.search(r'<th scope="row">[^<]*' + re.escape(name) + r'[^<]*</th><td class="num">([^<]+)</td>\s*'
                          r'<td class="num">([^<]+)</td><td class="num">([^<]+)</td>', section)
        if name == "Cherrywell" and cells is None:
            cells = re.search(r'<tr><th scope="row">[^<]+</th><td class="num">([^<]+)</td>\s*'
                              r'<td class="num">([^<]+)</td><td class="num">([^<]+)</td>', section)
        assert cells.groups() == (f"{a:,}", f"{b:,}", pct)


def test_target_says_when_the_baseline_is_not_loaded(client):
    section = _section(_page(client, f"/area/ward/{WARD}"), 'id="target"')
    assert _has(section, "All crime: -20% against financial year 2012/13")
    assert _has(section, "The baseline period is not loaded")
    assert _has(section, "2012-04 to 2013-03")
    assert not _has(section, "On target")


@pytest.mark.parametrize("pct", [-20.0, 50.0])
def test_target_progress_against_a_loaded_baseline(instance, pct):
    app = create_app({"INSTANCE": str(instance), "TESTING": True, "TARGET_BASELINE_YEAR": "2022-07/2023-06",
                      "TARGET_PCT": pct})
    section = _section(_page(app.test_client(), f"/area/ward/{WARD}"), 'id="target"')
    area, _london = _ward_series(instance)
    baseline = int(area.reindex(_months_between("2022-07", "2023-06")).fillna(0).sum())
    now = int(area.reindex(_months_back(12)).fillna(0).sum())
    target = baseline * (1 + pct / 100)
    assert _has(section, f"Baseline (2022-07 to 2023-06): <strong>{baseline:,}</strong>")
    assert _has(section, f"at most <strong>{target:,.0f}</strong>")
    assert _has(section, f"<strong>{now:,}</strong>")
    if now <= target:
        assert _has(section, "On target.")
    else:
        assert _has(section, f"Not on target: {round(now - target):,} crimes above it.")


def test_no_target_configured(instance):
    app = create_app({"INSTANCE": str(instance), "TESTING": True, "TARGET_BASELINE_YEAR": ""})
    assert _has(_section(_page(app.test_client(), f"/area/ward/{WARD}"), 'id="target"'), "No target is configured")


def _touching(instance, level, code):
    with _db(instance) as db:
        areas = db.store.areas(_layer_id(db, level))
    shapes = gpd.GeoSeries(areas.geometry.to_numpy(), index=areas["code"].tolist())
    return set(shapes.index[shapes.intersects(shapes[code])]) - {code}


@pytest.mark.parametrize("level, code", [("ward", WARD), ("borough", "E09900001")])
def test_neighbours_are_the_touching_areas(client, instance, level, code):
    html = _page(client, f"/area/{level}/{code}")
    table = _section(html, 'id="neighbours-table"', "</table>")
    listed = re.findall(r'<tr data-code="([^"]+)">', table)
    assert set(listed) == _touching(instance, level, code) and len(listed) == len(set(listed)) > 0
    sums = _sums(instance, level, _months_back(12))
    for listed_code in listed:
        row = _section(table, f'<tr data-code="{listed_code}">', "</tr>")
        assert re.search(rf'<td class="num">{re.escape(sums[listed_code])}</td>', row)


def _map_points(html):
    """Point features of the folium map data in a page: (lon, lat) -> properties."""
    decoder, points = json.JSONDecoder(), {}
    for found in re.finditer(r"_add\(", html):
        try:
            data, _end = decoder.raw_decode(html, found.end())
        except json.JSONDecodeError:
            continue
        for feature in data.get("features", []) if isinstance(data, dict) else []:
            if feature["geometry"]["type"] == "Point":
                points[tuple(feature["geometry"]["coordinates"])] = feature["properties"]
    return points


def test_map_points_are_the_published_locations_counted(client, instance):
    html = _page(client, f"/area/ward/{WARD}")
    months = _months_back(12)
    with _db(instance) as db:
        crimes = db.frame(
            f"SELECT c.month, l.lon_e6, l.lat_e6, l.x, l.y FROM crimes c JOIN locations l ON l.id = c.location_id "
            f"WHERE c.month IN ({','.join('?' * len(months))})", months)
        areas = db.store.areas(_layer_id(db, "ward"))
    geom = areas.geometry.to_numpy()[(areas["code"] == WARD).to_numpy()][0]
    inside = shapely.contains_xy(geom, crimes["x"], crimes["y"])
    expected = crimes[inside].groupby(["lon_e6", "lat_e6"]).size()
    drawn = _map_points(html)
    assert {(round(lon * 1e6), round(lat * 1e6)): int(re.search(r": (\d+)$", p["tip"]).group(1))
            for (lon, lat), p in drawn.items()} == {k: int(v) for k, v in expected.items()}
    # Never more precise than published: six decimals at most.
    assert all(len(repr(v).split(".")[1]) <= 6 for xy in drawn for v in xy)
    assert _has(html, f"{int(expected.sum()):,} crimes\n    at {len(expected):,} locations")


def test_points_are_capped_and_say_so(instance):
    app = create_app({"INSTANCE": str(instance), "TESTING": True, "AREA_MAP_POINTS_MAX": 3})
    html = _page(app.test_client(), f"/area/ward/{WARD}")
    drawn = _map_points(html)
    assert len(drawn) == 3
    assert re.search(r"the\s+3 locations with the most crimes are drawn", html)


def test_a_met_type_has_no_points_and_says_why(client):
    html = _page(client, f"/area/ward/{WARD}?crime=met-burglary")
    assert _map_points(html) == {}
    assert _has(html, "The Met&#39;s count tables have no locations")


def test_crimes_with_no_location_at_force_level(client, instance):
    months = _months_back(12)
    with _db(instance) as db:
        expected = int(db.rows(
            f"SELECT SUM(no_location) FROM batches WHERE feed = 'police.uk:metropolitan' AND month IN "
            f"({','.join('?' * len(months))})", months)[0][0])
    section = _section(_page(client, f"/area/ward/{WARD}"), 'id="no-location"')
    assert expected > 0
    assert _has(section, f"<strong>{expected:,}</strong> crimes in {months[0]} to {months[-1]}")
    assert _has(section, "Metropolitan Police with no location")


def test_printable_summary(client):
    html = _page(client, f"/area/ward/{WARD}?print=1")
    _every_page_shows(html)
    assert _has(html, '<body class="print-view">')
    assert _has(html, "Performance summary: ")
    assert not _has(html, "folium-map") and not _has(html, "leaflet.js")
    for section in ('id="by-type"', 'id="trend"', 'id="three-months"', 'id="mopac7"', 'id="target"',
                    'id="neighbours"', 'id="no-location"'):
        assert _has(html, section)
    assert re.search(r'<details class="table-alternative" open>', html)
    full = _page(client, f"/area/ward/{WARD}")
    assert _has(full, f'href="/area/ward/{WARD}?print=1')
    assert _has(_page(client, f"/area/ward/{WARD}?print=yes", status=400), "unknown print")


def test_new_sections_escape_names_and_street_texts(client):
    page = _page(client, f"/area/ward/{WARD}")
    hostile = [p for p in _map_points(page).values() if "Evil" in p["tip"]]
    assert len(hostile) == 1  # the map data, decoded: escaped HTML, never markup
    assert hostile[0]["tip"].startswith("&lt;script&gt;alert(2)&lt;/script&gt; On or near &lt;b&gt;Evil&lt;/b&gt; Street")
    assert hostile[0]["popup"].startswith(
        "<strong>&lt;script&gt;alert(2)&lt;/script&gt; On or near &lt;b&gt;Evil&lt;/b&gt; Street</strong>")
    for html in (page, _page(client, f"/area/ward/{WARD}?print=1")):
        assert not _has(html, "<script>alert(")
        assert not _has(html, "\\u003cscript\\u003ealert") and not _has(html, "<b>Evil")
    # WARD touches the ward with the hostile name: its neighbours table shows it escaped.
    neighbours = _section(page, 'id="neighbours-table"', "</table>")
    assert _has(neighbours, "&lt;script&gt;alert(1)&lt;/script&gt; Demo Ward")


def test_map_table_carries_raw_values_for_sorting(client, instance):
    html = _page(client, "/?level=ward&period=last-3-months")
    assert _has(html, "<table class=\"figures\" id=\"figures\" data-sortable>")
    assert _has(html, "/static/sortable.js")
    found = dict(re.findall(r'<tr data-code="([^"]+)"[^>]*>.*?<td class="num count" data-sort="(\d*)">', html,
                            flags=re.S))
    assert {code: f"{int(n):,}" for code, n in found.items()} == _sums(instance, "ward", _months_back(3))
    bands = re.findall(r'<td class="band" data-sort="(\d*)">', html)
    assert len(bands) == len(found) and set(bands) <= {"0", "1", "2", "3", "4", ""}
