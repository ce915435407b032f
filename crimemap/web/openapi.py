"""The OpenAPI 3 document of the APIs, and a readable page of it (docs/openapi.md).

The document is assembled from fragments, one per blueprint, in
``crimemap/schemas/openapi/*.json``; each is ``{"paths": {...},
"components": {"schemas": {...}}}``. A test checks that every ``/api`` route
of the app is documented and that every documented path is a route.

- ``GET /api/openapi.json``: the document.
- ``GET /api/docs``: the same, rendered as a plain HTML page (no JavaScript,
  works offline).
"""

import json
import threading
from pathlib import Path

from flask import Blueprint, jsonify, render_template

from crimemap import __version__

bp = Blueprint("openapi", __name__, url_prefix="/api")

FRAGMENTS = Path(__file__).resolve().parents[1] / "schemas" / "openapi"
METHODS = ("get", "post", "put", "patch", "delete")
_LOCK = threading.Lock()
_SPEC = {}


def build_spec(folder=FRAGMENTS):
    """Merge the fragment files of ``folder`` into one OpenAPI 3 document.

    Raises
    ------
    ValueError
        When two fragments define the same path or the same schema name
        differently (naming both files).
    """
    spec = {
        "openapi": "3.0.3",
        "info": {
            "title": "crimemap API",
            "version": __version__,
            "description": ("London crime by ward, SNT and borough: crimemap's own JSON API (/api/v1), "
                            "the data.police.uk-compatible API (/api) and the postcodes.io-compatible API "
                            "(/postcodes.io). Successful GET answers carry an ETag keyed on the data version "
                            "and Cache-Control; send If-None-Match to get 304 when nothing changed."),
            "license": {"name": "MIT"},
        },
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {"schemas": {}},
    }
    origin = {}
    for path in sorted(Path(folder).glob("*.json")):
        fragment = json.loads(path.read_text(encoding="utf-8"))
        for route, item in fragment.get("paths", {}).items():
            if route in spec["paths"]:
                raise ValueError(f"{path.name}: path {route} is also in {origin[route]}")
            spec["paths"][route] = item
            origin[route] = path.name
        for name, schema in fragment.get("components", {}).get("schemas", {}).items():
            known = spec["components"]["schemas"].get(name)
            if known is not None and known != schema:
                raise ValueError(f"{path.name}: schema {name} differs from the one in {origin['#' + name]}")
            spec["components"]["schemas"][name] = schema
            origin["#" + name] = path.name
    spec["paths"] = dict(sorted(spec["paths"].items()))
    return spec


def spec():
    """The assembled document (built once per process)."""
    with _LOCK:
        if "doc" not in _SPEC:
            _SPEC["doc"] = build_spec()
        return _SPEC["doc"]


def _operations(doc):
    """(path, method, operation) in path order, for the docs page."""
    for route, item in doc["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                operation = dict(item[method])
                operation["parameters"] = shared + operation.get("parameters", [])
                yield route, method.upper(), operation


def _schema_label(schema):
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"array of {_schema_label(schema.get('items', {})) or 'values'}"
    label = schema.get("type", "")
    if "enum" in schema:
        label += " (" + ", ".join(map(str, schema["enum"])) + ")"
    if "pattern" in schema:
        label += f" matching {schema['pattern']}"
    return label


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3 document."""
    return jsonify(spec())


@bp.get("/docs")
def docs():
    """The OpenAPI document as a readable page."""
    doc = spec()
    groups = {}
    for route, method, operation in _operations(doc):
        tag = (operation.get("tags") or ["other"])[0]
        groups.setdefault(tag, []).append((route, method, operation))
    return render_template("api_docs.html", doc=doc, groups=groups, schema_label=_schema_label,
                           schemas=doc["components"]["schemas"])
