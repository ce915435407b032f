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

from crimemap.errors import CrimemapError

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
    return request.path.startswith(("/api", "/postcodes.io", "/tiles/")) or request.path == "/oembed"


def _render(status, message, extra=None):
    if _wants_json():
        body = {"status": status, "error": message}
        body.update(extra or {})
        return jsonify(body), status
    return render_template("error.html", status=status, message=message), status


def register(app):
    """Attach the error handlers to an app."""

    @app.errorhandler(CrimemapError)
    def _crimemap_error(exc):
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
