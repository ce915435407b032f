"""Shared fixtures.

``shared_data`` points at ../shared/data. When it is missing a test skips,
except under ``CI=true``, where it fails: a skip must not hide a failure in CI.
"""

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CRIMEMAP_SHARED_DATA", REPO.parent / "shared" / "data"))
FIXTURES = Path(__file__).resolve().parent / "data"


def pytest_configure(config):
    # Tests never write into the checkout: vector tiles that pages and servers under test build
    # (TILES_DIR defaults to the top-level tiles/ folder) go to a temporary folder instead.
    os.environ.setdefault("CRIMEMAP_TILES_DIR", tempfile.mkdtemp(prefix="crimemap-test-tiles-"))


def _need_shared(relative=""):
    path = SHARED_DATA / relative
    if not path.exists():
        message = f"shared data not found: {path}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: failing instead of skipping)")
        pytest.skip(message)
    return path


@pytest.fixture
def shared_data():
    """The root of ../shared/data (fails under CI=true when missing)."""
    return _need_shared()


@pytest.fixture
def need_shared():
    """Call with a path relative to shared/data; returns it or skips/fails."""
    return _need_shared


@pytest.fixture
def fixtures():
    """The hand-written fixtures in tests/data."""
    return FIXTURES


@pytest.fixture
def instance(tmp_path):
    """An empty instance folder for one test."""
    folder = tmp_path / "instance"
    folder.mkdir()
    return folder


@pytest.fixture
def runner(instance):
    """Invoke the ``crimemap`` CLI on the test's instance: ``runner("status", "--json")``."""
    from click.testing import CliRunner

    from crimemap.cli import main

    cli = CliRunner()

    def invoke(*args, input=None):
        return cli.invoke(main, ["--instance", str(instance), *map(str, args)], input=input,
                          catch_exceptions=False)

    invoke.instance = instance
    return invoke


def settings_for(instance, **overrides):
    """Settings for a test instance, as the CLI would build them.

    The environment is ignored except for the test leg's database settings
    (``CRIMEMAP_DATABASE_URL`` / ``_SCHEMA``, docs/ci.md), so the PostGIS leg's
    in-process tests use the same backend as its CLI and server subprocesses.
    """
    from crimemap.config import load_settings

    return load_settings(instance=instance, overrides=overrides, environ=leg_environ())


def leg_environ():
    """The test leg's ``CRIMEMAP_DATABASE_*`` variables from the environment ({} in the embedded leg)."""
    return {key: value for key, value in os.environ.items() if key in LEG_VARIABLES}


LEG_VARIABLES = ("CRIMEMAP_DATABASE_URL", "CRIMEMAP_DATABASE_SCHEMA")


@pytest.fixture(scope="session")
def api_2018(tmp_path_factory):
    """The real 2018 instance, loaded once per run and shared read-only.

    lad22 boroughs, 2018 wards, 2011 LSOAs with the mid-2020 population, and
    the three police.uk API months (2018-03 to 2018-05). Tests must not write
    to it.
    """
    from types import SimpleNamespace

    from crimemap.ingest import ingest_crimes, load_boundaries
    from crimemap.population import load_population
    from crimemap.store import open_store

    instance = tmp_path_factory.mktemp("api2018") / "instance"
    settings = settings_for(instance)
    store = open_store(settings)
    load_boundaries(store, _need_shared("boundaries/london-2021-lad22-gen20.shp"), "borough", settings=settings)
    load_boundaries(store, _need_shared("boundaries/London-wards-2018/London_Ward.shp"), "ward", settings=settings)
    load_boundaries(store, _need_shared("boundaries/london-2011-lsoa-gen20.shp"), "lsoa", settings=settings)
    load_population(store, _need_shared("population/london-mid2020-lsoa11-pop.csv"), settings=settings)
    files = sorted(_need_shared("crime/police_uk_api_partial").glob("*.jsonl.gz"))
    report = ingest_crimes(store, files, settings=settings)
    return SimpleNamespace(instance=instance, settings=settings, store=store, report=report, files=files)


@pytest.fixture(scope="session")
def postgis_url():
    """A PostgreSQL + PostGIS database URL for tests that need one on either leg.

    In the PostGIS leg it is the leg's own database (``CRIMEMAP_DATABASE_URL``);
    otherwise a throw-away cluster started for this session (tests/pg_cluster.py).
    When PostgreSQL is not installed it skips, except under ``CI=true``, where it fails.
    """
    url = os.environ.get("CRIMEMAP_DATABASE_URL", "")
    if url.startswith("postgresql"):
        yield url
        return
    from tests import pg_cluster

    need_postgres()
    with pg_cluster.pg_cluster() as cluster:
        yield cluster.url


def need_postgres():
    """Skip when PostgreSQL + PostGIS are not installed; fail instead under CI=true."""
    from tests import pg_cluster

    reason = pg_cluster.missing_reason()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: failing instead of skipping)")
        pytest.skip(reason)


def leg_store(instance, readonly=True):
    """The test leg's store of an instance folder (SQLite file or PostGIS schema), as its CLI and server open it."""
    from crimemap.store import open_store

    return open_store(settings_for(instance), readonly=readonly)


def store_sound(instance, timeout=30.0):
    """Check the test leg's store after a killed writer; returns the data version (a string) from its meta table.

    Embedded: SQLite's ``integrity_check`` says "ok". PostGIS: the server rolls
    a killed client's transaction back by itself; what could be left is the
    writers' session advisory lock of the instance's schema
    (crimemap/store/postgis_writer.py), which must be free again once the
    server has noticed the dropped connection (polled for ``timeout`` seconds).
    """
    import time

    store = leg_store(instance)
    if store.dialect == "sqlite":
        assert store.query("PRAGMA integrity_check") == [("ok",)]
    else:
        import psycopg

        from crimemap.store.postgis_sql import schema_name

        settings = settings_for(instance)
        key = f"crimemap:{schema_name(settings)}"
        deadline = time.monotonic() + timeout
        with psycopg.connect(settings["DATABASE_URL"], autocommit=True) as conn:
            while not conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()[0]:
                assert time.monotonic() < deadline, f"the writers' advisory lock {key!r} is still held"
                time.sleep(0.1)
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
    return str(store.query("SELECT value FROM meta WHERE key = 'data_version'")[0][0])


def copy_leg_instance(source, target):
    """A private copy of an instance folder in the test leg's store, plus its web geometry cache.

    Embedded: the SQLite file through SQLite's backup API. PostGIS: the
    instance's schema through ``pg_dump`` into the copy's own schema (the
    schema names are unique hashes, so renaming them in the dump is exact).
    """
    import shutil
    import sqlite3
    import subprocess

    from crimemap.store.postgis_sql import schema_name

    target.mkdir(parents=True)
    settings = settings_for(source)
    if not str(settings.get("DATABASE_URL") or "").startswith("postgresql"):
        src = sqlite3.connect(f"file:{source / 'crimemap.sqlite'}?mode=ro", uri=True)
        dst = sqlite3.connect(target / "crimemap.sqlite")
        with dst:
            src.backup(dst)
        src.close()
        dst.close()
    else:
        url, old, new = settings["DATABASE_URL"], schema_name(settings), schema_name(settings_for(target))
        if old == new or old in ("crimemap", "public"):
            raise ValueError("copy_leg_instance needs DATABASE_SCHEMA=instance (one schema per folder)")
        dump = subprocess.run(["pg_dump", "--no-owner", "--no-privileges", "-n", old, url],
                              capture_output=True, text=True, check=True).stdout
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input=dump.replace(old, new),
                       capture_output=True, text=True, check=True)
    if (source / "cache").is_dir():
        shutil.copytree(source / "cache", target / "cache")
    return target
