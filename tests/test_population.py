"""Residents per area for any boundary vintage: best fit of LSOA estimates, direct tables, LAD sums."""

import geopandas as gpd
import pandas as pd
import pytest

from crimemap.ingest import load_boundaries
from crimemap.population import load_population
from crimemap.store import open_store
from tests.conftest import settings_for

LSOA11 = "boundaries/london-2011-lsoa-gen20.shp"
POP2020 = "population/london-mid2020-lsoa11-pop.csv"
WARDS_2018 = "boundaries/London-wards-2018/London_Ward.shp"
WARDS_2022 = "boundaries/london-wards-2022-approx.gpkg"
LAD22 = "boundaries/london-2021-lad22-gen20.shp"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from tests.conftest import _need_shared

    instance = tmp_path_factory.mktemp("pop") / "instance"
    settings = settings_for(instance)
    store = open_store(settings)
    # Population before some layers and after others: both orders must work.
    load_boundaries(store, _need_shared(LAD22), "borough", settings=settings)
    load_population(store, _need_shared(POP2020), settings=settings)
    load_boundaries(store, _need_shared(LSOA11), "lsoa", settings=settings)
    load_boundaries(store, _need_shared(WARDS_2018), "ward", settings=settings)
    load_boundaries(store, _need_shared(WARDS_2022), "ward", settings=settings)
    return store


def _population(store, level, vintage=None):
    frame = store.population(store.layer(level, vintage)["id"])
    return frame[frame["year"] == "2020"].set_index("code")["persons"]


def test_boroughs_equal_the_sum_by_local_authority(store, need_shared):
    raw = pd.read_csv(need_shared(POP2020))
    expected = raw.groupby("LAD11CD")["Persons_All-Ages"].sum()
    got = _population(store, "borough")
    assert len(got) == 33
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)


@pytest.mark.parametrize("vintage", ["2018", "2022"])
def test_wards_of_any_vintage_get_every_resident_once(store, need_shared, vintage):
    raw = pd.read_csv(need_shared(POP2020))
    got = _population(store, "ward", vintage)
    assert got.sum() == raw["Persons_All-Ages"].sum() == 9_002_488
    # Independent best fit: each LSOA's point on surface, joined with geopandas.
    lsoas = gpd.read_file(need_shared(LSOA11))
    points = lsoas.set_geometry(lsoas.geometry.representative_point())[["LSOA11CD", "geometry"]]
    wards = gpd.read_file(need_shared(WARDS_2018 if vintage == "2018" else WARDS_2022))
    code = "GSS_CODE" if vintage == "2018" else "WD22CD"
    joined = gpd.sjoin(points, wards[[code, "geometry"]], predicate="within")
    persons = joined.merge(raw, on="LSOA11CD").groupby(code)["Persons_All-Ages"].sum()
    common = persons.index.intersection(got.index)
    assert len(common) >= 0.95 * len(persons)
    assert (got[common] == persons[common]).mean() > 0.99


def test_status_lists_the_populations(store):
    status = store.status()
    assert status["population"]["lsoa"] == [{"year": "2020", "lsoas": 4835, "persons": 9_002_488}]
    assert len(status["population"]["areas"]) == 4
