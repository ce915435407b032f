"""Coordinate reference systems: the one place where crimemap reprojects.

Joins and areas use British National Grid (EPSG:27700, metres); the web layer
uses longitude/latitude (EPSG:4326). Every reprojection goes through this
module so that the choice of transformation is made once.

Without the OSTN15 grid installed, PROJ transforms between OSGB36 and WGS84
with a Helmert transformation accurate to a few metres; that is the same
transformation the published latitude/longitude columns of our sources use.
"""

from functools import lru_cache

import numpy as np
from pyproj import Transformer

BNG = "EPSG:27700"
WGS84 = "EPSG:4326"

# Generous boxes around Greater London (the real extent is x 503,568-561,958,
# y 155,851-200,934). Used to guess the CRS of a file that declares none and to
# flag features that reprojected somewhere implausible.
LONDON_BNG_BOUNDS = (500_000.0, 150_000.0, 565_000.0, 205_000.0)
LONDON_LONLAT_BOUNDS = (-0.6, 51.2, 0.4, 51.8)


@lru_cache(maxsize=None)
def _transformer(source, target):
    # Building a Transformer costs far more than using it; pyproj >= 3.1 makes
    # a shared Transformer safe across threads.
    return Transformer.from_crs(source, target, always_xy=True)


def _transform(source, target, a, b):
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    out_a, out_b = _transformer(source, target).transform(a, b)
    out_a, out_b = np.array(out_a, dtype=float), np.array(out_b, dtype=float)
    # PROJ answers a missing coordinate (NaN) or a failed point with inf;
    # callers test for missing locations with isnan, so give them NaN.
    failed = ~(np.isfinite(out_a) & np.isfinite(out_b))
    out_a[failed] = np.nan
    out_b[failed] = np.nan
    return out_a, out_b


def to_bng(gdf):
    """Return ``gdf`` in British National Grid.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame or geopandas.GeoSeries
        Data with a CRS set.

    Returns
    -------
    geopandas.GeoDataFrame or geopandas.GeoSeries
        ``gdf`` itself when it is already EPSG:27700, else a reprojected copy.

    Raises
    ------
    ValueError
        If ``gdf`` has no CRS: guessing one is the caller's decision.
    """
    if gdf.crs is None:
        raise ValueError("cannot reproject data without a CRS; set one first")
    if gdf.crs.to_epsg() == 27700:
        return gdf
    return gdf.to_crs(BNG)


def to_wgs84(gdf):
    """Return ``gdf`` in longitude/latitude (EPSG:4326) for the web layer.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame or geopandas.GeoSeries
        Data with a CRS set.

    Returns
    -------
    geopandas.GeoDataFrame or geopandas.GeoSeries
        ``gdf`` itself when it is already EPSG:4326, else a reprojected copy.

    Raises
    ------
    ValueError
        If ``gdf`` has no CRS.
    """
    if gdf.crs is None:
        raise ValueError("cannot reproject data without a CRS; set one first")
    if gdf.crs.to_epsg() == 4326:
        return gdf
    return gdf.to_crs(WGS84)


def lonlat_to_bng(lon, lat):
    """Convert longitude/latitude (EPSG:4326) to eastings/northings (EPSG:27700).

    Parameters
    ----------
    lon, lat : float or array-like
        Degrees; arrays of the same shape.

    Returns
    -------
    tuple of numpy.ndarray
        ``(x, y)`` in metres, with the shape of the input (0-d for scalars).
        A missing (NaN) or untransformable point gives NaN.
    """
    return _transform(WGS84, BNG, lon, lat)


def bng_to_lonlat(x, y):
    """Convert eastings/northings (EPSG:27700) to longitude/latitude (EPSG:4326).

    Parameters
    ----------
    x, y : float or array-like
        Metres; arrays of the same shape.

    Returns
    -------
    tuple of numpy.ndarray
        ``(lon, lat)`` in degrees, with the shape of the input (0-d for scalars).
        A missing (NaN) or untransformable point gives NaN.
    """
    return _transform(BNG, WGS84, x, y)
