"""One renderer for every error: JSON under /api, an HTML page elsewhere.

Unexpected exceptions are logged with their traceback and a request id; the
client gets a generic 500 that leaks nothing.
"""

import logging
import uuid

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from crimemap.errors import CrimemapError

log = logging.getLogger("crimemap.web")


def _wants_json():
    return request.path.startswith("/api") or request.path.startswith("/postcodes.io") or \
        request.path == "/oembed"


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
        return _render(exc.code, exc.description if exc.code != 404 else "Not found")

    @app.errorhandler(Exception)
    def _unexpected(exc):
        request_id = uuid.uuid4().hex[:12]
        log.exception("unhandled error, request id %s, %s %s", request_id, request.method, request.path)
        return _render(500, f"Internal server error (request id {request_id})")
