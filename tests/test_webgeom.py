"""Web geometry: coverage simplification keeps neighbours sharing edges, and the cache."""

import geopandas as gpd
import numpy as np
import pytest
import shapely

from crimemap import webgeom
from crimemap.crs import to_bng

WARDS_2018 = "boundaries/London-wards-2018/London_Ward.shp"


@pytest.fixture
def wards(need_shared):
    frame = gpd.read_file(need_shared(WARDS_2018))
    return frame.rename(columns={"GSS_CODE": "code"})[["code", "geometry"]]


@pytest.fixture(autouse=True)
def _fresh_memory():
    webgeom.clear_memory()
    yield
    webgeom.clear_memory()


def _layer(loaded_at="2026-01-01T00:00:00Z", ident=7):
    return {"id": ident, "level": "ward", "vintage": "2018", "loaded_at": loaded_at}


def test_coverage_simplify_opens_no_gaps_between_wards(wards):
    original = wards.geometry.to_numpy()
    assert shapely.coverage_is_valid(original)  # the input tiles London
    simple = webgeom.simplify_coverage(original, 20.0)
    assert shapely.coverage_is_valid(simple)  # no overlaps, no edges that no longer match
    assert shapely.get_num_coordinates(simple).sum() < 0.4 * shapely.get_num_coordinates(original).sum()
    # No gaps: the union's area equals the sum of the areas, and matches the original within 0.5%.
    union = shapely.union_all(simple)
    assert union.area == pytest.approx(shapely.area(simple).sum(), rel=1e-6)
    assert shapely.area(simple).sum() == pytest.approx(shapely.area(original).sum(), rel=0.005)
    assert shapely.get_num_interior_rings(union) <= shapely.get_num_interior_rings(shapely.union_all(original))


def test_independent_simplification_would_open_gaps(wards):
    # The reason for coverage_simplify: simplifying each ward alone breaks shared edges.
    alone = shapely.simplify(wards.geometry.to_numpy(), 20.0, preserve_topology=True)
    assert not shapely.coverage_is_valid(alone)


def test_web_geometry_is_lonlat_5_decimals_and_still_a_coverage(wards):
    web = webgeom.build_web_geometry(wards, 20.0)
    assert web.crs.to_epsg() == 4326
    assert list(web.index) == list(wards["code"])
    coords = shapely.get_coordinates(web.to_numpy())
    assert np.allclose(coords, np.round(coords, 5), atol=1e-9, rtol=0)
    assert -0.6 < coords[:, 0].min() and coords[:, 0].max() < 0.4
    assert shapely.is_valid(web.to_numpy()).all()
    assert shapely.coverage_is_valid(web.to_numpy())  # rounding moved shared vertices together
    # Back in metres, the areas still match the loaded wards.
    back = to_bng(web)
    assert back.area.sum() == pytest.approx(wards.area.sum(), rel=0.005)
    for code in wards["code"].iloc[::50]:
        original = wards.geometry[wards["code"] == code].iloc[0]
        assert back[code].area == pytest.approx(original.area, rel=0.02, abs=2000)


def test_zero_tolerance_keeps_every_vertex(wards):
    some = wards.iloc[:20]
    assert webgeom.simplify_coverage(some.geometry.to_numpy(), 0).tolist() == some.geometry.tolist()


def test_cache_is_reused_in_process_and_on_disk(wards, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = webgeom.web_geometry(wards, _layer(), 20.0, cache)
    files = list(cache.glob("webgeom-*.json"))
    assert len(files) == 1
    calls = []
    real = webgeom.build_web_geometry
    monkeypatch.setattr(webgeom, "build_web_geometry", lambda *a: calls.append(a) or real(*a))
    assert webgeom.web_geometry(wards, _layer(), 20.0, cache) is first  # from memory
    webgeom.clear_memory()  # a new process: from disk
    again = webgeom.web_geometry(wards, _layer(), 20.0, cache)
    assert calls == []
    assert list(again.index) == list(first.index)
    assert all(a.equals_exact(b, 0) for a, b in zip(again, first))
    # Another tolerance is another entry.
    webgeom.web_geometry(wards.iloc[:30], _layer(), 50.0, cache)
    assert len(calls) == 1
    assert len(list(cache.glob("webgeom-*.json"))) == 2


def test_reloading_the_layer_invalidates_the_cache(wards, tmp_path):
    cache = tmp_path / "cache"
    some = wards.iloc[:40]
    before = webgeom.web_geometry(some, _layer("2026-01-01T00:00:00Z"), 20.0, cache)
    # The same layer loaded again, with other polygons: shifted 1 km east.
    moved = some.set_geometry(some.translate(1000, 0))
    after = webgeom.web_geometry(moved, _layer("2026-02-01T00:00:00Z"), 20.0, cache)
    assert after.total_bounds[0] > before.total_bounds[0] + 0.01
    names = [p.name for p in cache.glob("webgeom-*.json")]
    assert len(names) == 1  # the old version's file is gone
    webgeom.clear_memory()
    assert webgeom.web_geometry(moved, _layer("2026-02-01T00:00:00Z"), 20.0, cache).equals(after)


def test_damaged_cache_file_is_rebuilt(wards, tmp_path):
    cache = tmp_path / "cache"
    some = wards.iloc[:10]
    built = webgeom.web_geometry(some, _layer(), 20.0, cache)
    (path,) = cache.glob("webgeom-*.json")
    path.write_text('{"codes": ["x"], "wkb": ["zz')
    webgeom.clear_memory()
    assert webgeom.web_geometry(some, _layer(), 20.0, cache).equals(built)
    assert not list(cache.glob("*.tmp"))


@pytest.fixture(scope="module")
def demo_instance(tmp_path_factory):
    from crimemap import demo

    folder = tmp_path_factory.mktemp("webgeom") / "demo"
    demo.build_demo_instance(folder, end_month="2024-06")
    return folder


def _coverage(features):
    return np.array([shapely.geometry.shape(f["geometry"]) for f in features], dtype=object)


def test_choropleth_api_serves_the_cached_coverage_and_full_on_request(demo_instance):
    from crimemap.web import create_app

    client = create_app({"INSTANCE": str(demo_instance), "TESTING": True, "WEB_SIMPLIFY_M": 20.0}).test_client()
    web = client.get("/api/v1/choropleth?level=ward").get_json()["features"]
    full = client.get("/api/v1/choropleth?level=ward&geometry=full").get_json()["features"]
    assert [f["id"] for f in web] == [f["id"] for f in full]
    assert [f["properties"] for f in web] == [f["properties"] for f in full]
    simple, whole = _coverage(web), _coverage(full)
    assert shapely.get_num_coordinates(simple).sum() < shapely.get_num_coordinates(whole).sum()
    # The demo city's invented wards do not tile exactly (the 2018 wards above do), so compare areas.
    assert shapely.area(simple).sum() == pytest.approx(shapely.area(whole).sum(), rel=0.005)
    assert list((demo_instance / "cache").glob("webgeom-*-20m.json"))


def test_london_map_draws_the_simplified_layer(demo_instance):
    from crimemap.web import create_app

    pages = []
    for tolerance in (0.0, 200.0):
        client = create_app({"INSTANCE": str(demo_instance), "TESTING": True,
                             "WEB_SIMPLIFY_M": tolerance}).test_client()
        response = client.get("/?level=ward")
        assert response.status_code == 200
        pages.append(len(response.data))
    assert pages[1] < pages[0]
    assert list((demo_instance / "cache").glob("webgeom-*-200m.json"))
