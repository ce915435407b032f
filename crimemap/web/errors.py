"""One renderer for every error: JSON under /api, an HTML page elsewhere.

Unexpected exceptions are logged with their traceback and a request id; the
client gets a generic 500 that leaks nothing but that id. Every response
carries the id in ``X-Request-Id``: the caller's own (a proxy's or load
balancer's) when it sends a sane one, else a new one, so a user's report, the
proxy's log and crimemap's log can be matched.
"""

import logging
import re
import uuid

from flask import g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from crimemap.errors import CrimemapError, StoreError, StoreUnavailable

log = logging.getLogger("crimemap.web")


REQUEST_ID_HEADER = "X-Request-Id"
# What a caller's id may look like: short, and safe to echo and to log.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def request_id():
    """This request's id: the caller's ``X-Request-Id`` when it is sane, else a new one."""
    if "crimemap_request_id" not in g:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.crimemap_request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
    return g.crimemap_request_id


def _wants_json():
    return (request.path.startswith(("/api", "/postcodes.io", "/tiles/"))
            or request.path in ("/oembed", "/healthz", "/readyz"))


#: Seconds a client is asked to wait before retrying when the database cannot be reached.
RETRY_AFTER_S = 5


def _render(status, message, extra=None):
    if _wants_json():
        body = {"status": status, "error": message}
        body.update(extra or {})
        return jsonify(body), status
    _site_context_or_placeholder()
    return render_template("error.html", status=status, message=message), status


def _site_context_or_placeholder(store_down=False):
    """Read the page context now; when the store cannot answer, pages say so without figures.

    The error page's frame (data-as-of line, attribution) and ``X-Data-Version``
    read the store. When that is what failed (a lost database), the page still
    renders and the header says ``unavailable``, without asking the store again.
    """
    from crimemap.web import site_context

    if not store_down:
        try:
            site_context()
            return
        except StoreError:
            pass
    from crimemap.attribution import ATTRIBUTION

    g.crimemap_site = {"data_version": "unavailable", "data_as_of": "unknown (the database cannot be reached)",
                       "demo": False, "attribution": ATTRIBUTION}


def register(app):
    """Attach the error handlers to an app."""

    @app.errorhandler(CrimemapError)
    def _crimemap_error(exc):
        if isinstance(exc, StoreUnavailable):
            # A lost database (docs/security.md): a clear 503 and a hint to retry, no traceback in
            # the log for every request while it is down, just the cause.
            log.warning("the database cannot be reached (%s %s): %s", request.method, request.path,
                        exc.__cause__ or exc)
            _site_context_or_placeholder(store_down=True)
            body, status = _render(exc.status, exc.message, exc.extra)
            return body, status, {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"}
        return _render(exc.status, exc.message, exc.extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc):
        if exc.code == 413:
            limit = app.config["MAX_CONTENT_LENGTH"]
            return _render(413, f"Request body too large: at most {limit:,} bytes (REQUEST_MAX_BYTES)")
        return _render(exc.code, exc.description if exc.code != 404 else "Not found")

    @app.errorhandler(Exception)
    def _unexpected(exc):
        rid = request_id()
        log.exception("unhandled error, request id %s, %s %s", rid, request.method, request.path)
        return _render(500, f"Internal server error (request id {rid})")

    @app.after_request
    def _label(response):
        response.headers[REQUEST_ID_HEADER] = request_id()
        return response
