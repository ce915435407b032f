"""Stop and search ingest into the store: placement, replacement, atomicity, the CLI (fixtures + lad22 boroughs)."""

import json

import pytest

from crimemap.errors import BadInput
from crimemap.ingest import load_boundaries
from crimemap.store import open_store
from crimemap.store import stops as st
from crimemap.stops import figures as sf
from crimemap.stops.ingest import ingest_stops, load_census
from tests.conftest import settings_for

LAMBETH, WESTMINSTER = "E09000022", "E09000033"


@pytest.fixture
def loaded(instance, need_shared, fixtures):
    settings = settings_for(instance)
    store = open_store(settings)
    load_boundaries(store, need_shared("boundaries/london-2021-lad22-gen20.shp"), "borough", settings=settings)
    load_census(store, need_shared("population/census2011_ethnic_group_by_local_authority_EW.csv"))
    return store, settings, fixtures / "stops"


def _counts(store):
    figures = sf.borough_figures(store, ["2016-06"], with_geometry=False)
    return {c: n for c, n in zip(figures["code"], figures["count"]) if n}, figures.attrs


def test_csv_fixture_placed_in_boroughs_and_counted(loaded):
    store, settings, folder = loaded
    report = ingest_stops(store, [folder / "2016-06-metropolitan-stop-and-search.csv"], settings=settings)
    s = report["summary"]
    assert (s["rows_read"], s["stored"], s["no_location"], s["outside"], s["in_a_borough"], s["rejected"]) == \
        (10, 5, 1, 1, 3, 5)
    counts, attrs = _counts(store)
    assert counts == {LAMBETH: 2, WESTMINSTER: 1}
    assert (attrs["no_location"], attrs["outside"]) == (1, 1)
    batch = st.stop_batches(store).iloc[0]
    assert (batch["feed"], batch["month"], batch["rows_read"], batch["rejected"]) == \
        ("police.uk-stops:metropolitan", "2016-06", 10, 5)


def test_reloading_a_month_replaces_it(loaded):
    store, settings, folder = loaded
    path = folder / "2016-06-metropolitan-stop-and-search.csv"
    ingest_stops(store, [path], settings=settings)
    version = store.data_version()
    ingest_stops(store, [path], settings=settings)
    assert _counts(store)[0] == {LAMBETH: 2, WESTMINSTER: 1}
    assert int(store.data_version()) == int(version) + 1


def test_csv_wins_over_api_json_for_the_same_month(loaded):
    store, settings, folder = loaded
    ingest_stops(store, [folder / "stops_street.json", folder / "stops_force.json"], settings=settings)
    counts, attrs = _counts(store)
    assert counts == {LAMBETH: 2, WESTMINSTER: 1} and attrs["no_location"] == 2
    assert sf.borough_figures(store, ["2016-07"], with_geometry=False).set_index("code")["count"][LAMBETH] == 1
    ingest_stops(store, [folder / "2016-06-metropolitan-stop-and-search.csv"], settings=settings)
    counts, attrs = _counts(store)
    assert counts == {LAMBETH: 2, WESTMINSTER: 1} and attrs["no_location"] == 1  # the CSV's, not both
    assert set(st.stop_batches(store)["feed"]) == {"police.uk-stops:metropolitan", "police.uk-api-stops"}


def test_a_failed_ingest_changes_nothing(loaded):
    store, settings, folder = loaded
    ingest_stops(store, [folder / "2016-06-metropolitan-stop-and-search.csv"], settings=settings)
    before, version = _counts(store), store.data_version()
    with pytest.raises(BadInput, match="missing column"):
        ingest_stops(store, [folder / "stops_street.json", folder / "missing_columns.csv"], settings=settings)
    assert _counts(store) == before and store.data_version() == version


def test_a_failure_inside_the_write_rolls_back(loaded, monkeypatch):
    store, settings, folder = loaded
    ingest_stops(store, [folder / "2016-06-metropolitan-stop-and-search.csv"], settings=settings)
    before, version = _counts(store), store.data_version()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    # The join runs after the stops are written inside the transaction; failing it must undo them.
    monkeypatch.setattr("crimemap.ingest.join_locations", boom)
    with pytest.raises(RuntimeError):
        ingest_stops(store, [folder / "stops_street.json"], settings=settings)
    assert _counts(store) == before and store.data_version() == version
    assert list(st.stop_batches(store)["feed"]) == ["police.uk-stops:metropolitan"]


def test_stops_loaded_before_boundaries_are_joined_when_they_arrive(instance, need_shared, fixtures):
    settings = settings_for(instance)
    store = open_store(settings)
    report = ingest_stops(store, [fixtures / "stops" / "2016-06-metropolitan-stop-and-search.csv"], settings=settings)
    assert report["summary"]["outside"] is None
    load_boundaries(store, need_shared("boundaries/london-2021-lad22-gen20.shp"), "borough", settings=settings)
    assert _counts(store)[0] == {LAMBETH: 2, WESTMINSTER: 1}


def test_cli(runner, need_shared, fixtures):
    assert runner("boundaries", "load", "borough", need_shared("boundaries/london-2021-lad22-gen20.shp")).exit_code == 0
    result = runner("stops", "population", need_shared("population/census2011_ethnic_group_by_local_authority_EW.csv"))
    assert result.exit_code == 0 and "33 London boroughs with 8,173,941 residents" in result.output
    result = runner("stops", "ingest", fixtures / "stops" / "2016-06-metropolitan-stop-and-search.csv")
    assert result.exit_code == 0, result.output
    assert "without a location 1 (kept and counted)" in result.output
    assert "rejected 5" in result.output and ":5: bad Date" in result.output
    assert "Traceback" not in result.output
    result = runner("stops", "ingest", fixtures / "stops" / "missing_columns.csv")
    assert result.exit_code != 0 and "missing column(s) Latitude, Longitude" in result.output
    assert "Traceback" not in result.output
    doc = json.loads(runner("stops", "status", "--json").output)
    assert doc["months"] == ["2016-06"] and doc["no_location"] == 1 and doc["census_areas"] == 348
    # The main status sums the same batches up in one line.
    summary = json.loads(runner("status", "--json").output)["stops"]
    assert summary["months"] == doc["months"] and summary["searches"] == doc["searches"]
    assert summary["no_location"] == 1 and summary["taser_deployments"] == 0
    text = runner("status").output
    assert f"Stop and search: 2016-06 to 2016-06 (1 months): {doc['searches']:,} searches, 1 without a location" in text


@pytest.mark.parametrize("with_boundaries", [False, True])
def test_nothing_loaded_answers_clearly_never_500(instance, need_shared, with_boundaries):
    from crimemap.web import create_app

    settings = settings_for(instance)
    if with_boundaries:
        load_boundaries(open_store(settings), need_shared("boundaries/london-2021-lad22-gen20.shp"), "borough",
                        settings=settings)
    client = create_app({"INSTANCE": str(instance), "TESTING": False}).test_client()
    for url in ("/stops", "/stops/borough/E09000022", "/taser", "/api/v1/stops/choropleth",
                "/api/v1/stops/choropleth?format=csv", "/api/v1/stops/areas/borough/E09000022",
                "/api/v1/stops/status", "/api/v1/taser/forces", "/api/v1/taser/forces/metropolitan",
                "/api/v1/taser/boroughs"):
        response = client.get(url)
        assert response.status_code in (200, 404), (url, response.status_code)
        if url.startswith("/api") and response.status_code == 404:
            assert set(response.get_json()) == {"status", "error"}
    choropleth = client.get("/api/v1/stops/choropleth?geometry=none")
    if with_boundaries:
        assert all(f["properties"]["no_data"] and f["properties"]["count"] is None
                   for f in choropleth.get_json()["features"])  # no data, not zero
    else:
        assert "no borough boundaries" in choropleth.get_json()["error"]


def test_police_force_option_names_the_feed_of_an_unnamed_file(runner, fixtures, tmp_path):
    renamed = tmp_path / "june.csv"
    renamed.write_bytes((fixtures / "stops" / "2016-06-metropolitan-stop-and-search.csv").read_bytes())
    assert runner("stops", "ingest", renamed).exit_code == 0
    assert runner("stops", "ingest", "--police-force", "metropolitan", renamed).exit_code == 0
    feeds = json.loads(runner("stops", "status", "--json").output)["feeds"]
    assert feeds == ["police.uk-stops:metropolitan", "police.uk-stops:unknown"]
