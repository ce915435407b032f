"""/healthz (liveness) and /readyz (readiness) on empty, partial, loaded and broken instances."""

import re
import shutil
import sqlite3

import pytest

from crimemap.web import create_app
from tests.test_security_headers import END


@pytest.fixture(scope="module")
def demo_instance(tmp_path_factory):
    from crimemap import demo

    folder = tmp_path_factory.mktemp("health") / "instance"
    demo.build_demo_instance(folder, end_month=END, environ={})  # an SQLite file these tests copy and break
    return folder


def _client(instance, embedded=False):
    """A test client; ``embedded``: the instance is an SQLite file made here (the demo is always one)."""
    config = {"INSTANCE": str(instance), "TESTING": True}
    if embedded:
        config["DATABASE_URL"] = ""
    return create_app(config).test_client()


def _copy(demo_instance, target):
    target.mkdir(parents=True)
    shutil.copy(demo_instance / "crimemap.sqlite", target / "crimemap.sqlite")
    return target


def test_live_and_ready_on_a_loaded_instance(demo_instance):
    client = _client(demo_instance, embedded=True)
    live = client.get("/healthz")
    assert live.status_code == 200 and live.get_json() == {"status": 200, "alive": True}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    conn = sqlite3.connect(demo_instance / "crimemap.sqlite")
    layers = conn.execute("SELECT COUNT(*) FROM layers").fetchone()[0]
    months = conn.execute("SELECT COUNT(DISTINCT month) FROM batches").fetchone()[0]
    version = conn.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
    conn.close()
    assert body["ready"] is True
    assert body["checks"] == {"store": "ok", "boundary_layers": layers, "crime_months": months,
                              "data_version": version}
    assert ready.headers["Cache-Control"] == "no-store" and live.headers["Cache-Control"] == "no-store"


def test_an_empty_instance_is_alive_but_not_ready(instance):
    client = _client(instance)
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["status"] == 503 and body["ready"] is False
    assert body["error"] == "not ready: no boundary layer loaded; no crime data loaded"
    assert not (instance / "crimemap.sqlite").exists()  # checking never creates a store


def test_boundaries_without_crimes_are_not_ready(demo_instance, tmp_path):
    folder = _copy(demo_instance, tmp_path / "partial")
    conn = sqlite3.connect(folder / "crimemap.sqlite")
    with conn:
        conn.execute("DELETE FROM batches")
    conn.close()
    ready = _client(folder, embedded=True).get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["error"] == "not ready: no crime data loaded"
    assert ready.get_json()["checks"]["boundary_layers"] > 0


def test_a_broken_store_is_not_ready_and_leaks_nothing(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "crimemap.sqlite").write_bytes(b"this is not a database, " * 200)
    client = _client(folder, embedded=True)
    ready = _alive_but_not_ready(client, "DatabaseError")
    assert str(folder) not in ready.get_data(as_text=True)


def test_ready_again_once_data_arrives(demo_instance, tmp_path):
    folder = tmp_path / "later"
    folder.mkdir()
    client = _client(folder, embedded=True)
    assert client.get("/readyz").status_code == 503
    shutil.copy(demo_instance / "crimemap.sqlite", folder / "crimemap.sqlite")
    assert client.get("/readyz").status_code == 200


def test_a_store_that_cannot_be_reached_is_not_ready():
    """The PostGIS store raises StoreUnavailable (a StoreError) when its database is down: a 503 reason, no 500."""
    from crimemap.errors import StoreUnavailable
    from crimemap.web.health import readiness

    class Unreachable:
        def meta(self):
            raise StoreUnavailable()

    reasons, checks = readiness(Unreachable())
    assert reasons == ["the store does not answer (StoreUnavailable)"]
    assert checks["store"] == "unreachable"


def test_a_database_that_cannot_be_reached_is_alive_but_not_ready(tmp_path):
    """A PostGIS DATABASE_URL where nothing listens: /healthz still 200, /readyz a 503 naming StoreUnavailable."""
    client = create_app({"INSTANCE": str(tmp_path / "pg"), "TESTING": True, "DATABASE_TIMEOUT_S": 2,
                         "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nothing"}).test_client()
    ready = _alive_but_not_ready(client, "StoreUnavailable")
    assert "nobody" not in ready.get_data(as_text=True)  # no connection details leak


def test_the_legs_loaded_store_is_ready(api_2018):
    """On either leg's own backend: three layers and the three API months (from the files' names) are loaded."""
    from crimemap.web.health import readiness

    months = {re.search(r"_(\d{4}-\d{2})_", path.name).group(1) for path in api_2018.files}
    reasons, checks = readiness(api_2018.store)
    assert reasons == []
    assert checks["store"] == "ok" and checks["boundary_layers"] == 3 and checks["crime_months"] == len(months) == 3
    assert checks["data_version"] == api_2018.store.data_version()


def _alive_but_not_ready(client, cause):
    """/healthz 200 without asking the store, /readyz 503 naming ``cause``; returns the /readyz response."""
    live = client.get("/healthz")
    assert live.status_code == 200
    assert live.headers.getlist("X-Data-Version") == ["unavailable"]
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["error"] == f"not ready: the store does not answer ({cause})"
    assert body["checks"]["store"] == "unreachable"
    return ready
