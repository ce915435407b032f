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
"""

import math

from flask import Blueprint, current_app, jsonify, request

from crimemap.errors import BadQuery, CrimemapError
from crimemap.postcodes import get_lookup, resolve
from crimemap.web import get_store

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
