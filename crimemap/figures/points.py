"""Crimes of one area at the locations the source published, for the area page's map.

police.uk never publishes where a crime happened: it moves each crime to one
of a fixed set of anonymised map points ("On or near ..."), and crimemap keeps
those points exactly as published (``locations.lon_e6/lat_e6``, the source's
six decimals). Here the crimes of one area are counted per published point,
so a map shows each point once with its count and never anything more
precise than the source: no single crime, no jitter, no invented position.

Only police.uk point data has locations; the Met's count tables have none.

A pure core module: read-only SQL through the store's query method, plain
data frames out.
"""

import pandas as pd

from crimemap.figures.months import check_months

COLUMNS = ["lon", "lat", "street", "count", "by_category"]


def _placeholders(values):
    return ",".join("?" * len(values))


def area_points(store, layer, code, months, categories=None, limit=None):
    """Crimes per published location in one area and period.

    Parameters
    ----------
    store : crimemap.store.Store
        Any store (read with its portable ``query``).
    layer : dict
        The boundary layer (from :func:`crimemap.figures.get_layer`).
    code : str
        The area's code in that layer.
    months : list of str
        The period (``YYYY-MM``).
    categories : list of str, optional
        police.uk category slugs to count; every category when None.
    limit : int, optional
        Keep only the ``limit`` locations with the most crimes.

    Returns
    -------
    pandas.DataFrame
        One row per location, most crimes first (then west to east), columns
        :data:`COLUMNS`: ``lon``/``lat`` as published (degrees, six
        decimals), ``street`` (the published location text, e.g. "On or near
        High Street"; raw text, to be escaped by whoever renders it),
        ``count``, and ``by_category`` (list of ``(slug, n)``, largest
        first). ``attrs``: ``locations`` and ``crimes`` (totals before
        ``limit``), ``shown`` (locations kept) and ``months``.
    """
    months = check_months(months)
    empty = pd.DataFrame(columns=COLUMNS)
    empty.attrs = {"locations": 0, "crimes": 0, "shown": 0, "months": months}
    if not months or (categories is not None and not categories):
        return empty
    sql = ("SELECT la.location_id, l.lon_e6, l.lat_e6, c.category, COUNT(*), MAX(c.street) "
           "FROM location_areas la "
           "JOIN crimes c ON c.location_id = la.location_id "
           "JOIN locations l ON l.id = la.location_id "
           f"WHERE la.layer_id = ? AND la.code = ? AND c.month IN ({_placeholders(months)})")
    params = [layer["id"], code, *months]
    if categories is not None:
        sql += f" AND c.category IN ({_placeholders(categories)})"
        params += list(categories)
    sql += " GROUP BY la.location_id, l.lon_e6, l.lat_e6, c.category"
    rows = pd.DataFrame(store.query(sql, params), columns=["location", "lon_e6", "lat_e6", "category", "n", "street"])
    if rows.empty:
        return empty
    rows = rows.sort_values(["location", "n", "category"], ascending=[True, False, True])
    grouped = rows.groupby("location", sort=False)
    out = pd.DataFrame({
        # Integers over 1e6 back to degrees: exactly the six decimals published.
        "lon": grouped["lon_e6"].first() / 1e6,
        "lat": grouped["lat_e6"].first() / 1e6,
        "street": grouped["street"].agg(lambda s: next((v for v in s if v), None)),
        "count": grouped["n"].sum().astype(int),
        "by_category": grouped.apply(lambda g: [(c, int(n)) for c, n in zip(g["category"], g["n"])],
                                     include_groups=False),
    }).sort_values(["count", "lon", "lat"], ascending=[False, True, True]).reset_index(drop=True)
    total_locations, total_crimes = len(out), int(out["count"].sum())
    if limit is not None:
        out = out.head(int(limit))
    out = out[COLUMNS]
    out.attrs = {"locations": total_locations, "crimes": total_crimes, "shown": len(out), "months": months}
    return out
