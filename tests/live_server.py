"""One way for tests to run the production server: ``crimemap serve`` (gunicorn) on a free loopback port.

Browser, fault, load and client tests all need a real server rather than
Flask's test client. They share :func:`live_server`, which waits through a
busy machine's slow start, keeps the server's output in a log file (a pipe
nobody reads would fill and stall gunicorn) and stops the whole process group
at the end.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def live_server(instance, *args, ready="/api/v1/status", env=None, workers=None, wait_s=180):
    """Run ``crimemap --instance INSTANCE serve ARGS...`` and yield its base URL once ``ready`` answers 200.

    Parameters
    ----------
    instance : pathlib.Path
        The instance folder (it may not exist yet for ``--demo``). The server's
        log goes beside it, in ``serve-<port>.log``.
    *args : str
        More ``serve`` arguments, such as ``--demo``.
    ready : str
        A path that answers 200 once the server is up.
    env : dict, optional
        Extra environment variables (``CRIMEMAP_*`` settings).
    workers : int, optional
        gunicorn worker processes (the configured default when None).
    wait_s : float
        How long to wait for the first answer before failing the test.
    """
    port = free_port()
    command = [sys.executable, "-m", "crimemap", "--instance", str(instance), "serve", "--port", str(port), *args]
    if workers is not None:
        command += ["--workers", str(workers)]
    log_path = instance.parent / f"serve-{port}.log"
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})), start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                requests.get(base + ready, timeout=30).raise_for_status()
                break
            except (requests.ConnectionError, requests.Timeout):  # workers still starting on a busy machine
                if proc.poll() is not None:
                    pytest.fail(f"server exited: {log_path.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"server did not answer within {wait_s} s")
                time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
