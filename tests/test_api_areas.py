"""The Met's count tables through the API: choropleth counts and area summaries by hand from the CSVs.

One instance, built once for the module: the approximate 2022 wards, the lad22
boroughs, the 2011 LSOAs and mid-2020 population, the Met ward-level file
(2023-07 to 2025-06), both Met borough-level files (2010-04 to 2025-06) and the
City of London Police street files of 2024. Every expectation is summed
directly from the CSV month columns with pandas.
"""

import geopandas as gpd
import pandas as pd
import pytest

from crimemap.store import open_store
from crimemap.web import create_app
from tests.conftest import _need_shared, settings_for

WARD_CSV = "crime/mps_ward_level/MPS_Ward_Level_Crime_2023-07_to_2025-06.csv"
BOROUGH_CSV = "crime/mps_borough_level/MPS_Borough_Level_Crime_2024-03_to_2025-06.csv"
BOROUGH_HISTORY = "crime/mps_borough_level/MPS_Borough_Level_Crime_Historical_2010-04_to_2024-02.csv"
WARDS_2022 = "boundaries/london-wards-2022-approx.gpkg"
LAD22 = "boundaries/london-2021-lad22-gen20.shp"
LSOA11 = "boundaries/london-2011-lsoa-gen20.shp"
POP = "population/london-mid2020-lsoa11-pop.csv"
CITY_FILES = "crime/police_uk/city-of-london"
CAMDEN = "E09000007"
MOPAC7_MINORS = {("VIOLENCE AGAINST THE PERSON", "VIOLENCE WITH INJURY"), ("ROBBERY", "ROBBERY OF PERSONAL PROPERTY"),
                 ("ROBBERY", "ROBBERY OF BUSINESS PROPERTY"), ("THEFT", "THEFT FROM THE PERSON"),
                 ("VEHICLE OFFENCES", "THEFT OR UNAUTH TAKING OF A MOTOR VEH"),
                 ("VEHICLE OFFENCES", "THEFT FROM A VEHICLE"), ("ARSON AND CRIMINAL DAMAGE", "CRIMINAL DAMAGE")}


def _cols(first, last):
    """CSV month columns from first to last (YYYY-MM), both inclusive."""
    months = pd.period_range(first, last, freq="M")
    return [m.strftime("%Y%m") for m in months]


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    from crimemap.ingest import ingest_crimes, load_boundaries
    from crimemap.population import load_population

    folder = tmp_path_factory.mktemp("met") / "instance"
    settings = settings_for(folder)
    store = open_store(settings)
    load_boundaries(store, _need_shared(LAD22), "borough", settings=settings)
    load_boundaries(store, _need_shared(WARDS_2022), "ward", settings=settings)
    load_boundaries(store, _need_shared(LSOA11), "lsoa", settings=settings)
    load_population(store, _need_shared(POP), settings=settings)
    city = sorted(_need_shared(CITY_FILES).glob("2024-*-city-of-london-street.csv"))
    ingest_crimes(store, [_need_shared(WARD_CSV), _need_shared(BOROUGH_CSV), _need_shared(BOROUGH_HISTORY), *city],
                  settings=settings)
    return folder


@pytest.fixture(scope="module")
def client(instance):
    return create_app({"INSTANCE": str(instance), "TESTING": True}).test_client()


@pytest.fixture(scope="module")
def wards_csv():
    return pd.read_csv(_need_shared(WARD_CSV))


@pytest.fixture(scope="module")
def boroughs_csv():
    names = gpd.read_file(_need_shared(LAD22)).set_index("LAD22NM")["LAD22CD"]
    frame = pd.read_csv(_need_shared(BOROUGH_CSV))
    return frame.assign(code=frame["BoroughName"].map(names))  # "Unknown" has no code


def _get(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:400]
    return response.get_json()


def _props(body):
    return {f["properties"]["code"]: f["properties"] for f in body["features"]}


def _pct(now, before):
    return None if not before else 100.0 * (now - before) / before


@pytest.mark.parametrize("crime, major", [("met-burglary", "BURGLARY"), ("met-theft", "THEFT"),
                                          ("met-violence-against-the-person", "VIOLENCE AGAINST THE PERSON")])
def test_ward_counts_of_a_major_type_equal_the_csv(client, wards_csv, crime, major):
    body = _get(client, f"/api/v1/choropleth?level=ward&crime={crime}&from=2024-07&to=2025-06&geometry=none")
    expected = wards_csv[wards_csv["MajorText"] == major].groupby("WardCode")[_cols("2024-07", "2025-06")] \
        .sum().sum(axis=1)
    props = _props(body)
    met = {code: p for code, p in props.items() if p["force"] == "metropolitan"}
    assert len(met) == 679 and set(met) == set(wards_csv["WardCode"])
    assert {code: p["count"] for code, p in met.items()} == {c: int(expected.get(c, 0)) for c in met}
    assert body["source"] == "mps-ward" and all(p["source"] == "mps-ward" for p in met.values())
    # The 25 City wards are another force, with no Met figures: no data, not zero.
    city = [p for p in props.values() if p["force"] == "city-of-london"]
    assert len(city) == 25 and all(p["no_data"] and p["count"] is None for p in city)
    assert body["london"]["count"] == int(expected.sum())
    assert any("approximate ward boundaries" in note for note in body["notes"])


def test_ward_counts_of_a_minor_type_and_exact_mopac7(client, wards_csv):
    months = _cols("2024-07", "2025-06")
    minor = wards_csv[(wards_csv["MajorText"] == "ROBBERY")
                      & (wards_csv["MinorText"] == "ROBBERY OF PERSONAL PROPERTY")]
    body = _get(client, "/api/v1/choropleth?level=ward&crime=met-robbery.robbery-of-personal-property"
                        "&from=2024-07&to=2025-06&geometry=none")
    expected = minor.groupby("WardCode")[months].sum().sum(axis=1)
    got = {c: p["count"] for c, p in _props(body).items() if p["force"] == "metropolitan"}
    assert got == {c: int(expected.get(c, 0)) for c in got}
    pairs = list(zip(wards_csv["MajorText"], wards_csv["MinorText"]))
    mopac = wards_csv[[p in MOPAC7_MINORS or p[0] == "BURGLARY" for p in pairs]]
    expected = mopac.groupby("WardCode")[months].sum().sum(axis=1)
    body = _get(client, "/api/v1/choropleth?level=ward&crime=mopac7&from=2024-07&to=2025-06&geometry=none")
    got = {c: p["count"] for c, p in _props(body).items() if p["force"] == "metropolitan"}
    assert got == {c: int(expected.get(c, 0)) for c in got}


def test_borough_counts_come_from_the_borough_table(client, boroughs_csv):
    body = _get(client, "/api/v1/choropleth?level=borough&from=2025-01&to=2025-06&geometry=none")
    months = _cols("2025-01", "2025-06")
    expected = boroughs_csv.groupby("code")[months].sum().sum(axis=1)
    props = _props(body)
    assert body["source"] == "mps-borough"
    assert {c: p["count"] for c, p in props.items() if p["force"] == "metropolitan"} == \
        {c: int(n) for c, n in expected.items()}
    unknown = boroughs_csv[boroughs_csv["BoroughName"] == "Unknown"][months].to_numpy().sum()
    assert body["london"]["unallocated"] == int(unknown)
    # The City of London Police's own points answer for the City, and only 2024 is loaded.
    assert props["E09000001"]["source"] is None and props["E09000001"]["no_data"]
    city_2024 = _get(client, "/api/v1/choropleth?level=borough&from=2024-07&to=2024-12&geometry=none")
    assert _props(city_2024)["E09000001"]["source"] == "police.uk"
    assert city_2024["sources"]["city-of-london"]["id"] == "police.uk"


def _hand_by_type(frame, area_rows, now, before, key_major="MajorText", key_minor="MinorText"):
    """{crime id: (count, previous, pct, london pct)} for majors, minors, all-crime and MOPAC 7.

    A type is listed when London has at least one crime of it in either period
    (the Met files also carry rows of zeros for types no longer used).
    """
    from crimemap.crimetypes import met_major_id, met_minor_id

    out = {}
    pairs = list(zip(frame[key_major], frame[key_minor]))
    groups = {met_major_id(a): [p[0] == a for p in pairs] for a in set(frame[key_major])}
    groups |= {met_minor_id(a, b): [p == (a, b) for p in pairs] for a, b in set(pairs)}
    groups["all-crime"] = [True] * len(pairs)
    groups["mopac7"] = [p in MOPAC7_MINORS or p[0] == "BURGLARY" for p in pairs]
    for crime, mask in groups.items():
        rows = frame[mask]
        mine = rows[area_rows[mask]]
        n, b = int(mine[now].to_numpy().sum()), int(mine[before].to_numpy().sum())
        ln, lb = int(rows[now].to_numpy().sum()), int(rows[before].to_numpy().sum())
        if ln + lb or crime in ("all-crime", "mopac7"):
            out[crime] = (n, b, _pct(n, b), _pct(ln, lb))
    return out


def _check_by_type(by_type, expected):
    got = {row["crime"]: row for row in by_type}
    assert set(got) == set(expected)
    for crime, (n, b, pct, lpct) in expected.items():
        row = got[crime]
        assert (row["count"], row["previous_count"]) == (n, b), crime
        assert row["pct_change"] == (None if pct is None else pytest.approx(pct)), crime
        assert row["london_pct_change"] == (None if lpct is None else pytest.approx(lpct)), crime


def test_borough_summary_by_type_matches_the_borough_csv(client, boroughs_csv):
    body = _get(client, f"/api/v1/areas/borough/{CAMDEN}?from=2025-01&to=2025-06")
    assert body["period"] == {"from": "2025-01", "to": "2025-06", "months": 6}
    assert body["previous_period"] == {"from": "2024-07", "to": "2024-12", "months": 6}
    assert body["by_type_source"]["id"] == "mps-borough"
    # London is the 32 boroughs; the Met's "Unknown" rows belong to no borough.
    london = boroughs_csv[boroughs_csv["code"].notna()].reset_index(drop=True)
    expected = _hand_by_type(london, (london["code"] == CAMDEN).to_numpy(), _cols("2025-01", "2025-06"),
                             _cols("2024-07", "2024-12"))
    _check_by_type(body["by_type"], expected)
    assert body["by_type"][-2]["crime"] == "all-crime" and body["by_type"][-1]["crime"] == "mopac7"
    assert body["count"] == expected["all-crime"][0]
    assert body["rate_per_1000"] == pytest.approx(body["count"] / body["area"]["population"] * 1000)
    assert body["no_location"] is None  # Met tables hold every recorded crime; no point was left unplaced


def test_ward_summary_by_type_trends_and_comparisons(client, wards_csv):
    code = "E05013570"  # Heathrow Villages
    body = _get(client, f"/api/v1/areas/ward/{code}")
    assert body["period"] == {"from": "2024-07", "to": "2025-06", "months": 12}
    here = (wards_csv["WardCode"] == code).to_numpy()
    expected = _hand_by_type(wards_csv, here, _cols("2024-07", "2025-06"), _cols("2023-07", "2024-06"))
    _check_by_type(body["by_type"], expected)
    mine = wards_csv[here]
    monthly = {r["month"]: r["count"] for r in body["monthly"]}
    assert monthly == {f"{c[:4]}-{c[4:]}": int(mine[c].sum()) for c in _cols("2023-07", "2025-06")}
    three = body["comparisons"]["last_3_months_vs_year_earlier"]
    assert (three["count"], three["previous_count"]) == (int(mine[_cols("2025-04", "2025-06")].to_numpy().sum()),
                                                         int(mine[_cols("2024-04", "2024-06")].to_numpy().sum()))
    low, high = three["pct_change_ci"]
    assert low <= three["pct_change"] <= high
    rolling = body["comparisons"]["rolling_12_vs_previous_12"]
    assert (rolling["count"], rolling["previous_count"]) == expected["all-crime"][:2]
    assert body["mopac7"]["count"] == expected["mopac7"][0] and body["mopac7"]["approximate"] is False
    members = {m["id"]: m["count"] for m in body["mopac7"]["members"]}
    robbery = mine[mine["MajorText"] == "ROBBERY"][_cols("2024-07", "2025-06")].to_numpy().sum()
    assert members["robbery"] == int(robbery) and sum(members.values()) == body["mopac7"]["count"]
    # The ward file starts in 2023-07: no baseline for a target.
    target = body["targets"][0]
    assert target["available"] is False and "2012/13" in target["reason"]


def test_borough_target_against_the_historical_file(client):
    history = pd.read_csv(_need_shared(BOROUGH_HISTORY))
    recent = pd.read_csv(_need_shared(BOROUGH_CSV))
    baseline = int(history[history["BoroughName"] == "Camden"][_cols("2012-04", "2013-03")].to_numpy().sum())
    current = int(recent[recent["BoroughName"] == "Camden"][_cols("2024-07", "2025-06")].to_numpy().sum())
    body = _get(client, f"/api/v1/areas/borough/{CAMDEN}")
    target = next(t for t in body["targets"] if t["crime"] == "all-crime")
    assert target["available"] and target["baseline"] == "financial year 2012/13"
    assert (target["baseline_count"], target["count"]) == (baseline, current)
    assert target["pct_change"] == pytest.approx(_pct(current, baseline))
    assert target["target_count"] == pytest.approx(baseline * 0.8, abs=0.05)
    assert target["met"] == (current <= baseline * 0.8)


def test_neighbours_are_the_touching_boroughs(client):
    lad = gpd.read_file(_need_shared(LAD22))
    camden = lad[lad["LAD22CD"] == CAMDEN].geometry.iloc[0]
    touching = set(lad[lad.geometry.distance(camden) <= 1.0]["LAD22CD"]) - {CAMDEN}
    body = _get(client, f"/api/v1/areas/borough/{CAMDEN}?from=2025-01&to=2025-06")
    assert {n["code"] for n in body["neighbours"]} == touching
    assert {"E09000033", "E09000001"} <= touching  # Westminster, and the City (another force)
    city = next(n for n in body["neighbours"] if n["code"] == "E09000001")
    assert city["separate_force"] is True


def test_city_summary_counts_crimes_without_a_location(client):
    frames = [pd.read_csv(p, dtype=str) for p in sorted(_need_shared(CITY_FILES).glob("2024-*.csv"))]
    raw = pd.concat(frames)
    expected = int(raw["Longitude"].isna().sum())
    body = _get(client, "/api/v1/areas/borough/E09000001?from=2024-01&to=2024-12")
    assert body["area"]["force"] == "city-of-london" and body["source"] == "police.uk"
    assert body["no_location"]["force"] == "city-of-london" and body["no_location"]["count"] == expected > 0
    assert body["by_type_source"]["id"] == "police.uk"
    assert body["mopac7"]["approximate"] is True


def _html(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:400]
    return response.get_data(as_text=True)


def test_ward_page_sections_from_the_met_table(client, wards_csv):
    import re

    code = "E05013570"  # Heathrow Villages
    html = _html(client, f"/area/ward/{code}")
    mine = wards_csv[wards_csv["WardCode"] == code]
    trend = dict(re.findall(r'<tr data-month="(\d{4}-\d{2})"[^>]*><th scope="row">\1</th>\s*<td class="num">([^<]+)</td>',
                            html))
    assert trend == {f"{c[:4]}-{c[4:]}": f"{int(mine[c].sum()):,}" for c in _cols("2023-07", "2025-06")}
    now, before = int(mine[_cols("2025-04", "2025-06")].to_numpy().sum()), \
        int(mine[_cols("2024-04", "2024-06")].to_numpy().sum())
    three = html[html.index('id="three-months"'):]
    assert re.search(rf'<td class="num">{now:,}</td>\s*<td class="num">{before:,}</td><td class="num">'
                     rf'{re.escape(f"{_pct(now, before):+.0f}%")}</td>', three[:three.index("</table>")])
    assert "The baseline period is not loaded" in html  # the ward file starts in 2023-07
    assert "No police.uk street-level crimes with a location are loaded" in html  # Met tables have no points
    assert "listed in no area of this layer" in html  # the Met's force-level remainder, not a no-location count


def test_borough_page_target_from_the_historical_file(client):
    history = pd.read_csv(_need_shared(BOROUGH_HISTORY))
    recent = pd.read_csv(_need_shared(BOROUGH_CSV))
    baseline = int(history[history["BoroughName"] == "Camden"][_cols("2012-04", "2013-03")].to_numpy().sum())
    current = int(recent[recent["BoroughName"] == "Camden"][_cols("2024-07", "2025-06")].to_numpy().sum())
    html = _html(client, f"/area/borough/{CAMDEN}")
    target = html[html.index('id="target"'):]
    target = target[:target.index("</section>")]
    assert f"Baseline (2012-04 to 2013-03): <strong>{baseline:,}</strong>" in target
    assert f"at most <strong>{baseline * 0.8:,.0f}</strong>" in target
    assert f"<strong>{current:,}</strong>" in target
    assert ("On target." in target) == (current <= baseline * 0.8)
    printable = _html(client, f"/area/borough/{CAMDEN}?print=1")
    assert f"Baseline (2012-04 to 2013-03): <strong>{baseline:,}</strong>" in printable


def test_ward_page_mopac7_members_from_the_met_table(client, wards_csv):
    import re

    code = "E05013570"
    html = _html(client, f"/area/ward/{code}")
    table = html[html.index('id="mopac7-table"'):]
    table = table[:table.index("</table>")]
    mine = wards_csv[wards_csv["WardCode"] == code]
    now, before = _cols("2024-07", "2025-06"), _cols("2023-07", "2024-06")
    mopac = mine[[p in MOPAC7_MINORS or p[0] == "BURGLARY" for p in zip(mine["MajorText"], mine["MinorText"])]]
    rows = re.findall(r'<tr data-id="([^"]+)"><th scope="row">[^<]+</th><td class="num">([^<]+)</td>\s*'
                      r'<td class="num">([^<]+)</td>', table)
    assert len(rows) == 7
    total_now, total_before = int(mopac[now].to_numpy().sum()), int(mopac[before].to_numpy().sum())
    burglary = mopac[mopac["MajorText"] == "BURGLARY"]
    assert ("burglary", f"{int(burglary[now].to_numpy().sum()):,}", f"{int(burglary[before].to_numpy().sum()):,}") \
        in rows
    shown_now = sum(int(n.replace(",", "")) for _id, n, _b in rows)
    shown_before = sum(int(b.replace(",", "")) for _id, _n, b in rows)
    assert (shown_now, shown_before) == (total_now, total_before)
    assert re.search(rf"MOPAC 7 together</th><td class=\"num\">{total_now:,}</td>", table)
