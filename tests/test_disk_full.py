"""A disk that fills up during a refresh: a clear one-line error, a non-zero exit, the old data still serving.

The disk is simulated without privileges: the child process runs under
``RLIMIT_FSIZE`` (``resource.setrlimit``), so any write past the cap fails
with EFBIG as a full disk fails with ENOSPC (Python ignores SIGXFSZ). The
cap is below what the refresh must write (SQLite's write-ahead log for the
ingest of a real month of police.uk API crimes, the numpy columns of the real
Code-Point Open extract), so the run fails partway through writing. A live
``crimemap serve`` on loopback serves the instance throughout; afterwards it
answers exactly as before, and the same run without the cap succeeds.

On the PostGIS leg the crimes are written by the database server, which a
file-size limit of the CLI process cannot stop. There the instance's tables
and indexes are moved into a PostgreSQL tablespace on a tiny tmpfs (mounted
for the test, owned by the server's user) that is filled up to a few pages
left, and the CLI's temporary staging tables go there too (``PGOPTIONS``
``temp_tablespaces``): the server really runs out of space (SQLSTATE 53100,
"could not extend file"), rolls the refresh back, and the CLI prints the same
disk-full line. Mounting needs root (CI runs as root); elsewhere that test
fails under ``CI=true`` and skips otherwise, like a missing shared file. The
postcode lookup keeps its own files on both backends (docs/postcodes.md), so
its test is the same on both legs.
"""

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests._faults import get_json, limit_file_size, live_server, run_to_end
from tests.test_ingest_interrupted import _cli

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

CITY = "crime/police_uk/city-of-london/2023-{}-city-of-london-street.csv"
CODEPOINT = "postcodes/codepoint_open_2025-10_london.csv.gz"
PROBES = ("SW1A 1AA", "E1 6AN", "BR1 1AA")


def _assert_clear_failure(code, out):
    assert code == 1, out
    assert "Traceback" not in out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("Error: could not write to disk ("), out
    assert "the disk may be full. Nothing was changed and the previous data keeps serving" in lines[-1]


def _serving(base, period="from=2023-05&to=2023-06"):
    return {
        "status": get_json(f"{base}/api/v1/status"),
        "boroughs": get_json(f"{base}/api/v1/choropleth?level=borough&geometry=none&{period}"),
        "postcodes": [get_json(f"{base}/api/v1/postcodes/{p.replace(' ', '')}") for p in PROBES],
    }


@pytest.fixture(scope="module")
def instance_with_data(tmp_path_factory):
    """Real boroughs, one month of real City of London crimes and the real postcode lookup, built once."""
    from tests.conftest import _need_shared

    instance = tmp_path_factory.mktemp("disk-full") / "instance"
    for args in (("boundaries", "load", "borough", _need_shared("boundaries/london-2021-lad22-gen20.shp")),
                 ("crimes", "ingest", _need_shared(CITY.format("05"))),
                 ("postcodes", "refresh", _need_shared(CODEPOINT))):
        code, out = run_to_end(lambda: _cli(instance, *args))  # noqa: B023 - called at once
        assert code == 0, out
    return instance


TINY = "crimemap_tiny"
FREE_BYTES = 64 * 1024  # what the full tablespace has left: 8 pages of 8 KB


def _skip_or_fail(message):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: failing instead of skipping)")
    pytest.skip(message)


@contextlib.contextmanager
def _full_tablespace(instance, monkeypatch):
    """Move the instance's PostGIS tables into a tablespace on a tmpfs with ``FREE_BYTES`` left; undone at exit."""
    import psycopg
    from psycopg import sql

    from crimemap.store.postgis_sql import schema_name
    from tests.conftest import settings_for

    settings = settings_for(instance)
    schema = schema_name(settings)
    if os.geteuid() != 0:
        _skip_or_fail("a full PostgreSQL tablespace needs a tmpfs mount, which needs root")
    folder = Path(tempfile.mkdtemp(prefix="crimemap-tiny-", dir="/tmp"))
    with psycopg.connect(settings["DATABASE_URL"], autocommit=True) as conn:
        owner = os.stat(conn.execute("SHOW data_directory").fetchone()[0])
        mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=16m,mode=0700,uid={owner.st_uid},"
                                f"gid={owner.st_gid}", "tmpfs", str(folder)], capture_output=True, text=True)
        if mount.returncode != 0:
            folder.rmdir()
            _skip_or_fail(f"could not mount a tmpfs for a full tablespace: {mount.stderr.strip()}")
        relations = [row[0] for row in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'i', 't', 'm') ORDER BY c.relkind DESC", (schema,))]
        assert "crimes" in relations
        filler = folder / "filler"
        try:
            conn.execute(sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(sql.Identifier(TINY),
                                                                           sql.Literal(str(folder))))
            for name in relations:
                conn.execute(sql.SQL("ALTER {} {} SET TABLESPACE {}").format(
                    sql.SQL("INDEX" if _is_index(conn, schema, name) else "TABLE"),
                    sql.Identifier(schema, name), sql.Identifier(TINY)))
            conn.execute("CHECKPOINT")
            stat = os.statvfs(folder)
            with open(filler, "wb") as fh:  # as root: fill the tmpfs up to FREE_BYTES
                fh.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - FREE_BYTES))
            monkeypatch.setenv("PGOPTIONS", f"-c temp_tablespaces={TINY}")  # the CLI's staging tables too
            yield
        finally:
            monkeypatch.delenv("PGOPTIONS", raising=False)
            filler.unlink(missing_ok=True)
            for name in relations:
                conn.execute(sql.SQL("ALTER {} {} SET TABLESPACE pg_default").format(
                    sql.SQL("INDEX" if _is_index(conn, schema, name) else "TABLE"),
                    sql.Identifier(schema, name)))
            conn.execute(sql.SQL("DROP TABLESPACE IF EXISTS {}").format(sql.Identifier(TINY)))
            subprocess.run(["umount", str(folder)], check=True)
            folder.rmdir()


def _is_index(conn, schema, name):
    return conn.execute("SELECT c.relkind = 'i' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = %s AND c.relname = %s", (schema, name)).fetchone()[0]


def _refresh_that_hits_disk_full(instance, months, monkeypatch):
    """Run the crimes refresh against a full disk: the CLI's files (embedded) or the server's tablespace (PostGIS)."""
    from tests.conftest import leg_store

    if leg_store(instance).dialect == "sqlite":
        # Replacing 2023-05 and adding 2023-06 writes well over 64 KB of pages into the write-ahead log.
        return run_to_end(lambda: _cli(instance, "crimes", "ingest", *months,
                                       preexec_fn=limit_file_size(64 * 1024)))
    with _full_tablespace(instance, monkeypatch):
        code, out = run_to_end(lambda: _cli(instance, "crimes", "ingest", *months))
    assert "could not extend file" in out or "No space left on device" in out, out  # the server's own disk full
    return code, out


def test_disk_full_during_crimes_ingest(instance_with_data, need_shared, monkeypatch):
    instance = instance_with_data
    months = [need_shared(CITY.format("05")), need_shared(CITY.format("06"))]
    with live_server(instance, env={"CRIMEMAP_POSTCODES_RECHECK_S": "0"}) as base:
        before = _serving(base)
        assert before["status"]["months"] == ["2023-05"]
        code, out = _refresh_that_hits_disk_full(instance, months, monkeypatch)
        _assert_clear_failure(code, out)
        assert _serving(base) == before
        code, out = run_to_end(lambda: _cli(instance, "crimes", "ingest", *months))
        assert code == 0, out
        after = _serving(base)
        assert after["status"]["months"] == ["2023-05", "2023-06"]
        assert int(after["status"]["data_version"]) > int(before["status"]["data_version"])


def test_disk_full_during_postcodes_refresh(instance_with_data, need_shared):
    instance = instance_with_data
    source = need_shared(CODEPOINT)
    with live_server(instance, env={"CRIMEMAP_POSTCODES_RECHECK_S": "0"}) as base:
        before = _serving(base)
        version = int(before["status"]["postcodes"]["version"])
        assert [p["result"]["postcode"] for p in before["postcodes"]] == list(PROBES)
        # The new version's largest columns are over 1 MB each (180,792 postcodes); cap files at 256 KB.
        code, out = run_to_end(lambda: _cli(instance, "postcodes", "refresh", source, "--force",
                                            preexec_fn=limit_file_size(256 * 1024)))
        _assert_clear_failure(code, out)
        assert "writing 180,792 postcodes" in out  # it failed while writing, not before
        assert _serving(base) == before
        leftovers = [p.name for p in (instance / "postcodes").iterdir() if p.name.startswith(".build-")]
        assert leftovers == []
        code, out = run_to_end(lambda: _cli(instance, "postcodes", "refresh", source, "--force"))
        assert code == 0, out
        after = _serving(base)
        assert int(after["status"]["postcodes"]["version"]) == version + 1
        assert after["postcodes"] == before["postcodes"]
