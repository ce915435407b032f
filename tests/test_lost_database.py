"""Lost database: with the PostGIS store, a stopped database gives clear 503s and service comes back by itself.

The test runs its own throw-away cluster (tests/pg_cluster.py), not the PostGIS
leg's shared one, because it stops it. It loads a small instance (the real
borough boundaries and a dozen hand-written crimes), serves it with
``crimemap serve`` (gunicorn, several workers), stops PostgreSQL with
``pg_ctl stop -m fast`` and checks every kind of answer; then starts it again
and, with no restart of crimemap, expects the same data back within seconds.
"""

import os
import subprocess
import sys
import time

import pytest
import requests

from tests import pg_cluster
from tests.conftest import need_postgres
from tests.live_server import live_server

PAGE = "/"
API = "/api/v1/choropleth?level=borough&geometry=none"
RECOVERY_S = 20  # pool retries every few seconds; generous for a loaded 2-core machine


@pytest.fixture
def own_cluster():
    """A cluster this test may stop and start (skips without PostgreSQL, fails under CI=true)."""
    need_postgres()
    with pg_cluster.pg_cluster() as cluster:
        yield cluster


def _crimemap(instance, env, *args):
    result = subprocess.run([sys.executable, "-m", "crimemap", "--instance", str(instance), *map(str, args)],
                            env=dict(os.environ, **env), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _security_headers_present(response):
    assert "Content-Security-Policy" in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Referrer-Policy" in response.headers


def test_stopped_database_answers_503_and_service_recovers_without_restart(own_cluster, need_shared, fixtures,
                                                                           tmp_path):
    env = {"CRIMEMAP_DATABASE_URL": own_cluster.url, "CRIMEMAP_DATABASE_SCHEMA": "instance",
           "CRIMEMAP_DATABASE_TIMEOUT_S": "2"}
    instance = tmp_path / "instance"
    instance.mkdir()
    _crimemap(instance, env, "boundaries", "load", "borough",
              need_shared("boundaries/london-2021-lad22-gen20.shp"))
    _crimemap(instance, env, "crimes", "ingest", fixtures / "crimes" / "api.jsonl")
    # The data lives in this test's database, not in an embedded file.
    assert not (instance / "crimemap.sqlite").exists()
    schemas = own_cluster.psql("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'i\\_%'")
    assert len(schemas.split()) == 1

    with live_server(instance, env=env, workers=2) as base:
        page = requests.get(base + PAGE, timeout=60)
        api = requests.get(base + API, timeout=60)
        assert page.status_code == 200 and api.status_code == 200
        assert requests.get(base + "/readyz", timeout=60).status_code == 200
        version = api.headers["X-Data-Version"]
        assert page.headers["X-Data-Version"] == version
        figures = {f["properties"]["code"]: f["properties"]["count"] for f in api.json()["features"]}
        assert sum(count or 0 for count in figures.values()) > 0

        own_cluster.stop(mode="fast")
        assert not own_cluster.running()

        # An HTML page: a clear 503 page, no traceback, the usual security headers, a Retry-After.
        down = requests.get(base + PAGE, timeout=60)
        assert down.status_code == 503
        assert down.headers["Content-Type"].startswith("text/html")
        assert "database" in down.text.lower() and "unavailable" in down.text.lower()
        assert "Traceback" not in down.text and "psycopg" not in down.text
        assert "Retry-After" in down.headers and int(down.headers["Retry-After"]) > 0
        assert down.headers["X-Data-Version"] == "unavailable"
        _security_headers_present(down)
        # The page's own stylesheet still loads: static files need no database.
        assert requests.get(base + "/static/crimemap.css", timeout=60).status_code == 200

        # The JSON API: {"status": 503, "error": ...}.
        down_api = requests.get(base + API, timeout=60)
        assert down_api.status_code == 503
        assert down_api.headers["Content-Type"].startswith("application/json")
        body = down_api.json()
        assert body["status"] == 503 and "database" in body["error"].lower()
        assert "psycopg" not in down_api.text and "Traceback" not in down_api.text
        assert "Retry-After" in down_api.headers
        assert down_api.headers["X-Data-Version"] == "unavailable"
        _security_headers_present(down_api)

        # Readiness fails and names the database; liveness stays up (no restart wanted).
        ready = requests.get(base + "/readyz", timeout=60)
        assert ready.status_code == 503
        assert ready.json()["ready"] is False and "StoreUnavailable" in ready.json()["error"]
        live = requests.get(base + "/healthz", timeout=60)
        print(f"/healthz with the database down: {live.status_code} in {live.elapsed.total_seconds():.2f} s")
        assert live.status_code == 200 and live.json() == {"status": 200, "alive": True}

        own_cluster.start()
        started = time.monotonic()
        while True:
            # Each try hits whichever worker gunicorn picks; all of them must come back.
            answers = [requests.get(base + API, timeout=60) for _ in range(4)]
            if all(a.status_code == 200 for a in answers):
                break
            assert time.monotonic() - started < RECOVERY_S, [a.status_code for a in answers]
            time.sleep(0.5)
        print(f"every worker answered 200 again {time.monotonic() - started:.1f} s after the database started")
        for answer in answers:
            assert answer.headers["X-Data-Version"] == version
            assert {f["properties"]["code"]: f["properties"]["count"]
                    for f in answer.json()["features"]} == figures
        # Then every request answers: a worker that no request reached during the loop must not
        # still be waiting out its pool's reconnect backoff (the store renews a pool whose
        # database answers a direct connection again).
        after = [requests.get(base + path, timeout=60).status_code for path in (PAGE, API, "/readyz") * 6]
        assert after == [200] * len(after)
