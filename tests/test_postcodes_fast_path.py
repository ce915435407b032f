"""The WSGI fast path of GET /api/v1/postcodes/<pc> answers exactly as the Flask route does.

Every answer of the fast path is compared with the Flask route's answer to
the same request in the same app (``app.wsgi_app.wrapped``): status, body
bytes, every header name, order and value (the ``Date`` and a fresh
``X-Request-Id`` aside). Requests the fast path must not answer (errors,
query strings, HEAD, conditional requests, other routes) are checked to reach
Flask.
"""

import pytest
from werkzeug.test import Client

from crimemap.web import create_app
from crimemap.web.postcodes_api import FastLookup, _dumps
from tests.conftest import _need_shared, settings_for
from tests.postcode_instances import BOROUGHS_2022, CODEPOINT, build, cli

pytestmark = pytest.mark.shared_data

VARYING = ("Date", "X-Request-Id")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return build(tmp_path_factory.mktemp("pc-fast") / "instance", _need_shared)


def _app(instance, **config):
    return create_app({"INSTANCE": str(instance), "TESTING": True, **config})


@pytest.fixture(scope="module")
def app(loaded):
    return _app(loaded)


class Spy:
    """The Flask WSGI app, counting the requests that reach it."""

    def __init__(self, wrapped):
        self.wrapped, self.calls = wrapped, 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.wrapped(environ, start_response)


def _clients(app):
    """(client through the fast path, client straight to Flask, spy counting what reaches Flask)."""
    fast = app.wsgi_app
    assert isinstance(fast, FastLookup)
    spy = Spy(fast.wrapped)
    fast.wrapped = spy
    return Client(app.wsgi_app, app.response_class), Client(spy.wrapped, app.response_class), spy


def _headers(response):
    return [(k, "" if k in VARYING else v) for k, v in response.headers]


def _sample(n=400, seed=7):
    import gzip
    import random

    with gzip.open(_need_shared(CODEPOINT), "rt", encoding="utf-8") as f:
        next(f)
        postcodes = [line.split(",", 1)[0] for line in f]
    chosen = random.Random(seed).sample(postcodes, n)
    # Every spelling a resident types: canonical, lower case without the space, extra spaces, %20.
    return [[pc, pc.lower().replace(" ", ""), f"  {pc.replace(' ', '   ')} ", pc.replace(" ", "%20")][i % 4]
            for i, pc in enumerate(chosen)]


def test_the_fast_path_answers_known_postcodes_exactly_as_flask(app):
    fast, flask, spy = _clients(app)
    for spelling in _sample() + ["SW1A1AA", "EC1A1BB", "ec2v7hh"]:  # the City of London carries a message
        url = f"/api/v1/postcodes/{spelling}"
        a, b = fast.get(url), flask.get(url)
        assert a.status_code == b.status_code == 200, (url, b.get_data(as_text=True)[:300])
        assert a.get_data() == b.get_data(), url
        assert _headers(a) == _headers(b), url
        assert len(a.headers.getlist("X-Request-Id")[0]) == 16
    assert spy.calls == 0  # none of them reached Flask


@pytest.mark.parametrize("url, headers", [
    ("/api/v1/postcodes/NOT-A-POSTCODE", {}),  # 400
    ("/api/v1/postcodes/ZZ9%209ZZ", {}),  # valid, unknown: 404 with suggestions
    ("/api/v1/postcodes/SW1A1AA?pretty=1", {}),  # a query string: its own ETag
    ("/api/v1/postcodes/SW1A1AA/", {}),  # not this route
    ("/api/v1/postcodes/SW1A1AA/autocomplete", {}),
    ("/api/v1/postcodes/", {}),
    ("/api/v1/postcodes/SW1A1AA", {"If-None-Match": '"x"'}),  # conditional: caching.py answers
    ("/api/v1/postcodes/SW1A1AA", {"Range": "bytes=0-10"}),
    ("/api/v1/status", {}),
])
def test_everything_else_reaches_flask_unchanged(app, url, headers):
    fast, flask, spy = _clients(app)
    a, b = fast.get(url, headers=headers), flask.get(url, headers=headers)
    assert spy.calls == 1, url
    assert a.status_code == b.status_code and a.get_data() == b.get_data()
    assert _headers(a) == _headers(b)


def test_head_and_post_reach_flask(app):
    fast, _, spy = _clients(app)
    assert fast.head("/api/v1/postcodes/SW1A1AA").status_code == 200
    assert fast.post("/api/v1/postcodes/SW1A1AA").status_code == 405
    assert spy.calls == 2


def test_the_paths_it_answers_are_those_flask_routes_to_the_lookup(app):
    adapter = app.url_map.bind("localhost")
    for path in ("/api/v1/postcodes/x.json", "//api/v1/postcodes/SW1A1AA", "/api/v1/postcodes/%00",
                 "/api/v1/postcodes/autocomplete", "/api/v1/postcodes/SW1A 1AA"):
        endpoint, _ = adapter.match(path.replace("//", "/"))
        assert endpoint == "postcodes_api.postcode", path


def test_its_etag_revalidates_through_flask(app):
    fast, _, _ = _clients(app)
    first = fast.get("/api/v1/postcodes/sw1a1aa")
    again = fast.get("/api/v1/postcodes/sw1a1aa", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == first.headers["ETag"]
    # The ETag is per URL, as Flask's: another spelling is another resource.
    assert fast.get("/api/v1/postcodes/SW1A%201AA").headers["ETag"] != first.headers["ETag"]


def test_request_id_is_echoed_when_sane_and_replaced_when_not(app):
    fast, _, spy = _clients(app)
    assert fast.get("/api/v1/postcodes/SW1A1AA", headers={"X-Request-Id": "lb-1.2"}).headers["X-Request-Id"] == \
        "lb-1.2"
    replaced = fast.get("/api/v1/postcodes/SW1A1AA", headers={"X-Request-Id": "<script>"}).headers
    assert replaced["X-Request-Id"] != "<script>" and len(replaced["X-Request-Id"]) == 16
    ids = {fast.get("/api/v1/postcodes/SW1A1AA").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5 and spy.calls == 0


def test_hsts_over_tls_directly_and_behind_a_trusted_proxy(loaded, app):
    fast, flask, _ = _clients(app)
    a = fast.get("/api/v1/postcodes/SW1A1AA", base_url="https://crime.example")
    assert a.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert _headers(a) == _headers(flask.get("/api/v1/postcodes/SW1A1AA", base_url="https://crime.example"))
    assert "Strict-Transport-Security" not in fast.get("/api/v1/postcodes/SW1A1AA").headers
    proxied = _app(loaded, PROXY_FIX=1, HSTS_MAX_AGE_S=600).test_client()
    response = proxied.get("/api/v1/postcodes/SW1A1AA", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"] == "max-age=600"
    assert "Strict-Transport-Security" not in proxied.get("/api/v1/postcodes/SW1A1AA").headers


def test_it_can_be_turned_off(loaded):
    assert not isinstance(_app(loaded, POSTCODES_FAST_PATH=False).wsgi_app, FastLookup)


def test_body_is_written_as_jsonify_writes_it(app):
    for obj in ({"status": 200, "result": {"name": "Bow & Mile End", "z": None, "a": [1.5, 51.501009, -0.1]}},
                {"result": {"name": "Sainte-Hélène ☃", "lat": 1e-05, "big": 12345678901234567890}, "status": 200}):
        assert _dumps(obj) == app.json.response(obj).get_data()


def test_a_load_shows_in_the_next_answer(loaded):
    """Last in the module: it changes the instance.

    X-Data-Version and the ETag name the data the answer's areas were joined
    from; with POSTCODES_RECHECK_S=0 the lookup looks for new data on every
    request, so they follow a load at once, as the Flask route's do.
    """
    from crimemap.store import open_store

    fast, flask, _ = _clients(_app(loaded, POSTCODES_RECHECK_S=0))
    before = fast.get("/api/v1/postcodes/SW1A1AA")
    cli(loaded, "boundaries", "load", "borough", _need_shared(BOROUGHS_2022))
    version = str(open_store(settings_for(loaded), readonly=True).data_version())  # the test leg's store
    after = fast.get("/api/v1/postcodes/SW1A1AA")
    assert after.headers["X-Data-Version"] == version != before.headers["X-Data-Version"]
    assert after.headers["ETag"].strip('"').startswith(f"d{version}-")
    assert _headers(after) == _headers(flask.get("/api/v1/postcodes/SW1A1AA"))
    # A refresh of the lookup: a new lookup version in the ETag, as in the Flask route's.
    cli(loaded, "postcodes", "refresh", "--force", _need_shared(CODEPOINT))
    refreshed = fast.get("/api/v1/postcodes/SW1A1AA")
    assert refreshed.headers["ETag"] != after.headers["ETag"]
    assert _headers(refreshed) == _headers(flask.get("/api/v1/postcodes/SW1A1AA"))


@pytest.mark.slow
@pytest.mark.parametrize("access_log", ["", "-"])
def test_over_gunicorn_with_and_without_the_access_log(tmp_path_factory, access_log):
    """``crimemap serve``: the fast path's answer over HTTP, and ACCESS_LOG off by default, one switch away."""
    import requests

    from tests.live_server import live_server

    instance = build(tmp_path_factory.mktemp("pc-fast-serve") / "instance", _need_shared)
    env = {"CRIMEMAP_ACCESS_LOG": access_log} if access_log else {}
    with live_server(instance, ready="/healthz", env=env, workers=1) as base:
        session = requests.Session()
        fast = session.get(f"{base}/api/v1/postcodes/sw1a1aa", timeout=60)
        # The same request through Flask: a query string leaves the fast path (and makes another ETag).
        flask = session.get(f"{base}/api/v1/postcodes/sw1a1aa?via=flask", timeout=60)
    assert fast.status_code == flask.status_code == 200
    assert fast.content == flask.content and fast.json()["result"]["postcode"] == "SW1A 1AA"
    names = [k for k, _ in fast.raw.headers.items()]
    assert names == [k for k, _ in flask.raw.headers.items()] and names.count("Date") == 1
    for name in ("Content-Type", "Cache-Control", "Content-Security-Policy", "X-Content-Type-Options",
                 "Referrer-Policy", "X-Frame-Options", "X-Data-Version"):
        assert fast.headers[name] == flask.headers[name], name
    log = next(instance.parent.glob("serve-*.log")).read_text(encoding="utf-8")
    lines = [line for line in log.splitlines() if "GET /api/v1/postcodes/sw1a1aa" in line]
    assert len(lines) == (2 if access_log else 0), log[-2000:]
    # Each line ends with the request id its answer carried, so an error page's id finds its line.
    assert [line.split()[-1] for line in lines] == ([fast.headers["X-Request-Id"], flask.headers["X-Request-Id"]]
                                                   if access_log else [])
