"""The synthetic demo instance: built offline through the real loaders, reused, never touching real data."""

import json

import pandas as pd
import pytest

from crimemap import demo, figures
from crimemap.config import load_settings
from crimemap.store import STORE_FILE, open_store

END = "2024-06"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    instance = tmp_path_factory.mktemp("instance")
    (instance / "real-data.txt").write_text("a real instance's own file")
    settings = load_settings(instance=instance, environ={})
    lines = []
    # The demo serve --demo uses: always the embedded store (environ={}), on either test leg.
    marker = demo.build_demo_instance(instance / demo.FOLDER, end_month=END, echo=lines.append, environ={})
    served = demo.ensure_demo_instance(settings, echo=lines.append)
    return {"instance": instance, "settings": settings, "served": served, "marker": marker, "lines": lines}


def test_serves_its_own_folder_marked_as_demo(built):
    served, instance = built["served"], built["instance"]
    assert served["INSTANCE"] == str(instance / "demo")
    assert served["DEMO"] is True
    assert built["settings"]["INSTANCE"] == str(instance)  # the caller's settings are not changed
    store = open_store(served, readonly=True)
    assert store.meta()["demo"] == "1"
    assert store.status()["demo"] is True
    # The real instance folder is untouched: no store next to its own files.
    assert not (instance / STORE_FILE).exists()
    assert (instance / "real-data.txt").read_text() == "a real instance's own file"


def test_reuses_a_current_build(built):
    assert any(line.startswith("Using the demo instance") for line in built["lines"])
    before = (built["instance"] / "demo" / STORE_FILE).stat().st_mtime_ns
    lines = []
    demo.ensure_demo_instance(built["settings"], echo=lines.append)
    assert (built["instance"] / "demo" / STORE_FILE).stat().st_mtime_ns == before
    assert lines[0].startswith("Using the demo instance")


def test_layers_areas_and_the_city(built):
    store = open_store(built["served"], readonly=True)
    levels = {layer["level"]: layer for layer in store.layers()}
    assert set(levels) == {"borough", "ward", "lsoa"}
    boroughs = store.areas(levels["borough"]["id"], with_geometry=False)
    assert len(boroughs) == 33
    city = boroughs[boroughs["code"] == "E09000001"].iloc[0]
    assert city["force"] == "city-of-london"
    assert (boroughs["force"] == "metropolitan").sum() == 32
    assert boroughs["name"].str.contains("Demo").all()
    assert boroughs["code"].drop(city.name).str.startswith("E099").all()
    wards = store.areas(levels["ward"]["id"])
    assert 300 <= len(wards) <= 600
    assert wards["name"].str.contains("Demo").all()
    # Over the real London, so a real base map lines up.
    minx, miny, maxx, maxy = wards.total_bounds
    assert 500_000 < minx < maxx < 565_000 and 150_000 < miny < maxy < 205_000
    # Wards tile their boroughs: the same land, within a square metre per ward.
    assert wards.area.sum() == pytest.approx(store.areas(levels["borough"]["id"]).area.sum(), abs=len(wards))
    population = store.population(levels["ward"]["id"])
    assert set(population["code"]) == set(wards["code"])


def test_months_end_where_asked(built):
    marker = built["marker"]
    assert marker["months"] == demo.demo_months(END)
    assert len(marker["months"]) == 24 and marker["months"][-1] == END and marker["months"][0] == "2022-07"
    store = open_store(built["served"], readonly=True)
    assert figures.latest_months(store, 3) == ["2024-04", "2024-05", "2024-06"]
    assert json.loads((built["instance"] / "demo" / demo.MARKER).read_text())["demo_version"] == demo.DEMO_VERSION


def test_default_months_end_at_the_previous_calendar_month():
    months = demo.demo_months()
    today = pd.Timestamp.today()
    assert months[-1] == (today.to_period("M") - 1).strftime("%Y-%m")
    assert len(months) == 24


def test_figures_agree_with_the_generated_files(built, tmp_path):
    """The same seed writes the same files: count their rows independently of the store."""
    files = demo.generate_demo_files(tmp_path, end_month=END)
    rows = pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False) for p in files["crimes"]])
    assert 20_000 <= len(rows) <= 100_000
    assert built["marker"]["crimes"]["rows_read"] == len(rows)
    no_location = rows["Longitude"] == ""
    assert 0 < no_location.sum() == built["marker"]["crimes"]["no_location"]
    assert rows["Crime type"].nunique() == 14
    # Rows the generator placed in an LSOA are inside Demo London; the join must find them all.
    months = figures.latest_months(open_store(built["served"], readonly=True), 12)
    inside = rows[(rows["LSOA code"] != "") & rows["Month"].isin(months)]
    store = open_store(built["served"], readonly=True)
    wards = figures.area_figures(store, "ward", months, with_geometry=False)
    assert sum(wards["count"]) == len(inside)
    burglary = figures.area_figures(store, "borough", months, category="burglary", with_geometry=False)
    assert sum(burglary["count"]) == (inside["Crime type"] == "Burglary").sum()


def test_an_older_demo_is_rebuilt(tmp_path):
    settings = load_settings(instance=tmp_path, environ={})
    folder = tmp_path / demo.FOLDER
    demo.build_demo_instance(folder, end_month=END, environ={})
    marker = json.loads((folder / demo.MARKER).read_text())
    marker["demo_version"] = demo.DEMO_VERSION - 1
    (folder / demo.MARKER).write_text(json.dumps(marker))
    lines = []
    served = demo.ensure_demo_instance(settings, echo=lines.append)
    assert lines[0].startswith("Building")
    assert json.loads((folder / demo.MARKER).read_text())["demo_version"] == demo.DEMO_VERSION
    assert open_store(served, readonly=True).meta()["demo"] == "1"
    # No build folders are left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [demo.FOLDER]


def test_the_demo_never_uses_a_configured_database(built):
    """With DATABASE_URL set (a PostGIS deployment), ``serve --demo`` still serves the embedded demo store."""
    settings = dict(built["settings"], DATABASE_URL="postgresql://nobody@127.0.0.1:9/real",
                    DATABASE_READ_URL="postgresql://nobody@127.0.0.1:9/replica")
    served = demo.ensure_demo_instance(settings)
    assert served["DATABASE_URL"] == "" and served["DATABASE_READ_URL"] == ""
    store = open_store(served, readonly=True)
    assert store.dialect == "sqlite"
    assert store.meta()["demo"] == "1"
    assert settings["DATABASE_URL"].startswith("postgresql://")  # the caller's settings are not changed


def test_a_demo_built_in_postgis_lives_in_its_folders_own_schema(postgis_url, tmp_path):
    """build_demo_instance with a PostGIS DATABASE_URL (as on the PostGIS test leg) loads into the folder's schema."""
    from crimemap.errors import StoreError

    environ = {"CRIMEMAP_DATABASE_URL": postgis_url, "CRIMEMAP_DATABASE_SCHEMA": "instance"}
    folder = tmp_path / "pg-demo"
    marker = demo.build_demo_instance(folder, end_month=END, environ=environ)
    store = open_store(load_settings(instance=folder, environ=environ), readonly=True)
    assert store.dialect == "postgresql"
    assert not (folder / STORE_FILE).exists() and (folder / demo.MARKER).is_file()
    status = store.status()
    assert status["demo"] is True and status["months"] == marker["months"]
    assert {layer["level"]: layer["areas"] for layer in status["layers"]} == marker["areas"]
    assert status["crimes"]["rows_read"] == marker["crimes"]["rows_read"]
    # Never into a shared schema.
    with pytest.raises(StoreError, match="its own schema"):
        demo.build_demo_instance(tmp_path / "shared", end_month=END,
                                 environ={"CRIMEMAP_DATABASE_URL": postgis_url, "CRIMEMAP_DATABASE_SCHEMA": "crimemap"})
