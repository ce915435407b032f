"""GET /api/v1/postcodes...: lookup, nearest and autocomplete on the real Code-Point Open London extract.

The areas a postcode resolves to are checked against an independent
``geopandas.sjoin`` of the postcode points with the loaded ward polygons, for
every one of the 180,792 postcodes, asked for in lower case without a space.
"""

import gzip
import math

import pytest

from crimemap.web import create_app
from tests.conftest import _need_shared
from tests.postcode_instances import BOROUGHS_2022, CODEPOINT, WARDS_2022, build

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return build(tmp_path_factory.mktemp("pc-api") / "instance", _need_shared)


@pytest.fixture(scope="module")
def client(loaded):
    return create_app({"INSTANCE": str(loaded), "TESTING": True}).test_client()


@pytest.fixture(scope="module")
def codepoint():
    """Every row of the Code-Point Open extract: postcode -> (lat, lon, eastings, northings, district)."""
    rows = {}
    with gzip.open(_need_shared(CODEPOINT), "rt", encoding="utf-8") as f:
        next(f)
        for line in f:
            c = line.rstrip("\n").split(",")
            rows[c[0]] = (float(c[10]), float(c[11]), int(c[2]), int(c[3]), c[8])
    return rows


def _json(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    return response.get_json()


def test_a_postcode_in_any_spelling(client, codepoint):
    canonical = _json(client.get("/api/v1/postcodes/SW1A%201AA"), 200)
    assert canonical["status"] == 200
    result = canonical["result"]
    assert result["postcode"] == "SW1A 1AA"
    lat, lon, *_ = codepoint["SW1A 1AA"]
    assert math.isclose(result["latitude"], lat, abs_tol=1e-6) and math.isclose(result["longitude"], lon,
                                                                                  abs_tol=1e-6)
    for key in ("ward", "snt", "borough"):
        assert set(result[key]) == {"code", "name"}
    assert result["borough"] == {"code": "E09000033", "name": "Westminster"}
    assert result["snt"] == result["ward"]  # no SNT layer is loaded: SNT = ward
    for spelling in ("sw1a1aa", "  Sw1A   1aA ", "SW1A1AA"):
        assert _json(client.get(f"/api/v1/postcodes/{spelling}"), 200) == canonical


def test_every_postcode_resolves_to_the_ward_polygon_that_contains_it(client, loaded, codepoint):
    """All 180,792 postcodes, lower case and without a space, against an independent sjoin.

    The borough is the containing ward's borough. 22 postcodes lie a few
    metres outside the generalised London outline, so in no ward polygon:
    they get no ward, and the borough polygon or the directory's district.
    """
    import geopandas

    wards = geopandas.read_file(_need_shared(WARDS_2022))[["WD22CD", "LAD22CD", "geometry"]]
    boroughs = geopandas.read_file(_need_shared(BOROUGHS_2022))
    code_col = next(c for c in boroughs.columns if c.upper().startswith("LAD") and c.upper().endswith("CD"))
    names = list(codepoint)
    points = geopandas.GeoDataFrame(
        {"postcode": names}, crs="EPSG:27700",
        geometry=geopandas.points_from_xy([codepoint[n][2] for n in names], [codepoint[n][3] for n in names]))
    # A point on a shared edge belongs to the area with the smallest code (docs/join.md).
    in_ward = geopandas.sjoin(points, wards, predicate="intersects").sort_values("WD22CD") \
        .groupby("postcode")[["WD22CD", "LAD22CD"]].first()
    in_borough = geopandas.sjoin(points, boroughs[[code_col, "geometry"]], predicate="intersects") \
        .sort_values(code_col).groupby("postcode")[code_col].first().to_dict()
    ward_of = dict(zip(in_ward.index, zip(in_ward["WD22CD"], in_ward["LAD22CD"])))
    expected = {name: ward_of.get(name) or (None, in_borough.get(name, codepoint[name][4])) for name in names}
    outside = [n for n, (ward, _) in expected.items() if ward is None]
    assert len(outside) == 22

    get_json = _wsgi_get_json(client.application)
    wrong = []
    for name in names:
        body = get_json("/api/v1/postcodes/" + name.replace(" ", "").lower())
        result = body.get("result") or {}
        got = ((result.get("ward") or {}).get("code"), (result.get("borough") or {}).get("code"))
        if body.get("status") != 200 or got != expected[name]:
            wrong.append((name, body.get("status"), got, expected[name]))
    assert wrong[:20] == [] and len(wrong) == 0


def _wsgi_get_json(app):
    """GET through the whole WSGI app (fast path and Flask alike), without the test client's per-call cost.

    The environ is the test client's own for a GET, built once; each call swaps in
    the path and a fresh empty body. For 180,792 calls this saves most of the time
    (werkzeug's EnvironBuilder, cookies and URL rebuilding), not any of the app's work.
    """
    import io
    import json

    from werkzeug.test import EnvironBuilder

    template = EnvironBuilder(path="/", method="GET").get_environ()

    def get_json(path):
        environ = dict(template, PATH_INFO=path, REQUEST_URI=path, RAW_URI=path)
        environ["wsgi.input"] = io.BytesIO()
        headers = []
        body = app(environ, lambda status, response_headers, exc_info=None: headers.append(response_headers))
        try:
            data = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        assert ("Content-Type", "application/json") in headers[0], headers
        return json.loads(data)

    return get_json


def test_invalid_postcode_is_400(client):
    for text in ("NOTAPOSTCODE", "SW1A", "12345", "SW1A 1A", "QQ1 1AA"):
        assert _json(client.get(f"/api/v1/postcodes/{text}"), 400) == {"status": 400, "error": "Invalid postcode"}


def test_unknown_postcode_is_404_with_a_way_forward(client):
    body = _json(client.get("/api/v1/postcodes/sw1a9zz"), 404)
    assert body["status"] == 404 and body["error"] == "Postcode not found"
    assert body["outcode"]["outcode"] == "SW1A"
    assert body["suggestions"], body
    # Outside London: valid, not in the lookup.
    body = _json(client.get("/api/v1/postcodes/ZE1%200AA"), 404)
    assert body["error"] == "Postcode not found"


def test_city_of_london_says_which_force(client):
    result = _json(client.get("/api/v1/postcodes/EC2V7HH"), 200)["result"]
    assert result["borough"]["code"] == "E09000001"
    assert result["force"] == "city-of-london"
    assert "City of London Police" in result["message"]
    met = _json(client.get("/api/v1/postcodes/SW1A1AA"), 200)["result"]
    assert met["force"] == "metropolitan" and not met.get("message")


def test_nearest(client, codepoint):
    lat, lon, *_ = codepoint["SW1A 1AA"]
    body = _json(client.get(f"/api/v1/postcodes?lat={lat}&lon={lon}"), 200)
    result = body["result"]
    assert result[0]["postcode"] == "SW1A 1AA" and result[0]["distance_m"] < 1
    assert 1 <= len(result) <= 10
    distances = [r["distance_m"] for r in result]
    assert distances == sorted(distances) and distances[-1] <= 100
    assert all(r["ward"] and r["borough"] for r in result)
    wide = _json(client.get(f"/api/v1/postcodes?lat={lat}&lon={lon}&limit=100&radius=2000"), 200)["result"]
    assert len(wide) == 100
    assert _json(client.get("/api/v1/postcodes?lat=0&lon=0"), 200)["result"] == []


@pytest.mark.parametrize("query, word", [
    ("", "lat is required"), ("lat=51.5", "lon is required"), ("lat=abc&lon=0", "bad lat"),
    ("lat=95&lon=0", "bad lat"), ("lat=51.5&lon=nan", "bad lon"), ("lat=51.5&lon=0&limit=101", "bad limit"),
    ("lat=51.5&lon=0&limit=0", "bad limit"), ("lat=51.5&lon=0&radius=2001", "bad radius"),
    ("lat=51.5&lon=0&radius=x", "bad radius"),
])
def test_nearest_refuses_bad_parameters(client, query, word):
    body = _json(client.get(f"/api/v1/postcodes?{query}"), 400)
    assert set(body) == {"status", "error"} and word in body["error"]


def test_autocomplete(client, codepoint):
    body = _json(client.get("/api/v1/postcodes/sw1a%201/autocomplete"), 200)
    expected = sorted(pc for pc in codepoint if pc.startswith("SW1A 1"))[:10]
    assert body == {"status": 200, "result": expected}
    assert len(_json(client.get("/api/v1/postcodes/E1/autocomplete?limit=100"), 200)["result"]) == 100
    assert _json(client.get("/api/v1/postcodes/ZZ9/autocomplete"), 200)["result"] == []
    assert "bad limit" in _json(client.get("/api/v1/postcodes/E1/autocomplete?limit=1000"), 400)["error"]


def test_no_lookup_loaded_is_503(tmp_path):
    client = create_app({"INSTANCE": str(tmp_path), "TESTING": True}).test_client()
    for url in ("/api/v1/postcodes/SW1A1AA", "/api/v1/postcodes?lat=51.5&lon=-0.1",
                "/api/v1/postcodes/SW1/autocomplete"):
        body = _json(client.get(url), 503)
        assert body["status"] == 503 and "no postcode lookup is loaded" in body["error"]
