"""Tests for crimemap.crs, the one place that reprojects."""

import geopandas
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from crimemap.crs import BNG, WGS84, bng_to_lonlat, lonlat_to_bng, to_bng, to_wgs84

# Charing Cross: a point and its transform computed directly with pyproj.
LON, LAT = -0.1276, 51.5072
DIRECT = Transformer.from_crs(4326, 27700, always_xy=True).transform(LON, LAT)


def test_lonlat_to_bng_scalar():
    x, y = lonlat_to_bng(LON, LAT)
    assert (float(x), float(y)) == pytest.approx(DIRECT, abs=1e-6)
    # The OS 1 km square TQ 30 80.
    assert 530_000 <= x < 531_000 and 180_000 <= y < 181_000


def test_vectorised_round_trip_and_missing_points():
    lon = np.array([LON, -0.5, np.nan])
    lat = np.array([LAT, 51.3, 51.5])
    x, y = lonlat_to_bng(lon, lat)
    assert x.shape == (3,)
    assert np.isnan(x[2]) and np.isnan(y[2])
    back_lon, back_lat = bng_to_lonlat(x, y)
    # The Helmert transformation is not exactly invertible: about 1 mm.
    assert back_lon[:2] == pytest.approx(lon[:2], abs=1e-7)
    assert back_lat[:2] == pytest.approx(lat[:2], abs=1e-7)
    assert np.isnan(back_lon[2])


def test_to_bng_and_back():
    lonlat = geopandas.GeoDataFrame(geometry=[shapely.Point(LON, LAT)], crs=WGS84)
    grid = to_bng(lonlat)
    assert grid.crs.to_epsg() == 27700
    assert (grid.geometry.x[0], grid.geometry.y[0]) == pytest.approx(DIRECT, abs=1e-6)
    assert to_bng(grid) is grid
    assert to_wgs84(grid).geometry.x[0] == pytest.approx(LON, abs=1e-7)


def test_no_crs_is_refused():
    with pytest.raises(ValueError, match="without a CRS"):
        to_bng(geopandas.GeoDataFrame(geometry=[shapely.Point(0, 0)]))
    assert BNG == "EPSG:27700"
