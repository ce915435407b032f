"""Crimes per published police.uk location inside a tile, for the ``points`` layer.

police.uk moves every crime to one of a fixed set of anonymised map points;
crimemap keeps those points as published (six decimals). A tile's points are
those locations with their crime count for the period and crime type:
one feature per location, never a single crime, never a moved or more
precise position (quantising to the tile grid only coarsens it). The Met's
count tables have no locations, so a Met crime type has no points.

Read-only SQL through the store's query method, as
:mod:`crimemap.figures.points` does for an area page.
"""

import math

import shapely

from crimemap import figures as fig
from crimemap.figures.months import check_months
from crimemap.tiles.grid import lonlat_to_mercator

POINTS_LAYER = "points"
_R = 6378137.0


def mercator_to_lonlat(x, y):
    """Web Mercator metres to longitude/latitude degrees (scalars)."""
    return math.degrees(x / _R), math.degrees(2 * math.atan(math.exp(y / _R)) - math.pi / 2)


def tile_points(store, box, months, crime):
    """Crimes per published location inside ``box`` (Web Mercator metres).

    Returns
    -------
    list of dict
        MVT features ``{"geometry": Point (Web Mercator), "properties":
        {"count": n}, "id": location id}``, most crimes first; empty for a
        Met crime type or no months.
    """
    months = check_months(months)
    categories = fig.categories_for(crime)
    if not months or categories == []:
        return []
    lon0, lat0 = mercator_to_lonlat(box[0], box[1])
    lon1, lat1 = mercator_to_lonlat(box[2], box[3])
    sql = ("SELECT l.id, l.lon_e6, l.lat_e6, COUNT(*) FROM locations l JOIN crimes c ON c.location_id = l.id "
           "WHERE l.lon_e6 BETWEEN ? AND ? AND l.lat_e6 BETWEEN ? AND ? "
           f"AND c.month IN ({','.join('?' * len(months))})")
    params = [math.floor(lon0 * 1e6), math.ceil(lon1 * 1e6), math.floor(lat0 * 1e6), math.ceil(lat1 * 1e6), *months]
    if categories is not None:
        sql += f" AND c.category IN ({','.join('?' * len(categories))})"
        params += categories
    sql += " GROUP BY l.id, l.lon_e6, l.lat_e6 ORDER BY COUNT(*) DESC, l.id"
    out = []
    for location, lon_e6, lat_e6, n in store.query(sql, params):
        x, y = lonlat_to_mercator(lon_e6 / 1e6, lat_e6 / 1e6)
        out.append({"geometry": shapely.Point(float(x), float(y)), "properties": {"count": int(n)},
                    "id": int(location)})
    return out
