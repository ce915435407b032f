"""Where counts come from: police.uk points or the Met's count tables.

Two kinds of crime data answer a query (docs/crime-types.md, "Sources"):

- **police.uk** point data, joined to the requested boundary layer
  (``store.point_counts``). It carries the police.uk categories.
- **The Met's count tables** (``store.area_counts``): ward, borough and LSOA
  counts by MajorText/MinorText. They are matched to the requested layer by
  area code: the ward table to a ward layer whose codes it holds (the 2022
  ward vintage), the borough table to boroughs, and the ward or LSOA table
  summed by their borough code to boroughs.

``all-crime`` and ``mopac7`` can come from either; the Met tables win when
they cover the layer (at least :data:`MET_MATCH_MIN` of its Met areas) in
every month of the period, else the source covering more months does. The
City of London is policed by its own force: its areas never take Met figures,
only point data.

A pure core module; it reads the store through its read API.
"""

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from crimemap.crimetypes import registry

MET = "metropolitan"
CITY = "city-of-london"
POINTS = "police.uk"

# A Met table answers for a layer when it holds at least this share of the
# layer's Metropolitan Police areas in a month. The 2022 ward table holds all
# 679 of the approximate 2022 wards but only 149 of the 632 Met wards of 2018.
MET_MATCH_MIN = 0.9

_CACHE = {}
_CACHE_MAX = 8
# Server threads share the caches below; one lock keeps their bookkeeping whole.
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Source:
    """One way of counting crimes for a layer.

    Attributes
    ----------
    id : str
        ``police.uk``, ``mps-ward``, ``mps-borough`` or ``mps-lsoa``.
    kind : str
        ``points`` or ``counts``.
    table_level : str or None
        The level of the Met table (``ward``, ``borough``, ``lsoa``).
    key : str
        The table column matched to the layer's area codes: ``code``, or
        ``borough_code`` for a table summed up to boroughs.
    """

    id: str
    kind: str
    table_level: str = None
    key: str = "code"

    @property
    def label(self):
        if self.kind == "points":
            return "police.uk street-level crime, joined to the boundaries"
        text = f"Metropolitan Police {self.table_level}-level recorded crime counts (London Datastore)"
        return text + (", summed by borough" if self.key == "borough_code" else "")

    def to_dict(self):
        return {"id": self.id, "kind": self.kind, "table_level": self.table_level,
                "aggregated": self.key == "borough_code", "label": self.label}


POINT_SOURCE = Source(POINTS, "points")


@dataclass
class Catalog:
    """What is loaded, read once per data version.

    Attributes
    ----------
    feeds : dict
        Feed name (``police.uk:city-of-london``, ``mps-ward``...) to its sorted months.
    met_types : pandas.DataFrame
        ``level, major, minor`` present in the Met tables.
    point_categories : list of str
        police.uk categories present in point data.
    coverage : dict
        Met feed to month to the areas its file listed: a listed area with
        no row in a month had no crime then (the tables store non-zero cells only).
    """

    data_version: str
    feeds: dict
    met_types: pd.DataFrame
    point_categories: list
    coverage: dict = None

    def areas_listed(self, feed, month):
        """Areas a Met table listed for a month (its whole file, zero rows included)."""
        return (self.coverage or {}).get(feed, {}).get(month, frozenset())

    @property
    def months(self):
        return sorted({m for months in self.feeds.values() for m in months})

    @property
    def latest(self):
        months = self.months
        return months[-1] if months else None

    def met_months(self, table_level):
        return self.feeds.get(f"mps-{table_level}", [])

    def point_months(self):
        return sorted({m for feed, months in self.feeds.items() if not feed.startswith("mps-") for m in months})

    def type_sources(self):
        """Crime type id to the sources whose loaded data carry it (sorted source ids)."""
        reg = self.registry()
        found = {}
        point_sources = [POINTS] if self.point_months() else []
        for crime_type in reg:
            if crime_type.kind == "police.uk" and crime_type.id in self.point_categories:
                found.setdefault(crime_type.id, set()).update(point_sources)
        for level, major, minor in self.met_types[["level", "major", "minor"]].itertuples(index=False, name=None):
            source = f"mps-{level}"
            for crime_type in reg:
                if crime_type.kind in ("met-major", "met-minor") and crime_type.matches_met(major, minor):
                    found.setdefault(crime_type.id, set()).add(source)
        for crime_type in reg:
            if crime_type.kind in ("total", "group"):
                sources = set(point_sources) if self.point_categories else set()
                sources |= {f"mps-{level}" for level in set(self.met_types["level"])}
                found[crime_type.id] = sources
        return {k: sorted(v) for k, v in found.items()}

    def registry(self):
        """The crime types: declared, plus those found in the loaded data."""
        pairs = zip(self.met_types["major"], self.met_types["minor"]) if len(self.met_types) else ()
        return registry().with_loaded(self.point_categories, pairs)


def catalog(store):
    """The :class:`Catalog` of a store, cached per data version."""
    version = str(store.data_version())
    key = (getattr(store, "path", id(store)), version)
    with _LOCK:
        found = _CACHE.get(key)
    if found is None:
        found = _read_catalog(store, version)
        with _LOCK:
            while len(_CACHE) >= _CACHE_MAX:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = found
    return found


def _read_catalog(store, version):
    feeds, coverage, lists = {}, {}, {}
    # Small scans instead of the whole status document.
    for feed, month, listed in store.query("SELECT feed, month, coverage FROM batches"):
        feeds.setdefault(feed, []).append(month)
        if listed:
            if listed not in lists:  # every month of a file lists the same areas
                lists[listed] = frozenset(json.loads(listed).get("areas", []))
            coverage.setdefault(feed, {})[month] = lists[listed]
    met = pd.DataFrame(store.query("SELECT DISTINCT level, major, minor FROM area_counts"),
                       columns=["level", "major", "minor"])
    categories = [r[0] for r in store.query("SELECT DISTINCT category FROM point_counts")]
    return Catalog(version, {f: sorted(set(m)) for f, m in feeds.items()}, met.reset_index(drop=True),
                   sorted(set(categories)), coverage)


def candidates(cat, layer_level):
    """Met sources that may answer for a layer of this level, best first."""
    if layer_level == "borough":
        options = [Source("mps-borough", "counts", "borough", "code"),
                   Source("mps-ward", "counts", "ward", "borough_code"),
                   Source("mps-lsoa", "counts", "lsoa", "borough_code")]
    elif layer_level in ("ward", "snt"):
        options = [Source("mps-ward", "counts", "ward", "code")]
    else:
        options = []
    return [s for s in options if cat.met_months(s.table_level)]


@dataclass
class Counts:
    """Crimes of one source for one layer and a set of months.

    Attributes
    ----------
    source : Source
    rows : pandas.DataFrame
        ``code, month, n`` plus ``category`` (points) or ``major, minor`` (Met).
    covered : set of (str, str)
        (code, month) pairs with data: a missing row there means zero crimes.
    unallocated : pandas.DataFrame
        Met rows in no area of the layer (``month, major, minor, n``), e.g.
        the borough "Unknown"; empty for points.
    area_rows, london_rows : dict or None
        :attr:`rows` of one area, and of every Met area, summed per month and
        kind of row (set by a summary).
    london_cov : set or None
        Months in which London (the Met areas) is covered (set by a summary).
    """

    source: Source
    rows: pd.DataFrame
    covered: set
    unallocated: pd.DataFrame
    area_rows: dict = None
    london_rows: dict = None
    london_cov: set = None
    matches: dict = None

    def select(self, crime_type, frame=None):
        """The rows (of ``frame``, default :attr:`rows`) that count towards a crime type."""
        frame = self.rows if frame is None else frame
        if self.source.kind == "points":
            if crime_type.police_uk is None:
                return frame
            return frame[frame["category"].isin(crime_type.police_uk)]
        if crime_type.met is None:
            return frame
        if not len(frame):
            return frame
        # Test each distinct (major, minor) once, then select rows by the pair.
        pairs = pd.MultiIndex.from_arrays([frame["major"].to_numpy(dtype=object),
                                           frame["minor"].to_numpy(dtype=object)])
        keep = [p for p in pairs.unique() if crime_type.matches_met(*p)]
        return frame[pairs.isin(keep)]

    def answers(self, crime_type):
        """True when this source can count the crime type at all."""
        return crime_type.counts_points() if self.source.kind == "points" else crime_type.counts_met()

    def months_covered(self, codes, months):
        """Months in which at least :data:`MET_MATCH_MIN` of ``codes`` have data (all, for one code)."""
        codes = set(codes)
        if not codes:
            return []
        need = 1.0 if len(codes) == 1 else MET_MATCH_MIN
        out = []
        for month in months:
            have = sum(1 for code in codes if (code, month) in self.covered)
            if have / len(codes) >= need:
                out.append(month)
        return out


# Met table months kept in memory, as categorical frames (about 1 MB for a
# month of the ward table): a summary, a map and a page of the same data
# version then read each month from the store once.
_MONTHS_CACHED = 96
_MONTHS = OrderedDict()
_TABLE_COLUMNS = ["code", "borough_code", "major", "minor", "month", "n"]


# A Met table month is read packed: one row per month whose text columns are
# joined by the database (SQLite's group_concat, PostgreSQL's string_agg) and split by Python, instead of a
# Python tuple per row; the ward table holds about 12,000 rows a month, and
# the first summary of a data version reads 24 of them. The separator is the
# ASCII unit separator, which no code or crime type text holds (a month with
# one that does, or with a NULL, is read row by row instead).
_SEP = "\x1f"
_PACKED = ("code", "borough_code", "major", "minor")


def _packed_months(store, table_level, months):
    """Months of a Met table read packed, as categorical frames; months it cannot read so are left out.

    Returns
    -------
    dict
        Month to a frame of :data:`_TABLE_COLUMNS`, equal to the row-by-row
        read of :func:`_met_table`; months with no rows are not included.
    """
    if not months:
        return {}
    texts = [store.group_concat_sql(f"COALESCE({c}, '')", ord(_SEP)) for c in _PACKED]
    sql = ("SELECT month, COUNT(*), COUNT(code), COUNT(major), COUNT(minor), " + ", ".join(texts)
           + f", {store.group_concat_sql('CAST(n AS TEXT)', ord(','))} FROM area_counts "
           f"WHERE level = ? AND month IN ({','.join('?' * len(months))}) GROUP BY month")
    out = {}
    for month, count, *rest in store.query(sql, [table_level, *months]):
        non_null, packed, numbers = rest[:3], rest[3:7], rest[7]
        if min(non_null) < count:
            continue  # a NULL text: the row-by-row read keeps its exact value
        columns = {c: text.split(_SEP) for c, text in zip(_PACKED, packed)}
        if any(len(values) != count for values in columns.values()):
            continue  # a separator inside a text
        # Text as str, then categories: the dtypes of the row-by-row read, so months of both reads combine.
        frame = pd.DataFrame({c: pd.Series(values, dtype=object).astype(str).astype("category")
                              for c, values in columns.items()})
        frame["month"] = pd.Series([month] * count, dtype=object).astype(str).astype("category")
        frame["n"] = np.array(numbers.split(","), dtype=np.int64)
        out[month] = frame[_TABLE_COLUMNS]
    return out


def _met_table(store, table_level, months):
    """Rows of a Met table for some months (columns :data:`_TABLE_COLUMNS`, text as categoricals)."""
    version = str(store.data_version())
    base = (getattr(store, "path", id(store)), version, table_level)
    found = {}
    with _LOCK:
        for month in months:
            if base + (month,) in _MONTHS:
                _MONTHS.move_to_end(base + (month,))
                found[month] = _MONTHS[base + (month,)]
    missing = [m for m in months if m not in found]
    if missing:
        found.update(_packed_months(store, table_level, missing))
        rest = [m for m in missing if m not in found]
    if missing and rest:
        fresh = store.area_counts(table_level, months=rest)
        fresh = fresh.assign(borough_code=fresh["borough_code"].fillna(""))[_TABLE_COLUMNS]
        parts = dict(tuple(fresh.groupby("month", sort=False)))
        for month in rest:
            frame = parts.get(month, fresh.iloc[:0]).reset_index(drop=True)
            for column in ("code", "borough_code", "major", "minor", "month"):
                # As str first, so an empty month's categories have the same dtype as the others.
                frame[column] = frame[column].astype(str).astype("category")
            frame["n"] = frame["n"].astype("int64")  # an empty read has no dtype to infer
            found[month] = frame
    if missing:
        with _LOCK:
            for month in missing:
                _MONTHS[base + (month,)] = found[month]
            while len(_MONTHS) > _MONTHS_CACHED:
                _MONTHS.popitem(last=False)
    frames = [found[month] for month in months]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="int64") if c == "n" else pd.Series([], dtype=object).astype(str)
                             .astype("category") for c in _TABLE_COLUMNS})
    out = {}
    for column in _TABLE_COLUMNS:
        if column == "n":
            out[column] = np.concatenate([f[column].to_numpy() for f in frames])
        else:
            out[column] = union_categoricals([f[column].array for f in frames], ignore_order=True)
    return pd.DataFrame(out)


def read_counts(store, layer, areas, source, months, cat=None):
    """Read one source's crimes for a layer's areas and a set of months.

    Parameters
    ----------
    store : crimemap.store.Store
    layer : dict
        From ``store.layer``.
    areas : pandas.DataFrame
        The layer's areas (``code``, ``force``).
    source : Source
    months : list of str
    cat : Catalog, optional
        For the areas each Met file listed (see :meth:`Catalog.areas_listed`).

    Returns
    -------
    Counts
    """
    months = sorted(set(months))
    if source.kind == "points":
        raw = store.point_counts(layer["id"], months=months) if months else \
            pd.DataFrame(columns=["code", "month", "category", "n"])
        force_of = areas.set_index("code")["force"]
        raw = raw[raw["code"].isin(force_of.index)]
        # A force has data for a month when any of its areas holds a crime then
        # (police.uk publishes one file per force and month); its other areas
        # then really have zero.
        seen = raw[["code", "month"]].drop_duplicates()
        force_months = set(zip(seen["code"].map(force_of), seen["month"]))
        covered = {(code, month) for code, force in zip(areas["code"], areas["force"]) for month in months
                   if (force, month) in force_months}
        return Counts(source, raw.reset_index(drop=True), covered,
                      pd.DataFrame(columns=["month", "major", "minor", "n"]))
    raw = _met_table(store, source.table_level, months)
    key = raw[source.key]
    inside = (key.isin(set(areas["code"])) & (key != "")).to_numpy()
    rows = raw[inside].assign(code=key[inside])[["code", "month", "major", "minor", "n"]]
    if source.key != "code":
        rows = rows.groupby(["code", "month", "major", "minor"], as_index=False, observed=True)["n"].sum()
    unallocated = raw[~inside][["month", "major", "minor", "n"]].reset_index(drop=True)
    pairs = rows[["code", "month"]].drop_duplicates()
    covered = set(zip(pairs["code"], pairs["month"]))
    if source.key == "code" and cat is not None:
        # An area the file lists but with no row in a month had no crime that month.
        codes = set(areas["code"])
        for month in months:
            covered |= {(code, month) for code in cat.areas_listed(source.id, month) & codes}
    return Counts(source, rows.reset_index(drop=True), covered, unallocated)


def choose(store, layer, areas, crime_type, months, cat=None, judge=None, cache=None):
    """Pick the source of each force's areas for a crime type and period.

    Parameters
    ----------
    store, layer, areas
        As for :func:`read_counts`.
    crime_type : crimemap.crimetypes.CrimeType
    months : list of str
        The months to read.
    cat : Catalog, optional
    judge : list of str, optional
        The months whose coverage decides (default ``months``): a summary reads
        several periods but picks its source by the one it reports on.
    cache : dict, optional
        Reads to reuse across calls with the same layer and months.

    Returns
    -------
    dict
        Force (``metropolitan``, ``city-of-london``) to a :class:`Counts`, or
        None when nothing loaded can answer for that force.
    """
    cat = cat or catalog(store)
    judge = sorted(set(months if judge is None else judge))
    read = {} if cache is None else cache

    def counts_of(source):
        key = (source, layer["id"], tuple(sorted(set(months))))
        if key not in read:
            read[key] = read_counts(store, layer, areas, source, months, cat)
        return read[key]

    def options(force):
        if force == MET and crime_type.counts_met():
            yield from candidates(cat, layer["level"])
        if crime_type.counts_points() and cat.point_months():
            yield POINT_SOURCE

    chosen = {}
    for force in sorted(set(areas["force"])):
        codes = areas.loc[areas["force"] == force, "code"]
        best, best_n = None, 0
        for source in options(force):
            option = counts_of(source)
            n = len(option.months_covered(codes, judge))
            if n and n == len(judge):
                best = option
                break
            if n > best_n:
                best, best_n = option, n
        chosen[force] = best
    return chosen
