"""Embeds keep their figures: /embed/map and its PNG against a re-ingest, on the real 2018 London files.

The read-only ``api_2018`` instance is copied (embedded leg: SQLite's backup
API; PostGIS leg: the same files loaded again into the copy's own schema) and
the copy refreshed: 2018-04 re-ingested from an edited copy of the police.uk file
(a third of its crimes dropped) and a new month 2018-06 added. An embed made
before the refresh must show the same figures and data-as-of after it, while
the live figures (the choropleth API) and an unpinned embed move on.
"""

import gzip
import html
import re
import shutil

import pytest

from crimemap.attribution import ATTRIBUTION
from crimemap.web import create_app
from tests.conftest import copy_leg_instance, settings_for

ROW = re.compile(r'<tr data-code="([^"]+)"><th scope="row">([^<]*)</th><td class="num count">([^<]*)</td>\s*'
                 r'<td class="num">[^<]*</td><td class="num rate">([^<]*)</td><td class="band">([^<]*)</td>')
AS_OF = re.compile(r'<span class="as-of">data as of ([0-9-]+)</span> \(data version <span class="version">(\d+)')
APRIL = "police_uk_api_street_crimes_london_2018-04_25boroughs.jsonl.gz"
MAY = "police_uk_api_street_crimes_london_2018-05_25boroughs.jsonl.gz"


def copy_instance(source, target):
    """A private copy of the real 2018 instance (``api_2018``) in the test leg's store, with its caches.

    One helper for both legs (tests/conftest.py ``copy_leg_instance``): the
    SQLite backup API, or on PostGIS a ``pg_dump`` of the folder's own schema
    into the copy's (seconds, where loading the files again took 5-8 s a copy).
    """
    return copy_leg_instance(source, target)


def client_for(instance):
    return create_app({"INSTANCE": str(instance), "TESTING": True}).test_client()


def figures_of(page):
    """The embed's figures table: code -> (name, count, rate, band)."""
    rows = {code: (html.unescape(name), count, rate, html.unescape(band))
            for code, name, count, rate, band in ROW.findall(page)}
    assert rows, "no figures table in the embed page"
    return rows


def as_of(page):
    found = AS_OF.search(page)
    assert found, "no data-as-of on the embed page"
    return found.groups()


def _edited_files(folder, tmp_path):
    """2018-04 with every third crime dropped, and 2018-05 relabelled as a new month 2018-06."""
    april = gzip.decompress((folder / APRIL).read_bytes()).decode("utf-8").splitlines(keepends=True)
    kept = [line for i, line in enumerate(april) if i % 3]
    edited = tmp_path / "2018-04-edited.jsonl.gz"
    edited.write_bytes(gzip.compress("".join(kept).encode("utf-8")))
    may = gzip.decompress((folder / MAY).read_bytes()).decode("utf-8")
    assert may.count('"month":"2018-05"') > 1000
    june = tmp_path / "2018-06-new.jsonl.gz"
    june.write_bytes(gzip.compress(may.replace('"month":"2018-05"', '"month":"2018-06"')
                                   .replace('"date":"2018-05"', '"date":"2018-06"').encode("utf-8")))
    return [edited, june], len(april) - len(kept)


def _reingest(instance, files):
    from crimemap.ingest import ingest_crimes
    from crimemap.store import open_store

    settings = settings_for(instance)
    return ingest_crimes(open_store(settings), files, settings=settings)


def _button(page):
    """The embed URL of a page's "Embed this map" button (its plain link)."""
    found = re.search(r'<input id="embed-url"[^>]*\bvalue="([^"]+)"', page)
    assert found, "no Embed this map button"
    return html.unescape(found.group(1))


@pytest.fixture(scope="module")
def refreshed(api_2018, tmp_path_factory):
    """Embeds made on a copy of the 2018 instance, then the copy refreshed: pages and figures before and after."""
    folder = api_2018.files[0].parent
    instance = copy_instance(api_2018.instance, tmp_path_factory.mktemp("embed-refresh") / "instance")
    client = client_for(instance)
    ward_page = client.get("/?level=ward&crime=burglary").get_data(as_text=True)
    area_page = client.get("/area/borough/E09000030").get_data(as_text=True)
    embeds = {"ward burglary": _button(ward_page), "Tower Hamlets": _button(area_page)}
    oembed = client.get("/oembed", query_string={"url": "http://localhost/?level=borough&crime=all-crime",
                                                 "format": "json"}).get_json()
    embeds["borough (oEmbed)"] = oembed["url"]
    plain = "/embed/map?level=borough&crime=all-crime&from=2018-03&to=2018-05"
    period = {"level": "borough", "crime": "all-crime", "from": "2018-03", "to": "2018-05", "geometry": "none"}
    before = {name: client.get(url).get_data(as_text=True) for name, url in embeds.items()}
    pngs = {name: client.get(url.replace("/embed/map?", "/embed/map.png?")).data for name, url in embeds.items()}
    live_before = client.get("/api/v1/choropleth", query_string=period).get_json()
    plain_before = client.get(plain).get_data(as_text=True)
    files, dropped = _edited_files(folder, tmp_path_factory.mktemp("embed-edits"))
    report = _reingest(instance, files)
    client = client_for(instance)  # a fresh app: nothing kept in memory from before
    return {
        "embeds": embeds, "before": before, "pngs": pngs, "dropped": dropped, "report": report,
        "after": {name: client.get(url).get_data(as_text=True) for name, url in embeds.items()},
        "pngs_after": {name: client.get(url.replace("/embed/map?", "/embed/map.png?")).data
                       for name, url in embeds.items()},
        "live_before": live_before, "live_after": client.get("/api/v1/choropleth", query_string=period).get_json(),
        "plain_before": plain_before, "plain_after": client.get(plain).get_data(as_text=True),
        "client": client, "instance": instance,
    }


def test_the_refresh_changed_the_live_figures(refreshed):
    # Otherwise the tests below could not fail.
    before = {f["id"]: f["properties"]["count"] for f in refreshed["live_before"]["features"]}
    after = {f["id"]: f["properties"]["count"] for f in refreshed["live_after"]["features"]}
    assert refreshed["dropped"] > 10_000
    assert sum(v or 0 for v in before.values()) - sum(v or 0 for v in after.values()) > 5_000
    assert refreshed["live_after"]["data_version"] != refreshed["live_before"]["data_version"]
    assert as_of(refreshed["plain_after"])[0] == "2018-06"


@pytest.mark.parametrize("name", ["ward burglary", "Tower Hamlets", "borough (oEmbed)"])
def test_an_embed_shows_the_same_figures_and_data_as_of_after_a_refresh(refreshed, name):
    before, after = refreshed["before"][name], refreshed["after"][name]
    assert "version=" in refreshed["embeds"][name]
    assert figures_of(after) == figures_of(before)
    assert as_of(after) == as_of(before)
    assert as_of(after)[0] == "2018-05"  # the pinned release's, not the refreshed 2018-06
    assert refreshed["pngs_after"][name] == refreshed["pngs"][name]


def test_a_pinned_embed_agrees_with_the_live_figures_of_its_time(refreshed):
    page = refreshed["before"]["borough (oEmbed)"]
    live = {f["id"]: f["properties"] for f in refreshed["live_before"]["features"]}
    # The oEmbed of the London map pins its 12 months ending 2018-05, which hold the same three loaded months.
    for code, (_name, count, _rate, _band) in figures_of(page).items():
        expected = live[code]["count"]
        assert count == ("no data" if expected is None else f"{expected:,}")


def test_an_unpinned_embed_follows_the_data(refreshed):
    before, after = figures_of(refreshed["plain_before"]), figures_of(refreshed["plain_after"])
    live = {f["id"]: f["properties"]["count"] for f in refreshed["live_after"]["features"]}
    assert before != after
    assert {code: row[1] for code, row in after.items()} == \
        {code: ("no data" if n is None else f"{n:,}") for code, n in live.items()}


def test_an_embed_of_a_release_never_frozen_says_so(refreshed):
    client = refreshed["client"]
    url = refreshed["embeds"]["ward burglary"].replace("crime=burglary", "crime=robbery")
    response = client.get(url)
    assert response.status_code == 410
    text = response.get_data(as_text=True)
    assert "This map cannot be shown" in text and "were not kept" in text
    assert not ROW.search(text)  # no figures at all, rather than other ones
    assert client.get(url.replace("/embed/map?", "/embed/map.png?")).status_code == 410


def test_a_damaged_snapshot_is_never_served_as_figures(refreshed):
    # Damaged in the refreshed instance itself (no copy: on PostGIS a copy would need the refresh again),
    # served by a fresh app, and put back afterwards for any later test.
    paths = sorted((refreshed["instance"] / "embeds").glob("v*/borough-*.json.gz"))
    assert paths
    kept = {path: path.read_bytes() for path in paths}
    try:
        for path in paths:
            path.write_bytes(b"not gzip")
        response = client_for(refreshed["instance"]).get(refreshed["embeds"]["borough (oEmbed)"])
    finally:
        for path, data in kept.items():
            path.write_bytes(data)
    assert response.status_code == 410


def test_the_embed_page_has_map_legend_title_period_as_of_attribution_and_a_link_back(api_2018, tmp_path):
    client = client_for(copy_instance(api_2018.instance, tmp_path / "instance"))
    response = client.get("/embed/map?level=ward&code=E05000138&crime=burglary&from=2018-03&to=2018-05")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<header class="site-header">' not in page and 'role="search"' not in page  # no site chrome
    assert '<div class="map-box"' in page and "L.map(" in page
    assert re.findall(r'<script src="([^"]+)"', page) == ["/static/vendor/leaflet/leaflet.js"]  # local assets only
    for label in ("Much lower", "Lower", "Around average", "Higher", "Much higher", "No data"):
        assert f"</span>{label}</li>" in page
    assert "<h1>Burglary by ward in London: Holborn and Covent Garden</h1>" in page
    assert "2018-03 to 2018-05" in page
    assert as_of(page)[0] == "2018-05"
    for line in ATTRIBUTION:
        assert html.escape(line, quote=False) in page
    assert 'href="http://localhost/area/ward/E05000138"' in page
    assert '<base target="_blank">' in page  # links open outside the host page's frame
    assert "E05000138" in figures_of(page)


@pytest.mark.parametrize("query, status", [
    ("level=county", 400), ("crime=no%20such", 400), ("crime=not-a-crime-type", 400), ("from=2018-13", 400),
    ("from=2018-05&to=2018-03", 400), ("version=abc", 400), ("version=-1", 400), ("code=%3Cscript%3E", 400),
    ("code=E09999999", 404), ("version=99999", 404), ("version=1", 410), ("from=2000-01&to=2018-05", 400),
])
def test_bad_embed_parameters_are_clear_4xx_pages(api_2018, tmp_path, query, status):
    client = client_for(copy_instance(api_2018.instance, tmp_path / "instance"))
    for path in ("/embed/map", "/embed/map.png"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == status, (path, query, response.get_data(as_text=True)[:300])
        assert "This map cannot be shown" in response.get_data(as_text=True)
        assert "Traceback" not in response.get_data(as_text=True)


def test_past_the_cap_an_embed_is_served_but_says_it_is_not_kept(api_2018, tmp_path):
    instance = copy_instance(api_2018.instance, tmp_path / "instance")
    client = create_app({"INSTANCE": str(instance), "TESTING": True, "EMBED_SNAPSHOTS_MAX": 1}).test_client()
    first = client.get("/embed/map?level=borough&crime=burglary&from=2018-03&to=2018-05")
    second = client.get("/embed/map?level=borough&crime=robbery&from=2018-03&to=2018-05")
    assert first.status_code == second.status_code == 200
    assert "not kept on the server" not in first.get_data(as_text=True)
    assert "not kept on the server" in second.get_data(as_text=True)
    assert second.headers["Cache-Control"] == "public, max-age=300"
    assert len(list((instance / "embeds").glob("v*/*.json.gz"))) == 1
    assert figures_of(second.get_data(as_text=True))  # still the figures, just not frozen


def test_a_write_that_fails_halfway_leaves_no_snapshot_and_says_so(api_2018, tmp_path, monkeypatch):
    instance = copy_instance(api_2018.instance, tmp_path / "instance")
    # No web geometry cache yet either (as after a fresh load): its write fails too, and must not be a 500.
    shutil.rmtree(instance / "cache", ignore_errors=True)
    client = client_for(instance)

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("crimemap.embeds.os.replace", fail)
    response = client.get("/embed/map?level=borough&crime=drugs&from=2018-03&to=2018-05")
    assert response.status_code == 200
    assert "not kept on the server" in response.get_data(as_text=True)
    assert not list((instance / "embeds").rglob("*.json.gz")) and not list((instance / "embeds").rglob("*.tmp"))
    monkeypatch.undo()
    again = client.get("/embed/map?level=borough&crime=drugs&from=2018-03&to=2018-05")
    assert "not kept on the server" not in again.get_data(as_text=True)
    assert len(list((instance / "embeds").glob("v*/*.json.gz"))) == 1
    assert figures_of(again.get_data(as_text=True)) == figures_of(response.get_data(as_text=True))
