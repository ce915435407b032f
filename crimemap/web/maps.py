"""Rendering helpers for the pages: folium maps served offline, legends, tables.

folium writes Leaflet maps whose scripts and styles come from CDNs. crimemap
serves them itself (``static/vendor``, see its README): :func:`localise_assets`
points every asset of a map at the local copy and refuses any it does not
have, so a page can never load a remote script by accident.

folium inserts feature properties into tooltips and popups as raw HTML, so
every text that reaches one is escaped here with :func:`markupsafe.escape`.
"""

from pathlib import Path

import folium
import numpy as np
import shapely
from flask import url_for
from markupsafe import Markup, escape

from crimemap.crs import to_wgs84
from crimemap.figures import BANDS, MET
from crimemap.webgeom import CACHE_FOLDER, web_geometry

LEAFLET_VERSION = "1.9.3"
# folium asset name -> file under static/.
LOCAL_ASSETS = {
    "leaflet": "vendor/leaflet/leaflet.js",
    "leaflet_css": "vendor/leaflet/leaflet.css",
    "leaflet_vectorgrid": "vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js",  # web/tiles_layer.py
}
# folium defaults for markers, icons and Bootstrap widgets, which crimemap's
# maps do not use: dropped rather than served.
UNUSED_ASSETS = {"jquery", "bootstrap", "awesome_markers", "bootstrap_css", "glyphicons_css",
                 "awesome_markers_font_css", "awesome_markers_css", "awesome_rotate_css"}

# ColorBrewer RdYlBu (5 classes, reversed): readable with the common kinds of
# colour blindness, and blue = lower, red = higher as readers expect.
BAND_COLOURS = {
    "much-lower": "#2c7bb6",
    "lower": "#abd9e9",
    "around": "#ffffbf",
    "higher": "#fdae61",
    "much-higher": "#d7191c",
}
NO_DATA_FILL = "url(#cm-hatch)"  # the SVG pattern in templates/_map.html
NO_DATA_SWATCH = "#d9d9d9"
CITY_FILL = "#8c6bb1"
CITY_LABEL = "City of London Police (separate force)"
SIMPLIFY_M = 5.0  # metres: below what a screen shows at the zoom levels we allow
DECIMALS = 5  # about a metre of longitude/latitude


# --- assets ------------------------------------------------------------------------


def _elements(element):
    yield element
    for child in list(element._children.values()):
        yield from _elements(child)


def localise_assets(element):
    """Point every script and stylesheet of a folium element tree at /static.

    Parameters
    ----------
    element : branca.element.Element
        A folium Map (or any element); its children are walked too.

    Raises
    ------
    ValueError
        If an element needs an asset crimemap does not vendor.
    """
    for item in _elements(element):
        for attribute in ("default_js", "default_css"):
            assets = getattr(item, attribute, None)
            if not assets:
                continue
            local = []
            for name, url in assets:
                if name in LOCAL_ASSETS:
                    local.append((name, url_for("static", filename=LOCAL_ASSETS[name])))
                elif name not in UNUSED_ASSETS:
                    raise ValueError(f"{type(item).__name__} needs {name} ({url}), which crimemap does not serve "
                                     "locally; vendor it under crimemap/web/static/vendor")
            # An instance attribute, so folium's class defaults stay as they are.
            setattr(item, attribute, local)


def render_map(fmap):
    """Split a folium map into what a page template places.

    Returns
    -------
    dict
        ``js`` and ``css`` (lists of local URLs for the page head), ``html``
        (the map's container) and ``script`` (the code that draws it).
    """
    localise_assets(fmap)
    root = fmap.get_root()
    root.render()
    js, css = [], []
    for child in root.header._children.values():
        url = getattr(child, "url", None)
        kind = type(child).__name__
        if url and kind == "JavascriptLink":
            js.append(url)
        elif url and kind == "CssLink":
            css.append(url)
    return {"js": js, "css": css, "html": Markup(root.html.render()), "script": Markup(root.script.render())}


# --- formatting ----------------------------------------------------------------------


def fmt_count(value):
    """``1,234``, or ``no data`` for a missing count."""
    return "no data" if value is None else f"{int(value):,}"


def fmt_rate(value):
    """A rate per 1,000 with one decimal, or an en dash when unknown."""
    return "–" if value is None else f"{value:,.1f}"


def fmt_pct(value):
    """A signed percentage change, or an en dash when it cannot be computed."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:+.0f}%"


def fmt_ci(interval):
    """A 95% interval of a % change, "-40% to +80%", or an empty string when there is none."""
    if not interval or any(v is None or not np.isfinite(v) for v in interval):
        return ""
    return f"{fmt_pct(interval[0])} to {fmt_pct(interval[1])}"


BAND_LABELS = {band: label for band, label, _low, _high in BANDS}


def band_text(row):
    """How an area compares with London, in words."""
    if row["no_data"]:
        return "No data"
    if row["band"] is None:
        return "Unknown (no residents figure)"
    return f"{BAND_LABELS[row['band']]} ({row['ratio_to_london']:.2f} × London)"


def legend(figures):
    """The legend entries of a choropleth: band, colour, words, range of rates.

    Returns
    -------
    list of dict
        ``key, colour, label, detail`` for each band, then no data and the
        City of London Police.
    """
    london = figures.attrs["london"]["rate_per_1000"]
    entries = []
    for band, label, low, high in BANDS:
        if low == 0:
            ratio = f"under {high:g} × the London rate"
        elif high == float("inf"):
            ratio = f"{low:g} × the London rate or more"
        else:
            ratio = f"{low:g} to {high:g} × the London rate"
        if london:
            rates = (f"under {high * london:,.1f}" if low == 0 else
                     f"{low * london:,.1f} or more" if high == float("inf") else
                     f"{low * london:,.1f} to {high * london:,.1f}")
            ratio += f" ({rates} per 1,000)"
        entries.append({"key": band, "colour": BAND_COLOURS[band], "label": label, "detail": ratio})
    entries.append({"key": "no-data", "colour": NO_DATA_SWATCH, "label": "No data",
                    "detail": "no crime data loaded for this area and period (not the same as zero)"})
    if (figures["force"] != MET).any():
        entries.append({"key": "separate-force", "colour": CITY_FILL, "label": CITY_LABEL,
                        "detail": "shown for reference, not part of the London average"})
    return entries


BAND_ORDER = {band: i for i, (band, _label, _low, _high) in enumerate(BANDS)}


def _raw(value):
    """A number as the table's data-sort attribute holds it: plain digits, or "" when unknown."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def table_rows(figures):
    """Rows of the accessible data table, formatted, in name order."""
    rows = []
    for row in figures.sort_values(["separate_force", "name"]).to_dict("records"):
        rows.append({
            "code": row["code"], "name": row["name"], "level": row["level"], "borough": row["borough_name"],
            "separate_force": row["separate_force"], "count": fmt_count(row["count"]),
            "population": fmt_count(row["population"]) if row["population"] is not None else "–",
            "rate": fmt_rate(row["rate_per_1000"]), "band": band_text(row), "band_key": row["band"],
            "band_label": BAND_LABELS.get(row["band"], "No data" if row["no_data"] else "–"),
            "ratio": "–" if row["ratio_to_london"] is None else f"{row['ratio_to_london']:.2f}",
            "colour": BAND_COLOURS.get(row["band"], NO_DATA_SWATCH),
            "partial": 0 < row["months_with_data"] < len(figures.attrs["months"]),
            "months_with_data": row["months_with_data"],
            # Raw values for sorting the table in the browser ("" is unknown; bands in order).
            "sort": {"count": _raw(row["count"]), "population": _raw(row["population"]),
                     "rate": _raw(row["rate_per_1000"]), "ratio": _raw(row["ratio_to_london"]),
                     "band": BAND_ORDER.get(row["band"], "")},
        })
    return rows


# --- maps ------------------------------------------------------------------------------


def _style(row):
    if row["separate_force"]:
        return {"fillColor": CITY_FILL, "color": "#3f007d", "weight": 2, "dashArray": "6 4", "fillOpacity": 0.75}
    if row["no_data"] or row["band"] is None:
        return {"fillColor": NO_DATA_FILL, "color": "#737373", "weight": 0.8, "fillOpacity": 1}
    return {"fillColor": BAND_COLOURS[row["band"]], "color": "#4d4d4d", "weight": 0.6, "fillOpacity": 0.8}


def _tooltip(row):
    """The tooltip of one area, as HTML with every data value escaped."""
    lines = [f"<strong>{escape(row['name'])}</strong>"]
    if row["level"] != "borough" and row["borough_name"]:
        lines.append(f"{escape(row['borough_name'])}")
    if row["separate_force"]:
        lines.append(f"<em>{CITY_LABEL}</em>")
    if row["no_data"]:
        lines.append("No data for this period")
    else:
        lines.append(f"{fmt_count(row['count'])} crimes · {fmt_rate(row['rate_per_1000'])} per 1,000 residents")
        if row["separate_force"]:
            lines.append("Not part of the London average")
        else:
            lines.append(escape(band_text(row)))
    return "<br>".join(lines)


def _popup(row, url):
    return f"{_tooltip(row)}<br><a href=\"{escape(url)}\">Open the area page</a>"


def with_web_geometry(figures, store, config):
    """``figures`` with the layer's cached web geometry (EPSG:4326, see :mod:`crimemap.webgeom`).

    The layer is simplified as one coverage, so neighbours keep their shared
    edges; ``WEB_SIMPLIFY_M`` sets the tolerance.
    """
    info = figures.attrs["layer"]
    layer = store.layer(info["level"], info["vintage"])
    shapes = web_geometry(figures[["code", "geometry"]], layer, config["WEB_SIMPLIFY_M"],
                          Path(config["INSTANCE"]) / CACHE_FOLDER)
    out = figures.set_geometry(shapes.loc[figures["code"].to_numpy()].to_numpy(), crs=shapes.crs)
    out.attrs = figures.attrs
    return out


def _web_geometry(gdf):
    """EPSG:4326 geometry, simplified and rounded to what a screen can show."""
    if gdf.crs is not None and gdf.crs.to_epsg() == 4326:
        return gdf  # already prepared by with_web_geometry
    simplified = gdf.set_geometry(gdf.geometry.simplify(SIMPLIFY_M, preserve_topology=True))
    web = to_wgs84(simplified)
    return web.set_geometry(shapely.transform(web.geometry.to_numpy(), lambda c: np.round(c, DECIMALS)))


def _base_map(bounds, tile_url, tile_attribution):
    fmap = folium.Map(tiles=None, control_scale=True, prefer_canvas=False, zoom_snap=0.25)
    if tile_url:
        folium.TileLayer(tiles=tile_url, attr=tile_attribution or "Base map: see TILE_ATTRIBUTION",
                         name="Base map", max_zoom=18).add_to(fmap)
    minx, miny, maxx, maxy = bounds
    fmap.fit_bounds([[miny, minx], [maxy, maxx]])
    return fmap


def choropleth(figures, area_url, tile_url="", tile_attribution=""):
    """A folium map of areas shaded by band against the London average.

    Parameters
    ----------
    figures : geopandas.GeoDataFrame
        From :func:`crimemap.figures.area_figures` (with geometry).
    area_url : callable
        ``area_url(level, code)`` gives the link of an area page.
    tile_url, tile_attribution : str
        Base map tiles; none when ``tile_url`` is empty.

    Returns
    -------
    folium.Map
    """
    web = _web_geometry(figures)
    from crimemap.web import tiles_layer

    if tiles_layer.too_heavy(len(figures)):  # too many areas for GeoJSON: draw the layer from vector tiles
        return tiles_layer.for_figures(_base_map(web.total_bounds, tile_url, tile_attribution), figures)
    records = figures.drop(columns="geometry").to_dict("records")
    features = []
    for row, geom in zip(records, web.geometry):
        features.append({
            "type": "Feature", "id": row["code"],
            "geometry": shapely.geometry.mapping(geom),
            "properties": {"tip": _tooltip(row), "popup": _popup(row, area_url(row["level"], row["code"])),
                           "style": _style(row)},
        })
    fmap = _base_map(web.total_bounds, tile_url, tile_attribution)
    folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name="Crime rate against the London average",
        style_function=lambda feature: feature["properties"]["style"],
        highlight_function=lambda feature: {"weight": 3, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False, sticky=True),
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False),
    ).add_to(fmap)
    return fmap


def _point_popup(row, labels, period):
    """The popup of one published location, as HTML with every data value escaped."""
    lines = [f"<strong>{escape(row['street'] or 'Unnamed location')}</strong>",
             f"{fmt_count(row['count'])} crime{'s' if row['count'] != 1 else ''}, {escape(period)}"]
    lines += [f"{escape(labels.get(slug, slug))}: {n:,}" for slug, n in row["by_category"]]
    return "<br>".join(lines)


def points_layer(points, labels, period):
    """Crimes per published location as one GeoJSON layer of circles (area grows with the count).

    Parameters
    ----------
    points : pandas.DataFrame
        From :func:`crimemap.figures.points.area_points`: ``lon``/``lat`` as
        published, never moved or made more precise.
    labels : dict
        police.uk category slug to its label.
    period : str
        The period in words, for the popups.

    Returns
    -------
    folium.GeoJson
    """
    features = []
    for row in points.to_dict("records"):
        tip = f"{escape(row['street'] or 'Unnamed location')}: {fmt_count(row['count'])}"
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
            "properties": {"tip": tip, "popup": _point_popup(row, labels, period),
                           "radius": round(3 + 2.2 * float(np.sqrt(row["count"])), 1)},
        })
    return folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name="Crimes per published location",
        marker=folium.CircleMarker(radius=4, fill=True),
        style_function=lambda feature: {"radius": feature["properties"]["radius"], "color": "#3d1d5c",
                                        "weight": 1, "fillColor": "#7a3b9f", "fillOpacity": 0.55},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False),
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False),
    )


def area_map(figures, code, tile_url="", tile_attribution="", points=None, labels=None, period=""):
    """A small map of one area, its neighbours outlined for context and, optionally, its crime points.

    ``points`` (from :func:`crimemap.figures.points.area_points`) are drawn
    at the published locations with escaped popups (:func:`points_layer`).
    """
    web = _web_geometry(figures)
    target = web[web["code"] == code]
    minx, miny, maxx, maxy = target.total_bounds
    pad_x, pad_y = (maxx - minx) * 0.6 + 0.002, (maxy - miny) * 0.6 + 0.002
    box = shapely.box(minx - pad_x, miny - pad_y, maxx + pad_x, maxy + pad_y)
    around = web[(web["code"] != code) & web.intersects(box)]
    fmap = _base_map(box.bounds, tile_url, tile_attribution)
    row = figures[figures["code"] == code].drop(columns="geometry").to_dict("records")[0]
    style = dict(_style(row), weight=3, color="#000000")
    if len(around):
        folium.GeoJson(around[["code", "geometry"]].__geo_interface__,
                       style_function=lambda feature: {"fillColor": "#ffffff", "fillOpacity": 0.0,
                                                       "color": "#969696", "weight": 1}).add_to(fmap)
    shape = target[["code", "geometry"]].assign(tip=_tooltip(row))
    if points is not None and len(points):
        style = dict(style, fillOpacity=0.35)  # the points must stay readable on top
    folium.GeoJson(shape.__geo_interface__, style_function=lambda feature: style,
                   tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False)).add_to(fmap)
    if points is not None and len(points):
        points_layer(points, labels or {}, period).add_to(fmap)
    return fmap
