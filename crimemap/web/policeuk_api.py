"""The data.police.uk-compatible API under ``/api/`` (docs/policeuk-api.md).

An existing police.uk client works unchanged when its base URL is
``http://<crimemap>/api/``. Each view reads the request and calls
:mod:`crimemap.policeuk_compat`; errors are typed and rendered as JSON by the
one handler in :mod:`crimemap.web.errors`. police.uk's limits are config
keys: ``POLICEUK_MAX_CRIMES`` (503 above it), ``POLICEUK_GET_URL_MAX`` (400
for a longer GET), ``POLICEUK_POLY_MAX_VERTICES`` and the rate limit
``POLICEUK_RATE_LIMIT`` (429, flask-limiter).

Routes are static-first, so ``/api/v1/...`` always wins over
``/api/<force>/<id>``; a path that matches no other route and names no
police.uk force (``/api/v2/status``) is the plain 404 "Not found".
"""

import orjson
from flask import Blueprint, abort, current_app, request

from crimemap import policeuk_compat as pk
from crimemap.errors import BadQuery
from crimemap.web import get_store
from crimemap.web.figure_cache import cached_view

bp = Blueprint("policeuk_api", __name__, url_prefix="/api")

def init_app(app):
    """Register the blueprint and, when ``POLICEUK_RATE_LIMIT`` is set, its rate limit."""
    limit = app.config.get("POLICEUK_RATE_LIMIT") or ""
    if limit:
        from flask_limiter import Limiter
        from flask_limiter.util import get_remote_address

        limiter = Limiter(get_remote_address, app=app, storage_uri=app.config["POLICEUK_RATE_LIMIT_STORAGE"],
                          strategy="moving-window", headers_enabled=True, key_prefix="policeuk")
        # One count per client across every route, as police.uk counts.
        limiter.shared_limit(limit, scope="policeuk")(bp)
        # flask-limiter hooks every request of the app; the rest of the site skips its checks at once.
        limiter.request_filter(lambda: request.blueprint != bp.name)
    app.register_blueprint(bp)


@bp.after_request
def _headers(response):
    # police.uk answers any origin: its API is called straight from web pages.
    response.headers.setdefault("Access-Control-Allow-Origin", "*")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


@bp.before_request
def _url_length():
    # police.uk refuses a GET whose URL is longer than 4,094 characters (POST the poly instead).
    if request.method in ("GET", "HEAD"):
        target = request.environ.get("RAW_URI") or request.full_path.rstrip("?")
        limit = int(current_app.config["POLICEUK_GET_URL_MAX"])
        if len(target) > limit:
            raise BadQuery(f"the URL is {len(target):,} characters long; at most {limit:,} are accepted "
                           "by GET (send poly by POST instead)")


def jsonify(body):
    """JSON in police.uk's member order (Flask's jsonify sorts keys), encoded with orjson."""
    return current_app.response_class(orjson.dumps(body), mimetype="application/json")


def _param(name):
    value = request.form.get(name) if request.method == "POST" else None
    return value if value is not None else request.args.get(name)


def _month():
    return pk.parse_month(_param("date"), get_store())


def _neighbourhoods(force):
    if force not in pk.FORCE_NAMES:
        abort(404)  # not a police.uk force, so not one of these routes at all
    return pk.neighbourhoods(get_store())


def _max_crimes():
    return int(current_app.config["POLICEUK_MAX_CRIMES"])


@bp.get("/forces")
def forces():
    """police.uk forces: ``[{id, name}]``."""
    return jsonify(pk.forces())


@bp.get("/forces/<force_id>")
def force(force_id):
    """One force: ``{id, name, url, description, telephone, engagement_methods}``."""
    return jsonify(pk.force(force_id))


@bp.get("/crime-categories")
def crime_categories():
    """``[{url, name}]`` for a month (``date=``), ``all-crime`` first."""
    return jsonify(pk.crime_categories(get_store(), _month()))


@bp.get("/crimes-street-dates")
def crimes_street_dates():
    """``[{date, stop-and-search}]``, newest month first."""
    return jsonify(pk.street_dates(get_store()))


@bp.route("/crimes-street/<category>", methods=["GET", "POST"])
@cached_view
def crimes_street(category):
    """Street-level crimes in ``poly`` or within a mile of ``lat``/``lng``, one month."""
    pk.check_category(category)
    store = get_store()
    month = _month()
    poly = _param("poly")
    if poly is not None:
        shape = pk.parse_poly(poly, int(current_app.config["POLICEUK_POLY_MAX_VERTICES"]))
        crimes = pk.street_crimes(store, category, month, poly=shape, max_crimes=_max_crimes())
    else:
        point = pk.parse_point(_param("lat"), _param("lng"))
        crimes = pk.street_crimes(store, category, month, point=point, max_crimes=_max_crimes())
    return jsonify(crimes)


@bp.route("/crimes-at-location", methods=["GET", "POST"])
def crimes_at_location():
    """Crimes at one location: ``location_id``, or the nearest location to ``lat``/``lng``."""
    store = get_store()
    month = _month()
    location_id = _param("location_id")
    point = None if location_id is not None else pk.parse_point(_param("lat"), _param("lng"))
    return jsonify(pk.crimes_at_location(store, month, location_id=location_id, point=point,
                                         max_crimes=_max_crimes()))


@bp.get("/crimes-no-location")
def crimes_no_location():
    """A force's crimes with no location: ``force=``, ``category=`` (default all-crime), ``date=``."""
    store = get_store()
    return jsonify(pk.crimes_no_location(store, _param("force"), _param("category"), _month(),
                                         max_crimes=_max_crimes()))


@bp.get("/locate-neighbourhood")
def locate_neighbourhood():
    """``{force, neighbourhood}`` holding ``q=lat,lng``; 404 outside every neighbourhood."""
    lat, lng = pk.parse_q(request.args.get("q"))
    return jsonify(pk.neighbourhoods(get_store()).locate(lat, lng))


@bp.get("/<force>/neighbourhoods")
def neighbourhoods(force):
    """A force's neighbourhoods (the loaded SNT areas, or wards): ``[{id, name}]``."""
    return jsonify(_neighbourhoods(force).of_force(force))


@bp.get("/<force>/<neighbourhood>")
def neighbourhood(force, neighbourhood):
    """One neighbourhood: name, centre, population."""
    return jsonify(_neighbourhoods(force).detail(force, neighbourhood))


@bp.get("/<force>/<neighbourhood>/boundary")
def boundary(force, neighbourhood):
    """A neighbourhood's boundary: ``[{latitude, longitude}]`` strings, WGS84."""
    return jsonify(_neighbourhoods(force).boundary(force, neighbourhood))
