"""The README's first command, `crimemap serve --demo`, serves the site on gunicorn."""

import pytest
import requests

from tests.live_server import live_server


@pytest.mark.slow
def test_serve_demo_answers_on_loopback(tmp_path):
    with live_server(tmp_path / "instance", "--demo", ready="/") as base:
        response = requests.get(f"{base}/", timeout=30)
        assert response.status_code == 200
        assert "Synthetic demo data" in response.text
        status = requests.get(f"{base}/api/v1/status", timeout=30).json()
        assert status["demo"] is True
        assert status["crimes"]["rows_read"] > 10_000
        assert "gunicorn" in response.headers.get("Server", "").lower()
