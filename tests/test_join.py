"""Tests for crimemap.join: the point-in-polygon engine and its boundary rule.

Three kinds of checks:

* named edge cases on a hand-made layout (tests/data/join/),
* property-style comparisons with a brute-force ``shapely.covers`` loop that
  implements the rule directly, on random points and points snapped onto edges,
* the real police.uk API points against an independent ``geopandas.sjoin``
  on the real 2018 wards and the 2022 boroughs.
"""

import functools
import gzip
import json
import math

import geopandas
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from crimemap import join as join_module
from crimemap.crs import lonlat_to_bng
from crimemap.join import AreaIndex, JoinResult
from crimemap.join_boxes import BoxBins
from crimemap.join_cache import LocationCache

API_FILES = "crime/police_uk_api_partial"
WARDS_2018 = "boundaries/London-wards-2018/London_Ward.shp"
WARDS_2014 = "boundaries/London-wards-2014/London_Ward.shp"
BOROUGHS = "boundaries/london-2021-lad22-gen20.shp"

# Cell sizes for the hand-made layout (100 m squares whose corner sits on a
# multiple of 100 m): 1 m and 7 m cells are crossed by edges mid-cell, 50 m
# cells have edges lying exactly on cell sides, and a 1 km cell holds the
# whole layout in one mixed cell.
CELLS = [1.0, 7.0, 50.0, 1000.0]
# The same answers are required with the grid built at once ("always"), never
# built (every point tested against the polygons whose bounding box holds it)
# and built once the points joined without it would have paid for it ("auto").
CELL_GRID = [(cell, "always") for cell in CELLS] + [(50.0, "never"), (50.0, "auto")]


# --------------------------------------------------------------------- helpers


def load_layout(fixtures):
    frame = pd.read_csv(fixtures / "join" / "layout.csv", dtype=str)
    return shapely.from_wkt(frame["wkt"].to_numpy()), frame["code"].to_numpy()


def brute_force(geoms, codes, x, y):
    """The boundary rule written out: smallest code among polygons covering a point."""
    points = shapely.points(x, y)
    index = np.full(len(x), -1, dtype=np.int64)
    edge = np.zeros(len(x), dtype=bool)
    for i in sorted(range(len(geoms)), key=lambda i: codes[i]):
        # Only points in the polygon's bounding box can be covered by it.
        minx, miny, maxx, maxy = geoms[i].bounds
        near = np.flatnonzero((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy))
        covered = near[shapely.covers(geoms[i], points[near])]
        index[covered[index[covered] < 0]] = i
        edge[near[shapely.intersects(shapely.boundary(geoms[i]), points[near])]] = True
    return index, edge


def assert_same(result, expected_index, expected_edge, x, y):
    bad = np.flatnonzero((result.index != expected_index) | (result.on_edge != expected_edge))
    listed = [
        (float(x[i]), float(y[i]), int(result.index[i]), int(expected_index[i]),
         bool(result.on_edge[i]), bool(expected_edge[i]))
        for i in bad[:10]
    ]
    assert len(bad) == 0, f"{len(bad)} points differ (x, y, got, want, got edge, want edge): {listed}"


@functools.lru_cache(maxsize=None)
def api_lonlat(folder):
    """lon, lat of every crime in the three police.uk API files, file by file."""
    files = []
    for path in sorted(folder.glob("*.jsonl.gz")):
        lat, lon = [], []
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                location = json.loads(line)["location"]
                lat.append(location["latitude"])
                lon.append(location["longitude"])
        files.append((np.array(lon, dtype=float), np.array(lat, dtype=float)))
    return files


@functools.lru_cache(maxsize=None)
def api_points(folder):
    """x, y (EPSG:27700) of every crime in the three police.uk API files."""
    lon = np.concatenate([f[0] for f in api_lonlat(folder)])
    lat = np.concatenate([f[1] for f in api_lonlat(folder)])
    to_bng = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)
    x, y = to_bng.transform(lon, lat)
    return np.asarray(x), np.asarray(y)


def compare_with_sjoin(layer, code_column, x, y, grid="auto"):
    """Join with AreaIndex and with sjoin(predicate="within"); compare."""
    index = AreaIndex(layer.geometry.values, layer[code_column].to_numpy(), grid=grid)
    result = index.assign(x, y)
    points = geopandas.GeoDataFrame(geometry=geopandas.points_from_xy(x, y), crs=layer.crs)
    joined = geopandas.sjoin(points, layer[[code_column, "geometry"]], predicate="within", how="left")
    # "within" excludes boundaries, so a point matches at most one polygon of a
    # coverage; if polygons overlapped, the rule picks the smallest code.
    joined = joined.sort_values(code_column, na_position="last")
    first = joined[~joined.index.duplicated(keep="first")].sort_index()
    expected = first["index_right"].fillna(-1).astype(np.int64).to_numpy()

    off_edge = ~result.on_edge
    differ = np.flatnonzero(off_edge & (result.index != expected))
    assert len(differ) == 0, (
        f"{len(differ)} points off every edge differ from sjoin: "
        f"{[(x[i], y[i], result.index[i], expected[i]) for i in differ[:10]]}"
    )
    # The points on an edge, listed: each goes to the smallest code among the
    # polygons covering it, exactly as the brute-force rule says.
    on_edge = np.flatnonzero(result.on_edge)
    geoms = np.asarray(layer.geometry.values)
    codes = layer[code_column].to_numpy()
    want_index, want_edge = brute_force(geoms, codes, x[on_edge], y[on_edge])
    listed = list(zip(x[on_edge], y[on_edge], codes[result.index[on_edge]]))
    assert (want_edge).all(), listed
    assert (result.index[on_edge] == want_index).all(), listed
    return result, listed


# ---------------------------------------------------------- hand-made layout


@pytest.mark.parametrize(("cell_m", "grid"), CELL_GRID)
def test_named_edge_cases(fixtures, cell_m, grid):
    geoms, codes = load_layout(fixtures)
    cases = pd.read_csv(fixtures / "join" / "points.csv", dtype={"code": str})
    index = AreaIndex(geoms, codes, cell_m=cell_m, grid=grid)
    result = index.assign(cases["x"].to_numpy(float), cases["y"].to_numpy(float))
    got = [index.codes[i] if i >= 0 else None for i in result.index]
    want = [None if pd.isna(c) else c for c in cases["code"]]
    for name, g, w, edge, want_edge in zip(cases["name"], got, want, result.on_edge, cases["on_edge"]):
        assert (g, bool(edge)) == (w, bool(want_edge)), name


@pytest.mark.parametrize(("cell_m", "grid"), CELL_GRID)
def test_named_edge_cases_agree_with_brute_force(fixtures, cell_m, grid):
    # The expectations in points.csv were written by hand; this checks that
    # the hand-written file and the brute-force rule say the same thing.
    geoms, codes = load_layout(fixtures)
    cases = pd.read_csv(fixtures / "join" / "points.csv")
    x, y = cases["x"].to_numpy(float), cases["y"].to_numpy(float)
    result = AreaIndex(geoms, codes, cell_m=cell_m, grid=grid).assign(x, y)
    assert_same(result, *brute_force(geoms, codes, x, y), x, y)


def test_result_types_and_empty_input(fixtures):
    index = AreaIndex(*load_layout(fixtures))
    for method in (index.assign, index.assign_unique):
        result = method(np.array([], dtype=float), np.array([], dtype=float))
        assert isinstance(result, JoinResult)
        assert result.index.dtype == np.int32 and result.index.shape == (0,)
        assert result.on_edge.dtype == np.bool_ and result.on_edge.shape == (0,)
    result = index.assign([530050.0], [180050.0])
    assert result.index.dtype == np.int32 and result.on_edge.dtype == np.bool_
    assert index.codes.tolist() == ["W03", "W01", "W00", "W05", "W04", "W06", "W08", "W07"]


def test_shared_edge_tie_ignores_layer_order(fixtures):
    # Reversing the layer must not change which code wins a shared edge.
    geoms, codes = load_layout(fixtures)
    forward = AreaIndex(geoms, codes)
    backward = AreaIndex(geoms[::-1], codes[::-1])
    x, y = np.array([530100.0, 530100.0, 530450.0]), np.array([180050.0, 180100.0, 180050.0])
    a, b = forward.assign(x, y), backward.assign(x, y)
    assert forward.codes[a.index].tolist() == backward.codes[b.index].tolist() == ["W01", "W00", "W07"]


# --------------------------------------------------------- property-style


def edge_points(geoms, rng, n):
    """Points exactly on the layout's edges and vertices (all representable)."""
    coords = shapely.get_coordinates(shapely.boundary(geoms))
    vertices = coords[rng.integers(0, len(coords), n // 2)]
    # Axis-parallel edges of the layout lie on multiples of 25 m; a point on
    # one with any float along it is exactly on the edge.
    along = rng.uniform(530000, 530500, n - n // 2)
    lines = rng.choice(np.arange(530000, 530501, 25.0), n - n // 2) - 530000 + 180000
    on_lines = np.column_stack([along, lines])
    return np.concatenate([vertices, on_lines])


@pytest.mark.parametrize(("cell_m", "grid"), [(3.0, "always"), (12.5, "always"), (50.0, "always"), (50.0, "never")])
def test_random_points_match_brute_force(fixtures, cell_m, grid):
    geoms, codes = load_layout(fixtures)
    rng = np.random.default_rng(20180301)
    uniform = rng.uniform([529950, 179950], [530550, 180450], (200_000, 2))
    lattice = np.round(uniform[:50_000] / 12.5) * 12.5  # many exact edge hits
    points = np.concatenate([uniform, lattice, edge_points(geoms, rng, 20_000)])
    x, y = points[:, 0].copy(), points[:, 1].copy()
    index = AreaIndex(geoms, codes, cell_m=cell_m, grid=grid)
    expected = brute_force(geoms, codes, x, y)
    assert expected[1].sum() > 10_000  # the sample really exercises edges
    for threads in (1, 2):
        assert_same(index.assign(x, y, threads=threads), *expected, x, y)
    assert_same(index.assign_unique(x, y), *expected, x, y)


def voronoi_layout(seed, n):
    """A random coverage of irregular polygons with many shared vertices."""
    rng = np.random.default_rng(seed)
    sites = shapely.multipoints(rng.uniform(0, 2000, (n, 2)) + [520000, 170000])
    frame = shapely.box(520000, 170000, 522000, 172000)
    cells = shapely.get_parts(shapely.voronoi_polygons(sites, extend_to=frame))
    cells = shapely.intersection(cells, frame)
    cells = cells[shapely.get_type_id(cells) == 3]
    codes = np.array([f"E{v:08d}" for v in rng.permutation(len(cells))])
    return cells, codes


@pytest.mark.parametrize(("cell_m", "grid"), [(10.0, "always"), (50.0, "always"), (400.0, "always"), (50.0, "never")])
def test_random_coverage_matches_brute_force(cell_m, grid):
    geoms, codes = voronoi_layout(7, 60)
    rng = np.random.default_rng(11)
    vertices = shapely.get_coordinates(shapely.boundary(geoms))
    near = vertices + rng.normal(0, 1e-7, vertices.shape)  # either side of an edge
    # Points along the edges, pushed off them by a small fraction of a cell:
    # they land in the slivers of cells that an edge barely clips, where a
    # grid that missed the edge would answer wrongly.
    lines = shapely.boundary(geoms)[rng.integers(0, len(geoms), 50_000)]
    along = shapely.line_interpolate_point(lines, rng.random(50_000), normalized=True)
    offset = rng.normal(0, cell_m / 20, (50_000, 2))
    beside = shapely.get_coordinates(along) + offset
    uniform = rng.uniform([519900, 169900], [522100, 172100], (100_000, 2))
    points = np.concatenate([vertices, near, beside, uniform])
    x, y = points[:, 0].copy(), points[:, 1].copy()
    result = AreaIndex(geoms, codes, cell_m=cell_m, grid=grid).assign(x, y)
    expected = brute_force(geoms, codes, x, y)
    assert expected[1][: len(vertices)].all()
    assert_same(result, *expected, x, y)


@pytest.mark.parametrize("cell_m", [13.0, 40.0])
def test_a_point_in_every_piece_of_every_grid_cell(cell_m):
    # The grid's one promise: a cell it answers without an exact test is
    # touched by no edge. Cut every cell of the grid by every polygon and
    # ask for one point inside each piece, however thin the sliver an edge
    # clips off a corner. (The grid origin is internal; it is read here only
    # to cut along the index's own cell lines.)
    geoms, codes = voronoi_layout(5, 40)
    index = AreaIndex(geoms, codes, cell_m=cell_m, grid="always")
    nx, ny = index._nx, index._ny
    iy, ix = np.divmod(np.arange(nx * ny), nx)
    x0, y0 = index._x0 + ix * cell_m, index._y0 + iy * cell_m
    cells = shapely.box(x0, y0, x0 + cell_m, y0 + cell_m)
    cell_of, poly = shapely.STRtree(geoms).query(cells, predicate="intersects")
    pieces = shapely.intersection(cells[cell_of], geoms[poly])
    outside = shapely.difference(cells, shapely.union_all(geoms))
    pieces = shapely.get_parts(np.concatenate([pieces, outside]))
    pieces = pieces[(shapely.get_type_id(pieces) == 3) & (shapely.area(pieces) > 0)]
    inner = shapely.get_coordinates(shapely.point_on_surface(pieces))
    x, y = inner[:, 0].copy(), inner[:, 1].copy()
    assert_same(index.assign(x, y), *brute_force(geoms, codes, x, y), x, y)


def test_grid_built_in_small_blocks_is_the_grid_built_at_once(monkeypatch):
    # The grid is built a block of polygons and a band of rows at a time, so
    # its temporaries stay bounded on a national layer. Blocks of a handful of
    # polygons and bands of one row must give the very same grid, and answer
    # like the brute force.
    geoms, codes = voronoi_layout(9, 80)
    whole = AreaIndex(geoms, codes, cell_m=20.0, grid="always")
    monkeypatch.setattr(join_module, "_BLOCK_VERTICES", 300)
    monkeypatch.setattr(join_module, "_BLOCK_CELLS", 1)
    calls = []
    block_keys = AreaIndex._block_keys
    monkeypatch.setattr(AreaIndex, "_block_keys", lambda self, a, b: calls.append((a, b)) or block_keys(self, a, b))
    blocks = AreaIndex(geoms, codes, cell_m=20.0, grid="always")
    assert len(calls) > 10 and calls[0][0] == 0 and calls[-1][1] == len(geoms)  # really many blocks, all polygons
    assert all(a < b for a, b in calls) and all(b == a2 for (_, b), (a2, _) in zip(calls, calls[1:]))
    assert blocks._ny > 50  # ... and many bands
    np.testing.assert_array_equal(blocks._grid, whole._grid)
    np.testing.assert_array_equal(blocks._cand, whole._cand)
    np.testing.assert_array_equal(blocks._cand_ptr, whole._cand_ptr)
    rng = np.random.default_rng(3)
    vertices = shapely.get_coordinates(shapely.boundary(geoms))
    points = np.concatenate([vertices, rng.uniform([519900, 169900], [522100, 172100], (50_000, 2))])
    x, y = points[:, 0].copy(), points[:, 1].copy()
    assert_same(blocks.assign(x, y), *brute_force(geoms, codes, x, y), x, y)


def test_concurrent_callers_share_one_index():
    # A web app shares one index between request threads; each call also
    # runs its own worker threads. All must get the single-threaded answer.
    from concurrent.futures import ThreadPoolExecutor

    geoms, codes = voronoi_layout(9, 200)
    rng = np.random.default_rng(5)
    x = rng.uniform(519900, 522100, 400_000)
    y = rng.uniform(169900, 172100, 400_000)
    expected = AreaIndex(geoms, codes, grid="always").assign(x, y, threads=1)
    # Fresh: GEOS builds its locators during the calls. With grid="auto" the
    # small calls are answered without the grid, the first large call builds
    # it while other callers are still testing points directly.
    index = AreaIndex(geoms, codes)
    spans = [(a, a + 2_000) for a in range(0, 40_000, 2_000)] + [(0, len(x))] * 3
    with ThreadPoolExecutor(max_workers=4) as callers:
        results = list(callers.map(lambda span: index.assign(x[span[0]:span[1]], y[span[0]:span[1]], threads=2),
                                   spans))
    assert index._grid is not None
    for (a, b), result in zip(spans, results):
        assert np.array_equal(result.index, expected.index[a:b])
        assert np.array_equal(result.on_edge, expected.on_edge[a:b])


def test_overlapping_polygons_follow_the_rule():
    # Not a coverage: a small square inside a big one, and a square lying
    # across the big one's edge. The rule still holds: smallest covering code.
    geoms = np.array([
        shapely.box(0, 0, 1000, 1000),
        shapely.box(400, 400, 600, 600),
        shapely.box(900, 100, 1100, 300),
    ])
    codes = np.array(["B", "A", "C"])
    rng = np.random.default_rng(3)
    points = np.concatenate([
        rng.uniform(-100, 1200, (50_000, 2)),
        np.round(rng.uniform(-100, 1200, (20_000, 2)) / 50) * 50,
    ])
    x, y = points[:, 0].copy(), points[:, 1].copy()
    expected = brute_force(geoms, codes, x, y)
    for cell_m, grid in ((7.0, "always"), (50.0, "always"), (300.0, "always"), (50.0, "never")):
        result = AreaIndex(geoms, codes, cell_m=cell_m, grid=grid).assign(x, y)
        assert_same(result, *expected, x, y)


@pytest.mark.parametrize("grid", ["always", "never"])
def test_nan_and_repeated_locations_in_assign_unique(fixtures, grid):
    index = AreaIndex(*load_layout(fixtures), grid=grid)
    x = np.array([530050.0, np.nan, 530100.0, 530050.0, 530100.0, -0.0, 0.0, np.inf])
    y = np.array([180050.0, 180050.0, 180050.0, 180050.0, 180050.0, 0.0, -0.0, 1.0])
    unique = index.assign_unique(x, y)
    plain = index.assign(x, y)
    assert unique.index.tolist() == plain.index.tolist() == [0, -1, 1, 0, 1, -1, -1, -1]
    assert unique.on_edge.tolist() == plain.on_edge.tolist()
    assert plain.on_edge.tolist() == [False, False, True, False, True, False, False, False]


def test_auto_grid_is_built_once_direct_joins_would_have_paid_for_it(fixtures):
    geoms, codes = load_layout(fixtures)
    index = AreaIndex(geoms, codes, cell_m=7.0)
    rng = np.random.default_rng(8)
    step = max(1, int(index._budget // 3))  # below half the budget: no build on its own
    calls = []
    for _ in range(5):
        points = rng.uniform([529950, 179950], [530550, 180450], (step, 2))
        points[::3] = np.round(points[::3] / 25) * 25  # on edges and vertices
        x, y = points[:, 0].copy(), points[:, 1].copy()
        calls.append(index._grid is not None)
        assert_same(index.assign(x, y), *brute_force(geoms, codes, x, y), x, y)
    # Three calls of a third of the budget each go without the grid; the fourth passes it and builds it.
    assert calls == [False, False, False, False, True]
    big = AreaIndex(geoms, codes, cell_m=7.0)
    big.assign(np.zeros(int(big._budget // 2) + 1), np.zeros(int(big._budget // 2) + 1))
    assert big._grid is not None  # one large call builds it at once
    never = AreaIndex(geoms, codes, cell_m=7.0, grid="never")
    never.assign(np.zeros(10 * int(never._budget)), np.zeros(10 * int(never._budget)))
    assert never._grid is None


def test_box_bins_find_what_an_strtree_finds():
    # The direct path's candidates: every polygon whose closed bounding box holds
    # the point, as STRtree.query answers for a shapely Point; points on the
    # boxes' sides and corners included, with small and large overlapping boxes.
    rng = np.random.default_rng(12)
    for trial in range(12):
        n = int(rng.integers(1, 300))
        centre = rng.uniform(0, 1000, (n, 2))
        half = rng.exponential(30 if trial % 2 else 400, (n, 2))
        boxes = shapely.box(*(centre - half).T, *(centre + half).T)
        bounds = shapely.bounds(boxes)
        x = np.concatenate([rng.uniform(-200, 1200, 5000), bounds[:, 0], bounds[:, 2], [np.nan, np.inf, 5.0]])
        y = np.concatenate([rng.uniform(-200, 1200, 5000), bounds[:, 3], bounds[:, 1], [1.0, 2.0, -np.inf]])
        pt, poly = BoxBins(bounds).pairs(x, y)
        finite = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        tree_pt, tree_poly = shapely.STRtree(boxes).query(shapely.points(x[finite], y[finite]))
        assert set(zip(pt.tolist(), poly.tolist())) == set(zip(finite[tree_pt].tolist(), tree_poly.tolist()))
        assert np.all(np.diff(pt) >= 0)  # point by point


def test_location_cache_matches_assign_call_after_call(fixtures):
    geoms, codes = load_layout(fixtures)
    layers = [AreaIndex(geoms, codes, grid="always"), AreaIndex(*voronoi_layout(9, 30), grid="always")]
    cache = LocationCache([AreaIndex(geoms, codes), AreaIndex(*voronoi_layout(9, 30))])
    small = LocationCache([AreaIndex(geoms, codes)], max_locations=5)
    rng = np.random.default_rng(4)
    pool = np.concatenate([rng.uniform([519900, 169900], [530600, 180500], (400, 2)),
                           np.round(rng.uniform([529950, 179950], [530550, 180450], (400, 2)) / 25) * 25,
                           [[np.nan, 1.0], [0.0, -0.0], [-0.0, 0.0], [np.inf, 5.0]]])
    distinct = set()
    for _ in range(6):
        points = pool[rng.integers(0, len(pool), 500)]
        x, y = points[:, 0].copy(), points[:, 1].copy()
        for result, layer in zip(cache.assign(x, y), layers):
            want = layer.assign(x, y)
            assert np.array_equal(result.index, want.index) and np.array_equal(result.on_edge, want.on_edge)
        (result,) = small.assign(x, y, threads=1)
        want = layers[0].assign(x, y)
        assert np.array_equal(result.index, want.index) and np.array_equal(result.on_edge, want.on_edge)
        finite = np.isfinite(x) & np.isfinite(y)
        distinct |= set(zip((x[finite] + 0.0).tolist(), (y[finite] + 0.0).tolist()))
    assert cache.size == cache.joined == len(distinct)  # each location joined once
    assert small.size == 5 and small.joined > len(distinct)  # full: new locations joined every time
    assert [r.index.tolist() for r in cache.assign([], [])] == [[], []]
    with pytest.raises(ValueError, match="max_locations"):
        LocationCache([], max_locations=-1)
    with pytest.raises(ValueError, match="threads"):
        cache.assign([1.0], [1.0], threads=0)


# -------------------------------------------------------------- validation


def test_invalid_layers_raise_value_error(fixtures):
    geoms, codes = load_layout(fixtures)
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)])
    with pytest.raises(ValueError, match="W01"):
        AreaIndex(geoms, np.where(codes == "W03", "W01", codes))  # duplicate code
    with pytest.raises(ValueError, match="7 values"):
        AreaIndex(geoms, codes[:-1])
    with pytest.raises(ValueError, match="invalid"):
        AreaIndex([bowtie], ["X"])
    with pytest.raises(ValueError, match="LineString"):
        AreaIndex([shapely.LineString([(0, 0), (1, 1)])], ["X"])
    with pytest.raises(ValueError, match="NoneType"):
        AreaIndex([None], ["X"])
    with pytest.raises(ValueError, match="empty"):
        AreaIndex([shapely.Polygon()], ["X"])
    with pytest.raises(ValueError, match="str"):
        AreaIndex(geoms[:1], [3])
    with pytest.raises(ValueError, match="non-empty"):
        AreaIndex([], [])
    for bad_cell in (0, -5, math.nan, "big", math.inf):
        with pytest.raises(ValueError, match="cell_m"):
            AreaIndex(geoms, codes, cell_m=bad_cell)
    for bad_grid in ("lazy", None, True):
        with pytest.raises(ValueError, match="grid"):
            AreaIndex(geoms, codes, grid=bad_grid)
    with pytest.raises(ValueError, match="maximum"):
        AreaIndex([shapely.box(0, 0, 1e6, 1e6)], ["X"], cell_m=0.01)
    series = geopandas.GeoSeries(geoms, crs="EPSG:4326")
    with pytest.raises(ValueError, match="EPSG:27700"):
        AreaIndex(series, codes)


def test_bad_points_raise_value_error(fixtures):
    index = AreaIndex(*load_layout(fixtures))
    for method in (index.assign, index.assign_unique):
        with pytest.raises(ValueError, match="3 values"):
            method([1.0, 2.0, 3.0], [1.0])
        with pytest.raises(ValueError, match="1-D"):
            method(np.zeros((2, 2)), np.zeros((2, 2)))
        with pytest.raises(ValueError, match="numeric"):
            method(["a"], ["b"])
        for bad in (0, -1, 1.5, True, "2"):
            with pytest.raises(ValueError, match="threads"):
                method([1.0], [1.0], threads=bad)


def test_accepts_geoseries_and_leaves_caller_geometries_unprepared(fixtures):
    geoms, codes = load_layout(fixtures)
    series = geopandas.GeoSeries(geoms, crs="EPSG:27700")
    index = AreaIndex(series, pd.Series(codes))
    assert index.assign([530150.0], [180050.0]).index.tolist() == [1]
    assert not shapely.is_prepared(geoms).any()


# ----------------------------------------------------------------- real data


@pytest.mark.parametrize("grid", ["always", "never"])
def test_real_points_match_sjoin_on_2018_wards(need_shared, grid):
    x, y = api_points(need_shared(API_FILES))
    wards = geopandas.read_file(need_shared(WARDS_2018))
    assert len(x) > 190_000
    result, on_edge = compare_with_sjoin(wards, "GSS_CODE", x, y, grid=grid)
    # 5-7 points a month lie outside London (SOURCES.md 2d); the 2018 wards
    # include the Thames, so a few of those count as inside here.
    assert 1 <= (result.index < 0).sum() <= 30
    assert len(on_edge) < 0.001 * len(x), on_edge


@pytest.mark.parametrize("grid", ["always", "never"])
def test_real_points_match_sjoin_on_boroughs(need_shared, grid):
    x, y = api_points(need_shared(API_FILES))
    boroughs = geopandas.read_file(need_shared(BOROUGHS))
    result, on_edge = compare_with_sjoin(boroughs, "LAD22CD", x, y, grid=grid)
    assert len(on_edge) < 0.001 * len(x), on_edge
    # The 25 boroughs harvested hold almost all the points.
    counts = np.bincount(result.index[result.index >= 0], minlength=len(boroughs))
    assert (counts > 1000).sum() >= 25


def test_real_points_assign_unique_equals_assign(need_shared):
    x, y = api_points(need_shared(API_FILES))
    wards = geopandas.read_file(need_shared(WARDS_2018))
    index = AreaIndex(wards.geometry.values, wards["GSS_CODE"].to_numpy(), cell_m=25.0)
    plain, unique = index.assign(x, y), index.assign_unique(x, y)
    assert np.array_equal(plain.index, unique.index)
    assert np.array_equal(plain.on_edge, unique.on_edge)


def test_ward_vertices_of_real_layer_match_brute_force(need_shared):
    # Every vertex of the real 2018 wards lies on an edge, most on edges
    # shared by two or three wards: the hardest points for the tie rule.
    wards = geopandas.read_file(need_shared(WARDS_2018))
    geoms = np.asarray(wards.geometry.values)
    codes = wards["GSS_CODE"].to_numpy()
    vertices = np.unique(shapely.get_coordinates(shapely.boundary(geoms)), axis=0)
    x, y = vertices[:, 0].copy(), vertices[:, 1].copy()
    expected = brute_force(geoms, codes, x, y)
    assert expected[1].all()
    for grid in ("always", "never"):
        assert_same(AreaIndex(geoms, codes, grid=grid).assign(x, y), *expected, x, y)


def test_location_cache_of_lonlat_matches_reprojecting_every_point(need_shared):
    # The cache reprojects and joins each map point once; the answer for every
    # crime must be that of reprojecting and joining each crime on its own.
    files = api_lonlat(need_shared(API_FILES))
    wards = geopandas.read_file(need_shared(WARDS_2018))
    boroughs = geopandas.read_file(need_shared(BOROUGHS))
    layers = [AreaIndex(wards.geometry.values, wards["GSS_CODE"].to_numpy(), grid="always"),
              AreaIndex(boroughs.geometry.values, boroughs["LAD22CD"].to_numpy(), grid="always")]
    cache = LocationCache([AreaIndex(wards.geometry.values, wards["GSS_CODE"].to_numpy()),
                           AreaIndex(boroughs.geometry.values, boroughs["LAD22CD"].to_numpy())], lonlat=True)
    for lon, lat in files:
        for part in np.array_split(np.arange(len(lon)), 3):
            x, y = lonlat_to_bng(lon[part], lat[part])
            for result, layer in zip(cache.assign(lon[part], lat[part]), layers):
                want = layer.assign(x, y)
                assert np.array_equal(result.index, want.index)
                assert np.array_equal(result.on_edge, want.on_edge)
    assert 30_000 < cache.joined == cache.size < 50_000  # 36,060 map points for 191,699 crimes


def test_2014_wards_need_repair_first(need_shared):
    wards = geopandas.read_file(need_shared(WARDS_2014))
    codes = wards["GSS_CODE"].to_numpy()
    with pytest.raises(ValueError, match="E0500939[2]|E05009400"):
        AreaIndex(wards.geometry.values, codes)
    # The .prj has no EPSG code; the GeoSeries CRS is still recognised as 27700.
    repaired = wards.geometry.make_valid(method="structure")
    index = AreaIndex(repaired, codes)
    assert index.assign([524859.0 + 50], [180764.0]).index[0] >= 0
