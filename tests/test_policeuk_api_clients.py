"""A real data.police.uk client from PyPI (police-api-client, module ``police_api``) against a live crimemap.

``crimemap serve`` (gunicorn, the production server) runs on a loopback port
over a copy of the real 2018 instance; the client's base URL is the only
thing changed. Expected values come from the source JSON Lines files and
the 2018 ward shapefile, read here with pandas and geopandas.
"""

import gzip
import json
import time

import geopandas as gpd
import pytest
import shapely

from tests.conftest import _need_shared
from tests.live_server import live_server
from tests.test_embed import copy_instance

MONTH = "2018-04"


@pytest.fixture(scope="module")
def live(api_2018, tmp_path_factory):
    # The shared instance is read-only: the server (its log, its caches) runs on a copy.
    instance = copy_instance(api_2018.instance, tmp_path_factory.mktemp("policeuk_live") / "instance")
    with live_server(instance, ready="/api/forces") as base:
        time.sleep(2.1)  # the readiness probes leave the rate limit's window
        yield base


@pytest.fixture(scope="module")
def api(live):
    from police_api import PoliceAPI

    return PoliceAPI(base_url=f"{live}/api/", timeout=60)


@pytest.fixture(scope="module")
def points(api_2018):
    path = next(p for p in api_2018.files if MONTH in p.name)
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    lng = [float(r["location"]["longitude"]) for r in records]
    lat = [float(r["location"]["latitude"]) for r in records]
    return gpd.GeoDataFrame({"id": [r["id"] for r in records]}, geometry=gpd.points_from_xy(lng, lat),
                            crs="EPSG:4326")


def test_forces_dates_and_categories(api):
    forces = {f.id: f for f in api.get_forces()}
    assert forces["metropolitan"].name == "Metropolitan Police Service"
    assert api.get_force("city-of-london").name == "City of London Police"
    assert api.get_dates() == ["2018-05", "2018-04", "2018-03"]
    assert api.get_latest_date() == "2018-05"
    categories = {c.id: c.name for c in api.get_crime_categories(date=MONTH)}
    assert categories["violent-crime"] == "Violence and sexual offences" and "all-crime" not in categories


def test_neighbourhoods_boundary_and_crimes_in_it(api, points):
    wards = gpd.read_file(_need_shared("boundaries/London-wards-2018/London_Ward.shp"))
    neighbourhoods = api.get_neighbourhoods("metropolitan")
    assert sorted(n.id for n in neighbourhoods) == sorted(wards.loc[wards["LAGSSCODE"] != "E09000001", "GSS_CODE"])
    west_end = api.get_neighbourhood("metropolitan", "E05000649")
    assert west_end.name == "West End" and west_end.population > 0
    boundary = west_end.boundary  # [(lat, lng)] floats, as the client parses police.uk's strings
    assert len(boundary) > 50
    # The client POSTs the boundary as poly (its get_crimes_area); compare with the source points inside it.
    crimes = api.get_crimes_area(boundary, date=MONTH)
    polygon = shapely.Polygon([(lng, lat) for lat, lng in boundary])
    expected = set(points.loc[points.intersects(polygon), "id"])
    assert len(expected) > 500 and {c.id for c in crimes} == expected
    crime = crimes[0]
    assert crime.month == MONTH and crime.category.id and crime.location.latitude
    assert crime.location.type in ("Force", "BTP")


def test_locate_point_location_and_no_location(api, points):
    found = api.locate_neighbourhood(51.5074, -0.1278)
    assert found is not None and found.id == "E05000644" and found.force.id == "metropolitan"
    assert api.locate_neighbourhood(52.629729, -1.131592) is None  # Leicester: a 404, which the client maps to None
    near = api.get_crimes_point(51.5074, -0.1278, date=MONTH, category="robbery")
    assert near and all(c.category.id == "robbery" for c in near)
    location = near[0].location.id
    at = api.get_crimes_location(location, date=MONTH)
    assert at and all(c.location.id == location for c in at)
    assert api.get_crimes_no_location("metropolitan", date=MONTH) == []


def test_bad_input_reaches_the_client_as_an_http_error(api):
    from police_api import APIError

    with pytest.raises(APIError) as bad_lat:
        api.get_crimes_point("north", -0.1278, date=MONTH)
    assert bad_lat.value.status_code == 400 and bad_lat.value.response.json()["status"] == 400
    with pytest.raises(APIError) as two_points:
        api.get_crimes_area([(51.5, -0.1), (51.6, -0.1)], date=MONTH)
    assert two_points.value.status_code == 400


def test_the_live_server_answers_400_json_past_4094_characters(live):
    import requests

    base = "/api/crimes-street/all-crime?lat=51.5&lng=-0.12&date=2018-04&pad="
    fits = requests.get(live + base + "x" * (4094 - len(base)), timeout=60)
    assert fits.status_code == 200
    for length in (4095, 8000):  # past police.uk's limit, within gunicorn's request line (8,190)
        too_long = requests.get(live + base + "x" * (length - len(base)), timeout=60)
        assert too_long.status_code == 400 and too_long.json()["status"] == 400, length


def test_the_live_server_answers_429_past_the_rate_limit(live):
    import requests

    time.sleep(2.1)  # start from an empty window (the default: 30 per 2 seconds)
    with requests.Session() as session:
        codes = [session.get(f"{live}/api/forces", timeout=30) for _ in range(150)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited, "no 429 in 150 back-to-back requests"
    assert limited[0].json()["status"] == 429 and "Retry-After" in limited[0].headers
    assert {r.status_code for r in codes} == {200, 429}
    time.sleep(2.1)
