"""oEmbed (https://oembed.com, version 1.0) and the framing headers, on a copy of the real 2018 instance.

The response is checked against the spec's rules written out here (required
fields of every response and of type ``rich``, types, the thumbnail trio,
``maxwidth``/``maxheight``), and its ``html`` against the iframe snippet the
page's "Embed this map" button gives.
"""

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from crimemap.web import create_app
from crimemap.web.headers import frame_ancestors
from tests.test_embed import copy_instance

DISCOVERY = re.compile(r'<link rel="alternate" type="application/json\+oembed" href="([^"]+)"')
SNIPPET = re.compile(r'<textarea id="embed-snippet"[^>]*>([^<]*)</textarea>')


@pytest.fixture(scope="module")
def instance(api_2018, tmp_path_factory):
    return copy_instance(api_2018.instance, tmp_path_factory.mktemp("oembed") / "instance")


@pytest.fixture(scope="module")
def client(instance):
    return create_app({"INSTANCE": str(instance), "TESTING": True}).test_client()


def check_oembed(body, maxwidth=None, maxheight=None):
    """The oEmbed 1.0 spec's rules for a response (sections 2.3.4 and 2.3.4.4), written out independently."""
    assert body["version"] == "1.0"
    assert body["type"] in ("photo", "video", "link", "rich")
    for name in ("title", "author_name", "author_url", "provider_name", "provider_url"):
        assert isinstance(body.get(name, ""), str)
    if "cache_age" in body:
        assert isinstance(body["cache_age"], int) and body["cache_age"] >= 0
    thumbnail = [name in body for name in ("thumbnail_url", "thumbnail_width", "thumbnail_height")]
    assert all(thumbnail) or not any(thumbnail)  # all three or none
    if all(thumbnail):
        assert isinstance(body["thumbnail_width"], int) and isinstance(body["thumbnail_height"], int)
        assert maxwidth is None or body["thumbnail_width"] <= maxwidth
        assert maxheight is None or body["thumbnail_height"] <= maxheight
    if body["type"] == "rich":
        assert isinstance(body["html"], str) and body["html"]
        assert isinstance(body["width"], int) and isinstance(body["height"], int)
        assert body["width"] > 0 and body["height"] > 0
        assert maxwidth is None or body["width"] <= maxwidth
        assert maxheight is None or body["height"] <= maxheight


def _get(client, url, **params):
    return client.get("/oembed", query_string={"url": url, "format": "json", **params})


@pytest.mark.parametrize("page", ["/", "/?level=ward&crime=burglary", "/area/borough/E09000030",
                                  "/area/ward/E05000138"])
def test_oembed_html_is_the_buttons_iframe_snippet(client, page):
    text = client.get(page).get_data(as_text=True)
    snippet = html.unescape(SNIPPET.search(text).group(1))
    href = html.unescape(DISCOVERY.search(text).group(1))
    assert urlsplit(href).path == "/oembed"
    assert parse_qs(urlsplit(href).query) == {"url": [f"http://localhost{page}"], "format": ["json"]}
    response = client.get(href)  # follow the discovery link as a consumer does
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    check_oembed(body)
    assert body["type"] == "rich"
    assert body["html"] == snippet
    assert (body["width"], body["height"]) == (720, 600)
    assert f'width="{body["width"]}" height="{body["height"]}"' in body["html"]
    assert f'title="{html.escape(body["title"])}"' in body["html"]
    assert body["provider_name"] == "crimemap" and body["provider_url"] == "http://localhost/"
    src = html.unescape(re.search(r'<iframe src="([^"]+)"', body["html"]).group(1))
    assert src == body["url"] and "version=" in src
    embed = client.get(src)
    assert embed.status_code == 200 and "frame-ancestors *" == frame_policy(embed.headers)


def test_oembed_of_an_embed_url_keeps_its_pinned_version(client):
    first = _get(client, "http://localhost/area/ward/E05000138").get_json()
    again = _get(client, first["url"]).get_json()
    check_oembed(again)
    assert again["html"] == first["html"] and again["data_version"] == first["data_version"]


@pytest.mark.parametrize("maxwidth, maxheight", [(400, 300), (1000, 250), (150, 2000), (1, 1)])
def test_maxwidth_and_maxheight_are_respected(client, maxwidth, maxheight):
    body = _get(client, "http://localhost/", maxwidth=maxwidth, maxheight=maxheight).get_json()
    check_oembed(body, maxwidth, maxheight)
    assert (body["width"], body["height"]) == (min(720, maxwidth), min(600, maxheight))


@pytest.mark.parametrize("url", ["http://example.org/", "https://evil.localhost/", "http://localhost/search?q=x",
                                 "http://localhost/api/v1/status", "ftp://localhost/", "not a url",
                                 "http://localhost/area/borough/E09999999"])
def test_urls_that_are_not_our_maps_are_404(client, url):
    response = _get(client, url)
    assert response.status_code == 404
    assert response.get_json()["status"] == 404 and response.get_json()["error"]


def test_xml_is_501_and_bad_parameters_are_400(client):
    response = client.get("/oembed", query_string={"url": "http://localhost/", "format": "xml"})
    assert response.status_code == 501 and response.get_json()["status"] == 501
    for params in ({"url": "http://localhost/", "format": "yaml"}, {"format": "json"}, {"url": ""},
                   {"url": "http://localhost/", "maxwidth": "wide"}, {"url": "http://localhost/", "maxheight": "0"},
                   {"url": "http://localhost/", "maxwidth": "-5"}, {"url": "http://localhost/?level=county"},
                   {"url": "http://localhost/" + "x" * 5000}):
        response = client.get("/oembed", query_string=params)
        assert response.status_code == 400, params
        assert response.get_json()["status"] == 400 and response.get_json()["error"]


def test_only_embeddable_pages_carry_the_discovery_link(client):
    assert DISCOVERY.search(client.get("/embed/map?level=borough").get_data(as_text=True))
    assert not DISCOVERY.search(client.get("/search?q=nowhere").get_data(as_text=True))


# --- framing ----------------------------------------------------------------------------


def frame_policy(headers):
    """The one ``frame-ancestors`` directive of a response's CSP (the rest is docs/security.md's)."""
    found = [d.strip() for d in headers["Content-Security-Policy"].split(";")
             if d.strip().startswith("frame-ancestors")]
    assert len(found) == 1, headers["Content-Security-Policy"]
    return found[0]


@pytest.mark.parametrize("path, framable", [
    ("/", False), ("/area/borough/E09000030", False), ("/search?q=x", False), ("/api/v1/status", False),
    ("/oembed?url=http://localhost/&format=json", False), ("/no/such/page", False),
    ("/embed/map?level=borough", True), ("/embed/map.png?level=borough&width=300&height=300", True),
    ("/embed/map?level=county", True),  # an embed's error message shows inside the frame
])
def test_only_embeds_may_be_framed(client, path, framable):
    headers = client.get(path).headers
    if framable:
        assert frame_policy(headers) == "frame-ancestors *"
        assert "X-Frame-Options" not in headers
    else:
        assert frame_policy(headers) == "frame-ancestors 'none'"
        assert headers["X-Frame-Options"] == "DENY"


def test_frame_ancestors_come_from_the_setting(instance):
    origins = "https://news.example.org https://*.police.uk 'self'"
    client = create_app({"INSTANCE": str(instance), "EMBED_FRAME_ANCESTORS": origins}).test_client()
    assert frame_policy(client.get("/embed/map?level=borough").headers) == f"frame-ancestors {origins}"
    assert frame_policy(client.get("/").headers) == "frame-ancestors 'none'"


@pytest.mark.parametrize("value", ["", "https://a.example; script-src *", "'unsafe-inline'", "https://a.example,b"])
def test_a_bad_frame_ancestors_setting_stops_the_app_with_a_message(instance, value):
    with pytest.raises(ValueError, match="EMBED_FRAME_ANCESTORS"):
        create_app({"INSTANCE": str(instance), "EMBED_FRAME_ANCESTORS": value})


def test_frame_ancestors_accepts_lists_and_none():
    assert frame_ancestors(["https://a.example", "http://localhost:8080"]) == "https://a.example http://localhost:8080"
    assert frame_ancestors("'none'") == "'none'"
