"""Which source answers: the Met's count tables or police.uk points, per force and period.

The hand-written city of test_figures.py, plus a Met ward-level count file for
its three Met wards over January and February 2024. Every expectation is
counted by hand from the rows below.
"""

import pytest

from crimemap import figures
from crimemap.store import open_store
from tests.test_figures import build_city

MET_ROWS = [
    ("BURGLARY", "BURGLARY - RESIDENTIAL", "E05900001", {"2024-01": 2, "2024-02": 1}),
    ("ROBBERY", "ROBBERY OF PERSONAL PROPERTY", "E05900002", {"2024-01": 3}),
    ("ROBBERY", "ROBBERY OF BUSINESS PROPERTY", "E05900003", {"2024-02": 1}),
    ("THEFT", "SHOPLIFTING", "E05900003", {"2024-02": 4}),
    ("VEHICLE OFFENCES", "INTERFERING WITH A MOTOR VEHICLE", "E05900003", {"2024-01": 1}),
    ("ARSON AND CRIMINAL DAMAGE", "ARSON", "E05900001", {"2024-02": 2}),
    ("ARSON AND CRIMINAL DAMAGE", "CRIMINAL DAMAGE", "E05900001", {"2024-01": 1}),
]
BOTH = ["2024-01", "2024-02"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return open_store(build_city(tmp_path_factory.mktemp("sources"), met_rows=MET_ROWS), readonly=True)


def _by_code(frame, column):
    return dict(zip(frame["code"], frame[column]))


def test_met_counts_answer_all_crime_when_they_cover_the_period(store):
    result = figures.area_figures(store, "ward", BOTH, with_geometry=False)
    assert result.attrs["source"] == "mps-ward"
    # Met wards from the count file; E05900002 has no row in February, yet the
    # file lists it, so February is zero there, not missing.
    assert _by_code(result, "count") == {"E05900001": 6, "E05900002": 3, "E05900003": 6, "E05900004": 6}
    assert _by_code(result, "months_with_data")["E05900002"] == 2
    # The City is its own force: never Met figures, its own police.uk points.
    assert _by_code(result, "source") == {"E05900001": "mps-ward", "E05900002": "mps-ward",
                                         "E05900003": "mps-ward", "E05900004": "police.uk"}
    assert result.attrs["sources"]["city-of-london"]["id"] == "police.uk"
    assert result.attrs["london"]["count"] == 15


def test_met_types_and_exact_mopac7(store):
    burglary = figures.area_figures(store, "ward", BOTH, "met-burglary", with_geometry=False)
    assert _by_code(burglary, "count") == {"E05900001": 3, "E05900002": 0, "E05900003": 0, "E05900004": None}
    robbery = figures.area_figures(store, "ward", BOTH, "met-robbery.robbery-of-personal-property",
                                   with_geometry=False)
    assert _by_code(robbery, "count")["E05900002"] == 3 and _by_code(robbery, "count")["E05900003"] == 0
    # MOPAC 7 from the Met table: burglary, both robberies, criminal damage (not arson,
    # not shoplifting, not interfering with a vehicle).
    mopac = figures.area_figures(store, "ward", BOTH, "mopac7", with_geometry=False)
    assert _by_code(mopac, "count") == {"E05900001": 4, "E05900002": 3, "E05900003": 1, "E05900004": 6}
    assert mopac.attrs["source"] == "mps-ward" and not mopac.attrs["approximate"]


def test_police_uk_categories_always_come_from_points(store):
    result = figures.area_figures(store, "ward", BOTH, "burglary", with_geometry=False)
    assert result.attrs["source"] == "police.uk"
    assert _by_code(result, "count")["E05900001"] == 3


def test_a_period_the_met_table_does_not_cover(store):
    # March: neither source has it; January to March: both cover two months, the Met wins the tie.
    march = figures.area_figures(store, "ward", ["2024-03"], with_geometry=False)
    assert set(_by_code(march, "count").values()) == {None}
    three = figures.area_figures(store, "ward", ["2024-01", "2024-02", "2024-03"], with_geometry=False)
    assert three.attrs["source"] == "mps-ward"
    assert _by_code(three, "months_with_data")["E05900001"] == 2


def test_borough_level_without_a_borough_table_uses_points(store):
    # The test boroughs' names are not London boroughs, so the ward rows carry no
    # borough code and cannot be summed to boroughs: points answer.
    result = figures.area_figures(store, "borough", BOTH, with_geometry=False)
    assert result.attrs["source"] == "police.uk"


def test_by_type_lists_met_majors_with_their_minors(store):
    rows = figures.area_by_type(store, "ward", "E05900001", ["2024-02"])
    assert rows.attrs["source"]["id"] == "mps-ward"
    by = {row["crime"]: row for row in rows.to_dict("records")}
    assert (by["met-burglary"]["count"], by["met-burglary"]["previous_count"]) == (1, 2)
    assert by["met-burglary"]["pct_change"] == pytest.approx(-50.0)
    assert (by["met-arson-and-criminal-damage.arson"]["count"],
            by["met-arson-and-criminal-damage.arson"]["previous_count"]) == (2, 0)
    assert by["met-arson-and-criminal-damage.arson"]["pct_change"] is None
    order = list(rows["crime"])
    assert order.index("met-arson-and-criminal-damage") < order.index("met-arson-and-criminal-damage.arson")
    assert order[-2:] == ["all-crime", "mopac7"]
    # London: the three Met wards. February 1+2+1+4 = 8 against January 2+3+1+1 = 7.
    assert (by["all-crime"]["london_count"], by["all-crime"]["london_previous_count"]) == (8, 7)
    assert by["all-crime"]["london_pct_change"] == pytest.approx(100 / 7)
    # Small counts carry the caveat.
    assert by["met-burglary"]["small_count"] and "could be chance" in by["met-burglary"]["caveat"]


def test_threads_share_the_month_cache(store, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    import crimemap.figures.sources as sources

    monkeypatch.setattr(sources, "_MONTHS_CACHED", 1)  # evict all the time
    periods = [BOTH, ["2024-01"], ["2024-02"]]
    expected = [figures.area_figures(store, "ward", p, "met-burglary", with_geometry=False).attrs["london"]["count"]
                for p in periods]

    def run(i):
        return figures.area_figures(store, "ward", periods[i % 3], "met-burglary",
                                    with_geometry=False).attrs["london"]["count"]

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(run, range(30))) == [expected[i % 3] for i in range(30)]
    assert expected == [3, 2, 1]


def test_met_months_read_packed_equal_the_stored_rows(tmp_path):
    import crimemap.figures.sources as sources

    settings = build_city(tmp_path, met_rows=MET_ROWS)
    writable = open_store(settings)
    with writable.writer() as writer:
        # A type text holding the packed read's separator: its month must be read row by row.
        writer.execute(
            "INSERT INTO area_counts SELECT batch_id, level, code, name, borough_code, borough_name, 'THEFT', "
            "'ODD' || ? || 'TYPE', month, 5 FROM area_counts WHERE level = 'ward' AND month = '2024-01' "
            "LIMIT 1", ("\x1f",))
        writer.changed = True
    store = open_store(settings, readonly=True)
    packed = sources._packed_months(store, "ward", BOTH)
    assert set(packed) == {"2024-02"}
    months = BOTH + ["2023-12"]  # and a month with no rows at all
    got = sources._met_table(store, "ward", months)
    rows = store.area_counts("ward", months=months)
    expected = sorted(zip(rows["code"], rows["borough_code"].fillna(""), rows["major"], rows["minor"], rows["month"],
                          rows["n"].astype(int)))
    assert sorted(zip(*(got[c].astype(object) for c in ["code", "borough_code", "major", "minor", "month"]),
                      got["n"].astype(int))) == expected
    assert any(e[3] == "ODD\x1fTYPE" for e in expected)  # the odd row is kept whole
    assert got["n"].dtype == "int64" and len(got) == len(rows) > 0
