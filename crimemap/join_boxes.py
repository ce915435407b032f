"""Which polygons' bounding boxes hold a point: the candidates of :mod:`crimemap.join`'s exact test.

An STRtree answers the same question, but only for shapely Point objects, and
making one Python object per point costs more than the query (and wakes the
garbage collector, which then walks every object of the process). These bins
answer it straight from numpy coordinate arrays: a uniform grid of about four
bins per polygon over the layer's bounds lists, for each bin, the polygons
whose bounding box meets it; a point's candidates are those of its bin whose
bounding box holds it (closed, as GEOS's envelope test).
"""

from __future__ import annotations

import math

import numpy as np


class BoxBins:
    """Point -> polygons whose closed bounding box holds it.

    Parameters
    ----------
    bounds : numpy.ndarray
        ``(n, 4)`` float64 ``minx, miny, maxx, maxy`` of each polygon (as
        ``shapely.bounds`` gives them), finite, ``minx <= maxx``, ``miny <= maxy``.
    """

    def __init__(self, bounds):
        bounds = np.asarray(bounds, dtype=np.float64)
        self._minx, self._miny, self._maxx, self._maxy = (bounds[:, k].copy() for k in range(4))
        n = len(bounds)
        self._x0, self._y0 = float(self._minx.min()), float(self._miny.min())
        self._x1, self._y1 = float(self._maxx.max()), float(self._maxy.max())
        width, height = self._x1 - self._x0, self._y1 - self._y0
        side = math.sqrt(width * height / (4 * n)) if width > 0 and height > 0 else max(width, height) / (4 * n)
        # At least 1/1,000,000 of the extent, so that the bins stay few whatever the layer's shape.
        self._side = max(side, width / 1e6, height / 1e6, 1e-9)
        while True:
            # floor((v - origin) / side) is monotonic in v, so a box's first and last bin
            # bracket the bin of every point the box holds: no padding needed.
            ix0, ix1 = self._bin_x(self._minx), self._bin_x(self._maxx)
            iy0, iy1 = self._bin_y(self._miny), self._bin_y(self._maxy)
            spans_x, spans_y = ix1 - ix0 + 1, iy1 - iy0 + 1
            count = spans_x * spans_y
            # Large boxes that overlap (not a coverage) would fill many bins each: fewer, larger bins then.
            if count.sum() <= 64 * n + 1_000_000:
                break
            self._side *= 2
        self._nx = int(ix1.max()) + 1
        ny = int(iy1.max()) + 1
        poly = np.repeat(np.arange(n, dtype=np.int64), count)
        k = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
        bx = ix0[poly] + k % spans_x[poly]
        by = iy0[poly] + k // spans_x[poly]
        flat = by * self._nx + bx
        order = np.argsort(flat, kind="stable")  # by bin, then by polygon
        self._polys = poly[order]
        self._ptr = np.searchsorted(flat[order], np.arange(self._nx * ny + 1, dtype=np.int64))

    def _bin_x(self, x):
        return np.floor((x - self._x0) / self._side).astype(np.int64)

    def _bin_y(self, y):
        return np.floor((y - self._y0) / self._side).astype(np.int64)

    def pairs(self, x, y):
        """``(point, polygon)`` index pairs, point by point, for the polygons whose bounding box holds each point.

        NaN and far-away points have none.
        """
        inside = np.flatnonzero((x >= self._x0) & (x <= self._x1) & (y >= self._y0) & (y <= self._y1))
        xs, ys = x[inside], y[inside]
        cell = self._bin_y(ys) * self._nx + self._bin_x(xs)
        start = self._ptr[cell]
        count = self._ptr[cell + 1] - start
        at = np.repeat(np.arange(len(inside)), count)
        offset = np.arange(len(at)) - np.repeat(np.cumsum(count) - count, count)
        poly = self._polys[np.repeat(start, count) + offset]
        px, py = xs[at], ys[at]
        hold = (self._minx[poly] <= px) & (px <= self._maxx[poly]) & (self._miny[poly] <= py) & (py <= self._maxy[poly])
        return inside[at[hold]], poly[hold]
