"""The one reader of declared postcode layouts: Code-Point Open, ONSPD, NSPL."""

import gzip
import math

import numpy as np
import pytest

from crimemap.crs import bng_to_lonlat
from crimemap.postcodes.sources import SourceError, detect, layouts, read_source


def _rows(columns):
    return {pc: i for i, pc in enumerate(columns["postcode"])}


def test_every_layout_is_declared_with_its_required_fields():
    names = [layout["name"] for layout in layouts()]
    assert names == ["codepoint-open", "codepoint-open-with-header", "onspd", "nspl"]
    for layout in layouts():
        assert set(layout["required"]) <= set(layout["fields"])
        assert "postcode" in layout["required"]


@pytest.mark.parametrize("first_line, expected", [
    ('"E1  6AN",10,530100,180100,"E92000001","E19000003","E18000007","","E09000033","E05990101"', "codepoint-open"),
    ("Postcode,Positional_quality_indicator,Eastings,Northings,Country_code,NHS_regional_HA_code,NHS_HA_code,"
     "Admin_county_code,Admin_district_code,Admin_ward_code,Latitude,Longitude", "codepoint-open-with-header"),
    ("pcd,pcd2,pcds,dointr,doterm,oscty,oslaua,osward,oseast1m,osnrth1m,osgrdind,ctry,lat,long", "onspd"),
    ("PCD,PCDS,DOINTR,DOTERM,LAUA,WARD,LAT,LONG", "nspl"),
    ("PC,PQ,EA,NO,CY,RH,LH,CC,DC,WC", None),  # Code-Point Open's column-header document
    ("a,b,c", None),
])
def test_detect(first_line, expected):
    found = detect(first_line)
    assert (found[0]["name"] if found else None) == expected


def test_codepoint_open_headerless_folder(fixtures):
    columns, names, report = read_source(fixtures / "postcodes" / "codepoint_open")
    assert names == ["codepoint-open"]
    rows = _rows(columns)
    # The 7-character form "E1  6AN" and "WC2N5DU" are read as canonical postcodes.
    assert {"E1 6AN", "WC2N 5DU", "EC4M 7AN"} <= set(rows)
    i = rows["E1 6AN"]
    lon, lat = bng_to_lonlat(530100, 180100)
    assert (columns["eastings"][i], columns["northings"][i]) == (530100, 180100)
    assert columns["latitude"][i] == pytest.approx(float(lat)) and columns["longitude"][i] == pytest.approx(float(lon))
    assert columns["ward_code"][i] == "E05990101" and columns["quality"][i] == 10
    # Positional quality 90 with 0, 0: kept, without a location.
    j = rows["SE1 6ZZ"]
    assert math.isnan(columns["latitude"][j]) and math.isnan(columns["eastings"][j])
    assert report.rows_read == 8 and report.rejected == 0
    assert [f["path"] for f in report.files] == ["Data/CSV/se.csv", "Data/CSV/wc.csv"]
    assert report.skipped == ["Doc/Code-Point_Open_Column_Headers.csv: not a postcode file of a known layout"]
    assert (columns["terminated"] == 0).all()


def test_onspd_live_terminated_rejected_and_no_location(fixtures):
    columns, names, report = read_source(fixtures / "postcodes" / "onspd_sample.csv")
    assert names == ["onspd"]
    rows = _rows(columns)
    assert columns["terminated"][rows["WC2N 9ZZ"]] == 201506
    assert columns["introduced"][rows["SE1 7ZA"]] == 202401
    assert columns["terminated"][rows["SE1 7ZA"]] == 0
    e19zy = rows["E1 9ZY"]  # lat 99.999999 and osgrdind 9 mean "no location"
    assert math.isnan(columns["latitude"][e19zy]) and math.isnan(columns["eastings"][e19zy])
    assert columns["district_code"][rows["GIR 0AA"]] == "E08000014"
    entry = report.files[0]
    assert entry["rejected"] == 1 and entry["examples"] == [[13, "not a UK postcode: 'XX1 BAD'"]]
    assert (entry["rows"], entry["terminated"], entry["no_location"]) == (12, 2, 1)


def test_nspl_columns_without_the_os_prefix(fixtures):
    columns, names, _ = read_source(fixtures / "postcodes" / "nspl_sample.csv")
    assert names == ["nspl"]
    rows = _rows(columns)
    assert columns["district_code"][rows["SE1 9GF"]] == "E09000022"
    assert columns["ward_code"][rows["SE1 9GF"]] == "E05990102"
    assert columns["nhs_ha_code"][rows["SE1 9GF"]] == "E18000007"
    assert columns["terminated"][rows["WC2N 9ZZ"]] == 201506


def test_the_real_london_extract(need_shared):
    import pandas as pd

    path = need_shared("postcodes/codepoint_open_2025-10_london.csv.gz")
    columns, names, report = read_source(path)
    assert names == ["codepoint-open-with-header"] and report.rows_read == 180_792 and report.rejected == 0
    frame = pd.read_csv(path, dtype={"Admin_ward_code": str})
    assert columns["postcode"].tolist() == frame["Postcode"].tolist()
    # Published latitude/longitude are used as given.
    assert np.array_equal(columns["latitude"], frame["Latitude"].to_numpy())
    assert np.array_equal(columns["ward_code"], frame["Admin_ward_code"].to_numpy(dtype=object))


def test_truncated_gzip_and_malformed_csv_are_refused(tmp_path, fixtures):
    data = gzip.compress((fixtures / "postcodes" / "onspd_sample.csv").read_bytes() * 50)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="truncated or corrupt"):
        read_source(cut)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('"E1  6AN",10,530100,180100,"E92000001","","","","E09000033","E05990101"\n'
                      '"E1  6AQ",10,530100,180100,"E92000001","","","","E09000033","E05990101","extra"\n',
                      encoding="ascii")
    with pytest.raises(SourceError, match="malformed CSV"):
        read_source(ragged)
