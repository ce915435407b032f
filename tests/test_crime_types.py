"""Crime type ids: the three families never collide, every Met type in the real files is declared,
MOPAC 7 is exactly the minor types it should be, and /api/v1/crime-types lists them."""

import json
import re

import pandas as pd
import pytest

from crimemap import crimetypes
from crimemap.crimetypes import ALL_CRIME, MOPAC7, build_registry, met_major_id, met_minor_id, registry, slug
from crimemap.web import create_app

SCHEMAS = crimetypes.SCHEMAS
MET_FILES = {
    # path under shared/data: (major column, minor column)
    "crime/mps_ward_level/MPS_Ward_Level_Crime_2023-07_to_2025-06.csv": ("MajorText", "MinorText"),
    "crime/mps_ward_level/MPS_Ward_Level_Crime_Historical_2010-04_to_2024-02.csv.gz": ("MajorText", "MinorText"),
    "crime/mps_borough_level/MPS_Borough_Level_Crime_2024-03_to_2025-06.csv": ("MajorText", "MinorText"),
    "crime/mps_borough_level/MPS_Borough_Level_Crime_Historical_2010-04_to_2024-02.csv": ("MajorText", "MinorText"),
    "crime/mps_lsoa_level/MPS_LSOA_Level_Crime_2024-02_to_2025-06.csv.gz": ("Major Category", "Minor Category"),
}
# MOPAC 7, written out here from its definition (violence with injury, robbery,
# burglary, theft from the person, theft/taking of a motor vehicle, theft from
# a motor vehicle, criminal damage) in the Met's own words.
MOPAC7_MINORS = {
    ("VIOLENCE AGAINST THE PERSON", "VIOLENCE WITH INJURY"),
    ("ROBBERY", "ROBBERY OF PERSONAL PROPERTY"),
    ("ROBBERY", "ROBBERY OF BUSINESS PROPERTY"),
    ("THEFT", "THEFT FROM THE PERSON"),
    ("VEHICLE OFFENCES", "THEFT OR UNAUTH TAKING OF A MOTOR VEH"),
    ("VEHICLE OFFENCES", "THEFT FROM A VEHICLE"),
    ("ARSON AND CRIMINAL DAMAGE", "CRIMINAL DAMAGE"),
}


def _schema(name):
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def test_ids_are_url_safe_unique_and_families_cannot_collide():
    reg = registry()
    ids = reg.ids()
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)?", i) for i in ids)
    assert ids[:2] == [ALL_CRIME, MOPAC7]
    police = [t.id for t in reg if t.kind == "police.uk"]
    met = [t.id for t in reg if t.kind.startswith("met-")]
    assert {"burglary", "violent-crime", "anti-social-behaviour"} <= set(police)
    assert not any(p.startswith("met-") or "." in p for p in police)
    assert all(m.startswith("met-") for m in met)
    assert all(t.id.count(".") == 1 and t.group == t.id.split(".")[0] for t in reg if t.kind == "met-minor")


def test_declared_met_ids_follow_the_rule():
    for major in _schema("crime_types.json")["met"]:
        assert major["id"] == "met-" + re.sub(r"[^a-z0-9]+", "-", major["major"].lower()).strip("-")
        for minor in major["minors"]:
            expected = major["id"] + "." + re.sub(r"[^a-z0-9]+", "-", minor["minor"].lower()).strip("-")
            assert minor["id"] == expected
    assert met_minor_id("BURGLARY", "BURGLARY - RESIDENTIAL") == "met-burglary.burglary-residential"
    assert slug("THEFT & HANDLING") == slug("Theft and handling") == "theft-and-handling"


def test_a_schema_that_breaks_the_rules_is_refused():
    police = _schema("police_uk_categories.json")["categories"]
    declared = _schema("crime_types.json")
    with pytest.raises(ValueError, match="collides"):
        build_registry(police + [{"slug": "met-burglary", "label": "x"}], declared)
    bad = json.loads(json.dumps(declared))
    bad["met"][0]["minors"][0]["id"] = "met-arson-and-criminal-damage.arson-x"
    with pytest.raises(ValueError, match="is not the id of"):
        build_registry(police, bad)
    with pytest.raises(ValueError, match="declared twice"):
        build_registry(police + [police[0]], declared)


def test_types_found_in_data_get_ids_by_the_same_rule():
    reg = registry().with_loaded(["new-category", "met-sneaky", "a.b"], [("NEW MAJOR", "Some Minor")])
    assert reg.get("new-category").kind == "police.uk"
    assert "met-sneaky" not in reg and "a.b" not in reg  # would pose as another family
    minor = reg.get("met-new-major.some-minor")
    assert minor.group == "met-new-major" and minor.matches_met("new  major", "SOME MINOR")
    order = reg.ids()
    assert order.index("met-new-major") < order.index("met-new-major.some-minor")


def test_every_met_type_in_the_real_files_is_declared(need_shared):
    declared = registry()
    for path, (major_col, minor_col) in MET_FILES.items():
        frame = pd.read_csv(need_shared(path), usecols=[major_col, minor_col], dtype=str)
        for major, minor in set(zip(frame[major_col], frame[minor_col])):
            assert met_major_id(major) in declared, (path, major)
            assert met_minor_id(major, minor) in declared, (path, major, minor)
            assert declared.get(met_minor_id(major, minor)).declared


def test_mopac7_is_exactly_the_seven_in_the_met_files(need_shared):
    mopac = registry().get(MOPAC7)
    for path, (major_col, minor_col) in MET_FILES.items():
        frame = pd.read_csv(need_shared(path), usecols=[major_col, minor_col], dtype=str)
        for major, minor in set(zip(frame[major_col], frame[minor_col])):
            expected = (major, minor) in MOPAC7_MINORS or major == "BURGLARY"
            assert mopac.matches_met(major, minor) == expected, (major, minor)
    # For point data, the documented approximation.
    assert set(mopac.police_uk) == {"violent-crime", "robbery", "burglary", "theft-from-the-person",
                                    "vehicle-crime", "criminal-damage-arson"}


def test_crime_types_route_on_an_empty_instance(tmp_path):
    client = create_app({"INSTANCE": str(tmp_path), "TESTING": True}).test_client()
    response = client.get("/api/v1/crime-types")
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    by_id = {t["id"]: t for t in body["crime_types"]}
    assert by_id["all-crime"]["kind"] == "total" and by_id["mopac7"]["kind"] == "group"
    assert by_id["burglary"]["loaded"] is False and by_id["burglary"]["sources"] == []
    assert by_id["met-burglary.burglary-residential"]["group"] == "met-burglary"
    assert "public-disorder-weapons" not in by_id  # historic, and no data holds it
    members = {m["id"]: m for m in body["mopac7"]["members"]}
    assert members["robbery"]["met"] == ["met-robbery.robbery-of-personal-property",
                                         "met-robbery.robbery-of-business-property"]
    assert members["burglary"]["met"] == ["met-burglary"]
    assert body["data_version"] == "0" and body["sources"] == []
