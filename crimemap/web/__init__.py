"""The web layer: an application factory and one blueprint per audience.

``create_app(config=None)`` layers configuration (defaults, the instance
folder's ``crimemap.cfg``, ``CRIMEMAP_*`` environment variables, then
``config``) and registers the blueprints. No module-level app exists.
"""

from pathlib import Path

from flask import Flask, current_app, g

from crimemap.config import load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = REPO_ROOT / "templates"


def create_app(config=None):
    """Build the crimemap Flask application.

    Parameters
    ----------
    config : dict, optional
        Settings that win over every other layer (tests pass ``INSTANCE`` here).
    """
    settings = load_settings(overrides=config)
    app = Flask("crimemap", template_folder=str(TEMPLATES),
                static_folder=str(Path(__file__).resolve().parent / "static"), static_url_path="/static")
    app.config.update(settings)
    app.config.setdefault("JSON_SORT_KEYS", False)
    # Never the debugger or tracebacks, whatever FLASK_DEBUG says (docs/security.md).
    app.debug = False
    app.config["MAX_CONTENT_LENGTH"] = int(settings["REQUEST_MAX_BYTES"])
    from crimemap.web.postcodes_api import install_fast_path

    install_fast_path(app)  # before ProxyFix, so it sees the scheme and path Flask sees (docs/postcodes.md)
    _trust_proxies(app, int(settings["PROXY_FIX"]))

    from crimemap.store import open_store

    app.extensions["crimemap"] = {"store": open_store(settings, readonly=True)}

    from crimemap.web import api, compat_postcodes_io, embed, errors, headers, pages, postcodes_api
    from crimemap.web import caching, openapi, policeuk_api

    errors.register(app)
    _snapshot_per_request(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(postcodes_api.bp)
    app.register_blueprint(compat_postcodes_io.bp)

    from crimemap.web import stops

    app.register_blueprint(stops.bp)
    app.register_blueprint(embed.bp)
    headers.register(app)
    policeuk_api.init_app(app)
    app.register_blueprint(openapi.bp)

    from crimemap.web import health

    app.register_blueprint(health.bp)
    from crimemap.web import tiles

    app.register_blueprint(tiles.bp)
    caching.register(app)  # after the rate limit: a revalidation counts against it too
    from crimemap.web import figure_cache

    figure_cache.register(app)  # server-side answers per data version (docs/caching.md)

    @app.context_processor
    def _page_context():
        return {"site": site_context()}

    return app


def _trust_proxies(app, count):
    """Believe ``X-Forwarded-For/-Proto/-Host/-Port`` from ``count`` proxies in front (0: none)."""
    if count < 0:
        raise ValueError(f"PROXY_FIX is {count}; expected the number of proxies in front, 0 for none")
    if count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count)


def _snapshot_per_request(app):
    """Read the whole request from one version of the data.

    A reload that lands mid-request cannot mix two versions in one response:
    its figures, its ETag and its ``X-Data-Version`` all come from one read
    transaction.
    """
    import contextlib

    @app.before_request
    def _open_snapshot():
        from flask import request

        if request.blueprint == "health" or request.endpoint == "static":
            # /healthz and static files need no store, and /readyz reports a store that does not
            # answer (a lost database) in its own 503 rather than failing here (docs/security.md).
            return
        stack = contextlib.ExitStack()
        g.crimemap_snapshot = stack
        stack.enter_context(get_store().snapshot())

    @app.teardown_request
    def _close_snapshot(exc):
        stack = g.pop("crimemap_snapshot", None)
        if stack is not None:
            stack.close()


def get_store():
    """The store of the running app."""
    return current_app.extensions["crimemap"]["store"]


def site_context():
    """What every page shows: data version, data-as-of, the demo banner, attribution.

    Read once per request, so one page never mixes two data versions.
    """
    if "crimemap_site" not in g:
        from crimemap.attribution import ATTRIBUTION

        store = get_store()
        meta = store.meta()
        months = [r[0] for r in store.query("SELECT MAX(month) FROM batches") if r[0]]
        g.crimemap_site = {
            "data_version": meta.get("data_version", "0"),
            "data_as_of": months[0] if months else None,
            "demo": meta.get("demo") == "1" or bool(current_app.config.get("DEMO")),
            "attribution": ATTRIBUTION,
        }
    return g.crimemap_site
