"""Crime rows for the police.uk-compatible API: location ids read in chunks give the rows one query would.

The expected rows are selected and ordered here with pandas from the plain
``crimes`` table (police.uk's order: by ``api_id``, crimes without one
first, then by the stored order ``id``), not by crimemap's own queries.
"""

import pytest

from crimemap.store import crime_rows

MONTH = "2018-04"
BOX = (-0.16, 51.49, -0.12, 51.51)  # Westminster, which the partial API files cover


@pytest.fixture(scope="module")
def located(api_2018):
    store = api_2018.store
    ids, _lon, _lat = crime_rows.locations_in_box(store, *BOX)
    crimes = store.read_frame("SELECT id, api_id, location_id FROM crimes WHERE month = ?", (MONTH,),
                              ["id", "api_id", "location_id"])
    mine = crimes[crimes["location_id"].isin(set(ids.tolist()))].copy()
    mine["has_api_id"] = mine["api_id"].notna()
    mine["api_sort"] = mine["api_id"].fillna(0)
    expected = mine.sort_values(["has_api_id", "api_sort", "id"])["id"].astype(int).tolist()
    return store, ids.tolist(), expected, set(mine["location_id"].astype(int))


@pytest.mark.parametrize("per_query", [10000, 97])
def test_crimes_at_locations_in_chunks(located, monkeypatch, per_query):
    store, ids, expected, _ = located
    assert len(ids) > 3 * 97 and len(expected) > 100  # several chunks, and enough crimes to cut
    monkeypatch.setattr(crime_rows, "_IDS_PER_QUERY", per_query)
    rows = crime_rows.crimes_at_locations(store, ids, MONTH)
    assert [r["id"] for r in rows] == expected
    assert all(r["month"] == MONTH for r in rows)
    limited = crime_rows.crimes_at_locations(store, ids, MONTH, limit=100)
    assert [r["id"] for r in limited] == expected[:100]


@pytest.mark.parametrize("per_query", [10000, 97])
def test_locations_with_crimes_in_chunks(located, monkeypatch, per_query):
    store, ids, _, with_crimes = located
    monkeypatch.setattr(crime_rows, "_IDS_PER_QUERY", per_query)
    assert crime_rows.locations_with_crimes(store, ids, MONTH) == with_crimes
    assert crime_rows.crimes_at_locations(store, [], MONTH) == []
