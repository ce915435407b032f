"""Taser: the Home Office force-by-year file (against its own totals) and the deployments-versus-subjects rule."""

import pandas as pd
import pytest

from crimemap.errors import BadInput
from crimemap.io.crimes import Rejects
from crimemap.store import open_store
from crimemap.stops import taser
from crimemap.stops.ingest import load_taser
from tests.conftest import settings_for

FILE = "police_other/taser_use_by_force_by_year_2015-2020.csv"
LEVEL_COLUMNS = {"drawn": "Drawn", "aimed": "Aimed", "red-dot": "Red-dot", "arced": "Arced",
                 "drive-stun": "Drive stun", "angled-drive-stun": "Angled drive stun", "fired": "Fired"}


@pytest.fixture
def client_with(instance):
    settings = settings_for(instance)
    store = open_store(settings)

    def make(*paths):
        for path in paths:
            load_taser(store, path, settings=settings)
        from crimemap.web import create_app

        return create_app({"INSTANCE": str(instance), "TESTING": True}).test_client()

    return make


def test_deployments_and_subjects_from_the_fixture(fixtures):
    rejects = Rejects()
    frame = taser.read_records(fixtures / "stops" / "taser_records.csv", rejects)
    assert rejects.by_reason == {"unknown use level": 1, "no subject": 1}
    counted = {(r["borough"], r["quarter"]): r for r in taser.count_deployments(frame, by=("borough", "quarter"))}
    # I1: two officers (O1 red dot, O2 fired) on one subject: two deployments, one subject.
    # I2: one officer on two subjects: two deployments, two subjects.
    lambeth = counted[("Lambeth", "2019-Q2")]
    assert (lambeth["deployments"], lambeth["subjects"], lambeth["incidents"], lambeth["officers"]) == (4, 3, 2, 3)
    assert lambeth["by_level"] == {"drawn": 1, "aimed": 1, "red-dot": 1, "arced": 0, "drive-stun": 0,
                                   "angled-drive-stun": 0, "fired": 1}
    # I3: one officer listed twice on one subject (drawn, then aimed): one deployment at its highest level.
    westminster = counted[("Westminster", "2019-Q3")]
    assert (westminster["deployments"], westminster["subjects"]) == (2, 2)
    assert westminster["by_level"]["aimed"] == 1 and westminster["by_level"]["drawn"] == 0
    assert westminster["by_level"]["angled-drive-stun"] == 1


def test_the_rule_in_its_smallest_form(tmp_path):
    path = tmp_path / "two_officers.csv"
    path.write_text("incident_id,subject_id,officer_id,date,borough,highest_use\n"
                    "A,1,PC1,2020-01-05,Hackney,Drawn\nA,1,PC2,2020-01-05,Hackney,Fired\n")
    (only,) = taser.count_deployments(taser.read_records(path))
    assert (only["deployments"], only["subjects"]) == (2, 1)


def test_force_year_equals_the_file(need_shared):
    raw = pd.read_csv(need_shared(FILE))
    frame = taser.read_force_year(need_shared(FILE))
    repeated = raw.duplicated(["Police force", "ytd"], keep=False)
    assert len(frame) == len(raw) - repeated.sum() == 214  # West Midlands 2015 is listed twice with other figures
    merged = frame.merge(raw[~repeated], left_on=["force", "year_end"], right_on=["Police force", "ytd"])
    assert len(merged) == len(frame)
    assert (merged["total"] == merged["Total"]).all()
    for level, column in LEVEL_COLUMNS.items():
        assert (merged[level] == merged[column]).all(), level
    assert (merged["non_discharge"] == merged["Total non-discharge"]).all()
    assert (merged["discharge"] == merged["Total discharge"]).all()
    assert frame["consistent"].all()  # every row's levels add up to its totals


def test_api_figures_equal_the_file(client_with, need_shared):
    client = client_with(need_shared(FILE))
    raw = pd.read_csv(need_shared(FILE))
    met = raw[raw["Police force"] == "Metropolitan"].set_index("ytd")
    body = client.get("/api/v1/taser/forces/metropolitan").get_json()
    assert len(body["rows"]) == 5 and body["attribution"] and body["data_version"]
    for row in body["rows"]:
        assert row["total"] == met.loc[row["year_end"], "Total"]
        for level, column in LEVEL_COLUMNS.items():
            assert row["by_level"][level] == met.loc[row["year_end"], column]
    assert body["rows"][0]["period"] == "2019/20" and body["rows"][0]["total"] == 10068
    year = client.get("/api/v1/taser/forces?year=2019/20").get_json()["rows"]
    file_year = raw[raw["ytd"] == "2020-03-31"]
    assert sum(r["total"] for r in year) == file_year["Total"].sum()
    assert sum(r["by_level"]["fired"] for r in year) == file_year["Fired"].sum()
    text = client.get("/api/v1/taser/forces?format=csv").get_data(as_text=True)
    assert "# Attribution:" in text and "Metropolitan,2020-03-31,2019/20,10068" in text
    assert client.get("/api/v1/taser/forces?year=1999").status_code == 400
    assert client.get("/api/v1/taser/forces?format=pdf").get_json()["status"] == 400
    assert client.get("/api/v1/taser/forces/atlantis").get_json()["status"] == 404
    page = client.get("/taser").get_data(as_text=True)
    assert "10,068" in page and "Angled drive stun" in page


def test_boroughs_api_from_records(client_with, fixtures):
    client = client_with(fixtures / "stops" / "taser_records.csv")
    body = client.get("/api/v1/taser/boroughs").get_json()
    assert body["total"]["deployments"] == 6 and body["total"]["subjects"] == 5
    assert body["quarters"] == ["2019-Q2", "2019-Q3"]
    lambeth = next(r for r in body["rows"] if r["borough"] == "Lambeth")
    assert (lambeth["deployments"], lambeth["subjects"]) == (4, 3)
    assert client.get("/api/v1/taser/boroughs?quarter=2019-Q9").status_code == 400
    text = client.get("/api/v1/taser/boroughs?format=csv").get_data(as_text=True)
    assert "E09000022,Lambeth,2019-Q2,4,3" in text


def test_cli_and_bad_files(runner, need_shared, tmp_path):
    result = runner("taser", "load", need_shared(FILE))
    assert result.exit_code == 0 and "214 force-year rows" in result.output and "West Midlands" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = runner("taser", "load", bad)
    assert result.exit_code != 0 and "not a Taser table" in result.output and "Traceback" not in result.output
    with pytest.raises(BadInput):
        taser.detect_layout(bad)
