"""The data.police.uk-compatible API against the real 2018 instance (read-only).

Every expected value is computed here independently, with pandas, geopandas,
shapely and pyproj straight from the source files in ../shared/data, never
from crimemap's own output.
"""

import gzip
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod

from tests.conftest import REPO, _need_shared

WARDS = "boundaries/London-wards-2018/London_Ward.shp"
MONTH = "2018-04"
ST_JAMES = "E05000644"  # Westminster, a borough the partial API files cover
CATEGORIES = "crimemap/schemas/police_uk_categories.json"
CRIME_KEYS = ["category", "location_type", "location", "context", "outcome_status", "persistent_id", "id",
              "location_subtype", "month"]


@pytest.fixture(scope="module")
def client(api_2018):
    from crimemap.web import create_app

    app = create_app({"INSTANCE": str(api_2018.instance), "TESTING": True, "POLICEUK_RATE_LIMIT": ""})
    return app.test_client()


@pytest.fixture(scope="module")
def source_points(api_2018):
    """The source records of 2018-04 as a GeoDataFrame (lon/lat), straight from the JSON Lines file."""
    path = next(p for p in api_2018.files if MONTH in p.name)
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    frame = pd.DataFrame({"id": [r["id"] for r in records], "category": [r["category"] for r in records],
                          "lat": [float(r["location"]["latitude"]) for r in records],
                          "lng": [float(r["location"]["longitude"]) for r in records]})
    frame["record"] = records
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lng"], frame["lat"]), crs="EPSG:4326")


@pytest.fixture(scope="module")
def wards():
    return gpd.read_file(_need_shared(WARDS)).to_crs("EPSG:4326")


def _ward(wards, code):
    geom = wards.loc[wards["GSS_CODE"] == code, "geometry"].iloc[0]
    return max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)


def _poly_text(ring_lonlat):
    return ":".join(f"{lat:.6f},{lon:.6f}" for lon, lat in ring_lonlat)


def _polygon_of(text):
    # Independent reading of the poly text: the polygon the request describes.
    pairs = [tuple(map(float, p.split(","))) for p in text.split(":")]
    return shapely.Polygon([(lng, lat) for lat, lng in pairs])


def _inside(points, polygon):
    # Points on the edge count as inside (police.uk "within the area"; crimemap documents intersects).
    return set(points.loc[points.intersects(polygon), "id"])


def test_crimes_street_ward_polygon_get_is_exactly_the_points_inside(client, wards, source_points):
    ward = _ward(wards, ST_JAMES)
    coords = np.asarray(ward.simplify(0.0002).exterior.coords)[:-1]
    poly = _poly_text(coords)
    url = f"/api/crimes-street/all-crime?poly={poly}&date={MONTH}"
    assert len(url) <= 4094
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    crimes = response.get_json()
    expected = _inside(source_points, _polygon_of(poly))
    assert len(expected) > 500
    assert {c["id"] for c in crimes} == expected
    assert len(crimes) == len(expected)
    # Each crime is the source record, field for field, in police.uk's member order.
    by_id = dict(zip(source_points["id"], source_points["record"]))
    for crime in crimes:
        assert list(crime) == CRIME_KEYS
        assert crime == by_id[crime["id"]]
        assert isinstance(crime["location"]["latitude"], str) and isinstance(crime["location"]["longitude"], str)


def test_crimes_street_category_filters(client, wards, source_points):
    poly = _poly_text(np.asarray(_ward(wards, ST_JAMES).simplify(0.0002).exterior.coords)[:-1])
    crimes = client.get(f"/api/crimes-street/burglary?poly={poly}&date={MONTH}").get_json()
    inside = source_points[source_points.intersects(_polygon_of(poly))]
    assert {c["id"] for c in crimes} == set(inside.loc[inside["category"] == "burglary", "id"])
    assert crimes and all(c["category"] == "burglary" for c in crimes)


def test_crimes_street_post_with_a_500_vertex_polygon(client, wards, source_points):
    ring = _ward(wards, "E05000649").exterior  # West End, Westminster
    points = [ring.interpolate(f, normalized=True) for f in np.linspace(0, 1, 500, endpoint=False)]
    poly = _poly_text([(p.x, p.y) for p in points])
    assert poly.count(":") == 499
    response = client.post("/api/crimes-street/all-crime", data={"poly": poly, "date": MONTH})
    assert response.status_code == 200, response.get_data(as_text=True)
    expected = _inside(source_points, _polygon_of(poly))
    assert len(expected) > 100
    assert {c["id"] for c in response.get_json()} == expected
    # The same polygon by GET is too long for police.uk: 400, with a JSON error.
    long_get = client.get(f"/api/crimes-street/all-crime?poly={poly}&date={MONTH}")
    assert long_get.status_code == 400
    assert long_get.get_json()["status"] == 400 and "4,094" in long_get.get_json()["error"]


def test_a_get_longer_than_4094_characters_is_400_and_4094_is_not(client):
    base = "/api/crimes-street/all-crime?date=2018-04&lat=51.5&lng=-0.12&pad="
    assert client.get(base + "x" * (4094 - len(base))).status_code == 200
    response = client.get(base + "x" * (4095 - len(base)))
    assert response.status_code == 400 and response.is_json


def test_more_than_10000_crimes_is_503(client, source_points):
    # A box around all of London holds every one of the month's ~63,000 points.
    assert len(source_points) > 10_000
    response = client.get(f"/api/crimes-street/all-crime?poly=51.2,-0.6:51.8,-0.6:51.8,0.4:51.2,0.4&date={MONTH}")
    assert response.status_code == 503
    assert response.get_json()["status"] == 503 and "10,000" in response.get_json()["error"]


def test_crimes_street_one_mile_around_a_point(client, source_points):
    lat, lng = 51.5074, -0.1278
    crimes = client.get(f"/api/crimes-street/all-crime?lat={lat}&lng={lng}&date={MONTH}").get_json()
    _, _, dist = Geod(ellps="WGS84").inv(np.full(len(source_points), lng), np.full(len(source_points), lat),
                                         source_points["lng"].to_numpy(), source_points["lat"].to_numpy())
    got = {c["id"] for c in crimes}
    mile = 1609.344
    # A spherical and an ellipsoidal mile differ by well under 0.5%.
    assert set(source_points.loc[dist < mile * 0.995, "id"]) <= got
    assert got <= set(source_points.loc[dist < mile * 1.005, "id"])
    assert len(got) > 1000


def test_the_default_month_is_the_latest(client, api_2018):
    dated = client.get("/api/crimes-street/robbery?lat=51.5074&lng=-0.1278&date=2018-05").get_json()
    default = client.get("/api/crimes-street/robbery?lat=51.5074&lng=-0.1278").get_json()
    assert default == dated and dated and {c["month"] for c in dated} == {"2018-05"}


def test_crime_categories_shape(client, source_points):
    body = client.get(f"/api/crime-categories?date={MONTH}").get_json()
    assert body[0] == {"url": "all-crime", "name": "All crime"}
    assert all(list(c) == ["url", "name"] for c in body)
    labels = {c["slug"]: c["label"] for c in json.loads((REPO / CATEGORIES).read_text(encoding="utf-8"))["categories"]}
    assert set(source_points["category"]) <= {c["url"] for c in body}
    assert all(c["name"] == labels[c["url"]] for c in body[1:])


def test_crimes_street_dates_shape(client, api_2018):
    body = client.get("/api/crimes-street-dates").get_json()
    months = sorted({f.name.split("_")[-2] for f in api_2018.files}, reverse=True)
    assert [d["date"] for d in body] == months == ["2018-05", "2018-04", "2018-03"]
    assert all(list(d) == ["date", "stop-and-search"] and d["stop-and-search"] == [] for d in body)


def test_forces_shape(client):
    body = client.get("/api/forces").get_json()
    schema = json.loads((REPO / "crimemap/schemas/police_uk_forces.json").read_text(encoding="utf-8"))
    assert sorted(f["id"] for f in body) == sorted(schema["ids"])
    assert all(list(f) == ["id", "name"] for f in body)
    names = {f["id"]: f["name"] for f in body}
    assert names["metropolitan"] == "Metropolitan Police Service" and names["city-of-london"] == "City of London Police"
    met = client.get("/api/forces/metropolitan").get_json()
    assert met["id"] == "metropolitan" and met["name"] == "Metropolitan Police Service"
    assert client.get("/api/forces/gotham").status_code == 404


def test_metropolitan_neighbourhoods_are_the_met_wards(client, wards):
    body = client.get("/api/metropolitan/neighbourhoods").get_json()
    met = wards[wards["LAGSSCODE"] != "E09000001"]  # everything but the City of London
    assert sorted(n["id"] for n in body) == sorted(met["GSS_CODE"])
    assert all(list(n) == ["id", "name"] for n in body)
    city = client.get("/api/city-of-london/neighbourhoods").get_json()
    assert sorted(n["id"] for n in city) == sorted(wards.loc[wards["LAGSSCODE"] == "E09000001", "GSS_CODE"])


def test_neighbourhood_and_boundary(client, wards):
    detail = client.get(f"/api/metropolitan/{ST_JAMES}").get_json()
    assert detail["id"] == ST_JAMES and detail["name"] == "St. James's"
    assert int(detail["population"]) > 0
    centre = shapely.Point(float(detail["centre"]["longitude"]), float(detail["centre"]["latitude"]))
    ward = wards.loc[wards["GSS_CODE"] == ST_JAMES, "geometry"].iloc[0]
    assert ward.buffer(1e-5).contains(centre)
    points = client.get(f"/api/metropolitan/{ST_JAMES}/boundary").get_json()
    assert all(list(p) == ["latitude", "longitude"] and isinstance(p["latitude"], str) for p in points)
    ring = shapely.Polygon([(float(p["longitude"]), float(p["latitude"])) for p in points])
    assert ring.intersection(ward).area / ring.union(ward).area > 0.99
    assert client.get(f"/api/city-of-london/{ST_JAMES}").status_code == 404
    assert client.get("/api/metropolitan/E0599999/boundary").status_code == 404


def test_locate_neighbourhood(client, wards):
    for code in (ST_JAMES, "E05000405"):
        ward = wards.loc[wards["GSS_CODE"] == code, "geometry"].iloc[0]
        point = ward.representative_point()
        body = client.get(f"/api/locate-neighbourhood?q={point.y:.6f},{point.x:.6f}").get_json()
        assert body == {"force": "metropolitan", "neighbourhood": code}
    outside = client.get("/api/locate-neighbourhood?q=52.629729,-1.131592")  # Leicester
    assert outside.status_code == 404 and outside.get_json()["status"] == 404


def test_crimes_at_location(client, source_points):
    record = source_points["record"].iloc[0]
    street = record["location"]["street"]["id"]
    body = client.get(f"/api/crimes-at-location?location_id={street}&date={MONTH}").get_json()
    expected = {r["id"] for r in source_points["record"] if r["location"]["street"]["id"] == street}
    assert {c["id"] for c in body} == expected and record["id"] in expected
    near = client.get(f"/api/crimes-at-location?lat={record['location']['latitude']}"
                      f"&lng={record['location']['longitude']}&date={MONTH}").get_json()
    same_point = source_points[(source_points["lat"] == float(record["location"]["latitude"]))
                               & (source_points["lng"] == float(record["location"]["longitude"]))]
    assert {c["id"] for c in near} == set(same_point["id"])


def test_crimes_no_location_shape(runner, need_shared):
    """The City of London's crimes with no location, against the CSV rows with no coordinates."""
    from crimemap.web import create_app

    path = need_shared("crime/police_uk/city-of-london/2024-01-city-of-london-street.csv")
    assert runner("crimes", "ingest", path).exit_code == 0
    client = create_app({"INSTANCE": str(runner.instance), "TESTING": True, "POLICEUK_RATE_LIMIT": ""}).test_client()
    source = pd.read_csv(path)
    missing = source[source["Longitude"].isna()]
    assert len(missing) > 10
    body = client.get("/api/crimes-no-location?category=all-crime&force=city-of-london&date=2024-01").get_json()
    assert sorted(c["persistent_id"] for c in body) == sorted(missing["Crime ID"].fillna(""))
    crime = body[0]
    assert list(crime) == CRIME_KEYS
    assert crime["location"] is None and crime["location_type"] is None and crime["month"] == "2024-01"
    one = client.get("/api/crimes-no-location?category=violent-crime&force=city-of-london&date=2024-01").get_json()
    assert len(one) == (missing["Crime type"] == "Violence and sexual offences").sum()
    assert client.get("/api/crimes-no-location?category=all-crime&force=metropolitan&date=2024-01").get_json() == []
    assert client.get("/api/crimes-no-location?category=all-crime&date=2024-01").status_code == 400


def test_v1_routes_win_over_force_routes(client):
    assert client.get("/api/v1/crime-types").status_code == 200
    assert client.get("/api/v1/nothing-here").get_json() == {"status": 404, "error": "Not found"}
