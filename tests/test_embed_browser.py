"""Embeds in a real browser: a page on another local origin frames /embed/map, and cannot frame the site itself.

The crimemap production server (gunicorn, ``crimemap serve``) serves a copy
of the real 2018 instance on one loopback port; a second server on another
port serves a "news page" holding the oEmbed iframe snippet and an iframe of
``/``. Headless Chromium is driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``, no extra library), which can look inside each
frame: the embed's document has drawn every area with the legend and the
attribution in view, while the frame of ``/`` was refused (Chromium's error
page, ``unreachableUrl``) because of ``frame-ancestors 'none'``.

``CRIMEMAP_UPDATE_SCREENSHOTS=1`` writes the screenshot to
``docs/screenshots/embed.png``; otherwise it goes to the test's temporary folder.
"""

import base64
import http.server
import json
import os
import select
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.live_server import live_server

from crimemap.attribution import ATTRIBUTION
from crimemap.web.maps import BAND_COLOURS, CITY_FILL, NO_DATA_FILL
from tests.test_browser import _free_port, _need_chromium
from tests.test_embed import copy_instance
from tests.test_embed_oembed import frame_policy

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


class DevTools:
    """Chromium over ``--remote-debugging-pipe``: JSON messages ending in NUL, commands on fd 3, replies on fd 4."""

    def __init__(self, binary, profile):
        cmd_read, self._cmd_write = os.pipe()
        self._reply_read, reply_write = os.pipe()

        def child():
            # Copy first, so moving one descriptor onto 3 or 4 cannot close the other.
            a, b = os.dup(cmd_read), os.dup(reply_write)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
                                      "about:blank"], preexec_fn=child, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_read)
        os.close(reply_write)
        self._buffer, self._id, self.events = b"", 0, []

    def _receive(self, timeout):
        ready, _, _ = select.select([self._reply_read], [], [], timeout)
        if ready:
            chunk = os.read(self._reply_read, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        while b"\0" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\0", 1)
            yield json.loads(raw)

    def send(self, method, params=None, session=None, timeout=60):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._cmd_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for reply in self._receive(0.5):
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
                self.events.append(reply)
        raise TimeoutError(method)

    def wait_for(self, method, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.extend(self._receive(0.5))
        raise TimeoutError(method)

    def settle(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.events.extend(self._receive(0.2))

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_write)
        os.close(self._reply_read)


@pytest.fixture(scope="module")
def crimemap_server(api_2018, tmp_path_factory):
    """A copy of the real 2018 instance on gunicorn (``crimemap serve``), on a free loopback port."""
    _need_chromium()
    instance = copy_instance(api_2018.instance, tmp_path_factory.mktemp("embed-browser") / "instance")
    with live_server(instance) as base:
        yield base


@pytest.fixture(scope="module")
def news_page(crimemap_server):
    """Another origin (another loopback port) serving a page that frames the oEmbed snippet and the site itself."""
    oembed = requests.get(f"{crimemap_server}/oembed", params={
        "url": f"{crimemap_server}/?level=borough&crime=all-crime", "format": "json"}, timeout=60).json()
    page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Local news</title></head>"
            "<body style='margin:0;font-family:sans-serif'><h1 style='font-size:18px;margin:8px'>"
            "Local news: crime in London</h1><p style='margin:0 8px 8px;font-size:13px'>Left: the oEmbed snippet of "
            "crimemap's borough map. Right: an iframe of crimemap's home page, which the browser refuses "
            "(frame-ancestors 'none').</p>" + oembed["html"] +
            f"<iframe name='site' src='{crimemap_server}/' width='320' height='240' title='The site'></iframe>"
            "</body></html>").encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", oembed
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def loaded_page(news_page, tmp_path_factory):
    """The news page loaded in Chromium: the frame tree, what each frame's document holds, and a screenshot."""
    url, oembed = news_page
    browser = DevTools(_need_chromium(), tmp_path_factory.mktemp("profile"))
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Runtime.enable"):
            browser.send(method, session=session)
        browser.send("Emulation.setDeviceMetricsOverride", {"width": 1100, "height": 700, "deviceScaleFactor": 1,
                                                             "mobile": False}, session=session)
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_for("Page.loadEventFired")
        browser.settle(2)
        frames = browser.send("Page.getFrameTree", session=session)["frameTree"]
        contexts = {}
        for event in browser.events:
            if event.get("method") == "Runtime.executionContextCreated":
                context = event["params"]["context"]
                contexts[context["auxData"]["frameId"]] = context["id"]  # the latest document of each frame
        probe = """(() => {
            const bottom = (selector) => {
                const element = document.querySelector(selector);
                return element ? element.getBoundingClientRect().bottom : 1e9;
            };
            return JSON.stringify({
                href: location.href,
                fills: Array.from(document.querySelectorAll('path.leaflet-interactive'), p => p.getAttribute('fill')),
                legend: Array.from(document.querySelectorAll('.legend-inline li'), li => li.textContent.trim()),
                legendBottom: bottom('.legend-inline'), attributionBottom: bottom('.attribution'),
                height: innerHeight, text: document.body ? document.body.innerText : ''});
        })()"""
        documents = {}
        for child in frames.get("childFrames", []):
            frame = child["frame"]
            if frame["id"] in contexts:
                result = browser.send("Runtime.evaluate", {"expression": probe, "contextId": contexts[frame["id"]],
                                                           "returnByValue": True}, session=session)
                documents[frame["id"]] = json.loads(result["result"]["value"])
        shot = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"])
    finally:
        browser.close()
    return {"frames": [c["frame"] for c in frames.get("childFrames", [])], "documents": documents, "shot": shot,
            "oembed": oembed}


def _frame(loaded, predicate):
    found = [f for f in loaded["frames"] if predicate(f)]
    assert len(found) == 1, loaded["frames"]
    return found[0]


def test_the_embed_renders_inside_a_frame_of_another_origin(loaded_page, crimemap_server):
    frame = _frame(loaded_page, lambda f: "/embed/map" in f["url"])
    assert frame["url"] == loaded_page["oembed"]["url"]
    assert frame["securityOrigin"] == crimemap_server
    document = loaded_page["documents"][frame["id"]]
    boroughs = requests.get(f"{crimemap_server}/api/v1/choropleth?level=borough&geometry=none", timeout=60).json()
    assert len(document["fills"]) == len(boroughs["features"]) == 33  # Leaflet drew every area
    allowed = set(BAND_COLOURS.values()) | {CITY_FILL, NO_DATA_FILL}
    assert set(document["fills"]) <= allowed and len(set(document["fills"]) & set(BAND_COLOURS.values())) >= 3
    assert document["legend"][:6] == ["Much lower", "Lower", "Around average", "Higher", "Much higher", "No data"]
    for line in ATTRIBUTION:
        assert line in document["text"]
    assert "data as of 2018-05" in document["text"]
    # The legend and the attribution are inside the frame's viewport, so the screenshot shows them.
    assert document["legendBottom"] <= document["height"]
    assert document["attributionBottom"] <= document["height"]


def test_a_frame_of_the_site_itself_is_refused(loaded_page, crimemap_server):
    frame = _frame(loaded_page, lambda f: f.get("name") == "site")
    assert frame.get("unreachableUrl") == f"{crimemap_server}/"
    assert frame["url"].startswith("chrome-error://")
    document = loaded_page["documents"].get(frame["id"], {"fills": [], "text": ""})
    assert document["fills"] == [] and "crimemap" not in document["text"]
    headers = requests.get(f"{crimemap_server}/", timeout=60).headers
    assert frame_policy(headers) == "frame-ancestors 'none'" and headers["X-Frame-Options"] == "DENY"


def test_screenshot_of_the_news_page(loaded_page, tmp_path):
    folder = SCREENSHOTS if os.environ.get("CRIMEMAP_UPDATE_SCREENSHOTS") == "1" else tmp_path
    target = folder / "embed.png"
    target.write_bytes(loaded_page["shot"])
    assert loaded_page["shot"][:8] == b"\x89PNG\r\n\x1a\n"
    assert len(loaded_page["shot"]) > 40_000  # a blank or error page compresses to a few KB
