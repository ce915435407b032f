"""Shared fixtures.

``shared_data`` points at ../shared/data. When it is missing a test skips,
except under ``CI=true``, where it fails: a skip must not hide a failure in CI.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CRIMEMAP_SHARED_DATA", REPO.parent / "shared" / "data"))
FIXTURES = Path(__file__).resolve().parent / "data"


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
    """Settings for a test instance, as the CLI would build them."""
    from crimemap.config import load_settings

    return load_settings(instance=instance, overrides=overrides, environ={})
