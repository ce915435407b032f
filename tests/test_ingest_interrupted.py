"""An ingest killed with SIGKILL halfway leaves the previous data serving, identical."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import leg_store, store_sound

HEADER = ("Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,"
          "Crime type,Last outcome category,Context\n")


def _big_month(path, month, rows):
    # Distinct points spread over the two fixture squares, so the join has work to do.
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(HEADER)
        for i in range(rows):
            lon = -0.1300 + (i % 997) * 0.00003
            lat = 51.5010 + (i // 997 % 211) * 0.00004
            fh.write(f"k{i},{month},Metropolitan Police Service,Metropolitan Police Service,{lon:.6f},{lat:.6f},"
                     f"On or near Z,,,Burglary,,\n")
    return path


def _cli(instance, *args, **kwargs):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "crimemap", "--instance", str(instance), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, **kwargs)


def _served_status(instance):
    from crimemap.web import create_app

    app = create_app({"INSTANCE": str(instance), "TESTING": True})
    response = app.test_client().get("/api/v1/status")
    assert response.status_code == 200
    return response.get_json()


def _snapshot(instance):
    """What the app serves, plus the stored counts and crimes, read through the test leg's store (either backend)."""
    status = _served_status(instance)
    store = leg_store(instance)
    with store.snapshot():
        counts = [tuple(row) for row in store.query(
            "SELECT layer_id, code, month, category, n FROM point_counts ORDER BY 1, 2, 3, 4")]
        crimes = store.query("SELECT COUNT(*) FROM crimes")[0][0]
    return status, counts, crimes


@pytest.mark.slow
def test_sigkill_halfway_keeps_previous_data(runner, fixtures, tmp_path):
    assert runner("boundaries", "load", "borough", fixtures / "ingest" / "two_boroughs.geojson").exit_code == 0
    assert runner("crimes", "ingest", fixtures / "ingest" / "month_2024_01.csv").exit_code == 0
    instance = runner.instance
    before = _snapshot(instance)

    first = _big_month(tmp_path / "a.csv", "2024-01", 150_000)  # replaces the stored month ...
    second = _big_month(tmp_path / "b.csv", "2024-02", 150_000)
    proc = _cli(instance, "crimes", "ingest", first, second)
    # ... and is killed once the first file is staged, while the second is being read.
    deadline = time.monotonic() + 120
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if str(first) in line or not line:
            break
    assert str(first) in line, f"ingest did not report the first file: {line!r}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    after = _snapshot(instance)
    assert after == before
    # SQLite: integrity_check is ok; PostGIS: the server rolled the transaction back and the writers'
    # advisory lock went with the killed client's session.
    store_sound(instance)

    # The next run succeeds and replaces 2024-01 as asked.
    proc = _cli(instance, "crimes", "ingest", first)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    status = json.loads(subprocess.run([sys.executable, "-m", "crimemap", "--instance", str(instance), "status",
                                        "--json"], capture_output=True, text=True, check=True).stdout)
    assert status["crimes"]["rows_read"] == 150_000
