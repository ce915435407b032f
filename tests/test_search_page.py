"""The "your area" search: /search?q= leads to the ward's page with the postcode marked and a headline.

Real data: the 2022 approximate wards, LAD 2022 boroughs, LSOA 2011 population,
police.uk API points for 2018-03..05 and the Code-Point Open London lookup.
"""

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from crimemap import figures
from crimemap.store import open_store
from crimemap.web import create_app
from tests.conftest import _need_shared, settings_for
from tests.postcode_instances import build

pytestmark = pytest.mark.shared_data

HOSTILE = '"><script>alert(1)</script>'


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return build(tmp_path_factory.mktemp("pc-search") / "instance", _need_shared, crimes=True)


@pytest.fixture(scope="module")
def client(loaded):
    return create_app({"INSTANCE": str(loaded), "TESTING": True}).test_client()


def _html(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def _text(html):
    """The visible text of a page, whitespace collapsed (scripts and styles dropped)."""

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts, self.skip = [], 0

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("script", "style")

        def handle_endtag(self, tag):
            self.skip -= tag in ("script", "style")

        def handle_data(self, data):
            if not self.skip:
                self.parts.append(data)

    parser = Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def _forms(html):
    return re.findall(r"<form\b[^>]*>", html)


def test_a_postcode_redirects_to_its_ward_with_the_postcode_marked(client, loaded):
    response = client.get("/search?q=sw1a1aa")
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    ward = client.get("/api/v1/postcodes/SW1A1AA").get_json()["result"]["ward"]
    assert target.path == f"/area/ward/{ward['code']}"
    assert parse_qs(target.query) == {"postcode": ["SW1A 1AA"]}

    html = _html(client.get(response.headers["Location"]), 200)
    text = _text(html)
    assert "Your postcode: SW1A 1AA" in text
    assert f"Ward {ward['name']}" in text and "Borough Westminster" in text
    assert "Safer Neighbourhood Team area" in text
    # The headline, against the figures module.
    store = open_store(settings_for(loaded), readonly=True)  # the test leg's store
    months = figures.latest_months(store, 12)
    assert months[-1] == "2018-05"
    last = figures.find_area(figures.area_figures(store, "ward", months[-1:], with_geometry=False), ward["code"])
    year = figures.area_figures(store, "ward", months, with_geometry=False)
    row = figures.find_area(year, ward["code"])
    assert f"Last month (2018-05): {last['count']:,} crimes in {ward['name']}" in text
    assert f"Last 12 months ({months[0]} to 2018-05): {row['count']:,} crimes" in text
    assert f"against a London average of {year.attrs['london']['rate_per_1000']:,.1f}" in text
    assert "Data as of 2018-05" in text
    # The point is marked on the map.
    assert "L.circleMarker" in html and "SW1A 1AA" in html.split("L.circleMarker", 1)[1][:2000]


def test_the_search_needs_no_javascript_and_fits_a_phone(client):
    html = _html(client.get("/search"), 200)
    forms = _forms(html)
    assert forms and all('method="get"' in f and 'action="/search"' in f for f in forms)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<script" not in html


def test_an_invalid_postcode_re_renders_the_form_with_suggestions(client):
    html = _html(client.get("/search?q=sw1a"), 400)
    text = _text(html)
    assert "Invalid postcode" in text and "“sw1a” is not a full UK postcode" in text
    assert "SW1A is a postcode district in Westminster" in text
    links = re.findall(r'href="/search\?q=([^"]+)"', html)
    assert links and all(link.startswith("SW1A") for link in links)
    assert 'value="sw1a"' in html  # the form keeps what was typed


def test_an_unknown_postcode_offers_the_outcode_and_nearest_postcodes(client):
    html = _html(client.get("/search?q=SW1A 9ZZ"), 404)
    text = _text(html)
    assert "Postcode not found" in text and "SW1A 9ZZ" in text
    assert "SW1A is a postcode district" in text
    # The nearest known postcodes to the outcode's centre, as links to search again.
    assert re.search(r'<a href="/search\?q=SW1[A-Z]\+[0-9][A-Z]{2}">SW1[A-Z] [0-9][A-Z]{2}</a>', html)
    assert "Error 404" not in text  # the search form, never an error page
    assert _forms(html)


def test_outside_london_is_not_found_with_the_form(client):
    html = _html(client.get("/search?q=ZE1 0AA"), 404)
    assert "Postcode not found" in _text(html) and _forms(html)


def test_city_of_london_names_its_police_force(client):
    response = client.get("/search?q=EC2V 7HH")
    assert response.status_code == 302
    text = _text(_html(client.get(response.headers["Location"]), 200))
    assert "Your postcode: EC2V 7HH" in text
    assert "City of London Police" in text


def test_hostile_input_is_escaped(client):
    for url in (f"/search?q={HOSTILE}", f"/area/ward/E05013806?postcode={HOSTILE}"):
        response = client.get(url)
        html = response.get_data(as_text=True)
        assert response.status_code in (200, 400)
        assert "<script>alert(1)" not in html
    html = _html(client.get(f"/search?q={HOSTILE}"), 400)
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_area_page_without_or_with_a_foreign_postcode(client):
    ward = client.get("/api/v1/postcodes/SW1A1AA").get_json()["result"]["ward"]["code"]
    plain = _html(client.get(f"/area/ward/{ward}"), 200)
    assert "Your postcode:" not in plain and "L.circleMarker" not in plain
    junk = _html(client.get(f"/area/ward/{ward}?postcode=nonsense"), 200)
    assert "Your postcode:" not in junk
    elsewhere = _text(_html(client.get(f"/area/ward/{ward}?postcode=E1 6AN"), 200))
    assert "Your postcode: E1 6AN" in elsewhere and "E1 6AN is not in" in elsewhere


def test_empty_query_shows_the_form(client):
    text = _text(_html(client.get("/search?q=+"), 200))
    assert "Type a London postcode" in text


@pytest.fixture
def onspd(runner, fixtures):
    """The hand-written ONSPD sample (live, terminated and non-London rows) on two square test wards."""
    assert runner("boundaries", "load", "ward", fixtures / "postcodes" / "wards.geojson").exit_code == 0
    assert runner("postcodes", "refresh", fixtures / "postcodes" / "onspd_sample.csv").exit_code == 0
    return create_app({"INSTANCE": str(runner.instance), "TESTING": True}).test_client()


def test_a_terminated_postcode_names_its_end_and_the_nearest_live_one(onspd):
    html = _html(onspd.get("/search?q=wc2n9zz"), 404)
    text = _text(html)
    assert "Postcode not found" in text and "WC2N 9ZZ is no longer in use (terminated 2015-06)" in text
    assert '<a href="/search?q=WC2N+5DU">WC2N 5DU</a>' in html
    body = onspd.get("/api/v1/postcodes/WC2N9ZZ").get_json()
    assert body["status"] == 404 and body["error"] == "Postcode not found"
    assert body["terminated"]["year_terminated"] == 2015 and body["terminated"]["month_terminated"] == 6
    assert body["nearest"][0]["postcode"] == "WC2N 5DU"
    io = onspd.get("/postcodes.io/terminated_postcodes/wc2n9zz").get_json()
    assert io["status"] == 200 and io["result"]["postcode"] == "WC2N 9ZZ"
    assert (io["result"]["year_terminated"], io["result"]["month_terminated"]) == (2015, 6)
    assert onspd.get("/postcodes.io/postcodes/WC2N9ZZ").get_json() == {"status": 404, "error": "Postcode not found"}
    assert onspd.get("/postcodes.io/postcodes/WC2N9ZZ/validate").get_json() == {"status": 200, "result": False}


def test_outside_the_met_points_to_police_uk(onspd):
    html = _html(onspd.get("/search?q=M1 1AE"), 200)
    text = _text(html)
    assert "M1 1AE is not in the Metropolitan Police area" in text
    assert '<a href="https://www.police.uk/">police.uk</a>' in html
    assert _forms(html)
