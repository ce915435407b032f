"""Downloads and escaping: every table and map as CSV, GeoJSON and XLSX, with attribution and data version.

Built on the hand-written city of test_figures.py, with hostile ward names: one
that is HTML (``<script>``) and one that a spreadsheet would run as a formula.
"""

import io
import json
import re

import pandas as pd
import pytest
import shapely

from crimemap.attribution import ATTRIBUTION
from crimemap.store import open_store
from crimemap.web import create_app
from tests.test_figures import build_city

SCRIPT = "<script>alert(1)</script> Ward One"
FORMULA = '=HYPERLINK("http://example.invalid","x")'
BOTH = "from=2024-01&to=2024-02"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return build_city(tmp_path_factory.mktemp("downloads"),
                      hostile_names={"E05900001": SCRIPT, "E05900002": FORMULA})


@pytest.fixture(scope="module")
def client(settings):
    return create_app({"INSTANCE": settings["INSTANCE"], "TESTING": True}).test_client()


@pytest.fixture(scope="module")
def version(settings):
    return open_store(settings, readonly=True).data_version()


def _comments(text):
    return [line[2:] for line in text.splitlines() if line.startswith("# ")]


def _carries_attribution_and_version(comments, version):
    assert [c for c in comments if c.startswith("Attribution: ")] == [f"Attribution: {a}" for a in ATTRIBUTION]
    assert any(c.startswith(f"Data version: {version}") for c in comments)


def test_names_are_data_in_json_never_html(client):
    response = client.get(f"/api/v1/choropleth?level=ward&{BOTH}")
    assert response.mimetype == "application/geo+json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    names = {f["properties"]["code"]: f["properties"]["name"] for f in response.get_json()["features"]}
    assert names["E05900001"] == SCRIPT and names["E05900002"] == FORMULA
    area = client.get(f"/api/v1/areas/ward/E05900001?{BOTH}")
    assert area.mimetype == "application/json" and area.get_json()["area"]["name"] == SCRIPT
    neighbours = client.get(f"/api/v1/areas/ward/E05900002?{BOTH}").get_json()["neighbours"]
    assert SCRIPT in {n["name"] for n in neighbours}


def test_choropleth_csv(client, version):
    response = client.get(f"/api/v1/choropleth?level=ward&{BOTH}&format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="crimemap-choropleth-ward-all-crime-2024-01-to-2024-02-v{version}.csv"'
    text = response.get_data(as_text=True)
    comments = _comments(text)
    _carries_attribution_and_version(comments, version)
    assert comments[0] == "crimemap: All crime by ward, 2024-01 to 2024-02 (2 months)"
    assert "London (Metropolitan Police areas): 18 crimes, 7,000 residents, 2.57 per 1,000" in comments
    table = pd.read_csv(io.StringIO(text), comment="#", dtype=str, keep_default_na=False)
    rows = table.set_index("code")
    assert rows.loc["E05900001", "name"] == SCRIPT  # CSV is data: kept as it is
    assert rows.loc["E05900002", "name"] == "'" + FORMULA  # but never a live formula
    assert rows.loc["E05900004", "force"] == "city-of-london"
    assert rows["count"].to_dict() == {"E05900001": "6", "E05900002": "4", "E05900003": "8", "E05900004": "6"}


def test_choropleth_geojson_download(client, version):
    response = client.get(f"/api/v1/choropleth?level=borough&{BOTH}&format=geojson")
    assert response.mimetype == "application/geo+json"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="crimemap-choropleth-borough-all-crime-2024-01-to-2024-02-v{version}.geojson"'
    body = json.loads(response.get_data())
    assert body["attribution"] == list(ATTRIBUTION) and body["data_version"] == version
    assert body["data_as_of"] == "2024-02"
    for feature in body["features"]:
        polygon = shapely.geometry.shape(feature["geometry"])
        rings = polygon.geoms if polygon.geom_type == "MultiPolygon" else [polygon]
        assert all(ring.exterior.is_ccw for ring in rings)  # RFC 7946 winding
        for x, y in polygon.exterior.coords if polygon.geom_type == "Polygon" else []:
            assert -0.6 < x < 0.4 and 51.2 < y < 51.8
            assert len(repr(x).split(".")[1]) <= 6


@pytest.mark.parametrize("table, first_columns", [("by_type", "crime,label,kind,group,count,previous_count"),
                                                  ("monthly", "month,count,london_count,in_period"),
                                                  ("neighbours", "code,name,force,separate_force")])
def test_area_csv_tables(client, version, table, first_columns):
    response = client.get(f"/api/v1/areas/ward/E05900002?{BOTH}&format=csv&table={table}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="crimemap-ward-E05900002-{table}-all-crime-2024-01-to-2024-02-v{version}.csv"'
    text = response.get_data(as_text=True)
    _carries_attribution_and_version(_comments(text), version)
    header = next(line for line in text.splitlines() if not line.startswith("#"))
    assert header.startswith(first_columns)
    frame = pd.read_csv(io.StringIO(text), comment="#")
    if table == "by_type":
        total = frame[frame["crime"] == "all-crime"].iloc[0]
        assert total["count"] == 4 and pd.isna(total["previous_count"])  # nothing loaded before 2024: no data
    if table == "monthly":
        assert list(frame["month"]) == ["2023-11", "2023-12", "2024-01", "2024-02"]


def test_area_geojson_download(client, version):
    response = client.get(f"/api/v1/areas/ward/E05900002?{BOTH}&format=geojson")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="crimemap-ward-E05900002-')
    body = json.loads(response.get_data())
    assert body["attribution"] == list(ATTRIBUTION) and body["data_version"] == version
    roles = {f["properties"]["code"]: f["properties"]["role"] for f in body["features"]}
    assert roles == {"E05900002": "area", "E05900001": "neighbour", "E05900003": "neighbour"}
    assert body["features"][0]["properties"]["count"] == 4
    assert body["by_type"][-2]["crime"] == "all-crime"


def _workbook(response):
    from openpyxl import load_workbook

    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return load_workbook(io.BytesIO(response.get_data()))


def _sheet_rows(sheet):
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def _about_carries_attribution_and_version(book, version):
    lines = [row[0] for row in book["About"].iter_rows(values_only=True)]
    assert [x for x in lines if x.startswith("Attribution: ")] == [f"Attribution: {a}" for a in ATTRIBUTION]
    assert any(x.startswith(f"Data version: {version}") for x in lines)
    assert f"Data version: {version}" in book.properties.description
    return lines


def test_choropleth_xlsx_holds_the_csv_figures(client, version):
    response = client.get(f"/api/v1/choropleth?level=ward&{BOTH}&format=xlsx")
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="crimemap-choropleth-ward-all-crime-2024-01-to-2024-02-v{version}.xlsx"'
    book = _workbook(response)
    assert book.sheetnames == ["Areas", "About"]
    lines = _about_carries_attribution_and_version(book, version)
    assert lines[0] == "crimemap: All crime by ward, 2024-01 to 2024-02 (2 months)"
    rows = {row["code"]: row for row in _sheet_rows(book["Areas"])}
    # The hand-written city's counts (as in the CSV test), as numbers.
    assert {code: row["count"] for code, row in rows.items()} == \
        {"E05900001": 6, "E05900002": 4, "E05900003": 8, "E05900004": 6}
    assert rows["E05900001"]["name"] == SCRIPT
    # Stored as text, never a formula a spreadsheet would run.
    cell = next(c for c in book["Areas"]["B"] if c.value == FORMULA)
    assert cell.data_type == "s"
    csv_rows = pd.read_csv(io.StringIO(client.get(f"/api/v1/choropleth?level=ward&{BOTH}&format=csv")
                                       .get_data(as_text=True)), comment="#")
    assert [r["population"] for r in rows.values()] == list(csv_rows["population"])


def test_area_xlsx_has_every_table(client, version):
    book = _workbook(client.get(f"/api/v1/areas/ward/E05900002?{BOTH}&format=xlsx"))
    assert book.sheetnames == ["By type", "Monthly", "Neighbours", "About"]
    _about_carries_attribution_and_version(book, version)
    by_type = {row["crime"]: row for row in _sheet_rows(book["By type"])}
    assert by_type["all-crime"]["count"] == 4 and by_type["all-crime"]["previous_count"] is None
    assert [row["month"] for row in _sheet_rows(book["Monthly"])] == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert {row["name"] for row in _sheet_rows(book["Neighbours"])} >= {SCRIPT}


def test_conditional_requests_and_cors(client):
    first = client.get(f"/api/v1/choropleth?level=borough&{BOTH}&geometry=none")
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    etag = first.headers["ETag"]
    again = client.get(f"/api/v1/choropleth?level=borough&{BOTH}&geometry=none", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


def test_file_names_are_safe():
    from crimemap.downloads import filename

    assert filename("ward", "../../etc/passwd", "a b", ext="csv") == "crimemap-ward-.._.._etc_passwd-a_b.csv"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", filename('x"; y', ext="geojson"))
