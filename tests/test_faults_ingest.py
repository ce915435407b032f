"""Ingest killed with SIGKILL at random points, 20 rounds, while a live server keeps serving.

The instance holds the real lad22 boroughs and 2018 wards. Two inputs replace
the same two months of real City of London street crime: ``full`` (2023-05 and
2023-06 as published) and ``part`` (the first 300 rows of 2023-05, then
2023-06). One uninterrupted run of each gives the answers each state serves
and the run time T; each round then starts an ingest of the other input and
SIGKILLs it after a seeded random delay in [0, T), spreading the kills from
start-up through reading, joining and writing to the commit.

After every round the live ``crimemap serve`` on loopback answers
``/api/v1/status``, the ward choropleth and a City ward's summary exactly as
before the round when the kill landed before the commit (the data version did
not move), or exactly as the reference run of the input when the run committed
(it finished, or was killed while exiting); the store is sound: SQLite's
integrity check passes, and on PostGIS (whose server rolls a killed client's
transaction back) the writers' advisory lock is released. After a kill the
next run succeeds and serves the new input, whose ward counts add up to the
input's rows with a location (counted here with plain csv).
"""

import csv
import random
import signal

import pytest

from tests._faults import get_json, live_server, run_and_kill, run_to_end, timed
from tests.conftest import store_sound
from tests.test_ingest_interrupted import _cli

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

ROUNDS = 20
SEED = 20231
PERIOD = "from=2023-05&to=2023-06"
CITY_WARD = "E05009288"  # Aldersgate


def _located_rows(paths):
    total = 0
    for path in paths:
        with open(path, encoding="utf-8", newline="") as fh:
            total += sum(1 for row in csv.DictReader(fh) if row["Longitude"] and row["Latitude"])
    return total


def _figures(base):
    """What the server answers about the crimes, beyond the status document."""
    wards = get_json(f"{base}/api/v1/choropleth?level=ward&geometry=none&{PERIOD}")
    area = get_json(f"{base}/api/v1/areas/ward/{CITY_WARD}?{PERIOD}")
    return {"wards": wards, "area": area}


def _store_check(instance):
    """The data version, read through the test leg's store once it is sound (SQLite's integrity check;
    PostGIS: the killed writer's advisory lock released), see tests/conftest.py store_sound."""
    return store_sound(instance)


def _lasting(status):
    """The status document without what every write changes (version, times, the log of loads)."""
    return {k: v for k, v in status.items() if k not in ("data_version", "updated_at", "recent_loads")}


def _same_as(base, expected, where):
    figures = _figures(base)
    assert figures["wards"]["features"] == expected["wards"]["features"], where
    assert figures["area"]["by_type"] == expected["area"]["by_type"], where
    status = get_json(f"{base}/api/v1/status")
    assert _lasting(status) == expected["status"], where
    return status, figures


def _ward_total(figures):
    return sum(f["properties"]["count"] or 0 for f in figures["wards"]["features"])


def test_ingest_killed_in_a_loop_keeps_serving_the_previous_data(runner, need_shared, tmp_path):
    city = need_shared("crime/police_uk/city-of-london")
    may, june = city / "2023-05-city-of-london-street.csv", city / "2023-06-city-of-london-street.csv"
    lines = may.read_text(encoding="utf-8").splitlines(keepends=True)
    part_may = tmp_path / "2023-05-city-of-london-street.csv"
    part_may.write_text("".join(lines[:301]), encoding="utf-8")  # the header and 300 real rows
    inputs = {"full": [may, june], "part": [part_may, june]}

    instance = runner.instance
    assert runner("boundaries", "load", "borough", need_shared("boundaries/london-2021-lad22-gen20.shp")).exit_code == 0
    assert runner("boundaries", "load", "ward",
                  need_shared("boundaries/London-wards-2018/London_Ward.shp")).exit_code == 0

    def start(name):
        return lambda: _cli(instance, "crimes", "ingest", *inputs[name])

    with live_server(instance) as base:
        reference, seconds = {}, []
        for name in ("part", "full"):  # the timing runs; "full" ends up serving
            took, code, out = timed(start(name))
            assert code == 0, out
            seconds.append(took)
            reference[name] = {**_figures(base), "status": _lasting(get_json(f"{base}/api/v1/status"))}
            assert _ward_total(reference[name]) == _located_rows(inputs[name])
        assert reference["part"]["wards"]["features"] != reference["full"]["wards"]["features"]
        run_time = min(seconds)  # the first run also joins the locations it has not seen yet

        rng = random.Random(SEED)
        serving, landed, finished = "full", [], 0
        status, figures = get_json(f"{base}/api/v1/status"), _figures(base)
        for round_no in range(ROUNDS):
            target = "part" if serving == "full" else "full"
            version = _store_check(instance)
            delay = rng.uniform(0, run_time)
            code, out = run_and_kill(start(target), delay)
            if code == -signal.SIGKILL:
                now = _store_check(instance)
                landed.append((round(delay, 2), now != version))
                if now == version:
                    # Killed before its commit: the previous complete data, identical (same status
                    # document, same figures, same data version).
                    assert get_json(f"{base}/api/v1/status") == status, f"round {round_no}, killed at {delay:.2f} s"
                    assert _figures(base) == figures, f"round {round_no}, killed at {delay:.2f} s"
                else:
                    # Killed after its commit (while exiting): the new complete data, as the reference run.
                    _same_as(base, reference[target], f"round {round_no}, killed at {delay:.2f} s after the commit")
                # The next run succeeds.
                code, out = run_to_end(start(target))
            else:
                finished += 1
            assert code == 0, f"round {round_no}: {out}"
            status, figures = _same_as(base, reference[target], f"round {round_no}")
            assert int(_store_check(instance)) > int(version)
            serving = target

    # Most delays fall inside a run, so most kills land, some of them before the commit.
    assert len(landed) >= ROUNDS // 2 and not all(committed for _, committed in landed), (landed, finished)
