"""Public pages: the London map, area pages and the postcode search.

Each view asks :mod:`crimemap.figures` for the numbers and hands them, with a
map from :mod:`crimemap.web.maps`, to a template. The map and its data table
are built from the same figures, so they always agree.
"""

from flask import Blueprint, current_app, render_template, request, url_for

from crimemap import figures as fig
from crimemap.attribution import DEMO_NOTICE
from crimemap.errors import BadQuery, UnknownArea
from crimemap.figures.months import previous_months
from crimemap.figures.points import area_points
from crimemap.web import charts, get_store, maps
from crimemap.web.figure_cache import cached_view
from crimemap.web.search import mark_on_map, postcode_on_area, search_page

bp = Blueprint("pages", __name__)

PERIOD_MONTHS = 12
# Every table and map downloads in these formats (docs/downloads.md).
DOWNLOAD_FORMATS = (("csv", "CSV"), ("geojson", "GeoJSON"), ("xlsx", "Excel (XLSX)"))
AREA_TABLES = (("by_type", "crimes by type"), ("monthly", "monthly trend"), ("neighbours", "neighbouring areas"))
LEVEL_NAMES = {"borough": "Boroughs", "ward": "Wards", "snt": "Safer Neighbourhood Team areas"}


@bp.app_context_processor
def _page_text():
    # App-wide, so error pages show the demo banner too.
    return {"demo_notice": DEMO_NOTICE}


def _choice(name, default, allowed):
    value = request.args.get(name, default)
    if value not in allowed:
        raise BadQuery(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")
    return value


def _tiles():
    return current_app.config.get("TILE_URL", ""), current_app.config.get("TILE_ATTRIBUTION", "")


def _area_url(level, code):
    return url_for("pages.area", level=level, code=code)


def _crime_options(store):
    """Totals, police.uk categories, then the Met's major types when their tables are loaded."""
    cat = fig.catalog(store)
    loaded = cat.type_sources()
    options = [(fig.ALL_CRIME, fig.crime_label(fig.ALL_CRIME)), (fig.MOPAC7, fig.crime_label(fig.MOPAC7))] + \
        [(slug, label) for slug, label in fig.category_labels().items()]
    options += [(t.id, f"{t.label} (Met)") for t in cat.registry() if t.kind == "met-major" and loaded.get(t.id)]
    return options


def _period(store):
    """The period picker's choice: (key, months), from ``period``, ``from`` and ``to``."""
    args = request.args
    return fig.pick_period(args.get("period"), args.get("from"), args.get("to"), fig.catalog(store).latest,
                           current_app.config["QUERY_MONTHS_MAX"])


def _period_text(months):
    if not months:
        return "no period"
    if len(months) == 1:
        return months[0]
    return f"{months[0]} to {months[-1]}"


def _downloads(endpoint, formats=DOWNLOAD_FORMATS, **args):
    """Download links of a view: (format name, URL) for each format."""
    return [(name, url_for(endpoint, format=fmt, **args)) for fmt, name in formats]


@bp.get("/")
@cached_view
def index():
    """The London map: areas shaded against the London average, with a data table.

    ``level``, ``crime`` and ``period`` (``latest-month``, ``last-3-months``,
    ``rolling-12-months`` or ``custom`` with ``from``/``to``) choose what is
    shown; a plain GET form sets them, so the page works without script.
    """
    level = _choice("level", "borough", fig.LEVELS)
    store = get_store()
    cat = fig.catalog(store)
    crime = _choice("crime", fig.ALL_CRIME, cat.registry().ids())
    period, months = _period(store)
    loaded = cat.months
    context = {"level": level, "crime": crime, "crime_label": fig.crime_label(crime), "months": months,
               "period": period, "periods": fig.PERIODS, "period_text": _period_text(months),
               "first_loaded": loaded[0] if loaded else "", "last_loaded": loaded[-1] if loaded else "",
               "levels": LEVEL_NAMES, "crime_options": _crime_options(store), "mopac7": fig.MOPAC7_POINT_CATEGORIES,
               "lsoa_map": store.layer("lsoa") is not None}
    if store.layer(level) is None or not months:
        return render_template("index.html", empty=True, **context)
    figures = maps.with_web_geometry(fig.area_figures(store, level, months, crime), store, current_app.config)
    tile_url, tile_attribution = _tiles()
    fmap = maps.choropleth(figures, _area_url, tile_url, tile_attribution)
    downloads = _downloads("api.choropleth", level=level, crime=crime, **{"from": months[0], "to": months[-1]})
    return render_template("index.html", empty=False, map=maps.render_map(fmap), legend=maps.legend(figures),
                           rows=maps.table_rows(figures), london=figures.attrs["london"],
                           layer=figures.attrs["layer"], population_year=figures.attrs["population_year"],
                           approximate=figures.attrs["approximate"], tile_url=tile_url, fmt_count=maps.fmt_count,
                           fmt_rate=maps.fmt_rate, downloads=downloads, data_version=figures.attrs["data_version"],
                           **context)


def _points(store, summary, crime, months):
    """The area's crimes per published location, or None with the reason there are none to show."""
    categories = fig.categories_for(crime)
    if categories == []:
        return None, ("The Met's count tables have no locations, and police.uk street-level points carry "
                      "police.uk categories, not the Met's types: pick All crime or a police.uk category to "
                      "see points.")
    points = area_points(store, summary["layer"], summary["area"]["code"], months, categories,
                         limit=current_app.config["AREA_MAP_POINTS_MAX"])
    if not points.attrs["locations"]:
        return None, ("No police.uk street-level crimes with a location are loaded for this area and period, "
                      "so the map shows no points.")
    return points, None


@bp.get("/area/<level>/<code>")
@cached_view
def area(level, code):
    """One area: its rate against London, crimes by type, trend, comparisons, target, neighbours, points.

    ``crime`` picks the headline crime type; ``print=1`` gives the printable
    performance summary (no map, no script).
    """
    if level not in fig.LEVELS:
        raise BadQuery(f"unknown level {level!r}; expected one of {', '.join(fig.LEVELS)}")
    store = get_store()
    config = current_app.config
    crime = _choice("crime", fig.ALL_CRIME, fig.catalog(store).registry().ids())
    printable = _choice("print", "0", ("0", "1")) == "1"
    months = fig.latest_months(store, PERIOD_MONTHS)
    if not months:
        raise UnknownArea("no crime data is loaded yet, so there is no area page to show")
    summary, figures = fig.area_summary(store, level, code, months, crime, small_count=config["SMALL_COUNT"],
                                        target_baseline=config["TARGET_BASELINE_YEAR"] or None,
                                        target_pct=config["TARGET_PCT"], with_figures=True)
    row = fig.find_area(figures, code).drop(labels="geometry").to_dict()
    wards = []
    if level == "borough" and store.layer("ward") is not None:
        ward_areas = store.areas(store.layer("ward")["id"], with_geometry=False)
        wards = ward_areas[ward_areas["borough_code"] == code].sort_values("name").to_dict("records")
    context = {}
    if not printable:
        tile_url, tile_attribution = _tiles()
        points, points_note = _points(store, summary, crime, months)
        marked = postcode_on_area(request.args.get("postcode"), level, code, store, months)
        # The layer's cached web geometry (simplified once per layer), not this request's full polygons.
        web = maps.with_web_geometry(figures, store, config)
        fmap = maps.area_map(web, code, tile_url, tile_attribution, points=points,
                             labels=fig.category_labels(), period=_period_text(months))
        context = {"map": maps.render_map(mark_on_map(fmap, marked)), "marked": marked, "tile_url": tile_url,
                   "points": points, "points_note": points_note, "crime_options": _crime_options(store)}
    args = {"level": level, "code": code, "crime": crime}
    return render_template(
        "area.html", area=row, summary=summary, level=level, level_name=LEVEL_NAMES[level], months=months,
        previous=previous_months(months), crime=crime, crime_label=fig.crime_label(crime), printable=printable,
        by_type=summary["by_type"], london=figures.attrs["london"], band=maps.band_text(row),
        legend=maps.legend(figures), wards=wards, layer=figures.attrs["layer"],
        population_year=figures.attrs["population_year"], mopac7=fig.MOPAC7_POINT_CATEGORIES,
        source=summary["by_type_source"], trend=charts.trend_chart(summary["monthly"]),
        three=summary["comparisons"]["last_3_months_vs_year_earlier"], targets=summary["targets"],
        target_setting=config["TARGET_BASELINE_YEAR"], neighbours=summary["neighbours"],
        no_location=summary["no_location"], unallocated=summary["london"]["unallocated"],
        band_colours=maps.BAND_COLOURS, band_labels=maps.BAND_LABELS, data_version=summary["data_version"],
        downloads={"csv": [(label, url_for("api.area", format="csv", table=table, **args))
                           for table, label in AREA_TABLES],
                   "geojson": url_for("api.area", format="geojson", **args),
                   "xlsx": url_for("api.area", format="xlsx", **args)},
        print_url=url_for("pages.area", print="1", **args), page_url=url_for("pages.area", **args),
        fmt_count=maps.fmt_count, fmt_rate=maps.fmt_rate, fmt_pct=maps.fmt_pct, fmt_ci=maps.fmt_ci, **context)


@bp.get("/search")
def search():
    """The "your area" search: a postcode leads to its ward's page; anything else, the form and a way forward."""
    return search_page(request.args.get("q", ""))
