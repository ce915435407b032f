"""Public pages: the London map, area pages and the postcode search.

Each view asks :mod:`crimemap.figures` for the numbers and hands them, with a
map from :mod:`crimemap.web.maps`, to a template. The map and its data table
are built from the same figures, so they always agree.
"""

from flask import Blueprint, current_app, render_template, request, url_for

from crimemap import figures as fig
from crimemap.attribution import DEMO_NOTICE
from crimemap.errors import BadQuery
from crimemap.web import get_store, maps
from crimemap.web.search import mark_on_map, postcode_on_area, search_page

bp = Blueprint("pages", __name__)

PERIOD_MONTHS = 12
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


@bp.get("/")
def index():
    """The London map: areas shaded against the London average, with a data table."""
    level = _choice("level", "borough", fig.LEVELS)
    store = get_store()
    crime = _choice("crime", fig.ALL_CRIME, fig.catalog(store).registry().ids())
    months = fig.latest_months(store, PERIOD_MONTHS)
    context = {"level": level, "crime": crime, "crime_label": fig.crime_label(crime), "months": months,
               "levels": LEVEL_NAMES, "crime_options": _crime_options(store), "mopac7": fig.MOPAC7_POINT_CATEGORIES}
    if store.layer(level) is None or not months:
        return render_template("index.html", empty=True, **context)
    figures = maps.with_web_geometry(fig.area_figures(store, level, months, crime), store, current_app.config)
    tile_url, tile_attribution = _tiles()
    fmap = maps.choropleth(figures, _area_url, tile_url, tile_attribution)
    return render_template("index.html", empty=False, map=maps.render_map(fmap), legend=maps.legend(figures),
                           rows=maps.table_rows(figures), london=figures.attrs["london"],
                           layer=figures.attrs["layer"], population_year=figures.attrs["population_year"],
                           approximate=figures.attrs["approximate"], tile_url=tile_url, fmt_count=maps.fmt_count,
                           fmt_rate=maps.fmt_rate, **context)


@bp.get("/area/<level>/<code>")
def area(level, code):
    """One area: crimes by type this year against last, its rate against London, a map."""
    if level not in fig.LEVELS:
        raise BadQuery(f"unknown level {level!r}; expected one of {', '.join(fig.LEVELS)}")
    store = get_store()
    months = fig.latest_months(store, PERIOD_MONTHS)
    figures = fig.area_figures(store, level, months)
    row = fig.find_area(figures, code).drop(labels="geometry").to_dict()
    by_type = fig.area_by_type(store, level, code, months)
    previous = by_type.attrs["previous"]
    wards = []
    if level == "borough" and store.layer("ward") is not None:
        ward_areas = store.areas(store.layer("ward")["id"], with_geometry=False)
        wards = ward_areas[ward_areas["borough_code"] == code].sort_values("name").to_dict("records")
    tile_url, tile_attribution = _tiles()
    marked = postcode_on_area(request.args.get("postcode"), level, code, store, months)
    fmap = mark_on_map(maps.area_map(figures, code, tile_url, tile_attribution), marked)
    return render_template(
        "area.html", area=row, level=level, level_name=LEVEL_NAMES[level], months=months, previous=previous,
        marked=marked, by_type=by_type.to_dict("records"), london=figures.attrs["london"], band=maps.band_text(row),
        map=maps.render_map(fmap), legend=maps.legend(figures), wards=wards, tile_url=tile_url,
        layer=figures.attrs["layer"], population_year=figures.attrs["population_year"],
        mopac7=fig.MOPAC7_POINT_CATEGORIES, source=by_type.attrs["source"], fmt_count=maps.fmt_count,
        fmt_rate=maps.fmt_rate, fmt_pct=maps.fmt_pct)


@bp.get("/search")
def search():
    """The "your area" search: a postcode leads to its ward's page; anything else, the form and a way forward."""
    return search_page(request.args.get("q", ""))
