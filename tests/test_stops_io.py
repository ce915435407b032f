"""Stop and search readers and groupings, on hand-written fixtures (tests/data/stops)."""

import gzip

import pandas as pd
import pytest

from crimemap.errors import BadInput
from crimemap.io.crimes import Rejects
from crimemap.stops import ethnicity
from crimemap.stops.groups import object_group, outcome_group
from crimemap.stops.io import force_from_name, read_stops


@pytest.fixture
def stops_dir(fixtures):
    return fixtures / "stops"


def test_csv_fixture_rows_kept_and_rejected_with_reasons(stops_dir):
    rejects = Rejects()
    frame = read_stops(stops_dir / "2016-06-metropolitan-stop-and-search.csv", rejects=rejects)
    assert len(frame) == 5
    assert rejects.by_reason == {"bad Date": 1, "half a location": 1, "unknown Type": 1,
                                 "wrong number of fields": 1, "non-numeric coordinates": 1}
    assert sorted(line for line, _ in rejects.examples) == [5, 6, 7, 8, 9]
    assert frame["lon"].isna().sum() == 1  # the row with no coordinates is kept
    assert frame.attrs["force"] == "metropolitan"
    # 23:30 UTC on 31 May is 00:30 BST on 1 June; 22:59 UTC on 30 June is still June in London.
    assert frame["month"].tolist() == ["2016-06"] * 5
    assert frame["datetime"].iloc[0] == "2016-05-31T23:30:00Z"
    assert frame["type"].tolist() == ["person", "person", "vehicle", "person-and-vehicle", "person"]
    last = frame.iloc[-1]
    assert last[["operation", "outcome_linked", "removal_of_clothing"]].tolist() == [True, True, False]
    assert last["operation_name"] == "Operation Example"
    assert frame["outcome_linked"].iloc[0] is None  # empty in the file: unknown, not False


def test_gzipped_csv_reads_the_same(stops_dir, tmp_path):
    plain = stops_dir / "2016-06-metropolitan-stop-and-search.csv"
    packed = tmp_path / "2016-06-metropolitan-stop-and-search.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    pd.testing.assert_frame_equal(read_stops(plain), read_stops(packed))


def test_reduced_columns_with_index_column(tmp_path):
    path = tmp_path / "2018-metropolitan-stop-and-search_reduced-columns.csv"
    path.write_text(",Type,Date,Part of a policing operation,Policing operation,Latitude,Longitude,Legislation,"
                    "Object of search,Outcome,Outcome linked to object of search\n"
                    "0,Person search,2018-01-01T00:05:00+00:00,False,,51.425491,-0.220473,Misuse of Drugs Act 1971 "
                    "(section 23),Controlled drugs,Khat or Cannabis warning,\n", encoding="utf-8")
    rejects = Rejects()
    frame = read_stops(path, rejects=rejects)
    assert len(frame) == 1 and frame["officer_defined_ethnicity"].isna().all()
    assert "officer_defined_ethnicity" not in frame.attrs["fields"]
    assert any("ignored column" in note for note in rejects.notes)


def test_stops_street_json(stops_dir):
    rejects = Rejects()
    frame = read_stops(stops_dir / "stops_street.json", rejects=rejects)
    assert frame.attrs["format"] == "police-uk-stops-json"
    assert len(frame) == 4
    assert rejects.by_reason == {"not a JSON object": 1, "bad Date": 1}
    assert frame["street"].iloc[0] == "On or near Brixton Road"
    # 23:10 UTC on 30 June is 00:10 BST on 1 July.
    assert frame["month"].tolist() == ["2016-06", "2016-06", "2016-06", "2016-07"]
    # An early API answer: "outcome": false, the name in outcome_object.
    assert frame["outcome"].iloc[2] == "Arrest"
    assert frame["lat"].iloc[0] == pytest.approx(51.4622)


def test_stops_force_json_has_no_locations(stops_dir):
    frame = read_stops(stops_dir / "stops_force.json")
    assert len(frame) == 2 and frame["lon"].isna().all()


def test_json_lines(stops_dir, tmp_path):
    import json

    records = json.loads((stops_dir / "stops_force.json").read_text())
    path = tmp_path / "stops.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n{broken\n")
    rejects = Rejects()
    frame = read_stops(path, rejects=rejects)
    assert len(frame) == 2 and rejects.by_reason == {"invalid JSON": 1}


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"PK\x03\x04rest", "ZIP"),
    (b"Type,Date,Gender\nPerson search,2016-06-01T10:00:00+00:00,Male\n", "missing column"),
    (b"[{\"type\": ", "not valid JSON"),
])
def test_unreadable_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=message):
        read_stops(path)


def test_force_from_file_name():
    assert force_from_name("2016-06-metropolitan-stop-and-search.csv") == "metropolitan"
    assert force_from_name("2018-metropolitan-stop-and-search_reduced-columns.csv.gz") == "metropolitan"
    assert force_from_name("2024-01-city-of-london-stop-and-search.csv") == "city-of-london"
    assert force_from_name("stops.json") is None


@pytest.mark.parametrize("value, group", [
    ("Black or Black British - African (B2)", "black"),
    ("White - Any other White ethnic background (W9)", "white"),
    ("Mixed - White and Black Caribbean (M1)", "other"),
    ("Chinese or other ethnic group - Chinese (O1)", "asian"),
    ("Chinese or other ethnic group - Any other ethnic group (O9)", "other"),
    ("Not Stated (NS)", None),
    ("Asian/Asian British - Chinese", "asian"),
    ("Black/African/Caribbean/Black British - Any other Black/African/Caribbean background", "black"),
    ("Other ethnic group - Not stated", None),
    ("Other ethnic group - Arab", "other"),
    (None, None),
])
def test_self_defined_groups(value, group):
    assert ethnicity.self_group(value) == group


def test_officer_defined_groups():
    assert [ethnicity.officer_group(v) for v in ("White", "Black", "Asian", "Other", None, "")] == \
        ["white", "black", "asian", "other", None, None]


def test_census_mapping_covers_18_categories_once():
    categories = ethnicity.census_categories()
    assert len(categories) == 18
    assert {c["group"] for c in categories.values()} == {"white", "black", "asian", "other"}
    assert [c for c, info in categories.items() if info["group"] == "black"] == ["B1", "B2", "B3"]


def test_object_and_outcome_groups():
    assert object_group("Offensive weapons") == "weapons"
    assert object_group("Anything to threaten or harm anyone") == "weapons"
    assert object_group("Stolen goods") == "key-crimes"
    assert object_group("controlled  drugs") == "drugs"
    assert object_group("Fireworks") == "other"
    assert object_group(None) == "not-recorded"
    assert outcome_group("Suspect arrested") == outcome_group("Arrest") == "arrest"
    assert outcome_group("Nothing found - no further action") == "no-further-action"
    assert outcome_group("Penalty Notice for Disorder") == "other-action"
    assert outcome_group("") == "not-recorded"
