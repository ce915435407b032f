"""Point-in-polygon join of crime locations to one boundary layer.

The engine answers "which area holds this point" for millions of points against
a few hundred to a few thousand polygons in EPSG:27700 (metres). It is a pure
core module: numpy arrays in, numpy arrays out, no Flask and no file I/O.

How it works (see ``docs/join.md`` for the proof that the grid never
misassigns a point):

1. A uniform grid of ``cell_m`` metre cells covers the layer's bounds.
2. Every polygon boundary is densified to vertices at most ``cell_m / 4``
   apart. The cell of each vertex is marked *mixed*, and so is a neighbouring
   cell when the vertex lies within ``cell_m / 8`` (plus a little slack) of the
   side they share. Every cell that a boundary touches is then mixed.
3. A cell that no boundary touches lies wholly inside the same polygons
   everywhere, so one test of one point labels it. Runs of such *pure* cells
   along a row need only one test per run.
4. A point in a pure cell is answered by one array lookup. A point in a mixed
   cell gets an exact GEOS test against the cell's short candidate list.
5. Building the grid costs about as much as testing ~1.5 points per metre of
   boundary per cell exactly, so by default (``grid="auto"``) it is built only
   once that many points have been joined: before, each point is tested
   against the polygons whose bounding box holds it.

The boundary rule: a point goes to the polygon whose interior holds it; a point
that lies exactly on a boundary goes to the polygon with the smallest code (in
string order) among those whose closure holds it, and is flagged ``on_edge``.
"""

from __future__ import annotations

import math
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from crimemap.join_boxes import BoxBins
from crimemap.join_checks import _check_cell, _check_layer, _check_threads, _check_xy

__all__ = ["AreaIndex", "JoinResult"]

# Points per task handed to a worker thread: big enough that the per-call
# overhead of numpy and shapely vanishes, small enough that the temporaries of
# one chunk stay in cache-friendly sizes and memory stays bounded.
_CHUNK = 1 << 17

# A grid larger than this would take more than ~400 MB; a caller asking for it
# almost certainly passed degrees instead of metres or a tiny cell size.
_MAX_CELLS = 100_000_000

# Boundary vertices are at most this fraction of a cell apart ...
_STEP = 0.25
# ... so every boundary point is within _STEP / 2 of a vertex in each axis. A
# vertex this close to a cell side also marks the neighbour across it. The
# slack absorbs floating-point rounding in the cell arithmetic (errors there
# are ~1e-11 of a cell for British National Grid coordinates).
_REACH = _STEP / 2 + 1e-3

# Empty cells kept around the layer's bounds. Marking reaches one cell beyond
# a vertex's own cell, so with two cells of padding the grid's first cell is
# always a pure "outside" cell, which the lookup uses for points off the grid.
_PAD = 2

# With grid="auto", points are tested straight against the polygons whose
# bounding box holds them until this many points per metre of boundary per cell
# (the grid's build cost, measured in points tested directly; see docs/join.md)
# have been joined that way; then the grid is built. A single call of half as
# many points builds it at once.
_BUDGET = 1.5
# The grid is built in blocks, so its temporaries stay bounded however large
# the layer: boundaries are densified this many vertices at a time (about
# 150 bytes each while marking), and pure cells labelled this many at a time
# (whole rows; about 10 bytes each). See docs/scale.md for the national layer.
_BLOCK_VERTICES = 1 << 20
_BLOCK_CELLS = 1 << 22

_GRID_MODES = ("auto", "always", "never")

_OUTSIDE = -1  # grid value of a pure cell outside every polygon
# Grid values <= _MIXED are mixed cells: cell number k is stored as _MIXED - k.
_MIXED = -2


@dataclass
class JoinResult:
    """The polygon assigned to each point.

    Attributes
    ----------
    index : numpy.ndarray
        int32, position of the assigned polygon in the layer, -1 when the point
        lies outside every polygon (or has a NaN or infinite coordinate).
    on_edge : numpy.ndarray
        bool, True when the point lies exactly on a polygon boundary (a shared
        edge, a vertex or the outer edge of the layer).
    """

    index: np.ndarray
    on_edge: np.ndarray


class AreaIndex:
    """Point-in-polygon index over one boundary layer in EPSG:27700 (metres).

    Parameters
    ----------
    geometries : array-like of shapely.Polygon or shapely.MultiPolygon
        The areas, valid and non-empty, in EPSG:27700. A GeoSeries is accepted;
        its CRS, when set, must be EPSG:27700. Repair invalid polygons first,
        e.g. with ``shapely.make_valid(geoms, method="structure")``. The index works on its own copy, so the
        caller's geometry objects are left untouched.
    codes : array-like of str
        One unique code per geometry (e.g. a ward's GSS code). Ties on a
        boundary go to the smallest code in string order.
    cell_m : float, default 50.0
        Side of a grid cell in metres. Smaller cells send fewer points to the
        exact test but cost more memory and build time; ``docs/join.md`` has
        the measurements behind the default.
    grid : {"auto", "always", "never"}, default "auto"
        When to build the grid. ``"always"``: now. ``"never"``: every point is
        tested against the polygons whose bounding box holds it
        (:class:`crimemap.join_boxes.BoxBins`). ``"auto"``: like ``"never"``
        until the points joined that way would have paid for building the grid
        (a single large call builds it at once), then with the grid. The
        answers are the same in every mode.

    Attributes
    ----------
    codes : numpy.ndarray
        The codes, as a numpy unicode array in layer order.
    cell_m : float
        The cell size in use.

    Raises
    ------
    ValueError
        If the geometries or codes are missing, of the wrong type, invalid,
        of different lengths, not unique, or if ``cell_m`` is not a positive
        number or makes the grid too large.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> squares = [shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)]
    >>> index = AreaIndex(squares, ["B", "A"], cell_m=5)
    >>> result = index.assign(np.array([5.0, 10.0, 30.0]), np.array([5.0, 5.0, 5.0]))
    >>> result.index.tolist(), result.on_edge.tolist()
    ([0, 1, -1], [False, True, False])
    """

    def __init__(self, geometries, codes, cell_m=50.0, grid="auto"):
        geoms, codes = _check_layer(geometries, codes)
        self.cell_m = _check_cell(cell_m)
        if grid not in _GRID_MODES:
            raise ValueError(f"grid must be one of {', '.join(_GRID_MODES)}, got {grid!r}")
        self.codes = codes
        # The layer as WKB: the source of every prepared copy the index makes.
        self._wkb = shapely.to_wkb(geoms)
        self._geoms = _prepared_copy(self._wkb)
        # GEOS builds a prepared polygon's point locator lazily on first use,
        # and that is not thread-safe (libgeos/geos#825). So a prepared set of
        # geometries is only ever used by one thread at a time: each worker
        # takes a set from this pool, or copies a new one when it is empty.
        self._pool = queue.SimpleQueue()
        self._pool.put(self._geoms)
        n = len(geoms)
        order = np.argsort(codes, kind="stable")
        self._order = order.astype(np.int32)  # rank -> polygon position
        # The same with one more entry: "no polygon" (rank n) -> -1.
        self._order_or_none = np.append(self._order, np.int32(-1))
        self._rank = np.empty(n, dtype=np.int32)  # polygon position -> rank
        self._rank[order] = np.arange(n, dtype=np.int32)
        self._boxes = BoxBins(shapely.bounds(geoms))  # read-only: safe to share between threads
        self._size_grid()
        self._grid = None  # set last by _build_grid, so a reader that sees it sees the rest
        self._mode = grid
        self._build_lock = threading.Lock()
        self._direct_points = 0
        self._budget = _BUDGET * float(shapely.length(geoms).sum()) / self.cell_m
        if grid == "always":
            self._ensure_grid()

    # ------------------------------------------------------------------ build

    def _size_grid(self):
        """Place the grid over the layer's bounds; raise if it would be too large."""
        cell = self.cell_m
        minx, miny, maxx, maxy = shapely.total_bounds(self._geoms)
        self._x0 = float(minx) - _PAD * cell
        self._y0 = float(miny) - _PAD * cell
        nx = int(math.ceil((maxx - minx) / cell)) + 2 * _PAD + 1
        ny = int(math.ceil((maxy - miny) / cell)) + 2 * _PAD + 1
        if nx * ny > _MAX_CELLS:
            raise ValueError(
                f"cell_m={cell!r} makes a grid of {nx} x {ny} cells over bounds "
                f"{(minx, miny, maxx, maxy)}; the maximum is {_MAX_CELLS:,} cells. "
                "Use a larger cell_m, and check the layer is in EPSG:27700 metres."
            )
        self._nx, self._ny = nx, ny

    def _want_grid(self, n):
        """Whether to build the grid before joining ``n`` more points (mode "auto")."""
        if self._grid is not None or self._mode == "never":
            return False
        if self._mode == "always":
            return True
        with self._build_lock:
            self._direct_points += n
            return n >= self._budget / 2 or self._direct_points > self._budget

    def _ensure_grid(self):
        """Build the grid unless it is built (once, whichever thread asks first)."""
        with self._build_lock:
            if self._grid is not None:
                return
            geoms = self._take_geoms()
            try:
                self._build_grid(geoms)
            finally:
                self._pool.put(geoms)

    def _take_geoms(self):
        """A prepared copy of the layer no other thread is using; put it back in ``_pool`` after use."""
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            return _prepared_copy(self._wkb)

    def _build_grid(self, geoms):
        nx = self._nx
        ncells = nx * self._ny

        poly, cells = self._boundary_cells()
        mixed_ids = _sorted_unique(cells)
        n_mixed = len(mixed_ids)

        # Candidates of a mixed cell: the polygons whose boundary marked it,
        # plus those holding its centre. A polygon that covers some point of
        # the (closed) cell either has boundary in it, and so marked it, or
        # holds the whole cell in its interior, centre included.
        cx, cy = self._centres(mixed_ids)
        pt, cand = self._boxes.pairs(cx, cy)
        hit = shapely.intersects_xy(geoms[cand], cx[pt], cy[pt])
        k = np.concatenate([np.searchsorted(mixed_ids, cells), pt[hit]])
        p = np.concatenate([poly, cand[hit]])
        del cx, cy, pt, cand, hit, poly, cells
        # Sorted by (cell, rank), so each list runs from the smallest code.
        n = len(self._geoms)
        keys = _sorted_unique(k.astype(np.int64) * n + self._rank[p])
        self._cand = self._order[keys % n]
        self._cand_ptr = np.searchsorted(keys // n, np.arange(n_mixed + 1, dtype=np.int64))
        del k, p, keys

        grid = np.empty(ncells, dtype=np.int32)
        grid[mixed_ids] = _MIXED - np.arange(n_mixed, dtype=np.int32)
        # Pure cells are labelled one run (along a row) at a time: two
        # side-by-side pure cells form a rectangle no boundary touches, so a
        # whole run lies inside exactly the same polygons. A run starts at
        # the first column (padding, outside every polygon) or just right of
        # a mixed cell, and every polygon covering the run also covers the
        # side it shares with that mixed cell: testing the mixed cell's
        # candidates is enough. Runs never cross a row, so bands of whole
        # rows are labelled one after another: the temporaries are a band's.
        rows = max(1, _BLOCK_CELLS // nx)
        for r0 in range(0, self._ny, rows):
            self._label_band(geoms, grid, mixed_ids, r0 * nx, min(self._ny, r0 + rows) * nx)
        self._grid = grid
        self._n_mixed_cells = n_mixed

    def _label_band(self, geoms, grid, mixed_ids, c0, c1):
        """Label the pure cells ``c0 <= cell < c1`` of ``grid`` (whole rows) from their runs."""
        nx = self._nx
        lo, hi = np.searchsorted(mixed_ids, [c0, c1])
        is_mixed = np.zeros(c1 - c0, dtype=bool)
        is_mixed[mixed_ids[lo:hi] - c0] = True
        starts = ~is_mixed
        starts[1:] &= is_mixed[:-1]
        starts[::nx] = ~is_mixed[::nx]  # c0 is the first cell of a row
        first = np.flatnonzero(starts) + c0
        labels = np.full(len(first), _OUTSIDE, dtype=np.int32)
        inner = np.flatnonzero(first % nx != 0)
        if len(inner):
            sx, sy = self._centres(first[inner])
            left = np.searchsorted(mixed_ids, first[inner] - 1)
            pt, cand = self._candidate_pairs(left)
            labels[inner] = self._exact(geoms, sx, sy, pt, cand)[0]
        run = np.cumsum(starts, dtype=np.int32) - 1
        pure = ~is_mixed
        grid[c0:c1][pure] = labels[run[pure]]

    def _boundary_cells(self):
        """Return (polygon, flat cell) pairs for every cell a boundary touches.

        Polygons are densified and marked a block at a time, each block of
        about ``_BLOCK_VERTICES`` boundary vertices, so the temporaries (a
        dozen arrays per vertex) stay bounded however long the layer's
        boundaries are: a national ward layer has ~6 million vertices at the
        default cell size. A (cell, polygon) key belongs to one polygon's
        block, so the blocks' keys never repeat one another.
        """
        n = len(self._geoms)
        vertices = shapely.length(self._geoms) / (self.cell_m * _STEP) + shapely.get_num_coordinates(self._geoms)
        block = np.floor_divide(np.cumsum(vertices), _BLOCK_VERTICES).astype(np.int64)
        bounds = np.flatnonzero(np.diff(block, prepend=-1, append=block[-1] + 1))
        keys = np.concatenate([self._block_keys(a, b) for a, b in zip(bounds[:-1], bounds[1:])])
        keys.sort()
        return keys % n, keys // n

    def _block_keys(self, start, stop):
        """The sorted, distinct ``flat cell * n + polygon`` keys of polygons ``start:stop``."""
        cell = self.cell_m
        lines = shapely.segmentize(shapely.boundary(self._geoms[start:stop]), cell * _STEP)
        coords, poly = shapely.get_coordinates(lines, return_index=True)
        del lines
        poly += start
        fx = (coords[:, 0] - self._x0) / cell
        fy = (coords[:, 1] - self._y0) / cell
        del coords
        ix = np.floor(fx)
        iy = np.floor(fy)
        ux = fx - ix  # where the vertex sits inside its cell, 0..1
        uy = fy - iy
        del fx, fy
        ix = ix.astype(np.int64)
        iy = iy.astype(np.int64)
        near_x = {-1: ux < _REACH, 0: None, 1: ux > 1 - _REACH}
        near_y = {-1: uy < _REACH, 0: None, 1: uy > 1 - _REACH}
        del ux, uy
        keys = []
        n = len(self._geoms)
        for ox, sel_x in near_x.items():
            for oy, sel_y in near_y.items():
                if sel_x is None and sel_y is None:
                    sel = slice(None)
                elif sel_x is None:
                    sel = sel_y
                elif sel_y is None:
                    sel = sel_x
                else:
                    sel = sel_x & sel_y
                flat = (iy[sel] + oy) * self._nx + (ix[sel] + ox)
                keys.append(flat * n + poly[sel])
        return _sorted_unique(np.concatenate(keys))

    def _centres(self, flat):
        """Return the x, y centres of flat cell ids."""
        iy, ix = np.divmod(flat, self._nx)
        return (
            self._x0 + (ix + 0.5) * self.cell_m,
            self._y0 + (iy + 0.5) * self.cell_m,
        )

    # ----------------------------------------------------------------- query

    def _candidate_pairs(self, k):
        """Expand mixed cells ``k`` into (position in k, candidate polygon) pairs."""
        start = self._cand_ptr[k]
        count = self._cand_ptr[k + 1] - start
        pt = np.repeat(np.arange(len(k)), count)
        offset = np.arange(len(pt)) - np.repeat(np.cumsum(count) - count, count)
        return pt, self._cand[np.repeat(start, count) + offset]

    def _exact(self, geoms, x, y, pt, poly):
        """Apply the boundary rule to candidate (point, polygon) pairs.

        ``geoms`` is a prepared copy of the layer that no other thread is
        using. Returns the assigned polygon (-1 for none) and the on-edge flag
        for each of the points ``x, y``.
        """
        n = len(x)
        # Polygon by polygon: consecutive GEOS calls then reuse one polygon's
        # point locator while it is in cache. This alone cuts the CPU time of
        # the exact test by about a third on the 4,994 LSOAs, and it keeps two
        # threads (working on two copies of the layer) from thrashing the cache.
        order = np.argsort(poly, kind="stable")
        pt = pt[order]
        poly = poly[order]
        hit = shapely.intersects_xy(geoms[poly], x[pt], y[pt])
        pt = pt[hit]
        poly = poly[hit]
        best = np.full(n, len(self._geoms), dtype=np.int32)
        np.minimum.at(best, pt, self._rank[poly])
        inside = self._order_or_none[best]
        # On the boundary of a polygon means in its closure but not its
        # interior; contains_xy is the interior test for a point.
        edge = np.zeros(n, dtype=bool)
        edge[pt[~shapely.contains_xy(geoms[poly], x[pt], y[pt])]] = True
        return inside, edge

    def _assign_chunk(self, x, y, out_index, out_edge):
        cell = self.cell_m
        fx = (x - self._x0) / cell
        fy = (y - self._y0) / cell
        # NaN fails every comparison, so NaN coordinates land here too.
        on_grid = (fx >= 0) & (fx < self._nx) & (fy >= 0) & (fy < self._ny)
        if not on_grid.all():
            off = ~on_grid
            fx[off] = 0.0  # grid cell 0 is always pure outside (see _PAD)
            fy[off] = 0.0
        flat = fy.astype(np.int64) * self._nx + fx.astype(np.int64)
        value = self._grid[flat]
        np.maximum(value, _OUTSIDE, out=out_index)
        out_edge[:] = False
        mixed = np.flatnonzero(value <= _MIXED)
        if len(mixed) == 0:
            return
        pt, poly = self._candidate_pairs(_MIXED - value[mixed].astype(np.int64))
        geoms = self._take_geoms()
        try:
            index, edge = self._exact(geoms, x[mixed], y[mixed], pt, poly)
        finally:
            self._pool.put(geoms)
        out_index[mixed] = index
        out_edge[mixed] = edge

    def _direct_chunk(self, x, y, out_index, out_edge):
        """Like ``_assign_chunk`` without the grid: every polygon whose bounding box holds a point is a candidate.

        A polygon's (closed) bounding box holds every point of its closure, so
        ``_exact`` applies the same rule to a superset of the grid's candidates
        and gives the same answer. NaN and infinite coordinates have none: -1.
        """
        pt, poly = self._boxes.pairs(x, y)
        geoms = self._take_geoms()
        try:
            index, edge = self._exact(geoms, x, y, pt, poly)
        finally:
            self._pool.put(geoms)
        out_index[:] = index
        out_edge[:] = edge

    def assign(self, x, y, threads=2):
        """Assign each point to one polygon of the layer.

        Parameters
        ----------
        x, y : array-like of float
            Eastings and northings in EPSG:27700, 1-D, of equal length. A point
            with a NaN or infinite coordinate is assigned -1.
        threads : int, default 2
            Worker threads; numpy and shapely release the GIL, so threads run
            the chunks of the input in parallel.

        Returns
        -------
        JoinResult
            ``index`` (int32, -1 = outside every polygon) and ``on_edge``.

        Raises
        ------
        ValueError
            If x and y are not 1-D numeric arrays of equal length, or
            ``threads`` is not a positive integer.
        """
        x, y = _check_xy(x, y)
        threads = _check_threads(threads)
        n = len(x)
        if n and self._want_grid(n):
            self._ensure_grid()
        chunk = self._assign_chunk if self._grid is not None else self._direct_chunk
        index = np.empty(n, dtype=np.int32)
        edge = np.empty(n, dtype=bool)
        spans = [(i, min(i + _CHUNK, n)) for i in range(0, n, _CHUNK)]

        def run(span):
            a, b = span
            chunk(x[a:b], y[a:b], index[a:b], edge[a:b])

        if threads == 1 or len(spans) <= 1:
            for span in spans:
                run(span)
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                # list() re-raises the first exception of any worker.
                list(pool.map(run, spans))
        return JoinResult(index=index, on_edge=edge)

    def assign_unique(self, x, y, threads=2):
        """Assign points like :meth:`assign`, joining each distinct location once.

        police.uk snaps every crime to one of ~750k anonymous map points, so
        real data repeats locations heavily; de-duplicating first joins each
        location once and copies the answer back to every point there.

        Parameters
        ----------
        x, y : array-like of float
            Eastings and northings in EPSG:27700, 1-D, of equal length.
        threads : int, default 2
            Worker threads for the join of the distinct locations.

        Returns
        -------
        JoinResult
            The same result as :meth:`assign` on the same input.

        Raises
        ------
        ValueError
            As :meth:`assign`.
        """
        x, y = _check_xy(x, y)
        threads = _check_threads(threads)
        finite = np.isfinite(x) & np.isfinite(y)
        if not finite.all():
            inner = self.assign_unique(x[finite], y[finite], threads)
            index = np.full(len(x), _OUTSIDE, dtype=np.int32)
            edge = np.zeros(len(x), dtype=bool)
            index[finite] = inner.index
            edge[finite] = inner.on_edge
            return JoinResult(index=index, on_edge=edge)
        # One complex number per location, so that one hash-based factorize
        # finds the distinct (x, y) pairs. Adding 0.0 turns -0.0 into 0.0.
        key = np.empty(len(x), dtype=np.complex128)
        key.real = x
        key.imag = y
        key += 0.0
        inverse, locations = pd.factorize(key)
        result = self.assign(locations.real.copy(), locations.imag.copy(), threads)
        return JoinResult(index=result.index[inverse], on_edge=result.on_edge[inverse])


# --------------------------------------------------------------------- helpers


def _sorted_unique(values):
    """np.unique for a large int array, by sorting.

    numpy 2.4's np.unique hashes integers, which is two orders of magnitude
    slower than a sort for the millions of cell keys built here.
    """
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))]


def _prepared_copy(wkb):
    """Return prepared geometries read from WKB (which round-trips exactly)."""
    copy = shapely.from_wkb(wkb)
    shapely.prepare(copy)
    return copy
