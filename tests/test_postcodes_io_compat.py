"""The postcodes.io-compatible endpoints under /postcodes.io.

First with Flask's test client (envelope, status codes and postcodes.io's exact
error messages), then against a live ``crimemap serve`` (gunicorn) on
127.0.0.1: with the real postcodes.io client from PyPI, ``postcodes-io``
0.1.0, unchanged except for its base URL, and with plain ``requests``.

(``postcodes-io-api`` 0.0.4 also takes a base URL, but its wheel installs a
top-level ``tests`` package that shadows this folder's, so it is not used.)
"""

import pytest

from crimemap.web import create_app
from tests.conftest import _need_shared
from tests.postcode_instances import build, live_server

pytestmark = pytest.mark.shared_data

TOO_MANY = "Too many postcodes submitted. Up to 100 postcodes can be bulk requested at a time"
# The fields every postcodes.io postcode result carries (src/app/models/postcode.ts, PostcodeInterface).
FIELDS = {"postcode", "quality", "eastings", "northings", "country", "longitude", "latitude", "outcode", "incode",
          "admin_district", "admin_ward", "codes"}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return build(tmp_path_factory.mktemp("pc-io") / "instance", _need_shared)


@pytest.fixture(scope="module")
def client(loaded):
    return create_app({"INSTANCE": str(loaded), "TESTING": True}).test_client()


def _json(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    return response.get_json()


def test_lookup(client):
    response = client.get("/postcodes.io/postcodes/sw1a1aa")
    body = _json(response, 200)
    assert set(body) == {"status", "result"} and body["status"] == 200
    result = body["result"]
    assert FIELDS <= set(result)
    assert result["postcode"] == "SW1A 1AA" and result["outcode"] == "SW1A" and result["incode"] == "1AA"
    assert result["admin_district"] == "Westminster" and result["codes"]["admin_district"] == "E09000033"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("url, message", [
    ("/postcodes.io/postcodes/NOTAPOSTCODE", "Invalid postcode"),
    ("/postcodes.io/postcodes/ZE1%200AA", "Postcode not found"),
    ("/postcodes.io/terminated_postcodes/NOTAPOSTCODE", "Invalid postcode"),
    ("/postcodes.io/terminated_postcodes/SW1A1AA", "Terminated postcode not found"),
    ("/postcodes.io/outcodes/ZZ99", "Outcode not found"),
    ("/postcodes.io/postcodes/ZE10AA/nearest", "Postcode not found"),
])
def test_not_found_errors_are_postcodes_io_404s(client, url, message):
    assert _json(client.get(url), 404) == {"status": 404, "error": message}


def test_validate(client):
    assert _json(client.get("/postcodes.io/postcodes/sw1a 1aa/validate"), 200) == {"status": 200, "result": True}
    for text in ("ZE10AA", "NOTAPOSTCODE", "%3Cscript%3E"):
        assert _json(client.get(f"/postcodes.io/postcodes/{text}/validate"), 200) == {"status": 200,
                                                                                      "result": False}


def test_autocomplete(client):
    result = _json(client.get("/postcodes.io/postcodes/SW1A1/autocomplete"), 200)["result"]
    assert len(result) == 10 and all(pc.startswith("SW1A 1") for pc in result) and result == sorted(result)
    assert len(_json(client.get("/postcodes.io/postcodes/E1/autocomplete?limit=500"), 200)["result"]) == 100
    assert _json(client.get("/postcodes.io/postcodes/ZZ9/autocomplete"), 200) == {"status": 200, "result": None}
    assert _json(client.get("/postcodes.io/postcodes/E1/autocomplete?limit=x"), 400)["error"] == \
        "Invalid result limit submitted"


def test_bulk_lookup(client):
    body = _json(client.post("/postcodes.io/postcodes", json={"postcodes": ["sw1a1aa", "ZE1 0AA", "nonsense"]}),
                 200)
    assert [r["query"] for r in body["result"]] == ["sw1a1aa", "ZE1 0AA", "nonsense"]
    assert body["result"][0]["result"]["postcode"] == "SW1A 1AA"
    assert body["result"][1]["result"] is None and body["result"][2]["result"] is None
    # Form-encoded, as express's urlencoded body parser reads it (postcodes-io 0.1.0 posts this way).
    form = _json(client.post("/postcodes.io/postcodes", data={"postcodes": ["SW1A1AA", "EC2V7HH"]}), 200)
    assert [r["result"]["postcode"] for r in form["result"]] == ["SW1A 1AA", "EC2V 7HH"]
    assert _json(client.post("/postcodes.io/postcodes", json={"postcodes": []}), 200)["result"] == []
    assert len(_json(client.post("/postcodes.io/postcodes", json={"postcodes": ["SW1A1AA"] * 100}),
                     200)["result"]) == 100


@pytest.mark.parametrize("kwargs, message", [
    ({"json": {"postcodes": ["SW1A1AA"] * 101}}, TOO_MANY),
    ({"json": {"postcodes": "SW1A1AA"}}, "Invalid data submitted. You need to provide a JSON array"),
    ({"json": {"nothing": 1}}, "Invalid JSON query submitted. \nYou need to submit a JSON object with an array "
                               "of postcodes or geolocation objects.\nAlso ensure that Content-Type is set to "
                               "application/json\n"),
    ({"data": "{not json", "content_type": "application/json"}, "Invalid JSON submitted.\nYou need to submit a "
     "JSON object with an array of postcodes or geolocation objects.\nAlso ensure that Content-Type is set to "
     "application/json\n"),
    ({"json": {"geolocations": [{"longitude": 0, "latitude": 51}] * 101}},
     "Too many locations submitted. Up to 100 locations can be bulk requested at a time"),
    ({"json": {"geolocations": [{"longitude": "x", "latitude": 51}]}}, "Invalid longitude/latitude submitted"),
])
def test_bulk_errors(client, kwargs, message):
    assert _json(client.post("/postcodes.io/postcodes", **kwargs), 400) == {"status": 400, "error": message}


def test_reverse_geocode(client):
    here = _json(client.get("/postcodes.io/postcodes/SW1A1AA"), 200)["result"]
    lon, lat = here["longitude"], here["latitude"]
    for url in (f"/postcodes.io/postcodes?lon={lon}&lat={lat}", f"/postcodes.io/postcodes?longitude={lon}"
                f"&latitude={lat}", f"/postcodes.io/postcodes/lon/{lon}/lat/{lat}",
                f"/postcodes.io/postcodes/lat/{lat}/lon/{lon}"):
        result = _json(client.get(url), 200)["result"]
        assert result[0]["postcode"] == "SW1A 1AA" and result[0]["distance"] < 1
        assert FIELDS <= set(result[0])
    assert _json(client.get("/postcodes.io/postcodes?lon=0&lat=0"), 200) == {"status": 200, "result": None}
    assert len(_json(client.get(f"/postcodes.io/postcodes?lon={lon}&lat={lat}&limit=1000&radius=99999"),
                     200)["result"]) == 100
    assert _json(client.get("/postcodes.io/postcodes?lon=x&lat=51"), 400)["error"] == \
        "Invalid longitude/latitude submitted"
    assert _json(client.get(f"/postcodes.io/postcodes?lon={lon}&lat={lat}&radius=far"), 400)["error"] == \
        "Invalid lookup radius submitted"
    bulk = _json(client.post("/postcodes.io/postcodes", json={"geolocations": [
        {"longitude": lon, "latitude": lat, "limit": 2, "radius": 500}, {"longitude": 0, "latitude": 0}]}),
        200)["result"]
    assert bulk[0]["query"] == {"longitude": lon, "latitude": lat, "limit": 2, "radius": 500}
    assert len(bulk[0]["result"]) == 2 and bulk[1]["result"] is None


def test_search_query(client):
    result = _json(client.get("/postcodes.io/postcodes?q=SW1A 1A"), 200)["result"]
    assert result and all(r["postcode"].startswith("SW1A 1A") for r in result)
    assert _json(client.get("/postcodes.io/postcodes"), 400)["error"] == \
        "No postcode query submitted. Remember to include query parameter"


def test_outcode(client):
    result = _json(client.get("/postcodes.io/outcodes/sw1a"), 200)["result"]
    assert result["outcode"] == "SW1A"
    assert 51.4 < result["latitude"] < 51.6 and -0.3 < result["longitude"] < 0.1
    assert "Westminster" in result["admin_district"]


def test_no_lookup_is_503_in_the_envelope(tmp_path):
    client = create_app({"INSTANCE": str(tmp_path), "TESTING": True}).test_client()
    body = _json(client.get("/postcodes.io/postcodes/SW1A1AA"), 503)
    assert set(body) == {"status", "error"} and body["status"] == 503


# --- real clients against a live server ------------------------------------------------------------


@pytest.fixture(scope="module")
def live(loaded):
    with live_server(loaded) as base:
        yield base + "/postcodes.io"


@pytest.mark.slow
def test_postcodes_io_client(live):
    """postcodes-io 0.1.0 (jimmyho): ``Postcodes(base_url=...)``."""
    from postcodes_io import Postcodes
    from postcodes_io.exceptions import PostcodeNotFoundError

    api = Postcodes(base_url=live)
    found = api.get("sw1a1aa")
    assert found["postcode"] == "SW1A 1AA" and found["admin_district"] == "Westminster"
    assert api.validate("SW1A 1AA") is True and api.validate("ZE1 0AA") is False
    with pytest.raises(PostcodeNotFoundError, match="Postcode not found"):
        api.get("ZE1 0AA")
    with pytest.raises(PostcodeNotFoundError, match="Invalid postcode"):
        api.get("NOTAPOSTCODE")
    many = api.get_many(["SW1A 1AA", "EC2V 7HH"])  # form-encoded POST
    assert [r["result"]["postcode"] for r in many] == ["SW1A 1AA", "EC2V 7HH"]
    near = api.nearest_by_geo(found["latitude"], found["longitude"])
    assert near[0]["postcode"] == "SW1A 1AA"
    assert api.nearest("SW1A 1AA")[0]["postcode"] == "SW1A 1AA"
    assert all(pc.startswith("SW1A 1") for pc in api.autocomplete("SW1A 1"))
    assert api.query("SW1A 1AA")[0]["postcode"] == "SW1A 1AA"


@pytest.mark.slow
def test_live_server_with_plain_requests(live):
    """The same routes over real HTTP with requests: JSON bulk bodies, CORS, status codes through gunicorn."""
    import requests

    session = requests.Session()
    found = session.get(f"{live}/postcodes/SW1A1AA", timeout=10)
    assert found.status_code == 200 and found.headers["Content-Type"] == "application/json"
    assert found.headers["Access-Control-Allow-Origin"] == "*"
    result = found.json()["result"]
    assert session.get(f"{live}/postcodes/NOTAPOSTCODE", timeout=10).json() == {"status": 404,
                                                                                "error": "Invalid postcode"}
    bulk = session.post(f"{live}/postcodes", json={"postcodes": ["SW1A1AA", "ZE10AA"]}, timeout=10).json()
    assert [r["result"] and r["result"]["postcode"] for r in bulk["result"]] == ["SW1A 1AA", None]
    too_many = session.post(f"{live}/postcodes", json={"postcodes": ["SW1A1AA"] * 101}, timeout=10)
    assert too_many.status_code == 400 and too_many.json() == {"status": 400, "error": TOO_MANY}
    near = session.get(f"{live}/postcodes", params={"latitude": result["latitude"],
                                                    "longitude": result["longitude"], "limit": 2}, timeout=10)
    assert near.json()["result"][0]["postcode"] == "SW1A 1AA"
    geo = session.post(f"{live}/postcodes", json={"geolocations": [
        {"longitude": result["longitude"], "latitude": result["latitude"], "limit": 1}]}, timeout=10).json()
    assert geo["result"][0]["result"][0]["postcode"] == "SW1A 1AA"
    assert session.get(f"{live}/outcodes/SW1A", timeout=10).json()["result"]["outcode"] == "SW1A"
    assert session.get(f"{live}/terminated_postcodes/SW1A1AA", timeout=10).json() == {
        "status": 404, "error": "Terminated postcode not found"}
