"""The in-memory postcode lookup, and the per-process cache the web layer uses.

A version folder (see :mod:`crimemap.postcodes.build`) is a set of ``.npy``
columns sorted by postcode. They are memory-mapped read-only, so several
server processes share one copy in the page cache and opening a version is
nearly free. A postcode is found by binary search on 64-bit keys (the
compact postcode's bytes, see :func:`~crimemap.postcodes.normalise.key_of`),
which keeps a whole-UK directory in ~60 bytes a postcode instead of the
~200 a dict of strings would take.

The areas of each postcode -- the loaded ward, SNT and borough polygons that
contain its point -- are joined once per (lookup version, store data version)
with :class:`crimemap.join.AreaIndex` and kept as small integer arrays, so a
lookup never runs a geometry test.
"""

import json
import math
import os
import threading
import time
from pathlib import Path

import numpy as np

from crimemap.postcodes.build import current_version, folder_of
from crimemap.postcodes.normalise import compact, key_of, normalise_outcode, normalise_prefix, postcode_of_key
from crimemap.postcodes.sources import CODE_FIELDS

__all__ = ["PostcodeLookup", "get_lookup", "clear_cache"]

_GRID_M = 1000.0  # cell of the nearest-postcode grid, metres
_COL_BITS = 12  # northings cells per easting column: 4096 km covers the UK


class PostcodeLookup:
    """One loaded version of the postcode directory.

    Parameters
    ----------
    folder : Path
        A version folder, ``<INSTANCE>/postcodes/v<N>``.
    settings : dict, optional
        Caps: ``POSTCODES_NEAREST_MAX``, ``POSTCODES_RADIUS_MAX_M``,
        ``POSTCODES_AUTOCOMPLETE_MAX``, ``POSTCODES_SUGGESTIONS``.

    Attributes
    ----------
    version : str
        The version number, e.g. ``"7"``.
    source : str
        Where it was loaded from.
    refreshed_at : str
        When (ISO 8601, UTC).
    count : int
        Postcodes held, live and terminated.
    areas : LookupAreas or None
        The loaded polygons each postcode falls in, once bound to a store.
    """

    def __init__(self, folder, settings=None):
        self.folder = Path(folder)
        settings = settings or {}
        self.meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
        self.version = str(self.meta["version"])
        self.source = self.meta["source"]
        self.refreshed_at = self.meta["refreshed_at"]
        self.count = int(self.meta["count"])
        self.live = int(self.meta["live"])
        self.terminated_count = int(self.meta["terminated"])
        self.layouts = self.meta.get("layouts", [])
        self.caps = _caps(settings)
        self.nearest_max, self.radius_max_m, self.autocomplete_max, self.suggestions = self.caps

        def load(name):
            # np.asarray drops the memmap subclass: plain ndarray indexing is
            # several times faster, and the data stays file-backed.
            return np.asarray(np.load(self.folder / f"{name}.npy", mmap_mode="r", allow_pickle=False))

        self._keys = load("keys")
        self._lat = load("latitude")
        self._lon = load("longitude")
        self._east = load("eastings")
        self._north = load("northings")
        self._quality = load("quality")
        self._introduced = load("introduced")
        self._terminated = load("terminated")
        self._codes = {field: load(field) for field in CODE_FIELDS}
        self._tables = {field: load(f"table_{field}").tolist() for field in CODE_FIELDS}
        self._outcode = load("outcode")
        self._outcode_table = load("table_outcode").tolist()
        self._outcode_index = {oc: i for i, oc in enumerate(self._outcode_table)}
        # Postcodes of each outward code: rows in postcode order, grouped.
        self._by_outcode = np.argsort(self._outcode, kind="stable").astype(np.int32)
        self._outcode_start = np.concatenate(
            ([0], np.cumsum(np.bincount(self._outcode, minlength=len(self._outcode_table))))).astype(np.int64)
        self._grid = None
        self._outcode_cache = {}
        self._lock = threading.Lock()
        self.areas = None

    # ------------------------------------------------------------- rows

    def index(self, postcode):
        """Row of a canonical postcode (``"SW1A 1AA"``), or -1."""
        squeezed = postcode.replace(" ", "") if isinstance(postcode, str) else None
        if not squeezed or len(squeezed) > 8 or not squeezed.isascii():
            return -1
        key = key_of(squeezed)
        i = int(self._keys.searchsorted(key))
        if i < self.count and self._keys.item(i) == key:
            return i
        return -1

    def row(self, i):
        """The directory's row ``i`` as a dict (see :meth:`get`)."""
        # ndarray.item() returns a Python scalar directly: several times
        # faster than indexing to a numpy scalar and converting it.
        postcode = postcode_of_key(self._keys.item(i))
        lat = self._lat.item(i)
        located = lat == lat  # False for NaN
        terminated = self._terminated.item(i)
        introduced = self._introduced.item(i)
        quality = self._quality.item(i)
        tables, codes = self._tables, self._codes
        outcode, incode = postcode.split(" ")
        return {
            "postcode": postcode, "outcode": outcode, "incode": incode,
            "latitude": lat if located else None,
            "longitude": self._lon.item(i) if located else None,
            "eastings": int(self._east.item(i)) if located else None,
            "northings": int(self._north.item(i)) if located else None,
            "positional_quality": quality if quality >= 0 else None,
            "country_code": tables["country_code"][codes["country_code"].item(i)] or None,
            "nhs_region_code": tables["nhs_region_code"][codes["nhs_region_code"].item(i)] or None,
            "nhs_ha_code": tables["nhs_ha_code"][codes["nhs_ha_code"].item(i)] or None,
            "county_code": tables["county_code"][codes["county_code"].item(i)] or None,
            "district_code": tables["district_code"][codes["district_code"].item(i)] or None,
            "ward_code": tables["ward_code"][codes["ward_code"].item(i)] or None,
            "date_introduced": f"{introduced // 100:04d}-{introduced % 100:02d}" if introduced else None,
            "date_terminated": f"{terminated // 100:04d}-{terminated % 100:02d}" if terminated else None,
            "live": terminated == 0,
        }

    def brief(self, i):
        """What a search needs of row ``i``, without the other codes (the fast path of resolve).

        Returns
        -------
        tuple
            ``(postcode, latitude, longitude, eastings, northings,
            positional_quality, live, ward_code, district_code)``; coordinates
            None when the directory gives no location.
        """
        postcode = postcode_of_key(self._keys.item(i))
        lat = self._lat.item(i)
        quality = self._quality.item(i)
        ward = self._tables["ward_code"][self._codes["ward_code"].item(i)] or None
        district = self._tables["district_code"][self._codes["district_code"].item(i)] or None
        live = self._terminated.item(i) == 0
        if lat != lat:  # NaN: no location
            return postcode, None, None, None, None, quality if quality >= 0 else None, live, ward, district
        return (postcode, lat, self._lon.item(i), int(self._east.item(i)), int(self._north.item(i)),
                quality if quality >= 0 else None, live, ward, district)

    def get(self, postcode):
        """The directory's row for a canonical postcode, live or terminated.

        Parameters
        ----------
        postcode : str
            As :func:`~crimemap.postcodes.normalise` returns it.

        Returns
        -------
        dict or None
            ``postcode``, ``outcode``, ``incode``, ``latitude``, ``longitude``,
            ``eastings``, ``northings``, ``positional_quality``, the directory's
            codes (``country_code``, ``nhs_region_code``, ``nhs_ha_code``,
            ``county_code``, ``district_code``, ``ward_code``),
            ``date_introduced`` and ``date_terminated`` (``YYYY-MM`` or None)
            and ``live``; None when the postcode is not in the directory.
        """
        i = self.index(postcode)
        return self.row(i) if i >= 0 else None

    def validate(self, text):
        """Whether ``text`` is a postcode this lookup holds (live or terminated)."""
        from crimemap.postcodes.normalise import normalise

        canonical = normalise(text)
        return canonical is not None and self.index(canonical) >= 0

    def terminated(self, postcode):
        """The termination of a canonical postcode, or None when it is live or unknown.

        Returns
        -------
        dict or None
            ``postcode``, ``year_terminated``, ``month_terminated``,
            ``latitude``, ``longitude`` (the shape postcodes.io uses).
        """
        i = self.index(postcode)
        if i < 0 or self._terminated[i] == 0:
            return None
        ym = int(self._terminated[i])
        lat = float(self._lat[i])
        return {"postcode": postcode_of_key(self._keys[i]), "year_terminated": ym // 100,
                "month_terminated": ym % 100, "latitude": None if math.isnan(lat) else lat,
                "longitude": None if math.isnan(lat) else float(self._lon[i])}

    # ------------------------------------------------------------- prefixes

    def autocomplete(self, prefix, limit=10):
        """Postcodes starting with ``prefix`` (any case or spacing), in order.

        Parameters
        ----------
        prefix : str
            ``"sw1a 1"`` or ``"SW1A1"``; spaces are ignored, as postcodes.io does.
        limit : int
            At most this many (capped at ``POSTCODES_AUTOCOMPLETE_MAX``).

        Returns
        -------
        list of str
            Live postcodes, canonical form; empty when nothing matches.
        """
        squeezed = normalise_prefix(prefix)
        limit = max(0, min(int(limit), self.autocomplete_max))
        if squeezed is None or limit == 0:
            return []
        low = key_of(squeezed)
        high = key_of(squeezed + "\x7f" * (8 - len(squeezed)))
        start, stop = int(self._keys.searchsorted(low)), int(self._keys.searchsorted(high, side="right"))
        out = []
        # Walk in slices: terminated postcodes are skipped, so a slice of
        # exactly ``limit`` rows may not be enough.
        while start < stop and len(out) < limit:
            end = min(stop, start + 4 * limit)
            live = np.flatnonzero(self._terminated[start:end] == 0) + start
            out.extend(postcode_of_key(k) for k in self._keys[live[: limit - len(out)]])
            start = end
        return out

    def outcode(self, outcode):
        """A summary of one outward code.

        Parameters
        ----------
        outcode : str
            ``"sw1a"`` in any case or spacing.

        Returns
        -------
        dict or None
            ``outcode``, ``latitude`` and ``longitude`` (the mean of its live
            located postcodes), ``eastings``, ``northings``, ``postcodes``
            (live count), ``terminated`` (count), ``admin_district`` and
            ``admin_ward`` (directory codes, most frequent first); None when
            the lookup holds no postcode of that outward code.
        """
        canonical = normalise_outcode(outcode)
        position = self._outcode_index.get(canonical)
        if position is None:
            return None
        cached = self._outcode_cache.get(position)
        if cached is None:
            rows = self._by_outcode[self._outcode_start[position]:self._outcode_start[position + 1]]
            live = rows[self._terminated[rows] == 0]
            placed = live[~np.isnan(self._lat[live])]

            def ranked(field):
                values, counts = np.unique(self._codes[field][live], return_counts=True)
                names = [self._tables[field][v] for v in values[np.argsort(-counts, kind="stable")]]
                return [n for n in names if n]

            def mean(values, digits):
                return round(float(np.mean(values[placed])), digits) if len(placed) else None

            cached = {"outcode": canonical, "latitude": mean(self._lat, 6), "longitude": mean(self._lon, 6),
                      "eastings": None if not len(placed) else round(mean(self._east, 1)),
                      "northings": None if not len(placed) else round(mean(self._north, 1)),
                      "postcodes": int(len(live)), "terminated": int(len(rows) - len(live)),
                      "admin_district": ranked("district_code"), "admin_ward": ranked("ward_code")}
            self._outcode_cache[position] = cached
        return dict(cached)

    def sector_neighbours(self, postcode, limit):
        """Live postcodes of the same sector (``"SW1A 1"``) nearest in order to ``postcode``."""
        outcode, incode = postcode.split(" ")
        sector = compact(outcode + incode[0])
        low, high = key_of(sector), key_of(sector + "\x7f" * (8 - len(sector)))
        start, stop = int(self._keys.searchsorted(low)), int(self._keys.searchsorted(high, side="right"))
        rows = np.arange(start, stop)
        rows = rows[(self._terminated[rows] == 0) & ~np.isnan(self._lat[rows])]
        if not len(rows):
            return []
        at = int(np.searchsorted(self._keys[rows], key_of(compact(postcode))))
        # Interleave the neighbours either side: new postcodes are allocated
        # beside old ones on the same delivery walk.
        picked = sorted(range(len(rows)), key=lambda j: (abs(j - at + 0.5), j))[:limit]
        return [int(rows[j]) for j in picked]

    # ------------------------------------------------------------- nearest

    def _build_grid(self):
        with self._lock:
            if self._grid is not None:
                return self._grid
            live = np.flatnonzero((self._terminated == 0) & ~np.isnan(self._east))
            cx = np.floor(self._east[live] / _GRID_M).astype(np.int64)
            cy = np.floor(self._north[live] / _GRID_M).astype(np.int64)
            cell = (cx << _COL_BITS) | np.clip(cy, 0, (1 << _COL_BITS) - 1)
            order = np.argsort(cell, kind="stable")
            self._grid = (cell[order], live[order].astype(np.int32))
            return self._grid

    def nearest_rows(self, x, y, limit, radius_m):
        """Rows of live postcodes within ``radius_m`` of BNG ``(x, y)``, nearest first, with distances."""
        cells, rows = self._build_grid()
        reach = int(math.ceil(radius_m / _GRID_M))
        cx0, cy0 = int(math.floor(x / _GRID_M)), int(math.floor(y / _GRID_M))
        cols = np.arange(cx0 - reach, cx0 + reach + 1, dtype=np.int64)
        low = (cols << _COL_BITS) | max(cy0 - reach, 0)
        high = (cols << _COL_BITS) | min(cy0 + reach, (1 << _COL_BITS) - 1)
        starts, stops = np.searchsorted(cells, low), np.searchsorted(cells, high, side="right")
        found = np.concatenate([rows[a:b] for a, b in zip(starts, stops)] or [np.empty(0, np.int32)])
        if not len(found):
            return np.empty(0, np.int32), np.empty(0)
        dist = np.hypot(self._east[found].astype(np.float64) - x, self._north[found].astype(np.float64) - y)
        within = dist <= radius_m
        found, dist = found[within], dist[within]
        order = np.lexsort((found, dist))[:limit]
        return found[order], dist[order]

    def nearest(self, lat, lon, limit=10, radius_m=2000):
        """Live postcodes nearest to a point.

        Parameters
        ----------
        lat, lon : float
            Degrees (EPSG:4326).
        limit : int
            At most this many (capped at ``POSTCODES_NEAREST_MAX``).
        radius_m : float
            Search radius in metres (capped at ``POSTCODES_RADIUS_MAX_M``).

        Returns
        -------
        list of dict
            The rows of :meth:`get`, nearest first, each with ``distance`` in
            metres (rounded to 0.1 m).

        Raises
        ------
        ValueError
            If the point is not a finite latitude/longitude.
        """
        from crimemap.crs import lonlat_to_bng

        lat, lon = float(lat), float(lon)
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"not a latitude/longitude: {lat!r}, {lon!r}")
        x, y = lonlat_to_bng(lon, lat)
        if not (np.isfinite(x) and np.isfinite(y)):
            return []
        return self.nearest_bng(float(x), float(y), limit, radius_m)

    def nearest_bng(self, x, y, limit=10, radius_m=2000):
        """As :meth:`nearest`, for a point in British National Grid metres."""
        limit = max(0, min(int(limit), self.nearest_max))
        radius_m = max(0.0, min(float(radius_m), self.radius_max_m))
        if limit == 0:
            return []
        rows, dist = self.nearest_rows(x, y, limit, radius_m)
        return [self.row(int(i)) | {"distance": round(float(d), 1)} for i, d in zip(rows, dist)]

    # ------------------------------------------------------------- areas

    def with_caps(self, caps):
        """A view of this lookup that shares its columns and answers with other size caps."""
        view = object.__new__(PostcodeLookup)
        view.__dict__.update(self.__dict__)
        view.caps = caps
        view.nearest_max, view.radius_max_m, view.autocomplete_max, view.suggestions = caps
        return view

    def with_areas(self, areas):
        """A view of this lookup that shares its columns and knows ``areas``."""
        view = object.__new__(PostcodeLookup)
        view.__dict__.update(self.__dict__)
        view.areas = areas
        return view

    def coordinates(self):
        """(eastings, northings) of every row as float64 arrays (NaN where unplaced)."""
        return self._east.astype(np.float64), self._north.astype(np.float64)

    def memory(self):
        """Bytes held: ``mapped`` (file-backed columns, shared between processes) and ``private``."""
        mapped = sum(a.nbytes for a in [self._keys, self._lat, self._lon, self._east, self._north, self._quality,
                                        self._introduced, self._terminated, self._outcode, *self._codes.values()])
        private = self._by_outcode.nbytes + self._outcode_start.nbytes
        if self._grid is not None:
            private += self._grid[0].nbytes + self._grid[1].nbytes
        if self.areas is not None:
            private += self.areas.nbytes
        return {"mapped": int(mapped), "private": int(private)}


# ----------------------------------------------------------------- cache


def _caps(settings):
    """The size caps a lookup answers with, from settings (defaults as in crimemap.config)."""
    return (int(settings.get("POSTCODES_NEAREST_MAX", 100)), float(settings.get("POSTCODES_RADIUS_MAX_M", 2000)),
            int(settings.get("POSTCODES_AUTOCOMPLETE_MAX", 100)), int(settings.get("POSTCODES_SUGGESTIONS", 5)))


class _Entry:
    def __init__(self, store=None):
        # The store itself is held so that its id() in the cache key cannot
        # be reused by another store while this entry lives.
        self.store = store
        self.lock = threading.Lock()
        self.checked_at = -math.inf
        self.pointer = None  # (mtime_ns, inode, size) of the ``current`` file
        self.base = None
        self.data_version = None
        self.data_checked_at = -math.inf
        self.bound = None  # the base with areas for self.data_version
        self.views = {}  # (id of base or bound, caps) -> a view with those caps


_CACHE = {}
_CACHE_ENTRIES = 8
_CACHE_LOCK = threading.Lock()


def clear_cache():
    """Forget every cached lookup (tests, and after a rollback in the same process)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _stat(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_ino, st.st_size


def get_lookup(settings, store=None):
    """The lookup serving an instance, cached per process.

    Parameters
    ----------
    settings : dict
        ``INSTANCE``, ``POSTCODES_RECHECK_S`` (how often, in seconds, to look
        for a new version or new store data; default 1), ``JOIN_GRID_CELL_M``
        and the lookup's caps.
    store : crimemap.store.Store, optional
        Where the ward, SNT and borough polygons come from. Without it the
        lookup has no areas.

    Returns
    -------
    PostcodeLookup or None
        None when no lookup has been loaded into the instance.

    Notes
    -----
    The heavy structures are built once per (lookup version, store data
    version). A request costs at most a ``stat`` of the ``current`` pointer
    and one data-version query per ``POSTCODES_RECHECK_S``; a new version
    is loaded by the first request that notices it while other threads keep
    answering from the old one.
    """
    recheck = settings.get("POSTCODES_RECHECK_S", 1.0)
    key = (settings["INSTANCE"], None if store is None else id(store))
    entry = _CACHE.get(key)
    if entry is None or (store is not None and entry.store is not store):
        with _CACHE_LOCK:
            while len(_CACHE) >= _CACHE_ENTRIES:
                _CACHE.pop(next(iter(_CACHE)))  # the oldest: tests and tools open many instances
            entry = _CACHE[key] = _Entry(store)
    now = time.monotonic()
    if now - entry.checked_at >= recheck:
        with entry.lock:
            if now - entry.checked_at >= recheck:
                folder = folder_of(settings["INSTANCE"])
                pointer = _stat(folder / "current")
                if pointer != entry.pointer or entry.base is None:
                    _load_base(entry, folder, settings, pointer)
                entry.checked_at = time.monotonic()
    base = entry.base
    if base is None:
        return None
    if store is None:
        return _with_caps(entry, base, settings)
    if now - entry.data_checked_at >= recheck or entry.bound is None or entry.bound.version != base.version:
        with entry.lock:
            data_version = store.data_version()
            bound = entry.bound
            if bound is None or bound.version != base.version or entry.data_version != data_version:
                from crimemap.postcodes.areas import LookupAreas

                areas = LookupAreas.build(base, store, cell_m=float(settings.get("JOIN_GRID_CELL_M", 50.0)),
                                          data_version=data_version)
                entry.bound = base.with_areas(areas)
                entry.data_version = data_version
            entry.data_checked_at = time.monotonic()
    return _with_caps(entry, entry.bound, settings)


def _with_caps(entry, lookup, settings):
    # Callers with different settings (the web app, the status document)
    # share one cache entry, each seeing its own caps.
    caps = _caps(settings)
    if caps == lookup.caps:
        return lookup
    key = (id(lookup), caps)
    view = entry.views.get(key)
    if view is None:
        if len(entry.views) > 16:
            entry.views.clear()
        # The view holds the lookup, so its id cannot be reused while cached.
        view = entry.views[key] = lookup.with_caps(caps)
    return view


def _load_base(entry, folder, settings, pointer):
    version = current_version(folder)
    if version is None:
        entry.base, entry.bound, entry.pointer = None, None, pointer
        return
    if entry.base is not None and entry.base.version == str(version):
        entry.pointer = pointer
        return
    try:
        entry.base = PostcodeLookup(folder / f"v{version}", settings)
    except (FileNotFoundError, KeyError, ValueError, json.JSONDecodeError):
        # The version named was removed between reading the pointer and
        # opening it (a prune or rollback racing us): keep serving the old
        # one and look again at the next check.
        return
    entry.bound = None
    entry.pointer = pointer
