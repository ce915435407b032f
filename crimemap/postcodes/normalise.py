"""UK postcode normalisation and the format check.

A resident types a postcode any way they like: lower case, no space, two
spaces, a trailing newline. :func:`normalise` turns every spelling of a
well-formed postcode into the one canonical form, ``"SW1A 1AA"``, and
answers ``None`` for anything that cannot be a UK postcode. It never raises,
whatever it is given, so the web layer can call it on raw query strings.

The format is the one Royal Mail and ONS publish (BS 7666): an outward code
of one or two letters, a digit, and an optional letter or digit, then an
inward code of a digit and two letters. Positional letter rules are applied
only where they have never had exceptions (see docs/postcodes.md): the first
letter is never Q, V or X, the second never I, J or Z, and the two inward
letters never C, I, K, M, O or V. Special postcodes that break the pattern
(``GIR 0AA``, the British Overseas Territories) are listed explicitly.
"""

import re

__all__ = ["normalise", "is_valid", "compact", "normalise_outcode", "normalise_prefix", "key_of", "postcode_of_key",
           "SPECIAL_POSTCODES"]

# The compact form (no space). Outward code: A9, A99, AA9, AA99, A9A, AA9A.
_COMPACT = re.compile(
    r"(?P<out>[A-PR-UWYZ](?:[0-9][0-9A-Z]?|[A-HK-Y][0-9][0-9A-Z]?))"
    r"(?P<in>[0-9][ABD-HJLNP-UW-Z]{2})")
_OUTWARD = re.compile(r"[A-PR-UWYZ](?:[0-9][0-9A-Z]?|[A-HK-Y][0-9][0-9A-Z]?)")

# Postcodes outside the pattern that Royal Mail has issued: Girobank's
# non-geographic postcode and the British Overseas Territories.
SPECIAL_POSTCODES = {
    "GIR0AA": "GIR 0AA",
    "ASCN1ZZ": "ASCN 1ZZ",  # Ascension Island
    "BBND1ZZ": "BBND 1ZZ",  # British Indian Ocean Territory
    "BIQQ1ZZ": "BIQQ 1ZZ",  # British Antarctic Territory
    "FIQQ1ZZ": "FIQQ 1ZZ",  # Falkland Islands
    "PCRN1ZZ": "PCRN 1ZZ",  # Pitcairn Islands
    "SIQQ1ZZ": "SIQQ 1ZZ",  # South Georgia and the South Sandwich Islands
    "STHL1ZZ": "STHL 1ZZ",  # Saint Helena
    "TDCU1ZZ": "TDCU 1ZZ",  # Tristan da Cunha
    "TKCA1ZZ": "TKCA 1ZZ",  # Turks and Caicos Islands
}
_SPECIAL_OUTWARD = {v.split()[0] for v in SPECIAL_POSTCODES.values()}

# Anything longer than this is not a postcode however it is spaced; the cap
# keeps hostile megabyte-long inputs from costing more than a length check.
_MAX_INPUT = 64


def compact(text):
    """Return ``text`` upper-cased with all whitespace removed, or None.

    Parameters
    ----------
    text : object
        Anything; only an ASCII ``str`` of at most 64 characters can give a
        result.

    Returns
    -------
    str or None
    """
    if not isinstance(text, str) or len(text) > _MAX_INPUT:
        return None
    # str.split() with no argument splits on every Unicode whitespace run.
    squeezed = "".join(text.split())
    if not squeezed.isascii():
        # Checked before upper(): "ı".upper() is "I" and "ß".upper() is "SS".
        return None
    return squeezed.upper()


def normalise(text):
    """Return the canonical form of a UK postcode, or None.

    Parameters
    ----------
    text : object
        What the user typed. Case and whitespace do not matter: ``" sw1a  1aa "``,
        ``"sw1a1aa"`` and ``"SW1A 1AA"`` are the same postcode.

    Returns
    -------
    str or None
        ``"SW1A 1AA"`` (outward code, one space, inward code), or None when
        ``text`` cannot be a UK postcode. Never raises.

    Examples
    --------
    >>> normalise(" sw1a  1aa ")
    'SW1A 1AA'
    >>> normalise("gir0aa")
    'GIR 0AA'
    >>> normalise("SW1A 1A") is None
    True
    """
    squeezed = compact(text)
    if squeezed is None:
        return None
    if _COMPACT.fullmatch(squeezed):
        return f"{squeezed[:-3]} {squeezed[-3:]}"
    return SPECIAL_POSTCODES.get(squeezed)


def is_valid(text):
    """Say whether ``text`` is a well-formed UK postcode (in any case or spacing).

    Parameters
    ----------
    text : object

    Returns
    -------
    bool
        True when :func:`normalise` gives a postcode. Whether the postcode
        exists is a question for the lookup, not the format.
    """
    return normalise(text) is not None


def normalise_outcode(text):
    """Return the canonical outward code (``"SW1A"``), or None if ``text`` is not one.

    Parameters
    ----------
    text : object

    Returns
    -------
    str or None
    """
    squeezed = compact(text)
    if squeezed is None:
        return None
    if _OUTWARD.fullmatch(squeezed) or squeezed in _SPECIAL_OUTWARD:
        return squeezed
    return None


def normalise_prefix(text):
    """Return a postcode prefix for autocomplete in compact form, or None.

    Parameters
    ----------
    text : object
        The start of a postcode in any case or spacing (``"sw1a 1"``).

    Returns
    -------
    str or None
        Upper case, no spaces, 1 to 7 letters and digits; None otherwise.
    """
    squeezed = compact(text)
    if not squeezed or len(squeezed) > 7 or not squeezed.isalnum():
        return None
    return squeezed


def key_of(compact_postcode):
    """The integer sort key of a compact postcode (at most 8 ASCII characters).

    The characters are read as a big-endian 64-bit number, right-padded with
    zero bytes, so integer order is the string order of the compact forms
    and a prefix is a contiguous key range.

    Parameters
    ----------
    compact_postcode : str

    Returns
    -------
    int
    """
    return int.from_bytes(compact_postcode.encode("ascii").ljust(8, b"\0"), "big")


def postcode_of_key(key):
    """The canonical postcode of a key made by :func:`key_of`.

    Parameters
    ----------
    key : int

    Returns
    -------
    str
    """
    squeezed = int(key).to_bytes(8, "big").rstrip(b"\0").decode("ascii")
    return f"{squeezed[:-3]} {squeezed[-3:]}"
