"""HTTP caching of the APIs: ETag and Cache-Control keyed on the data version.

Every successful GET under ``/api/`` and ``/postcodes.io/`` carries

- ``ETag``: derived from the store's data version, the serving postcode
  lookup version, the code and settings that shape answers, and the request
  URL. A load, a postcode refresh or a new release changes it.
- ``Cache-Control: public, max-age=API_CACHE_MAX_AGE_S``.

A request whose ``If-None-Match`` holds the current ETag is answered 304
before the view runs, so revalidation costs one data-version query, not a
recomputation (docs/openapi.md, "Caching"). Registered once on the app by
:func:`register`; no blueprint repeats it.
"""

import hashlib
import json
import time

from flask import current_app, request

from crimemap import __version__
from crimemap.config import DEFAULTS

CACHED_PREFIXES = ("/api/", "/postcodes.io/")
_EXT = "crimemap_caching"
_LOOKUP_VERSIONS = {}  # instance -> (monotonic time read, serving lookup version)


def _fingerprint(config):
    # Settings change answers (bands, simplification, limits): a restart with
    # other settings must not revalidate answers made with the old ones.
    settings = {key: config.get(key) for key in sorted(DEFAULTS) if key != "INSTANCE"}
    text = json.dumps([__version__, settings], default=str, sort_keys=True)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _cached_request():
    return request.method in ("GET", "HEAD") and request.path.startswith(CACHED_PREFIXES)


def data_versions():
    """``(store data version, postcode lookup version or None)`` of the running app.

    The data version is the one this request reads everywhere (``site_context``, also sent as
    ``X-Data-Version``). The lookup version is read from disk at most once per
    ``POSTCODES_RECHECK_S`` per process, as often as the lookup itself looks for a new version.
    """
    from crimemap.web import site_context

    return site_context()["data_version"], _lookup_version()


def _lookup_version():
    return lookup_version(current_app.config)


def lookup_version(config):
    """The serving postcode lookup version of an app with ``config``, read at most once per ``POSTCODES_RECHECK_S``."""
    from crimemap.postcodes.build import current_version, folder_of

    instance = str(config["INSTANCE"])
    now = time.monotonic()
    checked = _LOOKUP_VERSIONS.get(instance)
    if checked is None or now - checked[0] >= float(config.get("POSTCODES_RECHECK_S", 1.0)):
        checked = _LOOKUP_VERSIONS[instance] = (now, current_version(folder_of(instance)))
    return checked[1]


def current_etag():
    """The ETag (without quotes) an answer to this request carries now."""
    data, lookup = data_versions()
    url = request.full_path if request.query_string else request.path
    return etag_for(current_app, data, lookup, url)


def etag_for(app, data, lookup, url):
    """The ETag (without quotes) of the answer to ``url`` from data version ``data`` and lookup version ``lookup``."""
    key = f"{app.extensions[_EXT]}|{data}|{lookup}|{url}"
    return f"d{data}-p{lookup or 0}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:16]}"


def cache_control_value(config):
    """The ``Cache-Control`` value of API answers: ``public, max-age=API_CACHE_MAX_AGE_S``."""
    return f"public, max-age={int(config['API_CACHE_MAX_AGE_S'])}"


def cache_control(response):
    """Set ``Cache-Control: public, max-age=API_CACHE_MAX_AGE_S`` on ``response``."""
    response.headers["Cache-Control"] = cache_control_value(current_app.config)


def _revalidate():
    if not _cached_request():
        return None
    return not_modified()


def not_modified():
    """A 304 answer when this request's ``If-None-Match`` holds the current ETag, else None."""
    if not request.if_none_match:
        return None
    etag = current_etag()
    if not request.if_none_match.contains_weak(etag):
        return None
    response = current_app.response_class(status=304)
    response.set_etag(etag)
    cache_control(response)
    return response


def _label(response):
    if not _cached_request() or response.status_code != 200 or response.direct_passthrough:
        return response
    response.set_etag(current_etag())
    cache_control(response)
    return response.make_conditional(request)


def register(app):
    """Add ETag, Cache-Control and 304 revalidation to the app's API answers."""
    app.extensions[_EXT] = _fingerprint(app.config)
    app.before_request(_revalidate)
    app.after_request(_label)
