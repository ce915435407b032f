"""Acceptance checks of the data spine against the real London files in ../shared/data."""

import gzip
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest


CITY = "crime/police_uk/city-of-london"
API = "crime/police_uk_api_partial"
WARDS_2018 = "boundaries/London-wards-2018/London_Ward.shp"
LAD22 = "boundaries/london-2021-lad22-gen20.shp"


def _status(runner):
    result = runner("status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_city_of_london_status_counts(runner, need_shared):
    files = sorted(need_shared(CITY).glob("*.csv"))
    assert len(files) == 23
    assert runner("boundaries", "load", "ward", need_shared(WARDS_2018)).exit_code == 0
    assert runner("boundaries", "load", "borough", need_shared(LAD22)).exit_code == 0
    result = runner("crimes", "ingest", *files)
    assert result.exit_code == 0, result.output
    status = _status(runner)
    # Independent expectation straight from the files.
    frames = [pd.read_csv(f, dtype=str) for f in files]
    raw = pd.concat(frames)
    assert status["crimes"]["rows_read"] == len(raw) == 18434
    assert status["crimes"]["no_location"] == int(raw["Longitude"].isna().sum()) == 1719
    lon = raw["Longitude"].astype(float)
    assert status["crimes"]["outside"] == int((lon < -0.6).sum()) == 1
    assert status["crimes"]["rejected"] == 0
    # Counted per month and per force, never dropped.
    per_month = {(r["force"], r["month"]): r["count"] for r in status["no_location"]}
    expected = raw[raw["Longitude"].isna()].groupby("Month").size()
    assert per_month == {("city-of-london", m): int(n) for m, n in expected.items()}
    assert [layer["vintage"] for layer in status["layers"]] == ["2022", "2018"]
    assert status["data_as_of"] == "2025-03"
    assert "Rows read 18,434" in result.output


@pytest.fixture
def api_instance(api_2018):
    return api_2018.store, api_2018.report, api_2018.files


def _api_points(path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    frame = pd.DataFrame({"id": [r["id"] for r in rows], "month": [r["month"] for r in rows],
                          "lon": [float(r["location"]["longitude"]) for r in rows],
                          "lat": [float(r["location"]["latitude"]) for r in rows]})
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame.lon, frame.lat), crs="EPSG:4326").to_crs(27700)


def test_api_months_row_counts(api_instance):
    _, report, files = api_instance
    assert [f["rows_read"] for f in report.files] == [61728, 63658, 66313]
    assert all(f["rejected"] == 0 for f in report.files)


def test_per_borough_counts_equal_independent_sjoin(api_instance, need_shared):
    store, report, files = api_instance
    boroughs = gpd.read_file(need_shared(LAD22))[["LAD22CD", "geometry"]]
    layer = store.layer("borough")
    placed = store.locations_of_layer(layer["id"])
    edge_xy = placed.loc[placed["on_edge"] == 1, ["x", "y"]].round(3)
    edge_keys = set(map(tuple, edge_xy.to_numpy()))
    # The report lists the boundary points it assigned by rule.
    listed = {e["level"]: e for e in report.on_edge}
    if edge_keys:
        assert listed["borough"]["locations"] == len(edge_keys)
    counts = store.point_counts(layer["id"]).groupby(["code", "month"])["n"].sum()
    for path in files:
        points = _api_points(path)
        keys = list(zip(points.geometry.x.round(3), points.geometry.y.round(3)))
        on_edge = np.array([k in edge_keys for k in keys])
        joined = gpd.sjoin(points, boroughs, predicate="within", how="inner")
        expected = joined.groupby(["LAD22CD", "month"]).size()
        month = points["month"].iloc[0]
        ours = counts.xs(month, level="month")
        edge_by_code = pd.Series(dtype="int64")
        if on_edge.any():
            edge_points = gpd.sjoin(points[on_edge], boroughs, predicate="intersects")
            edge_by_code = edge_points.groupby("LAD22CD").size()
        for code in boroughs["LAD22CD"]:
            exp = int(expected.get((code, month), 0))
            got = int(ours.get(code, 0))
            if got != exp:
                # Only points exactly on an edge may differ, and by no more than they number.
                assert abs(got - exp) <= int(edge_by_code.get(code, 0)), (code, month, got, exp)
    assert report.summary()["rows_read"] == 61728 + 63658 + 66313


def test_every_location_joined_to_every_layer(api_instance):
    store, _, _ = api_instance
    for layer in store.layers():
        placed = store.locations_of_layer(layer["id"])
        assert placed["code"].notna().sum() > 0
        assert not placed["on_edge"].isna().any(), "a location was not joined to a layer"


def test_invalid_polygons_in_the_2014_shapefile_are_repaired_and_reported(runner, need_shared):
    result = runner("boundaries", "load", "ward", need_shared("boundaries/London-wards-2014/London_Ward.shp"))
    assert result.exit_code == 0, result.output
    repaired = [line for line in result.output.splitlines() if line.strip().startswith("repaired ")]
    assert [line.split()[1] for line in repaired] == ["E05009392", "E05009400"]
    assert all("Self-intersection" in line for line in repaired)
    assert "British National Grid recognised" in result.output
    status = json.loads(runner("status", "--json").output)
    assert status["layers"][0]["repairs"] == 2 and status["layers"][0]["areas"] == 654
