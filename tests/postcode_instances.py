"""Instances with the real postcode lookup, for the postcode web tests.

Loading takes seconds, so each test module builds one instance (module-scoped
fixture) with :func:`build`, through the real CLI. The files are read from
../shared/data in place, never copied.
"""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

WARDS_2022 = "boundaries/london-wards-2022-approx.gpkg"
BOROUGHS_2022 = "boundaries/london-2021-lad22-gen20.shp"
LSOA_2011 = "boundaries/london-2011-lsoa-gen20.shp"
POPULATION = "population/london-mid2020-lsoa11-pop.csv"
CODEPOINT = "postcodes/codepoint_open_2025-10_london.csv.gz"
POLICE_UK_API = "crime/police_uk_api_partial"


def cli(instance, *args):
    """Run ``crimemap --instance INSTANCE args...`` in process; fail the test on a non-zero exit."""
    from click.testing import CliRunner

    from crimemap.cli import main

    result = CliRunner().invoke(main, ["--instance", str(instance), *map(str, args)], catch_exceptions=False)
    if result.exit_code != 0:
        raise AssertionError(f"crimemap {' '.join(map(str, args))} failed:\n{result.output}")
    return result.output


def build(instance, need_shared, crimes=False):
    """Load wards (2022), boroughs and the Code-Point Open lookup; with ``crimes``, also police.uk
    API points (2018-03..05, 25 boroughs) and LSOA population, so rates and the London average exist."""
    instance.mkdir(parents=True, exist_ok=True)
    cli(instance, "boundaries", "load", "ward", need_shared(WARDS_2022))
    cli(instance, "boundaries", "load", "borough", need_shared(BOROUGHS_2022))
    if crimes:
        cli(instance, "boundaries", "load", "lsoa", need_shared(LSOA_2011))
        cli(instance, "population", "load", need_shared(POPULATION))
        cli(instance, "crimes", "ingest", *sorted(need_shared(POLICE_UK_API).glob("*.jsonl.gz")))
    cli(instance, "postcodes", "refresh", need_shared(CODEPOINT))
    return instance


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(instance):
    """``crimemap serve`` (gunicorn) on a free loopback port; yields its base URL."""
    import requests

    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # The access log goes to a file: a pipe nobody reads would fill and stall the server.
    log_path = instance / "serve.log"
    log = open(log_path, "w", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "crimemap", "--instance", str(instance), "serve", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(base + "/api/v1/status", timeout=5)
                break
            except requests.ConnectionError:
                if proc.poll() is not None:
                    raise AssertionError(f"server exited: {log_path.read_text()}") from None
                if time.monotonic() > deadline:
                    raise AssertionError("server did not answer within 120 s") from None
                time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()
