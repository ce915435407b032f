"""Write the small boundary fixtures in this folder (run from anywhere).

Every geometry here is made up: squares and triangles near Charing Cross,
with invented ward codes (E0599xxxx, which ONS has not issued) except where a
real City of London code is the point of the fixture. Nothing is copied from
../shared/data. GeoJSON files are written as text so that they diff cleanly;
Shapefiles and GeoPackages go through pyogrio.

    python tests/data/boundaries/make_fixtures.py
"""

import json
import warnings
from pathlib import Path

import geopandas
import shapely
from pyogrio import set_gdal_config_options, write_dataframe

HERE = Path(__file__).resolve().parent
# Charing Cross, in British National Grid metres and in WGS84 degrees.
X0, Y0 = 530_000, 180_000
LON0, LAT0 = -0.1276, 51.5072
BNG_CRS = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::27700"}}
# The 2014 London Datastore files carry this Esri-style WKT, which has no EPSG code.
ESRI_BNG_WKT = (
    'PROJCS["British_National_Grid",GEOGCS["GCS_OSGB_1936",DATUM["D_OSGB_1936",'
    'SPHEROID["Airy_1830",6377563.396,299.3249646]],PRIMEM["Greenwich",0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["False_Easting",400000],PARAMETER["False_Northing",-100000],'
    'PARAMETER["Central_Meridian",-2],PARAMETER["Scale_Factor",0.999601272],'
    'PARAMETER["Latitude_Of_Origin",49],UNIT["Meter",1]]'
)


def square(x, y, size=100):
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def polygon(ring):
    return {"type": "Polygon", "coordinates": [ring]}


def feature(properties, geometry):
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def write_geojson(name, features, crs=None):
    collection = {"type": "FeatureCollection"}
    if crs:
        collection["crs"] = crs
    collection["features"] = features
    (HERE / name).write_text(json.dumps(collection, indent=1) + "\n", encoding="utf-8")


def ward2014(code, name, borough_code, borough, x, y):
    properties = {"NAME": name, "GSS_CODE": code, "LB_GSS_CD": borough_code, "BOROUGH": borough}
    return properties, shapely.box(x, y, x + 100, y + 100)


def write_shapefile(name, rows, crs=None, prj_text=None):
    frame = geopandas.GeoDataFrame([r[0] for r in rows], geometry=[r[1] for r in rows], crs=crs)
    path = HERE / name
    with warnings.catch_warnings():
        # Writing without a CRS is the point of the no-.prj fixtures.
        warnings.filterwarnings("ignore", message="'crs' was not provided", category=UserWarning)
        write_dataframe(frame, path)
    if prj_text:
        path.with_suffix(".prj").write_text(prj_text, encoding="ascii")


def main():
    # ONS-style ward layer with a bow-tie (self-intersecting) polygon.
    bowtie = [[X0, Y0], [X0 + 100, Y0 + 100], [X0 + 100, Y0], [X0, Y0 + 100], [X0, Y0]]
    ons = {"LAD22CD": "E09000033", "LAD22NM": "Westminster"}
    write_geojson("bowtie_wards.geojson", [
        feature({"WD22CD": "E05990001", "WD22NM": "Bow Tie", **ons}, polygon(bowtie)),
        feature({"WD22CD": "E05990002", "WD22NM": "Square", **ons}, polygon(square(X0 + 200, Y0))),
    ], crs=BNG_CRS)

    # London Datastore 2018 layout in longitude/latitude (RFC 7946: no crs member).
    d = 0.001
    lonlat_square = [[LON0, LAT0], [LON0 + d, LAT0], [LON0 + d, LAT0 + d], [LON0, LAT0 + d], [LON0, LAT0]]
    city = [[p[0] + 0.03, p[1] + 0.006] for p in lonlat_square]
    write_geojson("wgs84_wards_2018.geojson", [
        feature({"NAME": "Lon Lat Ward", "GSS_CODE": "E05990011", "DISTRICT": "City of Westminster",
                 "LAGSSCODE": "E09000033", "HECTARES": 0.0, "NONLD_AREA": 0.0}, polygon(lonlat_square)),
        feature({"NAME": "Castle Baynard", "GSS_CODE": "E05009297",
                 "DISTRICT": "City and County of the City of London",
                 "LAGSSCODE": "E09000001", "HECTARES": 0.0, "NONLD_AREA": 0.0}, polygon(city)),
    ])

    # A repeated code (two touching squares) and a feature with no geometry.
    props = {"code": "E05990021", "name": "Split Ward", "borough_code": "E09000033", "borough_name": "Westminster"}
    write_geojson("duplicate_and_empty.geojson", [
        feature(props, polygon(square(X0, Y0))),
        feature(props, polygon(square(X0 + 100, Y0))),
        feature({**props, "code": "E05990022", "name": "Whole Ward"}, polygon(square(X0, Y0 + 100))),
        feature({**props, "code": "E05990023", "name": "No Geometry"}, None),
    ], crs=BNG_CRS)

    write_geojson("points.geojson", [
        feature({"code": "E05990031", "name": "A Point"}, {"type": "Point", "coordinates": [X0, Y0]}),
    ], crs=BNG_CRS)
    write_geojson("empty.geojson", [], crs=BNG_CRS)
    write_geojson("missing_columns.geojson", [
        feature({"ward": "E05990041", "label": "Unnamed Columns"}, polygon(square(X0, Y0))),
    ], crs=BNG_CRS)

    # ONS ward layer with lower-case column names and no borough columns; one City ward.
    write_geojson("ons_lowercase_no_lad.geojson", [
        feature({"wd23cd": "E05990051", "wd23nm": "Lower Case"}, polygon(square(X0, Y0))),
        feature({"wd23cd": "E05009288", "wd23nm": "Aldersgate"}, polygon(square(X0 + 2000, Y0 + 1500))),
    ], crs=BNG_CRS)

    # police.uk-style neighbourhoods: id and name only.
    write_geojson("snt_police_uk.geojson", [
        feature({"id": "E05990061N", "name": "Neighbourhood One"}, polygon(square(X0, Y0))),
        feature({"id": "E05990062N", "name": "Neighbourhood Two"}, polygon(square(X0 + 100, Y0))),
    ], crs=BNG_CRS)

    # One ward where London ends and one in Manchester (BNG 384000, 398000).
    write_geojson("outside_london.geojson", [
        feature({"code": "E05990071", "name": "Inside"}, polygon(square(X0, Y0))),
        feature({"code": "E05990072", "name": "Manchester"}, polygon(square(384_000, 398_000))),
    ], crs=BNG_CRS)

    # Shapefiles in the 2014 London Datastore layout: without a .prj, and with
    # an Esri .prj that has no EPSG code.
    rows = [ward2014("E05990081", "No Prj Ward", "E09000033", "Westminster", X0, Y0),
            ward2014("E09000001", "City of London", "E09000001", "City of London", X0 + 2000, Y0 + 1500)]
    write_shapefile("no_crs_bng.shp", rows)
    write_shapefile("esri_prj_bng.shp", rows, prj_text=ESRI_BNG_WKT)
    write_shapefile("no_crs_lonlat.shp", [(rows[0][0], shapely.box(LON0, LAT0, LON0 + d, LAT0 + d))])
    write_shapefile("no_crs_elsewhere.shp", [(rows[0][0], shapely.box(10, 10, 20, 20))])

    # GeoPackages: one polygon layer beside a point layer; two polygon layers.
    # A fixed timestamp keeps regenerated files byte-identical.
    set_gdal_config_options({"OGR_CURRENT_DATE": "2025-01-01T00:00:00.000Z"})
    gpkg = HERE / "layers.gpkg"
    gpkg.unlink(missing_ok=True)
    ward_frame = geopandas.GeoDataFrame(
        {"WD22CD": ["E05990091"], "WD22NM": ["Layered Ward"], "LAD22CD": ["E09000033"], "LAD22NM": ["Westminster"]},
        geometry=[shapely.box(X0, Y0, X0 + 100, Y0 + 100)], crs="EPSG:27700")
    # No spatial index: it would triple the size of a one-feature file.
    small = {"layer_options": {"SPATIAL_INDEX": "NO"}}
    write_dataframe(ward_frame, gpkg, layer="wards", **small)
    points = geopandas.GeoDataFrame({"WD22CD": ["E05990091"]}, geometry=[shapely.Point(X0 + 50, Y0 + 50)],
                                    crs="EPSG:27700")
    write_dataframe(points, gpkg, layer="centroids", **small)
    two = HERE / "two_polygon_layers.gpkg"
    two.unlink(missing_ok=True)
    write_dataframe(ward_frame, two, layer="wards", **small)
    snt = ward_frame.rename(columns={"WD22CD": "SNT_CODE", "WD22NM": "SNT_NAME"})
    write_dataframe(snt, two, layer="snt", **small)


if __name__ == "__main__":
    main()
