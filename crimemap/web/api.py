"""The JSON API, version 1 (contract: ../shared/API.md; this module: README "Pages and API").

Each view reads its query parameters, checks them (an unknown value answers
400 naming it and listing what is allowed), asks :mod:`crimemap.figures` for
the numbers and renders them with :mod:`crimemap.downloads`, so the JSON, the
GeoJSON download and the CSV download of a view always agree.
"""

from flask import Blueprint, Response, current_app, jsonify, request

from crimemap import downloads
from crimemap import figures as fig
from crimemap.classify import check_scheme
from crimemap.crimetypes import ALL_CRIME, listing
from crimemap.errors import BadQuery
from crimemap.web import get_store, maps
from crimemap.web.figure_cache import cached_view

bp = Blueprint("api", __name__, url_prefix="/api/v1")

SUMMARY_TABLES = ("by_type", "monthly", "neighbours")
# web: simplified as a coverage (WEB_SIMPLIFY_M) at 5 decimals; full: the
# loaded polygons unsimplified; none: figures only.
GEOMETRY = ("web", "full", "none")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.after_request
def _headers(response):
    # Open data for any page or script: no cookies are involved, so any origin may read it.
    response.headers.setdefault("Access-Control-Allow-Origin", "*")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # ETag, Cache-Control and 304s: crimemap.web.caching, for every API alike.
    return response


@bp.get("/status")
def status():
    """What is loaded; the same document as ``crimemap status --json``."""
    return jsonify(get_store().status())


def _arg(name, default=None, allowed=None):
    value = request.args.get(name, default)
    if value == "" and default is not None:
        value = default
    if allowed is not None and value not in allowed:
        raise BadQuery(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")
    return value


def _settings(name):
    return current_app.config[name]


def _period(cat):
    return fig.resolve_period(request.args.get("from"), request.args.get("to"), cat.latest,
                              _settings("QUERY_MONTHS_DEFAULT"), _settings("QUERY_MONTHS_MAX"))


def _crime(cat):
    crime = _arg("crime", ALL_CRIME)
    cat.registry().get(crime)  # 400 for an unknown id, listing the known ones
    return crime


def _format():
    return _arg("format", "json", downloads.FORMATS)


def _vintage():
    value = request.args.get("vintage")
    return value or None


def _scheme():
    return check_scheme(request.args.get("classify"), request.args.get("k"), _settings("CLASSIFY_K_DEFAULT"),
                        _settings("CLASSIFY_K_MAX"))


def download_response(body, mimetype, name):
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def period_name(months):
    return f"{months[0]}-to-{months[-1]}" if months else "no-period"


@bp.get("/crime-types")
def crime_types():
    """The crime type ids, labels and groups, and which loaded sources carry each."""
    store = get_store()
    cat = fig.catalog(store)
    body = listing(cat.registry(), cat.type_sources())
    body["sources"] = [{"feed": feed, "first": months[0], "last": months[-1], "months": len(months)}
                       for feed, months in sorted(cat.feeds.items()) if months]
    body["data_version"] = cat.data_version
    return Response(downloads.dumps(body), mimetype="application/json")  # in listing order, not sorted


@bp.get("/choropleth")
@cached_view
def choropleth():
    """Every area of a level with its count, rate, ratio to London and band (GeoJSON, EPSG:4326)."""
    store = get_store()
    cat = fig.catalog(store)
    level = _arg("level", "borough", fig.LEVELS)
    crime = _crime(cat)
    scheme, k = _scheme()
    fmt = _format()
    geometry = _arg("geometry", "web", GEOMETRY)
    months = _period(cat)
    figures = fig.area_figures(store, level, months, crime, vintage=_vintage(), with_geometry=geometry != "none",
                               scheme=scheme, k=k, small_count=_settings("SMALL_COUNT"))
    if geometry == "web" and fmt not in ("csv", "xlsx"):
        figures = maps.with_web_geometry(figures, store, current_app.config)
    attrs = figures.attrs
    name = ("choropleth", level, crime, period_name(months), f"v{attrs['data_version']}")
    if fmt == "csv":
        text = downloads.choropleth_csv(figures, attrs, cat.latest)
        return download_response(text, "text/csv", downloads.filename(*name, ext="csv"))
    if fmt == "xlsx":
        return download_response(downloads.choropleth_xlsx(figures, attrs, cat.latest), XLSX,
                         downloads.filename(*name, ext="xlsx"))
    body = downloads.choropleth_geojson(figures, attrs, cat.latest, geometry=geometry != "none")
    if fmt == "geojson":
        return download_response(body, "application/geo+json", downloads.filename(*name, ext="geojson"))
    return Response(body, mimetype="application/geo+json")


@bp.get("/areas/<level>/<code>")
@cached_view
def area(level, code):
    """One area: headline rate, crimes by type now against before, trends, neighbours, target."""
    if level not in fig.LEVELS:
        raise BadQuery(f"unknown level {level!r}; expected one of {', '.join(fig.LEVELS)}")
    store = get_store()
    cat = fig.catalog(store)
    crime = _crime(cat)
    scheme, k = _scheme()
    fmt = _format()
    table = _arg("table", "by_type", SUMMARY_TABLES)
    months = _period(cat)
    summary, figures = fig.area_summary(store, level, code, months, crime, vintage=_vintage(),
                                        small_count=_settings("SMALL_COUNT"),
                                        target_baseline=_settings("TARGET_BASELINE_YEAR") or None,
                                        target_pct=_settings("TARGET_PCT"), scheme=scheme, k=k,
                                        with_figures=True)
    name = (level, code, crime, period_name(months), f"v{summary['data_version']}")
    if fmt == "csv":
        text = downloads.summary_csv(summary, table, cat.latest)
        return download_response(text, "text/csv", downloads.filename(*name[:2], table, *name[2:], ext="csv"))
    if fmt == "xlsx":
        return download_response(downloads.summary_xlsx(summary, cat.latest), XLSX, downloads.filename(*name, ext="xlsx"))
    if fmt == "geojson":
        body = downloads.summary_geojson(summary, figures, cat.latest)
        return download_response(body, "application/geo+json", downloads.filename(*name, ext="geojson"))
    return Response(downloads.dumps(downloads.summary_document(summary, cat.latest)), mimetype="application/json")
