"""A data refresh swaps in while the production server is under load: no 5xx, and no response mixes versions.

gunicorn (``crimemap serve``, its worker processes and threads) serves a copy
of the real 2018 instance on loopback. Client threads request pages, API
answers, downloads and health checks without pause while ``crimemap crimes
ingest`` re-loads a month twice in another process (each load is one
transaction that bumps the data version). Every response must:

- not be a 5xx;
- carry exactly one ``X-Data-Version`` header, a version that existed during the run
  (``/healthz``, liveness, reads no data and says ``unavailable``);
- agree with its body: ``data_version`` of JSON answers, the "data version N"
  footer of pages, the "# Data version: N" line of a CSV download.

And the swap must really have happened under load: responses of the first and
the last versions are both seen, with requests in flight across both loads.
"""

import re
import subprocess
import sys
import threading
import time

import pytest
import requests

from tests.live_server import live_server
from tests.conftest import copy_leg_instance, leg_store

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

CLIENTS = 6
FOOTER = re.compile(r"data version (\d+)")
CSV_VERSION = re.compile(r"^# Data version: (\d+)", re.MULTILINE)
LIVENESS = "/healthz"


def _version(instance):
    """The data version in the test leg's store (SQLite file or PostGIS schema), read from its meta table."""
    rows = leg_store(instance).query("SELECT value FROM meta WHERE key = 'data_version'")
    return int(rows[0][0])


def _paths(base):
    ward = requests.get(f"{base}/api/v1/choropleth?level=ward&geometry=none", timeout=60).json()
    code = ward["features"][0]["properties"]["code"]
    return [
        "/api/v1/choropleth?level=borough&geometry=none",
        "/api/v1/choropleth?level=ward&geometry=none&crime=burglary",
        f"/api/v1/areas/ward/{code}",
        "/api/v1/areas/borough/E09000022?crime=all-crime",
        "/api/v1/status",
        "/api/v1/choropleth?level=borough&geometry=none&format=csv",
        "/",
        "/area/borough/E09000022",
        LIVENESS,
        "/readyz",
        "/api/crimes-street/all-crime?lat=51.4946&lng=-0.1149&date=2018-04",
    ]


def _check(path, response):
    """What is wrong with one response (empty when nothing)."""
    problems = []
    if response.status_code >= 500:
        problems.append(f"{response.status_code}: {response.text[:200]}")
    versions = response.raw.headers.getlist("X-Data-Version")
    if path == LIVENESS:  # liveness reads no data, not even for its header (crimemap/web/headers.py)
        return problems + ([] if versions == ["unavailable"] else [f"X-Data-Version {versions!r}"])
    if len(versions) != 1 or not versions[0].isdigit():
        return problems + [f"X-Data-Version {versions!r}"]
    header = int(versions[0])
    body = None
    kind = response.headers.get("Content-Type", "")
    if kind.startswith("application/json"):
        data = response.json()
        if isinstance(data, dict) and "data_version" in data:
            body = data["data_version"]
        elif isinstance(data, dict) and isinstance(data.get("checks"), dict):
            body = data["checks"].get("data_version")
    elif kind.startswith("text/html"):
        found = set(FOOTER.findall(response.text))
        if len(found) > 1:
            problems.append(f"the page shows versions {sorted(found)}")
        body = found.pop() if found else None
    elif kind.startswith("text/csv"):
        found = set(CSV_VERSION.findall(response.text))
        if len(found) != 1:
            problems.append(f"the download names versions {sorted(found)}")
        body = found.pop() if found else None
    if body is not None and int(body) != header:
        problems.append(f"X-Data-Version {header} but the body says {body}")
    return problems


def test_a_refresh_under_load_gives_no_5xx_and_one_version_per_response(api_2018, tmp_path):
    instance = copy_leg_instance(api_2018.instance, tmp_path / "instance")
    (instance / "crimemap.cfg").write_text('POLICEUK_RATE_LIMIT = ""\n', encoding="utf-8")
    first = _version(instance)
    month_file = [f for f in api_2018.files if "2018-04" in f.name][0]
    results, stop = [], threading.Event()

    with live_server(instance, ready="/healthz") as base:
        paths = _paths(base)

        def client(offset):
            session = requests.Session()
            i = offset
            while not stop.is_set():
                path = paths[i % len(paths)]
                i += 1
                try:
                    response = session.get(base + path, timeout=120)
                except requests.RequestException as exc:  # a dropped connection is a failure too
                    results.append((time.monotonic(), path, None, [f"{type(exc).__name__}: {exc}"]))
                    continue
                header = response.raw.headers.getlist("X-Data-Version")
                version = header[0] if len(header) == 1 and path != LIVENESS else None
                results.append((time.monotonic(), path, version, _check(path, response)))

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(3)  # under load before the first swap
            loads = []
            for _ in range(2):
                started = time.monotonic()
                done = subprocess.run([sys.executable, "-m", "crimemap", "--instance", str(instance), "crimes",
                                       "ingest", str(month_file)], capture_output=True, text=True, timeout=600)
                assert done.returncode == 0, done.stdout + done.stderr
                loads.append((started, time.monotonic()))
            time.sleep(3 + 2 * _recheck_s())  # the workers see the last version
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=180)

    last = _version(instance)
    assert last == first + 2
    failures = [(path, problems) for _, path, _, problems in results if problems]
    assert failures == [], failures[:10]
    seen = {int(v) for _, path, v, _ in results if path != LIVENESS}
    assert seen <= set(range(first, last + 1)), seen
    assert {first, last} <= seen, seen
    for started, finished in loads:
        during = [r for r in results if started <= r[0] <= finished]
        assert len(during) >= CLIENTS, "the load was not under way while the data was swapped"
    assert len(results) >= 50


def _recheck_s():
    """Seconds a worker may take to notice new store data (POSTCODES_RECHECK_S)."""
    from crimemap.config import DEFAULTS

    return DEFAULTS["POSTCODES_RECHECK_S"]
