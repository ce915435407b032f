"""Acceptance on the real files: the 2016-06 Met stop and search CSV, lad22 boroughs, Census 2011 QS201EW.

Every expected figure is computed here independently, with plain pandas and
geopandas.sjoin, from the same files.
"""

import csv
import io

import geopandas as gpd
import pandas as pd
import pytest

from crimemap.ingest import load_boundaries
from crimemap.store import open_store
from crimemap.stops.ingest import ingest_stops, load_census
from tests.conftest import settings_for

pytestmark = pytest.mark.shared_data

STOPS = "crime/police_uk/stop-and-search/2016-06-metropolitan-stop-and-search.csv"
BOROUGHS = "boundaries/london-2021-lad22-gen20.shp"
CENSUS = "population/census2011_ethnic_group_by_local_authority_EW.csv"
LAMBETH = "E09000022"


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    from tests.conftest import _need_shared

    instance = tmp_path_factory.mktemp("stops2016") / "instance"
    settings = settings_for(instance)
    store = open_store(settings)
    load_boundaries(store, _need_shared(BOROUGHS), "borough", settings=settings)
    load_census(store, _need_shared(CENSUS))
    report = ingest_stops(store, [_need_shared(STOPS)], settings=settings)
    from crimemap.web import create_app

    app = create_app({"INSTANCE": str(instance), "TESTING": True})
    return {"store": store, "report": report, "client": app.test_client(), "instance": instance}


@pytest.fixture(scope="module")
def joined():
    """The stops joined to the boroughs by geopandas alone."""
    from tests.conftest import _need_shared

    stops = pd.read_csv(_need_shared(STOPS))
    located = stops.dropna(subset=["Latitude", "Longitude"])
    points = gpd.GeoDataFrame(located, geometry=gpd.points_from_xy(located["Longitude"], located["Latitude"]),
                              crs="EPSG:4326").to_crs("EPSG:27700")
    boroughs = gpd.read_file(_need_shared(BOROUGHS))
    hits = gpd.sjoin(points, boroughs[["LAD22CD", "geometry"]], how="left", predicate="within")
    return stops, hits


def test_counts_per_borough_equal_an_independent_sjoin(real, joined):
    stops, hits = joined
    expected = hits.dropna(subset=["LAD22CD"]).groupby("LAD22CD").size()
    body = real["client"].get("/api/v1/stops/choropleth?from=2016-06&to=2016-06&geometry=none").get_json()
    got = {f["properties"]["code"]: f["properties"]["count"] for f in body["features"]}
    assert len(got) == 33
    assert {c: n for c, n in got.items() if n} == {c: int(n) for c, n in expected.items()}
    assert body["london"]["no_location"] == int(stops["Latitude"].isna().sum()) == 871
    assert body["london"]["outside"] == int(hits["LAD22CD"].isna().sum())
    summary = real["report"]["summary"]
    assert (summary["rows_read"], summary["no_location"], summary["rejected"]) == (len(stops), 871, 0)
    assert summary["in_a_borough"] == int(expected.sum())


def test_london_rate_is_the_met_boroughs(real, joined):
    _stops, hits = joined
    body = real["client"].get("/api/v1/stops/choropleth?from=2016-06&to=2016-06&geometry=none").get_json()
    census = pd.read_csv(SHARED_CENSUS())
    met = census[census["geography code"].str.startswith("E09") & (census["geography code"] != "E09000001")]
    persons = int(met["Ethnic Group: All categories: Ethnic group; measures: Value"].sum())
    searches = int(hits[hits["LAD22CD"].str.startswith("E09", na=False) & (hits["LAD22CD"] != "E09000001")].shape[0])
    assert body["london"]["count"] == searches and body["london"]["population"] == persons
    assert body["london"]["rate_per_1000"] == pytest.approx(1000 * searches / persons)
    lambeth = next(f["properties"] for f in body["features"] if f["id"] == LAMBETH)
    assert lambeth["band"] == "much-higher" and lambeth["ratio_to_london"] > 2  # 3.1 per 1,000 against 1.2


def SHARED_CENSUS():
    from tests.conftest import _need_shared

    return _need_shared(CENSUS)


def test_disproportionality_worked_by_hand_for_lambeth(real, joined):
    """Lambeth, June 2016, worked through with plain pandas and the Census table."""
    _stops, hits = joined
    lambeth = hits[hits["LAD22CD"] == LAMBETH]
    census = pd.read_csv(SHARED_CENSUS()).set_index("geography code").loc[LAMBETH]

    def people(*labels):
        return int(sum(census[f"Ethnic Group: {label}; measures: Value"] for label in labels))

    residents = {
        "white": people("White"),  # the subtotal column: W1..W4
        "black": people("Black"),  # B1..B3
        "asian": people("Asian"),  # A1..A5, Chinese included
        "other": people("Other", "Mixed"),  # O1, O2 and M1..M4: officers record no Mixed group
    }
    officer = lambeth["Officer-defined ethnicity"].value_counts()
    searches = {"white": officer["White"], "black": officer["Black"], "asian": officer["Asian"],
                "other": officer["Other"]}
    body = real["client"].get(f"/api/v1/stops/areas/borough/{LAMBETH}?from=2016-06&to=2016-06").get_json()
    got = {(d["group"], d["ethnicity_basis"]): d for d in body["disproportionality"]}
    white_rate = 1000 * searches["white"] / residents["white"]
    for group in ("black", "asian", "other"):
        row = got[(group, "officer")]
        assert row["searches"] == searches[group] and row["population"] == residents[group]
        assert row["rate_per_1000"] == pytest.approx(1000 * searches[group] / residents[group])
        assert row["ratio_to_white"] == pytest.approx(1000 * searches[group] / residents[group] / white_rate)
        assert row["display"].endswith(f"({searches[group]:,} : {searches['white']:,})")
        low, high = row["ratio_ci"]
        assert low < row["ratio_to_white"] < high
    # The figures the board pack would print: Black 4.9 (616 : 275).
    assert got[("black", "officer")]["display"] == "4.9 (616 : 275)"
    assert got[("other", "officer")]["small_count"] and "Small numbers" in got[("other", "officer")]["caveat"]

    # Self-defined: police.uk's codes in brackets; Mixed (M) -> other, Chinese (O1) -> asian, NS left out.
    codes = lambeth["Self-defined ethnicity"].str.extract(r"\((\w+)\)$")[0]
    by_letter = {"W": "white", "B": "black", "A": "asian", "M": "other"}
    groups = codes.map(lambda c: None if pd.isna(c) or c == "NS" else
                       ("asian" if c == "O1" else "other" if c == "O9" else by_letter[c[0]]))
    self_searches = groups.value_counts()
    white_rate = 1000 * self_searches["white"] / residents["white"]
    for group in ("black", "asian", "other"):
        expected = 1000 * self_searches[group] / residents[group] / white_rate
        assert got[(group, "self")]["ratio_to_white"] == pytest.approx(expected)
    assert body["not_stated"]["self"] == int(groups.isna().sum())
    assert any("street population" in n or "people on a borough's streets" in n for n in body["notes"])


def test_arrest_rate_objects_and_outcomes(real, joined):
    _stops, hits = joined
    lambeth = hits[hits["LAD22CD"] == LAMBETH]
    body = real["client"].get(f"/api/v1/stops/areas/borough/{LAMBETH}?from=2016-06&to=2016-06").get_json()
    arrests = int((lambeth["Outcome"] == "Suspect arrested").sum())
    assert body["searches"] == len(lambeth) and body["arrests"] == arrests
    assert body["arrest_rate"] == pytest.approx(arrests / len(lambeth))
    objects = {g["group"]: g["searches"] for g in body["by_object"]}
    assert objects["drugs"] == int((lambeth["Object of search"] == "Controlled drugs").sum())
    assert objects["weapons"] == int(lambeth["Object of search"].isin(["Firearms", "Offensive weapons"]).sum())
    assert sum(objects.values()) == len(lambeth)
    types = {t["type"]: t["searches"] for t in body["by_type"]}
    assert types["person-and-vehicle"] == int((lambeth["Type"] == "Person and Vehicle search").sum())
    assert body["monthly"] == [{"month": "2016-06", "has_data": True, "searches": len(lambeth), "arrests": arrests,
                                "person": types["person"], "vehicle": types["vehicle"],
                                "person-and-vehicle": types["person-and-vehicle"]}]


def test_downloads_carry_attribution_and_version(real):
    client = real["client"]
    version = real["store"].data_version()
    text = client.get("/api/v1/stops/choropleth?format=csv").get_data(as_text=True)
    assert "# Attribution: Contains public sector information licensed under the Open Government Licence v3.0." \
        in text and f"# Data version: {version}" in text
    rows = list(csv.DictReader(io.StringIO("\n".join(l for l in text.splitlines() if not l.startswith("#")))))
    assert len(rows) == 33 and {r["code"] for r in rows if r["count"] not in ("", "0")}
    response = client.get("/api/v1/stops/choropleth?format=geojson")
    assert "attachment" in response.headers["Content-Disposition"]
    doc = response.get_json()
    assert doc["data_version"] == version and doc["attribution"] and doc["features"][0]["geometry"]
    for table in ("monthly", "by_type", "by_object", "by_outcome", "disproportionality"):
        response = client.get(f"/api/v1/stops/areas/borough/{LAMBETH}?format=csv&table={table}")
        text = response.get_data(as_text=True)
        assert response.status_code == 200 and "# Attribution:" in text and f"Data version: {version}" in text
    doc = client.get(f"/api/v1/stops/areas/borough/{LAMBETH}?format=geojson").get_json()
    assert doc["features"][0]["id"] == LAMBETH and doc["attribution"] and doc["data_version"] == version


@pytest.mark.parametrize("url, status, words", [
    ("/api/v1/stops/choropleth?from=2016-13", 400, "bad from"),
    ("/api/v1/stops/choropleth?level=ward", 400, "unknown level"),
    ("/api/v1/stops/choropleth?format=xls", 400, "unknown format"),
    ("/api/v1/stops/choropleth?geometry=round", 400, "unknown geometry"),
    ("/api/v1/stops/choropleth?from=1990-01&to=2016-06", 400, "at most"),
    ("/api/v1/stops/areas/borough/E09000022?table=nope", 400, "unknown table"),
    ("/api/v1/stops/areas/ward/E05000001", 400, "borough only"),
    ("/api/v1/stops/areas/borough/E09999999", 404, "no borough"),
    ("/api/v1/stops/areas/borough/E09000022?from=2016-07&to=2016-06", 400, "after it ends"),
])
def test_bad_queries_are_json_errors(real, url, status, words):
    response = real["client"].get(url)
    body = response.get_json()
    assert response.status_code == status and body["status"] == status and words in body["error"]


def test_pages_render(real):
    client = real["client"]
    page = client.get("/stops").get_data(as_text=True)
    assert 'id="figures"' in page and "Lambeth" in page and "871" in page
    page = client.get(f"/stops/borough/{LAMBETH}").get_data(as_text=True)
    assert "4.9 (616 : 275)" in page and 'id="by-object"' in page and "Arrest rate" in page
    assert "Contains public sector information" in page
    assert client.get("/stops/borough/E09999999").status_code == 404
    assert client.get("/stops?from=bad").status_code == 400


@pytest.mark.slow
def test_reduced_columns_2018_by_london_month(instance, need_shared):
    """The 2018 concatenation: 12 London months, no ethnicity columns, no-location rows kept."""
    settings = settings_for(instance)
    store = open_store(settings)
    load_boundaries(store, need_shared(BOROUGHS), "borough", settings=settings)
    path = need_shared("crime/police_uk/stop-and-search/2018-metropolitan-stop-and-search_reduced-columns.csv.gz")
    report = ingest_stops(store, [path], settings=settings)
    raw = pd.read_csv(path)
    months = pd.to_datetime(raw["Date"], utc=True).dt.tz_convert("Europe/London").dt.strftime("%Y-%m")
    from crimemap.store import stops as st

    batches = st.stop_batches(store).set_index("month")
    assert batches["rows_read"].to_dict() == months.value_counts().to_dict()
    no_location = raw["Latitude"].isna().groupby(months).sum()
    assert batches["no_location"].to_dict() == no_location.to_dict()
    assert report["summary"]["no_location"] == 31_956 and report["summary"]["rejected"] == 0
    from crimemap.stops.figures import borough_summary

    summary = borough_summary(store, LAMBETH, sorted(batches.index))
    assert summary["disproportionality"] == []  # no ethnicity in this file: no ratios, and a note says why
    assert any("do not carry" in note and "not shown" in note for note in summary["notes"])
    assert [m["month"] for m in summary["monthly"]] == sorted(batches.index)
