"""Stop and search and Taser tables, in the same store as the crimes.

The tables are created with the rest of the store (DDL in
:mod:`crimemap.store.schema`). They are written through the store's writer
(one transaction with :meth:`crimemap.store.Store.writer`, so a failed load
changes nothing and the data version goes up by one when it lands) in the
portable SQL of :mod:`crimemap.store`, and read with
:meth:`crimemap.store.Store.read_frame`.

Stops reuse the store's ``locations`` and ``location_areas`` tables: a stop's
point is a location like a crime's, so it is joined once to every boundary
layer, including layers loaded later. A stop with no coordinates has a NULL
``location_id`` and is kept.

Tables
------
stop_batches(feed, month, ...)
    One month of one feed; loading it again replaces it.
stops(batch_id, month, datetime, type, location_id, ...)
    One row per search, with police.uk's values as published.
stop_census(code, name, category, persons, source)
    Census 2011 residents per area and ethnic category (``total`` and ``W1`` .. ``O2``).
taser_force_year(force, year_end, measure, n, source)
    The Home Office force-by-year table, one row per force, year end and measure.
taser_deployments(incident, subject, officer, date, quarter, borough_code, borough, level, source)
    One row per officer's use of Taser on one subject.
"""

import datetime as dt

import pandas as pd

STOP_COLUMNS = ["month", "datetime", "type", "location_id", "street", "gender", "age_range", "self_defined_ethnicity",
                "officer_defined_ethnicity", "legislation", "object_of_search", "outcome", "outcome_linked",
                "removal_of_clothing", "operation", "operation_name"]
# Dimensions a summary may group stops by (column names, so safe to put in SQL).
DIMENSIONS = ("type", "object_of_search", "outcome", "officer_defined_ethnicity", "self_defined_ethnicity",
              "legislation", "gender", "age_range")


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _plain(value):
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    return value


# --- writing ---------------------------------------------------------------------------------


def replace_stop_batch(writer, feed, month, fmt, source, frame, rejected=0, fields=()):
    """Replace one (feed, month) of stops with ``frame`` (which has a ``location_id`` column).

    Returns
    -------
    dict
        ``feed, month, rows, no_location``.
    """
    old = writer.execute("SELECT id FROM stop_batches WHERE feed = ? AND month = ?", (feed, month)).fetchone()
    if old:
        writer.execute("DELETE FROM stops WHERE batch_id = ?", (old[0],))
        writer.execute("DELETE FROM stop_batches WHERE id = ?", (old[0],))
    no_location = int(frame["location_id"].isna().sum())
    batch_id = writer.insert_id(
        "INSERT INTO stop_batches(feed, month, format, source, loaded_at, rows_read, no_location, rejected, fields) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        (feed, month, fmt, str(source), _now(), len(frame) + int(rejected), no_location, int(rejected),
         ",".join(sorted(fields))))
    data = frame[STOP_COLUMNS].astype(object)
    writer.executemany(
        f"INSERT INTO stops(batch_id, {', '.join(STOP_COLUMNS)}) VALUES (?{',?' * len(STOP_COLUMNS)})",
        ((batch_id, *[_plain(v) for v in row]) for row in data.itertuples(index=False, name=None)))
    writer.changed = True
    return {"feed": feed, "month": month, "rows": len(frame), "no_location": no_location}


def replace_census(writer, frame, source, categories):
    """Replace Census residents for the areas in ``frame`` (``code, name, total`` and the categories)."""
    codes = frame["code"].tolist()
    writer.executemany("DELETE FROM stop_census WHERE code = ?", ((c,) for c in codes))
    rows = []
    for record in frame.to_dict("records"):
        for category in ["total", *categories]:
            rows.append((record["code"], record["name"], category, int(record[category]), str(source)))
    writer.executemany("INSERT INTO stop_census(code, name, category, persons, source) VALUES (?,?,?,?,?)", rows)
    writer.changed = True
    return len(codes)


def replace_taser_force_year(writer, frame, source, measures):
    """Replace the (force, year end) rows of a force-by-year table."""
    keys = frame[["force", "year_end"]].drop_duplicates().itertuples(index=False, name=None)
    writer.executemany("DELETE FROM taser_force_year WHERE force = ? AND year_end = ?", list(keys))
    rows = [(r["force"], r["year_end"], m, _plain(r[m]), str(source))
            for r in frame.to_dict("records") for m in measures]
    writer.executemany("INSERT INTO taser_force_year(force, year_end, measure, n, source) VALUES (?,?,?,?,?)", rows)
    writer.changed = True
    return len(frame)


def replace_taser_deployments(writer, frame, source):
    """Replace every quarter ``frame`` covers with its deployments."""
    quarters = sorted(frame["quarter"].unique())
    writer.executemany("DELETE FROM taser_deployments WHERE quarter = ?", ((q,) for q in quarters))
    cols = ["incident", "subject", "officer", "date", "quarter", "borough_code", "borough", "level"]
    writer.executemany(
        f"INSERT INTO taser_deployments({', '.join(cols)}, source) VALUES (?,?,?,?,?,?,?,?,?)",
        ((*[_plain(v) for v in row], str(source)) for row in frame[cols].astype(object).itertuples(index=False,
                                                                                                  name=None)))
    writer.changed = True
    return quarters


# --- reading ---------------------------------------------------------------------------------


TABLES = ("stop_batches", "stops", "stop_census", "taser_force_year", "taser_deployments")


def _frame(store, sql, params=(), columns=()):
    """A query's rows as a DataFrame; empty (with ``columns``) before anything was loaded."""
    # Check first rather than catch "no such table": a failed query would end
    # a snapshot's read transaction (SQLite) or abort it (PostgreSQL).
    if not store.has_tables(TABLES):
        return pd.DataFrame(columns=list(columns))
    return store.read_frame(sql, list(params), list(columns))


def stop_batches(store):
    """Every loaded (feed, month) batch, oldest month first."""
    return _frame(store, "SELECT feed, month, format, source, loaded_at, rows_read, no_location, rejected, fields "
                  "FROM stop_batches ORDER BY month, feed",
                  columns=("feed", "month", "format", "source", "loaded_at", "rows_read", "no_location", "rejected",
                           "fields"))


def _chosen(months):
    # For each month, police.uk CSV batches win over API batches: the CSV is
    # the complete month (with the searches that have no location), and a
    # month loaded both ways must not count twice.
    marks = ",".join("?" * len(months))
    return (f"SELECT id FROM stop_batches b WHERE b.month IN ({marks}) AND (b.format = 'police-uk-stops-csv' OR "
            "NOT EXISTS (SELECT 1 FROM stop_batches c WHERE c.month = b.month AND c.format = 'police-uk-stops-csv'))")


def stop_counts(store, layer_id, months, by=(), code=None):
    """Searches per area and month of a layer, optionally by more dimensions.

    Parameters
    ----------
    layer_id : int
        The boundary layer the stops' locations are joined to.
    months : list of str
    by : tuple of str
        Columns of :data:`DIMENSIONS` to group by as well.
    code : str, optional
        Only this area.

    Returns
    -------
    pandas.DataFrame
        ``code`` (None: no location, or outside every area of the layer),
        ``located`` (1 when the stop has coordinates), ``month``, the ``by``
        columns and ``n``.
    """
    by = tuple(by)
    bad = [d for d in by if d not in DIMENSIONS]
    if bad:
        raise ValueError(f"unknown stop dimension(s) {bad}; expected some of {DIMENSIONS}")
    columns = ("code", "located", "month", *by, "n")
    if not months:
        return pd.DataFrame(columns=list(columns))
    extra = "".join(f", s.{d}" for d in by)
    located = "CASE WHEN s.location_id IS NULL THEN 0 ELSE 1 END"
    sql = (f"SELECT la.code AS code, {located} AS located, s.month{extra}, COUNT(*) AS n "
           f"FROM stops s LEFT JOIN location_areas la ON la.location_id = s.location_id AND la.layer_id = ? "
           f"WHERE s.batch_id IN ({_chosen(months)})")
    params = [layer_id, *months]
    if code is not None:
        sql += " AND la.code = ?"
        params.append(code)
    sql += f" GROUP BY la.code, {located}, s.month{extra}"
    return _frame(store, sql, params, columns)


def stop_months(store):
    """The months with stop and search data loaded, oldest first."""
    return sorted(stop_batches(store)["month"].unique().tolist())


def census(store):
    """Census residents per area and category: ``code, name, category, persons``."""
    return _frame(store, "SELECT code, name, category, persons, source FROM stop_census ORDER BY code, category",
                  columns=("code", "name", "category", "persons", "source"))


def taser_force_year(store):
    """The force-by-year Taser table, long: ``force, year_end, measure, n, source``."""
    return _frame(store, "SELECT force, year_end, measure, n, source FROM taser_force_year "
                  "ORDER BY force, year_end, measure", columns=("force", "year_end", "measure", "n", "source"))


def taser_deployments(store, quarters=None):
    """Taser deployments, one row per officer and subject (optionally only some quarters)."""
    sql = "SELECT incident, subject, officer, date, quarter, borough_code, borough, level FROM taser_deployments"
    params = []
    if quarters:
        sql += f" WHERE quarter IN ({','.join('?' * len(quarters))})"
        params = list(quarters)
    return _frame(store, sql + " ORDER BY date, incident, subject, officer", params,
                  columns=("incident", "subject", "officer", "date", "quarter", "borough_code", "borough", "level"))
