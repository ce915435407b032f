"""bench/synth_national.py at a tiny size: row counts, distinct ward codes, every point in a ward, determinism.

The checks use geopandas and pandas directly (not the generator's own helpers):
``read_csv`` counts the rows, ``sjoin`` places every written point in a ward.
"""

import hashlib
import sys
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
POINTS, COPIES, MAP_POINTS = 5_003, 3, 2_000


@pytest.fixture(scope="module")
def synth():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import synth_national

    return synth_national


@pytest.fixture(scope="module")
def generated(synth, tmp_path_factory):
    from tests.conftest import _need_shared

    _need_shared("crime/police_uk_api_partial")
    _need_shared("boundaries/London-wards-2018")
    out = tmp_path_factory.mktemp("national")
    summary = synth.generate(out, POINTS, COPIES, seed=7, map_points_per_copy=MAP_POINTS, rows_per_file=1_000)
    return out, summary


def _digest(folder):
    sha = hashlib.sha256()
    for path in sorted((folder / "street").glob("*.csv")):
        sha.update(path.name.encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


def _points(folder):
    frames = [pd.read_csv(path, dtype={"Crime ID": str}, keep_default_na=False)
              for path in sorted((folder / "street").glob("*.csv"))]
    return pd.concat(frames, ignore_index=True)


def test_rows_and_files(generated):
    out, summary = generated
    points = _points(out)
    assert len(points) == POINTS == summary["points"]
    files = sorted((out / "street").glob("*-street.csv"))
    sizes = [path.read_bytes().count(b"\n") - 1 for path in files]
    assert len(files) == summary["files"] == COPIES * summary["months"]
    assert max(sizes) - min(sizes) <= 1  # split evenly
    assert set(points["Falls within"]) == {f"Synthetic Force {k:02d}" for k in range(COPIES)}
    # Anti-social behaviour has no Crime ID, as police.uk publishes it; other rows have a 64-hex one.
    asb = points["Crime type"] == "Anti-social behaviour"
    assert (points.loc[asb, "Crime ID"] == "").all()
    assert points.loc[~asb, "Crime ID"].str.fullmatch(r"[0-9a-f]{64}").all()


def test_ward_codes_unique_and_copies_apart(generated):
    out, _ = generated
    wards = geopandas.read_file(out / "wards.gpkg")
    assert len(wards) == 657 * COPIES
    assert wards["GSS_CODE"].is_unique
    copy = wards["GSS_CODE"].str.extract(r"-(\d\d)$")[0].fillna("00")
    assert copy.value_counts().to_dict() == {f"{k:02d}": 657 for k in range(COPIES)}
    names = [set(wards.loc[copy == f"{k:02d}", "NAME"]) for k in range(COPIES)]
    assert all(not (names[a] & names[b]) for a in range(COPIES) for b in range(a + 1, COPIES))
    # Each copy is London moved: same total area, and no two copies' boxes touch.
    areas = wards.geometry.area.groupby(copy).sum()
    assert np.allclose(areas, areas.iloc[0])
    boxes = [wards.loc[copy == f"{k:02d}"].total_bounds for k in range(COPIES)]
    for a in range(COPIES):
        for b in range(a + 1, COPIES):
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes[a], boxes[b]
            assert ax1 < bx0 or bx1 < ax0 or ay1 < by0 or by1 < ay0


def test_every_point_inside_its_copy(generated):
    out, _ = generated
    points = _points(out)
    wards = geopandas.read_file(out / "wards.gpkg")
    gdf = geopandas.GeoDataFrame(points[["Falls within"]], crs="EPSG:4326",
                                 geometry=geopandas.points_from_xy(points["Longitude"], points["Latitude"]))
    joined = geopandas.sjoin(gdf.to_crs(27700), wards, how="left", predicate="intersects")
    joined = joined[~joined.index.duplicated()]
    assert joined["GSS_CODE"].notna().all()
    copy = joined["GSS_CODE"].str.extract(r"-(\d\d)$")[0].fillna("00")
    assert (("Synthetic Force " + copy) == joined["Falls within"]).all()


def test_locations_repeat_and_follow_real_points(generated):
    out, summary = generated
    points = _points(out)
    distinct = points.groupby(["Longitude", "Latitude"]).ngroups
    assert distinct <= summary["map_points"] <= MAP_POINTS * COPIES
    assert distinct < len(points)  # snapped to map points: locations repeat


def test_same_seed_same_bytes(synth, generated, tmp_path):
    out, _ = generated
    again = tmp_path / "again"
    synth.generate(again, POINTS, COPIES, seed=7, map_points_per_copy=MAP_POINTS, rows_per_file=1_000)
    assert _digest(again) == _digest(out)
    other = tmp_path / "other"
    synth.generate(other, POINTS, COPIES, seed=8, map_points_per_copy=MAP_POINTS, rows_per_file=1_000)
    assert _digest(other) != _digest(out)
