"""A location -> area cache in front of one or more :class:`crimemap.join.AreaIndex` layers.

police.uk snaps every crime to one of ~750k anonymous map points, so the same
locations come back chunk after chunk and month after month: the three API
months of 2018-03..05 hold 191,699 crimes at 36,060 distinct locations, while
their nine chunks hold 106,992 chunk-distinct ones. :class:`LocationCache`
reprojects and joins each location once and answers it from memory afterwards.
The store does the same across ingests (its ``locations`` and ``location_areas``
tables); this is the in-memory form for a pipeline without a store. Pure core:
numpy in, numpy out.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from crimemap.crs import lonlat_to_bng
from crimemap.join import JoinResult
from crimemap.join_checks import _check_threads, _check_xy

__all__ = ["LocationCache"]


class LocationCache:
    """Remember each layer's answer for every location seen.

    Parameters
    ----------
    indexes : list of crimemap.join.AreaIndex
        The layers to join to.
    lonlat : bool, default False
        False: locations are eastings and northings in EPSG:27700. True: they are
        longitude and latitude (EPSG:4326) as published, and each new location is
        reprojected once with :func:`crimemap.crs.lonlat_to_bng`.
    max_locations : int, default 2,000,000
        Locations remembered at most (about 16 bytes plus 5 per layer each, and
        pandas' hash table); once full, new locations are joined but not remembered.

    Attributes
    ----------
    joined : int
        Locations sent to the layers (each once, while there is room).

    Examples
    --------
    >>> import numpy as np, shapely
    >>> from crimemap.join import AreaIndex
    >>> cache = LocationCache([AreaIndex([shapely.box(0, 0, 10, 10)], ["A"])])
    >>> [r.index.tolist() for r in cache.assign(np.array([5.0, 5.0, 20.0]), np.array([5.0, 5.0, 5.0]))]
    [[0, 0, -1]]
    >>> cache.size, cache.joined
    (2, 2)
    """

    def __init__(self, indexes, lonlat=False, max_locations=2_000_000):
        if isinstance(max_locations, bool) or not isinstance(max_locations, (int, np.integer)) or max_locations < 0:
            raise ValueError(f"max_locations must be a non-negative int, got {max_locations!r}")
        self.indexes = list(indexes)
        self.lonlat = bool(lonlat)
        self.max_locations = int(max_locations)
        self.joined = 0
        self._known = pd.Index(np.empty(0, dtype=np.complex128))
        self._area = [np.empty(0, dtype=np.int32) for _ in self.indexes]
        self._edge = [np.empty(0, dtype=bool) for _ in self.indexes]
        self._lock = threading.Lock()

    @property
    def size(self):
        """Locations remembered."""
        return len(self._known)

    def assign(self, a, b, threads=2):
        """Assign each location to one area of every layer, joining only the locations not seen before.

        Parameters
        ----------
        a, b : array-like of float
            Eastings and northings (EPSG:27700), or longitudes and latitudes when
            the cache was made with ``lonlat=True``; 1-D, of equal length.
        threads : int, default 2
            Worker threads of each layer's join of the new locations.

        Returns
        -------
        list of JoinResult
            One per layer: the same result as ``index.assign`` on the same points
            (reprojected with ``lonlat_to_bng`` when ``lonlat``). A NaN or
            infinite coordinate gives -1, as there.

        Raises
        ------
        ValueError
            As :meth:`crimemap.join.AreaIndex.assign`.
        """
        a, b = _check_xy(a, b)
        threads = _check_threads(threads)
        finite = np.isfinite(a) & np.isfinite(b)
        n_layers = len(self.indexes)
        out = [JoinResult(index=np.full(len(a), -1, dtype=np.int32), on_edge=np.zeros(len(a), dtype=bool))
               for _ in range(n_layers)]
        if not finite.any():
            return out
        # One complex number per location, as AreaIndex.assign_unique does; + 0.0 turns -0.0 into 0.0.
        key = np.empty(int(finite.sum()), dtype=np.complex128)
        key.real = a[finite]
        key.imag = b[finite]
        key += 0.0
        inverse, locations = pd.factorize(key)
        with self._lock:
            known, areas, edges = self._known, self._area, self._edge
        at = known.get_indexer(locations)
        new = at < 0
        seen = ~new
        index = [np.empty(len(locations), dtype=np.int32) for _ in range(n_layers)]
        edge = [np.empty(len(locations), dtype=bool) for _ in range(n_layers)]
        for k in range(n_layers):
            index[k][seen] = areas[k][at[seen]]
            edge[k][seen] = edges[k][at[seen]]
        if new.any():
            fresh = locations[new]
            x, y = fresh.real.copy(), fresh.imag.copy()
            if self.lonlat:
                x, y = lonlat_to_bng(x, y)  # NaN where PROJ fails: outside every area, as assign says
            results = [layer.assign(x, y, threads) for layer in self.indexes]
            for k, result in enumerate(results):
                index[k][new] = result.index
                edge[k][new] = result.on_edge
            self._remember(fresh, results)
        for k in range(n_layers):
            out[k].index[finite] = index[k][inverse]
            out[k].on_edge[finite] = edge[k][inverse]
        return out

    def _remember(self, fresh, results):
        with self._lock:
            self.joined += len(fresh)
            room = self.max_locations - len(self._known)
            if room <= 0:
                return
            # Another thread may have remembered some of them meanwhile: keep the first answer (they are equal).
            keep = np.flatnonzero(self._known.get_indexer(fresh) < 0)[:room]
            if len(keep) == 0:
                return
            self._known = self._known.append(pd.Index(fresh[keep]))
            self._area = [np.concatenate([old, r.index[keep]]) for old, r in zip(self._area, results)]
            self._edge = [np.concatenate([old, r.on_edge[keep]]) for old, r in zip(self._edge, results)]
