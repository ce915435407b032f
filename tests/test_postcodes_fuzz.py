"""Fuzzing: 10,000 random and hostile strings to the postcode API, the postcodes.io routes and /search.

The only answers allowed are 200, 302 (a search that found its ward), 400 and
404, and 503 on an instance with no lookup. JSON answers parse as JSON with
``status`` equal to the HTTP status; HTML answers never contain the input
unescaped. A fixed corpus of hostile strings (path traversal, NUL bytes, SQL
and HTML fragments, very long and odd Unicode) runs first, then Hypothesis
draws the rest.
"""

import json
import re
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from crimemap.web import create_app
from tests.conftest import _need_shared
from tests.postcode_instances import build

pytestmark = pytest.mark.shared_data

TOTAL = 10_000
CORPUS = [
    "", " ", "SW1A 1AA", "sw1a1aa", "SW1A", "GIR 0AA", "EC2V 7HH", "ZE1 0AA",
    "../", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f", "..\\..\\windows", "/", "//", "\\",
    "%00", "\x00", "SW1A\x001AA", "SW1A%001AA", "%", "%%", "%zz", "%C0%AE", "%ff", "?", "#", "&", "&amp;", ";",
    "' OR '1'='1", "'; DROP TABLE postcodes; --", "\" OR 1=1 --", "1; SELECT * FROM areas", "UNION SELECT NULL",
    "<script>alert(1)</script>", "\"><script>alert(1)</script>", "'><img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>", "javascript:alert(1)", "{{7*7}}", "${7*7}", "{% raw %}", "<!--", "]]>",
    "<iframe src=//evil>", "</textarea><b>", "\" autofocus onfocus=alert(1) x=\"",
    "SW1A 1AA<script>", "<b>SW1A 1AA</b>",
    "Ｓｗ１Ａ１ＡＡ", "ſw1a1aa", "ı", "ß", "İ", "\u202eAA1A1WS", "\u200bSW1A1AA", "SW1A\u00a01AA", "SW1A\u20281AA",
    "😀", "🇬🇧", "\ud7ff", "\ufeff", "\uffff", "ᵂ", "𝐒𝐖𝟏𝐀", "\r\n", "\t", "SW1A\r\nSet-Cookie: x=1",
    "a" * 17, "SW1A 1AA" * 20, "x" * 5_000, "<" * 3_000, "9" * 100_000,
    "null", "None", "undefined", "NaN", "-1", "0", "1e309", "true", "[]", "{}", "[\"SW1A1AA\"]",
]
API_ROUTES = ["/api/v1/postcodes/{}", "/api/v1/postcodes/{}/autocomplete", "/api/v1/postcodes?lat={}&lon=0",
              "/api/v1/postcodes?lat=51.5&lon=-0.1&limit={}", "/api/v1/postcodes?lat=51.5&lon=-0.1&radius={}"]
IO_ROUTES = ["/postcodes.io/postcodes/{}", "/postcodes.io/postcodes/{}/validate",
             "/postcodes.io/postcodes/{}/autocomplete", "/postcodes.io/postcodes/{}/nearest",
             "/postcodes.io/outcodes/{}", "/postcodes.io/terminated_postcodes/{}", "/postcodes.io/postcodes?q={}",
             "/postcodes.io/postcodes?lon={}&lat=51.5", "/postcodes.io/postcodes/lon/{}/lat/51.5",
             "/postcodes.io/postcodes?lon=-0.1&lat=51.5&limit={}"]
PAGE_ROUTES = ["/search?q={}"]
# An area page draws a map (~0.1 s), so it gets the hostile part of the corpus only.
AREA_ROUTE = "/area/ward/E05013806?postcode={}"
TAG = re.compile(r"<[a-zA-Z/!?]")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return build(tmp_path_factory.mktemp("pc-fuzz") / "instance", _need_shared)


@pytest.fixture(scope="module")
def client(loaded):
    return create_app({"INSTANCE": str(loaded), "TESTING": True}).test_client()


@pytest.fixture(scope="module")
def baseline(client):
    """The search page for an empty query: text an input may match without being reflected."""
    return client.get("/search").get_data(as_text=True)


class _Injected(HTMLParser):
    """Markup that only an injection would put in a page: event handlers, autofocus, foreign tags, alert()."""

    FOREIGN = {"img", "iframe", "object", "embed", "textarea", "math", "base"}

    def __init__(self):
        super().__init__()
        self.found, self._script = [], False

    def handle_starttag(self, tag, attrs):
        self._script = tag == "script"
        if tag in self.FOREIGN:
            self.found.append(tag)
        self.found.extend(f"{tag}[{name}]" for name, _ in attrs if name.startswith("on") or name == "autofocus")

    def handle_endtag(self, tag):
        self._script = False

    def handle_data(self, data):
        if self._script and "alert(" in data:
            self.found.append("script alert(")


class Checker:
    def __init__(self, client, baseline, allowed=(200, 302, 400, 404)):
        self.client, self.baseline, self.allowed = client, baseline, allowed
        self.sent = 0
        self.statuses = {}

    def _check(self, response, text, url):
        status = response.status_code
        self.statuses[status] = self.statuses.get(status, 0) + 1
        assert status in self.allowed, (url[:300], status, response.get_data(as_text=True)[:300])
        body = response.get_data(as_text=True)
        if status == 302:
            assert response.headers["Location"].startswith("/area/ward/")
        elif response.mimetype == "application/json":
            assert json.loads(body)["status"] == status, url[:300]
        else:
            assert response.mimetype == "text/html", (url[:300], response.mimetype)
            self._not_reflected(text, body, url)

    def _not_reflected(self, text, body, url):
        shown = text.strip()[:64]
        if TAG.search(shown) or '"' in shown:
            # Raw, the input would open a tag or leave an attribute; escaped it must be.
            assert shown not in body or shown in self.baseline, url[:300]
        injected = _Injected()
        injected.feed(body)
        assert injected.found == [], (url[:300], injected.found[:5])
        if shown and TAG.search(shown) and shown != str(escape(shown)) and shown not in self.baseline:
            assert str(escape(shown)) in body or "?q=" not in url, url[:300]

    def send(self, text, routes, k):
        """One string, quoted into ``routes[k % len(routes)]``; GET, plus POST for bulk bodies."""
        route = routes[k % len(routes)]
        url = route.format(quote(text, safe=""))
        self._check(self.client.get(url), text, url)
        self.sent += 1

    def bulk(self, text):
        for payload in ({"postcodes": [text, text[:8]]}, {"geolocations": [{"longitude": text, "latitude": 51.5}]}):
            response = self.client.post("/postcodes.io/postcodes", json=payload)
            self._check(response, text, "POST /postcodes.io/postcodes")
        response = self.client.post("/postcodes.io/postcodes", data=text.encode("utf-8", "surrogatepass"),
                                    content_type="application/json")
        self._check(response, text, "POST raw")
        self.sent += 1


def _send_everywhere(checker, text, k):
    checker.send(text, API_ROUTES, k)
    checker.send(text, IO_ROUTES, k)
    checker.send(text, PAGE_ROUTES, k)


def test_fixed_corpus_of_hostile_strings(client, baseline):
    checker = Checker(client, baseline)
    for k, text in enumerate(CORPUS):
        for routes in (API_ROUTES, IO_ROUTES, PAGE_ROUTES):
            for j in range(len(routes)):
                checker.send(text, routes, j)
        checker.bulk(text)
        if TAG.search(text) or "'" in text or '"' in text or "%" in text:
            checker.send(text, [AREA_ROUTE], 0)
    # Unquoted too: the client sends the raw characters (werkzeug quotes only what it must).
    for text in CORPUS:
        if "\x00" in text or "#" in text or "?" in text or len(text) > 5_000:
            continue
        for route in ("/api/v1/postcodes/", "/postcodes.io/postcodes/", "/search?q="):
            response = client.get(route + text)
            checker._check(response, text, route + text)
    assert checker.statuses.get(500) is None


# Hypothesis draws the rest of the 10,000: Unicode text of any kind (every
# category but surrogates), ASCII postcode-like text, and mixes with the corpus.
postcode_like = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ", max_size=10)
hostile = st.builds(lambda a, b, c: a + b + c, st.text(max_size=8), st.sampled_from(CORPUS[:60]),
                    st.text(max_size=8))
strings = st.one_of(st.text(max_size=40), postcode_like, hostile, st.text(min_size=60, max_size=600))
DRAWN = TOTAL - len(CORPUS)  # each string goes to one route of each group: API, postcodes.io, pages


@pytest.mark.slow
def test_random_strings(client, baseline):
    checker = Checker(client, baseline)
    counter = iter(range(10 ** 9))

    @settings(max_examples=DRAWN, database=None, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(text=strings)
    def one(text):
        k = next(counter)
        _send_everywhere(checker, text, k)
        if k % 50 == 0:
            checker.bulk(text)

    one()
    assert checker.sent >= 3 * DRAWN * 0.99  # Hypothesis may drop a handful of duplicate draws
    assert checker.statuses.get(500) is None


def test_no_lookup_answers_503_never_500(tmp_path):
    client = create_app({"INSTANCE": str(tmp_path), "TESTING": True}).test_client()
    checker = Checker(client, client.get("/search").get_data(as_text=True), allowed=(200, 400, 404, 503))
    for k, text in enumerate(CORPUS):
        _send_everywhere(checker, text, k)
    assert checker.statuses.get(503)
