"""Run the whole test suite on both backends: the embedded store and a real PostGIS on loopback.

This is the README's test command and what ``.ci/run`` runs (docs/ci.md)::

    python tests/run_suites.py [--serial] [--leg embedded|postgis] [PYTEST ARGS...]

- The **embedded** leg runs pytest with no ``CRIMEMAP_DATABASE_URL``
  (``CRIMEMAP_TEST_BACKEND=embedded``).
- The **PostGIS** leg starts a throw-away PostgreSQL + PostGIS cluster on
  127.0.0.1 (tests/pg_cluster.py) and runs pytest with
  ``CRIMEMAP_DATABASE_URL``, ``CRIMEMAP_DATABASE_SCHEMA=instance`` and
  ``CRIMEMAP_TEST_BACKEND=postgis`` set, so in-process tests, CLI runs and
  served subprocesses all use that database.

The two legs run side by side (one per core) unless ``--serial``; each leg's
lines are prefixed with its name. The exit status is 0 only when every leg
passed. When PostgreSQL is not installed the PostGIS leg is skipped with a
warning, except under ``CI=true``, where that is a failure.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import pg_cluster  # noqa: E402 - needs the repository on sys.path first

LEGS = ("embedded", "postgis")
DATABASE_VARIABLES = ("CRIMEMAP_DATABASE_URL", "CRIMEMAP_DATABASE_SCHEMA", "CRIMEMAP_TEST_BACKEND")
COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)\b")
_print_lock = threading.Lock()


def _say(line):
    with _print_lock:
        sys.stdout.write(line if line.endswith("\n") else line + "\n")
        sys.stdout.flush()


class Leg:
    """One pytest run in its own process group, its output prefixed and its summary kept."""

    def __init__(self, name, env, pytest_args, basetemp):
        self.name = name
        self.command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={basetemp}",
                        *pytest_args]
        self.env = env
        self.proc = None
        self.tail = []
        self.started = self.ended = None
        self._reader = None

    def start(self):
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.command, cwd=REPO, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                     text=True, errors="replace", bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        prefix = f"[{self.name:<8}] "
        for line in self.proc.stdout:
            self.tail = (self.tail + [line.rstrip("\n")])[-40:]
            _say(prefix + line)

    def wait(self):
        code = self.proc.wait()
        self._reader.join(timeout=30)
        self.ended = time.monotonic()
        return code

    def interrupt(self):
        """Ask pytest to stop (SIGINT, so fixtures tear down servers and clusters), then kill it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def summary(self):
        """pytest's closing line (without the ``=`` rule) and its counts."""
        for line in reversed(self.tail):
            text = line.strip().strip("=").strip()
            if COUNT.search(text) and " in " in text:
                counts = {}
                for number, word in COUNT.findall(text):
                    word = "errors" if word.startswith("error") else word
                    counts[word] = counts.get(word, 0) + int(number)
                return text, counts
        return "no pytest summary line", {}


def base_environment():
    """The caller's environment without any test leg's database variables."""
    return {key: value for key, value in os.environ.items() if key not in DATABASE_VARIABLES}


def run(legs, pytest_args, serial):
    """Run ``legs``; returns the process exit status."""
    in_ci = os.environ.get("CI", "").lower() == "true"
    workdir = Path(tempfile.mkdtemp(prefix="crimemap-suites-"))
    problems = []
    results = []
    with_cluster = "postgis" in legs
    reason = pg_cluster.missing_reason() if with_cluster else None
    if reason:
        if in_ci:
            problems.append(f"PostGIS leg cannot run under CI=true: {reason}")
        else:
            _say(f"WARNING: PostGIS leg SKIPPED: {reason}")
        legs = [leg for leg in legs if leg != "postgis"]
    cluster_context = pg_cluster.pg_cluster() if "postgis" in legs else None
    running = []
    try:
        url = None
        if cluster_context is not None:
            cluster = cluster_context.__enter__()
            url = cluster.url
            _say(f"PostGIS leg: throw-away cluster at {url}")
        made = []
        for name in legs:
            env = base_environment()
            env["CRIMEMAP_TEST_BACKEND"] = name
            if name == "postgis":
                env.update(pg_cluster.leg_environment(url))
            made.append(Leg(name, env, pytest_args, workdir / name))
        if serial:
            for leg in made:
                running = [leg]
                leg.start()
                results.append((leg, leg.wait()))
        else:
            running = made
            for leg in made:
                leg.start()
            results = [(leg, leg.wait()) for leg in made]
    except KeyboardInterrupt:
        for leg in running:
            leg.interrupt()
        problems.append("interrupted")
    except pg_cluster.ClusterError as error:
        problems.append(f"PostGIS leg: the cluster did not start: {error}")
    finally:
        if cluster_context is not None:
            cluster_context.__exit__(None, None, None)
    totals = {}
    _say("=" * 30 + " test legs " + "=" * 30)
    for leg, code in results:
        text, counts = leg.summary()
        for word, number in counts.items():
            totals[word] = totals.get(word, 0) + number
        minutes = (leg.ended - leg.started) / 60
        _say(f"{leg.name} leg: exit {code} after {minutes:.1f} min: {text}")
        if code != 0:
            problems.append(f"{leg.name} leg failed (pytest exit {code})")
    for problem in problems:
        _say(f"FAILED: {problem}")
    # One plain closing line over both legs ("N passed, N failed[, N skipped]").
    line = f"{totals.get('passed', 0)} passed, {totals.get('failed', 0) + totals.get('errors', 0)} failed"
    if totals.get("skipped"):
        line += f", {totals['skipped']} skipped"
    _say("suites: " + line)
    if problems or not results:
        _say(f"(the legs' temporary folders are kept in {workdir})")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=True)
    parser.add_argument("--serial", action="store_true", help="run the legs one after the other")
    parser.add_argument("--leg", choices=LEGS, action="append", help="run only this leg (repeatable)")
    options, pytest_args = parser.parse_known_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return run(options.leg or list(LEGS), pytest_args, options.serial)


if __name__ == "__main__":
    sys.exit(main())
