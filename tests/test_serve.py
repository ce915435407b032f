"""The README's first command, `crimemap serve --demo`, serves the site on gunicorn."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_serve_demo_answers_on_loopback(tmp_path):
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "crimemap", "--instance", str(tmp_path / "instance"), "serve", "--demo",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        response = None
        while time.monotonic() < deadline:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except requests.ConnectionError:
                if proc.poll() is not None:
                    pytest.fail(f"server exited: {proc.stdout.read()}")
                time.sleep(0.5)
        assert response is not None, "server did not answer within 120 s"
        assert response.status_code == 200
        assert "Synthetic demo data" in response.text
        status = requests.get(f"http://127.0.0.1:{port}/api/v1/status", timeout=5).json()
        assert status["demo"] is True
        assert status["crimes"]["rows_read"] > 10_000
        assert "gunicorn" in requests.get(f"http://127.0.0.1:{port}/", timeout=5).headers.get("Server", "").lower()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()
