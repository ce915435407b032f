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

    reason = pg_cluster.missing_reason()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: failing instead of skipping)")
        pytest.skip(reason)
    with pg_cluster.pg_cluster() as cluster:
        yield cluster.url
