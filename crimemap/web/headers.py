"""Security headers on every response, and the data version each one was built from.

Pages get a strict Content-Security-Policy (docs/security.md): scripts and
stylesheets from this origin only, plus the inline ``<script>`` and ``<style>``
blocks of our own templates, which carry the request's nonce
(``nonce="{{ csp_nonce() }}"``). Text that reaches a page from data is
escaped, and even a ``<script>`` that slipped past escaping would carry no
nonce, so the browser would not run it. ``style`` attributes stay allowed
(``style-src-attr 'unsafe-inline'``): they cannot run script, and the
legend swatches' colours come from the data.

``/embed/...`` may be framed by the origins of ``EMBED_FRAME_ANCESTORS``
(any, ``*``, by default) through CSP ``frame-ancestors``; every other page may
not be framed at all (``frame-ancestors 'none'``, and ``X-Frame-Options:
DENY`` for browsers that predate CSP), which stops clickjacking of the site.

Every response also carries ``X-Content-Type-Options: nosniff``, a
``Referrer-Policy``, ``Strict-Transport-Security`` when the request came over
TLS (directly, or through a trusted proxy, ``PROXY_FIX``), and exactly one
``X-Data-Version``: the version of the data its figures came from. ``/healthz``
(liveness) reads no data and never asks the store, so its header says
``unavailable``; ``/readyz`` names the version its checks read.
"""

import logging
import re
import secrets
from urllib.parse import urlsplit

from flask import g, request

# A CSP source expression frame-ancestors accepts: *, 'self', a scheme
# ("https:"), or a host with an optional scheme, "*." wildcard and port.
_SOURCE = re.compile(r"^(\*|'self'|[a-z][a-z0-9+.\-]*:|([a-z][a-z0-9+.\-]*://)?(\*\.)?[a-z0-9\-]+(\.[a-z0-9\-]+)*"
                     r"(:(\d{1,5}|\*))?)$", re.IGNORECASE)

# Tile servers need a Referer (OpenStreetMap's tile policy requires one), but
# a page URL can hold a resident's postcode: other origins get ours only.
REFERRER_POLICY = "strict-origin-when-cross-origin"

DATA_VERSION_HEADER = "X-Data-Version"

log = logging.getLogger("crimemap.web")


def frame_ancestors(value):
    """The ``frame-ancestors`` sources of a setting (a space-separated string or a list).

    Raises
    ------
    ValueError
        For an empty setting or a source CSP would not accept, naming it.
    """
    sources = value.split() if isinstance(value, str) else [str(v) for v in value]
    if not sources:
        raise ValueError("EMBED_FRAME_ANCESTORS is empty; use 'none' to forbid framing of embeds, or * for any site")
    if sources in (["'none'"], ["none"]):
        return "'none'"
    for source in sources:
        if not _SOURCE.match(source):
            raise ValueError(f"EMBED_FRAME_ANCESTORS: {source!r} is not a CSP source; use *, 'self', a scheme "
                             "such as https: or an origin such as https://news.example.org")
    return " ".join(sources)


def tile_source(tile_url):
    """The CSP source of a Leaflet tile URL template: its origin, or None when it needs none.

    A relative template (tiles served by this site) needs none: ``'self'``
    covers it.

    Raises
    ------
    ValueError
        For a TILE_URL with a scheme other than http or https.
    """
    if not tile_url:
        return None
    parts = urlsplit(tile_url.replace("{s}", "a"))
    if not parts.hostname:
        return None
    if parts.scheme not in ("", "http", "https"):
        raise ValueError(f"TILE_URL {tile_url!r} is not an http(s) URL template such as "
                         "https://tiles.example.org/{z}/{x}/{y}.png")
    host = parts.netloc.rsplit("@", 1)[-1]
    if "{s}" in tile_url and host.startswith("a."):  # Leaflet's subdomains: a.tile..., b.tile...
        host = "*." + host[2:]
    return f"{parts.scheme}://{host}" if parts.scheme else host


def is_embed(path):
    """Whether a path is an embed, which other sites may frame."""
    return path == "/embed" or path.startswith("/embed/")


def csp_nonce():
    """This request's CSP nonce, for ``nonce="..."`` on an inline script or style of a template."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def note_data_version(version):
    """Name the data version a response's figures came from, when it is not the store's current one.

    An embed pinned to an earlier release is drawn from its frozen snapshot, so
    its ``X-Data-Version`` is the pinned version.
    """
    g.crimemap_data_version = str(version)


def page_policy(nonce, tiles=None):
    """The Content-Security-Policy of an HTML page (without ``frame-ancestors``)."""
    images = "'self' data:" + (f" {tiles}" if tiles else "")
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        f"style-src 'self' 'nonce-{nonce}'",
        "style-src-attr 'unsafe-inline'",
        f"img-src {images}",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ])


# Anything that is not a page (JSON, CSV, PNG, ...) may load nothing at all,
# should a browser ever render it.
OTHER_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'"


def api_security_headers(secure, hsts_max_age):
    """The security headers :func:`register`'s hook gives a JSON answer outside ``/embed``, as (name, value) pairs.

    For a WSGI fast path that answers without Flask's hooks
    (:mod:`crimemap.web.postcodes_api`); its tests compare it with the hook's.
    """
    headers = [("X-Frame-Options", "DENY"),
               ("Content-Security-Policy", f"{OTHER_POLICY}; frame-ancestors 'none'"),
               ("X-Content-Type-Options", "nosniff"),
               ("Referrer-Policy", REFERRER_POLICY)]
    if secure and hsts_max_age > 0:
        headers.append(("Strict-Transport-Security", f"max-age={hsts_max_age}"))
    return headers


# What X-Data-Version says when a response was built from no data (``/healthz``) or the store did not answer.
NO_DATA_VERSION = "unavailable"

# Liveness reads nothing from the store, so its header must not either: with the database down, asking the
# store for the version would make /healthz wait DATABASE_TIMEOUT_S. (/readyz names what its checks read.)
_STORELESS_PATHS = ("/healthz",)


def _data_version():
    if "crimemap_data_version" in g:
        return g.crimemap_data_version
    if request.path in _STORELESS_PATHS:
        return NO_DATA_VERSION
    from crimemap.web import site_context

    try:
        return str(site_context()["data_version"])
    except Exception:  # a store that does not answer; /readyz says why, and the response still goes out
        log.exception("X-Data-Version: the store's data version could not be read")
        return NO_DATA_VERSION


def register(app):
    """Add the security headers and ``X-Data-Version`` to every response of ``app``."""
    embed_sources = frame_ancestors(app.config["EMBED_FRAME_ANCESTORS"])
    tiles = tile_source(app.config.get("TILE_URL"))
    hsts_max_age = int(app.config["HSTS_MAX_AGE_S"])
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _security(response):
        headers = response.headers
        if is_embed(request.path):
            ancestors = f"frame-ancestors {embed_sources}"
        else:
            ancestors = "frame-ancestors 'none'"
            headers["X-Frame-Options"] = "DENY"
        if response.mimetype == "text/html":
            policy = page_policy(csp_nonce(), tiles)
        else:
            policy = OTHER_POLICY
        existing = headers.get("Content-Security-Policy")
        if existing and "frame-ancestors" not in existing:
            policy = f"{existing}; {ancestors}"
        elif existing:
            policy = existing
        else:
            policy = f"{policy}; {ancestors}"
        headers["Content-Security-Policy"] = policy
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = REFERRER_POLICY
        if request.is_secure and hsts_max_age > 0:
            headers["Strict-Transport-Security"] = f"max-age={hsts_max_age}"
        headers[DATA_VERSION_HEADER] = _data_version()
        return response
