"""Crime rows and locations read from the store, for the police.uk-compatible API.

Read-only queries over the ``crimes``, ``locations``, ``batches``, ``areas``
and ``area_population`` tables (schema: :mod:`crimemap.store.sqlite`). Each
function takes the store object and uses its per-thread read connection
(``store._query``), so a server thread never writes and never blocks the
loader. The police.uk logic (polygons, radius, JSON shapes) is in
:mod:`crimemap.policeuk_compat`; this module only fetches rows.
"""

import json

import numpy as np

# The columns every crime query returns, in this order (see ROW_KEYS).
_CRIME_COLUMNS = ("c.rowid, c.month, c.force, c.category, c.crime_id, c.api_id, c.street, c.street_id, "
                  "c.outcome, c.outcome_month, c.context, c.location_type, c.location_subtype, "
                  "l.lat_e6, l.lon_e6, c.location_id")
ROW_KEYS = ("rowid", "month", "force", "category", "crime_id", "api_id", "street", "street_id", "outcome",
            "outcome_month", "context", "location_type", "location_subtype", "lat_e6", "lon_e6", "location_id")


def _rows(store, sql, params, limit=None):
    if limit is not None:
        sql += " LIMIT ?"
        params = [*params, int(limit)]
    return [dict(zip(ROW_KEYS, row)) for row in store._query(sql, params)]


def _category_filter(category, params):
    if category is None:
        return ""
    params.append(category)
    return " AND c.category = ?"


def point_months(store):
    """Months holding crime points (police.uk feeds), newest first."""
    rows = store._query("SELECT DISTINCT month FROM batches WHERE kind = 'points' ORDER BY month DESC")
    return [r[0] for r in rows]


def month_categories(store, month):
    """The crime categories stored for one month (any feed of points)."""
    rows = store._query("SELECT DISTINCT category FROM crimes WHERE month = ? AND category IS NOT NULL", (month,))
    return {r[0] for r in rows}


def locations_in_box(store, lon_min, lat_min, lon_max, lat_max):
    """Stored locations inside a longitude/latitude box.

    Returns
    -------
    tuple of numpy.ndarray
        ``(ids, lon, lat)``: location ids and degrees (from the stored
        micro-degrees, the precision police.uk publishes).
    """
    rows = store._query(
        "SELECT id, lon_e6, lat_e6 FROM locations WHERE lon_e6 BETWEEN ? AND ? AND lat_e6 BETWEEN ? AND ?",
        (int(np.floor(lon_min * 1e6)), int(np.ceil(lon_max * 1e6)),
         int(np.floor(lat_min * 1e6)), int(np.ceil(lat_max * 1e6))))
    if not rows:
        return np.empty(0, dtype="int64"), np.empty(0), np.empty(0)
    arr = np.asarray(rows, dtype="int64")
    return arr[:, 0], arr[:, 1] / 1e6, arr[:, 2] / 1e6


def crimes_at_locations(store, location_ids, month, category=None, limit=None):
    """Crimes of one month at the given locations, in id order.

    Parameters
    ----------
    store : crimemap.store.Store
    location_ids : sequence of int
    month : str
        ``YYYY-MM``.
    category : str, optional
        A police.uk category slug; None for every category.
    limit : int, optional
        Return at most this many rows (the caller asks for one more than it
        serves, to know that a request is too large).

    Returns
    -------
    list of dict
        One per crime, with the keys of ``ROW_KEYS``.
    """
    params = [month, json.dumps([int(i) for i in location_ids])]
    sql = (f"SELECT {_CRIME_COLUMNS} FROM crimes c JOIN locations l ON l.id = c.location_id "
           "WHERE c.month = ? AND c.location_id IN (SELECT value FROM json_each(?))")
    sql += _category_filter(category, params)
    sql += " ORDER BY c.api_id, c.rowid"
    return _rows(store, sql, params, limit)


def locations_with_crimes(store, location_ids, month):
    """The ids among ``location_ids`` where a crime of ``month`` is stored."""
    rows = store._query(
        "SELECT DISTINCT location_id FROM crimes WHERE month = ? AND location_id IN (SELECT value FROM json_each(?))",
        (month, json.dumps([int(i) for i in location_ids])))
    return {r[0] for r in rows}


def crimes_at_street(store, street_id, month, limit=None):
    """Crimes of one month mapped to a police.uk location (``street.id``)."""
    params = [month, int(street_id)]
    sql = (f"SELECT {_CRIME_COLUMNS} FROM crimes c JOIN locations l ON l.id = c.location_id "
           "WHERE c.month = ? AND c.street_id = ? ORDER BY c.api_id, c.rowid")
    return _rows(store, sql, params, limit)


def crimes_without_location(store, force, month, category=None, limit=None):
    """Crimes of one month and force that carry no location."""
    params = [month, force]
    sql = (f"SELECT {_CRIME_COLUMNS} FROM crimes c LEFT JOIN locations l ON l.id = c.location_id "
           "WHERE c.month = ? AND c.force = ? AND c.location_id IS NULL")
    sql += _category_filter(category, params)
    sql += " ORDER BY c.api_id, c.rowid"
    return _rows(store, sql, params, limit)
