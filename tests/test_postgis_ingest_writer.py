"""The PostGIS writer's bulk paths for locations and the join cache, against the SQLite writer.

The PostGIS store looks a chunk's locations up one by one in the unique index,
takes ids for the new ones from the sequence and COPYs them straight into
``locations``; join results go straight into ``location_areas`` unless some of
the locations are joined already (then they are replaced). These tests feed
both writers the same chunks and require the same ids and rows, and check
that the lookups stay index probes (docs/postgis.md "PostGIS ingest").

The database is the ``postgis_url`` fixture (the PostGIS leg's own, or a
throw-away cluster); without PostgreSQL the tests skip, except under CI=true.
"""

import numpy as np
import pytest

from crimemap.store.postgis_writer import _KNOWN_LOCATIONS, _STORED_LOCATION_AREAS, PostGISWriter


def _stores(postgis_url, tmp_path):
    from crimemap.config import load_settings
    from crimemap.store import open_store

    lite = load_settings(instance=tmp_path / "lite", overrides={"DATABASE_URL": ""}, environ={})
    pg = load_settings(instance=tmp_path / "pg", overrides={"DATABASE_URL": postgis_url,
                                                            "DATABASE_SCHEMA": "instance"}, environ={})
    return open_store(lite), open_store(pg)


def _chunk(keys):
    """lon, lat, x, y arrays for location keys (small integers -> distinct micro-degree points)."""
    keys = np.asarray(keys, dtype="int64")
    lon = -0.1 + keys * 1e-6
    lat = 51.5 + (keys % 7) * 1e-6
    return lon, lat, keys * 10.0, keys * 20.0


# Chunks with repeats inside them, then locations already stored mixed with new ones.
CHUNKS = [[5, 3, 5, 9, 3, 1], [9, 2, 5, 11, 2, 0, 1], [7, 7, 7], [3, 9, 5]]


def test_location_ids_are_the_sqlite_writers(postgis_url, tmp_path):
    ids, tables = {}, {}
    for store in _stores(postgis_url, tmp_path):
        got = []
        for chunk in CHUNKS:  # one transaction per chunk, as separate ingests would
            with store.writer() as writer:
                got.append(writer.location_ids(*_chunk(chunk)).tolist())
        ids[store.dialect] = got
        tables[store.dialect] = store.query("SELECT id, lon_e6, lat_e6, x, y FROM locations ORDER BY id")
    assert ids["postgresql"] == ids["sqlite"]
    assert tables["postgresql"] == tables["sqlite"]
    # Independently: one id per distinct key, new keys numbered in order of first appearance.
    order = list(dict.fromkeys(k for chunk in CHUNKS for k in chunk))
    number = {k: n + 1 for n, k in enumerate(order)}
    assert ids["postgresql"] == [[number[k] for k in chunk] for chunk in CHUNKS]


def test_a_rolled_back_writer_leaves_no_gap_and_the_sequence_follows(postgis_url, tmp_path):
    ids = {}
    for store in _stores(postgis_url, tmp_path):
        with store.writer() as writer:
            writer.location_ids(*_chunk([1, 2, 3]))
        with pytest.raises(RuntimeError, match="halfway"):
            with store.writer() as writer:
                writer.location_ids(*_chunk([4, 5]))
                raise RuntimeError("halfway")
        with store.writer() as writer:
            got = writer.location_ids(*_chunk([6, 1, 4])).tolist()
            # A plain INSERT taking the default id lands after the ids the writer chose itself.
            default = writer.insert_id("INSERT INTO locations(lon_e6, lat_e6) VALUES (?, ?)", (0, 0))
        ids[store.dialect] = (got, default)
    assert ids["postgresql"] == ids["sqlite"] == ([4, 1, 5], 6)


def test_set_location_areas_adds_and_replaces_as_sqlite_does(postgis_url, tmp_path):
    rows = {}
    for store in _stores(postgis_url, tmp_path):
        with store.writer() as writer:
            writer.location_ids(*_chunk([1, 2, 3, 4]))
            writer.execute("INSERT INTO layers(level, vintage) VALUES ('ward', 't')")
            layer_id = writer.layer_ids()[0]
            assert writer.unjoined_locations(layer_id, limit=2)[0].tolist() == [1, 2]
            writer.set_location_areas(layer_id, [1, 2], ["A", None], [0, 1])  # the chunk just read: no probe
            assert writer.unjoined_locations(layer_id)[0].tolist() == [3, 4]
            writer.set_location_areas(layer_id, [2, 3], ["B", "C"], [0, 0])  # not that chunk; 2 is stored: replaced
            assert writer.unjoined_locations(layer_id, after=0, limit=1)[0].tolist() == [4]
            writer.set_location_areas(layer_id, [4], ["D"], [1])
            writer.set_location_areas(layer_id, [4], ["E"], [0])  # the same ids again: replaced, not doubled
            assert writer.unjoined_locations(layer_id, after=0)[0].tolist() == []
        rows[store.dialect] = store.query("SELECT layer_id, location_id, code, on_edge FROM location_areas "
                                          "ORDER BY location_id")
    assert rows["postgresql"] == rows["sqlite"] == [(1, 1, "A", 0), (1, 2, "B", 0), (1, 3, "C", 0), (1, 4, "E", 0)]


def _plan(writer, sql, params):
    return "\n".join(r[0] for r in writer._x("EXPLAIN " + sql, params).fetchall())


@pytest.mark.parametrize("analyzed", [False, True])
def test_lookups_probe_the_indexes_whatever_the_statistics(postgis_url, tmp_path, analyzed):
    """No hash or sequential pass over locations or location_areas per chunk, before or after ANALYZE."""
    _, store = _stores(postgis_url, tmp_path)
    keys = np.arange(20_000)
    with store.writer() as writer:
        writer.execute("INSERT INTO layers(level, vintage) VALUES ('ward', 't')")
        layer_id = writer.layer_ids()[0]
        ids = writer.location_ids(*_chunk(keys))
        writer.set_location_areas(layer_id, ids[: len(ids) // 2], ["A"] * (len(ids) // 2), [0] * (len(ids) // 2))
        if analyzed:
            writer.execute("ANALYZE locations, location_areas")
        lon, lat, _, _ = _chunk(keys[:500])
        plans = [
            _plan(writer, _KNOWN_LOCATIONS, (np.round(lon * 1e6).astype("int64").tolist(),
                                             np.round(lat * 1e6).astype("int64").tolist())),
            _plan(writer, _STORED_LOCATION_AREAS, (ids[:500].tolist(), layer_id)),
            _plan(writer, "SELECT l.id FROM locations l WHERE l.id > %s AND "
                  + PostGISWriter.UNJOINED.replace("?", "%s") + " ORDER BY l.id LIMIT %s",
                  (0, layer_id, 500)),
        ]
        for plan in plans:
            assert "Hash" not in plan, plan
            assert "Seq Scan on location" not in plan, plan
        assert "Index" in plans[0] and "Index" in plans[1] and "Index" in plans[2]
        found = writer._x(_KNOWN_LOCATIONS, (np.round(lon * 1e6).astype("int64").tolist(),
                                             np.round(lat * 1e6).astype("int64").tolist())).fetchall()
        assert sorted(i for _, i in found) == sorted(ids[:500].tolist())
