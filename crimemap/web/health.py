"""Health checks for a load balancer or an orchestrator (docs/security.md, "Health").

``GET /healthz`` is liveness: the process answers HTTP. It needs nothing
from the store, not even for its ``X-Data-Version`` header, which says
``unavailable`` (a missing, broken or unreachable store still gets a prompt
200), so a store problem never gets a healthy worker restarted.

``GET /readyz`` is readiness: the store answers a query and holds what the
site needs to show figures, at least one boundary layer and one month of
crime data. Otherwise it is a 503 whose JSON names the reason, so traffic
goes elsewhere until a load finishes.
"""

import logging
import sqlite3

from flask import Blueprint, jsonify

from crimemap.errors import StoreError
from crimemap.web import get_store
from crimemap.web.headers import NO_DATA_VERSION, note_data_version

bp = Blueprint("health", __name__)
log = logging.getLogger("crimemap.web")


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz():
    """Liveness: 200 whenever the process can answer."""
    return _no_store(jsonify({"status": 200, "alive": True}))


def readiness(store):
    """What the site needs to serve, checked against a store.

    Returns
    -------
    (list of str, dict)
        The reasons it is not ready (empty when ready) and the checks' values.
    """
    checks = {"store": "unreachable", "boundary_layers": 0, "crime_months": 0, "data_version": None}
    try:
        meta = store.meta()
        layers = store.layers()
        months = store.query("SELECT COUNT(DISTINCT month) FROM batches")
    except (StoreError, sqlite3.Error, OSError) as exc:  # StoreError: the PostGIS store's (StoreUnavailable)
        log.error("readiness: the store does not answer: %s: %s", type(exc).__name__, exc)
        return [f"the store does not answer ({type(exc).__name__})"], checks
    checks.update(store="ok", boundary_layers=len(layers), crime_months=int(months[0][0]) if months else 0,
                  data_version=meta.get("data_version"))
    reasons = []
    if not checks["boundary_layers"]:
        reasons.append("no boundary layer loaded")
    if not checks["crime_months"]:
        reasons.append("no crime data loaded")
    return reasons, checks


@bp.get("/readyz")
def readyz():
    """Readiness: 200 when the data is loaded and the store reachable, else 503 with the reason."""
    reasons, checks = readiness(get_store())
    # X-Data-Version: the version the checks read, so the header never asks the store a second time
    # (with the database down that would wait DATABASE_TIMEOUT_S again).
    if checks["store"] != "ok":
        note_data_version(NO_DATA_VERSION)
    elif checks["data_version"] is not None:
        note_data_version(checks["data_version"])
    if reasons:
        body = {"status": 503, "error": "not ready: " + "; ".join(reasons), "ready": False, "checks": checks}
        return _no_store(jsonify(body)), 503
    return _no_store(jsonify({"status": 200, "ready": True, "checks": checks}))
