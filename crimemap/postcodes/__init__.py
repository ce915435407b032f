"""The postcode lookup: normalise, refresh atomically, look up, resolve to areas.

Pure core, no Flask. The web layer calls :func:`get_lookup` once per request
(it is cached per process) and :func:`resolve` with what the user typed.
See docs/postcodes.md for the decisions behind it.
"""

from crimemap.postcodes.build import RefreshBusy, RefreshError, refresh, rollback, versions
from crimemap.postcodes.lookup import PostcodeLookup, clear_cache, get_lookup
from crimemap.postcodes.normalise import is_valid, normalise, normalise_outcode
from crimemap.postcodes.resolve import resolve, to_postcodes_io
from crimemap.postcodes.sources import SourceError
from crimemap.postcodes.status import status

__all__ = ["normalise", "normalise_outcode", "is_valid", "get_lookup", "resolve", "to_postcodes_io",
           "PostcodeLookup", "refresh", "rollback", "versions", "status", "clear_cache", "RefreshError",
           "RefreshBusy", "SourceError"]
