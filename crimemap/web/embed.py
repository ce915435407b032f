"""Embeds: the embeddable map, its PNG, oEmbed and the "Embed this map" button (docs/embeds.md).

Every embed is drawn from a frozen snapshot (:mod:`crimemap.embeds`), so a
pinned embed shows the same figures and data-as-of after any refresh. An
embed without ``version`` is pinned to the current data version as it is
served. The iframe snippet is built in one place (:func:`iframe_snippet`):
the button and oEmbed give exactly the same markup.
"""

import logging
from urllib.parse import parse_qsl, urlsplit

import folium
from jinja2 import pass_context
import shapely
from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for
from markupsafe import Markup, escape

from crimemap import embeds
from crimemap import figures as fig
from crimemap.attribution import ATTRIBUTION, DEMO_NOTICE
from crimemap.errors import BadQuery, CrimemapError, NotFound
from crimemap.render_png import render_png
from crimemap.web import get_store, maps
from crimemap.web.figure_cache import cached_view, embed_snapshot_stamp
from crimemap.web.headers import note_data_version

log = logging.getLogger("crimemap.web.embed")

bp = Blueprint("embed", __name__)

PAGE_MONTHS = 12  # the period of the London map and area pages (crimemap.web.pages)
LEVEL_WORDS = {"borough": "borough", "ward": "ward", "snt": "Safer Neighbourhood Team area"}
# Pages whose map can be embedded, and so carry the oEmbed discovery link.
EMBEDDABLE = {"pages.index", "pages.area", "embed.embed_map"}
PNG_MIN_PX = 200


class FormatNotImplemented(CrimemapError):
    """oEmbed: the provider cannot answer in the requested format."""

    status = 501


# --- resolving an embed --------------------------------------------------------------


def _config(name):
    return current_app.config[name]


def _current_version():
    return str(fig.catalog(get_store()).data_version)


def _snapshot(query):
    """The pinned query and its frozen snapshot (pinning to the current version when none is given)."""
    if not query.version:
        query = query.pinned(_current_version())
    note_data_version(query.version)  # X-Data-Version: the pinned release the figures come from
    return query, embeds.freeze(get_store(), query, current_app.config)


def _figures(query, doc):
    figures = embeds.snapshot_figures(doc)
    if query.code:
        fig.find_area(figures, query.code)  # 404 naming the code
    return figures


def _title(figures):
    level = LEVEL_WORDS[figures["level"].iloc[0]] if len(figures) else "area"
    return f"{figures.attrs['crime_label']} by {level} in London"


def _period(figures):
    months = figures.attrs["months"]
    return f"{months[0]} to {months[-1]}" if len(months) > 1 else months[0]


def _area_name(figures, code):
    return fig.find_area(figures, code)["name"] if code else None


def frame_title(figures, code=None):
    """The iframe's ``title`` (what a screen reader announces): map, crime type, area, period."""
    name = _area_name(figures, code)
    focus = f", {name}" if name else ""
    return f"Map: {_title(figures)}{focus}, {_period(figures)} (crimemap)"


def embed_url(query, external=True):
    """The URL of an embed (pinned queries stay pinned)."""
    return url_for("embed.embed_map", _external=external, **query.params())


def png_url(query, width=None, height=None):
    size = {"width": width, "height": height} if width and height else {}
    return url_for("embed.embed_png", _external=True, **query.params(), **size)


def full_page_url(query):
    """The full crimemap page the embed comes from (it shows the latest figures)."""
    if query.code:
        return url_for("pages.area", level=query.level, code=query.code, _external=True)
    return url_for("pages.index", level=query.level, crime=query.crime, _external=True)


def iframe_snippet(src, width, height, title):
    """The HTML that embeds a map: a fixed-size iframe with a ``title`` for screen readers."""
    return (f'<iframe src="{escape(src)}" width="{int(width)}" height="{int(height)}" title="{escape(title)}" '
            f'style="border:0" loading="lazy"></iframe>')


def _focus(fmap, figures, code):
    """Outline one area and fit the map to it and its surroundings."""
    target = figures[figures["code"] == code]
    minx, miny, maxx, maxy = target.total_bounds
    pad_x, pad_y = (maxx - minx) * 0.6 + 0.002, (maxy - miny) * 0.6 + 0.002
    folium.GeoJson({"type": "Feature", "geometry": shapely.geometry.mapping(target.geometry.iloc[0]),
                    "properties": {}},
                   style_function=lambda feature: {"fill": False, "color": "#000000", "weight": 3.5}).add_to(fmap)
    fmap.fit_bounds([[miny - pad_y, minx - pad_x], [maxy + pad_y, maxx + pad_x]])


def _cache(response, pinned):
    # A pinned embed never changes; an unpinned one follows the data.
    response.headers.setdefault("Cache-Control", "public, max-age=86400" if pinned else "public, max-age=300")
    return response


# --- the button and the discovery link -------------------------------------------------


def embed_links(level, crime, months, code=None):
    """Everything the "Embed this map" button shows, freezing the embed's figures now.

    Returns
    -------
    dict or None
        ``url``, ``snippet``, ``png``, ``width``, ``height``, ``title``; None
        when the map cannot be embedded (nothing loaded), so a page never
        fails because of its button.
    """
    if not months:
        return None
    query = embeds.EmbedQuery(level, crime or fig.ALL_CRIME, months[0], months[-1], _current_version(), code)
    try:
        query, doc = _snapshot(query)
        figures = _figures(query, doc)
    except CrimemapError as exc:
        log.warning("no embed for %s: %s", query.params(), exc.message)
        return None
    except Exception:  # noqa: BLE001 - a page must not fail because of its button; logged with the traceback
        log.exception("could not make the embed of %s", query.params())
        return None
    width, height = _config("EMBED_WIDTH"), _config("EMBED_HEIGHT")
    url, title = embed_url(query), frame_title(figures, code)
    return {"url": url, "snippet": iframe_snippet(url, width, height, title), "png": png_url(query),
            "width": width, "height": height, "title": title, "version": query.version}


@bp.app_template_global()
@pass_context
def embed_button_links(context):
    """For templates/_embed_button.html: the embed of the page being rendered."""
    area = context.get("area")
    level = context.get("level")
    code = area.get("code") if isinstance(area, dict) else None
    if level not in fig.LEVELS:
        return None
    return embed_links(level, context.get("crime"), context.get("months"), code)


@bp.app_template_global()
def oembed_link():
    """The oEmbed discovery ``<link>`` of an embeddable page ('' on other pages)."""
    if request.endpoint not in EMBEDDABLE:
        return ""
    # Relative, like every other link of the page: a page names no absolute URL, and consumers resolve it.
    href = url_for("embed.oembed", url=request.url, format="json")
    return Markup(f'<link rel="alternate" type="application/json+oembed" href="{escape(href)}" '
                  f'title="crimemap map (oEmbed)">')


# --- routes --------------------------------------------------------------------------


@bp.errorhandler(CrimemapError)
def _embed_error(exc):
    """Embed errors are short pages that fit in an iframe; oEmbed errors are JSON."""
    if request.path == "/oembed":
        body = {"status": exc.status, "error": exc.message}
        body.update(exc.extra)
        return jsonify(body), exc.status
    response = Response(render_template("embed.html", message=exc.message, status=exc.status,
                                        home=url_for("pages.index", _external=True)), status=exc.status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/embed/map")
@cached_view(vary=embed_snapshot_stamp)
def embed_map():
    """The embeddable map: no site chrome; the map, legend, title, period, data-as-of, attribution, a link back."""
    asked = embeds.parse_query(request.args)
    query, doc = _snapshot(asked)
    figures = _figures(query, doc)
    tile_url, tile_attribution = _config("TILE_URL"), _config("TILE_ATTRIBUTION")
    fmap = maps.choropleth(figures, lambda level, code: url_for("pages.area", level=level, code=code,
                                                                  _external=True),
                           tile_url, tile_attribution)
    if query.code:
        _focus(fmap, figures, query.code)
    name = _area_name(figures, query.code)
    response = Response(render_template(
        "embed.html", message=None, map=maps.render_map(fmap), legend=maps.legend(figures),
        rows=maps.table_rows(figures), title=_title(figures), area_name=name, period=_period(figures),
        data_as_of=figures.attrs["data_as_of"],
        version=query.version, pinned=bool(asked.version), frozen_at=figures.attrs["frozen_at"],
        attribution=ATTRIBUTION, full_url=full_page_url(query), demo=figures.attrs["demo"] or _config("DEMO"),
        demo_notice=DEMO_NOTICE, label=f"{frame_title(figures, query.code)}; shaded against the London average",
        unsaved=bool(doc.get("unsaved"))))
    return _cache(response, bool(asked.version) and not doc.get("unsaved"))


def _int_arg(name, low, high):
    value = request.args.get(name)
    if value in (None, ""):
        return None
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise BadQuery(f"bad {name} {value!r}; expected a whole number from {low} to {high}")
    return int(value)


@bp.get("/embed/map.png")
def embed_png():
    """The same map as a PNG for print, drawn on the server (matplotlib, no browser)."""
    asked = embeds.parse_query(request.args)
    biggest = _config("EMBED_PNG_MAX_PX")
    width = _int_arg("width", PNG_MIN_PX, biggest) or 1200
    height = _int_arg("height", PNG_MIN_PX, biggest) or 900
    query, doc = _snapshot(asked)
    figures = _figures(query, doc)
    name = _area_name(figures, query.code)
    subtitle = (f"{name + ' · ' if name else ''}{_period(figures)} · crimes per 1,000 residents against the London "
                f"average · data as of {figures.attrs['data_as_of']} (data version {query.version})")
    if figures.attrs["demo"] or _config("DEMO"):
        subtitle += " · " + DEMO_NOTICE
    colours = {"bands": maps.BAND_COLOURS, "no_data": maps.NO_DATA_SWATCH, "separate_force": maps.CITY_FILL}
    png = render_png(figures, maps.legend(figures), colours, _title(figures), subtitle,
                     list(ATTRIBUTION) + [f"Made with crimemap: {full_page_url(query)}"], highlight=query.code,
                     size=(width, height))
    return _cache(Response(png, mimetype="image/png"), bool(asked.version) and not doc.get("unsaved"))


def _query_from_url(url):
    """The embed a URL of ours shows: an embed URL, the London map or an area page.

    Raises
    ------
    NotFound
        When the URL is not one of this site's map URLs.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != request.host.lower():
        raise NotFound(f"{url!r} is not a map on this crimemap site ({request.host_url})")
    args = dict(parse_qsl(parts.query))
    path = parts.path.rstrip("/") or "/"
    if path == "/embed/map":
        return embeds.parse_query(args)
    months = fig.latest_months(get_store(), PAGE_MONTHS)
    if not months:
        raise NotFound("no crime data is loaded, so there is no map to embed")
    if path == "/":
        query = embeds.parse_query({"level": args.get("level"), "crime": args.get("crime")})
        return embeds.EmbedQuery(query.level, query.crime, months[0], months[-1])
    segments = path.split("/")
    if len(segments) == 4 and segments[1] == "area":
        query = embeds.parse_query({"level": segments[2], "code": segments[3]})
        return embeds.EmbedQuery(query.level, query.crime, months[0], months[-1], code=query.code)
    raise NotFound(f"{url!r} is not a map on this crimemap site: embeddable URLs are /, /area/<level>/<code> "
                   "and /embed/map")


@bp.get("/oembed")
def oembed():
    """oEmbed 1.0 (https://oembed.com), type ``rich``: the iframe snippet of a map URL of ours."""
    fmt = request.args.get("format") or "json"
    if fmt == "xml":
        raise FormatNotImplemented("format=xml is not implemented; use format=json")
    if fmt != "json":
        raise BadQuery(f"unknown format {fmt!r}; expected json (xml is not implemented)")
    url = request.args.get("url")
    if not url:
        raise BadQuery("the url parameter is required: the address of a crimemap map")
    if len(url) > 4096:
        raise BadQuery("url is too long (at most 4096 characters)")
    max_width = _int_arg("maxwidth", 1, 100_000)
    max_height = _int_arg("maxheight", 1, 100_000)
    query, doc = _snapshot(_query_from_url(url))
    figures = _figures(query, doc)
    width = min(_config("EMBED_WIDTH"), max_width or _config("EMBED_WIDTH"))
    height = min(_config("EMBED_HEIGHT"), max_height or _config("EMBED_HEIGHT"))
    src, title = embed_url(query), frame_title(figures, query.code)
    body = {
        "version": "1.0", "type": "rich", "title": title,
        "provider_name": "crimemap", "provider_url": url_for("pages.index", _external=True),
        "cache_age": 86400, "html": iframe_snippet(src, width, height, title), "width": width, "height": height,
        "url": src, "data_version": query.version, "data_as_of": figures.attrs["data_as_of"],
    }
    if min(width, height) >= PNG_MIN_PX:
        body.update({"thumbnail_url": png_url(query, width, height), "thumbnail_width": width,
                     "thumbnail_height": height})
    response = jsonify(body)
    response.headers.setdefault("Access-Control-Allow-Origin", "*")
    return response
