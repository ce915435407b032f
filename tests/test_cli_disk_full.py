"""The CLI's disk-full message for either store, without filling a disk (tests/test_disk_full.py fills one).

The PostGIS store's database reports a full disk as SQLSTATE 53100 (psycopg
carries it as ``sqlstate``), possibly wrapped in a StoreError; the embedded
store as SQLite's own error or an OSError.
"""

import errno
import sqlite3

import click
import pytest

from crimemap.cli import _disk_full, command_errors
from crimemap.errors import BadInput, StoreError, StoreUnavailable


class FakeDiskFull(Exception):
    """What psycopg raises for PostgreSQL's disk_full (psycopg.errors.DiskFull has the same ``sqlstate``)."""

    sqlstate = "53100"


class FakeOtherDatabaseError(Exception):
    sqlstate = "23505"  # unique_violation


def _wrapped(inner, outer):
    try:
        raise inner
    except Exception as exc:  # noqa: BLE001
        try:
            raise outer from exc
        except Exception as wrapped:  # noqa: BLE001
            return wrapped


def _implicit(inner, outer):
    try:
        raise inner
    except Exception:  # noqa: BLE001
        try:
            raise outer  # noqa: B904 - an implicit __context__, as an except block that fails itself leaves
        except Exception as chained:  # noqa: BLE001
            return chained


@pytest.mark.parametrize("exc, said", [
    (sqlite3.OperationalError("database or disk is full"), "database or disk is full"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (FakeDiskFull('could not extend file "base/16384/1234": No space left on device\nHINT: Check free disk space.'),
     'could not extend file "base/16384/1234": No space left on device'),
])
def test_disk_full_is_recognised_plain_and_wrapped(exc, said):
    assert _disk_full(exc) == said
    assert _disk_full(_wrapped(exc, StoreError("the store refused the write"))) == said
    assert _disk_full(_implicit(exc, RuntimeError("while cleaning up"))) == said


@pytest.mark.parametrize("exc", [
    sqlite3.OperationalError("database is locked"), FakeOtherDatabaseError("duplicate key"),
    OSError(errno.ENOENT, "No such file or directory"), StoreUnavailable(), ValueError("bad"),
])
def test_other_errors_are_not_disk_full(exc):
    assert _disk_full(exc) is None
    assert _disk_full(_wrapped(exc, StoreError("x"))) is None


def test_the_command_says_the_disk_is_full_for_a_wrapped_postgresql_error():
    @command_errors
    def load():
        raise _wrapped(FakeDiskFull("could not extend file: No space left on device"), StoreUnavailable())

    with pytest.raises(click.ClickException) as caught:
        load()
    assert caught.value.message.startswith("could not write to disk (could not extend file: No space left on device)")
    assert "Nothing was changed and the previous data keeps serving" in caught.value.message


def test_other_store_errors_keep_their_message():
    @command_errors
    def load():
        raise _wrapped(FakeOtherDatabaseError("duplicate key"), BadInput("a bad file"))

    with pytest.raises(click.ClickException) as caught:
        load()
    assert caught.value.message == "a bad file"
