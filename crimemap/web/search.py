"""The "your area" postcode search, and the postcode marked on an area page.

``/search?q=SW1A1AA`` redirects to the ward's area page with the postcode in
the query string (``/area/ward/E05...?postcode=SW1A%201AA``); that page marks
the postcode on its map and shows a short headline. Anything else re-renders
the search form with a message and a way forward: an outcode's area, the
nearest known postcodes, or a terminated postcode's successor. It is never an
error page, and needs no JavaScript.
"""

import folium
from flask import redirect, render_template, url_for
from markupsafe import escape

from crimemap import figures as fig
from crimemap.errors import CrimemapError, InvalidPostcode, PostcodeNotFound
from crimemap.postcodes import normalise, resolve
from crimemap.postcodes.normalise import normalise_outcode, normalise_prefix
from crimemap.postcodes.resolve import borough_name
from crimemap.web.postcodes_api import current_lookup

# What the form shows back of a query: a postcode has at most 8 characters,
# so anything longer is cut (escaped, like everything else the user sent).
QUERY_SHOWN_MAX = 64
SUGGESTIONS_MAX = 8
POLICE_UK = "https://www.police.uk/"


def _links(postcodes):
    return [{"postcode": pc, "url": url_for("pages.search", q=pc)} for pc in postcodes]


def _outcode(lookup, summary):
    """An outward code for the page: ``outcode``, ``postcodes`` (live count) and its boroughs' names."""
    if not summary:
        return None
    return {"outcode": summary["outcode"], "postcodes": summary["postcodes"],
            "boroughs": [borough_name(code) or code for code in summary["admin_district"]]}


def _suggest_for_invalid(lookup, q):
    """A way forward for text that is not a full postcode: its outcode, or postcodes starting with it."""
    context = {}
    outcode = normalise_outcode(q)
    if outcode:
        context["outcode"] = _outcode(lookup, lookup.outcode(outcode))
    prefix = normalise_prefix(q)
    if prefix:
        context["suggestions"] = _links(lookup.autocomplete(prefix, SUGGESTIONS_MAX))
    return context


def _names(items):
    """Postcodes from the core's suggestion lists (strings or dicts with ``postcode``)."""
    out = []
    for item in items or []:
        out.append(item["postcode"] if isinstance(item, dict) else str(item))
    return out


def search_page(raw):
    """Answer ``/search?q=raw``: a redirect to the ward's page, or the form with a message.

    Returns
    -------
    flask.Response or (str, int)
    """
    q = (raw or "").strip()
    shown = q[:QUERY_SHOWN_MAX]
    context = {"q": shown, "state": "form"}
    if not q:
        return render_template("search.html", **context)
    lookup = current_lookup()
    if lookup is None:
        context["state"] = "unavailable"
        return render_template("search.html", **context)
    try:
        result = resolve(lookup, q)
    except InvalidPostcode as exc:
        context.update(state="invalid", message=exc.message, **_suggest_for_invalid(lookup, q))
        return render_template("search.html", **context), 400
    except PostcodeNotFound as exc:
        extra = exc.extra
        context.update(state="terminated" if extra.get("terminated") else "not-found", message=exc.message,
                       postcode=normalise(q), outcode=_outcode(lookup, extra.get("outcode")),
                       terminated=extra.get("terminated"),
                       suggestions=_links(_names(extra.get("suggestions") or extra.get("nearest"))))
        return render_template("search.html", **context), 404
    if result.get("ward"):
        return redirect(url_for("pages.area", level="ward", code=result["ward"]["code"],
                                postcode=result["postcode"]))
    context.update(state="outside", result=result, police_uk=POLICE_UK)
    return render_template("search.html", **context)


# --- the postcode marked on an area page ----------------------------------------------------


def postcode_on_area(raw, level, code, store, months):
    """What an area page shows for ``?postcode=``: the postcode, its areas and a headline.

    Parameters
    ----------
    raw : str or None
        The ``postcode`` query parameter.
    level, code : str
        The area page's level and code.
    store : crimemap.store.Store
    months : list of str
        The page's 12 months; the headline adds the last of them on its own.

    Returns
    -------
    dict or None
        None when there is no postcode, no lookup, or the postcode is not
        found (the page is then shown as it would be without it). Otherwise
        ``postcode, latitude, longitude, ward, snt, borough, force, message,
        in_area`` and ``last_month`` (the area's figures for the last month,
        or None).
    """
    if not raw:
        return None
    lookup = current_lookup()
    if lookup is None:
        return None
    try:
        result = resolve(lookup, raw)
    except CrimemapError:
        return None
    area = result.get(level) or {}
    marked = {key: result.get(key) for key in ("postcode", "latitude", "longitude", "ward", "snt", "borough",
                                               "force", "message")}
    marked["in_area"] = area.get("code") == code
    marked["last_month"] = None
    if marked["in_area"] and months:
        last = fig.area_figures(store, level, months[-1:], with_geometry=False)
        row = fig.find_area(last, code).to_dict()
        marked["last_month"] = {"month": months[-1], "count": row["count"], "rate_per_1000": row["rate_per_1000"],
                                "ratio_to_london": row["ratio_to_london"], "band": row["band"],
                                "no_data": row["no_data"], "london": last.attrs["london"]}
    marked["police_uk"] = POLICE_UK
    return marked


def mark_on_map(fmap, marked):
    """Draw the postcode's point on an area map (a circle: no marker images needed)."""
    if not marked or not marked["in_area"] or marked["latitude"] is None:
        return fmap
    label = str(escape(marked["postcode"]))
    folium.CircleMarker(location=[marked["latitude"], marked["longitude"]], radius=8, color="#0b0c0c", weight=3,
                        fill=True, fill_color="#ffdd00", fill_opacity=1,
                        tooltip=folium.Tooltip(label, permanent=True)).add_to(fmap)
    return fmap
