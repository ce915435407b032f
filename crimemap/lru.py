"""Least-recently-used caches kept in an :class:`collections.OrderedDict` under a lock.

The per-process caches of :mod:`crimemap.figures.layer_cache` and
:mod:`crimemap.tiles.build` share these two steps; each module keeps its own
dicts, lock and limits. A pure core module.
"""


def recall(cache, key, lock):
    """The value under ``key`` (None when absent), marked as the most recently used."""
    with lock:
        found = cache.get(key)
        if found is not None:
            cache.move_to_end(key)
        return found


def remember(cache, limit, key, value, lock):
    """Keep ``value`` under ``key`` as the most recently used, dropping the oldest past ``limit``; return it."""
    with lock:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > limit:
            cache.popitem(last=False)
    return value
