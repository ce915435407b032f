"""Serve the app on gunicorn, a production WSGI server.

Workers are processes (each opens the store read-only; SQLite in WAL mode lets
them all read while a loader writes) with a few threads each.
"""

from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):
    def __init__(self, settings, options):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from crimemap.web import create_app

        return create_app(self.settings)


ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(L)s %({x-request-id}o)s'


def access_log(settings):
    """gunicorn's ``accesslog`` from the ``ACCESS_LOG`` setting: None (off), ``"-"`` or a file path."""
    value = str(settings.get("ACCESS_LOG") or "").strip()
    return value or None


def serve(settings, host="127.0.0.1", port=8000, workers=2):
    """Run gunicorn in the foreground until interrupted."""
    options = {
        "bind": f"{host}:{port}",
        "workers": int(workers),
        "threads": int(settings.get("THREADS", 4)),
        "worker_class": "gthread",
        # One line per request costs about a quarter of a postcode lookup's server CPU; production
        # servers usually log requests at the proxy in front. ACCESS_LOG = "-" logs to standard
        # output, a path to that file; empty (the default) logs none (docs/postcodes.md).
        "accesslog": access_log(settings),
        # gunicorn's combined format, then the seconds taken and the X-Request-Id the answer carries (the
        # caller's or a new one, crimemap/web/errors.py): an error page's id finds its line.
        "access_log_format": ACCESS_LOG_FORMAT,
        "timeout": 60,
        "preload_app": False,
        # gunicorn answers a request line over 4,094 bytes itself (414, HTML); let it through to the
        # app, which answers police.uk's 400 JSON above POLICEUK_GET_URL_MAX (docs/policeuk-api.md).
        "limit_request_line": 8190,
        # Idle keep-alive connections stay open 5 s (gunicorn's default is 2 s): a client that pauses
        # a second or two between pages, as people and the load test do, then reuses its connection
        # instead of racing the server closing it (a request lost with no answer).
        "keepalive": 5,
    }
    _Server(settings, options).run()
