"""Helpers for the fault tests: a live ``crimemap serve`` on loopback, and CLI runs that are killed or size-limited.

The CLI runs themselves are started with ``_cli`` of the single-kill test
(``tests/test_ingest_interrupted.py``); this module adds what a loop of kills
and a disk-full run need on top: a server that keeps serving through them, a
kill after a chosen delay, and a file-size cap.
"""

import resource
import signal
import subprocess
import time

import requests

from tests.live_server import live_server as serve


def live_server(instance, ready="/api/v1/status", env=None, workers=1):
    """``crimemap serve`` on a free loopback port with one worker by default (see :mod:`tests.live_server`)."""
    return serve(instance, ready=ready, env=env, workers=workers)


def get_json(url, status=200):
    """GET ``url`` and return its JSON, checking the status code (unless ``status`` is None)."""
    response = requests.get(url, timeout=60)
    assert status is None or response.status_code == status, (url, response.status_code, response.text[:500])
    return response.json()


def run_to_end(start, timeout=300):
    """Start a run with ``start()`` (a Popen with stdout piped) and wait for it; returns (returncode, output)."""
    proc = start()
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def run_and_kill(start, delay):
    """Start a run, SIGKILL it after ``delay`` seconds unless it ended first.

    Returns
    -------
    tuple
        (returncode, output printed before the end): returncode is
        ``-signal.SIGKILL`` when the kill landed.
    """
    proc = start()
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out


def timed(start):
    """One uninterrupted run: (seconds, returncode, output)."""
    began = time.monotonic()
    code, out = run_to_end(start)
    return time.monotonic() - began, code, out


def limit_file_size(nbytes):
    """A ``preexec_fn`` that caps every file the child writes at ``nbytes`` (a disk that fills up).

    Python ignores SIGXFSZ, so a write past the cap fails with EFBIG
    ("File too large") instead of killing the process, as a full disk fails
    with ENOSPC.
    """

    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return apply

