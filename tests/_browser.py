"""One Chromium tab over the DevTools protocol, for end-to-end tests (builds on tests/test_embed_browser.DevTools).

The tab records what a user cannot see but a test must: every network request
the page makes (``Network.requestWillBeSent``), and every console error,
uncaught exception and browser log error. Keys and mouse clicks go through
``Input.dispatch*Event``, as a keyboard and a mouse would send them.
"""

import json
import time
from urllib.parse import urlsplit

from tests.test_browser import _need_chromium
from tests.test_embed_browser import DevTools

KEYS = {"Tab": ("Tab", 9, ""), "Enter": ("Enter", 13, "\r"), " ": ("Space", 32, " ")}


class Tab:
    """A page in a fresh headless Chromium: ``goto``, ``js``, ``press``, ``type``, ``click``, ``hover``."""

    def __init__(self, profile, width=1280, height=900):
        self.browser = DevTools(_need_chromium(), profile)
        target = self.browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            self.send(method)
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False})
        self.requests, self.errors = [], []

    def send(self, method, params=None, timeout=60):
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def _sort_events(self):
        """Move requests and errors out of the event list; keep the rest for ``wait_for``."""
        rest = []
        for event in self.browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                self.errors.append(f"exception: {details.get('exception', {}).get('description') or details['text']}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                self.errors.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                                for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                self.errors.append(f"log: {params['entry']['text']} ({params['entry'].get('url', '')})")
            else:
                rest.append(event)
        self.browser.events = rest

    def wait_load(self, timeout=90, settle=1.0):
        """Wait for the next load event, then let scripts run for ``settle`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._sort_events()
            if any(e.get("method") == "Page.loadEventFired" for e in self.browser.events):
                self.browser.events = [e for e in self.browser.events if e.get("method") != "Page.loadEventFired"]
                self.browser.settle(settle)
                self._sort_events()
                return
            self.browser.events.extend(self.browser._receive(0.2))
        raise TimeoutError("no load event")

    def goto(self, url, settle=1.0):
        self._sort_events()
        self.browser.events = [e for e in self.browser.events if e.get("method") != "Page.loadEventFired"]
        self.send("Page.navigate", {"url": url})
        self.wait_load(settle=settle)

    def js(self, expression):
        """Evaluate ``expression`` in the page; JSON-able results come back as Python values."""
        result = self.send("Runtime.evaluate", {"expression": f"JSON.stringify({expression})",
                                                "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        value = result["result"].get("value")
        return None if value is None else json.loads(value)

    def press(self, key):
        code, vk, text = KEYS[key]
        down = {"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk}
        if text:
            down["text"] = text
        self.send("Input.dispatchKeyEvent", down)
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk})

    def type(self, text):
        for char in text:
            self.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": char, "text": char})
            self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": char})

    def tab_to(self, predicate_js, limit=80):
        """Press Tab until ``predicate_js`` (about ``document.activeElement``, bound to ``el``) holds."""
        for presses in range(1, limit + 1):
            self.press("Tab")
            if self.js(f"(el => Boolean({predicate_js}))(document.activeElement)"):
                return presses
        raise AssertionError(f"{predicate_js} not reached in {limit} Tab presses")

    def _mouse(self, kind, x, y, **extra):
        self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, **extra})

    def hover(self, x, y):
        self._mouse("mouseMoved", x, y)

    def click(self, x, y):
        self._mouse("mouseMoved", x, y)
        self._mouse("mousePressed", x, y, button="left", clickCount=1)
        self._mouse("mouseReleased", x, y, button="left", clickCount=1)

    def hosts(self):
        """The hosts of every http(s) or ws(s) request made so far (data: and blob: URLs stay in the page)."""
        self._sort_events()
        return {urlsplit(u).hostname for u in self.requests if urlsplit(u).scheme not in ("data", "blob", "about")}

    def close(self):
        self.browser.close()
