"""From what a resident typed to their ward, SNT, borough and police force.

:func:`resolve` is the one function the "your area" search and the JSON API
call. It raises the typed errors the web layer renders: InvalidPostcode for a
bad format, PostcodeNotFound (with a way forward) for a postcode the lookup
does not hold or that has been terminated. :func:`to_postcodes_io` maps a
lookup row to the postcodes.io result shape for the compatibility endpoints.
"""

from crimemap.errors import InvalidPostcode, PostcodeNotFound
from crimemap.postcodes.areas import CITY, CITY_OF_LONDON_CODE, MET
from crimemap.postcodes.normalise import normalise

__all__ = ["resolve", "to_postcodes_io", "outside_message", "COUNTRIES"]

POLICE_UK = "https://www.police.uk/"
CITY_MESSAGE = ("This postcode is in the City of London, which has its own police force: the City of London "
                "Police, not the Metropolitan Police.")
OUTSIDE_MESSAGE = ("This postcode is outside the Metropolitan Police area, so crimemap has no figures for it. "
                   "Find your local police force and its crime figures at " + POLICE_UK)
EDGE_MESSAGE = ("This postcode lies just outside the loaded ward boundaries, so no ward can be shown for it; its "
                "borough comes from the postcode directory.")

COUNTRIES = {
    "E92000001": "England", "W92000004": "Wales", "S92000003": "Scotland", "N92000002": "Northern Ireland",
    "L93000001": "Channel Islands", "M83000003": "Isle of Man",
}
# Police force areas (ONS PFA codes) of the two London forces.
PFA = {MET: ("E23000001", "Metropolitan Police"), CITY: ("E23000034", "London, City of")}


def _borough_names():
    import json
    from importlib import resources

    data = json.loads(resources.files("crimemap").joinpath("schemas", "london_boroughs.json").read_text("utf-8"))
    return {b["code"]: b["name"] for b in data["boroughs"]}


_BOROUGHS = None


def borough_name(code):
    """The name of a London borough code from the bundled ONS table, or None."""
    global _BOROUGHS
    if _BOROUGHS is None:
        _BOROUGHS = _borough_names()
    return _BOROUGHS.get(code)


def outside_message(force):
    """The message shown for a postcode policed by ``force`` (None for the Met)."""
    if force == CITY:
        return CITY_MESSAGE
    if force is None:
        return OUTSIDE_MESSAGE
    return None


def _directory_force(district_code):
    if not district_code:
        return None
    if district_code == CITY_OF_LONDON_CODE:
        return CITY
    return MET if district_code.startswith("E09") else None


def _place(row):
    return {"postcode": row["postcode"], "latitude": row["latitude"], "longitude": row["longitude"],
            **({"distance": row["distance"]} if "distance" in row else {})}


def _not_found(lookup, postcode):
    outcode = lookup.outcode(postcode.split(" ")[0])
    rows = lookup.sector_neighbours(postcode, lookup.suggestions)
    suggestions = [_place(lookup.row(i)) for i in rows]
    if not suggestions and outcode and outcode["eastings"] is not None:
        suggestions = [_place(r) for r in lookup.nearest_bng(outcode["eastings"], outcode["northings"],
                                                             limit=lookup.suggestions, radius_m=lookup.radius_max_m)]
    return PostcodeNotFound(suggestions=suggestions, outcode=outcode)


def _terminated(lookup, row):
    terminated = lookup.terminated(row["postcode"])
    nearest = []
    if row["eastings"] is not None:
        nearest = [_place(r) for r in lookup.nearest_bng(row["eastings"], row["northings"], limit=1,
                                                         radius_m=lookup.radius_max_m)]
    return PostcodeNotFound(terminated=terminated, nearest=nearest)


def resolve(lookup, text):
    """Resolve what a user typed to a postcode and the areas that contain it.

    Parameters
    ----------
    lookup : crimemap.postcodes.lookup.PostcodeLookup
        From :func:`crimemap.postcodes.get_lookup`; bound to the store's
        polygons when it came with a store.
    text : object
        The raw input, in any case or spacing.

    Returns
    -------
    dict
        ``postcode``, ``outcode``, ``incode``, ``latitude``, ``longitude``,
        ``eastings``, ``northings``, ``positional_quality``; ``ward``, ``snt``
        and ``borough`` as ``{code, name}`` or None (the loaded polygons
        containing the point); ``force`` (``"metropolitan"``,
        ``"city-of-london"`` or None when outside both); ``message`` (for the
        City of London or outside the Met, else None); ``directory``
        (``ward_code``, ``district_code``: the directory's own codes, a
        cross-check).

    Raises
    ------
    crimemap.errors.InvalidPostcode
        ``"Invalid postcode"``: ``text`` is not a well-formed UK postcode.
    crimemap.errors.PostcodeNotFound
        ``"Postcode not found"``: with ``suggestions`` (nearby known
        postcodes) and ``outcode`` (the outward code's summary, or None) for
        a postcode the lookup does not hold; with ``terminated`` ({postcode,
        year_terminated, month_terminated, latitude, longitude}) and
        ``nearest`` (the nearest live postcode) for a terminated one.
    """
    postcode = normalise(text)
    if postcode is None:
        raise InvalidPostcode()
    i = lookup.index(postcode)
    if i < 0:
        raise _not_found(lookup, postcode)
    postcode, lat, lon, east, north, quality, live, ward_code, district_code = lookup.brief(i)
    if not live:
        raise _terminated(lookup, lookup.row(i))
    ward = snt = borough = force = None
    message = None
    areas = lookup.areas
    if areas is not None and areas.loaded and east is not None:
        ward, snt, borough, force = areas.of_row(i)
    if force is None:
        # Outside every loaded polygon (or none loaded): the directory's
        # district decides the force. 22 London postcodes lie a few metres
        # outside the generalised London outline; they are still the Met's.
        force = _directory_force(district_code)
        if force is not None and borough is None:
            borough = {"code": district_code, "name": _area_name(lookup, "borough", district_code)}
            if areas is not None and areas.loaded:
                message = EDGE_MESSAGE
    if force != MET:
        message = outside_message(force)
    outcode, incode = postcode.split(" ")
    return {
        "postcode": postcode, "outcode": outcode, "incode": incode, "latitude": lat, "longitude": lon,
        "eastings": east, "northings": north, "positional_quality": quality,
        "ward": ward, "snt": snt, "borough": borough, "force": force, "message": message,
        "directory": {"ward_code": ward_code, "district_code": district_code},
    }


def _area_name(lookup, level, code):
    areas = lookup.areas
    if areas is not None:
        for area in areas.info.get(level, ()):
            if area["code"] == code:
                return area["name"]
    return borough_name(code) or code


def to_postcodes_io(row, areas=None):
    """Map a lookup row to a postcodes.io ``result`` object.

    Parameters
    ----------
    row : dict
        From :meth:`PostcodeLookup.get`.
    areas : dict, optional
        :func:`resolve`'s result (or any dict with ``ward``, ``borough`` and
        ``force``): the loaded polygons name the ward and district, so the
        compatibility API agrees with the map. Without it the directory's
        codes are used, named from the bundled London borough table.

    Returns
    -------
    dict
        The fields of postcodes.io's postcode result: ``postcode``,
        ``quality``, ``eastings``, ``northings``, ``country``, ``nhs_ha``,
        ``longitude``, ``latitude``, ``european_electoral_region``,
        ``primary_care_trust``, ``region``, ``lsoa``, ``msoa``, ``incode``,
        ``outcode``, ``parliamentary_constituency``, ``admin_district``,
        ``parish``, ``admin_county``, ``date_of_introduction``,
        ``admin_ward``, ``ced``, ``ccg``, ``nuts``, ``pfa`` and ``codes``.
        Fields the directory does not carry are None.
    """
    areas = areas or {}
    ward = areas.get("ward")
    borough = areas.get("borough")
    district_code = borough["code"] if borough else row.get("district_code")
    district_name = borough["name"] if borough else borough_name(row.get("district_code"))
    ward_code = ward["code"] if ward else row.get("ward_code")
    ward_name = ward["name"] if ward else None
    force = areas.get("force") or _directory_force(row.get("district_code"))
    pfa_code, pfa_name = PFA.get(force, (None, None))
    introduced = row.get("date_introduced")
    return {
        "postcode": row["postcode"],
        "quality": row.get("positional_quality"),
        "eastings": row.get("eastings"),
        "northings": row.get("northings"),
        "country": COUNTRIES.get(row.get("country_code")),
        "nhs_ha": row.get("nhs_ha_code"),
        "longitude": row.get("longitude"),
        "latitude": row.get("latitude"),
        "european_electoral_region": "London" if force else None,
        "primary_care_trust": None,
        "region": "London" if force else None,
        "lsoa": None,
        "msoa": None,
        "incode": row["incode"],
        "outcode": row["outcode"],
        "parliamentary_constituency": None,
        "admin_district": district_name,
        "parish": None,
        "admin_county": None,
        "date_of_introduction": introduced.replace("-", "") if introduced else None,
        "admin_ward": ward_name,
        "ced": None,
        "ccg": None,
        "nuts": None,
        "pfa": pfa_name,
        "codes": {
            "admin_district": district_code,
            "admin_county": row.get("county_code"),
            "admin_ward": ward_code,
            "parish": None,
            "parliamentary_constituency": None,
            "ccg": None,
            "ccg_id": None,
            "ced": None,
            "nuts": None,
            "lsoa": None,
            "msoa": None,
            "lau2": None,
            "pfa": pfa_code,
        },
    }
