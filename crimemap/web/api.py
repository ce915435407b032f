"""The JSON API, version 1 (contract: ../shared/API.md)."""

from flask import Blueprint, jsonify

from crimemap.web import get_store

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/status")
def status():
    """What is loaded; the same document as ``crimemap status --json``."""
    return jsonify(get_store().status())
