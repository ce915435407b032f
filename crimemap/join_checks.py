"""Argument checks of :mod:`crimemap.join` and :mod:`crimemap.join_cache`: each raises ValueError with what was wrong.

A pure core module: numpy and shapely only.
"""

import math

import numpy as np
import shapely


def _check_layer(geometries, codes):
    crs = getattr(geometries, "crs", None)
    if crs is not None and crs.to_epsg(min_confidence=20) != 27700:
        raise ValueError(f"geometries must be in EPSG:27700, got CRS {crs.name!r}")
    geoms = np.asarray(geometries, dtype=object)
    if geoms.ndim != 1 or len(geoms) == 0:
        raise ValueError(
            f"geometries must be a non-empty 1-D array-like, got shape {geoms.shape}"
        )
    codes = list(codes)
    if len(codes) != len(geoms):
        raise ValueError(
            f"codes has {len(codes)} values but geometries has {len(geoms)}"
        )
    for i, code in enumerate(codes):
        if not isinstance(code, str):
            raise ValueError(f"codes[{i}] is {code!r}; every code must be a str")
    codes = np.array(codes, dtype=str)
    values, counts = np.unique(codes, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"codes must be unique; repeated: {values[counts > 1][:5].tolist()}"
        )
    for i, geom in enumerate(geoms):
        if not isinstance(geom, (shapely.Polygon, shapely.MultiPolygon)):
            raise ValueError(
                f"geometries[{i}] (code {codes[i]!r}) is {type(geom).__name__}; "
                "allowed: Polygon, MultiPolygon"
            )
    empty = shapely.is_empty(geoms)
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise ValueError(f"geometries[{i}] (code {codes[i]!r}) is empty")
    valid = shapely.is_valid(geoms)
    if not valid.all():
        i = int(np.flatnonzero(~valid)[0])
        reason = shapely.is_valid_reason(geoms[i])
        raise ValueError(
            f"geometries[{i}] (code {codes[i]!r}) is invalid ({reason}); "
            "repair it first, e.g. with shapely.make_valid(geom, method='structure')"
        )
    return geoms, codes


def _check_cell(cell_m):
    try:
        cell = float(cell_m)
    except (TypeError, ValueError):
        raise ValueError(f"cell_m must be a positive number of metres, got {cell_m!r}")
    if not math.isfinite(cell) or cell <= 0:
        raise ValueError(f"cell_m must be a positive number of metres, got {cell_m!r}")
    return cell


def _check_xy(x, y):
    try:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"x and y must be numeric arrays: {exc}") from None
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"x and y must be 1-D, got shapes {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} values but y has {len(y)}")
    return x, y


def _check_threads(threads):
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    return int(threads)
