"""Embedded maps with a fixed state: figures frozen per data version (docs/embeds.md).

An embed names a level, a crime type, a period and a data ``version`` (the
store's ``data_version``). The store keeps only the current data, so the
figures an embed shows are *frozen* into a snapshot file under
``<INSTANCE>/embeds/`` the first time the embed is made or served while its
version is the current one. From then on the embed is drawn from the snapshot
only, so a re-ingest of its months changes nothing it shows, data-as-of
included.

- ``embeds/v<version>/<key>.json.gz``: one snapshot, keyed by the embed's
  level, crime type, period (as given) and version. The area ``code`` is not
  part of the key: it only focuses the map, so every area of a level shares
  one snapshot.
- ``embeds/geometry/<layer>-<stamp>-<tolerance>.json.gz``: the web geometry
  of a boundary layer as it was loaded, shared by its snapshots, so reloading
  boundaries does not move an embed's polygons either.

Files are written beside their final name and swapped in with
:func:`os.replace`, so a reader sees a whole snapshot or none. An embed whose
version is not the current one and was never frozen raises
:class:`EmbedExpired`; nothing falls back to other figures.

A pure core module: no Flask.
"""

import datetime as dt
import gzip
import hashlib
import json
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from crimemap.crs import WGS84
from crimemap.errors import BadQuery, CrimemapError, NotFound
from crimemap.figures import ALL_CRIME, LEVELS, area_figures, catalog, resolve_period
from crimemap.figures.months import month_index
from crimemap.webgeom import web_geometry

log = logging.getLogger("crimemap.embeds")

FOLDER = "embeds"
FORMAT = 1
_CRIME = re.compile(r"^[a-z0-9][a-z0-9.\-]{0,119}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")
_VERSION = re.compile(r"^[0-9]{1,15}$")
# Per-area fields a snapshot keeps (crimemap.figures.areas.COLUMNS).
FIELDS = ["code", "name", "level", "borough_code", "borough_name", "force", "separate_force", "source", "count",
          "months_with_data", "population", "rate_per_1000", "rate_ci_lower", "rate_ci_upper", "small_count",
          "ratio_to_london", "band", "no_data"]
ATTRS = ["london", "months", "category", "crime_label", "crime_kind", "population_year", "layer", "source",
         "approximate", "classification", "data_version", "small_count_threshold"]


class EmbedExpired(CrimemapError):
    """The embed's data version is no longer the current one and its figures were never frozen."""

    status = 410


class UnknownVersion(NotFound):
    """The embed names a data version later than any this instance has served."""


@dataclass(frozen=True)
class EmbedQuery:
    """What an embed shows: ``level``, ``crime``, the period as given, ``version`` and an optional area ``code``."""

    level: str
    crime: str
    start: str = None
    end: str = None
    version: str = None
    code: str = None

    def key(self):
        """The snapshot key: everything but ``code`` (which only focuses the map)."""
        return {"level": self.level, "crime": self.crime, "from": self.start or "", "to": self.end or "",
                "version": self.version or ""}

    def params(self):
        """URL query parameters in a stable order, leaving out the ones not given."""
        pairs = [("level", self.level), ("code", self.code), ("crime", self.crime), ("from", self.start),
                 ("to", self.end), ("version", self.version)]
        return {k: v for k, v in pairs if v not in (None, "")}

    def pinned(self, version):
        """The same embed pinned to ``version``."""
        return EmbedQuery(self.level, self.crime, self.start, self.end, str(version), self.code)


def _text(args, name, pattern=None, what=""):
    value = args.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
        raise BadQuery(f"bad {name} {value!r}; expected {what}")
    return value


def parse_query(args):
    """Read an embed's parameters from a mapping (a query string).

    Parameters
    ----------
    args : mapping
        ``level`` (default ``borough``), ``code``, ``crime`` (default
        ``all-crime``), ``from``, ``to`` (``YYYY-MM``) and ``version``.

    Returns
    -------
    EmbedQuery

    Raises
    ------
    BadQuery
        For a value of the wrong form, naming it and what is allowed. Whether
        the crime type and the area exist is checked against the data later.
    """
    level = args.get("level") or "borough"
    if level not in LEVELS:
        raise BadQuery(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    crime = _text(args, "crime", _CRIME, "a crime type id from /api/v1/crime-types, e.g. burglary") or ALL_CRIME
    start = _text(args, "from")
    end = _text(args, "to")
    for name, month in (("from", start), ("to", end)):
        if month is not None:
            month_index(month, name)
    if start and end and month_index(start) > month_index(end):
        raise BadQuery(f"the period starts ({start}) after it ends ({end}); 'from' must not be after 'to'")
    version = _text(args, "version", _VERSION, "a data version number, e.g. 12")
    if version is not None:
        version = str(int(version))
    code = _text(args, "code", _CODE, "an area code such as E05000138")
    return EmbedQuery(level, crime, start, end, version, code)


# --- files ---------------------------------------------------------------------------


def folder(instance):
    """``<INSTANCE>/embeds``."""
    return Path(instance) / FOLDER


def snapshot_path(instance, query):
    """Where the snapshot of a pinned embed lives."""
    if not query.version:
        raise ValueError("only a pinned embed (one with a version) has a snapshot")
    digest = hashlib.sha256(json.dumps(query.key(), sort_keys=True).encode()).hexdigest()[:32]
    return folder(instance) / f"v{query.version}" / f"{query.level}-{digest}.json.gz"


def _geometry_name(layer, tolerance_m):
    stamp = hashlib.sha256(str(layer["loaded_at"]).encode()).hexdigest()[:16]
    return f"{int(layer['id'])}-{stamp}-{float(tolerance_m):g}m.json.gz"


def _write_atomic(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(json.dumps(doc, separators=(",", ":")).encode("utf-8"))
            f.flush()
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; snapshots are public figures
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path):
    with gzip.open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def load_snapshot(instance, query):
    """The frozen snapshot of a pinned embed, or None when there is none.

    A file that cannot be read, or holds another key, counts as none (and is
    logged): it is never served in place of the embed's own figures.
    """
    path = snapshot_path(instance, query)
    if not path.exists():
        return None
    try:
        doc = _read(path)
        geometry = _read(folder(instance) / "geometry" / doc["geometry"])
    except (OSError, ValueError, KeyError, EOFError) as exc:
        log.error("embed snapshot %s is unreadable (%s); treated as missing", path, exc)
        return None
    if doc.get("format") != FORMAT or doc.get("key") != query.key():
        log.error("embed snapshot %s holds another embed; treated as missing", path)
        return None
    doc["geometry_doc"] = geometry
    return doc


# --- freezing ------------------------------------------------------------------------


def _plain(value):
    """numpy and float values as JSON-ready Python values (NaN becomes None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _meta(store):
    meta = getattr(store, "meta", None)
    return meta() if callable(meta) else {}


def build_snapshot(store, query, settings):
    """Compute the figures of a pinned embed from the store's current data.

    Parameters
    ----------
    store : crimemap.store.Store
    query : EmbedQuery
        Pinned to the store's current data version.
    settings : dict
        ``QUERY_MONTHS_DEFAULT``, ``QUERY_MONTHS_MAX``, ``SMALL_COUNT``,
        ``WEB_SIMPLIFY_M``.

    Returns
    -------
    (dict, geopandas.GeoSeries)
        The snapshot document, and the layer's web geometry (EPSG:4326,
        indexed by code) it refers to.

    Raises
    ------
    EmbedExpired
        When the store's version is no longer ``query.version`` (it moved on
        while the figures were read).
    BadQuery
        For an unknown crime type or a period too long.
    """
    cat = catalog(store)
    before = str(cat.data_version)
    if before != query.version:
        raise EmbedExpired(f"data version {query.version} is no longer the current one ({before})")
    cat.registry().get(query.crime)  # BadQuery naming the known ids
    months = resolve_period(query.start, query.end, cat.latest, settings["QUERY_MONTHS_DEFAULT"],
                            settings["QUERY_MONTHS_MAX"])
    if not months:
        raise NotFound("no crime data is loaded, so there is nothing to embed")
    figures = area_figures(store, query.level, months, query.crime, small_count=settings["SMALL_COUNT"])
    if str(figures.attrs["data_version"]) != before:
        raise EmbedExpired(f"data version {query.version} changed while its figures were read; try again")
    layer = store.layer(figures.attrs["layer"]["level"], figures.attrs["layer"]["vintage"])
    cache = Path(settings["INSTANCE"]) / "cache"
    shapes = web_geometry(figures[["code", "geometry"]], layer, settings["WEB_SIMPLIFY_M"], cache)
    rows = figures.drop(columns="geometry")[FIELDS].to_dict("records")
    doc = {
        "format": FORMAT, "key": query.key(), "data_version": before, "data_as_of": cat.latest,
        "frozen_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "demo": _meta(store).get("demo") == "1",
        "attrs": _plain({k: figures.attrs.get(k) for k in ATTRS}),
        "areas": _plain(rows),
        "geometry": _geometry_name(layer, settings["WEB_SIMPLIFY_M"]),
    }
    return doc, shapes.loc[figures["code"].to_numpy()]


def _geometry_doc(shapes):
    return {"codes": [str(c) for c in shapes.index],
            "wkb": [g.hex() for g in shapely.to_wkb(shapes.to_numpy())]}


def freeze(store, query, settings):
    """The snapshot of a pinned embed: read from disk, or built and written now.

    Parameters
    ----------
    store : crimemap.store.Store
    query : EmbedQuery
        With a ``version``.
    settings : dict
        As for :func:`build_snapshot`, plus ``INSTANCE``.

    Returns
    -------
    dict
        The snapshot (``geometry_doc`` holds its polygons).

    Raises
    ------
    EmbedExpired
        The version is older than the current one and was never frozen.
    UnknownVersion
        The version is newer than the current one.
    """
    instance = settings["INSTANCE"]
    found = load_snapshot(instance, query)
    if found is not None:
        return found
    current = str(catalog(store).data_version)
    if int(query.version) > int(current):
        raise UnknownVersion(f"there is no data version {query.version}; the current one is {current}")
    if query.version != current:
        raise EmbedExpired(f"this embed shows data version {query.version}, whose figures were not kept "
                           f"(the current version is {current})")
    doc, shapes = build_snapshot(store, query, settings)
    geometry = _geometry_doc(shapes)
    version_folder = snapshot_path(instance, query).parent
    kept = sum(1 for _ in version_folder.glob("*.json.gz")) if version_folder.is_dir() else 0
    if kept >= int(settings["EMBED_SNAPSHOTS_MAX"]):
        # Any period and crime type can be asked for; the cap stops requests from filling the disk.
        log.warning("not freezing embed %s: %d snapshots of version %s already (EMBED_SNAPSHOTS_MAX)",
                    query.key(), kept, query.version)
        doc["unsaved"] = True
        doc["geometry_doc"] = geometry
        return doc
    try:
        geometry_path = folder(instance) / "geometry" / doc["geometry"]
        if not geometry_path.exists():
            _write_atomic(geometry_path, geometry)
        _write_atomic(snapshot_path(instance, query), doc)
    except OSError as exc:
        # Serving still works; the embed just is not protected against the next refresh.
        log.error("could not freeze embed %s: %s", query.key(), exc)
        doc["unsaved"] = True
    doc["geometry_doc"] = geometry
    return doc


def snapshot_figures(doc):
    """A snapshot as an :func:`crimemap.figures.area_figures`-like GeoDataFrame (EPSG:4326, web geometry).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per area with the snapshot's fields and ``attrs`` (plus
        ``data_as_of``).
    """
    geometry = doc["geometry_doc"]
    by_code = dict(zip(geometry["codes"], shapely.from_wkb([bytes.fromhex(h) for h in geometry["wkb"]])))
    areas = doc["areas"]
    # Object columns keep None as None (no data is not zero, and not NaN either), as area_figures does.
    columns = {field: pd.Series([a[field] for a in areas], dtype=object) for field in FIELDS}
    for field in ("separate_force", "no_data"):
        columns[field] = pd.Series([bool(a[field]) for a in areas], dtype=bool)
    columns["months_with_data"] = pd.Series([int(a["months_with_data"]) for a in areas], dtype=int)
    frame = gpd.GeoDataFrame(columns, geometry=[by_code.get(a["code"]) for a in areas], crs=WGS84)
    frame.attrs = dict(doc["attrs"], data_as_of=doc["data_as_of"], frozen_at=doc["frozen_at"],
                       demo=bool(doc.get("demo")))
    return frame
