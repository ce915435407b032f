"""A server-side cache of computed answers, keyed on the data version (docs/caching.md).

Figures, choropleth GeoJSON, rendered folium maps and area summaries only
change when the data changes, yet a fresh client (no ``If-None-Match``) made
every worker recompute them. :func:`cached_view` wraps a GET view: the first
answer to a request is kept in a :class:`cachelib.FileSystemCache` under
``FIGURE_CACHE_DIR`` (``<INSTANCE>/cache/answers`` by default), shared by every
gunicorn worker and thread, and later requests for the same thing are served
from it. Bodies over :data:`COMPRESS_OVER` bytes are kept zlib-compressed,
so a national layer's answer (a 15 MB GeoJSON of 9,000 wards) fits under
``FIGURE_CACHE_ENTRY_MAX_BYTES``, which bounds the stored (compressed) size.

The key holds everything an answer depends on: the settings fingerprint of
:mod:`crimemap.web.caching` (code version and settings), the store's data
version, the postcode lookup version, the host URL (embeds carry absolute
links), the endpoint, the path and the query arguments, sorted. So an answer
made from old data is never served: after a load the key is new, and the first
request that sees a new version empties the folder of the old one.

Pages carry a per-response CSP nonce on their inline scripts
(:mod:`crimemap.web.headers`): the stored body holds a placeholder in its
place and every response gets its own nonce. The cache is an optimisation
only: any error reading or writing it (unwritable folder, full disk, a
corrupt entry) is logged and the answer is computed as if there were none.
"""

import hashlib
import logging
import os
import zlib
from functools import wraps
from pathlib import Path

from flask import current_app, g, request

log = logging.getLogger("crimemap.web.cache")

_EXT = "crimemap_figure_cache"
PLACEHOLDER = b"\x00crimemap-csp-nonce\x00"
# Headers a view sets that a cached answer must carry again; the rest (CSP,
# ETag, X-Data-Version, CORS) are added per response by after_request hooks.
KEPT_HEADERS = ("Content-Disposition", "Cache-Control", "Location", "Link", "Vary", "Content-Language")
_VERSION_KEY = "crimemap:data-version"
# Bodies over this many bytes are kept zlib-compressed (level 1: a 15 MB national ward GeoJSON packs to a
# few MB in a fraction of a second), and FIGURE_CACHE_ENTRY_MAX_BYTES bounds what is stored, compressed.
COMPRESS_OVER = 65_536
COMPRESS_LEVEL = 1


class _Disabled:
    """What serves when the cache is off or its folder cannot be used: nothing."""

    def get(self, key):
        return None

    def set(self, key, value, timeout=None):
        return False

    def clear(self):
        return True


def _make_cache(config):
    entries = int(config.get("FIGURE_CACHE_MAX_ENTRIES", 0) or 0)
    if entries <= 0:
        return _Disabled(), "off"
    folder = config.get("FIGURE_CACHE_DIR") or str(Path(config["INSTANCE"]) / "cache" / "answers")
    try:
        from cachelib import FileSystemCache

        os.makedirs(folder, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"{folder} is not writable")
        return FileSystemCache(folder, threshold=entries, default_timeout=0), folder
    except Exception as exc:  # an optimisation: never a reason not to serve
        log.warning("answer cache off: %s cannot be used (%s); answers are computed each time", folder, exc)
        return _Disabled(), "off"


def register(app):
    """Set up the answer cache of ``app`` (call once from the app factory)."""
    cache, where = _make_cache(app.config)
    app.extensions[_EXT] = {"cache": cache, "where": where, "seen": None}


def _state():
    return current_app.extensions.get(_EXT)


def _versions():
    from crimemap.web.caching import data_versions

    data, lookup = data_versions()
    return str(data), str(lookup or 0)


def _forget_old(state, data):
    """Empty the cache once when this worker first sees a new data version."""
    if state["seen"] == data:
        return
    cache = state["cache"]
    try:
        stored = cache.get(_VERSION_KEY)
        if stored is not None and stored != data:
            cache.clear()
            log.info("answer cache emptied: data version %s replaces %s", data, stored)
        if stored != data:
            cache.set(_VERSION_KEY, data)
    except Exception:
        log.exception("answer cache: clearing the entries of an old data version failed")
    state["seen"] = data


def request_key(data, lookup, extra=""):
    """The cache key of this request under the given versions (``extra``: what else the answer depends on)."""
    from crimemap.web.caching import _EXT as HTTP_EXT

    args = sorted((k, v) for k in request.args for v in request.args.getlist(k))
    parts = [current_app.extensions.get(HTTP_EXT, ""), data, lookup, request.host_url, request.endpoint or "",
             request.path, repr(args), extra]
    return "answer:" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _entry(response):
    """What is kept of a response, or None when it must not be kept."""
    if response.status_code not in (200, 301, 302) or response.direct_passthrough or response.is_streamed:
        return None
    if "Set-Cookie" in response.headers:
        return None
    body = response.get_data()
    nonce = g.get("csp_nonce")
    if nonce:
        body = body.replace(nonce.encode("ascii"), PLACEHOLDER)
    packed = len(body) > COMPRESS_OVER
    if packed:
        body = zlib.compress(body, COMPRESS_LEVEL)
    if len(body) > int(current_app.config.get("FIGURE_CACHE_ENTRY_MAX_BYTES", 0) or 0):
        return None
    headers = [(k, v) for k, v in response.headers.items() if k in KEPT_HEADERS]
    return {"status": response.status_code, "mimetype": response.mimetype, "content_type": response.content_type,
            "headers": headers, "body": body, "zlib": packed, "data_version": g.get("crimemap_data_version")}


def _response(entry):
    from crimemap.web.headers import csp_nonce, note_data_version

    body = entry["body"]
    if entry.get("zlib"):
        body = zlib.decompress(body)
    if PLACEHOLDER in body:
        body = body.replace(PLACEHOLDER, csp_nonce().encode("ascii"))
    response = current_app.response_class(body, status=entry["status"], content_type=entry["content_type"])
    for name, value in entry["headers"]:
        response.headers[name] = value
    if entry["data_version"] is not None:
        note_data_version(entry["data_version"])
    response.headers["X-Answer-Cache"] = "hit"
    return response


def embed_snapshot_stamp():
    """The size and time of the embed snapshot a request reads (embeds are drawn from files, not the store).

    A snapshot that is rewritten, damaged or removed changes the key, so the
    embed view answers from the file as it is now.
    """
    from crimemap import embeds

    try:
        query = embeds.parse_query(request.args)
        if not query.version:
            query = query.pinned(str(_versions()[0]))
        stat = embeds.snapshot_path(current_app.config["INSTANCE"], query).stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"
    except Exception:  # no snapshot yet, or a query the view will refuse
        return "none"


def cached_view(view=None, *, vary=None):
    """Serve a GET view's answers from the answer cache (docs/caching.md).

    Only GET/HEAD requests are cached, and only 200 and redirect answers;
    errors are computed every time. Any cache failure falls back to the view.
    ``vary``, a callable returning a string, adds what else an answer
    depends on (``@cached_view(vary=embed_snapshot_stamp)``).
    """
    if view is None:
        return lambda func: cached_view(func, vary=vary)

    @wraps(view)
    def wrapper(*args, **kwargs):
        state = _state()
        if state is None or isinstance(state["cache"], _Disabled) or request.method not in ("GET", "HEAD"):
            return view(*args, **kwargs)
        try:
            data, lookup = _versions()
            _forget_old(state, data)
            key = request_key(data, lookup, vary() if vary else "")
            entry = state["cache"].get(key)
        except Exception:
            log.exception("answer cache: lookup failed; computing")
            return view(*args, **kwargs)
        if isinstance(entry, dict) and "body" in entry:
            try:
                return _response(entry)
            except Exception:
                log.exception("answer cache: a stored answer could not be used; computing")
        response = current_app.make_response(view(*args, **kwargs))
        try:
            kept = _entry(response)
            if kept is not None:
                state["cache"].set(key, kept)
        except Exception:
            log.exception("answer cache: storing an answer failed; it is served uncached")
        response.headers["X-Answer-Cache"] = "miss"
        return response

    return wrapper
