"""The JSON API: status, and the shape of errors on every /api route."""

import json

import pytest

from crimemap.web import create_app


@pytest.fixture
def app(instance):
    app = create_app({"INSTANCE": str(instance), "TESTING": False})
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def test_status_matches_the_cli(runner, fixtures):
    assert runner("boundaries", "load", "borough", fixtures / "ingest" / "two_boroughs.geojson").exit_code == 0
    assert runner("crimes", "ingest", fixtures / "ingest" / "month_2024_01.csv").exit_code == 0
    client = create_app({"INSTANCE": str(runner.instance)}).test_client()
    served = client.get("/api/v1/status")
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "application/json"
    printed = json.loads(runner("status", "--json").output)
    assert served.get_json() == printed
    assert printed["crimes"]["rows_read"] == 7


def test_status_of_an_empty_instance(client):
    body = client.get("/api/v1/status").get_json()
    assert body["data_version"] == "0" and body["layers"] == []


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/status/extra", "/api/v2/status"])
def test_unknown_api_routes_answer_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json() == {"status": 404, "error": "Not found"}


def test_every_api_route_answers_errors_in_one_shape(app, client):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api"):
            continue
        response = client.open(rule.rule.replace("<", "x").replace(">", "x"), method="DELETE")
        assert response.status_code == 405
        body = response.get_json()
        assert set(body) == {"status", "error"} and body["status"] == 405


def test_unexpected_errors_are_generic_and_logged(app, client, caplog):
    def boom():
        raise RuntimeError("secret path /etc/crimemap")

    app.add_url_rule("/api/v1/boom", "boom", boom)
    response = client.get("/api/v1/boom")
    assert response.status_code == 500
    body = response.get_json()
    assert body["status"] == 500 and "secret" not in body["error"] and "request id" in body["error"]
    assert "secret path" in caplog.text


def test_html_errors_elsewhere(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
