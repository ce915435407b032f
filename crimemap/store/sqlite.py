"""The embedded store: one SQLite file in the instance folder.

Why SQLite: readers in several server processes never block each other or
the writer (WAL mode), a read is a local B-tree lookup with no server round
trip, and a transaction is atomic even under SIGKILL or power loss. See
docs/store.md for the choice and the schema.
"""

import contextlib
import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from crimemap.errors import StoreError
from crimemap.store import Store
from crimemap.store.schema import SCHEMA
from crimemap.store.writer_base import CRIME_COLUMNS, POINT_COLUMNS, RECOUNT_SQL, PortableWriter, now as _now

WRITER_CACHE_KIB = 128 * 1024  # SQLite page cache of a write transaction



def _check_schema(conn, path):
    """Refuse a file written before crimes had an ``id`` column (store schema 1), clearly."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(crimes)")]
    if columns and "id" not in columns:
        conn.close()
        raise StoreError(f"{path} was written by an older crimemap (store schema 1); move it aside and load "
                         "the data again (docs/store.md)")


class SQLiteStore(Store):
    """The embedded, file-based store.

    Parameters
    ----------
    path : Path
        The SQLite file. Created (with its folder) on the first write.
    readonly : bool
        Open connections read-only; writing raises :class:`StoreError`.
    """

    dialect = "sqlite"

    def __init__(self, path, readonly=False):
        self.path = Path(path)
        self.readonly = readonly
        self._local = threading.local()
        self._write_lock = threading.Lock()

    # -- connections ---------------------------------------------------------
    def _connect(self, write=False):
        if write:
            if self.readonly:
                raise StoreError("this store was opened read-only")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            _check_schema(conn, self.path)  # before anything writes to the file
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # The writer's page cache (default 2 MB) bounds how much of the indexes an
            # ingest keeps in memory; 128 MB keeps the B-tree inserts of millions of
            # crimes and locations from going back to the file for every page.
            conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            conn.executescript(SCHEMA)
            return conn
        if not self.path.exists():
            return None
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=60,
                               isolation_level=None, check_same_thread=False)
        _check_schema(conn, self.path)
        return conn

    def _reader(self):
        """A per-thread read connection (SQLite connections are not shared)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(write=False)
            if conn is None:
                return None
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def snapshot(self):
        """Run several reads against one consistent version of the data."""
        conn = self._reader()
        if conn is None:
            yield None
            return
        if conn.in_transaction:  # inside an outer snapshot (the web layer holds one per request)
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:  # a failed read through pandas rolls back by itself
                conn.execute("COMMIT")

    def _query(self, sql, params=()):
        conn = self._reader()
        if conn is None:
            return []
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise

    def _frame(self, sql, params=(), columns=None):
        conn = self._reader()
        if conn is None:
            return pd.DataFrame(columns=columns or [])
        return pd.read_sql_query(sql, conn, params=params)

    def query(self, sql, params=()):
        return self._query(sql, params)

    def has_tables(self, names):
        """Whether every named table exists (False before the first write)."""
        names = sorted(set(names))
        rows = self._query(f"SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                           f"({','.join('?' * len(names))})", names)
        return bool(rows) and rows[0][0] == len(names)

    @staticmethod
    def group_concat_sql(expr, sep_code):
        """SQL concatenating ``expr`` over a group, separated by the character ``chr(sep_code)``."""
        return f"group_concat({expr}, char({int(sep_code)}))"

    def read_frame(self, sql, params=(), columns=None):
        return self._frame(sql, params, columns)

    # -- writing -------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self):
        with self._write_lock:
            conn = self._connect(write=True)
            try:
                conn.execute("BEGIN IMMEDIATE")
                writer = SQLiteWriter(conn)
                yield writer
                writer.finish()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                conn.close()
        # Read connections opened before the write keep working: WAL readers
        # see the new data at their next transaction.


class SQLiteWriter(PortableWriter):
    """The write side of one transaction. Obtain it from :meth:`SQLiteStore.writer`."""

    dialect = "sqlite"

    # -- portable statements (see "Portable SQL" in crimemap.store) ------------
    def execute(self, sql, params=()):
        """Run one statement in the transaction; returns a cursor (fetchone, fetchall)."""
        return self.conn.execute(sql, params)

    def executemany(self, sql, rows):
        """Run one statement for each row of parameters."""
        self.conn.executemany(sql, rows)

    def insert_id(self, sql, params=()):
        """Run an INSERT into a table with an ``id`` key and return the new row's id."""
        return self.conn.execute(sql, params).lastrowid

    def read_frame(self, sql, params=()):
        """Rows of a query in this transaction as a DataFrame."""
        return pd.read_sql_query(sql, self.conn, params=params)

    # -- boundaries ------------------------------------------------------------
    def put_layer(self, layer):
        """Store a :class:`~crimemap.io.boundaries.BoundaryLayer`, replacing the same level and vintage.

        Returns
        -------
        int
            The layer id.
        """
        import shapely

        cur = self.conn.execute("SELECT id FROM layers WHERE level = ? AND vintage = ?", (layer.level, layer.vintage))
        row = cur.fetchone()
        values = (layer.layout, str(layer.source), layer.crs_note, _now(), len(layer.gdf),
                  json.dumps(layer.repairs, default=float), json.dumps(layer.warnings))
        if row:
            layer_id = row[0]
            self.conn.execute(
                "UPDATE layers SET layout=?, source=?, crs_note=?, loaded_at=?, n_areas=?, repairs=?, warnings=? "
                "WHERE id=?", values + (layer_id,))
            for table in ("areas", "location_areas", "point_counts", "area_population"):
                self.conn.execute(f"DELETE FROM {table} WHERE layer_id = ?", (layer_id,))
        else:
            layer_id = self.conn.execute(
                "INSERT INTO layers(level, vintage, layout, source, crs_note, loaded_at, n_areas, repairs, warnings) "
                "VALUES (?,?,?,?,?,?,?,?,?)", (layer.level, layer.vintage) + values).lastrowid
        gdf = layer.gdf
        wkb = shapely.to_wkb(gdf.geometry.to_numpy())
        rows = zip(gdf["code"], gdf["name"], gdf["borough_code"], gdf["borough_name"], gdf["force"],
                   shapely.area(gdf.geometry.to_numpy()).tolist(), wkb)
        self.conn.executemany(
            "INSERT INTO areas(layer_id, code, name, borough_code, borough_name, force, area_m2, geom) "
            "VALUES (?,?,?,?,?,?,?,?)", ((layer_id, *r) for r in rows))
        self._layers_replaced.add(layer_id)
        self.changed = True
        return layer_id

    def layer_geometries(self, layer_id):
        """(codes, WKB geometries) of a layer, as the writer's transaction sees them."""
        rows = self.conn.execute("SELECT code, geom FROM areas WHERE layer_id = ? ORDER BY code", (layer_id,)).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    # -- locations and the join cache -----------------------------------------
    def location_ids(self, lon, lat, x, y):
        """Ids for locations given in degrees (and metres), inserting new ones (see ``_distinct_locations``)."""
        inverse, u_lon, u_lat, x, y = self._distinct_locations(lon, lat, x, y)
        # The chunk's locations go into a temporary table once; SQLite then adds the
        # new ones to locations and reads every id back, without more Python rows.
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS new_locations(k INTEGER PRIMARY KEY, lon_e6, lat_e6, x, y)")
        self.conn.execute("DELETE FROM new_locations")
        self.conn.executemany("INSERT INTO new_locations(k, lon_e6, lat_e6, x, y) VALUES (?,?,?,?,?)",
                              zip(range(len(u_lon)), u_lon.tolist(), u_lat.tolist(), x.tolist(), y.tolist()))
        self.conn.execute("INSERT OR IGNORE INTO locations(lon_e6, lat_e6, x, y) "
                          "SELECT lon_e6, lat_e6, x, y FROM new_locations ORDER BY k")
        rows = self.conn.execute("SELECT n.k, l.id FROM new_locations n JOIN locations l "
                                 "ON l.lon_e6 = n.lon_e6 AND l.lat_e6 = n.lat_e6").fetchall()
        ids = np.empty(len(u_lon), dtype="int64")
        if rows:
            pairs = np.asarray(rows, dtype="int64")
            ids[pairs[:, 0]] = pairs[:, 1]
        return ids[inverse]

    def set_location_areas(self, layer_id, location_ids, codes, on_edge):
        """Record the join result: code None means outside every area."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO location_areas(layer_id, location_id, code, on_edge) VALUES (?,?,?,?)",
            zip([layer_id] * len(location_ids), np.asarray(location_ids).tolist(), codes,
                np.asarray(on_edge, dtype="int64").tolist()))
        # No full recount of the layer: a location joined now is new, so only
        # crimes of this write's months stand there, and those months are
        # recounted anyway. A replaced layer (put_layer) is recounted whole.
        self.changed = True

    # -- crimes from points ------------------------------------------------------
    def stage_points(self, feed, kind, fmt, source, frame):
        """Write a chunk of crimes (with a ``location_id`` column); each (feed, month) replaces the stored one.

        The first chunk of a (feed, month) in this transaction drops the stored
        batch and opens a new one; the crimes go straight into ``crimes``. The
        batch's counts are filled in by :meth:`commit_staged`. Nothing is visible
        to readers before the transaction commits.
        """
        if not len(frame):
            return
        batch = self._batch_rows(feed, kind, fmt, source, frame)
        columns = [batch.tolist()] + [_values(frame[c]) for c in POINT_COLUMNS]
        self.conn.executemany(
            f"INSERT INTO crimes({', '.join(CRIME_COLUMNS)}) VALUES ({','.join('?' * len(CRIME_COLUMNS))})",
            zip(*columns))

    # -- crimes from published counts -------------------------------------------
    def replace_counts(self, feed, fmt, source, frame, coverage):
        """Replace each month of a count table (long format from ``read_counts``)."""
        written = []
        for month, part in frame.groupby("month", sort=True):
            batch_id = self._open_counts_batch(feed, fmt, source, month, part, coverage)
            cols = ["level", "code", "name", "borough_code", "borough_name", "major", "minor", "month", "count"]
            self.conn.executemany(
                "INSERT INTO area_counts(batch_id, level, code, name, borough_code, borough_name, major, minor, "
                "month, n) VALUES (?,?,?,?,?,?,?,?,?,?)",
                ((batch_id, *row) for row in part[cols].itertuples(index=False, name=None)))
            written.append({"feed": feed, "month": month, "rows": len(part), "crimes": int(part["count"].sum())})
        self.changed = True
        return written

    # -- population --------------------------------------------------------------
    def put_area_population(self, layer_id, frame):
        """Replace a layer's residents per area (code, year, persons, method)."""
        self.conn.execute("DELETE FROM area_population WHERE layer_id = ?", (layer_id,))
        self.conn.executemany(
            "INSERT INTO area_population(layer_id, code, year, persons, method) VALUES (?,?,?,?,?)",
            ((layer_id, c, str(y), int(p), m) for c, y, p, m in
             frame[["code", "year", "persons", "method"]].itertuples(index=False, name=None)))
        self.changed = True

    # -- bookkeeping ---------------------------------------------------------------
    def _refresh_point_counts(self):
        """Recount crimes per area: replaced layers whole, other layers for the months this write touched."""
        aggregate = RECOUNT_SQL
        for layer_id in self._layers_replaced:
            self.conn.execute("DELETE FROM point_counts WHERE layer_id = ?", (layer_id,))
            self.conn.execute(aggregate.format(where="la.layer_id = ?"), (layer_id,))
        months = sorted(self._months_touched)
        others = [lid for lid in self.layer_ids() if lid not in self._layers_replaced]
        if months and others:
            marks = ",".join("?" * len(months))
            lmarks = ",".join("?" * len(others))
            self.conn.execute(f"DELETE FROM point_counts WHERE month IN ({marks}) AND layer_id IN ({lmarks})",
                              months + others)
            # Crimes drive the join (CROSS JOIN fixes the order), each looked up in
            # location_areas by its primary key. Left to itself SQLite drives from
            # location_areas and probes crimes once per location and month, which is
            # several times slower. When the months hold most of the crimes (a first
            # ingest, a big one), one pass over the table beats the month index.
            touched = self.conn.execute(f"SELECT COUNT(*) FROM crimes WHERE month IN ({marks})", months).fetchone()[0]
            total = self.conn.execute("SELECT MAX(id) FROM crimes").fetchone()[0] or 0
            scan = "NOT INDEXED" if touched * 4 >= total else ""
            self.conn.execute(
                "INSERT INTO point_counts(layer_id, code, month, category, n) "
                f"SELECT la.layer_id, la.code, c.month, c.category, COUNT(*) FROM crimes c {scan} "
                f"CROSS JOIN location_areas la ON la.location_id = c.location_id AND la.layer_id IN ({lmarks}) "
                f"WHERE la.code IS NOT NULL AND c.month IN ({marks}) "
                "GROUP BY la.layer_id, la.code, c.month, c.category",
                others + months)


def _values(column):
    """A column as a list of Python values for SQLite: str, int or float, None where missing."""
    array = column.array
    if isinstance(array, pd.arrays.IntegerArray):
        values = np.asarray(array._data, dtype=np.int64).astype(object)
        values[np.asarray(array._mask)] = None
        return values.tolist()
    if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
        values = column.to_numpy(dtype=object, na_value=None)
        return values.tolist()
    return column.astype(object).where(column.notna(), None).tolist()
