"""The PostGIS store against the embedded one, on the same real files.

One module-wide pair of instances is loaded with the real loaders: the lad22
boroughs, the 2018 wards, the 2011 LSOAs with the mid-2020 population, the City
of London street CSVs and the Met's borough count table; once into SQLite, once
into PostgreSQL. Every read of the Store interface and the choropleth and area
API answers must be identical. Then the PostGIS-only promises: a re-ingest
replaces, a writer that raises or is killed leaves the previous data serving,
an unreachable database is a 503, a bad DATABASE_URL a clear CLI message.

The database comes from ``CRIMEMAP_DATABASE_URL`` (the PostGIS leg) or the
``postgis_url`` fixture (a throw-away cluster, tests/pg_cluster.py); without
PostgreSQL the tests skip, except under CI=true, where they fail.
"""

import json
import os
import signal
import subprocess
import sys
import time

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from tests.conftest import REPO, _need_shared

CITY = "crime/police_uk/city-of-london"
WARDS_2018 = "boundaries/London-wards-2018/London_Ward.shp"
LAD22 = "boundaries/london-2021-lad22-gen20.shp"
LSOA11 = "boundaries/london-2011-lsoa-gen20.shp"
POP = "population/london-mid2020-lsoa11-pop.csv"
COUNTS = "crime/mps_borough_level/MPS_Borough_Level_Crime_2024-03_to_2025-06.csv"
PERIOD = "from=2024-04&to=2025-03"
VOLATILE = {"updated_at", "loaded_at", "at"}


@pytest.fixture(scope="module")
def pg_url(request):
    url = os.environ.get("CRIMEMAP_DATABASE_URL", "")
    if url.startswith("postgresql"):
        return url
    try:
        return request.getfixturevalue("postgis_url")
    except pytest.FixtureLookupError:
        pass
    message = "no PostgreSQL: set CRIMEMAP_DATABASE_URL=postgresql://... (or run under tests/pg_cluster.py)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: failing instead of skipping)")
    pytest.skip(message)


def _settings(instance, url="", **extra):
    from crimemap.config import load_settings

    overrides = {"DATABASE_URL": url, "DATABASE_SCHEMA": "instance", **extra}
    return load_settings(instance=instance, overrides=overrides, environ={})


def _load(settings):
    from crimemap.ingest import ingest_crimes, load_boundaries
    from crimemap.population import load_population
    from crimemap.store import open_store

    store = open_store(settings)
    load_boundaries(store, _need_shared(LAD22), "borough", settings=settings)
    load_boundaries(store, _need_shared(WARDS_2018), "ward", settings=settings)
    load_boundaries(store, _need_shared(LSOA11), "lsoa", settings=settings)
    load_population(store, _need_shared(POP), settings=settings)
    ingest_crimes(store, sorted(_need_shared(CITY).glob("*.csv")) + [_need_shared(COUNTS)], settings=settings)
    return store


@pytest.fixture(scope="module")
def pair(pg_url, tmp_path_factory):
    """(sqlite store, postgis store, sqlite settings, postgis settings), loaded alike."""
    lite = _settings(tmp_path_factory.mktemp("lite") / "instance")
    pg = _settings(tmp_path_factory.mktemp("pg") / "instance", pg_url)
    return _load(lite), _load(pg), lite, pg


def _scrub(value):
    """A JSON document without the load times (the only thing that differs between two loads)."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def test_backends_are_what_they_say(pair):
    lite, pg, _, settings = pair
    assert (lite.dialect, pg.dialect) == ("sqlite", "postgresql")
    assert pg.schema.startswith("i_") and len(pg.schema) == 18
    assert pg.query("SELECT current_schema()")[0][0] == pg.schema
    assert pg.has_tables(["crimes", "areas"]) and not pg.has_tables(["crimes", "no_such_table"])


def test_same_layers_areas_and_geometry(pair):
    lite, pg = pair[:2]
    assert _scrub(pg.layers()) == _scrub(lite.layers())
    assert [lay["level"] for lay in pg.layers()] == ["borough", "lsoa", "ward"]
    for layer in lite.layers():
        a, b = lite.areas(layer["id"]), pg.areas(layer["id"])
        assert b.crs == a.crs == "EPSG:27700"
        pd.testing.assert_frame_equal(pd.DataFrame(b.drop(columns="geometry")),
                                      pd.DataFrame(a.drop(columns="geometry")))
        assert shapely.equals_exact(b.geometry.to_numpy(), a.geometry.to_numpy(), tolerance=0).all()
        pd.testing.assert_frame_equal(pg.areas(layer["id"], with_geometry=False),
                                      lite.areas(layer["id"], with_geometry=False))


def _sorted(frame):
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_same_counts_and_population(pair):
    lite, pg = pair[:2]
    for layer in lite.layers():
        a, b = lite.point_counts(layer["id"]), pg.point_counts(layer["id"])
        assert len(a) > 0
        pd.testing.assert_frame_equal(_sorted(b), _sorted(a))
        pd.testing.assert_frame_equal(pg.population(layer["id"]), lite.population(layer["id"]))
        some = sorted(a["month"].unique())[:2]
        pd.testing.assert_frame_equal(_sorted(pg.point_counts(layer["id"], months=some, categories=["burglary"])),
                                      _sorted(lite.point_counts(layer["id"], months=some, categories=["burglary"])))
    assert len(lite.area_counts("borough")) > 0
    pd.testing.assert_frame_equal(_sorted(pg.area_counts("borough")), _sorted(lite.area_counts("borough")))
    pd.testing.assert_frame_equal(_sorted(pg.lsoa_population()), _sorted(lite.lsoa_population()))


def test_point_counts_equal_an_independent_geopandas_join(pair):
    """Borough totals per month from a plain geopandas join of the CSV points."""
    pg = pair[1]
    frames = [pd.read_csv(p, usecols=["Month", "Longitude", "Latitude"]) for p in sorted(_need_shared(CITY).glob("*.csv"))]
    points = pd.concat(frames).dropna(subset=["Longitude", "Latitude"]).reset_index(drop=True)
    geo = gpd.GeoDataFrame(points, geometry=gpd.points_from_xy(points.Longitude, points.Latitude),
                           crs="EPSG:4326").to_crs(27700)
    boroughs = gpd.read_file(_need_shared(LAD22)).to_crs(27700)
    inside = gpd.sjoin(geo, boroughs[["geometry"]], predicate="intersects")
    expected = inside[~inside.index.duplicated()].groupby("Month").size()
    counts = pg.point_counts(pg.layer("borough")["id"]).groupby("month")["n"].sum()
    assert counts.to_dict() == expected.to_dict()


def test_same_status(pair):
    lite, pg = pair[:2]
    a, b = _scrub(lite.status()), _scrub(pg.status())
    assert a["crimes"]["rows_read"] > 10_000
    assert b == a


@pytest.fixture(scope="module")
def clients(pair):
    from crimemap.web import create_app

    _, _, lite, pg = pair
    return [create_app({**s, "TESTING": True}).test_client() for s in (lite, pg)]


@pytest.mark.parametrize("url", [
    f"/api/v1/choropleth?level=borough&{PERIOD}",
    f"/api/v1/choropleth?level=ward&crime=burglary&{PERIOD}",
    "/api/v1/choropleth?level=borough&crime=met-burglary&from=2024-04&to=2025-03&geometry=none",
    f"/api/v1/areas/borough/E09000001?{PERIOD}",
    f"/api/v1/areas/ward/{{city_ward}}?{PERIOD}&table=monthly",
    "/api/v1/areas/borough/E09000033?from=2024-04&to=2025-03",
    "/api/v1/status",
])
def test_same_api_answers(pair, clients, url):
    wards = pair[0].areas(pair[0].layer("ward")["id"], with_geometry=False)
    url = url.replace("{city_ward}", wards[wards["borough_code"] == "E09000001"]["code"].iloc[0])
    answers = []
    for client in clients:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        answers.append(_scrub(response.get_json()))
        version = response.headers.get("X-Data-Version")
    assert answers[1] == answers[0]
    assert version == clients[0].get(url).headers.get("X-Data-Version")


# -- PostGIS-only promises ------------------------------------------------------------------------


def _city_store(pg_url, tmp_path, months=2):
    from crimemap.ingest import ingest_crimes, load_boundaries
    from crimemap.store import open_store

    settings = _settings(tmp_path / "instance", pg_url)
    store = open_store(settings)
    assert store.layers() == [] and store.data_version() == "0"  # nothing before the first write
    load_boundaries(store, _need_shared(LAD22), "borough", settings=settings)
    files = sorted(_need_shared(CITY).glob("*.csv"))[:months]
    ingest_crimes(store, files, settings=settings)
    return store, settings, files


def _counts(store):
    frame = store.point_counts(store.layer("borough")["id"])
    return {(r.code, r.month, r.category): r.n for r in frame.itertuples()}


def test_reingest_replaces_and_a_failed_writer_leaves_the_previous_data(pg_url, tmp_path):
    from crimemap.ingest import ingest_crimes

    store, settings, files = _city_store(pg_url, tmp_path)
    before, version = _counts(store), store.data_version()
    rows = store.query("SELECT COUNT(*) FROM crimes")[0][0]
    # The same month again, edited: every burglary becomes robbery.
    text = files[0].read_text(encoding="utf-8")
    edited = tmp_path / files[0].name
    edited.write_text(text.replace("Burglary", "Robbery"), encoding="utf-8")
    ingest_crimes(store, [edited], settings=settings)
    after = _counts(store)
    month = files[0].name[:7]
    burglaries = sum(n for (c, m, cat), n in before.items() if m == month and cat == "burglary")
    assert burglaries > 0
    assert not any(m == month and cat == "burglary" for (c, m, cat) in after)
    assert sum(n for (c, m, cat), n in after.items() if m == month and cat == "robbery") == \
        sum(n for (c, m, cat), n in before.items() if m == month and cat in ("robbery", "burglary"))
    assert store.query("SELECT COUNT(*) FROM crimes")[0][0] == rows
    assert int(store.data_version()) == int(version) + 1

    # A writer that raises halfway: nothing of it lands, and the next write works.
    version, now = store.data_version(), _counts(store)
    with pytest.raises(RuntimeError, match="halfway"):
        with store.writer() as writer:
            writer.replace_counts("test-feed", "mps-borough", "x", pd.DataFrame(
                {"level": ["borough"], "code": ["E09000001"], "name": ["City"], "borough_code": ["E09000001"],
                 "borough_name": ["City"], "major": ["X"], "minor": ["Y"], "month": [month], "count": [5]}), {})
            writer.execute("DELETE FROM crimes WHERE month = ?", (month,))
            raise RuntimeError("halfway")
    assert store.data_version() == version and _counts(store) == now
    assert store.query("SELECT COUNT(*) FROM batches WHERE feed = 'test-feed'")[0][0] == 0
    ingest_crimes(store, [files[0]], settings=settings)
    assert _counts(store) == before


def _writer_in_flight(store):
    """Whether a crimemap writer of this schema holds its lock with rows written (uncommitted)."""
    rows = store.query(
        "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'crimemap' "
        "AND a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()")
    return rows[0][0] > 0


def test_sigkilled_ingest_leaves_the_previous_data_serving(pg_url, tmp_path):
    store, settings, _ = _city_store(pg_url, tmp_path, months=1)
    before, version, status = _counts(store), store.data_version(), _scrub(store.status())
    files = sorted(_need_shared(CITY).glob("*.csv"))
    env = {**os.environ, "CRIMEMAP_DATABASE_URL": pg_url, "CRIMEMAP_DATABASE_SCHEMA": "instance",
           "CRIMEMAP_INGEST_CHUNK_ROWS": "20", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "crimemap", "--instance", settings["INSTANCE"], "crimes", "ingest",
               *map(str, files)]
    proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not _writer_in_flight(store):
        assert proc.poll() is None, f"the ingest ended before it could be killed: {proc.stdout.read()!r}"
        assert time.monotonic() < deadline, "the ingest never started writing"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    # The previous data serves, untouched, while and after the server rolls the dead writer back.
    assert store.data_version() == version and _counts(store) == before
    assert _scrub(store.status()) == status
    result = subprocess.run(command, env={**env, "CRIMEMAP_INGEST_CHUNK_ROWS": "200000"}, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(store.data_version()) == int(version) + 1
    assert len({m for (_, m, _) in _counts(store)}) == len(files)


def test_unreachable_database_is_503_and_bad_url_a_clear_cli_message(tmp_path):
    from click.testing import CliRunner

    from crimemap.cli import main
    from crimemap.errors import StoreUnavailable
    from crimemap.store import open_store
    from crimemap.web import create_app

    # A port where nothing listens (a socket bound and closed).
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/nothing"
    settings = _settings(tmp_path / "down", url, DATABASE_TIMEOUT_S=1.0)
    store = open_store(settings)
    with pytest.raises(StoreUnavailable):
        store.layers()
    response = create_app({**settings, "TESTING": False}).test_client().get("/api/v1/status")
    assert response.status_code == 503
    assert "unavailable" in response.get_json()["error"]
    store.close()  # stop the pool's reconnect attempts to the dead port

    instance = tmp_path / "bad-url"
    result = CliRunner().invoke(main, ["--instance", str(instance), "status"],
                                env={"CRIMEMAP_DATABASE_URL": "postgresql://host:notaport/db"})
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "DATABASE_URL" in result.output
    assert instance.is_dir()


def test_dropped_connections_reconnect_by_themselves(pg_url, tmp_path):
    import contextlib
    import threading

    import psycopg

    from crimemap.store import open_store

    _, settings, _ = _city_store(pg_url, tmp_path, months=1)
    # Its own pool (another size), short timeout: a slow recovery would be a 503 here.
    store = open_store({**settings, "DATABASE_POOL_MAX": 7, "DATABASE_TIMEOUT_S": 3.0})
    version = store.data_version()
    # Six connections in use at once, then idle in the pool.
    with contextlib.ExitStack() as stack:
        conns = [stack.enter_context(store.connection()) for _ in range(6)]
        assert len({id(c) for c in conns}) == 6
    # The server drops every crimemap connection (a restart, a failover): the pool replaces them.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        killed = conn.execute("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE application_name = 'crimemap' AND pid <> pg_backend_pid()").fetchone()[0]
    assert killed >= 6
    assert store.data_version() == version
    with store.snapshot():
        assert store.data_version() == version
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(store.data_version())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [version] * 4
    store.close()


def test_snapshot_sees_one_version_while_a_write_lands(pg_url, tmp_path):
    from crimemap.ingest import ingest_crimes

    store, settings, files = _city_store(pg_url, tmp_path, months=1)
    version = store.data_version()
    with store.snapshot():
        first = _counts(store)
        ingest_crimes(store, [sorted(_need_shared(CITY).glob("*.csv"))[1]], settings=settings)
        with store.snapshot():  # nested: the same snapshot
            assert store.data_version() == version and _counts(store) == first
    assert int(store.data_version()) == int(version) + 1 and len(_counts(store)) > len(first)


def test_ddl_mirrors_the_sqlite_schema(pair):
    lite, pg = pair[:2]
    import sqlite3

    conn = sqlite3.connect(lite.path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    expected = {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    conn.close()
    got = {}
    for table, column in pg.query("SELECT table_name, column_name FROM information_schema.columns "
                                  "WHERE table_schema = ? ORDER BY table_name, ordinal_position", (pg.schema,)):
        got.setdefault(table, []).append(column)
    assert got == expected
    kinds = dict(pg.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = ?", (pg.schema,)))
    assert "gist" in kinds["areas_geom"].lower()


def test_placeholders_survive_literals():
    from crimemap.store.postgis_sql import translate

    assert translate("SELECT a FROM t WHERE b = ? AND c LIKE 'x?%' -- why?\n AND d = ?") == \
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x?%%' -- why?\n AND d = %s"
    assert translate('SELECT "we?ird" FROM t WHERE s = \'it\'\'s ?\' AND n = ?') == \
        'SELECT "we?ird" FROM t WHERE s = \'it\'\'s ?\' AND n = %s'


def test_schema_names(tmp_path):
    import hashlib

    from crimemap.errors import StoreError
    from crimemap.store.postgis_sql import schema_name

    folder = tmp_path / "x" / ".." / "inst"
    assert schema_name({"DATABASE_SCHEMA": "instance", "INSTANCE": str(folder)}) == \
        "i_" + hashlib.sha1(str((tmp_path / "inst").resolve()).encode()).hexdigest()[:16]
    assert schema_name({"DATABASE_SCHEMA": "crimemap", "INSTANCE": "x"}) == "crimemap"
    with pytest.raises(StoreError, match="DATABASE_SCHEMA"):
        schema_name({"DATABASE_SCHEMA": 'bad"; DROP', "INSTANCE": "x"})


def test_json_status_through_the_cli(pair):
    from click.testing import CliRunner

    from crimemap.cli import main

    _, pg, _, settings = pair
    result = CliRunner().invoke(main, ["--instance", settings["INSTANCE"], "status", "--json"],
                                env={"CRIMEMAP_DATABASE_URL": settings["DATABASE_URL"],
                                     "CRIMEMAP_DATABASE_SCHEMA": "instance"})
    assert result.exit_code == 0, result.output
    assert _scrub(json.loads(result.output)) == _scrub(pg.status())


def test_read_only_stores_read_from_the_replica_and_writes_go_to_the_primary(pg_url, tmp_path):
    import socket

    from crimemap.errors import StoreError, StoreUnavailable
    from crimemap.store import open_store

    store, settings, _ = _city_store(pg_url, tmp_path, months=1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    replicated = {**settings, "DATABASE_READ_URL": f"postgresql://postgres@127.0.0.1:{port}/replica",
                  "DATABASE_TIMEOUT_S": 1.0}
    reader = open_store(replicated, readonly=True)
    with pytest.raises(StoreUnavailable):  # the (dead) replica is where it reads
        reader.data_version()
    with pytest.raises(StoreError, match="read-only"):
        reader.writer()
    reader.close()
    # A read-write store on the same settings reads and writes the primary.
    primary = open_store(replicated)
    assert primary.data_version() == store.data_version() != "0"
    replica = open_store({**settings, "DATABASE_READ_URL": pg_url}, readonly=True)
    assert replica.meta() == store.meta()


def test_writers_of_one_schema_queue_like_sqlites(pg_url, tmp_path):
    import threading

    from crimemap.store import open_store

    settings = _settings(tmp_path / "instance", pg_url)
    first, second = open_store(settings), open_store(settings)
    order, inside = [], threading.Event()

    def write(store, name, hold):
        with store.writer() as writer:
            order.append(f"{name} in")
            inside.set()
            time.sleep(hold)
            writer.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                           "SET value = meta.value || excluded.value", ("who", name))
            writer.changed = True
            order.append(f"{name} out")

    a = threading.Thread(target=write, args=(first, "a", 1.0))
    a.start()
    assert inside.wait(30)
    b = threading.Thread(target=write, args=(second, "b", 0))
    b.start()
    a.join(60)
    b.join(60)
    assert order == ["a in", "a out", "b in", "b out"]
    assert first.meta()["who"] == "ab" and first.data_version() == "2"
