"""The tile cache under ``tiles/`` (TILES_DIR) and pre-building it.

Layout: ``<root>/v<data version>/<layer>/<query key>/<z>/<x>/<y>.pbf``. The
query key names the crime type and period and ends in a hash of everything
else that shapes a tile (the boundary layer's id and load time, the tile
options, crimemap's version), so a load, a new release or other settings
never serve an old tile: they look under another name. Old data versions are
removed by :meth:`TileCache.prune` (``crimemap tiles build`` runs it).

Every part of a path is a checked integer or a name from a fixed list, and
the final path is checked to lie inside the root as well. Files are written
beside their final name and moved in with ``os.replace``, so a reader never
sees half a tile. Only tiles with features are written, and at most
``queries_max`` query keys per layer and data version: past that, tiles are
built and served but not kept, so arbitrary queries cannot fill the disk.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from crimemap import __version__
from crimemap.errors import NotFound
from crimemap.tiles.build import LAYERS, build_tile, layer_geometry
from crimemap.tiles.grid import tiles_covering

_SAFE = re.compile(r"[^a-z0-9-]+")


def default_root():
    """The repository's top-level ``tiles/`` folder."""
    return Path(__file__).resolve().parents[2] / "tiles"


def root_from_config(config):
    """The cache folder: TILES_DIR, or the top-level ``tiles/`` when it is empty."""
    value = config.get("TILES_DIR") or ""
    return Path(value).expanduser().resolve() if value else default_root()


def _version_part(version):
    return "v" + _SAFE.sub("_", str(version).lower())


class TileCache:
    """Tiles on disk, keyed by data version, layer and query.

    Parameters
    ----------
    root : str or Path
        The cache folder (created when first written).
    queries_max : int
        The most query keys kept per layer and data version.
    """

    def __init__(self, root, queries_max=50):
        self.root = Path(root).resolve()
        self.queries_max = int(queries_max)

    def query_key(self, store, level, months, crime, options):
        """A folder name for one layer's query: readable crime and period, then a hash of the rest."""
        layer = store.layer(level)
        period = f"{months[0]}_{months[-1]}" if months else "none"
        shape = json.dumps([__version__, level, crime, list(months), layer and layer["id"],
                            layer and layer.get("loaded_at"), asdict(options)], sort_keys=True, default=str)
        digest = hashlib.sha1(shape.encode("utf-8")).hexdigest()[:12]
        return f"{_SAFE.sub('_', crime.lower())[:40]}.{period}.{digest}"

    def path(self, version, level, key, z, x, y):
        """The file of one tile; raises :class:`NotFound` if it would fall outside the root."""
        if level not in LAYERS:
            raise NotFound(f"unknown tile layer {level!r}; expected one of {', '.join(LAYERS)}")
        path = (self.root / _version_part(version) / level / key / str(int(z)) / str(int(x)) / f"{int(y)}.pbf")
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise NotFound("no such tile")
        return resolved

    def _may_add(self, query_dir):
        if query_dir.is_dir():
            return True
        parent = query_dir.parent
        try:
            return sum(1 for entry in os.scandir(parent) if entry.is_dir()) < self.queries_max
        except FileNotFoundError:
            return self.queries_max > 0

    def read(self, path):
        """A cached tile's bytes, or None."""
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def write(self, path, data):
        """Write a tile atomically (a temporary file beside it, then ``os.replace``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pbf")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def get_or_build(self, store, level, z, x, y, months, crime, options):
        """A tile from the cache, or built (and kept when it has features).

        Returns
        -------
        (bytes, bool)
            The tile and whether it came from the cache.
        """
        version = str(store.data_version())
        key = self.query_key(store, level, months, crime, options)
        path = self.path(version, level, key, z, x, y)
        found = self.read(path)
        if found is not None:
            return found, True
        data = build_tile(store, level, z, x, y, months, crime, options)
        query_dir = path.parents[2]
        if data and self._may_add(query_dir):
            self.write(path, data)
        return data, False

    def prune(self, keep_version):
        """Delete every data version's folder but ``keep_version``'s.

        Returns
        -------
        int
            Folders removed.
        """
        keep = _version_part(keep_version)
        removed = 0
        if not self.root.is_dir():
            return 0
        for entry in self.root.iterdir():
            if entry.is_dir() and entry.name.startswith("v") and entry.name != keep:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        return removed


def prebuild(store, cache, levels, minzoom, maxzoom, months, crime, options, progress=None):
    """Build and keep every tile of some layers and zooms that touches the layers' areas.

    Parameters
    ----------
    store, cache, options
        The store, a :class:`TileCache` and :class:`~crimemap.tiles.build.TileOptions`.
    levels : list of str
    minzoom, maxzoom : int
    months : list of str
    crime : str
    progress : callable, optional
        Called with ``(level, z, done, total)`` after each tile.

    Returns
    -------
    dict
        ``tiles`` (visited), ``built``, ``cached`` (already there), ``empty``, ``bytes``.
    """
    from crimemap import figures as fig

    totals = {"tiles": 0, "built": 0, "cached": 0, "empty": 0, "bytes": 0}
    for level in levels:
        layer = fig.get_layer(store, level)
        bounds = layer_geometry(store, layer, options.full_detail_zoom, options).bounds
        for z in range(minzoom, maxzoom + 1):
            addresses = tiles_covering(bounds, z)
            for done, (_z, x, y) in enumerate(addresses, 1):
                data, hit = cache.get_or_build(store, level, z, x, y, months, crime, options)
                totals["tiles"] += 1
                totals["cached" if hit else "built"] += 1
                totals["empty"] += 0 if data else 1
                totals["bytes"] += len(data)
                if progress is not None:
                    progress(level, z, done, len(addresses))
    return totals
