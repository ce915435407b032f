"""Tests for crimemap.io.boundaries: real London files and named edge cases.

Expected values come from SOURCES.md (counts, codes) or are computed here
independently of the reader (raw pyogrio reads, shapely, pyproj directly).
"""

import re

import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Transformer

from crimemap.errors import BadInput
from crimemap.io.boundaries import CITY_OF_LONDON, LEVELS, BoundaryLayer, load_layouts, read_boundaries

COLUMNS = ["code", "name", "borough_code", "borough_name", "force", "geometry"]
WARDS_2014 = "boundaries/London-wards-2014/London_Ward.shp"
WARDS_2018 = "boundaries/London-wards-2018/London_Ward.shp"
APPROX_2022 = "boundaries/london-wards-2022-approx.gpkg"


def check_shape(layer):
    """What every BoundaryLayer promises, whatever the file."""
    assert isinstance(layer, BoundaryLayer)
    gdf = layer.gdf
    assert list(gdf.columns) == COLUMNS
    assert gdf.crs.to_epsg() == 27700
    assert set(gdf.geom_type) <= {"Polygon", "MultiPolygon"}
    assert gdf.is_valid.all()
    assert not gdf.is_empty.any()
    assert gdf["code"].is_unique
    assert set(gdf["force"]) <= {"metropolitan", "city-of-london"}
    city = (gdf["borough_code"] == CITY_OF_LONDON) | (gdf["code"] == CITY_OF_LONDON)
    assert (gdf.loc[city, "force"] == "city-of-london").all()


def raw(path):
    return pyogrio.read_dataframe(path)


# --- real files (../shared/data) -------------------------------------------


@pytest.mark.shared_data
def test_wards_2014_repairs_the_two_self_intersections(need_shared):
    path = need_shared(WARDS_2014)
    source = raw(path)
    invalid = source[~shapely.is_valid(source.geometry.values)]

    layer = read_boundaries(path, "ward")

    check_shape(layer)
    assert (layer.level, layer.vintage, layer.layout) == ("ward", "2014", "london-datastore-ward-2014")
    assert layer.source == str(path)
    assert "British National Grid recognised" in layer.crs_note
    assert len(layer.gdf) == 654
    assert sorted(r["code"] for r in layer.repairs) == sorted(invalid["GSS_CODE"]) == ["E05009392", "E05009400"]
    assert {r["name"] for r in layer.repairs} == {"Colville", "Pembridge"}
    raw_area = dict(zip(invalid["GSS_CODE"], invalid.area))
    for repair in layer.repairs:
        assert repair["problem"].startswith("Self-intersection")
        assert repair["area_before_m2"] == pytest.approx(raw_area[repair["code"]])
        assert repair["area_after_m2"] == pytest.approx(repair["area_before_m2"], rel=1e-9)
    assert layer.warnings == []
    # Same total area as published, so the repair lost nothing elsewhere either.
    assert layer.gdf.area.sum() == pytest.approx(source.area.sum(), rel=1e-9)
    city = layer.gdf[layer.gdf["force"] == "city-of-london"]
    assert len(city) == 25 == (source["LB_GSS_CD"] == CITY_OF_LONDON).sum()
    assert layer.gdf["borough_code"].nunique() == 33


@pytest.mark.shared_data
def test_wards_2018(need_shared):
    path = need_shared(WARDS_2018)
    source = raw(path)

    layer = read_boundaries(path, "ward")

    check_shape(layer)
    assert (layer.vintage, layer.layout) == ("2018", "london-datastore-ward-2018")
    assert layer.crs_note == "EPSG:27700 (from .prj)"
    assert len(layer.gdf) == 657
    assert layer.repairs == [] and layer.warnings == []
    gdf = layer.gdf
    assert (gdf["force"] == "city-of-london").sum() == 25
    # Published as "City and County of the City of London"; normalised for borough_name only.
    published = set(source.loc[source["LAGSSCODE"] == CITY_OF_LONDON, "DISTRICT"])
    assert published == {"City and County of the City of London"}
    assert set(gdf.loc[gdf["borough_code"] == CITY_OF_LONDON, "borough_name"]) == {"City of London"}
    assert gdf.set_index("code").loc["E05009297", "name"] == "Castle Baynard"
    assert gdf.area.sum() == pytest.approx(source.area.sum(), rel=1e-12)


@pytest.mark.shared_data
@pytest.mark.parametrize("folder, count, city_code, city_name", [
    ("London-wards-2014", 630, "E09000001", "City of London"),
    ("London-wards-2018", 633, "E05009297", "Castle Baynard"),
])
def test_city_merged_files_mark_the_city(need_shared, folder, count, city_code, city_name):
    layer = read_boundaries(need_shared(f"boundaries/{folder}/London_Ward_CityMerged.shp"), "ward")

    check_shape(layer)
    assert len(layer.gdf) == count
    city = layer.gdf[layer.gdf["force"] == "city-of-london"]
    assert city[["code", "name", "borough_code", "borough_name"]].values.tolist() == [
        [city_code, city_name, CITY_OF_LONDON, "City of London"]]


@pytest.mark.shared_data
def test_lad22_boroughs(need_shared):
    path = need_shared("boundaries/london-2021-lad22-gen20.shp")
    layer = read_boundaries(path, "borough")

    check_shape(layer)
    assert (layer.level, layer.vintage, layer.layout) == ("borough", "2022", "ons-lad")
    gdf = layer.gdf
    assert len(gdf) == 33
    assert (gdf["borough_code"] == gdf["code"]).all() and (gdf["borough_name"] == gdf["name"]).all()
    assert gdf.loc[gdf["force"] == "city-of-london", "code"].tolist() == [CITY_OF_LONDON]
    assert sorted(gdf["code"]) == sorted(raw(path)["LAD22CD"])


@pytest.mark.shared_data
def test_approximate_2022_wards(need_shared):
    layer = read_boundaries(need_shared(APPROX_2022), "ward")

    check_shape(layer)
    assert (layer.vintage, layer.layout) == ("2022", "wards-2022-approx")
    assert len(layer.gdf) == 704
    assert (layer.gdf["force"] == "city-of-london").sum() == 25
    assert layer.gdf["borough_code"].nunique() == 33
    assert any("approximate" in w for w in layer.warnings)


@pytest.mark.shared_data
def test_web_geojson_is_reprojected_onto_the_geopackage(need_shared):
    gpkg = read_boundaries(need_shared(APPROX_2022), "ward").gdf.set_index("code")
    layer = read_boundaries(need_shared("boundaries/london-wards-2022-approx-web.geojson"), "ward")

    check_shape(layer)
    assert layer.crs_note == "reprojected from EPSG:4326"
    web = layer.gdf.set_index("code")
    assert set(web.index) == set(gpkg.index)
    # SOURCES.md section 7: the simplified web file keeps ward areas within 0.6 %.
    ratio = web.area / gpkg.area.reindex(web.index)
    assert ratio.between(0.99, 1.01).all()


@pytest.mark.shared_data
@pytest.mark.parametrize("name, vintage, count", [
    ("london-2011-lsoa-gen20.shp", "2011", 4835),
    ("london-2021-lsoa-gen20.shp", "2021", 4994),
])
def test_lsoas(need_shared, name, vintage, count):
    path = need_shared(f"boundaries/{name}")
    source = raw(path)
    borough = [c for c in source.columns if re.fullmatch(r"LAD\d\dCD", c)][0]

    layer = read_boundaries(path, "lsoa")

    check_shape(layer)
    assert (layer.level, layer.vintage, layer.layout) == ("lsoa", vintage, "ons-lsoa")
    assert len(layer.gdf) == count
    assert (layer.gdf["force"] == "city-of-london").sum() == (source[borough] == CITY_OF_LONDON).sum() == 6


@pytest.mark.shared_data
@pytest.mark.parametrize("relative, level", [(WARDS_2014, "borough"), (APPROX_2022, "borough"), (WARDS_2018, "lsoa")])
def test_level_that_does_not_fit_the_file(need_shared, relative, level):
    with pytest.raises(BadInput) as info:
        read_boundaries(need_shared(relative), level)
    message = info.value.message
    assert f"no {level} layout fits" in message
    assert "Columns found:" in message and "Layouts tried" in message
    assert "fit level ward" in message


@pytest.mark.shared_data
def test_vintage_overrides_detection(need_shared):
    assert read_boundaries(need_shared(WARDS_2018), "ward", vintage=2019).vintage == "2019"


# --- fixtures (tests/data/boundaries) --------------------------------------


def test_bow_tie_is_repaired_and_reported(fixtures):
    layer = read_boundaries(fixtures / "boundaries/bowtie_wards.geojson", "ward")

    check_shape(layer)
    assert (layer.layout, layer.vintage) == ("ons-ward", "2022")
    assert layer.crs_note == "EPSG:27700 (from GeoJSON crs member)"
    [repair] = layer.repairs
    assert (repair["code"], repair["name"]) == ("E05990001", "Bow Tie")
    assert repair["problem"] == "Self-intersection[530050 180050]"
    # The ring's signed halves cancel; the two triangles are 100 x 50 / 2 m² each.
    assert repair["area_before_m2"] == 0
    assert repair["area_after_m2"] == pytest.approx(5000)
    assert layer.gdf.set_index("code").area["E05990001"] == pytest.approx(5000)


def test_wgs84_file_is_reprojected(fixtures):
    path = fixtures / "boundaries/wgs84_wards_2018.geojson"
    first = raw(path).geometry.iloc[0].exterior.coords[0]
    expected = Transformer.from_crs(4326, 27700, always_xy=True).transform(*first)

    layer = read_boundaries(path, "ward")

    check_shape(layer)
    assert layer.crs_note == "reprojected from EPSG:4326"
    x, y = layer.gdf.geometry.iloc[0].exterior.coords[0]
    assert (x, y) == pytest.approx(expected, abs=1e-6)
    # Charing Cross lies in the OS 1 km square TQ 30 80.
    assert 530_000 <= x < 531_000 and 180_000 <= y < 181_000
    assert layer.gdf["borough_name"].tolist() == ["Westminster", "City of London"]
    assert layer.gdf["name"].tolist() == ["Lon Lat Ward", "Castle Baynard"]
    assert layer.gdf["force"].tolist() == ["metropolitan", "city-of-london"]


def test_other_projected_crs_is_reprojected(fixtures, tmp_path):
    source = raw(fixtures / "boundaries/bowtie_wards.geojson").iloc[1:]
    path = tmp_path / "mercator.gpkg"
    pyogrio.write_dataframe(source.to_crs(3857), path)

    layer = read_boundaries(path, "ward")

    assert layer.crs_note == "reprojected from EPSG:3857"
    assert layer.gdf.area.iloc[0] == pytest.approx(100 * 100, rel=1e-6)


def test_esri_prj_without_epsg_is_recognised(fixtures):
    layer = read_boundaries(fixtures / "boundaries/esri_prj_bng.shp", "ward")

    check_shape(layer)
    assert layer.crs_note == "British National Grid recognised from a .prj without an EPSG code"
    assert layer.gdf.total_bounds.tolist() == [530_000, 180_000, 532_100, 181_600]


def test_no_crs_with_grid_coordinates(fixtures):
    layer = read_boundaries(fixtures / "boundaries/no_crs_bng.shp", "ward")

    check_shape(layer)
    assert "no CRS" in layer.crs_note and "assumed EPSG:27700" in layer.crs_note
    assert layer.gdf.total_bounds.tolist() == [530_000, 180_000, 532_100, 181_600]
    # The City's own code in a merged-City file.
    assert layer.gdf.set_index("code").loc[CITY_OF_LONDON, "force"] == "city-of-london"


def test_no_crs_with_lonlat_coordinates(fixtures):
    layer = read_boundaries(fixtures / "boundaries/no_crs_lonlat.shp", "ward")

    check_shape(layer)
    assert "assumed EPSG:4326" in layer.crs_note
    minx, miny, maxx, maxy = layer.gdf.total_bounds
    assert 530_000 <= minx < maxx < 531_000 and 180_000 <= miny < maxy < 181_000


def test_geojson_with_grid_coordinates_but_no_crs_member(tmp_path):
    path = tmp_path / "grid.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", '
                    '"properties": {"code": "E05990101", "name": "Grid"}, "geometry": {"type": "Polygon", '
                    '"coordinates": [[[530000, 180000], [530100, 180000], [530100, 180100], [530000, 180000]]]}}]}')

    layer = read_boundaries(path, "ward", vintage="2022")

    assert "assumed EPSG:27700" in layer.crs_note
    assert layer.gdf.area.iloc[0] == pytest.approx(5000)


def test_duplicate_code_is_dissolved_and_empty_geometry_dropped(fixtures):
    layer = read_boundaries(fixtures / "boundaries/duplicate_and_empty.geojson", "ward", vintage="2020")

    check_shape(layer)
    gdf = layer.gdf.set_index("code")
    assert list(gdf.index) == ["E05990021", "E05990022"]
    assert gdf.area["E05990021"] == pytest.approx(2 * 100 * 100)
    assert gdf.loc["E05990021", "name"] == "Split Ward"
    assert any("duplicate" in w and "E05990021" in w for w in layer.warnings)
    assert any("empty geometry" in w and "E05990023" in w for w in layer.warnings)


def test_generic_layout_needs_a_vintage(fixtures):
    with pytest.raises(BadInput, match="pass vintage="):
        read_boundaries(fixtures / "boundaries/duplicate_and_empty.geojson", "ward")


def test_ons_columns_are_case_insensitive_and_city_wards_known_by_code(fixtures):
    layer = read_boundaries(fixtures / "boundaries/ons_lowercase_no_lad.geojson", "ward")

    check_shape(layer)
    assert (layer.layout, layer.vintage) == ("ons-ward", "2023")
    assert layer.gdf["borough_code"].isna().all()
    assert layer.gdf["force"].tolist() == ["metropolitan", "city-of-london"]


def test_police_uk_neighbourhoods_as_snt(fixtures):
    path = fixtures / "boundaries/snt_police_uk.geojson"
    with pytest.raises(BadInput, match="vintage"):
        read_boundaries(path, "snt")

    layer = read_boundaries(path, "snt", vintage="2019")

    check_shape(layer)
    assert (layer.level, layer.layout, layer.vintage) == ("snt", "police-uk-neighbourhoods", "2019")
    assert layer.gdf["code"].tolist() == ["E05990061N", "E05990062N"]


def test_geopackage_picks_the_polygon_layer(fixtures):
    layer = read_boundaries(fixtures / "boundaries/layers.gpkg", "ward")

    check_shape(layer)
    assert layer.crs_note == "EPSG:27700 (from GeoPackage CRS)"
    assert layer.gdf["code"].tolist() == ["E05990091"]


def test_geopackage_with_two_polygon_layers_needs_layer(fixtures):
    path = fixtures / "boundaries/two_polygon_layers.gpkg"
    with pytest.raises(BadInput, match="several polygon layers") as info:
        read_boundaries(path, "snt", vintage="2022")
    assert "wards" in info.value.message and "snt" in info.value.message

    layer = read_boundaries(path, "snt", vintage="2022", layer="snt")
    assert layer.layout == "snt-columns"


def test_feature_outside_london_is_a_warning(fixtures):
    layer = read_boundaries(fixtures / "boundaries/outside_london.geojson", "ward", vintage="2022")

    assert len(layer.gdf) == 2
    [warning] = layer.warnings
    assert "outside London" in warning and "E05990072" in warning and "E05990071" not in warning


@pytest.mark.parametrize("name, kwargs, message", [
    ("missing_columns.geojson", {}, "Columns found: ward, label"),
    ("empty.geojson", {}, "contains no features"),
    ("points.geojson", {}, "no polygon layer"),
    ("layers.gpkg", {"layer": "centroids"}, "not polygons"),
    ("layers.gpkg", {"layer": "nope"}, "has no layer 'nope'"),
    ("no_crs_elsewhere.shp", {}, "has no CRS"),
    ("bowtie_wards.geojson", {"vintage": "22"}, "four-digit year"),
    ("bowtie_wards.geojson", {"level": "county"}, "expected one of ward, snt, borough, lsoa"),
    ("does_not_exist.shp", {}, "not found"),
])
def test_bad_files_raise_bad_input(fixtures, name, kwargs, message):
    kwargs = {"level": "ward", **kwargs}
    with pytest.raises(BadInput) as info:
        read_boundaries(fixtures / "boundaries" / name, **kwargs)
    assert message in info.value.message
    assert info.value.status == 422


def test_missing_columns_message_names_the_layouts(fixtures):
    with pytest.raises(BadInput) as info:
        read_boundaries(fixtures / "boundaries/missing_columns.geojson", "ward")
    for layout in ("london-datastore-ward-2014", "london-datastore-ward-2018", "ons-ward", "generic"):
        assert layout in info.value.message


@pytest.mark.parametrize("content", [b"", b"not a boundary file\n"])
def test_empty_or_garbage_file(tmp_path, content):
    path = tmp_path / "broken.geojson"
    path.write_bytes(content)
    with pytest.raises(BadInput):
        read_boundaries(path, "ward")


# --- the declared layouts --------------------------------------------------


def test_layouts_are_well_formed():
    layouts = load_layouts()
    names = [layout["name"] for layout in layouts["layouts"]]
    assert len(names) == len(set(names))
    assert len(layouts["city_of_london"]["area_codes"]) == 26
    for layout in layouts["layouts"]:
        assert set(layout["levels"]) <= set(LEVELS)
        assert {"code", "name"} <= set(layout["columns"])
        assert set(layout["columns"]) <= {"code", "name", "borough_code", "borough_name"}
        for pattern in [p for ps in layout["columns"].values() for p in ps] + layout.get("requires", []):
            re.compile(pattern)
        if "vintage_from" in layout:
            assert all("(?P<yy>" in p for p in layout["columns"][layout["vintage_from"]])
        if "vintage" in layout:
            assert re.fullmatch(r"\d{4}", layout["vintage"])
    for level in LEVELS:
        assert any(level in layout["levels"] for layout in layouts["layouts"])


def test_city_ward_codes_match_the_2018_file(need_shared):
    source = raw(need_shared(WARDS_2018))
    city = set(source.loc[source["LAGSSCODE"] == CITY_OF_LONDON, "GSS_CODE"])
    assert city | {CITY_OF_LONDON} == set(load_layouts()["city_of_london"]["area_codes"])


def test_dtypes_are_text(fixtures):
    gdf = read_boundaries(fixtures / "boundaries/bowtie_wards.geojson", "ward").gdf
    for column in ("code", "name", "borough_code", "borough_name", "force"):
        assert all(isinstance(v, str) for v in gdf[column] if not (isinstance(v, float) and np.isnan(v)))
