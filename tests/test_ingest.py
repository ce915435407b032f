"""Ingest through the CLI on small hand-written files: replace semantics and bad input."""

import gzip
import json
import shutil

import pytest

DATA = "ingest"


@pytest.fixture
def loaded(runner, fixtures):
    """An instance with two square boroughs and one good month."""
    result = runner("boundaries", "load", "borough", fixtures / DATA / "two_boroughs.geojson")
    assert result.exit_code == 0, result.output
    result = runner("crimes", "ingest", fixtures / DATA / "month_2024_01.csv")
    assert result.exit_code == 0, result.output
    return runner


def _status(runner):
    result = runner("status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _counts(runner):
    from crimemap.store import open_store
    from tests.conftest import settings_for

    store = open_store(settings_for(runner.instance))
    layer = store.layer("borough")
    frame = store.point_counts(layer["id"])
    return {(r.code, r.month, r.category): r.n for r in frame.itertuples()}


def test_small_month_is_counted(loaded):
    status = _status(loaded)
    assert status["crimes"]["rows_read"] == 7
    assert status["crimes"]["no_location"] == 1
    assert status["crimes"]["outside"] == 1
    assert status["crimes"]["joined"] == 5
    counts = _counts(loaded)
    assert counts == {
        ("E09000033", "2024-01", "burglary"): 1,
        ("E09000033", "2024-01", "robbery"): 1,
        ("E09000033", "2024-01", "violent-crime"): 1,
        ("E09000022", "2024-01", "burglary"): 1,
        ("E09000022", "2024-01", "anti-social-behaviour"): 1,
    }


def test_reingest_same_month_changes_no_total(loaded, fixtures):
    before_status, before_counts = _status(loaded), _counts(loaded)
    result = loaded("crimes", "ingest", fixtures / DATA / "month_2024_01.csv")
    assert result.exit_code == 0, result.output
    after = _status(loaded)
    assert after["crimes"] == before_status["crimes"]
    assert _counts(loaded) == before_counts
    assert int(after["data_version"]) == int(before_status["data_version"]) + 1


def test_reingest_edited_copy_replaces_month(loaded, fixtures, tmp_path):
    lines = (fixtures / DATA / "month_2024_01.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    # Reclassified: the first burglary becomes criminal damage; the second robbery row is withdrawn.
    edited = [lines[0], lines[1].replace("Burglary", "Criminal damage and arson")] + lines[3:]
    copy = tmp_path / "2024-01-edited.csv"
    copy.write_text("".join(edited), encoding="utf-8")
    result = loaded("crimes", "ingest", copy)
    assert result.exit_code == 0, result.output
    counts = _counts(loaded)
    assert ("E09000033", "2024-01", "robbery") not in counts
    assert counts[("E09000033", "2024-01", "criminal-damage-arson")] == 1
    assert ("E09000033", "2024-01", "burglary") not in counts
    assert _status(loaded)["crimes"]["rows_read"] == 6


def test_a_new_month_adds_and_keeps_the_old(loaded, fixtures, tmp_path):
    text = (fixtures / DATA / "month_2024_01.csv").read_text(encoding="utf-8").replace("2024-01", "2024-02")
    (tmp_path / "feb.csv").write_text(text, encoding="utf-8")
    assert loaded("crimes", "ingest", tmp_path / "feb.csv").exit_code == 0
    status = _status(loaded)
    assert status["months"] == ["2024-01", "2024-02"]
    assert status["crimes"]["rows_read"] == 14


def test_layer_loaded_after_crimes_joins_them(runner, fixtures):
    assert runner("crimes", "ingest", fixtures / DATA / "month_2024_01.csv").exit_code == 0
    assert _status(runner)["crimes"]["outside"] is None  # nothing to join to yet
    assert runner("boundaries", "load", "borough", fixtures / DATA / "two_boroughs.geojson").exit_code == 0
    assert _status(runner)["crimes"]["joined"] == 5


HEADER = ("Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,"
          "Crime type,Last outcome category,Context\n")
ROW = "b{n},2024-03,Metropolitan Police Service,Metropolitan Police Service,{lon},{lat},On or near X,,,Burglary,,\n"


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def _good_row(n):
    return ROW.format(n=n, lon="-0.120969", lat="51.508369")


BAD_ROW_CASES = {
    "broken-row": HEADER + _good_row(1) + "b2,2024-03,only,three\n" + _good_row(3),
    "non-numeric": HEADER + _good_row(1) + ROW.format(n=2, lon="west", lat="51.5") + _good_row(3),
    "swapped": HEADER + _good_row(1) + ROW.format(n=2, lon="51.508369", lat="-0.120969") + _good_row(3),
}


@pytest.mark.parametrize("case", sorted(BAD_ROW_CASES))
def test_bad_rows_are_rejected_with_reasons_and_good_rows_kept(loaded, tmp_path, case):
    path = _write(tmp_path / f"{case}.csv", BAD_ROW_CASES[case])
    result = loaded("crimes", "ingest", path)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "rejected 1:" in result.output
    assert f"{path}:3:" in result.output  # the line number of the bad row is named
    status = _status(loaded)
    assert status["months"] == ["2024-01", "2024-03"]
    assert status["crimes"]["rows_read"] == 7 + 3
    assert status["crimes"]["rejected"] == 1


@pytest.mark.parametrize("name,text,encoding,note", [
    ("bom", "\ufeff" + HEADER + _good_row(1) + _good_row(2), "utf-8", None),
    ("crlf", (HEADER + _good_row(1) + _good_row(2)).replace("\n", "\r\n"), "utf-8", None),
    ("cp1252", HEADER + _good_row(1) + _good_row(2).replace("On or near X", "On or near Café £"), "cp1252",
     "1252"),
])
def test_encodings_and_line_endings_load(loaded, tmp_path, name, text, encoding, note):
    path = _write(tmp_path / f"{name}.csv", text, encoding)
    result = loaded("crimes", "ingest", path)
    assert result.exit_code == 0, result.output
    assert _status(loaded)["crimes"]["rows_read"] == 9
    if note:
        assert note in result.output


@pytest.mark.parametrize("name,content,message", [
    pytest.param(*case, id=case[0]) for case in [
    ("empty.csv", b"", "empty"),
    ("missing-column.csv", (HEADER.replace("Crime type,", "") + "x\n").encode(), "Crime type"),
    ("unknown.csv", b"animal,legs\ncat,4\n", "format"),
    ("binary.csv", bytes(range(256)) * 4, ""),
    ("truncated.jsonl.gz", gzip.compress(b'{"category": "burglary", "location": {}}\n' * 50)[:40], ""),
]])
def test_bad_files_fail_clearly_and_lose_nothing(loaded, tmp_path, name, content, message):
    before_status, before_counts = _status(loaded), _counts(loaded)
    path = tmp_path / name
    path.write_bytes(content)
    result = loaded("crimes", "ingest", path)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")
    assert message in result.output
    assert _status(loaded) == before_status
    assert _counts(loaded) == before_counts


def test_one_bad_file_among_good_ones_loads_none(loaded, fixtures, tmp_path):
    before = _status(loaded)
    good = tmp_path / "march.csv"
    good.write_text(HEADER + _good_row(1), encoding="utf-8")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = loaded("crimes", "ingest", good, empty)
    assert result.exit_code != 0
    assert _status(loaded) == before


def test_invalid_polygon_is_repaired_and_reported(runner, tmp_path):
    bowtie = {"type": "FeatureCollection",
              "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::27700"}},
              "features": [{"type": "Feature", "properties": {"LAD22CD": "E09000033", "LAD22NM": "Bow Tie"},
                            "geometry": {"type": "Polygon", "coordinates": [[
                                [530000, 180000], [531000, 181000], [531000, 180000], [530000, 181000],
                                [530000, 180000]]]}}]}
    path = tmp_path / "bowtie.geojson"
    path.write_text(json.dumps(bowtie), encoding="utf-8")
    result = runner("boundaries", "load", "borough", path)
    assert result.exit_code == 0, result.output
    assert "repaired E09000033 Bow Tie" in result.output
    assert "Self-intersection" in result.output


def test_unreadable_boundary_file_fails_clearly(loaded, tmp_path):
    before = _status(loaded)
    path = tmp_path / "broken.shp"
    path.write_bytes(b"not a shapefile at all")
    result = loaded("boundaries", "load", "ward", path)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")
    assert _status(loaded) == before


def test_status_of_empty_instance(runner):
    status = _status(runner)
    assert status["data_version"] == "0"
    assert status["layers"] == [] and status["sources"] == []
    text = runner("status")
    assert "none loaded" in text.output


def test_store_keeps_a_layer_after_its_source_file_is_gone(loaded, fixtures, tmp_path):
    # A loaded file can be deleted afterwards: the store holds the data.
    copy = tmp_path / "copy.geojson"
    shutil.copy(fixtures / DATA / "two_boroughs.geojson", copy)
    assert loaded("boundaries", "load", "borough", copy, "--vintage", "2023").exit_code == 0
    copy.unlink()
    assert [lay["vintage"] for lay in _status(loaded)["layers"]] == ["2022", "2023"]


def test_a_table_without_geometry_is_refused_as_boundaries(loaded, tmp_path):
    before = _status(loaded)
    path = tmp_path / "wards.csv"
    path.write_text("code,name\nE05000001,Somewhere\n", encoding="utf-8")
    result = loaded("boundaries", "load", "ward", path)
    assert result.exit_code == 1
    assert "has no geometry" in result.output
    assert "unexpected" not in result.output
    assert _status(loaded) == before


def test_area_population_table_applies_directly_without_a_misleading_total(loaded, tmp_path):
    path = tmp_path / "boroughs-2021.csv"
    # A borough table that also carries a London row, as GLA tables do.
    path.write_text("code,population,year\nE09000033,1000,2021\nE09000022,3000,2021\nE12000007,4000,2021\n",
                    encoding="utf-8")
    result = loaded("population", "load", path)
    assert result.exit_code == 0, result.output
    assert "residents" not in result.output.splitlines()[0]
    assert "borough 2022: direct by area code" in result.output
    from crimemap.store import open_store
    from tests.conftest import settings_for

    store = open_store(settings_for(loaded.instance))
    frame = store.population(store.layer("borough")["id"])
    assert dict(zip(frame["code"], frame["persons"])) == {"E09000033": 1000, "E09000022": 3000}


def test_locations_are_joined_in_chunks_with_the_same_result(fixtures, tmp_path):
    """join_locations reads unjoined locations INGEST_CHUNK_ROWS at a time; a tiny chunk changes nothing."""
    from crimemap.ingest import ingest_crimes, load_boundaries
    from crimemap.store import open_store
    from tests.conftest import settings_for

    joined = {}
    for chunk in (2, 200_000):
        settings = settings_for(tmp_path / f"chunk{chunk}", INGEST_CHUNK_ROWS=chunk)
        store = open_store(settings)
        # Crimes first, then the layer: the layer's load joins every stored location.
        ingest_crimes(store, [fixtures / DATA / "month_2024_01.csv"], settings=settings)
        load_boundaries(store, fixtures / DATA / "two_boroughs.geojson", "borough", settings=settings)
        layer = store.layer("borough")
        frame = store.locations_of_layer(layer["id"])
        joined[chunk] = sorted(zip(frame["x"].round(3), frame["y"].round(3), frame["code"].fillna("-")))
    assert len(joined[2]) >= 3  # more locations than one chunk of 2
    assert len({code for _, _, code in joined[2]} - {"-"}) == 2  # both boroughs got locations
    assert joined[2] == joined[200_000]
