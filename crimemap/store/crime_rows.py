"""Crime rows and locations read from the store, for the police.uk-compatible API.

Read-only queries over the ``crimes``, ``locations``, ``batches``, ``areas``
and ``area_population`` tables (schema: :mod:`crimemap.store.schema`). Each
function takes the store object and reads with :meth:`crimemap.store.Store.query`
in the portable SQL both backends accept, so a server thread never writes and
never blocks the loader. The police.uk logic (polygons, radius, JSON shapes) is in
:mod:`crimemap.policeuk_compat`; this module only fetches rows.
"""

import numpy as np

# The columns every crime query returns, in this order (see ROW_KEYS).
_CRIME_COLUMNS = ("c.id, c.month, c.force, c.category, c.crime_id, c.api_id, c.street, c.street_id, "
                  "c.outcome, c.outcome_month, c.context, c.location_type, c.location_subtype, "
                  "l.lat_e6, l.lon_e6, c.location_id")
ROW_KEYS = ("id", "month", "force", "category", "crime_id", "api_id", "street", "street_id", "outcome",
            "outcome_month", "context", "location_type", "location_subtype", "lat_e6", "lon_e6", "location_id")
# police.uk's order: by api_id, crimes without one first (SQLite's NULL order, written out
# because PostgreSQL sorts NULLs last), then in the order they were stored.
_ORDER = " ORDER BY CASE WHEN c.api_id IS NULL THEN 0 ELSE 1 END, c.api_id, c.id"
# Location ids go into IN (?,?,...) lists of at most this many (under SQLite's 32,766 and
# PostgreSQL's 65,535 parameters per statement).
_IDS_PER_QUERY = 10000


def _order_key(row):
    return (row["api_id"] is not None, row["api_id"] or 0, row["id"])


def _chunks(ids):
    ids = [int(i) for i in ids]
    return [ids[i:i + _IDS_PER_QUERY] for i in range(0, len(ids), _IDS_PER_QUERY)]


def _rows(store, sql, params, limit=None):
    if limit is not None:
        sql += " LIMIT ?"
        params = [*params, int(limit)]
    return [dict(zip(ROW_KEYS, row)) for row in store.query(sql, params)]


def _category_filter(category, params):
    if category is None:
        return ""
    params.append(category)
    return " AND c.category = ?"


def point_months(store):
    """Months holding crime points (police.uk feeds), newest first."""
    rows = store.query("SELECT DISTINCT month FROM batches WHERE kind = 'points' ORDER BY month DESC")
    return [r[0] for r in rows]


def month_categories(store, month):
    """The crime categories stored for one month (any feed of points)."""
    rows = store.query("SELECT DISTINCT category FROM crimes WHERE month = ? AND category IS NOT NULL", (month,))
    return {r[0] for r in rows}


def locations_in_box(store, lon_min, lat_min, lon_max, lat_max):
    """Stored locations inside a longitude/latitude box.

    Returns
    -------
    tuple of numpy.ndarray
        ``(ids, lon, lat)``: location ids and degrees (from the stored
        micro-degrees, the precision police.uk publishes).
    """
    rows = store.query(
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
    chunks = _chunks(location_ids)
    rows = []
    for chunk in chunks:
        params = [month, *chunk]
        sql = (f"SELECT {_CRIME_COLUMNS} FROM crimes c JOIN locations l ON l.id = c.location_id "
               f"WHERE c.month = ? AND c.location_id IN ({','.join('?' * len(chunk))})")
        sql += _category_filter(category, params)
        rows += _rows(store, sql + _ORDER, params, limit)
    if len(chunks) > 1:
        rows.sort(key=_order_key)
        if limit is not None:
            rows = rows[:int(limit)]
    return rows


def locations_with_crimes(store, location_ids, month):
    """The ids among ``location_ids`` where a crime of ``month`` is stored."""
    found = set()
    for chunk in _chunks(location_ids):
        rows = store.query(
            f"SELECT DISTINCT location_id FROM crimes WHERE month = ? AND location_id IN ({','.join('?' * len(chunk))})",
            [month, *chunk])
        found.update(r[0] for r in rows)
    return found


def crimes_at_street(store, street_id, month, limit=None):
    """Crimes of one month mapped to a police.uk location (``street.id``)."""
    params = [month, int(street_id)]
    sql = (f"SELECT {_CRIME_COLUMNS} FROM crimes c JOIN locations l ON l.id = c.location_id "
           "WHERE c.month = ? AND c.street_id = ?" + _ORDER)
    return _rows(store, sql, params, limit)


def crimes_without_location(store, force, month, category=None, limit=None):
    """Crimes of one month and force that carry no location."""
    params = [month, force]
    sql = (f"SELECT {_CRIME_COLUMNS} FROM crimes c LEFT JOIN locations l ON l.id = c.location_id "
           "WHERE c.month = ? AND c.force = ? AND c.location_id IS NULL")
    sql += _category_filter(category, params)
    return _rows(store, sql + _ORDER, params, limit)
