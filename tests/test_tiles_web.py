"""The /tiles endpoint's edges: bad addresses, traversal, caching headers, the disk cache and the CLI.

On the real 2018 instance (api_2018, read-only); tiles go to a temporary TILES_DIR.
"""

import json
import os

import mapbox_vector_tile
import pytest

from crimemap.tiles import TileCache, TileOptions
from crimemap.web import create_app

GOOD = "/tiles/ward/12/2046/1362.pbf"  # central London
SECRET = b"not a tile: nothing outside TILES_DIR may be served"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("tilesweb")
    tiles = base / "tiles"
    tiles.mkdir()
    # Files a traversal would reach if paths were built from the URL.
    (base / "secret.pbf").write_bytes(SECRET)
    (base / "1").mkdir()
    (base / "1" / "1.pbf").write_bytes(SECRET)
    return base, tiles


@pytest.fixture(scope="module")
def client(api_2018, folders):
    return create_app({"INSTANCE": str(api_2018.instance), "TESTING": True,
                       "TILES_DIR": str(folders[1])}).test_client()


BAD = [
    ("/tiles/ward/12/2046/-1.pbf", 400), ("/tiles/ward/-1/0/0.pbf", 400), ("/tiles/ward/1/0/0.5.pbf", 400),
    ("/tiles/ward/z/0/0.pbf", 400), ("/tiles/ward/1/+1/0.pbf", 400), ("/tiles/ward/1/1e1/0.pbf", 400),
    ("/tiles/ward/1/%20/0.pbf", 400), ("/tiles/ward/1/99999999999/0.pbf", 400), ("/tiles/ward/1/0x1/0.pbf", 400),
    ("/tiles/ward/17/0/0.pbf", 404), ("/tiles/ward/99/0/0.pbf", 404), ("/tiles/ward/12/4096/0.pbf", 404),
    ("/tiles/ward/0/0/1.pbf", 404), ("/tiles/ward/3/8/8.pbf", 404),
    ("/tiles/county/1/1/1.pbf", 404), ("/tiles/WARD/1/1/1.pbf", 404), ("/tiles/ward/1/1/1.png", 404),
    ("/tiles/ward/1/1/1", 404), ("/tiles/ward/1/1.pbf", 404), ("/tiles/ward", 404), ("/tiles/", 404),
    ("/tiles/../secret.pbf", (400, 404)), ("/tiles/ward/../../secret.pbf", (400, 404)),
    ("/tiles/../../1/1.pbf", (400, 404)),
    ("/tiles/..%2F..%2Fsecret.pbf", 404), ("/tiles/ward/..%2f..%2f..%2fsecret/1/1.pbf", 404),
    ("/tiles/%2e%2e/1/1/1.pbf", 404), ("/tiles/ward/%2e%2e/%2e%2e/1.pbf", 400), ("/tiles/ward/1/1/..%2F..%2F1.pbf", 404),
    ("/tiles/ward%2F..%2F..%2F/1/1/1.pbf", 404), ("/tiles/ward/1/1/1.pbf%00", 404), ("/tiles/ward/1/1/%00.pbf", 400),
    ("/tiles/ward/1/1/1.pbf/..", 404), ("/tiles/ward/12/2046/1362.pbf?crime=../../etc", 400),
    ("/tiles/ward/12/2046/1362.pbf?from=2018-13", 400),
]


@pytest.mark.parametrize("url,status", BAD)
def test_bad_tile_addresses_are_4xx_json(client, url, status):
    response = client.get(url)
    allowed = status if isinstance(status, tuple) else (status,)  # a traversal may fail either check first
    assert response.status_code in allowed, (url, response.data[:200])
    body = response.get_json()
    assert body["status"] == response.status_code and body["error"]
    assert SECRET not in response.data


def test_no_request_reads_or_writes_outside_tiles_dir(client, folders):
    base, tiles = folders
    before = sorted(p.relative_to(base) for p in base.rglob("*") if not p.is_relative_to(tiles))
    for url, _status in BAD:
        client.get(url)
    assert client.get(GOOD).status_code == 200
    after = sorted(p.relative_to(base) for p in base.rglob("*") if not p.is_relative_to(tiles))
    assert after == before
    written = [p for p in tiles.rglob("*") if p.is_file()]
    assert written and all(p.suffix == ".pbf" and not p.name.startswith(".tmp") for p in written)


def test_cache_path_refuses_to_leave_its_root(tmp_path):
    cache = TileCache(tmp_path / "tiles")
    assert cache.path("5", "ward", "q", 1, 0, 0).is_relative_to(tmp_path / "tiles")
    for key in ("../../../../x", "/etc"):
        with pytest.raises(Exception) as caught:
            cache.path("5", "ward", key, 1, 0, 0)
        assert getattr(caught.value, "status", None) == 404
    with pytest.raises(Exception) as caught:
        cache.path("5", "../ward", "q", 1, 0, 0)
    assert getattr(caught.value, "status", None) == 404


def test_tiles_are_cached_by_data_version_layer_and_query(api_2018, client, folders):
    tiles = folders[1]
    version = api_2018.store.data_version()
    url = "/tiles/borough/11/1022/681.pbf?crime=burglary&from=2018-04&to=2018-05"
    first = client.get(url)
    second = client.get(url)
    assert first.status_code == second.status_code == 200
    assert (first.headers["X-Tile-Cache"], second.headers["X-Tile-Cache"]) == ("miss", "hit")
    assert first.data == second.data and mapbox_vector_tile.decode(first.data)["borough"]["features"]
    files = list((tiles / f"v{version}" / "borough").glob("burglary.2018-04_2018-05.*/11/1022/681.pbf"))
    assert len(files) == 1 and files[0].read_bytes() == first.data
    # Another query is another folder, with other figures.
    other = client.get("/tiles/borough/11/1022/681.pbf?crime=all-crime&from=2018-04&to=2018-05")
    assert other.headers["X-Tile-Cache"] == "miss" and other.data != first.data


def test_a_cached_tile_is_what_a_fresh_build_gives(api_2018, client):
    from crimemap import figures as fig
    from crimemap.tiles import build_tile

    cached = client.get(GOOD)
    assert cached.headers["X-Tile-Cache"] in ("hit", "miss")
    months = fig.latest_months(api_2018.store, 12)
    fresh = build_tile(api_2018.store, "ward", 12, 2046, 1362, months, "all-crime",
                       TileOptions.from_config(client.application.config))
    assert client.get(GOOD).data == fresh


def test_query_cap_serves_without_keeping(api_2018, tmp_path):
    client = create_app({"INSTANCE": str(api_2018.instance), "TESTING": True, "TILES_DIR": str(tmp_path),
                         "TILES_CACHE_QUERIES_MAX": 1}).test_client()
    assert client.get(GOOD + "?crime=burglary").status_code == 200
    assert client.get(GOOD + "?crime=drugs").status_code == 200
    again = client.get(GOOD + "?crime=drugs")
    assert again.status_code == 200 and again.headers["X-Tile-Cache"] == "miss" and again.data
    assert len(list(tmp_path.glob("v*/ward/*"))) == 1


def test_prune_keeps_only_the_current_version(tmp_path):
    for version in ("3", "4", "5"):
        (tmp_path / f"v{version}" / "ward").mkdir(parents=True)
    (tmp_path / "README.md").write_text("kept")
    assert TileCache(tmp_path).prune("5") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "v5"]


def test_etag_and_cache_control_follow_the_data_version(api_2018, client):
    response = client.get(GOOD)
    etag = response.headers["ETag"]
    assert etag.startswith(f'"d{api_2018.store.data_version()}-')
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert client.get(GOOD, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(GOOD, headers={"If-None-Match": '"d0-stale"'}).status_code == 200
    assert client.get(GOOD + "?crime=burglary").headers["ETag"] != etag  # keyed on the query too
    assert "ETag" not in client.get("/tiles/ward/99/0/0.pbf").headers  # errors are not labelled


def test_an_empty_tile_is_an_empty_200(client):
    response = client.get("/tiles/ward/12/0/0.pbf")  # the Pacific
    assert response.status_code == 200 and response.data == b""


def test_tiles_build_command(api_2018, tmp_path):
    from click.testing import CliRunner

    from crimemap.cli import main

    env = {"CRIMEMAP_TILES_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["--instance", str(api_2018.instance), "tiles", "build", "--layer", "borough",
                                       "--minzoom", "8", "--maxzoom", "10", "--json"], env=env)
    assert result.exit_code == 0, result.output
    totals = json.loads(result.output)
    files = [p for p in tmp_path.rglob("*.pbf")]
    assert totals["built"] + totals["cached"] == totals["tiles"] > 0
    assert len(files) == totals["tiles"] - totals["empty"] > 0
    assert sum(os.path.getsize(p) for p in files) == totals["bytes"]
    zooms = {int(p.parts[-3]) for p in files}
    assert zooms == {8, 9, 10}
    again = CliRunner().invoke(main, ["--instance", str(api_2018.instance), "tiles", "build", "--layer", "borough",
                                      "--minzoom", "8", "--maxzoom", "10", "--json"], env=env)
    assert json.loads(again.output)["cached"] == len(files)
    bad = CliRunner().invoke(main, ["--instance", str(api_2018.instance), "tiles", "build", "--minzoom", "9",
                                    "--maxzoom", "8"], env=env)
    assert bad.exit_code != 0 and "past --maxzoom" in bad.output and "Traceback" not in bad.output


def test_london_map_links_to_the_lsoa_tile_map_only_when_lsoas_are_loaded(client, tmp_path):
    page = client.get("/?crime=burglary").get_data(as_text=True)
    assert 'href="/map/lsoa?crime=burglary"' in page
    assert client.get("/map/lsoa?crime=burglary").status_code == 200
    empty = create_app({"INSTANCE": str(tmp_path), "TESTING": True}).test_client()
    assert "/map/lsoa" not in empty.get("/").get_data(as_text=True)
