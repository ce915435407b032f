"""Web Mercator tile arithmetic and the checks on a tile address.

Tiles follow the XYZ scheme every slippy map uses (Leaflet, OpenStreetMap):
at zoom ``z`` the square Web Mercator world (EPSG:3857, ``±ORIGIN`` metres)
is cut into ``2**z`` by ``2**z`` tiles, ``x`` counted from the west and ``y``
from the north. Longitude/latitude go to EPSG:3857 by the spherical Mercator
formulas, which are that CRS's definition (no datum shift): the datum step,
British National Grid to WGS84, is made once in :mod:`crimemap.crs`.
"""

import math
import re

import numpy as np

from crimemap.errors import BadQuery, NotFound

ORIGIN = 20037508.342789244  # half the Web Mercator world, metres (pi * 6378137)
EXTENT = 4096  # tile coordinates per side, the MVT default
MAX_LAT = 85.0511287798066  # where Web Mercator's square world ends
_INT = re.compile(r"[0-9]{1,10}")


def lonlat_to_mercator(lon, lat):
    """Longitude/latitude (degrees) to Web Mercator metres (EPSG:3857).

    Parameters
    ----------
    lon, lat : float or array-like

    Returns
    -------
    tuple of numpy.ndarray
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.clip(np.asarray(lat, dtype=float), -MAX_LAT, MAX_LAT)
    x = np.radians(lon) * 6378137.0
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * 6378137.0
    return x, y


def tile_size_m(z):
    """The side of a tile at zoom ``z``, in Web Mercator metres."""
    return 2 * ORIGIN / (1 << z)


def tile_bounds(z, x, y):
    """``(minx, miny, maxx, maxy)`` of tile z/x/y in Web Mercator metres."""
    size = tile_size_m(z)
    minx = -ORIGIN + x * size
    maxy = ORIGIN - y * size
    return (minx, maxy - size, minx + size, maxy)


def tiles_covering(bounds, z):
    """Every tile of zoom ``z`` that touches ``bounds`` (Web Mercator metres).

    Returns
    -------
    list of (int, int, int)
        ``(z, x, y)``, west to east, then north to south.
    """
    minx, miny, maxx, maxy = bounds
    size = tile_size_m(z)
    last = (1 << z) - 1
    x0 = max(0, min(last, int(math.floor((minx + ORIGIN) / size))))
    x1 = max(0, min(last, int(math.floor((maxx + ORIGIN) / size))))
    y0 = max(0, min(last, int(math.floor((ORIGIN - maxy) / size))))
    y1 = max(0, min(last, int(math.floor((ORIGIN - miny) / size))))
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def _integer(name, text):
    if not isinstance(text, str) or not _INT.fullmatch(text):
        raise BadQuery(f"tile {name} must be a whole number of at most 10 digits, not {text!r}")
    return int(text)


def parse_address(z, x, y, max_zoom):
    """Check a tile address from a URL and return it as integers.

    Parameters
    ----------
    z, x, y : str
        The URL's parts (``y`` without ``.pbf``).
    max_zoom : int
        The deepest zoom served.

    Returns
    -------
    (int, int, int)

    Raises
    ------
    BadQuery
        For a part that is not a whole number (a sign, a dot, a letter).
    NotFound
        For a zoom past ``max_zoom`` or an x/y outside the zoom's grid: no
        such tile exists.
    """
    z, x, y = _integer("z", z), _integer("x", x), _integer("y", y)
    if z > max_zoom:
        raise NotFound(f"no tiles past zoom {max_zoom} (asked for {z})")
    last = (1 << z) - 1
    if x > last or y > last:
        raise NotFound(f"tile {z}/{x}/{y} is outside the grid of zoom {z} (x and y run from 0 to {last})")
    return z, x, y
