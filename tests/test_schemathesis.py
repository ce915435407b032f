"""schemathesis against /api/openapi.json: no request the schema describes, valid or not, gets a 500.

The app runs in process (WSGI) over a copy of the real 2018 instance
(``api_2018``) with the real Code-Point Open postcode lookup added (so the
postcode routes are fuzzed past "no lookup loaded"), with the police.uk API's
rate limit off so that fuzzing measures answers, not
429s. Every operation of the document (``/api/v1``, the police.uk and the
postcodes.io APIs) gets ``EXAMPLES`` generated cases, schema-valid and
schema-violating ones, so the whole run takes a minute or two on 2 cores.

Allowed answers: anything below 500, and a 503 that is one of the documented
JSON errors (no postcode lookup loaded, more than ``POLICEUK_MAX_CRIMES``
crimes). Every 4xx/5xx under ``/api`` or ``/postcodes.io`` is JSON, and every
response carries exactly one ``X-Data-Version``.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from crimemap.web import create_app

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

EXAMPLES = 25


@pytest.fixture(scope="session")
def fuzz_app(api_2018, tmp_path_factory):
    from tests import postcode_instances
    from tests.conftest import _need_shared
    from tests.test_embed import copy_instance

    instance = copy_instance(api_2018.instance, tmp_path_factory.mktemp("schemathesis") / "instance")
    postcode_instances.cli(instance, "postcodes", "refresh", _need_shared(postcode_instances.CODEPOINT))
    return create_app({"INSTANCE": str(instance), "POLICEUK_RATE_LIMIT": ""})


@pytest.fixture(scope="session")
def api_schema(fuzz_app):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)
    # The documentation page is HTML for people; the document itself is tested in test_openapi.py.
    return schema.exclude(path="/api/docs")


schema = schemathesis.pytest.from_fixture("api_schema")


def _header(response, name):
    """Every value of a header (schemathesis keeps them in lists under lower-case names)."""
    return response.headers.get(name.lower(), [])


def _json_error(response):
    if not any(v.startswith("application/json") for v in _header(response, "Content-Type")):
        return None
    body = response.json()
    return body if isinstance(body, dict) else None


def check(case, response):
    """The rules every answer keeps, whatever was sent."""
    where = f"{case.method} {case.formatted_path} {case.query or ''}"
    status = response.status_code
    if status >= 500:
        body = _json_error(response)
        assert status == 503 and body and body.get("status") == 503 and body.get("error"), \
            f"{where}: {status} {response.text[:300]}"
    if status >= 400:
        body = _json_error(response)
        assert body is not None, f"{where}: a {status} that is not JSON: {response.text[:200]}"
        assert "Traceback" not in response.text
    assert len(_header(response, "X-Data-Version")) == 1, where


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_server_error_on_any_operation(case):
    response = case.call()
    check(case, response)
