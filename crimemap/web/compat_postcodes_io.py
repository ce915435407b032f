"""postcodes.io-compatible endpoints under ``/postcodes.io``.

An existing postcodes.io client pointed at ``https://<crimemap>/postcodes.io``
works unchanged: the same routes, the envelope ``{"status": 200, "result":
...}``, the same status codes and the same error messages. The messages and
limits are postcodes.io's own, from ideal-postcodes/postcodes.io:

- ``src/app/lib/errors.ts``: 404 "Invalid postcode" (sic: postcodes.io answers
  an invalid postcode with 404, where crimemap's own API says 400),
  "Postcode not found", "Terminated postcode not found", "Outcode not found",
  400 "Too many postcodes submitted. Up to 100 postcodes can be bulk requested
  at a time", "Invalid data submitted. You need to provide a JSON array",
  "Invalid longitude/latitude submitted", "Invalid result limit submitted",
  "Invalid lookup radius submitted", "No postcode query submitted. Remember to
  include query parameter", and the two "Invalid JSON ..." messages;
- ``src/app/controllers/postcodes_controller.ts``: bulk answers are
  ``[{query, result}]`` with ``result: null`` for an unknown postcode;
  validate answers ``result: true|false``; autocomplete, nearest and reverse
  geocoding answer ``result: null`` when nothing matches; ``GET /postcodes``
  takes ``lon``/``lat`` or ``longitude``/``latitude``, else ``q``/``query``;
- ``src/app/models/postcode.ts``: a limit or radius above the maximum is
  clamped, not refused; a non-number is refused;
- ``src/config/defaults.ts``: nearest limit 10 (max 100), radius 100 m (max
  2,000 m), search limit 10 (max 100), bulk lookups and geolocations at most
  100 (crimemap reads these from config: ``POSTCODES_*``);
- ``src/config/express.ts``: request bodies are JSON or form-encoded.

Routes: ``GET /postcodes/<pc>``, ``POST /postcodes`` (bulk lookup or bulk
reverse geocoding), ``GET /postcodes?lon=&lat=`` and ``?q=``,
``GET /postcodes/<pc>/validate``, ``/autocomplete``, ``/nearest``,
``GET /postcodes/lon/<lon>/lat/<lat>`` (and lat/lon), ``GET /outcodes/<oc>``
and ``GET /terminated_postcodes/<pc>``. Only London postcodes are loaded, so
a postcode outside London is "Postcode not found" here.
"""

import re

from flask import Blueprint, jsonify, request

from crimemap.errors import CrimemapError, PostcodeNotFound
from crimemap.postcodes import is_valid, normalise, resolve, to_postcodes_io
from crimemap.postcodes.resolve import COUNTRIES, borough_name
from crimemap.web.postcodes_api import require_lookup, setting

bp = Blueprint("postcodes_io", __name__, url_prefix="/postcodes.io")
# Rules keep merge_slashes=False: ".../postcodes//autocomplete" holds an empty
# postcode and answers 404 here, instead of a redirect to another route.

INVALID_POSTCODE = "Invalid postcode"
POSTCODE_NOT_FOUND = "Postcode not found"
TERMINATED_NOT_FOUND = "Terminated postcode not found"
OUTCODE_NOT_FOUND = "Outcode not found"
JSON_ARRAY_REQUIRED = "Invalid data submitted. You need to provide a JSON array"
INVALID_GEOLOCATION = "Invalid longitude/latitude submitted"
INVALID_LIMIT = "Invalid result limit submitted"
INVALID_RADIUS = "Invalid lookup radius submitted"
QUERY_REQUIRED = "No postcode query submitted. Remember to include query parameter"
INVALID_JSON = ("Invalid JSON submitted.\nYou need to submit a JSON object with an array of postcodes or "
                "geolocation objects.\nAlso ensure that Content-Type is set to application/json\n")
INVALID_JSON_QUERY = ("Invalid JSON query submitted. \nYou need to submit a JSON object with an array of postcodes "
                      "or geolocation objects.\nAlso ensure that Content-Type is set to application/json\n")


class PostcodesIoError(CrimemapError):
    """An error with postcodes.io's status and message (rendered as ``{status, error}``)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def too_many(what):
    limit = int(setting("POSTCODES_BULK_MAX"))
    return PostcodesIoError(400, f"Too many {what} submitted. Up to {limit} {what} can be bulk requested at a time")


@bp.after_request
def _headers(response):
    # postcodes.io answers every origin (src/config/express.ts), and browsers
    # call it straight from pages; nosniff keeps JSON from being read as HTML.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _truthy(value):
    # postcodes.io tests body members with JavaScript truthiness: [] and {} count.
    return value is not None and value is not False and value != "" and not (
        isinstance(value, (int, float)) and not isinstance(value, bool) and (value == 0 or value != value))


def _ok(result):
    return jsonify({"status": 200, "result": result})


def _find(lookup, text):
    """The postcodes.io object of a live postcode, or None (terminated ones are not in postcodes.io's table)."""
    postcode = normalise(text)
    if postcode is None:
        return None
    try:
        areas = resolve(lookup, postcode)
    except PostcodeNotFound:
        return None
    return to_postcodes_io(lookup.get(postcode), areas)


def _outcode(lookup, text):
    """postcodes.io's outcode object (src/app/models/outcode.ts), or None."""
    found = lookup.outcode(text)
    if found is None:
        return None
    ward_names = {a["code"]: a["name"] for a in (lookup.areas.info.get("ward", []) if lookup.areas else [])}
    return {"outcode": found["outcode"], "longitude": found["longitude"], "latitude": found["latitude"],
            "northings": found["northings"], "eastings": found["eastings"],
            "admin_district": [borough_name(code) or code for code in found["admin_district"]],
            "parish": [], "admin_county": [],
            "admin_ward": [ward_names.get(code, code) for code in found["admin_ward"]],
            "country": [COUNTRIES["E92000001"]] if found["postcodes"] else []}


# --- parameters, parsed as postcodes.io parses them -----------------------------------------


# JavaScript's parseInt and parseFloat, which postcodes.io applies to limit,
# radius, longitude and latitude: the longest numeric prefix counts ("12km" is
# 12), and no prefix at all is NaN.
_INT_PREFIX = re.compile(r"\s*([+-]?\d+)")
_FLOAT_PREFIX = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")


def _parse_int(raw):
    match = _INT_PREFIX.match(str(raw))
    if not match:
        return None
    digits = match.group(1)
    # More digits than any limit needs: a huge number (and never a megabyte-long int()).
    return int(digits) if len(digits.lstrip("+-")) <= 18 else (-1 if digits.startswith("-") else 10 ** 18)


def _parse_float(raw):
    match = _FLOAT_PREFIX.match(str(raw))
    return float(match.group(1)) if match else None


def _limit(raw, default, maximum):
    """postcodes.io's limit: default when absent, clamped to the maximum, 400 when not a number."""
    if raw is None or str(raw).strip() == "":
        return default
    limit = _parse_int(raw)
    if limit is None:
        raise PostcodesIoError(400, INVALID_LIMIT)
    return default if limit < 1 else min(limit, maximum)


def _radius(raw, maximum):
    if raw is None or str(raw).strip() == "":
        return float(setting("POSTCODES_RADIUS_DEFAULT_M"))
    radius = _parse_float(raw)
    if radius is None or radius < 0:
        raise PostcodesIoError(400, INVALID_RADIUS)
    return min(radius, maximum)


def _nearest(lookup, lon, lat, limit=None, radius=None):
    """postcodes.io's nearest postcodes: a list closest first, or None when none is in range."""
    lon, lat = _parse_float(lon), _parse_float(lat)
    if lon is None or lat is None or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise PostcodesIoError(400, INVALID_GEOLOCATION)
    limit = _limit(limit, int(setting("POSTCODES_NEAREST_DEFAULT")), lookup.nearest_max)
    rows = lookup.nearest(lat, lon, limit=limit, radius_m=_radius(radius, lookup.radius_max_m))
    result = []
    for row in rows:
        item = to_postcodes_io(row, resolve(lookup, row["postcode"]))
        item["distance"] = row["distance"]
        result.append(item)
    return result or None


def _search(lookup, text, limit):
    """postcodes.io's search and autocomplete: postcodes starting with ``text``, or None."""
    limit = _limit(limit, int(setting("POSTCODES_AUTOCOMPLETE_DEFAULT")), lookup.autocomplete_max)
    return lookup.autocomplete(text, limit) or None


# --- routes -------------------------------------------------------------------------------------


@bp.get("/postcodes/<postcode>", merge_slashes=False)
def lookup_postcode(postcode):
    """Look up one postcode."""
    if not is_valid(postcode.strip()):
        raise PostcodesIoError(404, INVALID_POSTCODE)
    result = _find(require_lookup(), postcode)
    if result is None:
        raise PostcodesIoError(404, POSTCODE_NOT_FOUND)
    return _ok(result)


@bp.get("/postcodes/<postcode>/validate", merge_slashes=False)
def validate(postcode):
    """True when the postcode exists (in the loaded lookup), else False."""
    return _ok(_find(require_lookup(), postcode) is not None)


@bp.get("/postcodes/<postcode>/autocomplete", merge_slashes=False)
def autocomplete(postcode):
    """Up to ``limit`` postcodes that start with a partial postcode."""
    return _ok(_search(require_lookup(), postcode, request.args.get("limit")))


@bp.get("/postcodes/<postcode>/nearest", merge_slashes=False)
def nearest_to_postcode(postcode):
    """The postcodes nearest to a postcode (itself first)."""
    lookup = require_lookup()
    found = _find(lookup, postcode)
    if found is None:
        raise PostcodesIoError(404, POSTCODE_NOT_FOUND)
    return _ok(_nearest(lookup, found["longitude"], found["latitude"], request.args.get("limit"),
                        request.args.get("radius")))


@bp.get("/postcodes/lon/<lon>/lat/<lat>", merge_slashes=False)
@bp.get("/postcodes/lat/<lat>/lon/<lon>", merge_slashes=False)
def nearest_by_path(lon, lat):
    """Reverse geocoding with the point in the path."""
    return _ok(_nearest(require_lookup(), lon, lat, request.args.get("limit"), request.args.get("radius")))


@bp.get("/postcodes", merge_slashes=False)
def query():
    """Reverse geocoding (``lon``/``lat`` or ``longitude``/``latitude``), else a search (``q``/``query``)."""
    args = request.args
    for lon_key, lat_key in (("longitude", "latitude"), ("lon", "lat")):
        if args.get(lon_key) and args.get(lat_key):
            return _ok(_nearest(require_lookup(), args[lon_key], args[lat_key], args.get("limit"),
                                args.get("radius")))
    text = (args.get("q") or args.get("query") or "").strip()
    if not text:
        raise PostcodesIoError(400, QUERY_REQUIRED)
    lookup = require_lookup()
    found = _search(lookup, text, args.get("limit"))
    return _ok(None if found is None else [_find(lookup, pc) for pc in found])


def _body():
    """The request body as postcodes.io's body parsers see it: JSON, or form fields."""
    if request.mimetype == "application/json":
        body = request.get_json(silent=True)
        if body is None:
            raise PostcodesIoError(400, INVALID_JSON)
        return body
    form = request.form
    body = {}
    for key in ("postcodes", "geolocations"):
        # A form list arrives as postcodes=A&postcodes=B or postcodes[]=A (qs, as in express).
        values = form.getlist(key) + form.getlist(key + "[]")
        if values:
            body[key] = values
    return body


@bp.post("/postcodes", merge_slashes=False)
def bulk():
    """Bulk lookup (``{"postcodes": [...]}``) or bulk reverse geocoding (``{"geolocations": [...]}``)."""
    body = _body()
    if not isinstance(body, dict):
        raise PostcodesIoError(400, INVALID_JSON_QUERY)
    maximum = int(setting("POSTCODES_BULK_MAX"))
    if _truthy(body.get("postcodes")):
        postcodes = body["postcodes"]
        if not isinstance(postcodes, list):
            raise PostcodesIoError(400, JSON_ARRAY_REQUIRED)
        if len(postcodes) > maximum:
            raise too_many("postcodes")
        lookup = require_lookup()
        return _ok([{"query": pc, "result": _find(lookup, pc)} for pc in postcodes])
    if _truthy(body.get("geolocations")):
        locations = body["geolocations"]
        if not isinstance(locations, list):
            raise PostcodesIoError(400, JSON_ARRAY_REQUIRED)
        if len(locations) > maximum:
            raise too_many("locations")
        lookup = require_lookup()
        result = []
        for location in locations:
            if not isinstance(location, dict):
                raise PostcodesIoError(400, INVALID_GEOLOCATION)
            merged = {k: request.args.get(k) for k in ("limit", "radius") if request.args.get(k)}
            merged.update(location)
            query_echo = {k: v for k, v in location.items()
                          if k.lower() in ("limit", "longitude", "latitude", "radius", "widesearch")}
            result.append({"query": query_echo,
                           "result": _nearest(lookup, merged.get("longitude"), merged.get("latitude"),
                                              merged.get("limit"), merged.get("radius"))})
        return _ok(result)
    raise PostcodesIoError(400, INVALID_JSON_QUERY)


@bp.get("/outcodes/<outcode>", merge_slashes=False)
def outcode(outcode):
    """An outward code's centre and the areas it spans."""
    result = _outcode(require_lookup(), outcode)
    if result is None:
        raise PostcodesIoError(404, OUTCODE_NOT_FOUND)
    return _ok(result)


@bp.get("/terminated_postcodes/<postcode>", merge_slashes=False)
def terminated(postcode):
    """A terminated postcode: when it ended and where it was."""
    if not is_valid(postcode.strip()):
        raise PostcodesIoError(404, INVALID_POSTCODE)
    result = require_lookup().terminated(normalise(postcode))
    if result is None:
        raise PostcodesIoError(404, TERMINATED_NOT_FOUND)
    return _ok(result)
