"""Postcode routes of the JSON API, version 1 (contract: ../shared/API.md).

- ``GET /api/v1/postcodes/<postcode>``: the postcode's point and its ward, SNT
  and borough (the loaded polygons that contain it, so search and map agree).
- ``GET /api/v1/postcodes?lat=&lon=``: the nearest postcodes to a point.
- ``GET /api/v1/postcodes/<partial>/autocomplete``: postcodes that start with
  a partial one, for the search box.

The lookup itself is :mod:`crimemap.postcodes`; this module only reads the
request, calls it and wraps the answer in ``{"status": 200, "result": ...}``.
Errors are typed (:mod:`crimemap.errors`) and rendered by the one handler in
:mod:`crimemap.web.errors`.

The commonest request, a ``GET`` of one known postcode, is answered by
:class:`FastLookup`, a WSGI wrapper around the Flask app, without Flask's
request machinery: the same body, status and headers (ETag, Cache-Control,
the security headers, ``X-Data-Version``, ``X-Request-Id``) for much less
CPU (docs/postcodes.md, "Speed over HTTP"). Anything else it hands to
Flask untouched: errors, conditional requests, query strings, HEAD.
``POSTCODES_FAST_PATH = False`` turns it off.
"""

import logging
import math
import time
import uuid

from flask import Blueprint, current_app, jsonify, request
from werkzeug.http import http_date

from crimemap.errors import BadQuery, CrimemapError
from crimemap.postcodes import get_lookup, resolve
from crimemap.web import get_store
from crimemap.web.errors import _REQUEST_ID, REQUEST_ID_HEADER

log = logging.getLogger("crimemap.web")

bp = Blueprint("postcodes_api", __name__, url_prefix="/api/v1")
# Rules keep merge_slashes=False: ".../postcodes//autocomplete" holds an empty
# postcode and answers 404 here, instead of a redirect to another route.

# Longest text quoted back in an error message: enough to recognise, never a
# way to make the server echo megabytes.
SHOWN_MAX = 40


class LookupUnavailable(CrimemapError):
    """No postcode lookup is loaded on this server (``crimemap postcodes refresh``)."""

    status = 503

    def __init__(self, message="Postcode lookup unavailable: no postcode lookup is loaded on this server", **extra):
        super().__init__(message, **extra)


def current_lookup():
    """The loaded postcode lookup, or None (process-wide cache in the core)."""
    return get_lookup(current_app.config, get_store())


def require_lookup():
    """The loaded postcode lookup; :class:`LookupUnavailable` (503) when none is."""
    lookup = current_lookup()
    if lookup is None:
        raise LookupUnavailable()
    return lookup


def shown(value):
    """A user's value, quoted and cut short, for an error message."""
    text = str(value)
    return repr(text if len(text) <= SHOWN_MAX else text[:SHOWN_MAX] + "…")


def int_arg(name, default, maximum, minimum=1):
    """A whole-number query parameter from ``minimum`` to ``maximum``; ``default`` when absent.

    Raises
    ------
    BadQuery
        Naming the bad value and the allowed range.
    """
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        raise BadQuery(f"bad {name} {shown(raw)}; expected a whole number from {minimum} to {maximum}")
    return value


def setting(key):
    """A setting of the running app (the defaults are in crimemap/config.py)."""
    return current_app.config[key]


def float_arg(name, low, high, required=True):
    """A finite decimal query parameter within ``low`` .. ``high``."""
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        if required:
            raise BadQuery(f"{name} is required: decimal degrees (WGS84) from {low:g} to {high:g}")
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise BadQuery(f"bad {name} {shown(raw)}; expected decimal degrees (WGS84) from {low:g} to {high:g}")
    return value


@bp.get("/postcodes/<postcode>", merge_slashes=False)
def postcode(postcode):
    """One postcode: its point, ward, SNT and borough (404 with a way forward when unknown)."""
    return jsonify({"status": 200, "result": resolve(require_lookup(), postcode)})


@bp.get("/postcodes", merge_slashes=False)
def nearest():
    """The postcodes nearest to ``lat``/``lon``, closest first, each with its areas and distance."""
    lookup = require_lookup()
    lat = float_arg("lat", -90, 90)
    lon = float_arg("lon", -180, 180)
    # The maxima are the lookup's caps (POSTCODES_NEAREST_MAX, POSTCODES_RADIUS_MAX_M).
    limit = int_arg("limit", int(setting("POSTCODES_NEAREST_DEFAULT")), lookup.nearest_max)
    radius = int_arg("radius", int(setting("POSTCODES_RADIUS_DEFAULT_M")), int(lookup.radius_max_m), minimum=0)
    result = []
    for row in lookup.nearest(lat, lon, limit=limit, radius_m=radius):
        item = resolve(lookup, row["postcode"])
        item["distance_m"] = row["distance"]
        result.append(item)
    return jsonify({"status": 200, "result": result})


@bp.get("/postcodes/<partial>/autocomplete", merge_slashes=False)
def autocomplete(partial):
    """Postcodes that start with ``partial`` (any case, any spacing), in order."""
    lookup = require_lookup()
    limit = int_arg("limit", int(setting("POSTCODES_AUTOCOMPLETE_DEFAULT")), lookup.autocomplete_max)
    return jsonify({"status": 200, "result": lookup.autocomplete(partial, limit)})


# ------------------------------------------------------------------ the fast path

FAST_PREFIX = "/api/v1/postcodes/"
# Headers that make a request conditional or partial: such a request goes through Flask (caching.py, werkzeug).
_CONDITIONAL = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_UNMODIFIED_SINCE",
                "HTTP_IF_RANGE", "HTTP_RANGE")


class FastLookup:
    """WSGI wrapper answering ``GET /api/v1/postcodes/<postcode>`` for a known postcode without Flask.

    The route's answer is the lookup's, so Flask's dispatch, its request and
    response objects and nine before/after-request hooks cost far more than the
    lookup itself (about 250 µs against 10 µs). This wrapper builds the same
    200 answer directly: the body as ``jsonify`` writes it, ``ETag`` and
    ``Cache-Control`` (:mod:`crimemap.web.caching`), the security headers
    (:func:`crimemap.web.headers.api_security_headers`), ``X-Data-Version``
    and ``X-Request-Id`` (:mod:`crimemap.web.errors`). The data and lookup
    versions in ``X-Data-Version`` and the ETag are those the answer was
    built from, as the lookup last read them (``POSTCODES_RECHECK_S``), so a
    request costs no store query. Every other request,
    and any request whose answer is not a plain 200 (an invalid, unknown or
    terminated postcode, no lookup loaded, a store error), goes to Flask,
    which renders it as before.

    Parameters
    ----------
    app : flask.Flask
        The app; read for its settings, store and ETag fingerprint.
    wrapped : callable
        The WSGI callable to hand other requests to (Flask's ``wsgi_app``).
    """

    def __init__(self, app, wrapped):
        from crimemap.web import caching, headers

        self.app = app
        self.caching = caching
        self.wrapped = wrapped
        hsts = int(app.config["HSTS_MAX_AGE_S"])
        self.security = {secure: headers.api_security_headers(secure, hsts) for secure in (False, True)}
        self.data_version_header = headers.DATA_VERSION_HEADER

    def __call__(self, environ, start_response):
        raw = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING") or FAST_PREFIX not in raw:
            return self.wrapped(environ, start_response)
        try:  # Flask routes on this same decoded path (werkzeug's Request.path)
            path = "/" + raw.encode("latin1").decode(errors="replace").lstrip("/")
        except UnicodeError:  # not a WSGI (latin-1) string: Flask decides
            return self.wrapped(environ, start_response)
        postcode = path[len(FAST_PREFIX):]
        if not path.startswith(FAST_PREFIX) or not postcode or "/" in postcode \
                or any(key in environ for key in _CONDITIONAL):
            return self.wrapped(environ, start_response)
        try:
            status, headers, body = self.answer(environ, path, postcode)
        except CrimemapError:  # invalid, unknown or terminated: Flask renders the error with its way forward
            return self.wrapped(environ, start_response)
        except Exception:  # noqa: BLE001 - Flask answers it, and logs its own error if it fails too
            log.warning("postcode fast path failed for %r; answered through Flask", path, exc_info=True)
            return self.wrapped(environ, start_response)
        if status is None:
            return self.wrapped(environ, start_response)
        start_response(status, headers)
        return [body]

    def answer(self, environ, path, postcode):
        """``(status, headers, body)`` of a 200 answer, or ``(None, None, None)`` to leave it to Flask."""
        app, caching = self.app, self.caching
        config = app.config
        store = app.extensions["crimemap"]["store"]
        lookup = get_lookup(config, store)
        if lookup is None:
            return None, None, None
        body = _dumps({"status": 200, "result": resolve(lookup, postcode)})
        # The versions this answer came from: the store data its areas were joined from and the postcode
        # lookup's own, as the lookup last read them (at most POSTCODES_RECHECK_S ago); no query here.
        data = getattr(lookup.areas, "data_version", None)
        if data is None:
            data = store.meta().get("data_version", "0")
        etag = caching.etag_for(app, data, lookup.version, path)
        given = environ.get("HTTP_X_REQUEST_ID", "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   ("ETag", f'"{etag}"'), ("Cache-Control", caching.cache_control_value(config)),
                   ("Date", _http_date()),  # as werkzeug's make_conditional adds it
                   *self.security[environ.get("wsgi.url_scheme") == "https"],
                   (self.data_version_header, str(data)), (REQUEST_ID_HEADER, rid)]
        return "200 OK", headers, body


_DATE = [0, ""]  # [second, its HTTP date]: one formatting per second, not per request


def _http_date():
    now = int(time.time())
    second, text = _DATE
    if second != now:
        text = http_date(now)
        _DATE[:] = [now, text]  # threads may race here: both write the same second's date
    return text


def _dumps(obj):
    """``obj`` as Flask's ``jsonify`` writes it (sorted keys, compact, ASCII, a final newline), with orjson."""
    import orjson

    body = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
    if not body.isascii():  # jsonify escapes non-ASCII characters (\uXXXX); orjson writes UTF-8
        import json

        body = (json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")
    return body


def install_fast_path(app):
    """Put :class:`FastLookup` in front of ``app``'s WSGI callable, unless ``POSTCODES_FAST_PATH`` is off.

    Call it before any middleware that rewrites the environ (``ProxyFix``), so
    the fast path sees the same scheme and path Flask does.
    """
    if app.config.get("POSTCODES_FAST_PATH", True):
        app.wsgi_app = FastLookup(app, app.wsgi_app)
