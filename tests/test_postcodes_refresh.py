"""Refreshes are atomic and versioned: validation, shrink guard, rollback, URLs, failures."""

import fcntl
import gzip
import shutil
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crimemap.postcodes import (RefreshBusy, RefreshError, SourceError, clear_cache, get_lookup, refresh, rollback,
                                versions)
from crimemap.postcodes.build import current_version, folder_of
from crimemap.postcodes.schedule import run_schedule
from tests.conftest import settings_for

REAL = "postcodes/codepoint_open_2025-10_london.csv.gz"


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def cpo(fixtures):
    return fixtures / "postcodes" / "codepoint_open"


@pytest.fixture
def onspd(fixtures):
    return fixtures / "postcodes" / "onspd_sample.csv"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_folder():
    """Serve a folder on 127.0.0.1 (a random free port); yields a URL builder."""
    servers = []

    def serve(folder):
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_first_refresh_then_rebuild_unchanged_source_only_with_force(instance, cpo):
    settings = settings_for(instance)
    first = refresh(instance, cpo, settings=settings)
    assert first["changed"] and first["version"] == 1 and first["previous"] is None
    again = refresh(instance, cpo, settings=settings)
    assert not again["changed"] and again["version"] == 1 and "same as version 1" in again["reason"]
    forced = refresh(instance, cpo, settings=settings, force=True)
    assert forced["changed"] and forced["version"] == 2 and forced["previous"] == 1
    assert [v["version"] for v in versions(instance)] == [2, 1]
    assert [v["current"] for v in versions(instance)] == [True, False]


def test_shrink_guard_force_and_rollback(runner, cpo, fixtures):
    instance = runner.instance
    nspl = fixtures / "postcodes" / "nspl_sample.csv"
    assert runner("postcodes", "refresh", cpo).exit_code == 0  # 7 live postcodes
    result = runner("postcodes", "refresh", nspl)  # 2 live: 71% fewer
    assert result.exit_code == 1
    assert "refused" in result.output and "POSTCODES_MAX_SHRINK_PCT" in result.output
    assert current_version(folder_of(instance)) == 1
    assert [p.name for p in folder_of(instance).iterdir() if p.name.startswith(".build-")] == []

    result = runner("postcodes", "refresh", nspl, "--force")
    assert result.exit_code == 0, result.output
    assert "version 2 is serving (was 1)" in result.output and "accepted with --force" in result.output
    settings = settings_for(instance, POSTCODES_RECHECK_S=0)
    assert get_lookup(settings).version == "2"
    assert get_lookup(settings).get("WC2N 9ZZ")["live"] is False  # the NSPL's terminated row

    result = runner("postcodes", "rollback")
    assert result.exit_code == 0 and "version 1 is serving (was 2)" in result.output
    lookup = get_lookup(settings)
    assert lookup.version == "1" and lookup.get("WC2N 9ZZ") is None and lookup.get("E1 6AN") is not None
    listing = runner("postcodes", "versions").output.splitlines()
    assert listing[0].startswith("  v2") and listing[1].startswith("* v1")
    assert runner("postcodes", "rollback").exit_code == 1  # nothing older than v1
    assert runner("postcodes", "rollback", "--to", "2").exit_code == 0
    result = runner("postcodes", "rollback", "--to", "9")
    assert result.exit_code == 1 and "version 9 is not kept" in result.output
    assert current_version(folder_of(instance)) == 2


def test_old_versions_are_pruned_but_never_the_serving_one(instance, cpo, onspd, fixtures):
    settings = settings_for(instance, POSTCODES_KEEP_VERSIONS=2)
    refresh(instance, onspd, settings=settings)
    refresh(instance, onspd, settings=settings, force=True)
    rollback(instance, to=1)
    result = refresh(instance, onspd, settings=settings, force=True)
    # Kept: the new serving v3 and the newest other one; the oldest goes,
    # even though v1 was serving just before this refresh.
    assert result["version"] == 3 and result["pruned"] == [1]
    assert [v["version"] for v in versions(instance)] == [3, 2]


def test_zip_and_gzip_sources_read_like_the_folder(instance, cpo, tmp_path, onspd):
    archive = tmp_path / "codepo_gb.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(cpo.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(cpo))
    gz = tmp_path / "onspd.csv.gz"
    gz.write_bytes(gzip.compress(onspd.read_bytes()))
    folder = refresh(instance, cpo, settings=settings_for(instance))
    zipped = refresh(tmp_path / "z", archive, settings=settings_for(tmp_path / "z"))
    assert {k: zipped[k] for k in ("count", "live", "rows_read", "duplicates", "no_location")} == \
        {k: folder[k] for k in ("count", "live", "rows_read", "duplicates", "no_location")} == \
        {"count": 7, "live": 7, "rows_read": 8, "duplicates": 1, "no_location": 1}
    assert any("Code-Point_Open_Column_Headers.csv" in s for s in zipped["report"]["skipped"])
    gzipped = refresh(tmp_path / "g", gz, settings=settings_for(tmp_path / "g"))
    assert (gzipped["count"], gzipped["terminated"], gzipped["rejected"]) == (11, 2, 1)


def test_a_truncated_source_keeps_the_previous_version(runner, need_shared, tmp_path, cpo):
    real = need_shared(REAL)
    assert runner("postcodes", "refresh", cpo).exit_code == 0
    truncated = tmp_path / "codepoint_truncated.csv.gz"
    data = real.read_bytes()
    truncated.write_bytes(data[: len(data) * 6 // 10])
    result = runner("postcodes", "refresh", truncated, "--force")
    assert result.exit_code == 1
    assert "truncated or corrupt" in result.output and "nothing was changed" in result.output
    assert current_version(folder_of(runner.instance)) == 1
    lookup = get_lookup(settings_for(runner.instance))
    assert lookup.version == "1" and lookup.count == 7
    assert sorted(p.name for p in folder_of(runner.instance).iterdir()) == [".lock", "current", "v1"]


def test_refresh_from_a_local_http_url_bumps_the_version(instance, need_shared, tmp_path, http_folder):
    real = need_shared(REAL)
    settings = settings_for(instance, POSTCODES_RECHECK_S=0)
    # v1: most of the real file (every 20th postcode left out), so the URL's
    # full file passes the shrink and sample checks as a real update does.
    lines = gzip.decompress(real.read_bytes()).decode().splitlines(keepends=True)
    partial_file = tmp_path / "partial.csv"
    partial_file.write_text(lines[0] + "".join(line for i, line in enumerate(lines[1:]) if i % 20), encoding="utf-8")
    first = refresh(instance, partial_file, settings=settings)
    assert first["version"] == 1 and first["count"] == 180_792 - len(range(0, 180_792, 20))
    before = get_lookup(settings)
    assert before.get("BR1 1AA") is None  # the first row, left out

    url = http_folder(real.parent) + "/" + real.name
    result = refresh(instance, url, settings=settings)
    assert result["changed"] and result["version"] == 2 and result["previous"] == 1
    assert result["count"] == 180_792 and result["checks"]["sample_missing"] == 0
    after = get_lookup(settings)
    assert after.version == "2" and after.source == url and after.get("BR1 1AA")["ward_code"] == "E05013991"
    # Served files carry Last-Modified: the next scheduled run is answered 304 and changes nothing.
    again = refresh(instance, url, settings=settings)
    assert not again["changed"] and again["version"] == 2 and "not modified" in again["reason"]
    assert [p.name for p in folder_of(instance).iterdir() if p.name.startswith(".download-")] == []


def test_a_failed_download_keeps_the_previous_version(instance, cpo, http_folder, tmp_path):
    settings = settings_for(instance)
    refresh(instance, cpo, settings=settings)
    with pytest.raises(SourceError, match="404"):
        refresh(instance, http_folder(tmp_path) + "/missing.zip", settings=settings)
    with pytest.raises(SourceError, match="download failed"):
        refresh(instance, "http://127.0.0.1:9/nothing-listens-here.csv", settings=settings)
    assert current_version(folder_of(instance)) == 1


def test_a_second_refresh_waits_for_the_first(instance, cpo):
    folder = folder_of(instance)
    folder.mkdir(parents=True)
    with open(folder / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(RefreshBusy):
            refresh(instance, cpo, settings=settings_for(instance))
        fcntl.flock(fh, fcntl.LOCK_UN)
    assert refresh(instance, cpo, settings=settings_for(instance))["version"] == 1


def test_unknown_layout_and_empty_source_are_refused(instance, tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    with pytest.raises(SourceError, match="not a known postcode layout"):
        refresh(instance, odd, settings=settings_for(instance))
    bad_only = tmp_path / "bad.csv"
    bad_only.write_text("pcds,doterm,oslaua,osward,lat,long\nNOT VALID,,E09000033,E05990101,51.5,-0.1\n",
                        encoding="utf-8")
    with pytest.raises(RefreshError, match="no valid postcode"):
        refresh(instance, bad_only, settings=settings_for(instance))
    with pytest.raises(SourceError, match="not found"):
        refresh(instance, tmp_path / "nope.zip", settings=settings_for(instance))
    assert current_version(folder_of(instance)) is None


def test_a_server_notices_a_new_version_cheaply(instance, cpo, onspd):
    refresh(instance, cpo, settings=settings_for(instance))
    slow = settings_for(instance, POSTCODES_RECHECK_S=3600)
    fast = settings_for(instance, POSTCODES_RECHECK_S=0)
    assert get_lookup(slow).version == "1"
    refresh(instance, onspd, settings=settings_for(instance), force=True)
    assert get_lookup(slow).version == "1"  # not checked again within the hour
    clear_cache()
    assert get_lookup(fast).version == "2"


def test_schedule_runs_every_period_and_survives_a_failed_run(instance, cpo, tmp_path):
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    source = tmp_path / "src"
    lines = []
    runs = run_schedule(settings_for(instance), str(source), hours=0.01, echo=lines.append, clock=lambda: now[0],
                        sleep=sleep, max_runs=1)
    assert runs[0]["ok"] is False and "not found" in runs[0]["error"]
    shutil.copytree(cpo, source)
    runs = run_schedule(settings_for(instance), str(source), hours=0.01, echo=lines.append, clock=lambda: now[0],
                        sleep=sleep, max_runs=3)
    assert [r["ok"] for r in runs] == [True, True, True]
    assert [r["changed"] for r in runs] == [True, False, False]  # unchanged source: no new version
    assert sum(slept) == pytest.approx(2 * 36.0)  # two waits of 0.01 h
    assert current_version(folder_of(instance)) == 1


def test_schedule_once_from_the_cli(runner, cpo, tmp_path):
    result = runner("postcodes", "schedule", "--once", "--source", cpo)
    assert result.exit_code == 0 and "version 1 is serving" in result.output
    result = runner("postcodes", "schedule", "--once", "--source", tmp_path / "missing")
    assert result.exit_code == 1 and "refresh failed" in result.output
    assert runner("postcodes", "schedule", "--once").exit_code == 1  # no POSTCODES_SOURCE_URL
