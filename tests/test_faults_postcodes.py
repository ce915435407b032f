"""Postcode refresh killed with SIGKILL at random points, 20 rounds, while a live server keeps serving.

Two sources cut from the real Code-Point Open London extract alternate:
``a`` (its first 20,000 rows) and ``b`` (rows 10,001 to 30,000), so some
postcodes are in both, some in one only. One uninterrupted refresh of each
gives the answers each version serves and the run time T; each round then
refreshes from the other source and SIGKILLs the refresh after a seeded random
delay in [0, T), from start-up through reading, building, writing the new
version's columns and the swap of the ``current`` pointer.

After every round the live ``crimemap serve`` (rechecking the pointer on every
request) answers the status's postcode section and lookups of a postcode in
both sources, in ``a`` only and in ``b`` only exactly as before the round when
the kill landed before the swap (the version did not move), or exactly as the
reference refresh of the source when it swapped. After a kill the next
refresh succeeds, clears what the killed one left (no ``.build-*`` folder
stays) and serves the new source.
"""

import gzip
import random
import signal

import pytest

from crimemap.postcodes.build import current_version, folder_of
from tests._faults import get_json, live_server, run_and_kill, run_to_end, timed
from tests.test_ingest_interrupted import _cli

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

ROUNDS = 20
SEED = 20251
LASTING = ("loaded", "source", "count", "live", "terminated", "no_location", "rows_read", "rejected", "duplicates")


def _cut(real, target, first, last):
    """Rows ``first`` to ``last`` (1-based, inclusive) of the real extract, with its header."""
    with gzip.open(real, "rt", encoding="utf-8") as src, gzip.open(target, "wt", encoding="utf-8") as out:
        out.write(next(src))
        postcodes = []
        for number, line in enumerate(src, start=1):
            if number > last:
                break
            if number >= first:
                out.write(line)
                postcodes.append(line.split(",", 1)[0])
    return postcodes


def _answers(base, probes):
    status = get_json(f"{base}/api/v1/status")["postcodes"]
    lookups = {}
    for postcode in probes:
        response = get_json(f"{base}/api/v1/postcodes/{postcode.replace(' ', '')}", status=None)
        lookups[postcode] = response
    return status, lookups


def test_refresh_killed_in_a_loop_keeps_serving_the_previous_version(runner, need_shared, tmp_path):
    real = need_shared("postcodes/codepoint_open_2025-10_london.csv.gz")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    in_a = _cut(real, tmp_path / "a" / "codepoint.csv.gz", 1, 20_000)
    in_b = _cut(real, tmp_path / "b" / "codepoint.csv.gz", 10_001, 30_000)
    probes = [in_a[0], in_a[15_000], in_b[-1]]  # a only, both, b only
    sources = {"a": tmp_path / "a", "b": tmp_path / "b"}
    instance = runner.instance
    assert runner("boundaries", "load", "borough", need_shared("boundaries/london-2021-lad22-gen20.shp")).exit_code == 0
    folder = folder_of(instance)

    def start(name):
        return lambda: _cli(instance, "postcodes", "refresh", sources[name], "--force")

    def lasting(status):
        return {k: status[k] for k in LASTING}

    with live_server(instance, env={"CRIMEMAP_POSTCODES_RECHECK_S": "0"}) as base:
        reference, seconds = {}, []
        for name in ("b", "a"):  # the timing runs; "a" ends up serving
            took, code, out = timed(start(name))
            assert code == 0, out
            seconds.append(took)
            status, lookups = _answers(base, probes)
            assert status["count"] == 20_000
            reference[name] = lasting(status), lookups
        # Independent of the code: a probe is found exactly when it is in the source.
        for name, members in (("a", set(in_a)), ("b", set(in_b))):
            for postcode, answer in reference[name][1].items():
                assert (answer["status"] == 200) == (postcode in members), (name, postcode, answer)
                if answer["status"] == 200:
                    assert answer["result"]["postcode"] == postcode
        run_time = min(seconds)

        rng = random.Random(SEED)
        serving, landed, finished = "a", [], 0
        before = _answers(base, probes)
        for round_no in range(ROUNDS):
            target = "b" if serving == "a" else "a"
            version = current_version(folder)
            delay = rng.uniform(0, run_time)
            code, out = run_and_kill(start(target), delay)
            where = f"round {round_no}, killed at {delay:.2f} s"
            if code == -signal.SIGKILL:
                swapped = current_version(folder) != version
                landed.append((round(delay, 2), swapped))
                now = _answers(base, probes)
                if not swapped:
                    assert now == before, where  # the previous version, identical
                else:
                    assert (lasting(now[0]), now[1]) == reference[target], where
                code, out = run_to_end(start(target))  # the next refresh succeeds
            else:
                finished += 1
            assert code == 0, f"round {round_no}: {out}"
            assert current_version(folder) > version
            before = _answers(base, probes)
            assert (lasting(before[0]), before[1]) == reference[target], f"round {round_no}"
            assert not [p.name for p in folder.iterdir() if p.name.startswith(".build-")], f"round {round_no}"
            serving = target

    assert len(landed) >= ROUNDS // 2 and not all(swapped for _, swapped in landed), (landed, finished)
