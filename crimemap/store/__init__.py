"""The store: where loaded layers, crimes, counts and populations live.

:class:`Store` is the interface the rest of crimemap codes against. The
embedded default, :class:`crimemap.store.sqlite.SQLiteStore`, keeps one SQLite
file in the instance folder (WAL mode, so several server processes read while
one writer works). A PostGIS backend can implement the same interface.

Every write happens inside :meth:`Store.writer`, a context manager that is
one transaction: either all of it lands and the data version goes up by one,
or none of it does and the previous data keeps serving.

Portable SQL
------------
Code outside a backend reads with :meth:`Store.query` / :meth:`Store.read_frame`
and writes with the writer's ``execute`` / ``executemany`` / ``insert_id``, in
the SQL that SQLite 3.24+ and PostgreSQL share:

- ``?`` placeholders only (the PostGIS store translates them);
- upserts as ``INSERT ... ON CONFLICT (cols) DO UPDATE SET c = excluded.c`` or
  ``ON CONFLICT DO NOTHING``, never ``INSERT OR REPLACE`` / ``OR IGNORE``;
- no ``rowid``: a table whose rows need a stable order has an ``id`` column;
- every selected column that is not aggregated is in ``GROUP BY``;
- booleans are stored as 0/1 integers;
- where the dialects differ (``group_concat`` vs ``string_agg``, DDL), the
  backend offers a method rather than callers testing :attr:`Store.dialect`.
"""

import abc
from pathlib import Path

STORE_FILE = "crimemap.sqlite"


class Store(abc.ABC):
    """What the core and the web layer need from a store."""

    #: "sqlite" or "postgresql": names the backend in status and docs.
    dialect = None

    # -- portable reads (see "Portable SQL" above) ---------------------------
    @abc.abstractmethod
    def query(self, sql, params=()):
        """Rows of a read query as a list of tuples; [] before anything was loaded."""

    @abc.abstractmethod
    def read_frame(self, sql, params=(), columns=None):
        """Rows of a read query as a DataFrame (empty, with ``columns``, before any load)."""

    @abc.abstractmethod
    def snapshot(self):
        """Context manager: the reads inside it see one consistent version of the data."""

    @abc.abstractmethod
    def meta(self):
        """The meta table as a dict (data_version, updated_at, ...)."""

    # -- writing -----------------------------------------------------------
    @abc.abstractmethod
    def writer(self):
        """Return a context manager yielding a :class:`Writer` (one transaction)."""

    # -- reading -----------------------------------------------------------
    @abc.abstractmethod
    def data_version(self):
        """The version of the data: a string that changes with every write."""

    @abc.abstractmethod
    def layers(self):
        """Loaded boundary layers as a list of dicts (id, level, vintage, ...)."""

    @abc.abstractmethod
    def layer(self, level, vintage=None):
        """The layer serving ``level`` (SNT falls back to ward); None if none."""

    @abc.abstractmethod
    def areas(self, layer_id, with_geometry=True):
        """The areas of a layer: a GeoDataFrame in EPSG:27700, or a DataFrame."""

    @abc.abstractmethod
    def point_counts(self, layer_id, months=None, categories=None):
        """Crimes from point data per (code, month, category) for a layer."""

    @abc.abstractmethod
    def area_counts(self, level, months=None):
        """Crimes from published count tables per (code, month, major, minor)."""

    @abc.abstractmethod
    def population(self, layer_id):
        """Residents per area of a layer: DataFrame code, year, persons, method."""

    @abc.abstractmethod
    def status(self):
        """What is loaded, as a JSON-ready dict (see ``crimemap status``)."""


def open_store(settings, readonly=False):
    """Open the store the settings name.

    Parameters
    ----------
    settings : dict
        From :func:`crimemap.config.load_settings`.
    readonly : bool
        Open for reading only (web workers; on PostgreSQL they read from
        ``DATABASE_READ_URL`` when it is set).

    ``DATABASE_URL`` picks the backend: empty for the embedded SQLite file,
    ``postgresql://...`` for :class:`crimemap.store.postgis.PostGISStore`.
    """
    url = str(settings.get("DATABASE_URL") or "").strip()
    if url:
        from crimemap.store.postgis_sql import schema_name

        try:
            from crimemap.store.postgis import PostGISStore
        except ImportError as exc:  # psycopg missing: a clear message, not a traceback
            from crimemap.errors import StoreError

            raise StoreError(f"DATABASE_URL names PostgreSQL but psycopg is not installed ({exc}); "
                             "pip install 'psycopg[binary]' psycopg-pool") from None
        instance = Path(settings["INSTANCE"])
        # The folder still holds what is not the store: answer cache, embeds, logs, postcodes.
        instance.mkdir(parents=True, exist_ok=True)
        return PostGISStore(url, schema_name(settings), instance, readonly=readonly,
                            read_url=str(settings.get("DATABASE_READ_URL") or "").strip(),
                            pool_max=int(settings.get("DATABASE_POOL_MAX", 10)),
                            timeout=float(settings.get("DATABASE_TIMEOUT_S", 10.0)))
    from crimemap.store.sqlite import SQLiteStore

    path = Path(settings["INSTANCE"]) / STORE_FILE
    return SQLiteStore(path, readonly=readonly)
