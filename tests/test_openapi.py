"""The OpenAPI document: valid OpenAPI 3, every API route documented, every documented path a route."""

import json
import re

import pytest
from openapi_spec_validator import validate

from tests.conftest import REPO

FRAGMENTS = REPO / "crimemap" / "schemas" / "openapi"
DOCUMENTED_PREFIXES = ("/api", "/postcodes.io")


@pytest.fixture
def app(instance):
    from crimemap.web import create_app

    return create_app({"INSTANCE": str(instance), "TESTING": True, "POLICEUK_RATE_LIMIT": ""})


def _routes(app):
    """{(openapi path, method)} of the app's API rules."""
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(DOCUMENTED_PREFIXES):
            continue
        path = re.sub(r"<(?:[\w]+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
        found |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def _documented(spec):
    return {(path, m) for path, item in spec["paths"].items() for m in item if m in ("get", "post", "put", "delete")}


def test_every_fragment_has_the_agreed_shape():
    names = sorted(p.name for p in FRAGMENTS.glob("*.json"))
    assert {"v1.json", "postcodes.json", "policeuk.json", "postcodes_io.json"} <= set(names)
    for path in FRAGMENTS.glob("*.json"):
        fragment = json.loads(path.read_text(encoding="utf-8"))
        assert set(fragment) <= {"paths", "components"}, path.name
        assert set(fragment.get("components", {})) <= {"schemas"}, path.name


def test_the_document_is_valid_openapi_3(app):
    spec = app.test_client().get("/api/openapi.json").get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")


def test_every_api_route_is_documented_and_every_documented_path_exists(app):
    spec = app.test_client().get("/api/openapi.json").get_json()
    routes, documented = _routes(app), _documented(spec)
    assert routes, "no API routes registered"
    assert sorted(routes - documented) == [], "routes missing from crimemap/schemas/openapi/*.json"
    assert sorted(documented - routes) == [], "documented paths that are no route"


def test_path_parameters_match_the_template(app):
    spec = app.test_client().get("/api/openapi.json").get_json()
    for path, item in spec["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in item.get("parameters", []) + operation.get("parameters", [])
                        if p["in"] == "path"}
            assert declared == names, (path, method)


def test_the_docs_page_lists_every_path(app):
    spec = app.test_client().get("/api/openapi.json").get_json()
    page = app.test_client().get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for path in spec["paths"]:
        assert f"> {path}</h3>" in html, path
    assert "<script" not in html.split("<main", 1)[1]  # readable offline, no JavaScript


def test_duplicate_paths_across_fragments_are_refused(tmp_path):
    from crimemap.web.openapi import build_spec

    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps({"paths": {"/api/x": {"get": {"responses": {}}}}}), encoding="utf-8")
    with pytest.raises(ValueError, match="/api/x"):
        build_spec(tmp_path)
