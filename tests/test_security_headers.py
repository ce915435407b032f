"""Security headers, the data version header, request ids and production settings (docs/security.md).

In-process tests on a demo instance check each header on pages, embeds, JSON,
downloads, errors and static files; a live gunicorn server on a copy of the
real 2018 instance (with stop and search data added) is loaded in headless
Chromium, which must draw the maps with no Content-Security-Policy violation,
no console error and no script exception on every kind of page.
"""

import logging
import re

import pytest

from crimemap.web import create_app

END = "2024-06"
NONCE = re.compile(r"'nonce-([A-Za-z0-9_\-]+)'")


@pytest.fixture(scope="module")
def demo_instance(tmp_path_factory):
    from crimemap import demo

    folder = tmp_path_factory.mktemp("security") / "instance"
    demo.build_demo_instance(folder, end_month=END)
    return folder


def _app(instance, **config):
    return create_app({"INSTANCE": str(instance), "TESTING": True, "POLICEUK_RATE_LIMIT": "", **config})


@pytest.fixture(scope="module")
def app(demo_instance):
    return _app(demo_instance)


@pytest.fixture
def client(app):
    return app.test_client()


def _store_version(instance):
    """The data version in the test leg's store (SQLite file or PostGIS schema), read from its meta table."""
    from crimemap.store import open_store
    from tests.conftest import settings_for

    rows = open_store(settings_for(instance), readonly=True).query(
        "SELECT value FROM meta WHERE key = 'data_version'")
    return str(rows[0][0])


def _directives(policy):
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def _ward_code(client):
    body = client.get("/api/v1/choropleth?level=ward&geometry=none").get_json()
    return body["features"][0]["properties"]["code"]


PAGES = ["/", "/?level=ward", "/search?q=NOT+A+POSTCODE", "/stops", "/taser", "/api/docs"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_carry_a_strict_policy_with_a_fresh_nonce(client, path):
    first, second = client.get(path), client.get(path)
    assert first.status_code == 200, first.data[:300]
    policy = _directives(first.headers["Content-Security-Policy"])
    nonce = NONCE.search(first.headers["Content-Security-Policy"]).group(1)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert policy["style-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert first.headers["X-Frame-Options"] == "DENY"
    for directive in ("script-src", "style-src", "default-src"):
        assert "'unsafe-inline'" not in policy[directive] and "'unsafe-eval'" not in policy[directive]
    # Every inline script and style of the page carries this response's nonce, and only it.
    html = first.get_data(as_text=True)
    inline = re.findall(r"<(script|style)(?![^>]*\ssrc=)([^>]*)>", html)
    assert all(f'nonce="{nonce}"' in attrs for _, attrs in inline), inline
    assert nonce != NONCE.search(second.headers["Content-Security-Policy"]).group(1)


def test_area_page_scripts_carry_the_nonce(client):
    response = client.get(f"/area/ward/{_ward_code(client)}")
    assert response.status_code == 200
    nonce = NONCE.search(response.headers["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script(?![^>]*\ssrc=)([^>]*)>", response.get_data(as_text=True))
    assert scripts and all(f'nonce="{nonce}"' in attrs for attrs in scripts)


def test_embed_may_be_framed_as_configured_and_keeps_the_strict_policy(demo_instance):
    client = _app(demo_instance, EMBED_FRAME_ANCESTORS="https://news.example.org").test_client()
    response = client.get("/embed/map?level=borough")
    assert response.status_code == 200
    policy = _directives(response.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == ["https://news.example.org"]
    assert "X-Frame-Options" not in response.headers
    assert policy["script-src"][0] == "'self'" and policy["script-src"][1].startswith("'nonce-")


@pytest.mark.parametrize("path", ["/api/v1/status", "/api/v1/choropleth?geometry=none", "/api/forces",
                                  "/api/v1/choropleth?format=csv&geometry=none", "/healthz",
                                  "/api/v1/nothing-here", "/static/crimemap.css"])
def test_everything_else_may_load_nothing(client, path):
    with client.get(path) as response:  # a static file is streamed: close it
        policy = _directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


@pytest.mark.parametrize("path", ["/", "/api/v1/status", "/no-such-page", "/api/v1/areas/ward/NOPE", "/healthz",
                                  "/static/crimemap.css", "/embed/map?level=borough"])
def test_nosniff_referrer_policy_and_no_hsts_over_plain_http(client, demo_instance, path):
    with client.get(path) as response:
        pass
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in response.headers
    # Liveness reads no data and never asks the store, not even for this header (a database that is down
    # would make it wait); everything else names the store's version.
    expected = "unavailable" if path == "/healthz" else _store_version(demo_instance)
    assert response.headers.getlist("X-Data-Version") == [expected]


def test_hsts_over_tls_only(client):
    response = client.get("/", base_url="https://crimemap.example.org")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_forwarded_proto_is_believed_only_behind_a_configured_proxy(demo_instance):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "crime.example"}
    direct = _app(demo_instance).test_client().get("/", headers=forwarded)
    assert "Strict-Transport-Security" not in direct.headers  # anyone could send the header
    proxied = _app(demo_instance, PROXY_FIX=1, HSTS_MAX_AGE_S=600).test_client()
    response = proxied.get("/", headers=forwarded)
    assert response.headers["Strict-Transport-Security"] == "max-age=600"
    # External URLs follow the proxy's scheme and host too (oEmbed discovery link).
    assert "https://crime.example/" in response.get_data(as_text=True)
    off = _app(demo_instance, PROXY_FIX=1, HSTS_MAX_AGE_S=0).test_client().get("/", headers=forwarded)
    assert "Strict-Transport-Security" not in off.headers
    with pytest.raises(ValueError, match="PROXY_FIX"):
        _app(demo_instance, PROXY_FIX=-1)


def test_tile_server_is_the_only_other_image_origin(demo_instance):
    client = _app(demo_instance, TILE_URL="https://{s}.tile.example.org/{z}/{x}/{y}.png",
                  TILE_ATTRIBUTION="Tiles: example").test_client()
    policy = _directives(client.get("/").headers["Content-Security-Policy"])
    assert policy["img-src"] == ["'self'", "data:", "https://*.tile.example.org"]
    with pytest.raises(ValueError, match="TILE_URL"):
        _app(demo_instance, TILE_URL="ftp://tiles.example.org/{z}/{x}/{y}.png")


def test_data_version_header_matches_the_body(client, demo_instance):
    version = _store_version(demo_instance)
    for path in ("/api/v1/choropleth?geometry=none", f"/api/v1/areas/ward/{_ward_code(client)}",
                 "/api/v1/status"):
        response = client.get(path)
        assert response.headers.getlist("X-Data-Version") == [version]
        assert str(response.get_json()["data_version"]) == version
    page = client.get("/")
    assert page.headers.getlist("X-Data-Version") == [version]
    assert f"data version {version}" in page.get_data(as_text=True)


def test_readyz_names_the_version_its_checks_read_and_healthz_never_asks_the_store(demo_instance):
    app = _app(demo_instance)
    store = app.extensions["crimemap"]["store"]
    calls = []

    class Counting:
        """The app's store, noting every method the app calls on it."""

        def __getattr__(self, name):
            calls.append(name)
            return getattr(store, name)

    app.extensions["crimemap"]["store"] = Counting()
    client = app.test_client()
    live = client.get("/healthz")
    assert live.status_code == 200 and live.headers.getlist("X-Data-Version") == ["unavailable"]
    assert calls == []  # with the database down, any store call would wait DATABASE_TIMEOUT_S
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.headers.getlist("X-Data-Version") == [str(ready.get_json()["checks"]["data_version"])]
    assert ready.headers["X-Data-Version"] == _store_version(demo_instance)
    # The header reused what the checks read: one read of the meta table (site_context would be a second).
    assert calls.count("meta") == 1 and "data_version" not in calls, calls


def test_a_304_carries_the_data_version(client, demo_instance):
    first = client.get("/api/v1/status")
    again = client.get("/api/v1/status", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers.getlist("X-Data-Version") == [_store_version(demo_instance)]


def test_a_pinned_embed_names_its_own_version(client, demo_instance):
    current = _store_version(demo_instance)
    response = client.get(f"/embed/map?level=borough&version={current}")
    assert response.status_code == 200
    assert response.headers.getlist("X-Data-Version") == [current]


def test_no_debug_mode_and_no_secret_key_whatever_the_environment(demo_instance, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = _app(demo_instance, DEBUG=True)
    assert app.debug is False and app.config["DEBUG"] is False
    assert app.secret_key is None
    # No response sets a cookie: there is nothing a secret key would sign.
    client = app.test_client()
    for path in ("/", "/search?q=SW1A1AA", "/api/v1/status", "/embed/map?level=borough"):
        assert "Set-Cookie" not in client.get(path).headers


def _failing_app(demo_instance):
    app = _app(demo_instance, TESTING=False)

    @app.get("/api/v1/_boom")
    def _boom():
        raise RuntimeError("secret path /etc/crimemap and SELECT * FROM crimes")

    @app.get("/_boom")
    def _page_boom():
        raise RuntimeError("secret path /etc/crimemap and SELECT * FROM crimes")

    return app


@pytest.mark.parametrize("path, json_body", [("/api/v1/_boom", True), ("/_boom", False)])
def test_server_errors_are_logged_with_the_request_id_and_never_shown(demo_instance, caplog, path, json_body):
    client = _failing_app(demo_instance).test_client()
    with caplog.at_level(logging.ERROR, logger="crimemap.web"):
        response = client.get(path, headers={"X-Request-Id": "lb-1234.abc"})
    assert response.status_code == 500
    assert response.headers["X-Request-Id"] == "lb-1234.abc"
    text = response.get_data(as_text=True)
    assert "secret" not in text and "SELECT" not in text and "Traceback" not in text
    assert "lb-1234.abc" in text
    if json_body:
        assert response.get_json() == {"status": 500, "error": "Internal server error (request id lb-1234.abc)"}
    records = [r for r in caplog.records if "lb-1234.abc" in r.getMessage()]
    assert records and records[0].exc_info and "secret path" in str(records[0].exc_info[1])


def test_a_failing_tile_reports_the_request_id_its_header_carries(demo_instance, caplog, monkeypatch):
    from crimemap.web import tiles

    def boom(*args):
        raise RuntimeError("secret path /etc/crimemap")

    monkeypatch.setattr(tiles, "parse_address", boom)
    client = _app(demo_instance, TESTING=False).test_client()
    with caplog.at_level(logging.ERROR, logger="crimemap.web"):
        response = client.get("/tiles/ward/12/2046/1362.pbf", headers={"X-Request-Id": "lb-77.tile"})
    assert response.status_code == 500 and response.headers["X-Request-Id"] == "lb-77.tile"
    assert response.get_json() == {"status": 500, "error": "Internal server error (request id lb-77.tile)"}
    assert any("lb-77.tile" in r.getMessage() and r.exc_info for r in caplog.records)


@pytest.mark.parametrize("given", ["", "x" * 65, "bad id", "<script>", "a\tb"])
def test_an_unsafe_request_id_is_replaced(client, given):
    response = client.get("/healthz", headers={"X-Request-Id": given})
    rid = response.headers["X-Request-Id"]
    assert rid != given and re.fullmatch(r"[0-9a-f]{16}", rid)


def test_each_request_gets_its_own_id(client):
    ids = {client.get("/healthz").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5


def test_page_errors_are_html_with_the_headers(client):
    response = client.get("/area/ward/NOPE")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "nonce-" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- in a real browser ------------------------------------------------------------------------------------------

# Collects the page's CSP violations; DevTools adds it before any script of the page runs (CSP does not apply to it).
_LISTEN = """window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
    [e.effectiveDirective, e.blockedURI, e.sample || '', e.sourceFile + ':' + e.lineNumber].join(' ')));"""
_PROBE = "JSON.stringify({csp: window.__csp, paths: document.querySelectorAll('path.leaflet-interactive').length})"
# A script that did not come from our templates: the policy must refuse to run it.
_INJECT = """(() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';
    document.body.appendChild(s); return window.__ran === 1; })()"""


@pytest.fixture(scope="module")
def live_server(api_2018, tmp_path_factory):
    """gunicorn (``crimemap serve``) on a copy of the real 2018 instance with stop and search data added."""
    import subprocess
    import sys

    from tests import live_server as live
    from tests.conftest import _need_shared, copy_leg_instance
    from tests.test_browser import _need_chromium

    _need_chromium()
    instance = copy_leg_instance(api_2018.instance, tmp_path_factory.mktemp("csp-browser") / "instance")
    run = [sys.executable, "-m", "crimemap", "--instance", str(instance)]
    for args in (["stops", "population", _need_shared("population/census2011_ethnic_group_by_local_authority_EW.csv")],
                 ["stops", "ingest",
                  _need_shared("crime/police_uk/stop-and-search/2016-06-metropolitan-stop-and-search.csv")]):
        done = subprocess.run([*run, *map(str, args)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    with live.live_server(instance, ready="/healthz") as base:
        yield base


def _browse(base, paths):
    import json
    import tempfile

    from tests.test_browser import _need_chromium
    from tests.test_embed_browser import DevTools

    browser = DevTools(_need_chromium(), tempfile.mkdtemp(prefix="csp-profile-"))
    seen = {}
    try:
        for path in paths:
            target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for method in ("Page.enable", "Runtime.enable", "Log.enable"):
                browser.send(method, session=session)
            browser.send("Page.addScriptToEvaluateOnNewDocument", {"source": _LISTEN}, session=session)
            browser.events.clear()
            browser.send("Page.navigate", {"url": base + path}, session=session)
            browser.wait_for("Page.loadEventFired", timeout=120)
            browser.settle(1.5)
            found = json.loads(browser.send("Runtime.evaluate", {"expression": _PROBE, "returnByValue": True},
                                            session=session)["result"]["value"])
            found["errors"] = [e["params"]["entry"] for e in browser.events
                               if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"
                               and not e["params"]["entry"].get("url", "").endswith("/favicon.ico")]
            found["exceptions"] = [e["params"]["exceptionDetails"] for e in browser.events
                                   if e.get("method") == "Runtime.exceptionThrown"]
            ran = browser.send("Runtime.evaluate", {"expression": _INJECT, "returnByValue": True},
                               session=session)["result"]["value"]
            browser.settle(0.5)  # the violation event is queued, not dispatched at once
            after = json.loads(browser.send("Runtime.evaluate", {"expression": _PROBE, "returnByValue": True},
                                            session=session)["result"]["value"])
            found["injected"] = {"ran": ran, "csp": after["csp"]}
            seen[path] = found
            browser.send("Target.closeTarget", {"targetId": target})
    finally:
        browser.close()
    return seen


@pytest.mark.slow
@pytest.mark.shared_data
def test_no_csp_violation_in_a_real_browser(live_server):
    import requests

    ward = requests.get(f"{live_server}/api/v1/choropleth?level=ward&geometry=none", timeout=60).json()
    ward_code = ward["features"][0]["properties"]["code"]
    maps = ["/", "/?level=ward&crime=burglary", f"/area/ward/{ward_code}", "/area/borough/E09000022",
            "/embed/map?level=ward", "/embed/map?level=borough&code=E09000022", "/stops"]
    others = ["/search?q=SW1A+1AA", "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/stops/borough/E09000022",
              "/taser", "/api/docs", "/no-such-page", "/map/ward", "/map/borough"]
    seen = _browse(live_server, maps + others)
    for path, found in seen.items():
        assert found["csp"] == [], (path, found["csp"])
        assert found["exceptions"] == [], (path, found["exceptions"])
        assert [e for e in found["errors"] if "404" not in e["text"] or path != "/no-such-page"] == [], \
            (path, found["errors"])
        # The policy is enforced: a script the templates did not write is refused, and reported.
        assert found["injected"]["ran"] is False, path
        assert any(v.startswith("script-src") for v in found["injected"]["csp"]), (path, found["injected"])
    for path in maps:
        assert seen[path]["paths"] > 0, (path, "the map drew no areas")


# Every page names its icon, served from the site itself (no request for /favicon.ico that 404s).
@pytest.mark.parametrize("path", ["/", "/no-such-page", "/embed/map?level=borough", "/stops"])
def test_pages_link_an_icon_that_is_served_and_allowed(client, path):
    page = client.get(path)
    links = re.findall(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', page.get_data(as_text=True))
    assert len(links) == 1, links
    with client.get(links[0]) as icon:
        assert icon.status_code == 200
        assert icon.mimetype == "image/svg+xml"
        assert icon.get_data(as_text=True).lstrip().startswith("<svg")
    images = re.search(r"img-src ([^;]+)", page.headers["Content-Security-Policy"])
    assert images and "'self'" in images.group(1).split()
