"""The data.police.uk API, answered from the store (no Flask here).

The web layer (:mod:`crimemap.web.policeuk_api`) reads a request and calls
these functions; they check the values a client sent, ask
:mod:`crimemap.store.crime_rows` for the rows and return police.uk's JSON
shapes (see docs/policeuk-api.md for what each method returns and where
crimemap differs). police.uk's conventions kept here:

- ``poly`` is ``lat,lng:lat,lng:...``; the first and last points need not
  be the same. A point on the polygon's edge counts as inside.
- ``lat``/``lng`` select crimes within one mile (1,609.344 m, great-circle
  distance) of the point.
- ``date`` is ``YYYY-MM``; the default is the latest month loaded.
- Latitudes and longitudes are strings in the JSON, as police.uk sends them.
- More than ``max_crimes`` (police.uk: 10,000) crimes in one answer is a 503.
"""

import json
import math
import re
import threading
from pathlib import Path

import numpy as np
import shapely

from crimemap.crs import lonlat_to_bng, to_wgs84
from crimemap.errors import BadQuery, CrimemapError, NotFound
from crimemap.store import crime_rows

SCHEMAS = Path(__file__).resolve().parent / "schemas"
MILE_M = 1609.344
EARTH_RADIUS_M = 6371008.8
ALL_CRIME = "all-crime"

_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_ID = re.compile(r"[0-9]{1,18}")
_NUMBER = re.compile(r"[+-]?([0-9]{1,3}(\.[0-9]*)?|\.[0-9]+)")
# Longest text quoted back in an error message.
_SHOWN_MAX = 40


class TooManyCrimes(CrimemapError):
    """More crimes than police.uk answers in one request (its 503)."""

    status = 503


def _shown(value):
    text = str(value)
    return repr(text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX] + "…")


# ----------------------------------------------------------------- reference data
def _load(name):
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


_CATEGORIES = _load("police_uk_categories.json")["categories"]
_FORCES = _load("police_uk_force_names.json")["forces"]
FORCE_NAMES = {f["id"]: f["name"] for f in _FORCES}
CATEGORY_NAMES = {c["slug"]: c["label"] for c in _CATEGORIES}


def forces():
    """police.uk ``forces``: ``[{id, name}]`` for every force police.uk lists."""
    return [dict(f) for f in _FORCES]


def force(force_id):
    """police.uk ``forces/<id>``; :class:`NotFound` for an unknown id.

    crimemap holds no force descriptions or contact details, so those
    members are null or empty (police.uk's shape, with nothing made up).
    """
    if force_id not in FORCE_NAMES:
        raise NotFound(f"unknown force {_shown(force_id)}")
    return {"description": None, "url": None, "engagement_methods": [], "telephone": None,
            "id": force_id, "name": FORCE_NAMES[force_id]}


def check_category(category):
    """A police.uk category slug, or ``all-crime``; :class:`NotFound` otherwise (police.uk's 404)."""
    if category != ALL_CRIME and category not in CATEGORY_NAMES:
        raise NotFound(f"unknown crime category {_shown(category)}; see /api/crime-categories")
    return None if category == ALL_CRIME else category


# ----------------------------------------------------------------- parameters
def parse_month(text, store, name="date"):
    """``YYYY-MM`` as given, or the latest month loaded when ``text`` is empty or None.

    Returns None when nothing is loaded and no month was asked for.
    """
    if text is None or text == "":
        months = crime_rows.point_months(store)
        return months[0] if months else None
    if not isinstance(text, str) or not _MONTH.fullmatch(text):
        raise BadQuery(f"invalid {name} {_shown(text)}; expected YYYY-MM, e.g. 2018-04")
    return text


def _number(text, name, low, high):
    if not isinstance(text, str) or not _NUMBER.fullmatch(text.strip()):
        raise BadQuery(f"invalid {name} {_shown(text)}; expected a decimal number of degrees")
    value = float(text)
    if not low <= value <= high:
        raise BadQuery(f"{name} {_shown(text)} is out of range; expected {low} to {high}")
    return value


def parse_point(lat, lng):
    """``(lat, lng)`` floats from two strings; :class:`BadQuery` (400) for anything else."""
    if lat is None or lng is None:
        raise BadQuery("lat and lng are both required (or poly=lat,lng:lat,lng:...)")
    return _number(lat, "lat", -90.0, 90.0), _number(lng, "lng", -180.0, 180.0)


def parse_poly(text, max_vertices):
    """A police.uk ``poly`` as a shapely polygon in longitude/latitude.

    Parameters
    ----------
    text : str
        ``lat,lng:lat,lng:...``, at least three distinct points. The ring is
        closed for the caller; one trailing ``:`` is tolerated.
    max_vertices : int
        The most points accepted (``POLICEUK_POLY_MAX_VERTICES``).

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        A self-intersecting ring is repaired with ``make_valid``.
    """
    if not isinstance(text, str) or not text.strip():
        raise BadQuery("poly is empty; expected lat,lng:lat,lng:lat,lng")
    parts = text.strip().split(":")
    if parts and parts[-1] == "":
        parts.pop()
    if len(parts) > max_vertices:
        raise BadQuery(f"poly has {len(parts)} points; at most {max_vertices} are allowed")
    points = []
    for part in parts:
        pair = part.split(",")
        if len(pair) != 2:
            raise BadQuery(f"invalid poly point {_shown(part)}; expected lat,lng")
        lat, lng = parse_point(pair[0], pair[1])
        points.append((lng, lat))
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    if len(set(points)) < 3:
        raise BadQuery("poly needs at least three distinct points")
    polygon = shapely.Polygon(points)
    if not polygon.is_valid:
        polygon = shapely.make_valid(polygon)
        parts = [g for g in getattr(polygon, "geoms", [polygon]) if g.geom_type in ("Polygon", "MultiPolygon")]
        polygon = shapely.union_all(parts) if parts else shapely.Polygon()
    if polygon.is_empty or polygon.area == 0:
        raise BadQuery("poly encloses no area")
    return polygon


def circle_box(lat, lng, radius_m=MILE_M):
    """A longitude/latitude box holding every point within ``radius_m`` of a point."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    coslat = max(math.cos(math.radians(lat)), 1e-6)
    dlon = min(180.0, dlat / coslat)
    return lng - dlon, lat - dlat, lng + dlon, lat + dlat


def great_circle_m(lat, lng, lats, lngs):
    """Haversine distances in metres from one point to arrays of points."""
    p1, p2 = math.radians(lat), np.radians(lats)
    dphi = p2 - p1
    dlmb = np.radians(lngs) - math.radians(lng)
    a = np.sin(dphi / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


# ----------------------------------------------------------------- crimes
def _coordinate(e6):
    return None if e6 is None else f"{e6 / 1e6:.6f}"


def crime_object(row):
    """One stored crime in police.uk's JSON shape.

    ``id`` is police.uk's own id when the source gave one (API JSON); a crime
    read from a street CSV has none, so it gets the store's row id, which, like
    police.uk's id, may change when its month is reloaded. ``persistent_id``
    is stable.
    """
    location = None
    if row["location_id"] is not None:
        location = {"latitude": _coordinate(row["lat_e6"]),
                    "street": {"id": row["street_id"], "name": row["street"] or ""},
                    "longitude": _coordinate(row["lon_e6"])}
    outcome = None
    if row["outcome"]:
        outcome = {"category": row["outcome"], "date": row["outcome_month"] or row["month"]}
    location_type = row["location_type"]
    if location is not None and not location_type:
        location_type = "BTP" if row["force"] == "btp" else "Force"
    return {"category": row["category"], "location_type": location_type if location is not None else None,
            "location": location, "context": row["context"] or "", "outcome_status": outcome,
            "persistent_id": row["crime_id"] or "",
            "id": int(row["api_id"]) if row["api_id"] is not None else int(row["id"]),
            "location_subtype": row["location_subtype"] or "", "month": row["month"]}


def _serve(rows, max_crimes):
    if len(rows) > max_crimes:
        raise TooManyCrimes(f"more than {max_crimes:,} crimes in this request; ask for a smaller area")
    return [crime_object(r) for r in rows]


def street_crimes(store, category, month, *, poly=None, point=None, max_crimes=10_000):
    """police.uk ``crimes-street/<category>``: crimes in a polygon or within a mile of a point.

    Parameters
    ----------
    store : crimemap.store.Store
    category : str
        A slug or ``all-crime`` (checked by :func:`check_category`).
    month : str or None
        ``YYYY-MM``; None (nothing loaded) answers an empty list.
    poly : shapely geometry, optional
        From :func:`parse_poly`, in longitude/latitude.
    point : tuple of float, optional
        ``(lat, lng)`` from :func:`parse_point`.
    max_crimes : int
        More crimes than this raise :class:`TooManyCrimes` (503).

    Returns
    -------
    list of dict
        police.uk crime objects, ordered by id.
    """
    category = check_category(category)
    if month is None:
        return []
    if poly is not None:
        lon_min, lat_min, lon_max, lat_max = poly.bounds
        ids, lon, lat = crime_rows.locations_in_box(store, lon_min, lat_min, lon_max, lat_max)
        shapely.prepare(poly)
        inside = shapely.intersects_xy(poly, lon, lat) if len(ids) else np.zeros(0, dtype=bool)
    elif point is not None:
        lat0, lng0 = point
        ids, lon, lat = crime_rows.locations_in_box(store, *circle_box(lat0, lng0))
        inside = great_circle_m(lat0, lng0, lat, lon) <= MILE_M
    else:
        raise BadQuery("give poly=lat,lng:lat,lng:... or lat and lng")
    rows = crime_rows.crimes_at_locations(store, ids[inside].tolist(), month, category, limit=max_crimes + 1)
    return _serve(rows, max_crimes)


def crimes_at_location(store, month, *, location_id=None, point=None, max_crimes=10_000):
    """police.uk ``crimes-at-location``: crimes at one location.

    ``location_id`` is a police.uk location id (a crime's ``street.id``). A
    point picks the nearest stored location within a mile of it, as police.uk
    picks the nearest of its locations; none within a mile answers an empty list.
    """
    if month is None:
        return []
    if location_id is not None:
        if not isinstance(location_id, str) or not _ID.fullmatch(location_id):
            raise BadQuery(f"invalid location_id {_shown(location_id)}; expected a whole number")
        return _serve(crime_rows.crimes_at_street(store, int(location_id), month, limit=max_crimes + 1),
                      max_crimes)
    if point is None:
        raise BadQuery("give location_id, or lat and lng")
    lat0, lng0 = point
    ids, lon, lat = crime_rows.locations_in_box(store, *circle_box(lat0, lng0))
    # Only locations with a crime this month: police.uk's own locations are
    # fixed map points, crimemap's are the points crimes were published at.
    keep = np.isin(ids, list(crime_rows.locations_with_crimes(store, ids.tolist(), month)))
    ids, lon, lat = ids[keep], lon[keep], lat[keep]
    if not len(ids):
        return []
    distance = great_circle_m(lat0, lng0, lat, lon)
    nearest = int(np.argmin(distance))
    if distance[nearest] > MILE_M:
        return []
    rows = crime_rows.crimes_at_locations(store, [int(ids[nearest])], month, limit=max_crimes + 1)
    return _serve(rows, max_crimes)


def crimes_no_location(store, force_id, category, month, max_crimes=10_000):
    """police.uk ``crimes-no-location``: a force's crimes of one month with no location."""
    if not force_id:
        raise BadQuery("force is required, e.g. force=metropolitan; see /api/forces")
    if force_id not in FORCE_NAMES:
        raise NotFound(f"unknown force {_shown(force_id)}")
    category = check_category(category or ALL_CRIME)
    if month is None:
        return []
    rows = crime_rows.crimes_without_location(store, force_id, month, category, limit=max_crimes + 1)
    return _serve(rows, max_crimes)


def crime_categories(store, month):
    """police.uk ``crime-categories``: ``[{url, name}]``, ``all-crime`` first.

    The current categories, plus any other (historic) category stored for
    the month.
    """
    stored = crime_rows.month_categories(store, month) if month else set()
    listed = [{"url": ALL_CRIME, "name": "All crime"}]
    listed += [{"url": c["slug"], "name": c["label"]} for c in _CATEGORIES
               if not c.get("historic") or c["slug"] in stored]
    return listed


def street_dates(store):
    """police.uk ``crimes-street-dates``: ``[{date, stop-and-search}]``, newest first.

    ``stop-and-search`` lists the forces with stop and search data for the
    month on police.uk; crimemap serves none through this API, so it is empty.
    """
    return [{"date": month, "stop-and-search": []} for month in crime_rows.point_months(store)]


# ----------------------------------------------------------------- neighbourhoods
class Neighbourhoods:
    """The loaded SNT areas (the ward layer when no SNT layer is loaded, docs/snt.md) as police.uk neighbourhoods.

    Built once per store data version (see :func:`neighbourhoods`).
    """

    def __init__(self, store):
        layer = store.layer("snt")
        self.layer = layer
        if layer is None:
            self.codes, self.names, self.forces = [], [], []
            self.geoms = np.empty(0, dtype=object)
            self.wgs84 = np.empty(0, dtype=object)
            self.population = {}
            self.tree = shapely.STRtree([])
            return
        gdf = store.areas(layer["id"], with_geometry=True)
        self.codes = gdf["code"].tolist()
        self.names = gdf["name"].tolist()
        self.forces = gdf["force"].tolist()
        self.geoms = gdf.geometry.to_numpy()
        self.wgs84 = to_wgs84(gdf).geometry.to_numpy()
        self.tree = shapely.STRtree(self.geoms)
        pop = store.population(layer["id"])
        self.population = {}
        if len(pop):
            latest = pop.sort_values("year").groupby("code").tail(1)
            self.population = dict(zip(latest["code"], latest["persons"].astype(int)))
        self._index = {code: i for i, code in enumerate(self.codes)}

    def of_force(self, force_id):
        """police.uk ``<force>/neighbourhoods``: ``[{id, name}]``."""
        if force_id not in FORCE_NAMES:
            raise NotFound(f"unknown force {_shown(force_id)}")
        return [{"id": c, "name": n} for c, n, f in zip(self.codes, self.names, self.forces) if f == force_id]

    def _find(self, force_id, code):
        i = self._index.get(code) if self.layer is not None else None
        if i is None or self.forces[i] != force_id:
            raise NotFound(f"unknown neighbourhood {_shown(code)} of force {_shown(force_id)}")
        return i

    def detail(self, force_id, code):
        """police.uk ``<force>/<id>``: the neighbourhood's name, centre and population.

        crimemap holds no team contacts, links or descriptions: those members are empty.
        """
        i = self._find(force_id, code)
        centre = shapely.point_on_surface(self.wgs84[i])
        return {"url_force": None, "contact_details": {}, "name": self.names[i], "links": [],
                "centre": {"latitude": f"{centre.y:.6f}", "longitude": f"{centre.x:.6f}"},
                "locations": [], "description": None, "id": code,
                "population": str(self.population.get(code, 0))}

    def boundary(self, force_id, code):
        """police.uk ``<force>/<id>/boundary``: ``[{latitude, longitude}]`` strings (WGS84).

        The outer ring of the neighbourhood's largest part, as one list like
        police.uk's; the ring is closed (last point = first).
        """
        i = self._find(force_id, code)
        geom = self.wgs84[i]
        parts = list(getattr(geom, "geoms", [geom]))
        largest = max(parts, key=lambda g: g.area)
        coords = shapely.get_coordinates(largest.exterior)
        return [{"latitude": f"{y:.6f}", "longitude": f"{x:.6f}"} for x, y in coords]

    def locate(self, lat, lng):
        """police.uk ``locate-neighbourhood``: ``{force, neighbourhood}``; :class:`NotFound` outside.

        A point on the edge of two neighbourhoods goes to the smaller code,
        as the spatial join does (docs/join.md).
        """
        x, y = lonlat_to_bng(lng, lat)
        hits = []
        if np.isfinite([x, y]).all():
            hits = self.tree.query(shapely.Point(float(x), float(y)), predicate="intersects")
        if not len(hits):
            raise NotFound("no neighbourhood contains this point")
        i = min(hits, key=lambda k: self.codes[k])
        return {"force": self.forces[i], "neighbourhood": self.codes[i]}


_CACHE = {}
_CACHE_LOCK = threading.Lock()


def neighbourhoods(store):
    """The :class:`Neighbourhoods` of a store's current data version (cached per process)."""
    key = (str(getattr(store, "path", id(store))), store.data_version())
    found = _CACHE.get(key)
    if found is None:
        with _CACHE_LOCK:
            found = _CACHE.get(key)
            if found is None:
                found = Neighbourhoods(store)
                for old in [k for k in _CACHE if k[0] == key[0]]:
                    del _CACHE[old]
                _CACHE[key] = found
    return found


def parse_q(text):
    """``locate-neighbourhood``'s ``q=lat,lng`` as ``(lat, lng)``."""
    if not isinstance(text, str) or text.count(",") != 1:
        raise BadQuery(f"invalid q {_shown(text)}; expected q=lat,lng")
    lat, lng = text.split(",")
    return parse_point(lat, lng)
