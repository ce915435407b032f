"""Typed errors with an HTTP status and a message a person can act on.

The web layer renders every :class:`CrimemapError` with one handler (JSON under
``/api``, HTML elsewhere); the CLI turns them into ``click.ClickException``.
"""


class CrimemapError(Exception):
    """Base class: ``status`` is the HTTP status, ``message`` is shown to users."""

    status = 500

    def __init__(self, message, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra

    def to_dict(self):
        body = {"status": self.status, "error": self.message}
        body.update(self.extra)
        return body


class BadQuery(CrimemapError):
    status = 400


class InvalidPostcode(BadQuery):
    def __init__(self, message="Invalid postcode", **extra):
        super().__init__(message, **extra)


class NotFound(CrimemapError):
    status = 404


class PostcodeNotFound(NotFound):
    def __init__(self, message="Postcode not found", **extra):
        super().__init__(message, **extra)


class UnknownArea(NotFound):
    pass


class BadInput(CrimemapError):
    """A file that cannot be loaded: unknown format, missing column, empty file."""

    status = 422


class StoreError(CrimemapError):
    """The store is unavailable or refused a write; previous data is untouched."""

    status = 503


class StoreUnavailable(StoreError):
    """The database cannot be reached right now; the next request tries again."""

    def __init__(self, message="The crime database is unavailable right now. Please try again in a minute.",
                 **extra):
        super().__init__(message, **extra)
