"""Mapbox Vector Tiles of the boundary layers with their figures (docs/tiles.md).

- :mod:`crimemap.tiles.grid`: Web Mercator tile arithmetic and address checks;
- :mod:`crimemap.tiles.build`: one tile (areas clipped, simplified per zoom,
  quantised; the choropleth figures as properties; crime points at high zoom);
- :mod:`crimemap.tiles.points`: crimes per published police.uk location;
- :mod:`crimemap.tiles.cache`: the disk cache under ``tiles/`` and pre-building.

A pure core package: it never imports Flask.
"""

from crimemap.tiles.build import LAYERS, PROPERTIES, TileOptions, build_tile, tile_layers
from crimemap.tiles.cache import TileCache, prebuild
from crimemap.tiles.grid import EXTENT, parse_address, tile_bounds, tiles_covering
from crimemap.tiles.points import POINTS_LAYER

__all__ = ["EXTENT", "LAYERS", "POINTS_LAYER", "PROPERTIES", "TileCache", "TileOptions", "build_tile", "parse_address",
           "prebuild", "tile_bounds", "tile_layers", "tiles_covering"]
