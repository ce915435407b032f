"""What is loaded: the document behind ``crimemap status`` and ``/api/v1/status``."""

import json

from crimemap.postcodes.status import status as postcodes_status


def _rows(store, sql, params=()):
    return store.query(sql, params)


def _int(value):
    """A count or sum as a Python int (PostgreSQL's are bigint or numeric); None stays None."""
    return None if value is None else int(value)


def _one(store, sql, default):
    rows = _rows(store, sql)
    return rows[0] if rows else default


def build_status(store):
    """Describe a store's contents as a JSON-ready dict.

    Parameters
    ----------
    store : crimemap.store.sqlite.SQLiteStore

    Returns
    -------
    dict
        ``data_version``, ``data_as_of``, ``layers``, ``sources``, ``crimes``
        (rows read, joined, without a location, outside every area, rejected),
        ``no_location`` and ``outside`` per force and month, ``population``.
    """
    meta = store.meta()
    layers = store.layers()
    sources = []
    feeds = _rows(store,
                  f"SELECT feed, kind, MIN(format), {store.group_concat_sql('month', 32)}, SUM(rows_read), "
                  "SUM(no_location), SUM(rejected), COUNT(*) FROM batches GROUP BY feed, kind ORDER BY feed, kind")
    for feed, kind, fmt, months, rows_read, no_location, rejected, n_months in feeds:
        entry = {"feed": feed, "kind": kind, "format": fmt, "months": sorted((months or "").split()),
                 "n_months": int(n_months)}
        if kind == "points":
            entry.update(rows_read=_int(rows_read), no_location=_int(no_location), rejected=_int(rejected))
        else:
            entry.update(crimes=_int(rows_read))
        sources.append(entry)

    joined = bool(layers)
    outside_rows = []
    on_edge = 0
    if joined:
        # A located crime is outside when no loaded layer holds its location.
        outside_rows = _rows(
            store,
            "SELECT COALESCE(NULLIF(c.force, ''), 'unknown'), c.month, COUNT(*) FROM crimes c "
            "WHERE c.location_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM location_areas la "
            "WHERE la.location_id = c.location_id AND la.code IS NOT NULL) GROUP BY 1, 2 ORDER BY 1, 2")
        on_edge = _one(store, "SELECT COUNT(*) FROM crimes c WHERE EXISTS (SELECT 1 FROM location_areas la "
                              "WHERE la.location_id = c.location_id AND la.on_edge = 1)", (0,))[0]
        on_edge = int(on_edge)
        outside_rows = [(f, m, int(n)) for f, m, n in outside_rows]
    no_location_rows = _rows(
        store,
        "SELECT COALESCE(NULLIF(force, ''), 'unknown'), month, COUNT(*) FROM crimes WHERE location_id IS NULL "
        "GROUP BY 1, 2 ORDER BY 1, 2")
    totals = _one(store, "SELECT COALESCE(SUM(rows_read), 0), COALESCE(SUM(no_location), 0), "
                         "COALESCE(SUM(rejected), 0) FROM batches WHERE kind = 'points'", (0, 0, 0))
    rows_read, no_location, rejected = (int(v) for v in totals)
    no_location_rows = [(f, m, int(n)) for f, m, n in no_location_rows]
    outside = sum(r[2] for r in outside_rows)
    stored = rows_read - rejected
    crimes = {
        "rows_read": rows_read,
        "stored": stored,
        "joined": (stored - no_location - outside) if joined else None,
        "no_location": no_location,
        "outside": outside if joined else None,
        "on_edge": on_edge,
        "rejected": rejected,
    }
    months = [r[0] for r in _rows(store, "SELECT DISTINCT month FROM batches ORDER BY month")]
    population = [
        {"year": year, "lsoas": int(n), "persons": _int(persons)}
        for year, n, persons in _rows(store, "SELECT year, COUNT(*), SUM(persons) FROM lsoa_population "
                                             "GROUP BY year ORDER BY year")]
    area_population = [
        {"layer_id": int(lid), "year": year, "areas": int(n), "persons": _int(persons)}
        for lid, year, n, persons in _rows(store, "SELECT layer_id, year, COUNT(*), SUM(persons) "
                                                  "FROM area_population GROUP BY layer_id, year "
                                                  "ORDER BY layer_id, year")]
    last = _rows(store, "SELECT at, kind, sources, report FROM ingests ORDER BY id DESC LIMIT 5")
    stop_months = [r[0] for r in _rows(store, "SELECT DISTINCT month FROM stop_batches ORDER BY month")]
    searches, stop_no_location = _one(store, "SELECT SUM(rows_read - rejected), SUM(no_location) FROM stop_batches",
                                      (None, None))
    taser = _one(store, "SELECT (SELECT COUNT(*) FROM taser_deployments), (SELECT COUNT(*) FROM taser_force_year)",
                 (0, 0))
    return {
        "data_version": meta.get("data_version", "0"),
        "updated_at": meta.get("updated_at"),
        "data_as_of": months[-1] if months else None,
        "demo": meta.get("demo") == "1",
        "layers": [
            {k: layer[k] for k in ("level", "vintage", "areas", "layout", "source", "crs_note", "loaded_at",
                                   "default")} | {"repairs": len(layer["repairs"]), "warnings": layer["warnings"]}
            for layer in layers],
        "snt_is_ward": not any(layer["level"] == "snt" for layer in layers),
        "sources": sources,
        "months": months,
        "crimes": crimes,
        "no_location": [{"force": f, "month": m, "count": n} for f, m, n in no_location_rows],
        "outside": [{"force": f, "month": m, "count": n} for f, m, n in outside_rows],
        "population": {"lsoa": population, "areas": area_population},
        "recent_loads": [{"at": at, "kind": kind, "sources": json.loads(src), "summary": json.loads(rep).get("summary")}
                         for at, kind, src, rep in last],
        "postcodes": postcodes_status(store.path.parent, store),
        # A summary; `crimemap stops status` and /api/v1/stops/status have the batches.
        "stops": {"months": stop_months, "searches": _int(searches) or 0, "no_location": _int(stop_no_location) or 0,
                  "taser_deployments": _int(taser[0]), "taser_force_year_rows": _int(taser[1])},
    }
