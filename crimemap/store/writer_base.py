"""What both stores' writers do the same way, in the portable SQL of :mod:`crimemap.store`.

A backend's writer subclasses :class:`PortableWriter` and supplies the
statements (``execute``, ``executemany``, ``insert_id``, ``read_frame``) and
the bulk paths that differ: how locations and crimes go in (SQLite's
``executemany``, PostgreSQL's COPY), layers, the join results and the
recount of ``point_counts``.
"""

import datetime as dt
import json

import numpy as np
import pandas as pd

SCHEMA_VERSION = 2  # 2: crimes.id (schema 1 SQLite files are refused with a clear message)

# The crime columns a writer stores, after ``batch_id``, in the frame's names ...
POINT_COLUMNS = ["month", "force", "category", "crime_id", "api_id", "location_id", "location", "street_id",
                 "lsoa_code", "lsoa_name", "outcome", "outcome_month", "context", "location_type",
                 "location_subtype"]
# ... and in the table's (the frame's ``location`` is the table's ``street``).
CRIME_COLUMNS = ["batch_id", "month", "force", "category", "crime_id", "api_id", "location_id", "street",
                 "street_id", "lsoa_code", "lsoa_name", "outcome", "outcome_month", "context", "location_type",
                 "location_subtype"]

# Crimes per (layer, area, month, category) from the join cache; {where} narrows it to the layers
# and months a write touched. The backends run it in their own placeholder style and plan.
RECOUNT_SQL = ("INSERT INTO point_counts(layer_id, code, month, category, n) "
               "SELECT la.layer_id, la.code, c.month, c.category, COUNT(*) FROM crimes c "
               "JOIN location_areas la ON la.location_id = c.location_id "
               "WHERE la.code IS NOT NULL AND {where} GROUP BY la.layer_id, la.code, c.month, c.category")


def now():
    """The current UTC time, to the second, as ISO 8601."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


class PortableWriter:
    """The write side of one transaction: the methods both backends share."""

    # Location l is not joined to layer ?: the condition of has_unjoined_locations and
    # unjoined_locations. A backend may fence the subquery for its planner (PostGIS: OFFSET 0).
    UNJOINED = "NOT EXISTS (SELECT 1 FROM location_areas la WHERE la.layer_id = ? AND la.location_id = l.id)"

    def __init__(self, conn):
        self.conn = conn
        self.changed = False
        self._months_touched = set()
        self._layers_replaced = set()
        self._open = {}  # (feed, month) -> the batch this transaction writes (see stage_points)

    # -- layers ------------------------------------------------------------------
    def layer_ids(self):
        return [r[0] for r in self.execute("SELECT id FROM layers ORDER BY id").fetchall()]

    def layer_info(self):
        rows = self.execute("SELECT id, level, vintage FROM layers ORDER BY id").fetchall()
        return [dict(zip(("id", "level", "vintage"), r)) for r in rows]

    def lsoa_points(self, layer_id):
        """Representative points of a layer's areas: codes, x, y (for best-fit rules)."""
        import shapely

        codes, wkbs = self.layer_geometries(layer_id)
        if not codes:
            return np.array([], dtype=object), np.empty(0), np.empty(0)
        points = shapely.point_on_surface(shapely.from_wkb(wkbs))
        return np.asarray(codes, dtype=object), shapely.get_x(points), shapely.get_y(points)

    # -- locations and the join cache -----------------------------------------
    @staticmethod
    def _distinct_locations(lon, lat, x, y):
        """A chunk's distinct locations, in order of first appearance.

        Locations are keyed on micro-degrees, the precision police.uk publishes,
        so the same anonymised map point always gets the same id. One int64 key
        per location (both values fit in 32 bits) lets one hash-based factorize
        find them.

        Returns
        -------
        tuple
            ``inverse`` (each row's position among the distinct ones), then the
            distinct ``lon_e6``, ``lat_e6``, ``x`` and ``y`` arrays.
        """
        lon_e6 = np.round(np.asarray(lon, dtype="float64") * 1e6).astype("int64")
        lat_e6 = np.round(np.asarray(lat, dtype="float64") * 1e6).astype("int64")
        inverse, keys = pd.factorize(lon_e6 * (1 << 32) + (lat_e6 & 0xFFFFFFFF))
        first = np.full(len(keys), len(lon_e6), dtype="int64")
        np.minimum.at(first, inverse, np.arange(len(lon_e6), dtype="int64"))
        return (inverse, lon_e6[first], lat_e6[first], np.asarray(x, dtype="float64")[first],
                np.asarray(y, dtype="float64")[first])

    def has_unjoined_locations(self, layer_id):
        """Whether some location is not yet joined to a layer."""
        return bool(self.execute(f"SELECT EXISTS (SELECT 1 FROM locations l WHERE {self.UNJOINED})",
                                 (layer_id,)).fetchone()[0])

    def unjoined_locations(self, layer_id, after=0, limit=None):
        """Locations not yet joined to a layer, in id order: (ids, x, y) arrays.

        ``after`` and ``limit`` read them in chunks: ids above ``after``, at most ``limit``.
        """
        rows = self.execute(f"SELECT l.id, l.x, l.y FROM locations l WHERE l.id > ? AND {self.UNJOINED} "
                            "ORDER BY l.id LIMIT ?", (int(after), layer_id, int(limit) if limit else 2 ** 62)).fetchall()
        if not rows:
            empty = np.empty(0)
            return empty.astype("int64"), empty, empty
        arr = np.asarray(rows, dtype="float64")
        return arr[:, 0].astype("int64"), arr[:, 1], arr[:, 2]

    # -- crimes from points ------------------------------------------------------
    def _batch_rows(self, feed, kind, fmt, source, frame):
        """The batch id of each row of a chunk, opening batches and counting their rows as :meth:`stage_points` needs."""
        codes, uniques = pd.factorize(frame["month"])
        batch_of = np.array([self._open_batch(feed, kind, fmt, source, m) for m in uniques], dtype=np.int64)
        located = frame["location_id"].notna().to_numpy()
        for k, month in enumerate(uniques):
            mine = codes == k
            entry = self._open[(feed, month)]
            entry["rows"] += int(mine.sum())
            entry["no_location"] += int((mine & ~located).sum())
        return batch_of[codes]

    def _open_batch(self, feed, kind, fmt, source, month):
        """The id of this transaction's batch of (feed, month), opening it (and dropping the stored one) first."""
        entry = self._open.get((feed, month))
        if entry is None:
            self._drop_batch(feed, month)
            batch_id = self.insert_id(
                "INSERT INTO batches(feed, kind, format, month, source, loaded_at, rows_read, no_location, rejected) "
                "VALUES (?,?,?,?,?,?,0,0,0)", (feed, kind, fmt, month, str(source), now()))
            entry = self._open[(feed, month)] = {"id": batch_id, "kinds": {kind}, "formats": {fmt}, "sources": [],
                                                 "rows": 0, "no_location": 0}
            self._months_touched.add(month)
        entry["kinds"].add(kind)
        entry["formats"].add(fmt)
        if str(source) not in entry["sources"]:
            entry["sources"].append(str(source))
        return entry["id"]

    def commit_staged(self, rejected_by_feed_month=None):
        """Finish every (feed, month) written by :meth:`stage_points`: its counts, sources and rejects.

        Returns
        -------
        list of dict
            One per batch written, by feed and month: feed, month, rows, no_location.
        """
        rejected_by_feed_month = rejected_by_feed_month or {}
        written = []
        for (feed, month), entry in sorted(self._open.items()):
            rejected = rejected_by_feed_month.get((feed, month), 0)
            self.execute(
                "UPDATE batches SET kind = ?, format = ?, source = ?, rows_read = ?, no_location = ?, rejected = ? "
                "WHERE id = ?", (min(entry["kinds"]), min(entry["formats"]), ",".join(entry["sources"]),
                                 entry["rows"] + rejected, entry["no_location"], rejected, entry["id"]))
            written.append({"feed": feed, "month": month, "rows": entry["rows"], "no_location": entry["no_location"]})
        self._open = {}
        if written:
            self.changed = True
        return written

    def _drop_batch(self, feed, month):
        row = self.execute("SELECT id FROM batches WHERE feed = ? AND month = ?", (feed, month)).fetchone()
        if row:
            self.execute("DELETE FROM crimes WHERE batch_id = ?", (row[0],))
            self.execute("DELETE FROM area_counts WHERE batch_id = ?", (row[0],))
            self.execute("DELETE FROM batches WHERE id = ?", (row[0],))
            self._months_touched.add(month)

    def _open_counts_batch(self, feed, fmt, source, month, part, coverage):
        """Replace one month of a count table's batch; returns the new batch id."""
        self._drop_batch(feed, month)
        return self.insert_id(
            "INSERT INTO batches(feed, kind, format, month, source, loaded_at, rows_read, no_location, rejected, "
            "coverage) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (feed, "counts", fmt, month, str(source), now(), int(part["count"].sum()), 0, 0, json.dumps(coverage)))

    # -- population --------------------------------------------------------------
    def put_lsoa_population(self, frame, source):
        self.executemany(
            "INSERT INTO lsoa_population(lsoa_code, year, persons, lad_code, source) VALUES (?,?,?,?,?) "
            "ON CONFLICT (lsoa_code, year) DO UPDATE SET persons = excluded.persons, lad_code = excluded.lad_code, "
            "source = excluded.source",
            ((c, str(y), int(p), lad, str(source)) for c, y, p, lad in
             frame[["lsoa_code", "year", "persons", "lad_code"]].itertuples(index=False, name=None)))
        self.changed = True

    def lsoa_population(self):
        return self.read_frame("SELECT lsoa_code, year, persons, lad_code FROM lsoa_population")

    def put_direct_population(self, frame, source):
        """Residents of areas given by code (ward profiles, borough tables)."""
        self.executemany(
            "INSERT INTO direct_population(code, year, persons, source) VALUES (?,?,?,?) "
            "ON CONFLICT (code, year) DO UPDATE SET persons = excluded.persons, source = excluded.source",
            ((c, str(y), int(p), str(source)) for c, y, p in
             frame[["code", "year", "persons"]].itertuples(index=False, name=None)))
        self.changed = True

    def direct_population(self):
        return self.read_frame("SELECT code, year, persons, source FROM direct_population")

    # -- bookkeeping ---------------------------------------------------------------
    def log_ingest(self, kind, sources, report):
        self.execute("INSERT INTO ingests(at, kind, sources, report) VALUES (?,?,?,?)",
                     (now(), kind, json.dumps([str(s) for s in sources]), json.dumps(report, default=str)))

    def finish(self):
        """Bring derived tables up to date and bump the data version."""
        if not self.changed:
            return
        self._refresh_point_counts()
        row = self.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
        version = int(row[0]) + 1 if row else 1
        self.executemany("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                         [("data_version", str(version)), ("updated_at", now()),
                          ("schema_version", str(SCHEMA_VERSION))])
