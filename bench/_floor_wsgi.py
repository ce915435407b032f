"""The floor of bench_postcodes_http: a WSGI app that does nothing, served by the same gunicorn settings.

Every request gets the same 440-byte JSON body (the size of a postcode
answer) with no work behind it, so its latency and CPU per request are what
gunicorn, the sockets and the machine cost on their own. Served as
``python -m gunicorn --pythonpath bench _floor_wsgi:app``.
"""

BODY = b'{"result":' + b'"' + b"x" * 413 + b'"' + b',"status":200}\n'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    """Answer 200 with :data:`BODY`."""
    start_response("200 OK", HEADERS)
    return [BODY]
