"""The police.uk-compatible API's rate limit: 429 as police.uk answers, configurable, only on that API."""

import pytest
from limits import parse

from crimemap.config import DEFAULTS


def _client(instance, limit):
    from crimemap.web import create_app

    return create_app({"INSTANCE": str(instance), "TESTING": True, "POLICEUK_RATE_LIMIT": limit}).test_client()


def test_the_default_is_police_uks_burst_and_rate():
    item = parse(DEFAULTS["POLICEUK_RATE_LIMIT"])
    seconds = item.get_expiry()
    assert item.amount == 30  # police.uk's burst
    assert item.amount / seconds == 15  # police.uk's long-run rate, requests per second


def test_over_the_limit_is_429_json_with_retry_after(instance):
    # An hour-long window: the count cannot expire while the test runs, however slow the machine.
    client = _client(instance, "30 per 1 hour")
    answers = [client.get("/api/forces") for _ in range(30)]
    assert {r.status_code for r in answers} == {200}
    over = client.get("/api/crime-categories")
    assert over.status_code == 429
    assert over.get_json()["status"] == 429 and over.get_json()["error"]
    assert int(over.headers["Retry-After"]) > 0
    # Only the police.uk-compatible API is limited.
    assert client.get("/api/v1/crime-types").status_code == 200
    assert client.get("/api/openapi.json").status_code == 200


@pytest.mark.parametrize("limit", ["", None])
def test_an_empty_limit_turns_it_off(instance, limit):
    client = _client(instance, limit)
    assert {client.get("/api/forces").status_code for _ in range(40)} == {200}
