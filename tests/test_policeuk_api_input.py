"""Bad input to the police.uk-compatible API answers 400 with a JSON error, never 500 (Hypothesis).

Runs against the real 2018 instance (read-only), so a value that passes the
checks also goes through the real queries.
"""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
NUMBER = re.compile(r"\s*[+-]?([0-9]{1,3}(\.[0-9]*)?|\.[0-9]+)\s*")
# Printable text without lone surrogates (which no client can send in a URL).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def client(api_2018):
    from crimemap.web import create_app

    app = create_app({"INSTANCE": str(api_2018.instance), "TESTING": True, "POLICEUK_RATE_LIMIT": ""})
    return app.test_client()


def _is_400_json(response):
    body = response.get_json(silent=True)
    return (response.status_code == 400 and isinstance(body, dict) and body.get("status") == 400
            and isinstance(body.get("error"), str) and body["error"])


def _never_500(response, allowed=(200, 400)):
    assert response.status_code in allowed, response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and body["status"] == response.status_code


def _bad_number():
    not_a_number = TEXT.filter(lambda s: not NUMBER.fullmatch(s))
    out_of_range = st.floats(min_value=180.0001, max_value=1e300).map(lambda v: f"{v:.6f}") | st.floats(
        max_value=-180.0001, min_value=-1e300).map(lambda v: f"{v:.6f}")
    special = st.sampled_from(["nan", "NaN", "inf", "-inf", "1e3", "0x10", "", " ", "51,5", "51.5.1", "١٢", "∞"])
    return not_a_number | out_of_range | special


@FUZZ
@given(lat=_bad_number())
def test_bad_lat_is_400(client, lat):
    response = client.get("/api/crimes-street/all-crime", query_string={"lat": lat, "lng": "-0.12"})
    assert _is_400_json(response), (lat, response.status_code)


@FUZZ
@given(lng=_bad_number())
def test_bad_lng_is_400(client, lng):
    response = client.get("/api/crimes-street/burglary", query_string={"lat": "51.5", "lng": lng})
    assert _is_400_json(response), (lng, response.status_code)


@FUZZ
@given(date=TEXT.filter(lambda s: s and not MONTH.fullmatch(s)) | st.sampled_from(["2018-00", "2018-13", "18-04",
                                                                              "2018-4", "2018/04", "201804"]))
def test_bad_date_is_400(client, date):
    # An empty date means "not given" (the latest month), as when a client leaves it out.
    for url in ("/api/crimes-street/all-crime?lat=51.5&lng=-0.12", "/api/crime-categories",
                "/api/crimes-no-location?force=metropolitan", "/api/crimes-at-location?location_id=1"):
        response = client.get(url, query_string={"date": date}) if "?" not in url else client.get(
            url + "&" + _encode({"date": date}))
        assert _is_400_json(response), (url, date, response.status_code)


def _encode(params):
    from urllib.parse import urlencode

    return urlencode(params)


def _point():
    return st.tuples(st.floats(-90, 90), st.floats(-180, 180)).map(lambda p: f"{p[0]:.6f},{p[1]:.6f}")


@FUZZ
@given(poly=st.one_of(
    TEXT,
    st.lists(_point(), min_size=0, max_size=2).map(":".join),           # too few points
    st.lists(_point(), min_size=3, max_size=8).map(lambda ps: ":".join(ps) + ":x,y"),
    st.lists(_point(), min_size=3, max_size=8).map(lambda ps: ":".join(ps).replace(",", ";", 1)),
    _point().map(lambda p: ":".join([p] * 4)),                           # one point repeated: no area
    st.sampled_from(["51.5,-0.1:51.6,-0.1:51.7,-0.1", "51.5,-0.1:51.6,-0.2:nan,0", "::", ",:,:,"]),
))
def test_bad_poly_is_400_and_any_poly_never_500(client, poly):
    for response in (client.get("/api/crimes-street/all-crime", query_string={"poly": poly, "date": "2018-04"}),
                     client.post("/api/crimes-street/all-crime", data={"poly": poly, "date": "2018-04"})):
        _never_500(response, allowed=(200, 400, 503))


@FUZZ
@given(poly=st.one_of(
    st.lists(_point(), min_size=0, max_size=2).map(":".join),
    st.lists(_point(), min_size=3, max_size=8).map(lambda ps: ":".join(ps) + ":x,y"),
    _point().map(lambda p: ":".join([p] * 4)),
    st.sampled_from(["51.5,-0.1:51.6,-0.1:51.7,-0.1", "51.5,-0.1:51.6,-0.2:nan,0", "::", ",:,:,", "51.5"]),
))
def test_invalid_poly_is_400(client, poly):
    response = client.post("/api/crimes-street/all-crime", data={"poly": poly})
    assert _is_400_json(response), (poly, response.status_code)


@FUZZ
@given(lat=TEXT, lng=TEXT, q=TEXT, location_id=TEXT, category=TEXT, force=TEXT)
def test_any_value_anywhere_is_never_500(client, lat, lng, q, location_id, category, force):
    _never_500(client.get("/api/crimes-street/all-crime", query_string={"lat": lat, "lng": lng}))
    _never_500(client.get("/api/crimes-at-location", query_string={"lat": lat, "lng": lng}))
    _never_500(client.get("/api/crimes-at-location", query_string={"location_id": location_id}))
    _never_500(client.get("/api/locate-neighbourhood", query_string={"q": q}), allowed=(200, 400, 404))
    _never_500(client.get("/api/crimes-no-location", query_string={"force": force, "category": category}),
               allowed=(200, 400, 404))
    _never_500(client.get("/api/crime-categories", query_string={"date": q}))


@FUZZ
@given(lat=st.floats(-90, 90), lng=st.floats(-180, 180))
def test_valid_points_anywhere_answer(client, lat, lng):
    # Poles, the antimeridian and the far side of the world are valid: 200 (often empty), never 500.
    _never_500(client.get("/api/crimes-street/all-crime", query_string={"lat": repr(lat), "lng": repr(lng)})
               if "e" not in repr(lat) + repr(lng) else client.get("/api/crimes-street/all-crime?lat=0&lng=0"))
    _never_500(client.get("/api/locate-neighbourhood", query_string={"q": f"{lat:.6f},{lng:.6f}"}),
               allowed=(200, 404))
