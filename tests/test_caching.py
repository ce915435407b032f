"""ETag and Cache-Control on every API answer, keyed on the data version; If-None-Match -> 304."""

import pytest

from tests.conftest import settings_for


@pytest.fixture
def loaded(runner, fixtures):
    # A small instance that a test may change (a load bumps the data version).
    assert runner("boundaries", "load", "ward", fixtures / "boundaries" / "wgs84_wards_2018.geojson").exit_code == 0
    assert runner("crimes", "ingest", fixtures / "crimes" / "api.jsonl").exit_code == 0
    return runner


def _app(instance, **config):
    from crimemap.web import create_app

    return create_app({"INSTANCE": str(instance), "TESTING": True, "POLICEUK_RATE_LIMIT": "", **config})


ROUTES = ["/api/v1/status", "/api/v1/crime-types", "/api/v1/choropleth?level=ward&geometry=none",
          "/api/forces", "/api/crime-categories", "/api/crimes-street-dates", "/api/metropolitan/neighbourhoods",
          "/api/openapi.json"]


def test_every_api_answer_carries_etag_and_cache_control_and_revalidates(loaded):
    client = _app(loaded.instance, API_CACHE_MAX_AGE_S=123).test_client()
    for url in ROUTES:
        first = client.get(url)
        assert first.status_code == 200, (url, first.get_data(as_text=True)[:200])
        etag = first.headers["ETag"]
        assert first.headers["Cache-Control"] == "public, max-age=123"
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.data == b"", url
        assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == "public, max-age=123"
        assert client.get(url, headers={"If-None-Match": '"something-else"'}).status_code == 200


def test_the_etag_names_the_data_version_and_changes_with_a_load(loaded, fixtures):
    from crimemap.store import open_store

    version = open_store(settings_for(loaded.instance)).data_version()
    client = _app(loaded.instance).test_client()
    before = client.get("/api/v1/crime-types").headers["ETag"]
    assert before.strip('"').startswith(f"d{version}-")
    # Two different URLs never share an ETag.
    assert client.get("/api/forces").headers["ETag"] != before
    assert loaded("crimes", "ingest", fixtures / "crimes" / "api.jsonl").exit_code == 0  # a reload: new version
    after = client.get("/api/v1/crime-types", headers={"If-None-Match": before})
    assert after.status_code == 200 and after.headers["ETag"] != before
    assert after.headers["ETag"].strip('"').startswith(f"d{int(version) + 1}-")


def test_errors_and_posts_carry_no_etag(loaded):
    client = _app(loaded.instance).test_client()
    assert "ETag" not in client.get("/api/v1/areas/ward/NOPE").headers
    assert "ETag" not in client.get("/api/crimes-street/all-crime?lat=x&lng=0").headers
    assert "ETag" not in client.post("/api/crimes-street/all-crime", data={"lat": "51.5", "lng": "-0.1"}).headers


def test_pages_are_not_labelled(loaded):
    client = _app(loaded.instance).test_client()
    page = client.get("/")
    assert page.status_code == 200 and not page.headers.get("ETag", "").startswith('"d')
