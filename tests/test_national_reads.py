"""The per-process figures cache (crimemap/figures/layer_cache.py) and compressed answer-cache entries.

The area API, the choropleth and the tiles share one computation of a
layer's figures per data version and query. A cached answer must be
byte-identical to one computed from scratch; a load must never leave an old
answer behind; threads asking at once compute once; the caches stay bounded.
The answer cache keeps large bodies compressed, so a national ward GeoJSON
fits under FIGURE_CACHE_ENTRY_MAX_BYTES; a hit is byte-identical to a miss.

The instance: the real 2018 wards and the City of London Police street CSVs
(2023-05 and 2023-06, then 2023-07 loaded by a test). The independent check
of counts is a plain SQL sum over ``point_counts``.
"""

import threading

import pytest

from crimemap.figures import layer_cache
from crimemap.store import open_store
from tests.conftest import _need_shared, settings_for

WARDS = "boundaries/London-wards-2018/London_Ward.shp"
CITY = "crime/police_uk/city-of-london/2023-{}-city-of-london-street.csv"
MONTHS = ("05", "06")
AREA = "/api/v1/areas/ward/{}"


def _app(instance, **config):
    from crimemap.web import create_app

    return create_app({"INSTANCE": str(instance), "TESTING": True, "POLICEUK_RATE_LIMIT": "", **config})


@pytest.fixture
def loaded(instance):
    from crimemap.ingest import ingest_crimes, load_boundaries

    settings = settings_for(instance)
    store = open_store(settings)
    load_boundaries(store, _need_shared(WARDS), "ward", settings=settings)
    ingest_crimes(store, [_need_shared(CITY.format(m)) for m in MONTHS], settings=settings)
    layer_cache.clear()
    yield {"instance": instance, "settings": settings, "store": store}
    layer_cache.clear()


def _city_wards(store, n=3):
    """Wards of the City (they hold the crimes), busiest first."""
    rows = store.query("SELECT code, SUM(n) FROM point_counts GROUP BY code ORDER BY SUM(n) DESC, code")
    return [code for code, _ in rows[:n]]


def _sql_count(store, code, months):
    marks = ",".join("?" * len(months))
    rows = store.query(f"SELECT COALESCE(SUM(n), 0) FROM point_counts WHERE code = ? AND month IN ({marks})",
                       [code, *months])
    return int(rows[0][0])


def _computed(client, url):
    """The answer with every per-process figure forgotten first: what a fresh worker answers."""
    layer_cache.clear()
    response = client.get(url)
    assert response.status_code == 200, response.data[:300]
    return response.data


def test_a_hit_answers_byte_for_byte_what_a_miss_does(loaded):
    client = _app(loaded["instance"], FIGURE_CACHE_MAX_ENTRIES=0).test_client()
    urls = [AREA.format(code) for code in _city_wards(loaded["store"])] + [
        "/api/v1/choropleth?level=ward", "/api/v1/choropleth?level=ward&crime=burglary&geometry=none",
        AREA.format(_city_wards(loaded["store"])[0]) + "?format=csv&table=neighbours"]
    computed = {url: _computed(client, url) for url in urls}
    layer_cache.clear()
    for url in urls:  # first of each: some miss, later ones reuse the layer's figures
        assert client.get(url).data == computed[url], url
    before = layer_cache.stats()
    for url in urls:
        assert client.get(url).data == computed[url], url
    after = layer_cache.stats()
    assert after["hits"] >= before["hits"] + len(urls) and after["misses"] == before["misses"]


def test_areas_reuse_one_computation_of_the_layer(loaded):
    client = _app(loaded["instance"], FIGURE_CACHE_MAX_ENTRIES=0).test_client()
    codes = _city_wards(loaded["store"], 3)
    for code in codes:
        assert client.get(AREA.format(code)).status_code == 200
    # One computation of the ward layer's figures served all three areas.
    assert layer_cache.stats()["misses"] == 1 and layer_cache.stats()["hits"] == 2


def test_a_load_is_seen_by_the_next_request(loaded):
    from crimemap.ingest import ingest_crimes

    store, client = loaded["store"], _app(loaded["instance"], FIGURE_CACHE_MAX_ENTRIES=0).test_client()
    code = _city_wards(store)[0]
    old = client.get(AREA.format(code)).get_json()
    assert old["count"] == _sql_count(store, code, ["2023-05", "2023-06"]) > 0
    ingest_crimes(store, [_need_shared(CITY.format("07"))], settings=loaded["settings"])
    new_response = client.get(AREA.format(code))
    new = new_response.get_json()
    assert new["data_version"] != old["data_version"] == str(int(new["data_version"]) - 1)
    assert new["period"]["to"] == "2023-07"
    assert new["count"] == _sql_count(store, code, ["2023-05", "2023-06", "2023-07"]) > old["count"]
    assert new_response.data == _computed(client, AREA.format(code))
    # Nothing of the old version is left in the process.
    assert all(key[0][3] == new["data_version"] for key in list(layer_cache._FIGURES) + list(layer_cache._READS))


def test_threads_asking_at_once_compute_once_and_agree(loaded):
    client_app = _app(loaded["instance"], FIGURE_CACHE_MAX_ENTRIES=0)
    url = AREA.format(_city_wards(loaded["store"])[0])
    expected = _computed(client_app.test_client(), url)
    layer_cache.clear()
    start, bodies = threading.Barrier(4), []

    def ask():
        client = client_app.test_client()
        start.wait()
        bodies.append(client.get(url).data)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert bodies == [expected] * 4
    assert layer_cache.stats()["misses"] == 1


def test_the_caches_stay_bounded_and_hand_out_copies(loaded, monkeypatch):
    from crimemap import figures as fig

    monkeypatch.setattr(layer_cache, "FIGURES_MAX", 2)
    monkeypatch.setattr(layer_cache, "READS_MAX", 2)
    store = loaded["store"]
    crimes = ["all-crime", "burglary", "robbery", "shoplifting"]
    for crime in crimes:
        fig.area_figures(store, "ward", ["2023-05", "2023-06"], crime, with_geometry=False)
        fig.area_figures(store, "ward", ["2023-06"], crime, with_geometry=False)
    assert layer_cache.stats()["figures"] <= 2 and layer_cache.stats()["reads"] <= 2
    one = fig.area_figures(store, "ward", ["2023-06"], "shoplifting", with_geometry=False)
    one.loc[:, "count"] = -1
    one.attrs["london"]["count"] = -1
    two = fig.area_figures(store, "ward", ["2023-06"], "shoplifting", with_geometry=False)
    assert layer_cache.stats()["hits"] >= 1
    assert -1 not in set(two["count"].dropna()) and two.attrs["london"]["count"] != -1


def test_large_answers_are_kept_compressed_and_served_identically(loaded, tmp_path):
    url = "/api/v1/choropleth?level=ward"
    raw = _computed(_app(loaded["instance"], FIGURE_CACHE_MAX_ENTRIES=0).test_client(), url)
    from crimemap.web.figure_cache import COMPRESS_OVER

    assert len(raw) > COMPRESS_OVER
    # A limit under the raw size but over the compressed one: kept, and a hit is the same bytes.
    client = _app(loaded["instance"], FIGURE_CACHE_DIR=str(tmp_path / "a"),
                  FIGURE_CACHE_ENTRY_MAX_BYTES=len(raw) - 1).test_client()
    first, hit = client.get(url), client.get(url)
    assert first.headers["X-Answer-Cache"] == "miss" and hit.headers["X-Answer-Cache"] == "hit"
    assert hit.data == first.data == raw
    # A limit under the compressed size: never kept.
    client = _app(loaded["instance"], FIGURE_CACHE_DIR=str(tmp_path / "b"),
                  FIGURE_CACHE_ENTRY_MAX_BYTES=1000).test_client()
    assert [client.get(url).headers["X-Answer-Cache"] for _ in range(2)] == ["miss", "miss"]


def test_reads_are_dropped_past_their_row_budget(loaded, monkeypatch):
    from crimemap import figures as fig

    store = loaded["store"]
    rows = store.query("SELECT COUNT(*) FROM point_counts WHERE month = '2023-06'")[0][0]
    monkeypatch.setattr(layer_cache, "READS_MAX_ROWS", rows)  # room for one month's read, not two
    fig.area_figures(store, "ward", ["2023-06"], with_geometry=False)
    assert layer_cache.stats()["reads"] == 1
    fig.area_figures(store, "ward", ["2023-05", "2023-06"], with_geometry=False)
    assert layer_cache.stats()["reads"] == 1  # the newest read stays even over the budget
    assert [len(c.rows) for c in layer_cache._READS.values()] == [
        store.query("SELECT COUNT(*) FROM point_counts")[0][0]]
