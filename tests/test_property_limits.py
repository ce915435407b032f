"""Every size a request can choose is capped: at the limit it is answered, past it a 400 or 413 JSON error.

Runs on the demo instance with small limits configured, so each edge is cheap
to reach; Hypothesis then tries sizes anywhere past each limit. The limits and
the tests are listed in docs/security.md.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimemap.figures.months import month_range, shift
from crimemap.web import create_app
from tests.test_security_headers import END

LIMITS = {"QUERY_MONTHS_MAX": 6, "CLASSIFY_K_MAX": 6, "POLICEUK_POLY_MAX_VERTICES": 40, "POLICEUK_GET_URL_MAX": 600,
          "EMBED_PNG_MAX_PX": 500, "REQUEST_MAX_BYTES": 4096, "POLICEUK_RATE_LIMIT": "",
          "POLICEUK_MAX_CRIMES": 10_000_000}
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    from crimemap import demo

    folder = tmp_path_factory.mktemp("limits") / "instance"
    demo.build_demo_instance(folder, end_month=END)
    return folder


@pytest.fixture(scope="module")
def client(demo_folder):
    return create_app({"INSTANCE": str(demo_folder), **LIMITS}).test_client()


def _error(response, status, *words):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["status"] == status
    for word in words:
        assert word in body["error"], body["error"]


def _span(n):
    return shift(END, -(n - 1)), END


@pytest.mark.parametrize("route", ["/api/v1/choropleth?geometry=none", "/api/v1/areas/borough/{code}"])
def test_a_period_of_query_months_max_is_answered_one_more_is_400(client, route):
    code = client.get("/api/v1/choropleth?geometry=none").get_json()["features"][0]["properties"]["code"]
    url = route.format(code=code) + ("&" if "?" in route else "?")
    first, last = _span(LIMITS["QUERY_MONTHS_MAX"])
    assert len(month_range(first, last)) == LIMITS["QUERY_MONTHS_MAX"]
    assert client.get(f"{url}from={first}&to={last}").status_code == 200
    first, last = _span(LIMITS["QUERY_MONTHS_MAX"] + 1)
    _error(client.get(f"{url}from={first}&to={last}"), 400, str(LIMITS["QUERY_MONTHS_MAX"]))


@given(extra=st.integers(1, 12 * 200))
@FUZZ
def test_any_longer_period_is_400(client, extra):
    first, last = _span(LIMITS["QUERY_MONTHS_MAX"] + extra)
    _error(client.get(f"/api/v1/choropleth?geometry=none&from={first}&to={last}"), 400)


@pytest.mark.parametrize("level", ["ward", "borough"])
def test_a_range_past_ten_years_at_the_default_limit_is_400(demo_folder, level):
    from crimemap.config import DEFAULTS

    client = create_app({"INSTANCE": str(demo_folder)}).test_client()
    assert DEFAULTS["QUERY_MONTHS_MAX"] == 120
    first, last = shift(END, -DEFAULTS["QUERY_MONTHS_MAX"]), END  # 121 months
    _error(client.get(f"/api/v1/choropleth?level={level}&from={first}&to={last}"), 400, "120")
    _error(client.get(f"/api/v1/areas/{level}/NOPE?from={first}&to={last}"), 400, "120")


@given(k=st.integers(-10, 1000))
@FUZZ
def test_classes_past_classify_k_max_are_400(client, k):
    response = client.get(f"/api/v1/choropleth?geometry=none&classify=quantiles&k={k}")
    if 2 <= k <= LIMITS["CLASSIFY_K_MAX"]:
        assert response.status_code == 200
    else:
        _error(response, 400, "k")


def _poly(n):
    # A small ring around central London, n points.
    import math

    return ":".join(f"{51.5 + 0.01 * math.sin(2 * math.pi * i / n):.5f},{-0.12 + 0.02 * math.cos(2 * math.pi * i / n):.5f}"
                    for i in range(n))


def test_a_poly_of_the_most_vertices_is_answered_one_more_is_400(client):
    most = LIMITS["POLICEUK_POLY_MAX_VERTICES"]
    assert client.post("/api/crimes-street/all-crime", data={"poly": _poly(most)}).status_code == 200
    _error(client.post("/api/crimes-street/all-crime", data={"poly": _poly(most + 1)}), 400, str(most))


@given(n=st.integers(LIMITS["POLICEUK_POLY_MAX_VERTICES"] + 1, 150))
@FUZZ
def test_any_bigger_poly_is_400_or_413(client, n):
    response = client.post("/api/crimes-street/all-crime", data={"poly": _poly(n)})
    assert response.status_code in (400, 413)
    assert response.get_json()["status"] == response.status_code


@given(size=st.integers(LIMITS["REQUEST_MAX_BYTES"] + 1, 20 * LIMITS["REQUEST_MAX_BYTES"]))
@FUZZ
def test_a_body_over_request_max_bytes_is_413_json(client, size):
    for path, kwargs in (("/api/crimes-street/all-crime", {"data": {"poly": "5" * size}}),
                         ("/postcodes.io/postcodes", {"data": b'{"postcodes": ["' + b"A" * size + b'"]}',
                                                      "content_type": "application/json"})):
        _error(client.post(path, **kwargs), 413, "REQUEST_MAX_BYTES")


def test_a_get_url_past_policeuk_get_url_max_is_400(client):
    most = LIMITS["POLICEUK_GET_URL_MAX"]
    base = "/api/crimes-street/all-crime?poly="
    fits = _poly(12)
    assert len("http://localhost" + base + fits) <= most
    assert client.get(base + fits).status_code == 200
    long = _poly(35)
    assert len("http://localhost" + base + long) > most
    _error(client.get(base + long), 400)


@given(width=st.integers(-5, 5000), height=st.integers(-5, 5000))
@FUZZ
def test_png_sides_past_embed_png_max_px_are_400(client, width, height):
    response = client.get(f"/embed/map.png?level=borough&width={width}&height={height}")
    if 200 <= width <= LIMITS["EMBED_PNG_MAX_PX"] and 200 <= height <= LIMITS["EMBED_PNG_MAX_PX"]:
        assert response.status_code == 200 and response.mimetype == "image/png"
    else:
        assert response.status_code == 400


def test_a_bulk_lookup_past_postcodes_bulk_max_is_400(client):
    from crimemap.config import DEFAULTS

    most = DEFAULTS["POSTCODES_BULK_MAX"]
    response = client.post("/postcodes.io/postcodes", json={"postcodes": ["SW1A 1AA"] * (most + 1)})
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(f"Too many postcodes submitted. Up to {most}")
