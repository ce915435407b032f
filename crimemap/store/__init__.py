"""The store: where loaded layers, crimes, counts and populations live.

:class:`Store` is the interface the rest of crimemap codes against. The
embedded default, :class:`crimemap.store.sqlite.SQLiteStore`, keeps one SQLite
file in the instance folder (WAL mode, so several server processes read while
one writer works). A PostGIS backend can implement the same interface.

Every write happens inside :meth:`Store.writer`, a context manager that is
one transaction: either all of it lands and the data version goes up by one,
or none of it does and the previous data keeps serving.
"""

import abc
from pathlib import Path

STORE_FILE = "crimemap.sqlite"


class Store(abc.ABC):
    """What the core and the web layer need from a store."""

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
        Open for reading only (web workers).
    """
    from crimemap.store.sqlite import SQLiteStore

    path = Path(settings["INSTANCE"]) / STORE_FILE
    return SQLiteStore(path, readonly=readonly)
