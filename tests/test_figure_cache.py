"""The server-side answer cache (crimemap/web/figure_cache.py, docs/caching.md).

A cached answer must carry the same figures as one computed with the cache
off; a load (new data version) must never serve an old answer; concurrent
first requests must not corrupt it; a broken cache folder must degrade to
computing, never a 500.
"""

import json
import re
import threading

import pytest

URLS = ["/api/v1/choropleth?level=ward", "/api/v1/choropleth?level=borough&crime=burglary&geometry=none",
        "/api/v1/areas/borough/E09000030", "/api/crimes-street/all-crime?lat=51.5074&lng=-0.1278"]
PAGES = ["/?level=ward", "/?level=borough", "/area/borough/E09000030", "/embed/map?level=borough"]


def _app(instance, **config):
    from crimemap.web import create_app

    return create_app({"INSTANCE": str(instance), "TESTING": True, "POLICEUK_RATE_LIMIT": "", **config})


def _nonce(response):
    return re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)


def _page_text(response):
    """A page without what differs between any two renderings: the nonce and folium's random element ids."""
    text = response.get_data(as_text=True).replace(_nonce(response), "NONCE")
    return re.sub(r"[0-9a-f]{32}", "ID", text)


@pytest.fixture(scope="module")
def real(api_2018, tmp_path_factory):
    """The real 2018 instance served with the cache (in a private folder) and without it."""
    folder = tmp_path_factory.mktemp("answers")
    return {"on": _app(api_2018.instance, FIGURE_CACHE_DIR=str(folder)).test_client(),
            "off": _app(api_2018.instance, FIGURE_CACHE_MAX_ENTRIES=0).test_client(), "folder": folder}


@pytest.mark.parametrize("url", URLS)
def test_a_cached_api_answer_is_byte_identical_to_a_computed_one(real, url):
    computed = real["off"].get(url)
    first, hit = real["on"].get(url), real["on"].get(url)
    assert computed.status_code == first.status_code == hit.status_code == 200
    assert "X-Answer-Cache" not in computed.headers
    assert hit.headers["X-Answer-Cache"] == "hit"
    assert hit.data == first.data == computed.data
    assert hit.headers["Content-Type"] == computed.headers["Content-Type"]
    # (The ETag differs only because the two apps' settings differ: the cache settings are in its fingerprint.)
    assert hit.headers["ETag"] == first.headers["ETag"] and hit.headers["Cache-Control"].startswith("public")
    assert hit.headers["X-Data-Version"] == computed.headers["X-Data-Version"]
    assert json.loads(hit.data)  # a whole document, not a fragment


@pytest.mark.parametrize("url", PAGES)
def test_a_cached_page_has_the_same_figures_and_its_own_nonce(real, url):
    computed = real["off"].get(url)
    real["on"].get(url)
    one, two = real["on"].get(url), real["on"].get(url)
    assert one.headers["X-Answer-Cache"] == two.headers["X-Answer-Cache"] == "hit"
    assert _page_text(one) == _page_text(computed)
    # Every response gets a fresh nonce, and its inline scripts carry that one.
    assert _nonce(one) != _nonce(two)
    for response in (one, two):
        scripts = re.findall(r'<script nonce="([^"]+)"', response.get_data(as_text=True))
        assert scripts and set(scripts) == {_nonce(response)}
    assert one.headers["X-Data-Version"] == computed.headers["X-Data-Version"]


def test_errors_are_not_cached(real):
    for _ in range(2):
        response = real["on"].get("/api/v1/areas/ward/NOPE")
        assert response.status_code == 404 and response.headers.get("X-Answer-Cache") is None


@pytest.fixture
def loaded(runner, fixtures, tmp_path):
    assert runner("boundaries", "load", "ward", fixtures / "boundaries" / "wgs84_wards_2018.geojson").exit_code == 0
    assert runner("crimes", "ingest", fixtures / "crimes" / "api.jsonl").exit_code == 0
    return runner


def _figures(response):
    return sorted(crime["id"] for crime in response.get_json())


def test_a_new_data_version_is_never_served_an_old_answer(loaded, fixtures):
    url = "/api/crimes-street/all-crime?lat=51.515&lng=-0.091&date=2018-03"
    client = _app(loaded.instance).test_client()
    before = client.get(url)
    assert client.get(url).headers["X-Answer-Cache"] == "hit"
    folder = loaded.instance / "cache" / "answers"
    # Answers are the files over 100 bytes (cachelib's entry count and the version marker are a few bytes).
    old_answers = {p.name for p in folder.iterdir() if p.stat().st_size > 100}
    assert len(old_answers) == 1
    assert loaded("crimes", "ingest", fixtures / "crimes" / "api_two_arrays.json").exit_code == 0
    after = client.get(url)
    assert after.headers["X-Answer-Cache"] == "miss"
    assert int(after.headers["X-Data-Version"]) == int(before.headers["X-Data-Version"]) + 1
    computed = _app(loaded.instance, FIGURE_CACHE_MAX_ENTRIES=0).test_client().get(url)
    assert after.data == computed.data
    # The load replaced 2018-03 with the file's crimes (all at this point), and they show, not the old ones.
    text = (fixtures / "crimes" / "api_two_arrays.json").read_text(encoding="utf-8")
    loaded_ids = sorted(int(i) for i in re.findall(r'"persistent_id":"p\d+","id":(\d+)', text))
    assert _figures(after) == loaded_ids != _figures(before)
    # The old version's answer is gone; the new one is kept.
    new_answers = {p.name for p in folder.iterdir() if p.stat().st_size > 100}
    assert len(new_answers) == 1 and not new_answers & old_answers
    assert client.get(url).data == computed.data


def test_concurrent_first_requests_from_two_workers_agree(loaded):
    url = "/api/v1/choropleth?level=ward"
    expected = _app(loaded.instance, FIGURE_CACHE_MAX_ENTRIES=0).test_client().get(url).data
    workers = [_app(loaded.instance), _app(loaded.instance)]  # two processes' apps on one folder
    results, errors = [], []

    def ask(app):
        try:
            for _ in range(3):
                results.append(app.test_client().get(url))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(workers[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 24 and all(r.status_code == 200 and r.data == expected for r in results)
    assert workers[0].test_client().get(url).headers["X-Answer-Cache"] == "hit"


def test_a_folder_that_cannot_be_used_turns_the_cache_off(loaded, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    url = "/api/v1/choropleth?level=ward"
    expected = _app(loaded.instance, FIGURE_CACHE_MAX_ENTRIES=0).test_client().get(url).data
    client = _app(loaded.instance, FIGURE_CACHE_DIR=str(blocker / "cache")).test_client()
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200 and response.data == expected
        assert "X-Answer-Cache" not in response.headers


def test_corrupt_entries_and_failing_writes_are_computed(loaded, monkeypatch):
    from cachelib import FileSystemCache

    url = "/?level=ward"
    client = _app(loaded.instance).test_client()
    assert client.get(url).status_code == 200
    for path in (loaded.instance / "cache" / "answers").iterdir():
        if path.is_file():
            path.write_bytes(b"\x00garbage")
    response = client.get(url)
    assert response.status_code == 200 and "leaflet" in response.get_data(as_text=True).lower()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemCache, "set", broken)
    monkeypatch.setattr(FileSystemCache, "get", broken)
    fresh = _app(loaded.instance).test_client()
    for check in ("/api/v1/choropleth?level=ward&geometry=none", url):
        answer = fresh.get(check)
        assert answer.status_code == 200
