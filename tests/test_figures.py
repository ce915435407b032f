"""Figures per area against hand-counted numbers.

The store is built with the real loaders from a tiny hand-written city:

    x 520-521 km   521-522 km   522-524 km   524-525 km (y 180-181 km only)
    +-----------+------------+-------------+---------+
    |    W1     |     W2     |     W3      |   W4    |
    | pop 1,000 | pop 2,000  |  pop 4,000  | pop 500 |
    +-----------+------------+-------------+---------+
      borough A (E09900001)   borough B     the City (E09000001, City of London Police)

Crimes are placed at the centre of a ward, so which ward holds each one is
known by construction; every expected number below is counted by hand.
"""

import csv

import pytest
import shapely

from crimemap import figures
from crimemap.crs import bng_to_lonlat
from crimemap.errors import BadQuery, UnknownArea
from crimemap.ingest import ingest_crimes, load_boundaries
from crimemap.population import load_population
from crimemap.store import open_store

WARDS = {
    # code: (name, borough code, borough name, x0, y0, x1, y1, residents)
    "E05900001": ("Ward One", "E09900001", "Borough A", 520_000, 180_000, 521_000, 182_000, 1000),
    "E05900002": ("Ward Two", "E09900001", "Borough A", 521_000, 180_000, 522_000, 182_000, 2000),
    "E05900003": ("Ward Three", "E09900002", "Borough B", 522_000, 180_000, 524_000, 182_000, 4000),
    "E05900004": ("Ward Four", "E09000001", "The City", 524_000, 180_000, 525_000, 181_000, 500),
}
# (month, ward, police.uk label, how many); Met wards only.
MET_CRIMES = [
    ("2024-01", "E05900001", "Burglary", 3),
    ("2024-01", "E05900001", "Anti-social behaviour", 2),
    ("2024-02", "E05900001", "Violence and sexual offences", 1),
    ("2024-02", "E05900002", "Shoplifting", 4),
    ("2024-01", "E05900003", "Robbery", 5),
    ("2024-02", "E05900003", "Drugs", 2),
    ("2024-02", "E05900003", "Vehicle crime", 1),
]
# The City of London Police published January only.
CITY_CRIMES = [("2024-01", "E05900004", "Theft from the person", 6)]
HEADER = ["Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location", "LSOA code",
          "LSOA name", "Crime type", "Last outcome category", "Context"]


def _feature_collection(rows):
    import json

    features = [{"type": "Feature", "properties": props,
                 "geometry": shapely.geometry.mapping(shapely.box(*box))} for props, box in rows]
    return json.dumps({"type": "FeatureCollection", "features": features,
                       "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::27700"}}})


def _write_crimes(path, force, rows, extra=()):
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for month, ward, label, n in rows:
            _, _, _, x0, y0, x1, y1, _ = WARDS[ward]
            lon, lat = bng_to_lonlat((x0 + x1) / 2, (y0 + y1) / 2)
            for i in range(n):
                out.writerow([f"{ward}-{month}-{label}-{i}", month, force, force, f"{float(lon):.6f}",
                              f"{float(lat):.6f}", "On or near Test Street", "", "", label, "", ""])
        for row in extra:
            out.writerow(row)


def build_city(folder, met_rows=None, hostile_names=None):
    """Build the hand-written city in ``folder``/instance with the real loaders; return the settings.

    Parameters
    ----------
    met_rows : list, optional
        Rows of a Met ward-level count file to ingest too:
        ``(MajorText, MinorText, ward code, {"2024-01": n, ...})``.
    hostile_names : dict, optional
        Ward code to a name to store instead (escaping tests).
    """
    src = folder / "src"
    src.mkdir()
    wards = [({"WD22CD": code, "WD22NM": name, "LAD22CD": bc, "LAD22NM": bn}, (x0, y0, x1, y1))
             for code, (name, bc, bn, x0, y0, x1, y1, _) in WARDS.items()]
    boroughs = {}
    for code, (_, bc, bn, x0, y0, x1, y1, _) in WARDS.items():
        boroughs.setdefault((bc, bn), []).append(shapely.box(x0, y0, x1, y1))
    borough_rows = [({"LAD22CD": bc, "LAD22NM": bn}, shapely.union_all(boxes).bounds)
                    for (bc, bn), boxes in boroughs.items()]
    # One LSOA per ward, so ward populations are known exactly.
    lsoas = [({"LSOA21CD": f"E0190000{i}", "LSOA21NM": f"Test {i}", "LAD22CD": bc}, (x0, y0, x1, y1))
             for i, (code, (_, bc, _, x0, y0, x1, y1, _)) in enumerate(WARDS.items(), start=1)]
    (src / "wards.geojson").write_text(_feature_collection(wards))
    (src / "boroughs.geojson").write_text(_feature_collection(borough_rows))
    (src / "lsoas.geojson").write_text(_feature_collection(lsoas))
    with open(src / "population-mid-2022.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["LSOA21CD", "LAD22CD", "Total"])
        for i, (code, (_, bc, *_rest)) in enumerate(WARDS.items(), start=1):
            out.writerow([f"E0190000{i}", bc, WARDS[code][-1]])
    no_location = ["x", "2024-01", "Metropolitan Police Service", "Metropolitan Police Service", "", "",
                   "No Location", "", "", "Burglary", "", ""]
    _write_crimes(src / "2024-met-street.csv", "Metropolitan Police Service", MET_CRIMES, [no_location])
    _write_crimes(src / "2024-city-street.csv", "City of London Police", CITY_CRIMES)

    from tests.conftest import settings_for

    settings = settings_for(folder / "instance")  # the test leg's store (embedded or PostGIS)
    s = open_store(settings)
    load_boundaries(s, src / "boroughs.geojson", "borough", settings=settings)
    load_boundaries(s, src / "wards.geojson", "ward", settings=settings)
    load_boundaries(s, src / "lsoas.geojson", "lsoa", settings=settings)
    load_population(s, src / "population-mid-2022.csv", settings=settings)
    files = [src / "2024-met-street.csv", src / "2024-city-street.csv"]
    if met_rows:
        months = sorted({m for *_rest, cells in met_rows for m in cells})
        with open(src / "mps-ward.csv", "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["MajorText", "MinorText", "WardName", "WardCode", "LookUp_BoroughName",
                          *[m.replace("-", "") for m in months]])
            for major, minor, ward, cells in met_rows:
                out.writerow([major, minor, WARDS[ward][0], ward, WARDS[ward][2], *[cells.get(m, 0) for m in months]])
        files.append(src / "mps-ward.csv")
    ingest_crimes(s, files, settings=settings)
    if hostile_names:
        with s.writer() as writer:
            for code, name in hostile_names.items():
                writer.execute("UPDATE areas SET name = ? WHERE code = ?", (name, code))
            writer.changed = True
    return settings


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return open_store(build_city(tmp_path_factory.mktemp("figures")), readonly=True)


def _by_code(frame, column):
    return dict(zip(frame["code"], frame[column]))


BOTH = ["2024-01", "2024-02"]


def test_ward_counts_population_and_london_average(store):
    result = figures.area_figures(store, "ward", BOTH)
    assert _by_code(result, "count") == {"E05900001": 6, "E05900002": 4, "E05900003": 8, "E05900004": 6}
    assert _by_code(result, "population") == {"E05900001": 1000, "E05900002": 2000, "E05900003": 4000,
                                              "E05900004": 500}
    assert _by_code(result, "force")["E05900004"] == "city-of-london"
    assert _by_code(result, "separate_force") == {"E05900001": False, "E05900002": False, "E05900003": False,
                                                  "E05900004": True}
    # The City is a separate force: not in the London average.
    london = result.attrs["london"]
    assert london["count"] == 18
    assert london["population"] == 7000
    assert london["rate_per_1000"] == pytest.approx(18 / 7)
    assert _by_code(result, "rate_per_1000")["E05900001"] == pytest.approx(6.0)
    assert _by_code(result, "ratio_to_london")["E05900001"] == pytest.approx(6.0 / (18 / 7))
    assert _by_code(result, "band") == {"E05900001": "much-higher", "E05900002": "lower",
                                        "E05900003": "lower", "E05900004": "much-higher"}
    assert result.crs.to_epsg() == 27700
    assert set(result["level"]) == {"ward"}


def test_borough_totals_are_the_sum_of_their_wards(store):
    result = figures.area_figures(store, "borough", BOTH, with_geometry=False)
    assert _by_code(result, "count") == {"E09900001": 10, "E09900002": 8, "E09000001": 6}
    assert _by_code(result, "population") == {"E09900001": 3000, "E09900002": 4000, "E09000001": 500}
    assert _by_code(result, "band")["E09900001"] == "higher"  # 3.33 / 2.57 = 1.30
    assert "geometry" not in result.columns


def test_no_data_is_not_zero(store):
    # The City published nothing for February: its count is unknown, not 0.
    february = figures.area_figures(store, "ward", ["2024-02"])
    assert _by_code(february, "count") == {"E05900001": 1, "E05900002": 4, "E05900003": 3, "E05900004": None}
    city = february[february["code"] == "E05900004"].iloc[0]
    assert city["no_data"] and city["rate_per_1000"] is None and city["band"] is None
    # The Met did publish February: a ward with no burglary has zero burglaries.
    burglary = figures.area_figures(store, "ward", ["2024-02"], category="burglary")
    assert _by_code(burglary, "count")["E05900001"] == 0
    assert not _by_code(burglary, "no_data")["E05900001"]
    nothing = figures.area_figures(store, "ward", ["2023-06"])
    assert set(_by_code(nothing, "count").values()) == {None}
    assert nothing.attrs["london"] == {"count": None, "population": None, "rate_per_1000": None, "rate_ci": None,
                                       "areas": 0}


def test_partial_periods_say_how_many_months_have_data(store):
    result = figures.area_figures(store, "ward", ["2024-01", "2024-02", "2024-03"])
    assert _by_code(result, "months_with_data") == {"E05900001": 2, "E05900002": 2, "E05900003": 2,
                                                   "E05900004": 1}


def test_mopac7_approximation_and_single_categories(store):
    mopac = figures.area_figures(store, "ward", BOTH, category="mopac7")
    # Burglary + violence; shoplifting is not MOPAC 7; robbery + vehicle crime; theft from the person.
    assert _by_code(mopac, "count") == {"E05900001": 4, "E05900002": 0, "E05900003": 6, "E05900004": 6}
    asb = figures.area_figures(store, "ward", BOTH, category="anti-social-behaviour")
    assert _by_code(asb, "count") == {"E05900001": 2, "E05900002": 0, "E05900003": 0, "E05900004": 0}
    assert figures.categories_for("all-crime") is None
    assert "burglary" in figures.categories_for("mopac7")


def test_snt_falls_back_to_wards(store):
    result = figures.area_figures(store, "snt", BOTH, with_geometry=False)
    assert set(result["level"]) == {"snt"}
    assert result.attrs["layer"]["level"] == "ward"
    assert _by_code(result, "count")["E05900003"] == 8


def test_latest_and_previous_months(store):
    assert figures.latest_months(store, 2) == ["2024-01", "2024-02"]
    assert figures.latest_months(store, 3) == ["2023-12", "2024-01", "2024-02"]
    assert figures.previous_months(["2024-01", "2024-02"]) == ["2023-11", "2023-12"]
    assert figures.month_range("2023-11", "2024-02") == ["2023-11", "2023-12", "2024-01", "2024-02"]


def test_by_type_compares_with_the_previous_period_and_london(store):
    rows = figures.area_by_type(store, "ward", "E05900001", ["2024-02"])
    by = {row["crime"]: row for row in rows.to_dict("records")}
    assert rows.attrs["previous"] == ["2024-01"]
    assert (by["burglary"]["count"], by["burglary"]["previous_count"]) == (0, 3)
    assert by["burglary"]["pct_change"] == pytest.approx(-100.0)
    assert by["violent-crime"]["pct_change"] is None  # up from zero: no percentage
    assert (by["all-crime"]["count"], by["all-crime"]["previous_count"]) == (1, 5)
    assert by["all-crime"]["pct_change"] == pytest.approx(-80.0)
    # Met-wide: February 1 + 4 + 3 = 8 against January 3 + 2 + 5 = 10.
    assert (by["all-crime"]["london_count"], by["all-crime"]["london_previous_count"]) == (8, 10)
    assert by["all-crime"]["london_pct_change"] == pytest.approx(-20.0)
    assert by["mopac7"]["count"] == 1 and by["mopac7"]["previous_count"] == 3
    # Every current police.uk category is listed, even with no crimes.
    assert {"robbery", "bicycle-theft", "other-crime"} <= set(by)


def test_by_type_for_a_force_without_data(store):
    rows = figures.area_by_type(store, "ward", "E05900004", ["2024-02"])
    by = {row["crime"]: row for row in rows.to_dict("records")}
    assert by["all-crime"]["count"] is None
    assert by["all-crime"]["previous_count"] == 6


@pytest.mark.parametrize("call, error", [
    (lambda s: figures.area_figures(s, "county", BOTH), BadQuery),
    (lambda s: figures.area_figures(s, "ward", BOTH, category="murder"), BadQuery),
    (lambda s: figures.area_figures(s, "ward", ["2024-13"]), BadQuery),
    (lambda s: figures.area_figures(s, "ward", ["2024-1"]), BadQuery),
    (lambda s: figures.area_by_type(s, "ward", "E05999999", BOTH), UnknownArea),
    (lambda s: figures.find_area(figures.area_figures(s, "ward", BOTH), "nope"), UnknownArea),
    (lambda s: figures.month_range("2024-02", "2024-01"), BadQuery),
])
def test_bad_input_is_refused_with_a_typed_error(store, call, error):
    with pytest.raises(error):
        call(store)


def test_band_edges():
    assert figures.band_for(0.49) == "much-lower"
    assert figures.band_for(0.5) == "lower"
    assert figures.band_for(1.0) == "around"
    assert figures.band_for(1.25) == "higher"
    assert figures.band_for(2.0) == "much-higher"
    assert figures.band_for(None) is None


def test_no_layer_loaded_is_an_unknown_area(tmp_path):
    from tests.conftest import settings_for

    empty = open_store(settings_for(tmp_path), readonly=True)
    with pytest.raises(UnknownArea):
        figures.area_figures(empty, "ward", BOTH)
    assert figures.latest_months(empty, 12) == []
