"""Geometry for the web: simplified, reprojected and rounded, cached per layer.

Full-resolution London wards weigh megabytes as GeoJSON; a browser drawing
them at city scale shows none of that detail. :func:`web_geometry` simplifies
a layer's polygons as one coverage (``shapely.coverage_simplify``,
Visvalingam–Whyatt on the shared edges), so neighbouring areas keep sharing
their edges and no gaps or overlaps open between them, as they would if each
polygon were simplified on its own. It simplifies in British National Grid,
where the tolerance is in metres, then reprojects through
:func:`crimemap.crs.to_wgs84` and rounds to 5 decimals (about a metre).

The result is cached in the process and on disk under ``<INSTANCE>/cache/``,
keyed by the layer's id, its ``loaded_at`` and the tolerance, so loading the
layer again invalidates it. Disk files are written beside their final name
and swapped in with ``os.replace``.
"""

import hashlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from crimemap.crs import BNG, WGS84, to_bng, to_wgs84

log = logging.getLogger(__name__)

DECIMALS = 5  # about a metre of longitude/latitude in London
GRID = 10.0 ** -DECIMALS
CACHE_FOLDER = "cache"
_PREFIX = "webgeom-"

_lock = threading.Lock()
_memory = {}  # (layer id, loaded_at, tolerance) -> GeoSeries


def simplify_coverage(geoms, tolerance_m):
    """Simplify polygons that tile an area together, keeping shared edges shared.

    Parameters
    ----------
    geoms : array-like of shapely geometries
        Polygons in a projected CRS (metres) forming a valid coverage.
    tolerance_m : float
        Visvalingam–Whyatt tolerance in metres; 0 or less returns the input.

    Returns
    -------
    numpy.ndarray of shapely geometries
    """
    geoms = np.asarray(geoms, dtype=object)
    if tolerance_m <= 0 or not len(geoms):
        return geoms
    return shapely.coverage_simplify(geoms, float(tolerance_m))


def build_web_geometry(areas, tolerance_m):
    """Simplified EPSG:4326 geometry of a layer's areas, rounded to 5 decimals.

    Parameters
    ----------
    areas : geopandas.GeoDataFrame
        The layer's areas with ``code`` and a CRS.
    tolerance_m : float
        Simplification tolerance in metres (EPSG:27700).

    Returns
    -------
    geopandas.GeoSeries
        Indexed by area code, in EPSG:4326.
    """
    bng = to_bng(areas)
    simple = gpd.GeoSeries(simplify_coverage(bng.geometry.to_numpy(), tolerance_m), index=bng["code"].to_numpy(),
                           crs=BNG)
    web = to_wgs84(simple)
    # set_precision snaps to a grid keeping polygons valid (it may drop a
    # sliver narrower than the grid, never introduce a self-intersection).
    return gpd.GeoSeries(shapely.set_precision(web.to_numpy(), GRID), index=web.index, crs=WGS84)


def _cache_name(layer_id, loaded_at, tolerance_m):
    stamp = hashlib.sha256(str(loaded_at).encode()).hexdigest()[:16]
    return f"{_PREFIX}{int(layer_id)}-{stamp}-{float(tolerance_m):g}m.json"


def _read(path):
    with open(path, "rb") as f:
        doc = json.load(f)
    geoms = shapely.from_wkb([bytes.fromhex(h) for h in doc["wkb"]])
    return gpd.GeoSeries(geoms, index=doc["codes"], crs=WGS84)


def _write(path, series):
    doc = {"codes": [str(c) for c in series.index],
           "wkb": [g.hex() for g in shapely.to_wkb(series.to_numpy(), hex=False)]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Files of the same layer from before a reload are never read again.
    layer_id, stamp = path.name[len(_PREFIX):].split("-")[:2]
    for old in path.parent.glob(f"{_PREFIX}{layer_id}-*.json"):
        if old.name.split("-")[2] != stamp:
            old.unlink(missing_ok=True)


def web_geometry(areas, layer, tolerance_m, cache_dir=None):
    """The web geometry of a layer, from the cache when it is still valid.

    Parameters
    ----------
    areas : geopandas.GeoDataFrame
        The layer's areas (``code`` and geometry), as the store returns them.
    layer : dict
        The store's layer record; ``id`` and ``loaded_at`` key the cache.
    tolerance_m : float
        Simplification tolerance in metres.
    cache_dir : str or pathlib.Path, optional
        Folder for the disk cache (``<INSTANCE>/cache``); none keeps it in memory.

    Returns
    -------
    geopandas.GeoSeries
        Indexed by area code, in EPSG:4326.
    """
    key = (int(layer["id"]), str(layer["loaded_at"]), float(tolerance_m))
    with _lock:
        found = _memory.get(key)
    if found is not None and set(found.index) >= set(areas["code"]):
        return found
    path = Path(cache_dir) / _cache_name(*key) if cache_dir else None
    series = None
    if path is not None and path.exists():
        try:
            series = _read(path)
        except (OSError, ValueError, KeyError, shapely.errors.GEOSException):
            series = None  # a damaged cache file is rebuilt, not trusted
        if series is not None and not set(series.index) >= set(areas["code"]):
            series = None
    if series is None:
        series = build_web_geometry(areas, tolerance_m)
        if path is not None:
            try:
                _write(path, series)
            except OSError as exc:  # a full or read-only disk: serve what was built, just not cached on disk
                log.error("could not write the web geometry cache %s: %s", path, exc)
    with _lock:
        # Only the current version of each layer is worth keeping.
        for old in [k for k in _memory if k[0] == key[0] and k[1] != key[1]]:
            del _memory[old]
        _memory[key] = series
    return series


def clear_memory():
    """Forget the in-process cache (the disk cache stays)."""
    with _lock:
        _memory.clear()
