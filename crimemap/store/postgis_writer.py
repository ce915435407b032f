"""The write side of the PostGIS store: one PostgreSQL transaction per ``with store.writer()``.

Everything a write does (new boundary layers, a month of crimes COPYed in, the
join cache, the recounted figures, the data version) lands in one commit, or
not at all; readers keep their REPEATABLE READ snapshot of the previous data
until then. A writer killed halfway (SIGKILL, a lost connection) leaves nothing:
the server rolls the open transaction back, and the staging tables are
``TEMP ... ON COMMIT DROP``. Writers of one schema queue on an advisory lock,
as SQLite's writers do on its write lock. docs/postgis.md explains the choice.
"""

import contextlib
import json

import numpy as np
import psycopg
from psycopg import sql as pgsql

from crimemap.errors import StoreError
from crimemap.store.postgis import _register_geometry, frame_of
from crimemap.store.postgis_sql import SRID, pg_ddl, translate
from crimemap.store.schema import SCHEMA
from crimemap.store.sqlite import _values
from crimemap.store.writer_base import CRIME_COLUMNS, POINT_COLUMNS, RECOUNT_SQL, PortableWriter, now as _now

#: Advisory lock keys: one per schema (its writers queue), one for creating the extension.
_LOCK_EXTENSION = "crimemap:create-extension-postgis"


@contextlib.contextmanager
def open_writer(store):
    """Yield a :class:`PostGISWriter` in one transaction on the primary; commit when the block ends.

    The schema's advisory lock is taken on the session *before* the transaction
    begins, so a writer that waited for another starts its transaction after
    that one committed and sees everything it created (a transaction-level lock
    taken inside an older transaction can miss a schema created meanwhile).
    The lock goes with the session if the process dies.
    """
    key = f"crimemap:{store.schema}"
    with store.connection(write=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            if not _register_geometry(conn):
                create_postgis(conn)
            with conn.transaction():
                ensure_schema(conn, store.schema)
                writer = PostGISWriter(conn, store.schema)
                yield writer
                writer.finish()
            # Committed: readers' next snapshot sees it. The tables exist from now on.
            store._ready = True
        finally:
            _unlock(conn, key)


def _unlock(conn, key):
    """Release the session lock; a connection that cannot is closed (the server then drops the lock)."""
    if conn.closed or conn.broken:
        return
    try:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
    except psycopg.Error:
        conn.close()


def create_postgis(conn):
    """CREATE EXTENSION postgis (once per database; concurrent first writers queue on a lock)."""
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (_LOCK_EXTENSION,))
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis SCHEMA public")
    except psycopg.errors.InsufficientPrivilege:
        raise StoreError("the database has no PostGIS: run CREATE EXTENSION postgis in it as a superuser, "
                         "or let crimemap's user create it") from None
    except (psycopg.errors.FeatureNotSupported, psycopg.errors.UndefinedFile):
        raise StoreError("PostGIS is not installed on the database server (Debian: postgresql-15-postgis-3)") \
            from None
    finally:
        _unlock(conn, _LOCK_EXTENSION)
    _register_geometry(conn)


def ensure_schema(conn, schema):
    """Create the schema and its tables (if missing) inside the open transaction."""
    conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(schema)))
    for statement in pg_ddl(SCHEMA):
        conn.execute(statement)


# Lookups that must cost the rows asked about, whatever the planner believes of tables
# that grew inside this transaction (their statistics are from before it): each subquery
# carries OFFSET 0, which keeps PostgreSQL from turning it into a join that hashes or scans
# the whole table once per chunk (at 2.6M locations that was 2 s a chunk, growing with
# the table), so each row is one probe of a unique index.
# A chunk's distinct locations (1-based k, lon_e6, lat_e6) -> (k, id) of those already stored.
_KNOWN_LOCATIONS = ("SELECT n.k, l.id FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY AS n(lon_e6, lat_e6, k) "
                    "CROSS JOIN LATERAL (SELECT id FROM locations l WHERE l.lon_e6 = n.lon_e6 "
                    "AND l.lat_e6 = n.lat_e6 OFFSET 0) l")
# The identity sequence of locations.id, set to the largest id once new ones are COPYed in with ids
# of their own (so an INSERT that takes the default never collides with them).
_SYNC_LOCATION_SEQUENCE = "SELECT setval(pg_get_serial_sequence('locations', 'id'), %s)"
# How many of these location ids are joined to the layer already.
_STORED_LOCATION_AREAS = ("SELECT COUNT(*) FROM unnest(%s::bigint[]) AS n(id) CROSS JOIN LATERAL ("
                          "SELECT 1 FROM location_areas la WHERE la.location_id = n.id AND la.layer_id = %s OFFSET 0) la")


class PostGISWriter(PortableWriter):
    """The write side of one transaction. Obtain it from :meth:`PostGISStore.writer`.

    Same methods and semantics as :class:`crimemap.store.sqlite.SQLiteWriter`;
    bulk rows go in with COPY.
    """

    # PortableWriter.UNJOINED fenced with OFFSET 0 (see _KNOWN_LOCATIONS): one probe per location.
    UNJOINED = ("NOT EXISTS (SELECT 1 FROM location_areas la WHERE la.layer_id = ? AND la.location_id = l.id "
                "OFFSET 0)")

    dialect = "postgresql"

    def __init__(self, conn, schema):
        super().__init__(conn)
        self.schema = schema
        self._unjoined_chunk = None  # (layer id, ids) that unjoined_locations last returned

    # -- portable statements (see "Portable SQL" in crimemap.store) ------------
    def execute(self, sql, params=()):
        """Run one statement in the transaction; returns a cursor (fetchone, fetchall)."""
        return self.conn.execute(translate(sql), tuple(params))

    def executemany(self, sql, rows):
        """Run one statement for each row of parameters."""
        with self.conn.cursor() as cur:
            cur.executemany(translate(sql), [tuple(r) for r in rows])

    def insert_id(self, sql, params=()):
        """Run an INSERT into a table with an ``id`` key and return the new row's id."""
        return self.conn.execute(translate(sql) + " RETURNING id", tuple(params)).fetchone()[0]

    def read_frame(self, sql, params=()):
        """Rows of a query in this transaction as a DataFrame."""
        cur = self.execute(sql, params)
        return frame_of(cur.fetchall(), [d.name for d in cur.description])

    def _x(self, sql, params=()):
        """PostgreSQL's own SQL (``%s`` placeholders), for this module."""
        return self.conn.execute(sql, params)

    def _copy(self, table, columns, rows):
        """COPY rows (tuples of Python values, None for NULL) into a table."""
        statement = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
            pgsql.Identifier(table), pgsql.SQL(", ").join(map(pgsql.Identifier, columns)))
        n = 0
        with self.conn.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        return n

    def _temp(self, name, columns):
        """An empty staging table that lives until this transaction ends (never left behind)."""
        self._x(f"CREATE TEMP TABLE IF NOT EXISTS {name}({columns}) ON COMMIT DROP")
        self._x(f"TRUNCATE {name}")

    # -- boundaries ------------------------------------------------------------
    def put_layer(self, layer):
        """Store a :class:`~crimemap.io.boundaries.BoundaryLayer`, replacing the same level and vintage.

        Returns
        -------
        int
            The layer id.
        """
        import shapely

        row = self._x("SELECT id FROM layers WHERE level = %s AND vintage = %s",
                      (layer.level, layer.vintage)).fetchone()
        values = (layer.layout, str(layer.source), layer.crs_note, _now(), len(layer.gdf),
                  json.dumps(layer.repairs, default=float), json.dumps(layer.warnings))
        if row:
            layer_id = row[0]
            self._x("UPDATE layers SET layout=%s, source=%s, crs_note=%s, loaded_at=%s, n_areas=%s, repairs=%s, "
                    "warnings=%s WHERE id=%s", values + (layer_id,))
            for table in ("areas", "location_areas", "point_counts", "area_population"):
                self._x(f"DELETE FROM {table} WHERE layer_id = %s", (layer_id,))
        else:
            layer_id = self._x(
                "INSERT INTO layers(level, vintage, layout, source, crs_note, loaded_at, n_areas, repairs, warnings) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id", (layer.level, layer.vintage) + values).fetchone()[0]
        gdf = layer.gdf
        geoms = gdf.geometry.to_numpy()
        ewkb = shapely.to_wkb(shapely.set_srid(geoms, SRID), hex=True, include_srid=True)
        rows = zip([layer_id] * len(gdf), _values(gdf["code"]), _values(gdf["name"]), _values(gdf["borough_code"]),
                   _values(gdf["borough_name"]), _values(gdf["force"]), shapely.area(geoms).tolist(), ewkb.tolist())
        self._copy("areas", ["layer_id", "code", "name", "borough_code", "borough_name", "force", "area_m2", "geom"],
                   rows)
        self._layers_replaced.add(layer_id)
        self.changed = True
        return layer_id

    def layer_geometries(self, layer_id):
        """(codes, WKB geometries) of a layer, as the writer's transaction sees them."""
        rows = self._x("SELECT code, ST_AsBinary(geom) FROM areas WHERE layer_id = %s ORDER BY code",
                       (layer_id,)).fetchall()
        return [r[0] for r in rows], [bytes(r[1]) for r in rows]

    # -- locations and the join cache -----------------------------------------
    def location_ids(self, lon, lat, x, y):
        """Ids for locations given in degrees (and metres), inserting new ones (keyed on micro-degrees).

        The chunk's distinct locations are looked up one by one in the unique
        index (:data:`_KNOWN_LOCATIONS`); the new ones are numbered from the
        largest stored id on, in order of first appearance (SQLite's rowids:
        the same ids on both stores, no gaps), and COPYed straight into
        ``locations``. The writer holds the schema's lock, so no other writer
        adds locations meanwhile (the unique index would refuse a duplicate
        rather than store it).
        """
        inverse, u_lon, u_lat, x, y = self._distinct_locations(lon, lat, x, y)
        ids = np.full(len(u_lon), -1, dtype="int64")
        # Probed in the unique index's order (lon_e6, lat_e6): neighbouring probes share its pages.
        order = np.lexsort((u_lat, u_lon))
        rows = self._x(_KNOWN_LOCATIONS, (u_lon[order].tolist(), u_lat[order].tolist())).fetchall()
        if rows:
            pairs = np.asarray(rows, dtype="int64")
            ids[order[pairs[:, 0] - 1]] = pairs[:, 1]
        new = np.flatnonzero(ids < 0)
        if len(new):
            last = self._x("SELECT COALESCE(MAX(id), 0) FROM locations").fetchone()[0]
            fresh = np.arange(last + 1, last + 1 + len(new), dtype="int64")
            ids[new] = fresh
            self._copy("locations", ["id", "lon_e6", "lat_e6", "x", "y"],
                       zip(fresh.tolist(), u_lon[new].tolist(), u_lat[new].tolist(), x[new].tolist(),
                           y[new].tolist()))
            self._x(_SYNC_LOCATION_SEQUENCE, (int(fresh[-1]),))
        return ids[inverse]

    def unjoined_locations(self, layer_id, after=0, limit=None):
        """As :meth:`PortableWriter.unjoined_locations`, remembering the chunk for :meth:`set_location_areas`.

        Each location is looked up in ``location_areas``' primary key (``UNJOINED``
        is fenced with OFFSET 0), so a chunk costs its own rows, not a pass over
        the whole join cache.
        """
        ids, x, y = super().unjoined_locations(layer_id, after, limit)
        if len(ids):
            self._unjoined_chunk = (layer_id, ids)
        return ids, x, y

    def set_location_areas(self, layer_id, location_ids, codes, on_edge):
        """Record the join result: code None means outside every area.

        Locations not joined to the layer yet (what :func:`crimemap.ingest.join_locations`
        passes: the chunk :meth:`unjoined_locations` just returned, which needs no
        probe) are COPYed straight into ``location_areas``; when some already
        are, their rows are replaced (an upsert through a staging table).
        """
        ids = np.asarray(location_ids, dtype="int64")
        edge = np.asarray(on_edge, dtype="int64").tolist()
        # The chunk unjoined_locations just returned (what join_locations passes) is known
        # to be unjoined: nothing else writes location_areas in this transaction.
        known, self._unjoined_chunk = self._unjoined_chunk, None
        fresh = known is not None and known[0] == layer_id and np.array_equal(known[1], ids)
        ids = ids.tolist()
        stored = 0 if fresh else self._x(_STORED_LOCATION_AREAS, (ids, layer_id)).fetchone()[0]
        if not stored:
            self._copy("location_areas", ["layer_id", "location_id", "code", "on_edge"],
                       zip([layer_id] * len(ids), ids, list(codes), edge))
        else:
            self._temp("new_location_areas", 'location_id BIGINT, code TEXT COLLATE "C", on_edge BIGINT')
            self._copy("new_location_areas", ["location_id", "code", "on_edge"], zip(ids, list(codes), edge))
            self._x("INSERT INTO location_areas(layer_id, location_id, code, on_edge) "
                    "SELECT %s, location_id, code, on_edge FROM new_location_areas ON CONFLICT (location_id, layer_id) "
                    "DO UPDATE SET code = excluded.code, on_edge = excluded.on_edge", (layer_id,))
        # As on SQLite: a location joined now is new, so only this write's months need a recount.
        self.changed = True

    # -- crimes from points ------------------------------------------------------
    def stage_points(self, feed, kind, fmt, source, frame):
        """COPY a chunk of crimes (with a ``location_id`` column); each (feed, month) replaces the stored one.

        Same rules as :meth:`crimemap.store.sqlite.SQLiteWriter.stage_points`:
        nothing is visible to readers before the transaction commits.
        """
        if not len(frame):
            return
        batch = self._batch_rows(feed, kind, fmt, source, frame)
        columns = [batch.tolist()] + [_values(frame[c]) for c in POINT_COLUMNS]
        self._copy("crimes", CRIME_COLUMNS, zip(*columns))

    # -- crimes from published counts -------------------------------------------
    def replace_counts(self, feed, fmt, source, frame, coverage):
        """Replace each month of a count table (long format from ``read_counts``)."""
        written = []
        cols = ["level", "code", "name", "borough_code", "borough_name", "major", "minor", "month", "count"]
        for month, part in frame.groupby("month", sort=True):
            batch_id = self._open_counts_batch(feed, fmt, source, month, part, coverage)
            columns = [[batch_id] * len(part)] + [_values(part[c]) for c in cols]
            self._copy("area_counts", ["batch_id", "level", "code", "name", "borough_code", "borough_name", "major",
                                       "minor", "month", "n"], zip(*columns))
            written.append({"feed": feed, "month": month, "rows": len(part), "crimes": int(part["count"].sum())})
        self.changed = True
        return written

    # -- population --------------------------------------------------------------
    def put_area_population(self, layer_id, frame):
        """Replace a layer's residents per area (code, year, persons, method)."""
        self._x("DELETE FROM area_population WHERE layer_id = %s", (layer_id,))
        self._copy("area_population", ["layer_id", "code", "year", "persons", "method"],
                   ((layer_id, c, str(y), int(p), m) for c, y, p, m in
                    frame[["code", "year", "persons", "method"]].itertuples(index=False, name=None)))
        self.changed = True

    # -- bookkeeping ---------------------------------------------------------------
    def _refresh_point_counts(self):
        """Recount crimes per area: replaced layers whole, other layers for the months this write touched."""
        aggregate = RECOUNT_SQL
        # Rows COPYed in this transaction have no statistics yet (autovacuum cannot see them), and
        # without them the planner guessed a nested loop that ran for minutes at 10M crimes
        # (bench/RESULTS.md "National scale"); ANALYZE samples them inside the transaction.
        self._x("ANALYZE crimes, location_areas")
        for layer_id in sorted(self._layers_replaced):
            self._x("DELETE FROM point_counts WHERE layer_id = %s", (layer_id,))
            self._x(aggregate.format(where="la.layer_id = %s"), (layer_id,))
        months = sorted(self._months_touched)
        others = [lid for lid in self.layer_ids() if lid not in self._layers_replaced]
        if months and others:
            self._x("DELETE FROM point_counts WHERE month = ANY(%s) AND layer_id = ANY(%s)", (months, others))
            self._x(aggregate.format(where="la.layer_id = ANY(%s) AND c.month = ANY(%s)"), (others, months))
