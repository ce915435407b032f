"""Configuration defaults and the one function that layers them.

Order (later wins): these defaults, the instance folder's ``crimemap.cfg``
(Python syntax, upper-case names), ``CRIMEMAP_*`` environment variables, then
the mapping a caller (a test, the CLI) passes in. Nothing here runs at import
time beyond defining the defaults.
"""

import json
import os
from pathlib import Path

DEFAULTS = {
    # Where the data lives: the store, caches, logs.
    "INSTANCE": "instance",
    # The store (docs/postgis.md). Empty: the embedded SQLite file in the
    # instance folder. "postgresql://user@host:port/db": PostgreSQL with
    # PostGIS (every write goes there).
    "DATABASE_URL": "",
    # The PostgreSQL schema that holds this instance's tables, created on the
    # first write. "instance" derives one from the instance folder's path
    # ("i_" + 16 hex digits), so one database can hold many instances.
    "DATABASE_SCHEMA": "crimemap",
    # Optional PostgreSQL read replica for read-only stores (web workers);
    # empty: they read from DATABASE_URL too.
    "DATABASE_READ_URL": "",
    # PostgreSQL connections per process and database (a psycopg pool), and
    # the seconds to wait for one before a request is answered 503.
    "DATABASE_POOL_MAX": 10,
    "DATABASE_TIMEOUT_S": 10.0,
    # Spatial join: edge length in metres of the grid that answers most
    # point-in-polygon questions without a geometry test (see docs/join.md).
    "JOIN_GRID_CELL_M": 50.0,
    # Points per chunk when streaming large files through the join.
    "INGEST_CHUNK_ROWS": 200_000,
    # Worker threads for the join (shapely releases the GIL).
    "JOIN_THREADS": 2,
    # Maximum rejected rows listed one by one in an ingest report.
    "REPORT_MAX_LISTED": 20,
    # The date range a query may span, in months (default and maximum).
    "QUERY_MONTHS_DEFAULT": 12,
    "QUERY_MONTHS_MAX": 120,
    # Counts under this many crimes are flagged ``small_count``: rates and %
    # changes from them are unreliable (docs/uncertainty.md).
    "SMALL_COUNT": 20,
    # Classes that classify=quantiles|natural-breaks use (the query's k),
    # default and maximum.
    "CLASSIFY_K_DEFAULT": 5,
    "CLASSIFY_K_MAX": 9,
    # Web maps and the choropleth API simplify each layer as one coverage
    # (neighbours keep their shared edges) with this tolerance in metres of
    # British National Grid; 20 m is finer than a screen shows at city zoom
    # and keeps the ward map under 500 KB gzipped. 0 turns it off.
    "WEB_SIMPLIFY_M": 20.0,
    # Progress against a target on area summaries: the baseline ("2012/13" is
    # the financial year April 2012 to March 2013, "2012" a calendar year,
    # "2012-04/2013-03" any span) and the change aimed for, in percent. An
    # empty baseline turns targets off.
    "TARGET_BASELINE_YEAR": "2012/13",
    "TARGET_PCT": -20.0,
    # An area page's map draws the crimes at this many published police.uk
    # locations at most (those with the most crimes), so a borough page stays
    # light; the page says when some are left out.
    "AREA_MAP_POINTS_MAX": 1500,
    # Label every page as synthetic demo data.
    "DEMO": False,
    # Base map tiles for the maps, a Leaflet URL template such as
    # "https://tiles.example.org/{z}/{x}/{y}.png". Empty by default: crimemap
    # loads nothing from other servers unless told to, so maps work offline
    # and say "no base map configured". Tile servers require the attribution.
    "TILE_URL": "",
    "TILE_ATTRIBUTION": "",
    # Postcode API sizes a request can choose, each a default and a maximum
    # (postcodes.io's defaults): nearest postcodes to a point and the search
    # radius in metres, autocomplete results, and postcodes or points in one
    # bulk request. The maxima of nearest, radius and autocomplete are the
    # lookup's POSTCODES_NEAREST_MAX, POSTCODES_RADIUS_MAX_M and
    # POSTCODES_AUTOCOMPLETE_MAX.
    "POSTCODES_NEAREST_DEFAULT": 10,
    "POSTCODES_RADIUS_DEFAULT_M": 100,
    "POSTCODES_AUTOCOMPLETE_DEFAULT": 10,
    "POSTCODES_BULK_MAX": 100,
    # Embeds (docs/embeds.md): the origins that may show /embed pages in a
    # frame (CSP frame-ancestors sources, space-separated: * for any site,
    # or e.g. "https://news.example.org https://*.police.uk"); every other
    # page may never be framed. The iframe size the "Embed this map" button
    # and oEmbed give, and the largest PNG side in pixels.
    "EMBED_FRAME_ANCESTORS": "*",
    "EMBED_WIDTH": 720,
    "EMBED_HEIGHT": 600,
    "EMBED_PNG_MAX_PX": 2400,
    # The most embed snapshots frozen per data version (any period and crime
    # type can be asked for, so requests alone must not fill the disk); past
    # it an embed is served with a note that it is not kept.
    "EMBED_SNAPSHOTS_MAX": 5000,
    # Server-side answer cache (docs/caching.md): computed pages, maps and
    # API answers kept on disk per data version, shared by every worker.
    # The most entries kept (0 turns the cache off), the largest answer kept
    # in bytes, and the folder (empty: <INSTANCE>/cache/answers).
    "FIGURE_CACHE_MAX_ENTRIES": 2000,
    "FIGURE_CACHE_ENTRY_MAX_BYTES": 8_388_608,
    "FIGURE_CACHE_DIR": "",
    # Proxies in front of the server whose X-Forwarded-For/-Proto/-Host/-Port
    # headers are believed (werkzeug's ProxyFix); 0 believes none, which is
    # right when clients reach crimemap directly. HSTS max-age in seconds,
    # sent only on requests that came over TLS; 0 sends none.
    "PROXY_FIX": 0,
    "HSTS_MAX_AGE_S": 31_536_000,
    # The largest request body in bytes (a police.uk POST poly, a postcodes.io
    # bulk lookup); a larger one is a 413 before it is read.
    "REQUEST_MAX_BYTES": 1_048_576,
    # Web server.
    "HOST": "127.0.0.1",
    "PORT": 8000,
    "WORKERS": 2,
    "THREADS": 4,
    # gunicorn's access log: "-" writes one line per request to standard
    # output, a path appends to that file; empty writes none (the default:
    # the proxy in front usually logs requests, and a line costs about a
    # quarter of a postcode lookup's server CPU; docs/postcodes.md).
    "ACCESS_LOG": "",
    # Postcode lookup (docs/postcodes.md). Where `crimemap postcodes schedule`
    # refreshes from (a Code-Point Open, ONSPD or NSPL file/zip URL or path),
    # and how many hours apart.
    "POSTCODES_SOURCE_URL": "",
    "POSTCODES_REFRESH_HOURS": 24.0,
    # Refuse a new lookup with this many % fewer live postcodes than the
    # serving one (or missing this % of a sample of them) unless --force.
    "POSTCODES_MAX_SHRINK_PCT": 5.0,
    # Known postcodes sampled from the serving version to validate a new one.
    "POSTCODES_VALIDATE_SAMPLE": 1000,
    # Lookup versions kept on disk for rollback, the serving one included.
    "POSTCODES_KEEP_VERSIONS": 3,
    # Downloads: the largest accepted, and the seconds to wait for the server.
    "POSTCODES_DOWNLOAD_MAX_MB": 2048,
    "POSTCODES_DOWNLOAD_TIMEOUT_S": 60.0,
    # Seconds between checks for a new lookup version or new store data in
    # a running server (a stat and one query, not a reload).
    "POSTCODES_RECHECK_S": 1.0,
    # The largest sizes the lookup answers (their defaults are with the
    # postcode API keys above): nearest postcodes to a point, the search
    # radius in metres, autocomplete results; and how many known postcodes
    # are suggested for an unknown one.
    "POSTCODES_NEAREST_MAX": 100,
    "POSTCODES_RADIUS_MAX_M": 2000.0,
    "POSTCODES_AUTOCOMPLETE_MAX": 100,
    "POSTCODES_SUGGESTIONS": 5,
    # Answer GET /api/v1/postcodes/<pc> for a known postcode without Flask's
    # request machinery (the same body and headers for much less CPU;
    # docs/postcodes.md, "Speed over HTTP"). False sends every request
    # through Flask.
    "POSTCODES_FAST_PATH": True,
    # The police.uk-compatible API (docs/policeuk-api.md), with police.uk's
    # own limits: more crimes than this in one answer is a 503, a GET URL
    # longer than this is a 400, and a poly may have at most this many points.
    "POLICEUK_MAX_CRIMES": 10_000,
    "POLICEUK_GET_URL_MAX": 4094,
    "POLICEUK_POLY_MAX_VERTICES": 10_000,
    # Its rate limit per client address (a flask-limiter limit string; empty
    # turns it off) and where the counts live ("memory://" counts per server
    # process; a redis:// or memcached:// URI shares them). police.uk allows
    # 15 requests/s with bursts of 30 (a leaky bucket); "30 per 2 seconds" in
    # a moving window gives the same burst and long-run rate, never more.
    "POLICEUK_RATE_LIMIT": "30 per 2 seconds",
    "POLICEUK_RATE_LIMIT_STORAGE": "memory://",
    # Cache-Control max-age, in seconds, of JSON answers under /api and
    # /postcodes.io; their ETag changes with the data version, so a client
    # revalidates cheaply (304) after that (docs/openapi.md, "Caching").
    "API_CACHE_MAX_AGE_S": 300,
    # Vector tiles (docs/tiles.md). Where tiles are cached (empty: the
    # top-level tiles/ folder); the deepest zoom served; the zoom from which
    # tiles also carry the crimes per published location; the simplification
    # tolerance in tile units (1/4096 of a tile side; 4 is a quarter of a
    # screen pixel) and the zoom from which polygons are not simplified; the
    # most queries (crime type and period) cached per layer and data version;
    # and the map draws a layer with more areas than this from vector tiles
    # instead of GeoJSON.
    "TILES_DIR": "",
    "TILES_MAX_ZOOM": 16,
    "TILES_POINTS_MIN_ZOOM": 14,
    "TILES_SIMPLIFY_PX": 4.0,
    "TILES_FULL_DETAIL_ZOOM": 15,
    "TILES_CACHE_QUERIES_MAX": 50,
    "TILES_GEOJSON_MAX_AREAS": 2000,
}

CONFIG_FILE = "crimemap.cfg"


def _coerce(value, default):
    """Turn an environment string into the type of the default."""
    if isinstance(default, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, (list, dict)):
        return json.loads(value)
    return value


def load_settings(instance=None, overrides=None, environ=None):
    """Layer defaults, the instance file, the environment and overrides.

    Parameters
    ----------
    instance : str or Path, optional
        The instance folder. Falls back to ``CRIMEMAP_INSTANCE`` and then
        ``./instance``.
    overrides : dict, optional
        Values that win over everything else (tests, CLI flags).
    environ : mapping, optional
        The environment to read; ``os.environ`` by default.

    Returns
    -------
    dict
        Settings with ``INSTANCE`` as an absolute path string.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    settings = dict(DEFAULTS)
    folder = instance or overrides.get("INSTANCE") or environ.get("CRIMEMAP_INSTANCE") or DEFAULTS["INSTANCE"]
    folder = Path(folder).expanduser().resolve()
    cfg = folder / CONFIG_FILE
    if cfg.is_file():
        namespace = {}
        exec(compile(cfg.read_text(encoding="utf-8"), str(cfg), "exec"), namespace)
        settings.update({k: v for k, v in namespace.items() if k.isupper()})
    for key, default in DEFAULTS.items():
        env_value = environ.get(f"CRIMEMAP_{key}")
        if env_value is not None and key != "INSTANCE":
            try:
                settings[key] = _coerce(env_value, default)
            except ValueError as exc:
                raise ValueError(f"CRIMEMAP_{key}: {exc}") from None
    settings.update(overrides)
    settings["INSTANCE"] = str(folder)
    return settings
