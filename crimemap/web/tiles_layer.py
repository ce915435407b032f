"""The map hook for layers too heavy for GeoJSON: draw them from vector tiles.

A map page inlines every area as GeoJSON; past ``TILES_GEOJSON_MAX_AREAS``
areas (London's 4,835 LSOAs, or national wards) that is megabytes of page,
so :func:`crimemap.web.maps.choropleth` asks :func:`too_heavy` and, when it
says so, draws the layer with Leaflet.VectorGrid (``static/vendor``) from
``/tiles/<layer>/{z}/{x}/{y}.pbf`` instead, with the same shading, legend
and tooltips. The layer's script is ``templates/_tiles_layer.html``.
"""

from branca.element import MacroElement
from folium.elements import JSCSSMixin
from flask import current_app, render_template, url_for
from jinja2 import Template

from crimemap import figures as fig
from crimemap.tiles.build import TileOptions, layer_geometry
from crimemap.tiles.points import mercator_to_lonlat

VECTORGRID_ASSET = "leaflet_vectorgrid"  # its file: crimemap.web.maps.LOCAL_ASSETS


class VectorTiles(JSCSSMixin, MacroElement):
    """A folium element that adds a Leaflet.VectorGrid layer of our tiles to its map."""

    _template = Template("{% macro script(this, kwargs) %}{{ this.code }}{% endmacro %}")
    default_js = [(VECTORGRID_ASSET, "Leaflet.VectorGrid.bundled.min.js")]

    def __init__(self, code):
        super().__init__()
        self._name = "VectorTiles"
        self.code = code


def too_heavy(n_areas, config=None):
    """True when a layer of ``n_areas`` areas should be drawn from tiles, not GeoJSON."""
    config = config if config is not None else current_app.config
    limit = config.get("TILES_GEOJSON_MAX_AREAS")  # None (not configured): always GeoJSON
    return limit is not None and int(n_areas) > int(limit)


def tile_url(level, crime, months):
    """The layer's tile URL template, ``/tiles/<level>/{z}/{x}/{y}.pbf?crime=&from=&to=``."""
    base = url_for("tiles.tile", layer=level, z=0, x=0, name="0.pbf")
    query = url_for("tiles.tile", layer=level, z=0, x=0, name="0.pbf", crime=crime,
                    **({"from": months[0], "to": months[-1]} if months else {}))[len(base):]
    return base[:-len("0/0/0.pbf")] + "{z}/{x}/{y}.pbf" + query


def layer_bounds(store, level):
    """The layer's extent as ``(west, south, east, north)`` degrees."""
    options = TileOptions.from_config(current_app.config)
    minx, miny, maxx, maxy = layer_geometry(store, fig.get_layer(store, level), options.full_detail_zoom,
                                            options).bounds
    west, south = mercator_to_lonlat(minx, miny)
    east, north = mercator_to_lonlat(maxx, maxy)
    return west, south, east, north


def add_to(fmap, level, crime, months):
    """Add the tile layer of ``level`` for a crime type and period to a folium map; returns the map."""
    from crimemap.web import maps

    area_url = url_for("pages.area", level=level, code="CODE") if level in fig.LEVELS else ""
    code = render_template("_tiles_layer.html", map_name=fmap.get_name(), level=level,
                           url=tile_url(level, crime, months), colours=maps.BAND_COLOURS,
                           labels=maps.BAND_LABELS, no_data_fill=maps.NO_DATA_FILL, city_fill=maps.CITY_FILL,
                           city_label=maps.CITY_LABEL, area_url=area_url,
                           max_zoom=int(current_app.config["TILES_MAX_ZOOM"]))
    VectorTiles(code).add_to(fmap)
    return fmap


def for_figures(fmap, figures):
    """:func:`add_to` for the figures a choropleth was asked to draw (the hook in maps.choropleth)."""
    attrs = figures.attrs
    level = figures["level"].iloc[0] if len(figures) else attrs["layer"]["level"]  # snt, not its ward layer
    return add_to(fmap, level, attrs["category"], attrs["months"])


def tile_map(bounds, level, crime, months, base_tiles="", base_attribution=""):
    """A folium map of one layer drawn from tiles, fitted to ``bounds`` (west, south, east, north)."""
    from crimemap.web import maps

    return add_to(maps._base_map(bounds, base_tiles, base_attribution), level, crime, months)
