"""The test leg really runs on the backend it names (docs/ci.md).

``tests/run_suites.py`` runs the suite twice: the embedded leg (no
``CRIMEMAP_DATABASE_URL``) and the PostGIS leg (``CRIMEMAP_TEST_BACKEND=postgis``
with a throw-away cluster's URL and ``CRIMEMAP_DATABASE_SCHEMA=instance``).
These tests fail when a leg silently falls back to the other backend: the
store a fresh instance opens, the database it talks to, and where a write
lands are checked from outside the store (``psql`` or ``sqlite3``).
"""

import contextlib
import hashlib
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import settings_for

BACKEND = os.environ.get("CRIMEMAP_TEST_BACKEND", "embedded")
MARK = "backend-leg-check"


def _open(instance):
    from crimemap.store import open_store

    return open_store(settings_for(instance))


def _write_marker(store, value):
    with store.writer() as writer:
        writer.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (MARK, value))


def _psql(url, sql):
    """Run ``sql`` with the psql client (not the store's driver); returns the unaligned rows."""
    from tests.pg_cluster import find_bin_dir

    bin_dir = find_bin_dir()
    psql = str(bin_dir / "psql") if bin_dir else "psql"
    result = subprocess.run([psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _schema_for(instance):
    # The contract's rule, computed here independently of crimemap.config.
    return "i_" + hashlib.sha1(str(Path(instance).resolve()).encode()).hexdigest()[:16]


def test_the_leg_is_one_of_the_two():
    assert BACKEND in ("embedded", "postgis"), BACKEND
    url = os.environ.get("CRIMEMAP_DATABASE_URL", "")
    if BACKEND == "postgis":
        assert url.startswith("postgresql://"), url
        assert os.environ.get("CRIMEMAP_DATABASE_SCHEMA") == "instance"
    else:
        assert url == "", "the embedded leg must not name a database"


@pytest.mark.skipif(BACKEND != "postgis", reason="the PostGIS leg's check (this is the embedded leg)")
def test_postgis_leg_opens_postgis_and_writes_to_the_instance_schema(tmp_path):
    url = os.environ["CRIMEMAP_DATABASE_URL"]
    first, second = tmp_path / "a" / "instance", tmp_path / "b" / "instance"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    store = _open(first)
    assert store.dialect == "postgresql"
    _write_marker(store, "written-by-a")  # the first write creates the instance's schema
    version = store.query("SELECT postgis_version()")[0][0]
    assert version[0].isdigit(), version

    schema = _schema_for(first)
    landed = _psql(url, f"SELECT value FROM {schema}.meta WHERE key = '{MARK}'")
    assert landed == "written-by-a"
    # The write went to the database, not to an embedded file in the instance folder.
    assert not (first / "crimemap.sqlite").exists()
    # Another instance folder is another schema: it does not see the first one's write.
    other = _open(second)
    assert other.dialect == "postgresql"
    assert MARK not in other.meta()
    assert _schema_for(second) != schema


@pytest.mark.skipif(BACKEND != "embedded", reason="the embedded leg's check (this is the PostGIS leg)")
def test_embedded_leg_opens_sqlite_in_the_instance_folder(instance):
    store = _open(instance)
    assert store.dialect == "sqlite"
    _write_marker(store, "written")
    with contextlib.closing(sqlite3.connect(instance / "crimemap.sqlite")) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = ?", (MARK,)).fetchone() == ("written",)
