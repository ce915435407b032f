"""Build one Mapbox Vector Tile of a boundary layer, with the choropleth figures.

A tile holds one MVT layer named after the boundary layer (``borough``,
``ward``, ``snt`` or ``lsoa``): each area that touches the tile, clipped to it
(plus a small buffer so strokes join across tile edges), simplified for the
zoom and quantised to the tile's 4096 x 4096 grid. Its properties are the
same figures as ``/api/v1/choropleth`` for the same crime type and period:
they come from :func:`crimemap.figures.area_figures` and
:func:`crimemap.downloads.choropleth_properties`, the code behind that API.
From ``points_min_zoom`` on, a second layer ``points`` holds the crimes per
published police.uk location (:mod:`crimemap.tiles.points`).

A pure core module: a store in, bytes out. See docs/tiles.md.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass

import mapbox_vector_tile
import numpy as np
import shapely
from mapbox_vector_tile.encoder import on_invalid_geometry_make_valid

from crimemap import downloads
from crimemap import figures as fig
from crimemap import lru
from crimemap.crs import to_wgs84
from crimemap.tiles.grid import EXTENT, lonlat_to_mercator, tile_bounds, tile_size_m
from crimemap.tiles.points import POINTS_LAYER, tile_points

LAYERS = ("borough", "ward", "snt", "lsoa")
# The properties of an area feature (API.md's choropleth fields, less level),
# plus separate_force so a map can draw the City of London Police apart.
PROPERTIES = ("code", "name", "count", "population", "rate_per_1000", "ratio_to_london", "band", "no_data",
              "separate_force")
BUFFER = 64  # tile units (of 4096) drawn past each edge, so outlines meet across tiles

_lock = threading.Lock()
_GEOMETRY = OrderedDict()  # (store, layer id, loaded_at, zoom or None) -> LayerGeometry
_FIGURES = OrderedDict()  # (store, data version, layer id, crime, months, small count, k) -> {code: props}
_GEOMETRY_MAX = 48
_FIGURES_MAX = 32


@dataclass(frozen=True)
class TileOptions:
    """What shapes a tile besides its address and query (from the TILES_* settings).

    Attributes
    ----------
    max_zoom : int
        The deepest zoom served.
    points_min_zoom : int
        The zoom from which tiles carry the ``points`` layer.
    simplify_px : float
        Simplification tolerance in tile units (1/4096 of a tile side); 0
        keeps every vertex.
    full_detail_zoom : int
        From this zoom on the loaded polygons are used unsimplified.
    small_count, classify_k : int
        As the choropleth API uses them (SMALL_COUNT, CLASSIFY_K_DEFAULT).
    """

    max_zoom: int = 16
    points_min_zoom: int = 14
    simplify_px: float = 4.0
    full_detail_zoom: int = 15
    small_count: int = fig.SMALL_COUNT
    classify_k: int = 5

    @classmethod
    def from_config(cls, config):
        """Options from a settings mapping (``crimemap.config``)."""
        return cls(max_zoom=int(config["TILES_MAX_ZOOM"]), points_min_zoom=int(config["TILES_POINTS_MIN_ZOOM"]),
                   simplify_px=float(config["TILES_SIMPLIFY_PX"]),
                   full_detail_zoom=int(config["TILES_FULL_DETAIL_ZOOM"]),
                   small_count=int(config["SMALL_COUNT"]), classify_k=int(config["CLASSIFY_K_DEFAULT"]))


@dataclass
class LayerGeometry:
    """A layer's polygons in Web Mercator, with a spatial index."""

    codes: np.ndarray
    geoms: np.ndarray
    tree: shapely.STRtree
    bounds: tuple


def _store_key(store):
    return getattr(store, "path", id(store))


def _remember(cache, limit, key, value):
    return lru.remember(cache, limit, key, value, _lock)


def _recall(cache, key):
    return lru.recall(cache, key, _lock)


def simplify_tolerance(z, options):
    """Simplification tolerance in Web Mercator metres at zoom ``z`` (0: none)."""
    if options.simplify_px <= 0 or z >= options.full_detail_zoom:
        return 0.0
    return options.simplify_px * tile_size_m(z) / EXTENT


def _mercator(layer_frame):
    """The layer's polygons (EPSG:27700) in Web Mercator, through crimemap.crs for the datum step."""
    web = to_wgs84(layer_frame[["code", "geometry"]])
    geoms = shapely.transform(web.geometry.to_numpy(),
                              lambda c: np.column_stack(lonlat_to_mercator(c[:, 0], c[:, 1])))
    return web["code"].to_numpy(dtype=object), geoms


def _simplify(geoms, tolerance):
    """Simplify as one coverage, so neighbours keep shared edges; each polygon alone if that fails."""
    try:
        out = shapely.coverage_simplify(geoms, tolerance)
    except shapely.errors.GEOSException:
        out = shapely.simplify(geoms, tolerance, preserve_topology=True)
    return shapely.make_valid(out)


def layer_geometry(store, layer, z, options):
    """The layer's polygons for zoom ``z``: Web Mercator, simplified for the zoom, indexed.

    Cached in the process per layer (id and ``loaded_at``) and simplification.
    """
    tolerance = simplify_tolerance(z, options)
    key = (_store_key(store), layer["id"], layer.get("loaded_at"), round(tolerance, 6))
    found = _recall(_GEOMETRY, key)
    if found is not None:
        return found
    base_key = key[:3] + (0.0,)
    base = _recall(_GEOMETRY, base_key)
    if base is None:
        codes, geoms = _mercator(store.areas(layer["id"], with_geometry=True))
        base = _remember(_GEOMETRY, _GEOMETRY_MAX, base_key,
                         LayerGeometry(codes, geoms, shapely.STRtree(geoms), tuple(shapely.total_bounds(geoms))))
    if tolerance == 0.0:
        return base
    geoms = _simplify(base.geoms, tolerance)
    return _remember(_GEOMETRY, _GEOMETRY_MAX, key,
                     LayerGeometry(base.codes, geoms, shapely.STRtree(geoms), base.bounds))


def area_properties(store, level, months, crime, options):
    """Tile properties of every area of a level: code to a dict of :data:`PROPERTIES`.

    The choropleth API's figures (same function, same settings); a value
    that is null there is left out here, as MVT has no null.
    """
    layer = fig.get_layer(store, level)
    key = (_store_key(store), str(store.data_version()), layer["id"], level, crime, tuple(months),
           options.small_count, options.classify_k)
    found = _recall(_FIGURES, key)
    if found is not None:
        return found
    figures = fig.area_figures(store, level, months, crime, with_geometry=False, k=options.classify_k,
                               small_count=options.small_count)
    out = {}
    for row in downloads.choropleth_properties(figures, figures.attrs):
        out[row["code"]] = {name: row[name] for name in PROPERTIES if row.get(name) is not None}
    return _remember(_FIGURES, _FIGURES_MAX, key, out)


def _buffered(bounds, z):
    pad = BUFFER * tile_size_m(z) / EXTENT
    minx, miny, maxx, maxy = bounds
    return (minx - pad, miny - pad, maxx + pad, maxy + pad)


def _overlaps(a, b):
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def tile_layers(store, level, z, x, y, months, crime, options):
    """The MVT layers of tile z/x/y, before encoding (what :func:`build_tile` encodes).

    Returns
    -------
    list of dict
        ``{"name", "features": [{"geometry", "properties", "id"}]}`` with
        geometry in Web Mercator metres; empty when the tile misses the layer.
    """
    layer = fig.get_layer(store, level)
    bounds = tile_bounds(z, x, y)
    box = _buffered(bounds, z)
    base = layer_geometry(store, layer, options.full_detail_zoom, options)
    if not _overlaps(box, base.bounds):
        return []
    geometry = layer_geometry(store, layer, z, options)
    hits = np.sort(geometry.tree.query(shapely.box(*box)))
    if not len(hits):
        return []
    props = area_properties(store, level, months, crime, options)
    clipped = shapely.clip_by_rect(geometry.geoms[hits], *box)
    features = []
    for i, geom in zip(hits, clipped):
        if geom is None or geom.is_empty or geom.area <= 0:
            continue
        polygons = shapely.get_parts(geom)
        polygons = polygons[shapely.get_type_id(polygons) == 3]  # a clip can leave lines along the edge
        if not len(polygons):
            continue
        shape = polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(list(polygons))
        code = geometry.codes[i]
        features.append({"geometry": shape, "properties": props.get(code, {"code": code, "no_data": True}),
                         "id": int(i) + 1})
    layers = [{"name": level, "features": features}] if features else []
    if z >= options.points_min_zoom:
        points = tile_points(store, box, months, crime)
        if points:
            layers.append({"name": POINTS_LAYER, "features": points})
    return layers


def build_tile(store, level, z, x, y, months, crime="all-crime", options=None):
    """One Mapbox Vector Tile of a boundary layer, as bytes.

    Parameters
    ----------
    store : crimemap.store.Store
    level : str
        One of :data:`LAYERS`.
    z, x, y : int
        A checked tile address (:func:`crimemap.tiles.grid.parse_address`).
    months : list of str
        The period, as the choropleth API resolves it.
    crime : str
        A crime type id.
    options : TileOptions, optional

    Returns
    -------
    bytes
        The encoded tile; empty (zero bytes) when nothing falls in it.

    Raises
    ------
    BadQuery, UnknownArea
        For an unknown level or crime type, or a level with no boundaries loaded.
    """
    options = options or TileOptions()
    layers = [quantised for layer in tile_layers(store, level, z, x, y, months, crime, options)
              if (quantised := quantise(layer, tile_bounds(z, x, y)))["features"]]
    if not layers:
        return b""
    # Coordinates are already whole tile units with y up; the encoder flips y to MVT's y down.
    return mapbox_vector_tile.encode(layers, default_options={
        "extents": EXTENT, "on_invalid_geometry": on_invalid_geometry_make_valid})


def quantise(layer, bounds):
    """A layer's features in whole tile units (0 to 4096 across the tile, y up), keeping polygons valid.

    Vectorised with shapely (the encoder's own quantize_bounds maps each
    vertex in Python); a polygon smaller than one unit disappears.
    """
    features = layer["features"]
    if not features:
        return layer
    minx, miny, maxx, maxy = bounds
    scale = EXTENT / (maxx - minx)
    geoms = np.array([f["geometry"] for f in features], dtype=object)
    moved = shapely.transform(geoms, lambda c: (c - (minx, miny)) * scale)
    snapped = shapely.set_precision(moved, 1.0)
    kept = []
    for feature, geom in zip(features, snapped):
        if geom is None or geom.is_empty:
            continue
        kept.append(dict(feature, geometry=geom))
    return {"name": layer["name"], "features": kept}
