"""Vector tiles: ``GET /tiles/<layer>/<z>/<x>/<y>.pbf`` and the tile-drawn map page.

The tile's figures are the choropleth API's for the same ``crime``, ``from``
and ``to`` (same defaults, same checks). A bad address is a 400 (not a whole
number) or a 404 (past the deepest zoom, outside the grid, an unknown layer,
anything else under ``/tiles/``), always JSON, and no path is built from
anything but checked integers and a fixed list of layer names
(:mod:`crimemap.tiles.cache`). Tiles carry the ETag and Cache-Control of
:mod:`crimemap.web.caching`, keyed on the data version, and a current
``If-None-Match`` gets 304 before any tile is read or built.

``GET /map/<level>`` is a map of any boundary layer drawn from the tiles,
the only map of LSOAs (docs/tiles.md).
"""

import logging

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from crimemap import figures as fig
from crimemap.errors import BadQuery, CrimemapError, NotFound
from crimemap.tiles import LAYERS, TileCache, TileOptions, parse_address
from crimemap.tiles.cache import root_from_config
from crimemap.web import caching, get_store
from crimemap.web.errors import request_id

bp = Blueprint("tiles", __name__)
log = logging.getLogger("crimemap.web")
MVT = "application/vnd.mapbox-vector-tile"
MAP_LEVELS = {"borough": "Boroughs", "ward": "Wards", "snt": "Safer Neighbourhood Team areas",
              "lsoa": "LSOAs (Lower Layer Super Output Areas)"}


def _is_tile_request():
    return request.path.startswith("/tiles/")


def _error(status, message):
    if _is_tile_request():
        return jsonify({"status": status, "error": message}), status
    return render_template("error.html", status=status, message=message), status


@bp.errorhandler(CrimemapError)
def _crimemap_error(exc):
    return _error(exc.status, exc.message)


@bp.errorhandler(HTTPException)
def _http_error(exc):
    return _error(exc.code, exc.description if exc.code != 404 else "Not found")


@bp.errorhandler(Exception)
def _unexpected(exc):
    rid = request_id()  # the one X-Request-Id carries, as for every other route
    log.exception("unhandled error, request id %s, %s %s", rid, request.method, request.path)
    return _error(500, f"Internal server error (request id {rid})")


@bp.before_request
def _revalidate():
    return caching.not_modified() if _is_tile_request() else None


@bp.after_request
def _label(response):
    if _is_tile_request() and response.status_code == 200:
        response.set_etag(caching.current_etag())
        caching.cache_control(response)
        response.headers.setdefault("Access-Control-Allow-Origin", "*")
    return response


def tile_query(store):
    """``(crime, months)`` from the request, checked as the choropleth API checks them."""
    cat = fig.catalog(store)
    crime = request.args.get("crime") or fig.ALL_CRIME
    cat.registry().get(crime)  # 400 for an unknown id, listing the known ones
    config = current_app.config
    months = fig.resolve_period(request.args.get("from"), request.args.get("to"), cat.latest,
                                config["QUERY_MONTHS_DEFAULT"], config["QUERY_MONTHS_MAX"])
    return crime, months


def tile_cache():
    """The app's tile cache (TILES_DIR)."""
    config = current_app.config
    return TileCache(root_from_config(config), config["TILES_CACHE_QUERIES_MAX"])


@bp.get("/tiles/<layer>/<z>/<x>/<name>")
def tile(layer, z, x, name):
    """One Mapbox Vector Tile of a boundary layer with its figures (docs/tiles.md)."""
    if layer not in LAYERS:
        raise NotFound(f"unknown tile layer {layer!r}; expected one of {', '.join(LAYERS)}")
    if not name.endswith(".pbf"):
        raise NotFound("tile addresses end in .pbf: /tiles/<layer>/<z>/<x>/<y>.pbf")
    options = TileOptions.from_config(current_app.config)
    z, x, y = parse_address(z, x, name[:-len(".pbf")], options.max_zoom)
    store = get_store()
    crime, months = tile_query(store)
    data, hit = tile_cache().get_or_build(store, layer, z, x, y, months, crime, options)
    response = Response(data, mimetype=MVT)
    response.headers["X-Tile-Cache"] = "hit" if hit else "miss"
    return response


@bp.route("/tiles/", defaults={"rest": ""})
@bp.route("/tiles/<path:rest>")
def not_a_tile(rest):
    """Anything else under /tiles/ (a traversal attempt, a missing part): 404 JSON."""
    raise NotFound("no such tile; tile addresses are /tiles/<layer>/<z>/<x>/<y>.pbf with layer one of "
                   + ", ".join(LAYERS))


@bp.get("/map/<level>")
def tile_map(level):
    """A map of one boundary layer drawn from vector tiles, with its legend."""
    from crimemap.web import maps, tiles_layer

    if level not in LAYERS:
        raise BadQuery(f"unknown level {level!r}; expected one of {', '.join(LAYERS)}")
    store = get_store()
    crime, months = tile_query(store)
    if store.layer(level) is None or not months:
        raise NotFound(f"no {level} boundaries or no crime data are loaded yet")
    figures = fig.area_figures(store, level, months, crime, with_geometry=False,
                               small_count=current_app.config["SMALL_COUNT"])
    bounds = tiles_layer.layer_bounds(store, level)
    fmap = tiles_layer.tile_map(bounds, level, crime, months, current_app.config.get("TILE_URL", ""),
                                current_app.config.get("TILE_ATTRIBUTION", ""))
    return render_template("map_tiles.html", map=maps.render_map(fmap), legend=maps.legend(figures), level=level,
                           level_name=MAP_LEVELS[level], crime_label=fig.crime_label(crime), months=months,
                           areas=len(figures), london=figures.attrs["london"],
                           data_version=figures.attrs["data_version"], fmt_count=maps.fmt_count,
                           fmt_rate=maps.fmt_rate)
