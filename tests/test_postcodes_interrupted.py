"""A refresh killed with SIGKILL halfway leaves the previous lookup serving, with the same version."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from crimemap.postcodes import clear_cache, get_lookup, resolve
from crimemap.postcodes.build import current_version, folder_of
from tests.conftest import settings_for

LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters an inward code may use


def _big_source(folder, real):
    """A folder as OS ships Code-Point Open: the real London extract, then a large headerless file."""
    folder.mkdir()
    (folder / "1_london.csv.gz").symlink_to(real)
    rng = np.random.default_rng(3)
    with open(folder / "2_synthetic.csv", "w", encoding="ascii") as fh:
        for district in range(1, 100):
            east = rng.integers(505_000, 560_000, size=4000)
            north = rng.integers(156_000, 200_000, size=4000)
            for k in range(4000):
                sector, a, b = k // 400, LETTERS[k // 20 % 20], LETTERS[k % 20]
                fh.write(f'"AB{district} {sector}{a}{b}",10,{east[k]},{north[k]},"E92000001","","","",'
                         f'"E09000033","E05013806"\n')
    return folder


def _refresh(instance, source):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "crimemap", "--instance", str(instance), "postcodes", "refresh",
                             str(source), "--force"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)


def _kill_at(proc, marker):
    deadline = time.monotonic() + 120
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, f"refresh ended before {marker!r}: {''.join(seen)}"
    return seen


def _serving(instance):
    clear_cache()
    lookup = get_lookup(settings_for(instance))
    return lookup.version, lookup.count, resolve(lookup, "e16an")["postcode"]


@pytest.mark.slow
@pytest.mark.parametrize("marker", [
    "read 1_london.csv.gz",  # while the second file is being read
    "writing",               # while the new version's columns are being written
])
def test_sigkill_halfway_keeps_the_previous_version(runner, fixtures, need_shared, tmp_path, marker):
    real = need_shared("postcodes/codepoint_open_2025-10_london.csv.gz")
    instance = runner.instance
    assert runner("postcodes", "refresh", fixtures / "postcodes" / "codepoint_open").exit_code == 0
    before = _serving(instance)
    assert before == ("1", 7, "E1 6AN")
    source = _big_source(tmp_path / "src", real)

    _kill_at(_refresh(instance, source), marker)
    assert current_version(folder_of(instance)) == 1
    assert _serving(instance) == before
    leftovers = [p.name for p in folder_of(instance).iterdir() if p.name.startswith(".build-")]
    if marker == "writing":
        assert leftovers, "the kill should have landed while the new version was being written"

    # The next refresh clears what the killed one left and succeeds.
    proc = _refresh(instance, source)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert current_version(folder_of(instance)) == 2
    assert sorted(p.name for p in folder_of(instance).iterdir()) == [".lock", "current", "v1", "v2"]
    clear_cache()
    assert get_lookup(settings_for(instance)).count == 180_792 + 99 * 4000
