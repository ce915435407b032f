"""A SQLite file written by an older store schema is refused with a clear message, never a traceback.

Store schema 2 added ``crimes.id`` (docs/store.md). These cases are about the
embedded file, so they use the SQLite store explicitly in both test legs.
"""

import sqlite3

import pytest

from crimemap.errors import StoreError
from crimemap.store.sqlite import SQLiteStore


@pytest.fixture
def schema1_file(tmp_path):
    path = tmp_path / "crimemap.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE crimes(batch_id INTEGER NOT NULL, month TEXT NOT NULL, category TEXT)")
    conn.execute("INSERT INTO crimes VALUES (1, '2018-03', 'burglary')")
    conn.commit()
    conn.close()
    return path


def test_reading_an_old_file_is_a_clear_store_error(schema1_file):
    with pytest.raises(StoreError, match="older crimemap"):
        SQLiteStore(schema1_file, readonly=True).query("SELECT COUNT(*) FROM crimes")


def test_writing_an_old_file_is_refused_and_changes_nothing(schema1_file):
    before = schema1_file.read_bytes()
    with pytest.raises(StoreError, match="load the data again"):
        with SQLiteStore(schema1_file).writer():
            pass
    assert schema1_file.read_bytes() == before


def test_cli_says_so_without_a_traceback(schema1_file):
    from click.testing import CliRunner

    from crimemap.cli import main

    embedded = {"CRIMEMAP_DATABASE_URL": "", "CRIMEMAP_DATABASE_SCHEMA": None}  # the file, in both legs
    result = CliRunner().invoke(main, ["--instance", str(schema1_file.parent), "status"], env=embedded)
    assert result.exit_code != 0
    assert "older crimemap" in result.output
    assert "Traceback" not in result.output


def test_a_current_file_opens(tmp_path):
    store = SQLiteStore(tmp_path / "crimemap.sqlite")
    with store.writer():
        pass
    columns = [row[1] for row in store.query("PRAGMA table_info(crimes)")]
    assert columns[0] == "id"
