"""Stop and search and Taser: the pages (/stops, /stops/borough/<code>, /taser) and the JSON API.

``/api/v1/stops/...`` and ``/api/v1/taser/...`` follow ../shared/API.md
("Stop and search") and the crime API's conventions: a bad parameter is a 400
that names it, ``format=csv`` or ``geojson`` downloads the same figures with
the attribution and data version. The figures come from
:mod:`crimemap.stops.figures`; the map, legend and table from
:mod:`crimemap.web.maps`, so stop and search maps read like the crime maps.
"""

import folium
import shapely
from flask import Blueprint, Response, current_app, render_template, request, url_for
from markupsafe import escape

from crimemap import downloads as dl
from crimemap.errors import BadQuery, NotFound
from crimemap.store import stops as st
from crimemap.stops import downloads as sdl
from crimemap.stops import figures as sf
from crimemap.stops import taser
from crimemap.stops.groups import type_labels
from crimemap.web import get_store, maps
from crimemap.web.api import download_response, period_name

bp = Blueprint("stops", __name__)

GEOMETRY = ("web", "full", "none")
FORMATS = ("json", "geojson", "csv")


@bp.after_request
def _headers(response):
    if request.path.startswith("/api/"):
        response.headers.setdefault("Access-Control-Allow-Origin", "*")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def _arg(name, default=None, allowed=None):
    value = request.args.get(name, default)
    if value in ("", None):
        value = default
    if allowed is not None and value not in allowed:
        raise BadQuery(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")
    return value


def _months():
    cfg = current_app.config
    return sf.period(get_store(), request.args.get("from"), request.args.get("to"), cfg["QUERY_MONTHS_DEFAULT"],
                     cfg["QUERY_MONTHS_MAX"])


def _latest():
    months = st.stop_months(get_store())
    return months[-1] if months else None


def _small():
    return current_app.config["SMALL_COUNT"]


# --- API ---------------------------------------------------------------------------------------


@bp.get("/api/v1/stops/status")
def api_status():
    """Stop and search months and feeds, Census areas and Taser tables loaded."""
    return Response(dl.dumps(sf.status(get_store())), mimetype="application/json")


@bp.get("/api/v1/stops/choropleth")
def api_choropleth():
    """Searches per 1,000 residents by borough against London (GeoJSON, EPSG:4326)."""
    _arg("level", "borough", ("borough",))
    fmt = _arg("format", "json", FORMATS)
    geometry = _arg("geometry", "web", GEOMETRY)
    months = _months()
    store = get_store()
    figures = sf.borough_figures(store, months, with_geometry=geometry != "none", small_count=_small())
    if geometry == "web" and fmt != "csv":
        figures = maps.with_web_geometry(figures, store, current_app.config)
    name = ("stops-choropleth", "borough", period_name(months), f"v{figures.attrs['data_version']}")
    if fmt == "csv":
        return download_response(sdl.choropleth_csv(figures, _latest()), "text/csv", dl.filename(*name, ext="csv"))
    body = sdl.choropleth_geojson(figures, _latest(), geometry=geometry != "none")
    if fmt == "geojson":
        return download_response(body, "application/geo+json", dl.filename(*name, ext="geojson"))
    return Response(body, mimetype="application/geo+json")


@bp.get("/api/v1/stops/areas/<level>/<code>")
def api_area(level, code):
    """One borough: searches, arrest rate, objects, outcomes, monthly trend and disproportionality."""
    if level != "borough":
        raise BadQuery(f"unknown level {level!r}; stop and search is summarised by borough only (expected borough)")
    fmt = _arg("format", "json", FORMATS)
    table = _arg("table", "disproportionality", sdl.SUMMARY_TABLES)
    months = _months()
    store = get_store()
    summary = sf.borough_summary(store, code, months, small_count=_small())
    name = ("stops", level, code, period_name(months), f"v{summary['data_version']}")
    if fmt == "csv":
        return download_response(sdl.summary_csv(summary, table, _latest()), "text/csv",
                         dl.filename(*name[:3], table, *name[3:], ext="csv"))
    if fmt == "geojson":
        figures = sf.borough_figures(store, months, small_count=_small())
        return download_response(sdl.summary_geojson(summary, figures, _latest()), "application/geo+json",
                         dl.filename(*name, ext="geojson"))
    return Response(dl.dumps(sdl.summary_document(summary, _latest())), mimetype="application/json")


def _taser_rows(force=None):
    store = get_store()
    rows = taser.force_year_table(st.taser_force_year(store))
    periods = sorted({r["period"] for r in rows})
    year = request.args.get("year")
    if year not in (None, ""):
        if year not in periods:
            raise BadQuery(f"unknown year {year!r}; loaded: {', '.join(periods) or 'none'}")
        rows = [r for r in rows if r["period"] == year]
    if force is not None:
        wanted = force.replace("-", " ").casefold()
        rows = [r for r in rows if r["force"].casefold() == wanted]
        if not rows:
            raise NotFound(f"no Taser figures for force {force!r}")
    return rows, str(store.data_version())


@bp.get("/api/v1/taser/forces")
def api_taser_forces():
    """Taser use by force and year (Home Office table): totals and each level of use."""
    fmt = _arg("format", "json", ("json", "csv"))
    rows, version = _taser_rows()
    if fmt == "csv":
        return download_response(sdl.taser_csv(rows, version), "text/csv", dl.filename("taser-forces", f"v{version}",
                                                                                ext="csv"))
    return Response(dl.dumps(sdl.taser_document(rows, version)), mimetype="application/json")


@bp.get("/api/v1/taser/forces/<force>")
def api_taser_force(force):
    """One force's Taser use, year by year."""
    fmt = _arg("format", "json", ("json", "csv"))
    rows, version = _taser_rows(force)
    if fmt == "csv":
        return download_response(sdl.taser_csv(rows, version), "text/csv", dl.filename("taser", force, f"v{version}",
                                                                                ext="csv"))
    return Response(dl.dumps(sdl.taser_document(rows, version)), mimetype="application/json")


@bp.get("/api/v1/taser/boroughs")
def api_taser_boroughs():
    """Deployments and subjects by borough and quarter, from record-level Taser data."""
    fmt = _arg("format", "json", ("json", "csv"))
    store = get_store()
    frame = st.taser_deployments(store)
    quarters = sorted(frame["quarter"].unique().tolist())
    quarter = request.args.get("quarter")
    if quarter not in (None, ""):
        if quarter not in quarters:
            raise BadQuery(f"unknown quarter {quarter!r}; loaded: {', '.join(quarters) or 'none'}")
        frame = frame[frame["quarter"] == quarter]
    rows = taser.count_deployments(frame, by=("borough_code", "borough", "quarter")) if len(frame) else []
    total = taser.count_deployments(frame)[0] if len(frame) else None
    version = str(store.data_version())
    if fmt == "csv":
        return download_response(sdl.taser_csv(rows, version, sdl.TASER_RECORD_COLUMNS,
                                       "Taser deployments and subjects by borough and quarter"), "text/csv",
                         dl.filename("taser-boroughs", f"v{version}", ext="csv"))
    body = sdl.taser_document(rows, version) | {"total": total, "quarters": quarters}
    return Response(dl.dumps(body), mimetype="application/json")


# --- pages -------------------------------------------------------------------------------------


def _tooltip(row):
    lines = [f"<strong>{escape(row['name'])}</strong>"]
    if row["separate_force"]:
        lines.append(f"<em>{maps.CITY_LABEL}</em>")
    if row["no_data"]:
        lines.append("No stop and search data for this period")
    else:
        lines.append(f"{maps.fmt_count(row['count'])} searches · {maps.fmt_rate(row['rate_per_1000'])} per 1,000 "
                     "residents")
        lines.append("Not part of the London average" if row["separate_force"] else escape(maps.band_text(row)))
    return "<br>".join(lines)


def stops_map(figures, tile_url="", tile_attribution=""):
    """A folium map of boroughs shaded by search rate against London (the crime map's bands and styles)."""
    web = maps._web_geometry(figures)
    features = []
    for row, geom in zip(figures.drop(columns="geometry").to_dict("records"), web.geometry):
        link = url_for("stops.borough_page", code=row["code"])
        features.append({"type": "Feature", "id": row["code"], "geometry": shapely.geometry.mapping(geom),
                         "properties": {"tip": _tooltip(row), "style": maps._style(row),
                                        "popup": f"{_tooltip(row)}<br><a href=\"{escape(link)}\">Open the "
                                                 "borough's stop and search page</a>"}})
    fmap = maps._base_map(web.total_bounds, tile_url, tile_attribution)
    folium.GeoJson({"type": "FeatureCollection", "features": features},
                   name="Stop and search rate against the London average",
                   style_function=lambda feature: feature["properties"]["style"],
                   highlight_function=lambda feature: {"weight": 3, "color": "#000000"},
                   tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False, sticky=True),
                   popup=folium.GeoJsonPopup(fields=["popup"], labels=False)).add_to(fmap)
    return fmap


def _legend(figures):
    entries = maps.legend(figures)
    for entry in entries:
        if entry["key"] == "no-data":
            entry["detail"] = "no stop and search data loaded for this period (not the same as no searches)"
    return entries


def _tiles():
    return current_app.config.get("TILE_URL", ""), current_app.config.get("TILE_ATTRIBUTION", "")


@bp.get("/stops")
def index_page():
    """The stop and search map: searches per 1,000 residents by borough against London, with the table."""
    store = get_store()
    months = _months()
    context = {"months": months, "query": {k: v for k, v in request.args.items() if k in ("from", "to")}}
    if store.layer("borough") is None or not months:
        return render_template("stops.html", empty=True, **context)
    figures = maps.with_web_geometry(sf.borough_figures(store, months, small_count=_small()), store,
                                     current_app.config)
    tile_url, tile_attribution = _tiles()
    return render_template(
        "stops.html", empty=False, map=maps.render_map(stops_map(figures, tile_url, tile_attribution)),
        legend=_legend(figures), rows=maps.table_rows(figures), london=figures.attrs["london"],
        attrs=figures.attrs, tile_url=tile_url, fmt_count=maps.fmt_count, fmt_rate=maps.fmt_rate, **context)


def _bars(monthly, key="searches"):
    """Bar geometry for the monthly trend (an inline SVG; no script needed)."""
    width, height, left, bottom = 640, 200, 44, 24
    top = max([m[key] or 0 for m in monthly] + [1])
    step = (width - left - 8) / max(len(monthly), 1)
    bars = []
    for i, m in enumerate(monthly):
        h = 0 if m[key] is None else (height - bottom - 10) * m[key] / top
        bars.append({"x": round(left + i * step + 2, 1), "w": round(max(step - 4, 1), 1),
                     "y": round(height - bottom - h, 1), "h": round(h, 1), "month": m["month"], "value": m[key],
                     "label": m["month"][2:] if len(monthly) <= 13 or i % 3 == 0 else ""})
    return {"width": width, "height": height, "left": left, "baseline": height - bottom, "top": top, "bars": bars}


@bp.get("/stops/borough/<code>")
def borough_page(code):
    """One borough: monthly trend, types, objects, outcomes, arrest rate and disproportionality with counts."""
    store = get_store()
    months = _months()
    if not months:
        raise NotFound("no stop and search data is loaded")
    summary = sf.borough_summary(store, code, months, small_count=_small())
    figures = sf.borough_figures(store, months, with_geometry=False, small_count=_small())
    row = figures[figures["code"] == code].iloc[0].to_dict()
    downloads = {table: url_for("stops.api_area", level="borough", code=code, format="csv", table=table,
                                **{k: v for k, v in request.args.items() if k in ("from", "to")})
                 for table in sdl.SUMMARY_TABLES}
    return render_template("stops_borough.html", s=summary, area=row, london=figures.attrs["london"],
                           chart=_bars(summary["monthly"]), types=type_labels(), downloads=downloads,
                           months=months, fmt_count=maps.fmt_count, fmt_rate=maps.fmt_rate)


@bp.get("/taser")
def taser_page():
    """Taser use: the Metropolitan Police by year and level of use, deployments against subjects."""
    store = get_store()
    rows = taser.force_year_table(st.taser_force_year(store))
    met = [r for r in rows if r["force"] == "Metropolitan"]
    frame = st.taser_deployments(store)
    boroughs = taser.count_deployments(frame, by=("borough", "quarter")) if len(frame) else []
    return render_template("stops_taser.html", met=met, rows=rows, boroughs=boroughs, levels=taser.levels(),
                           fmt_count=maps.fmt_count)
