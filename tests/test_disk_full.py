"""A disk that fills up during a refresh: a clear one-line error, a non-zero exit, the old data still serving.

The disk is simulated without privileges: the child process runs under
``RLIMIT_FSIZE`` (``resource.setrlimit``), so any write past the cap fails
with EFBIG as a full disk fails with ENOSPC (Python ignores SIGXFSZ). The
cap is below what the refresh must write (SQLite's write-ahead log for the
ingest of a real month of police.uk API crimes, the numpy columns of the real
Code-Point Open extract), so the run fails partway through writing. A live
``crimemap serve`` on loopback serves the instance throughout; afterwards it
answers exactly as before, and the same run without the cap succeeds.
"""

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


def test_disk_full_during_crimes_ingest(instance_with_data, need_shared):
    instance = instance_with_data
    months = [need_shared(CITY.format("05")), need_shared(CITY.format("06"))]
    with live_server(instance, env={"CRIMEMAP_POSTCODES_RECHECK_S": "0"}) as base:
        before = _serving(base)
        assert before["status"]["months"] == ["2023-05"]
        # Replacing 2023-05 and adding 2023-06 writes well over 64 KB of pages into the write-ahead log.
        code, out = run_to_end(lambda: _cli(instance, "crimes", "ingest", *months,
                                            preexec_fn=limit_file_size(64 * 1024)))
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
