"""The lookup and resolve on the hand-written fixtures (tests/data/postcodes)."""

import math

import pytest

from crimemap.errors import InvalidPostcode, PostcodeNotFound
from crimemap.postcodes import clear_cache, get_lookup, refresh, resolve, status, to_postcodes_io
from tests.conftest import settings_for


@pytest.fixture
def loaded(instance, fixtures):
    """An instance with the fixture wards and the ONSPD fixture loaded."""
    from crimemap.ingest import load_boundaries
    from crimemap.store import open_store

    clear_cache()
    settings = settings_for(instance)
    store = open_store(settings)
    load_boundaries(store, fixtures / "postcodes" / "wards.geojson", "ward", settings=settings)
    refresh(instance, fixtures / "postcodes" / "onspd_sample.csv", settings=settings)
    yield settings, store, get_lookup(settings, store)
    clear_cache()


def test_live_postcode_resolves_to_the_polygons_containing_it(loaded):
    settings, store, lookup = loaded
    result = resolve(lookup, " wc2n5du ")
    assert result["postcode"] == "WC2N 5DU"
    assert (result["outcode"], result["incode"]) == ("WC2N", "5DU")
    assert (result["eastings"], result["northings"]) == (530500, 180500)
    assert result["latitude"] == pytest.approx(51.508369) and result["longitude"] == pytest.approx(-0.120969)
    assert result["ward"] == {"code": "E05990101", "name": "Square West"}
    assert result["snt"] == result["ward"]  # no SNT layer: SNT = ward
    assert result["borough"] == {"code": "E09000033", "name": "Westminster"}
    assert result["force"] == "metropolitan" and result["message"] is None


def test_polygon_wins_over_the_directory_and_the_disagreement_is_counted(loaded):
    settings, store, lookup = loaded
    # SE1 8XX lies in Square East; the fixture's directory says Square West.
    result = resolve(lookup, "se18xx")
    assert result["ward"]["code"] == "E05990102"
    assert result["directory"] == {"ward_code": "E05990101", "district_code": "E09000022"}
    doc = status(settings["INSTANCE"], store)
    assert doc["ward_disagreements"] == 1
    # Compared: the 5 live fixture postcodes inside a ward polygon.
    assert doc["cross_check"]["compared"] == 5


def test_city_of_london_names_its_own_police(loaded):
    result = resolve(loaded[2], "EC4M 7AN")
    assert result["force"] == "city-of-london"
    assert "City of London Police" in result["message"]
    assert result["borough"]["code"] == "E09000001"


@pytest.mark.parametrize("postcode", ["M1 1AE", "EH1 1YZ", "BT1 5GS", "gir0aa"])
def test_outside_the_met_points_to_police_uk(loaded, postcode):
    result = resolve(loaded[2], postcode)
    assert result["force"] is None and result["ward"] is None and result["borough"] is None
    assert "police.uk" in result["message"] and "outside the Metropolitan Police" in result["message"]


def test_northern_ireland_grid_is_not_read_as_british_national_grid(loaded):
    row = loaded[2].get("BT1 5GS")
    # The file's oseast1m/osnrth1m (333800, 374200) are Irish Grid; BNG comes from lat/long.
    from crimemap.crs import lonlat_to_bng

    x, y = lonlat_to_bng(-5.9301, 54.5973)
    assert (row["eastings"], row["northings"]) == (round(float(x)), round(float(y)))


def test_invalid_format(loaded):
    with pytest.raises(InvalidPostcode) as err:
        resolve(loaded[2], "not a postcode")
    assert err.value.to_dict() == {"status": 400, "error": "Invalid postcode"}


def test_valid_but_unknown_gets_the_outcode_and_known_neighbours(loaded):
    with pytest.raises(PostcodeNotFound) as err:
        resolve(loaded[2], "se1 9zz")
    body = err.value.to_dict()
    assert body["status"] == 404 and body["error"] == "Postcode not found"
    assert body["outcode"]["outcode"] == "SE1"
    assert body["outcode"]["postcodes"] == 3  # SE1 9GF, SE1 8XX, SE1 7ZA
    assert body["outcode"]["latitude"] == pytest.approx((51.507239 + 51.505395 + 51.510903) / 3)
    assert [s["postcode"] for s in body["suggestions"]][0] == "SE1 9GF"  # same sector, "SE1 9"


def test_unknown_outcode_still_gets_a_clear_404(loaded):
    with pytest.raises(PostcodeNotFound) as err:
        resolve(loaded[2], "SW1A 1AA")
    assert err.value.extra == {"suggestions": [], "outcode": None}


def test_terminated_gets_its_date_and_the_nearest_live_postcode(loaded):
    with pytest.raises(PostcodeNotFound) as err:
        resolve(loaded[2], "wc2n 9zz")
    body = err.value.to_dict()
    assert body["terminated"] == {"postcode": "WC2N 9ZZ", "year_terminated": 2015, "month_terminated": 6,
                                  "latitude": 51.509245, "longitude": -0.119492}
    nearest = body["nearest"][0]
    assert nearest["postcode"] == "WC2N 5DU"
    assert nearest["distance"] == pytest.approx(math.hypot(100, 100), abs=0.1)


def test_terminated_without_location(loaded):
    lookup = loaded[2]
    assert lookup.terminated("E1 9ZY")["latitude"] is None
    assert lookup.get("E1 9ZY")["live"] is False
    assert lookup.terminated("WC2N 5DU") is None


def test_nearest_autocomplete_and_validate(loaded):
    lookup = loaded[2]
    near = lookup.nearest(51.508369, -0.120969, limit=10, radius_m=1500)
    # Live only (WC2N 9ZZ is terminated), nearest first, within 1.5 km of WC2N 5DU.
    near_names = ["WC2N 5DU", "SE1 7ZA", "SE1 9GF", "SE1 8XX"]  # 0, 762, 1005, 1237 m
    assert [r["postcode"] for r in near] == near_names
    assert [r["distance"] for r in near] == sorted(r["distance"] for r in near)
    assert near[1]["distance"] == pytest.approx(math.hypot(700, 300), abs=0.5)
    assert [r["postcode"] for r in lookup.nearest(51.508369, -0.120969, limit=10, radius_m=1000)] == near_names[:2]
    assert [r["postcode"] for r in lookup.nearest(51.508369, -0.120969, limit=3, radius_m=1500)] == near_names[:3]
    assert lookup.autocomplete("se1", 10) == ["SE1 7ZA", "SE1 8XX", "SE1 9GF"]
    assert lookup.autocomplete("s e 1 9", 10) == ["SE1 9GF"]
    assert lookup.autocomplete("wc2n", 10) == ["WC2N 5DU"]  # terminated WC2N 9ZZ left out
    assert lookup.autocomplete("<script>", 10) == []
    assert lookup.validate("wc2n 5du") and lookup.validate("WC2N9ZZ") and not lookup.validate("SE1 9ZZ")


def test_postcodes_io_mapping(loaded):
    lookup = loaded[2]
    row = lookup.get("SE1 8XX")
    result = to_postcodes_io(row, resolve(lookup, "SE1 8XX"))
    assert result["postcode"] == "SE1 8XX" and result["outcode"] == "SE1" and result["incode"] == "8XX"
    assert result["country"] == "England" and result["admin_district"] == "Lambeth"
    assert result["admin_ward"] == "Square East" and result["codes"]["admin_ward"] == "E05990102"
    assert result["pfa"] == "Metropolitan Police" and result["date_of_introduction"] == "200106"
    bare = to_postcodes_io(row)
    assert bare["codes"]["admin_ward"] == "E05990101" and bare["admin_district"] == "Lambeth"


def test_no_lookup_loaded(instance):
    clear_cache()
    assert get_lookup(settings_for(instance)) is None
    assert status(instance) == {"loaded": False, "version": None}


def test_cli_lookup_versions_and_status(runner, fixtures):
    import json

    clear_cache()
    assert runner("postcodes", "lookup", "SW1A 1AA").exit_code == 1  # nothing loaded yet
    assert runner("boundaries", "load", "ward", fixtures / "postcodes" / "wards.geojson").exit_code == 0
    assert runner("postcodes", "refresh", fixtures / "postcodes" / "onspd_sample.csv").exit_code == 0
    result = runner("postcodes", "lookup", "ec4m7an")
    assert result.exit_code == 0
    body = json.loads(result.output)
    assert body["ward"]["name"] == "Cordwainer" and body["force"] == "city-of-london"
    result = runner("postcodes", "lookup", "wc2n 9zz")
    assert result.exit_code == 1 and json.loads(result.output)["terminated"]["year_terminated"] == 2015
    assert runner("postcodes", "lookup", "nonsense").exit_code == 1
    kept = json.loads(runner("postcodes", "versions", "--json").output)
    assert [(v["version"], v["current"], v["count"], v["terminated"]) for v in kept] == [(1, True, 11, 2)]
    clear_cache()
    doc = json.loads(runner("status", "--json").output)["postcodes"]
    assert (doc["version"], doc["live"], doc["ward_disagreements"]) == ("1", 9, 1)
    assert "Postcode lookup: version 1" in runner("status").output
    clear_cache()


def test_size_caps_come_from_each_callers_settings(loaded):
    settings, store, lookup = loaded
    capped = get_lookup({**settings, "POSTCODES_NEAREST_MAX": 2, "POSTCODES_AUTOCOMPLETE_MAX": 1}, store)
    assert len(capped.nearest(51.508369, -0.120969, limit=10, radius_m=1500)) == 2
    assert capped.autocomplete("se1", 10) == ["SE1 7ZA"]
    assert len(get_lookup(settings, store).nearest(51.508369, -0.120969, limit=10, radius_m=1500)) == 4
    assert capped.areas is get_lookup(settings, store).areas  # one join, shared


def test_onspd_row_without_latitude_gets_it_from_the_grid_reference(tmp_path):
    from crimemap.crs import bng_to_lonlat
    from crimemap.postcodes.sources import read_source

    path = tmp_path / "onspd.csv"
    path.write_text("pcds,doterm,oslaua,osward,oseast1m,osnrth1m,ctry,lat,long\n"
                    "SE1 9GF,,E09000022,E05990102,531500,180400,E92000001,,\n", encoding="ascii")
    columns, _, _ = read_source(path)
    lon, lat = bng_to_lonlat(531500, 180400)
    assert columns["latitude"][0] == pytest.approx(float(lat)) and columns["longitude"][0] == pytest.approx(float(lon))
