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
import json
from pathlib import Path

STORE_FILE = "crimemap.sqlite"


class Store(abc.ABC):
    """What the core and the web layer need from a store."""

    #: "sqlite" or "postgresql": names the backend in status and docs.
    dialect = None
    #: How a query selects ``areas.geom`` as WKB.
    GEOMETRY_SQL = "geom"

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

    # -- writing -----------------------------------------------------------
    @abc.abstractmethod
    def writer(self):
        """Return a context manager yielding a :class:`Writer` (one transaction)."""

    # -- reading: the same on every backend, in portable SQL -------------------
    def meta(self):
        """The meta table as a dict (data_version, updated_at, ...)."""
        return dict(self.query("SELECT key, value FROM meta"))

    def data_version(self):
        """The version of the data: a string that changes with every write."""
        return self.meta().get("data_version", "0")

    def layers(self):
        """Loaded boundary layers as a list of dicts (id, level, vintage, ...)."""
        rows = self.query(
            "SELECT id, level, vintage, layout, source, crs_note, loaded_at, n_areas, repairs, warnings "
            "FROM layers ORDER BY level, vintage")
        keys = ("id", "level", "vintage", "layout", "source", "crs_note", "loaded_at", "areas", "repairs", "warnings")
        layers = [dict(zip(keys, row)) for row in rows]
        defaults = {}
        for layer in layers:
            layer["repairs"] = json.loads(layer["repairs"] or "[]")
            layer["warnings"] = json.loads(layer["warnings"] or "[]")
            defaults[layer["level"]] = layer["id"]  # highest vintage wins (ordered above)
        for layer in layers:
            layer["default"] = defaults[layer["level"]] == layer["id"]
        return layers

    def layer(self, level, vintage=None):
        """The layer serving ``level`` (SNT falls back to ward); None if none."""
        layers = self.layers()
        candidates = [lay for lay in layers if lay["level"] == level]
        if not candidates and level == "snt":
            # No SNT layer loaded: SNT = ward (documented in docs/snt.md).
            candidates = [lay for lay in layers if lay["level"] == "ward"]
        if vintage is not None:
            candidates = [lay for lay in candidates if lay["vintage"] == str(vintage)]
        else:
            candidates = [lay for lay in candidates if lay["default"]]
        return candidates[0] if candidates else None

    def areas(self, layer_id, with_geometry=True):
        """The areas of a layer: a GeoDataFrame in EPSG:27700, or a DataFrame."""
        columns = "code, name, borough_code, borough_name, force, area_m2"
        if with_geometry:
            columns += f", {self.GEOMETRY_SQL}"
        frame = self.read_frame(f"SELECT {columns} FROM areas WHERE layer_id = ? ORDER BY code", (layer_id,))
        if not with_geometry:
            return frame
        import geopandas as gpd
        import shapely

        geometry = shapely.from_wkb(frame.pop("geom").to_numpy()) if len(frame) else []
        return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:27700")

    def point_counts(self, layer_id, months=None, categories=None):
        """Crimes from point data per (code, month, category) for a layer."""
        sql = "SELECT code, month, category, n FROM point_counts WHERE layer_id = ?"
        params = [layer_id]
        if months is not None:
            sql += f" AND month IN ({','.join('?' * len(months))})"
            params += list(months)
        if categories is not None:
            sql += f" AND category IN ({','.join('?' * len(categories))})"
            params += list(categories)
        return self.read_frame(sql, params)

    def area_counts(self, level, months=None):
        """Crimes from published count tables per (code, month, major, minor)."""
        sql = ("SELECT code, name, borough_code, borough_name, major, minor, month, n "
               "FROM area_counts WHERE level = ?")
        params = [level]
        if months is not None:
            sql += f" AND month IN ({','.join('?' * len(months))})"
            params += list(months)
        return self.read_frame(sql, params)

    def population(self, layer_id):
        """Residents per area of a layer: DataFrame code, year, persons, method."""
        return self.read_frame(
            "SELECT code, year, persons, method FROM area_population WHERE layer_id = ? ORDER BY code, year",
            (layer_id,))

    def lsoa_population(self):
        return self.read_frame("SELECT lsoa_code, year, persons, lad_code, source FROM lsoa_population")

    def locations_of_layer(self, layer_id):
        """Every stored location with its area in a layer (for tests and checks)."""
        return self.read_frame(
            "SELECT l.id AS location_id, l.x, l.y, la.code, la.on_edge FROM locations l "
            "LEFT JOIN location_areas la ON la.location_id = l.id AND la.layer_id = ?", (layer_id,))

    def status(self):
        """What is loaded, as a JSON-ready dict (see ``crimemap status``), from one snapshot."""
        from crimemap.store.status import build_status

        with self.snapshot():
            return build_status(self)


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
