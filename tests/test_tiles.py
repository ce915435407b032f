"""Vector tiles against the GeoJSON API, on the real 2018 instance (api_2018, read-only).

Tiles are decoded with the ``mapbox-vector-tile`` package and compared with
``/api/v1/choropleth`` for the same query: the same areas, every figure
equal, and geometry where the areas are (decoded tile coordinates taken back
to Web Mercator with pyproj's tile-independent transformation, not the code
under test). Crime points are checked against the raw police.uk API files.
"""

import gzip
import json
import math
from collections import Counter

import mapbox_vector_tile
import pytest
import shapely
from pyproj import Transformer

from crimemap.tiles import EXTENT, tile_bounds
from crimemap.web import create_app

TO_MERCATOR = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
BNG_TO_MERCATOR = Transformer.from_crs("EPSG:27700", "EPSG:3857", always_xy=True)
# The figures a tile carries (API.md's choropleth properties, less level).
FIGURES = ("code", "name", "count", "population", "rate_per_1000", "ratio_to_london", "band", "no_data")
LONDON = (-0.52, 51.28, 0.34, 51.70)  # lon/lat box around Greater London


def osm_tile(lon, lat, z):
    """The slippy-map tile of a point, by the OpenStreetMap wiki's formula."""
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def osm_corner(z, x, y):
    """Longitude/latitude of a tile's north-west corner (OpenStreetMap wiki)."""
    n = 2 ** z
    return x / n * 360.0 - 180.0, math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))


def london_tiles(z):
    x0, y0 = osm_tile(LONDON[0], LONDON[3], z)
    x1, y1 = osm_tile(LONDON[2], LONDON[1], z)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def decode(data):
    # y_coord_down: the raw MVT grid (0 at the top), converted below without the package's own flip.
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True}) if data else {}


def to_mercator(z, x, y, px, py):
    """A tile grid coordinate to Web Mercator metres, from the tile's corners by pyproj."""
    west, north = TO_MERCATOR.transform(*osm_corner(z, x, y))
    east, south = TO_MERCATOR.transform(*osm_corner(z, x + 1, y + 1))
    return west + px / EXTENT * (east - west), north - py / EXTENT * (north - south)


@pytest.fixture(scope="module")
def app(api_2018, tmp_path_factory):
    tiles = tmp_path_factory.mktemp("tiles")
    return create_app({"INSTANCE": str(api_2018.instance), "TESTING": True, "TILES_DIR": str(tiles)})


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def test_tile_bounds_follow_the_slippy_map_grid():
    for z, x, y in [(0, 0, 0), (10, 511, 340), (12, 2046, 1362), (16, 32742, 21793)]:
        west, north = TO_MERCATOR.transform(*osm_corner(z, x, y))
        east, south = TO_MERCATOR.transform(*osm_corner(z, x + 1, y + 1))
        assert tile_bounds(z, x, y) == pytest.approx((west, south, east, north), abs=1e-3)


def _tile_features(client, level, tiles, query=""):
    out = []
    for z, x, y in tiles:
        response = client.get(f"/tiles/{level}/{z}/{x}/{y}.pbf{query}")
        assert response.status_code == 200, response.data
        assert response.mimetype == "application/vnd.mapbox-vector-tile"
        layers = decode(response.data)
        assert set(layers) <= {level}  # no points below the points zoom
        for feature in layers.get(level, {}).get("features", []):
            out.append(((z, x, y), feature))
    return out


def _polygon(feature):
    shape = shapely.geometry.shape(feature["geometry"])
    assert shape.geom_type in ("Polygon", "MultiPolygon")
    return shape


@pytest.mark.parametrize("level,query", [("borough", ""), ("ward", ""), ("ward", "?crime=burglary&from=2018-04&to=2018-05"),
                                         ("lsoa", "")])
def test_low_zoom_tiles_carry_the_choropleth_areas_and_figures(api_2018, client, level, query):
    z = 10
    api = level if level != "lsoa" else None
    features = _tile_features(client, level, london_tiles(z), query)
    by_code = {}
    for address, feature in features:
        by_code.setdefault(feature["properties"]["code"], []).append((address, feature))

    if api:
        sep = "&" if query else "?"
        body = client.get(f"/api/v1/choropleth{query}{sep}level={level}&geometry=none").get_json()
        expected = {f["properties"]["code"]: f["properties"] for f in body["features"]}
    else:
        # No API level for LSOAs: the same figures code path, asked directly.
        from crimemap import figures as fig
        from crimemap.downloads import choropleth_properties

        figures = fig.area_figures(api_2018.store, "lsoa", fig.latest_months(api_2018.store, 12), "all-crime",
                                   with_geometry=False)
        expected = {row["code"]: row for row in choropleth_properties(figures, figures.attrs)}
        areas = api_2018.store.areas(api_2018.store.layer("lsoa")["id"], with_geometry=False)
        assert len(expected) == len(areas) > 4000
    assert set(by_code) == set(expected)
    for code, pieces in by_code.items():
        for _address, feature in pieces:
            props = feature["properties"]
            for name in FIGURES:
                if expected[code][name] is None:
                    assert name not in props, (code, name)
                else:
                    assert props[name] == expected[code][name], (code, name)


@pytest.mark.parametrize("level", ["ward", "lsoa"])
def test_tile_geometry_lies_on_its_area(api_2018, client, level):
    z = 11
    store = api_2018.store
    areas = store.areas(store.layer(level)["id"], with_geometry=True).to_crs("EPSG:3857")  # pyproj, independently
    boxes = dict(zip(areas["code"], areas.geometry.bounds.itertuples(index=False, name=None)))
    slack = 3 * (2 * 20037508.342789244 / 2 ** z) / 256  # three screen pixels at this zoom
    checked = 0
    tiles = london_tiles(z)[::3]  # a spread of tiles is enough; every tile of z10 is read above
    for (tz, tx, ty), feature in _tile_features(client, level, tiles):
        shape = _polygon(feature)
        cx, cy = to_mercator(tz, tx, ty, shape.centroid.x, shape.centroid.y)
        minx, miny, maxx, maxy = boxes[feature["properties"]["code"]]
        assert minx - slack <= cx <= maxx + slack and miny - slack <= cy <= maxy + slack, feature["properties"]
        checked += 1
    assert checked > 50


def test_one_tile_of_wards_matches_the_ward_polygons(api_2018, client):
    # Trafalgar Square's z14 tile: each decoded ward overlaps its own polygon almost entirely.
    z, x, y = 14, *osm_tile(-0.1281, 51.5080, 14)
    store = api_2018.store
    areas = store.areas(store.layer("ward")["id"], with_geometry=True).to_crs("EPSG:3857").set_index("code")
    box = shapely.box(*to_mercator(z, x, y, 0, EXTENT), *to_mercator(z, x, y, EXTENT, 0))
    features = decode(client.get(f"/tiles/ward/{z}/{x}/{y}.pbf").data)["ward"]["features"]
    assert len(features) >= 3
    for feature in features:
        shape = _polygon(feature)
        coords = shapely.transform(shape, lambda c: [to_mercator(z, x, y, px, py) for px, py in c])
        truth = areas.loc[feature["properties"]["code"], "geometry"].intersection(box)
        inside = coords.intersection(box)
        if truth.area < 1:
            continue
        assert inside.symmetric_difference(truth).area / truth.area < 0.05


def _published_counts(files, months, lon0, lat0, lon1, lat1):
    counts = Counter()
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                crime = json.loads(line)
                location = crime.get("location") or {}
                if crime.get("month") not in months or not location.get("longitude"):
                    continue
                lon, lat = float(location["longitude"]), float(location["latitude"])
                if lon0 <= lon <= lon1 and lat0 <= lat <= lat1:
                    counts[(round(lon * 1e6), round(lat * 1e6))] += 1
    return counts


def test_high_zoom_tiles_carry_crimes_per_published_location(api_2018, client):
    z, x, y = 14, *osm_tile(-0.1281, 51.5080, 14)
    assert "points" not in decode(client.get(f"/tiles/ward/13/{x // 2}/{y // 2}.pbf").data)
    layers = decode(client.get(f"/tiles/ward/{z}/{x}/{y}.pbf").data)
    points = [f for f in layers["points"]["features"]
              if 0 <= f["geometry"]["coordinates"][0] < EXTENT and 0 <= f["geometry"]["coordinates"][1] < EXTENT]
    west, north = osm_corner(z, x, y)
    east, south = osm_corner(z, x + 1, y + 1)
    published = _published_counts(api_2018.files, {"2018-03", "2018-04", "2018-05"}, west, south, east, north)
    assert sum(f["properties"]["count"] for f in points) == sum(published.values()) > 100
    to_lonlat = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    unit = (east - west) / EXTENT  # degrees of longitude per tile unit
    for feature in points:
        assert set(feature["properties"]) == {"count"}  # counts only: no crime, street or id detail
        lon, lat = to_lonlat.transform(*to_mercator(z, x, y, *feature["geometry"]["coordinates"]))
        nearby = [n for (plon, plat), n in published.items()
                  if abs(plon / 1e6 - lon) <= unit and abs(plat / 1e6 - lat) <= unit]
        assert feature["properties"]["count"] in nearby or feature["properties"]["count"] == sum(nearby)
