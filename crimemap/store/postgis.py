"""The PostGIS store: the same tables and answers as the embedded store, in PostgreSQL.

Chosen with ``DATABASE_URL=postgresql://...`` (docs/postgis.md). One schema
holds one instance's tables (``DATABASE_SCHEMA``). Reads go through a psycopg 3
connection pool (``DATABASE_READ_URL``, a read replica, for read-only stores);
each :meth:`PostGISStore.snapshot` is one REPEATABLE READ read-only transaction,
so a request sees one version of the data. Every write is one transaction
(:class:`crimemap.store.postgis_writer.PostGISWriter`): readers see all of it
or none of it, and a writer killed halfway leaves nothing behind.
"""

import atexit
import contextlib
import logging
import os
import threading
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from crimemap.errors import StoreError, StoreUnavailable
from crimemap.store import Store
from crimemap.store.postgis_sql import GeometryLoader, NumericLoader, translate

# The pool logs every failed connection attempt as a warning. With no logging set up (a
# CLI run) Python would print each one to stderr next to the one clear error line; a
# NullHandler stops that, and a server that configures logging still records them.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())

_POOLS = {}
_POOLS_LOCK = threading.Lock()
#: A table every write creates (the first write creates them all, in one transaction).
_MARKER_TABLE = "meta"


def check_url(url):
    """Refuse a DATABASE_URL that is not a PostgreSQL connection string, with a clear message."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise StoreError("DATABASE_URL must be a postgresql://user@host:port/database URL "
                         "(or empty for the embedded store)")
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise StoreError(f"DATABASE_URL is not a valid PostgreSQL connection URL ({exc})") from None
    ports = str(params.get("port") or "5432").split(",")
    if not all(p.strip().isascii() and p.strip().isdigit() and 0 < int(p) < 65536 for p in ports):
        raise StoreError(f"DATABASE_URL has a bad port {params.get('port')!r}: expected a number from 1 to 65535")


def _configure(conn):
    """Per new connection: load numeric and geometry values as SQLite returns them."""
    conn.adapters.register_loader("numeric", NumericLoader)
    _register_geometry(conn)


def _register_geometry(conn):
    """Register the geometry loader once PostGIS exists in the database; True when done."""
    if getattr(conn, "_crimemap_geometry", False):
        return True
    row = conn.execute("SELECT t.oid, n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                       "WHERE t.typname = 'geometry' LIMIT 1").fetchone()
    if row is None:
        return False
    conn.adapters.register_loader(row[0], GeometryLoader)
    conn._crimemap_geometry = True
    conn._crimemap_postgis_schema = row[1]
    return True


def _pool(url, max_size, timeout):
    """One pool per process and database URL, shared by every store on it (tests open many)."""
    key = (os.getpid(), url, max_size)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = ConnectionPool(url, min_size=1, max_size=max_size, timeout=timeout, open=False,
                                  kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout)),
                                          "application_name": "crimemap"},
                                  configure=_configure, name=f"crimemap-{len(_POOLS) + 1}")
            pool.open(wait=False)
            _POOLS[key] = pool
        return pool


def _alive(pool, conn):
    """``conn`` if it still works; else a new connection, after dropping every idle one.

    A connection the server dropped (a restart, a failover, an idle kill) fails
    this one-round-trip check. Its idle siblings are dead too, so the pool is
    drained at once rather than each being found out in turn (the pool's own
    per-connection check waits longer after every failure), and the next
    request after the database comes back works without a restart of crimemap.
    """
    try:
        ConnectionPool.check_connection(conn)
        return conn
    except psycopg.OperationalError:
        pool.putconn(conn)
        pool.drain()
        return pool.getconn()


def _renew_pool(url, max_size, timeout):
    """A fresh pool for ``url`` if the database answers a direct connection now, else None.

    After an outage the pool's background reconnects back off (seconds, then
    tens of seconds), so a worker could keep answering 503 well after the
    database returned. A direct connection tells at once whether it is back.
    """
    try:
        psycopg.connect(url, connect_timeout=max(1, int(timeout)), autocommit=True).close()
    except psycopg.OperationalError:
        return None
    key = (os.getpid(), url, max_size)
    with _POOLS_LOCK:
        stale = _POOLS.pop(key, None)
    if stale is not None:
        threading.Thread(target=stale.close, kwargs={"timeout": 1}, daemon=True).start()
    return _pool(url, max_size, timeout)


@atexit.register
def _close_pools():
    for key, pool in list(_POOLS.items()):
        if key[0] == os.getpid():
            with contextlib.suppress(Exception):
                pool.close(timeout=1)


@contextlib.contextmanager
def unavailable_as_store_error():
    """A database that cannot be reached -> :class:`StoreUnavailable` (HTTP 503)."""
    try:
        yield
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise StoreUnavailable() from exc


def frame_of(cursor_rows, columns):
    """Rows as a DataFrame exactly as ``pandas.read_sql_query`` builds it."""
    try:
        from pandas.io.sql import _wrap_result

        return _wrap_result(cursor_rows, columns)
    except ImportError:  # pragma: no cover - a pandas without the helper
        return pd.DataFrame.from_records(cursor_rows, columns=columns, coerce_float=True)


class PostGISStore(Store):
    """The PostgreSQL + PostGIS store.

    Parameters
    ----------
    url : str
        ``postgresql://user@host:port/db``: the primary (every write goes here).
    schema : str
        The schema of this instance's tables, created on the first write.
    instance : Path
        The instance folder (answer cache, embeds, postcode lookup).
    readonly : bool
        Writing raises :class:`StoreError`; reads go to ``read_url`` when given.
    read_url : str, optional
        A read replica for read-only stores.
    pool_max : int
        Connections per process and database.
    timeout : float
        Seconds to wait for a connection before answering 503.
    """

    dialect = "postgresql"
    GEOMETRY_SQL = "ST_AsBinary(geom) AS geom"

    def __init__(self, url, schema, instance, readonly=False, read_url="", pool_max=10, timeout=10.0):
        check_url(url)
        if read_url:
            check_url(read_url)
        self.url = url
        self.read_url = read_url if (readonly and read_url) else url
        self.schema = schema
        self.instance = Path(instance)
        # Not a file: its parent is the instance folder, as for the SQLite store's path.
        self.path = self.instance / "crimemap.postgis"
        self.readonly = readonly
        self.pool_max = int(pool_max)
        self.timeout = float(timeout)
        self._local = threading.local()
        self._ready = False

    # -- connections ---------------------------------------------------------
    def close(self):
        """Close this process's pool for the store's database (other stores on it reconnect on their next use)."""
        with _POOLS_LOCK:
            pool = _POOLS.pop((os.getpid(), self.read_url, self.pool_max), None)
        if pool is not None:
            pool.close(timeout=1)

    def _pool(self, write=False):
        return _pool(self.url if write else self.read_url, self.pool_max, self.timeout)

    @contextlib.contextmanager
    def connection(self, write=False):
        """A pooled connection in autocommit mode with this instance's schema first on the search path."""
        pool = self._pool(write)
        with unavailable_as_store_error():
            try:
                conn = _alive(pool, pool.getconn())
            except (psycopg.OperationalError, PoolTimeout):
                pool = _renew_pool(self.url if write else self.read_url, self.pool_max, self.timeout)
                if pool is None:
                    raise
                conn = pool.getconn()
            try:
                self._use_schema(conn)
                yield conn
            finally:
                pool.putconn(conn)

    def _use_schema(self, conn):
        _register_geometry(conn)
        postgis = getattr(conn, "_crimemap_postgis_schema", "public")
        wanted = (self.schema, postgis)
        if getattr(conn, "_crimemap_path", None) != wanted:
            conn.execute(pgsql.SQL("SET search_path TO {}, {}, public").format(
                pgsql.Identifier(self.schema), pgsql.Identifier(postgis)))
            conn._crimemap_path = wanted

    def _is_ready(self, conn):
        """Whether this instance's tables exist (cached once true: tables are never dropped)."""
        if not self._ready:
            row = conn.execute("SELECT to_regclass(%s)", (f'"{self.schema}".{_MARKER_TABLE}',)).fetchone()
            self._ready = row[0] is not None
        return self._ready

    @contextlib.contextmanager
    def _reading(self):
        """The snapshot's connection, or a pooled one for a single statement; None before any write."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn if self._local.ready else None
            return
        with self.connection() as conn:
            yield conn if self._is_ready(conn) else None

    @contextlib.contextmanager
    def snapshot(self):
        """Run several reads against one consistent version of the data (nested calls reuse the outer one)."""
        if getattr(self._local, "conn", None) is not None:
            yield self._local.conn
            return
        with self.connection() as conn:
            with unavailable_as_store_error():
                ready = self._is_ready(conn)
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self._local.conn, self._local.ready = conn, ready
            try:
                yield conn
            finally:
                self._local.conn = None
                with contextlib.suppress(psycopg.Error):
                    conn.execute("ROLLBACK")  # read-only: nothing to commit

    def _execute(self, conn, sql, params):
        with unavailable_as_store_error():
            cur = conn.execute(translate(sql), tuple(params))
            return cur

    # -- portable reads --------------------------------------------------------
    def query(self, sql, params=()):
        with self._reading() as conn:
            if conn is None:
                return []
            cur = self._execute(conn, sql, params)
            return cur.fetchall() if cur.description else []

    _query = query  # the name the SQLite store's helpers used

    def read_frame(self, sql, params=(), columns=None):
        with self._reading() as conn:
            if conn is None:
                return pd.DataFrame(columns=columns or [])
            cur = self._execute(conn, sql, params)
            names = [d.name for d in cur.description]
            return frame_of(cur.fetchall(), names)

    _frame = read_frame

    def has_tables(self, names):
        """Whether every named table exists in this instance's schema."""
        names = sorted(set(names))
        with self._reading() as conn:
            if conn is None:
                return False
            with unavailable_as_store_error():
                row = conn.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
                                   (self.schema, names)).fetchone()
        return row[0] == len(names)

    def group_concat_sql(self, expr, sep_code):
        """SQL concatenating ``expr`` over a group, separated by ``chr(sep_code)``."""
        return f"string_agg(CAST({expr} AS TEXT), chr({int(sep_code)}))"

    # -- writing -------------------------------------------------------------
    def writer(self):
        """One transaction on the primary (see :mod:`crimemap.store.postgis_writer`)."""
        if self.readonly:
            raise StoreError("this store was opened read-only")
        from crimemap.store.postgis_writer import open_writer

        return open_writer(self)
