"""A per-process cache of a layer's reads and computed figures, keyed on the data version (docs/scale.md).

At national scale (about 9,000 wards) computing a layer's figures takes
seconds: the layer's areas, the whole ``point_counts`` of the period,
choosing a source per force, classifying. Before this cache the area API
did all of it again for each area it was asked about, and the choropleth,
the tiles and the area pages each did it once more. Now one process keeps:

- the areas of a layer (with or without geometry), :data:`AREAS_MAX` of them;
- the reads of :func:`crimemap.figures.sources.choose` (a source's counts for a
  layer and a set of months), :data:`READS_MAX` of them and at most
  :data:`READS_MAX_ROWS` rows in all, and which source each force took for a
  crime type and period;
- whole :func:`crimemap.figures.areas.area_figures` results,
  :data:`FIGURES_MAX` of them.

Every key starts with :func:`version_key`: the store's identity (its path,
and its schema and URL on PostgreSQL) and its ``data_version`` and
``updated_at``, read in the request's snapshot. A load bumps the version, so
an entry made from old data is never used again; entries of other versions
are dropped as soon as a new version is seen (and the oldest when a cache is
full). Callers get copies: a cached frame or :class:`~crimemap.figures.sources.Counts`
is never handed out to be changed. Threads share the caches under one lock;
two threads asking for the same figures at once compute them once (the
second waits for the first).

A pure core module: no Flask.
"""

import copy
import dataclasses
import threading
from collections import OrderedDict

from crimemap import lru

AREAS_MAX = 4
READS_MAX = 4
# Reads are the big entries (a national ward layer's point_counts: about 130,000 rows a month); past this many
# rows in all, the oldest reads are dropped (the newest is always kept).
READS_MAX_ROWS = 4_000_000
CHOICES_MAX = 256
FIGURES_MAX = 8

_LOCK = threading.Lock()
_AREAS = OrderedDict()
_READS = OrderedDict()
_CHOICES = OrderedDict()
_FIGURES = OrderedDict()
_ALL = (_AREAS, _READS, _CHOICES, _FIGURES)
_BUILDING = {}  # figures key -> the lock its builder holds
_STATS = {"hits": 0, "misses": 0}


def version_key(store):
    """What identifies a store's data now: ``(path, schema, url, data_version, updated_at)``."""
    meta = store.meta()
    return (str(getattr(store, "path", id(store))), getattr(store, "schema", None), getattr(store, "url", None),
            str(meta.get("data_version", "0")), meta.get("updated_at"))


def clear():
    """Forget everything (tests and benchmarks)."""
    with _LOCK:
        for cache in _ALL:
            cache.clear()
        _STATS.update(hits=0, misses=0)


def stats():
    """``{"hits", "misses", "figures", "reads", "areas"}`` of the figures cache (tests and benchmarks)."""
    with _LOCK:
        return dict(_STATS, figures=len(_FIGURES), reads=len(_READS), areas=len(_AREAS))


def _recall(cache, key):
    return lru.recall(cache, key, _LOCK)


def _keep(cache, limit, key, value, weigh=None, budget=None):
    """Keep ``value``; drop entries of the same store at another version, then the oldest past ``limit``.

    With ``weigh`` (entry -> a size), also the oldest while the sizes add up to more than ``budget``.
    """
    store_id, version = key[0][:3], key[0][3:]
    with _LOCK:
        for old in [k for k in cache if k[0][:3] == store_id and k[0][3:] != version]:
            del cache[old]
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > limit:
            cache.popitem(last=False)
        while weigh is not None and len(cache) > 1 and sum(weigh(v) for v in cache.values()) > budget:
            cache.popitem(last=False)
    return value


def _rows(counts):
    return 0 if counts is None else len(counts.rows)


def areas(store, layer_id, with_geometry, version=None):
    """``store.areas(layer_id, with_geometry)``, read once per data version (a copy each call)."""
    key = (version or version_key(store), int(layer_id), bool(with_geometry))
    found = _recall(_AREAS, key)
    if found is None:
        found = _keep(_AREAS, AREAS_MAX, key, store.areas(layer_id, with_geometry=with_geometry))
    return found.copy()


def _fresh(counts):
    """A copy of a :class:`Counts` without what a summary sets on it for one area.

    The copy shares the read's rows (never changed in place) and its
    :func:`memo`.
    """
    if counts is None:
        return None
    out = dataclasses.replace(counts, area_rows=None, london_rows=None, london_cov=None, matches=None)
    out._shared_memo = memo(counts)
    return out


def memo(counts):
    """A dict shared by every copy of one read, for what is computed from the read alone (e.g. London's sums)."""
    found = getattr(counts, "_shared_memo", None)
    if found is None:
        found = counts._shared_memo = {}
    return found


class SharedReads(dict):
    """The ``cache`` of :func:`crimemap.figures.sources.choose`, backed by this process's reads.

    One per request: a key read once in the request is the same object for
    the rest of it (a summary relies on that), a key another request read is
    copied in from the process cache, and a new read is kept there too.
    """

    def __init__(self, version):
        super().__init__()
        self.version = version

    def _pull(self, key):
        if dict.__contains__(self, key):
            return True
        found = _recall(_READS, (self.version, key))
        if found is None:
            return False
        dict.__setitem__(self, key, _fresh(found))
        return True

    def __contains__(self, key):
        return self._pull(key)

    def __getitem__(self, key):
        self._pull(key)
        return dict.__getitem__(self, key)

    def __setitem__(self, key, value):
        dict.__setitem__(self, key, value)
        _keep(_READS, READS_MAX, (self.version, key), _fresh(value), weigh=_rows, budget=READS_MAX_ROWS)


def shared_reads(store, version=None):
    """A new :class:`SharedReads` for one request on ``store``."""
    return SharedReads(version or version_key(store))


def choose(store, layer, areas_, crime_type, months, cat=None, judge=None, cache=None):
    """:func:`crimemap.figures.sources.choose`, remembering which source each force took.

    The choice depends only on the data version, the layer, the crime type,
    the months read and the months judged; a remembered choice is answered
    from ``cache`` (a :class:`SharedReads`) without testing coverage again.
    """
    from crimemap.figures.sources import choose as choose_sources

    if not isinstance(cache, SharedReads):
        return choose_sources(store, layer, areas_, crime_type, months, cat, judge=judge, cache=cache)
    read_months = tuple(sorted(set(months)))
    key = (cache.version, int(layer["id"]), crime_type.id, read_months,
           tuple(sorted(set(months if judge is None else judge))))
    taken = _recall(_CHOICES, key)
    if taken is not None and all(k is None or k in cache for k in taken.values()):
        return {force: (None if k is None else cache[k]) for force, k in taken.items()}
    chosen = choose_sources(store, layer, areas_, crime_type, months, cat, judge=judge, cache=cache)
    _keep(_CHOICES, CHOICES_MAX, key, {force: (None if c is None else (c.source, layer["id"], read_months))
                                       for force, c in chosen.items()})
    return chosen


def _copy(frame):
    out = frame.copy()
    out.attrs = copy.deepcopy(frame.attrs)
    return out


def figures(key, compute):
    """The figures under ``key`` (whose first item is a :func:`version_key`), computed by ``compute()`` once.

    ``compute`` returns a frame whose ``attrs["data_version"]`` is the version
    it read; it is kept only when that is the key's version (a load between
    reading the key and computing leaves nothing stale behind). Every caller
    gets its own copy.
    """
    found = _recall(_FIGURES, key)
    if found is None:
        with _LOCK:
            building = _BUILDING.setdefault(key, threading.Lock())
        with building:  # a second thread asking for the same figures waits for the first
            found = _recall(_FIGURES, key)
            if found is None:
                with _LOCK:
                    _STATS["misses"] += 1
                try:
                    found = compute()
                    if str(found.attrs.get("data_version")) == key[0][3]:
                        _keep(_FIGURES, FIGURES_MAX, key, found)
                finally:
                    with _LOCK:
                        _BUILDING.pop(key, None)
                return _copy(found)
    with _LOCK:
        _STATS["hits"] += 1
    return _copy(found)
