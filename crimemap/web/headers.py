"""Framing headers: who may show crimemap's pages in a frame (docs/embeds.md).

``/embed/...`` may be framed by the origins of ``EMBED_FRAME_ANCESTORS``
(any, ``*``, by default) through CSP ``frame-ancestors``; every other page may
not be framed at all (``frame-ancestors 'none'``, and ``X-Frame-Options:
DENY`` for browsers that predate CSP), which stops clickjacking of the site.
"""

import re

from flask import request

# A CSP source expression frame-ancestors accepts: *, 'self', a scheme
# ("https:"), or a host with an optional scheme, "*." wildcard and port.
_SOURCE = re.compile(r"^(\*|'self'|[a-z][a-z0-9+.\-]*:|([a-z][a-z0-9+.\-]*://)?(\*\.)?[a-z0-9\-]+(\.[a-z0-9\-]+)*"
                     r"(:(\d{1,5}|\*))?)$", re.IGNORECASE)


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


def is_embed(path):
    """Whether a path is an embed, which other sites may frame."""
    return path == "/embed" or path.startswith("/embed/")


def register(app):
    """Add the framing headers to every response of ``app``."""
    embed_sources = frame_ancestors(app.config["EMBED_FRAME_ANCESTORS"])

    @app.after_request
    def _framing(response):
        if is_embed(request.path):
            policy = f"frame-ancestors {embed_sources}"
        else:
            policy = "frame-ancestors 'none'"
            response.headers["X-Frame-Options"] = "DENY"
        existing = response.headers.get("Content-Security-Policy")
        if not existing:
            response.headers["Content-Security-Policy"] = policy
        elif "frame-ancestors" not in existing:
            response.headers["Content-Security-Policy"] = f"{existing}; {policy}"
        return response
