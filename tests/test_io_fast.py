"""The pyarrow fast path of the police.uk reader reads exactly what the careful reader reads.

Every case reads the same file twice, with ``policeuk.FAST_PATH`` on and off,
and compares the chunks' concatenation (values and dtypes), the rejects (count,
reasons, examples with line numbers) and the file notes. The careful reader is
the independent reference here: it is the one tests/test_io_crimes.py checks
against the files' own text. Each case also records how many blocks the fast
path took, so that a fast path that silently never runs fails too.
"""

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from crimemap.io import policeuk, policeuk_arrow
from crimemap.io.crimes import Rejects, read_points

API = "crime/police_uk_api_partial"
CITY = "crime/police_uk/city-of-london"
HEADER = ("Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type,"
          "Last outcome category,Context")


@pytest.fixture
def taken(monkeypatch):
    """Count the blocks each fast-path finisher took (returned a chunk for)."""
    counts = {"csv": 0, "json": 0}
    for kind in counts:
        original = getattr(policeuk_arrow, f"finish_{kind}")

        def counted(*args, _original=original, _kind=kind, **kwargs):
            chunk = _original(*args, **kwargs)
            counts[_kind] += chunk is not None
            return chunk

        monkeypatch.setattr(policeuk_arrow, f"finish_{kind}", counted)
    return counts


def read(path, fast, monkeypatch, chunk_rows=200_000):
    monkeypatch.setattr(policeuk, "FAST_PATH", fast)
    rejects = Rejects()
    chunks = list(read_points(path, chunk_rows=chunk_rows, rejects=rejects))
    assert all(len(chunk) <= chunk_rows for chunk in chunks)
    return pd.concat(chunks, ignore_index=True), rejects


def same(path, monkeypatch, chunk_rows=200_000):
    """Read ``path`` both ways and check the results are identical; return the fast one."""
    fast, fast_rejects = read(path, True, monkeypatch, chunk_rows)
    slow, slow_rejects = read(path, False, monkeypatch, chunk_rows)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert (fast_rejects.count, fast_rejects.by_reason, fast_rejects.examples, fast_rejects.notes) == \
        (slow_rejects.count, slow_rejects.by_reason, slow_rejects.examples, slow_rejects.notes)
    return fast, fast_rejects


def test_real_api_files_same_and_fast(need_shared, monkeypatch, taken):
    for path in sorted(need_shared(API).glob("*.jsonl.gz")):
        frame, rejects = same(path, monkeypatch)
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            assert len(frame) == sum(1 for _ in lines)
        assert rejects.count == 0
    assert taken["json"] >= 3


def test_real_city_of_london_files_same_and_fast(need_shared, monkeypatch, taken):
    files = sorted(need_shared(CITY).glob("*.csv"))
    for path in files[:6]:
        frame, _ = same(path, monkeypatch, chunk_rows=500)
        assert len(frame) == len(pd.read_csv(path, dtype=str))
    assert taken["csv"] >= 6


@pytest.mark.parametrize("name", ["api.jsonl", "api_array.json", "api_broken_array.json", "api_two_arrays.json",
                                  "street_bad_values.csv", "street_basic.csv", "street_bom.csv",
                                  "street_broken.csv", "street_cp1252.csv", "street_crlf.csv", "street_swapped.csv"])
@pytest.mark.parametrize("chunk_rows", [1, 3, 200_000])
def test_fixtures_same(fixtures, monkeypatch, name, chunk_rows):
    same(fixtures / "crimes" / name, monkeypatch, chunk_rows)


# -------------------------------------------------------------------- street CSV, one bad row among many


def _street_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    types = ["Burglary", "Robbery", "Anti-social behaviour", "Vehicle crime", "Drugs"]
    rows = []
    for i in range(n):
        lon, lat = -0.5 + rng.random() * 0.7, 51.3 + rng.random() * 0.4
        where = "" if i % 97 == 5 else f"{lon:.6f}"
        rows.append(f"{i:064x},2023-0{1 + i % 9},Metropolitan Police Service,Metropolitan Police Service,"
                    f"{where},{'' if not where else f'{lat:.6f}'},On or near Street {i % 300},E0100{i % 5000:04d},"
                    f"Area {i % 5000:04d}X,{types[i % 5]},Under investigation,")
    return rows


BAD_ROWS = {
    "bad month": "x,2023-13,a,Metropolitan Police Service,-0.1,51.5,s,E01000001,n,Burglary,o,",
    "unknown type": "x,2023-01,a,Metropolitan Police Service,-0.1,51.5,s,E01000001,n,Jaywalking,o,",
    "swapped": "x,2023-01,a,Metropolitan Police Service,51.5,-0.1,s,E01000001,n,Burglary,o,",
    "out of range": "x,2023-01,a,Metropolitan Police Service,-20.1,51.5,s,E01000001,n,Burglary,o,",
    "missing lat": "x,2023-01,a,Metropolitan Police Service,-0.1,,s,E01000001,n,Burglary,o,",
    "exponent": "x,2023-01,a,Metropolitan Police Service,-1e-1,51.5,s,E01000001,n,Burglary,o,",
    "nan text": "x,2023-01,a,Metropolitan Police Service,nan,51.5,s,E01000001,n,Burglary,o,",
    "quoted": 'x,2023-01,a,Metropolitan Police Service,-0.1,51.5,"s, with a comma",E01000001,n,Burglary,o,',
    "too few": "x,2023-01,a,Metropolitan Police Service,-0.1,51.5,s,E01000001,n,Burglary,o",
    "too many": "x,2023-01,a,Metropolitan Police Service,-0.1,51.5,s,E01000001,n,Burglary,o,,",
    "blank": "",
    "carriage return": "x,2023-01,a,Metropolitan Police Service,-0.1,51.5,s\r,E01000001,n,Burglary,o,",
    "odd force": "x,2023-01,a,Gotham City Police,-0.1,51.5,s,E01000001,n,Burglary,o,",
    "label spelling": "x,2023-01,a,Metropolitan Police Service,-0.1,51.5,s,E01000001,n,  burglary ,o,",
}


@pytest.mark.parametrize("bad", sorted(BAD_ROWS))
@pytest.mark.parametrize("where", [0, 9000, 19999])
def test_street_csv_one_bad_row(tmp_path, monkeypatch, taken, bad, where):
    rows = _street_rows(20000)
    rows.insert(where, BAD_ROWS[bad])
    path = tmp_path / "street.csv"
    path.write_bytes((HEADER + "\n" + "\n".join(rows) + "\n").encode("utf-8"))
    frame, rejects = same(path, monkeypatch, chunk_rows=3000)  # ~4.2 MB: blocks of 1 to 2 MB
    assert taken["csv"] >= 1  # the block without the bad row was still taken fast


def test_street_csv_cp1252(tmp_path, monkeypatch, taken):
    rows = _street_rows(20000)
    rows[19500] = rows[19500].replace("On or near", "Caf\xe9 near")
    path = tmp_path / "street.csv"
    path.write_bytes((HEADER + "\n" + "\n".join(rows) + "\n").encode("cp1252"))
    frame, rejects = same(path, monkeypatch, chunk_rows=3000)
    assert any("Windows-1252" in note for note in rejects.notes)
    assert taken["csv"] >= 1


def test_street_csv_gzip_truncated(tmp_path, monkeypatch):
    rows = _street_rows(12000)
    data = gzip.compress((HEADER + "\n" + "\n".join(rows) + "\n").encode("utf-8"))
    path = tmp_path / "street.csv.gz"
    path.write_bytes(data[: len(data) * 3 // 4])
    frame, rejects = same(path, monkeypatch, chunk_rows=3000)
    assert rejects.by_reason == {"truncated gzip stream": 1}


def test_street_csv_no_final_newline_and_no_rows(tmp_path, monkeypatch):
    path = tmp_path / "street.csv"
    path.write_text(HEADER + "\n" + "\n".join(_street_rows(50)), encoding="utf-8")
    frame, _ = same(path, monkeypatch)
    assert len(frame) == 50
    path.write_text(HEADER + "\n", encoding="utf-8")
    frame, _ = same(path, monkeypatch)
    assert len(frame) == 0


# ----------------------------------------------------------------- API JSON Lines, one bad record among many


def _api_lines(need_shared, n):
    path = sorted(need_shared(API).glob("*.jsonl.gz"))[0]
    with gzip.open(path, "rb") as fh:
        return [next(fh).rstrip(b"\n") for _ in range(n)]


def _edited(line, **changes):
    record = json.loads(line)
    for key, value in changes.items():
        if value is KeyError:
            record.pop(key, None)
        else:
            record[key] = value
    return json.dumps(record).encode()


BAD_RECORDS = {
    "bad month": {"month": "2018-3"},
    "unknown category": {"category": "jaywalking"},
    "no category": {"category": KeyError},
    "empty month": {"month": ""},
    "null id": {"id": None},
    "string id": {"id": "12"},
    "huge id": {"id": 10 ** 20},
    "no location": {"location": None},
    "number latitude": {"location": {"latitude": 51.5, "longitude": "-0.1", "street": {"id": 1, "name": "s"}}},
    "swapped": {"location": {"latitude": "-0.1", "longitude": "51.5", "street": {"id": 1, "name": "s"}}},
    "missing longitude": {"location": {"latitude": "51.5", "street": {"id": 1, "name": "s"}}},
    "btp": {"location_type": "BTP"},
    "context object": {"context": {"a": 1}},
    "outcome null": {"outcome_status": None},
}


@pytest.mark.parametrize("bad", sorted(BAD_RECORDS))
def test_api_jsonl_one_bad_record(need_shared, tmp_path, monkeypatch, taken, bad):
    lines = _api_lines(need_shared, 9000)  # ~3 MB: three fast-path blocks at chunk_rows=2000
    lines[7000] = _edited(lines[7000], **BAD_RECORDS[bad])
    path = tmp_path / "api.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    same(path, monkeypatch, chunk_rows=2000)
    assert taken["json"] >= 1


@pytest.mark.parametrize("damage", ["duplicate id", "blank line", "two on a line", "invalid json", "not an object",
                                    "crlf", "invalid utf-8", "truncated gzip", "no final newline"])
def test_api_jsonl_damaged(need_shared, tmp_path, monkeypatch, damage):
    lines = _api_lines(need_shared, 9000)
    if damage == "duplicate id":
        lines[8000] = _edited(lines[8000], id=json.loads(lines[10])["id"])  # a duplicate from an earlier block
    elif damage == "blank line":
        lines.insert(6000, b"   ")
    elif damage == "two on a line":
        lines[6000:6002] = [lines[6000] + b" " + lines[6001], b""]
    elif damage == "invalid json":
        lines[6000] = lines[6000][:-5]
    elif damage == "not an object":
        lines[6000] = b"[1, 2]"
    elif damage == "invalid utf-8":
        lines[6000] = lines[6000].replace(b'"context":""', b'"context":"caf\xe9"')
    data = b"\n".join(lines) + b"\n"
    if damage == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif damage == "no final newline":
        data = data[:-1]
    path = tmp_path / "api.jsonl"
    if damage == "truncated gzip":
        packed = gzip.compress(data)
        path = tmp_path / "api.jsonl.gz"
        path.write_bytes(packed[: len(packed) * 2 // 3])
    else:
        path.write_bytes(data)
    frame, rejects = same(path, monkeypatch, chunk_rows=2000)
    if damage in ("duplicate id", "invalid json", "not an object", "truncated gzip"):
        assert rejects.count == 1


# ------------------------------------------------------------------------------------------ read-ahead


def test_read_ahead_same_as_reading_in_the_callers_thread(fixtures, monkeypatch):
    from crimemap.io import blocks

    path = fixtures / "crimes" / "street_bad_values.csv"
    ahead, ahead_rejects = read(path, True, monkeypatch, chunk_rows=2)
    monkeypatch.setattr(blocks, "PREFETCH", False)
    here, here_rejects = read(path, True, monkeypatch, chunk_rows=2)
    pd.testing.assert_frame_equal(ahead, here, check_exact=True)
    assert (ahead_rejects.by_reason, ahead_rejects.examples) == (here_rejects.by_reason, here_rejects.examples)


def test_read_ahead_raises_in_order_and_stops_when_dropped():
    import gc
    import threading

    from crimemap.io.blocks import Prefetch

    def numbers():
        yield 1
        yield 2
        raise ValueError("broken at the third")

    items = Prefetch(numbers())
    assert next(items) == 1 and next(items) == 2
    with pytest.raises(ValueError, match="third"):
        next(items)

    closed = threading.Event()

    def endless():
        try:
            while True:
                yield 0
        finally:
            closed.set()

    items = Prefetch(endless())
    assert next(items) == 0
    worker = items._thread
    assert worker.is_alive()  # blocked, one item ahead
    del items
    gc.collect()
    assert closed.wait(5)  # the worker stopped and closed the generator
    worker.join(5)
    assert not worker.is_alive()


def test_one_file_ahead_reads_the_next_file_while_the_caller_works(need_shared):
    import threading

    from crimemap.io.blocks import Prefetch, one_file_ahead

    paths = sorted(need_shared(API).glob("*.jsonl.gz"))
    started, opened = {}, []

    def open_file(path):
        opened.append(path.name)
        chunks = read_points(path)
        original = chunks.start

        def start():
            started[path.name] = threading.get_ident()
            return original()

        chunks.start = start
        return chunks

    seen = []
    for path, chunks in one_file_ahead(paths, open_file):
        assert isinstance(chunks, Prefetch) and path.name in started
        # The next file was opened and its worker started before this one is read.
        assert opened[-1] == (paths[len(seen) + 1].name if len(seen) + 1 < len(paths) else path.name)
        assert chunks._thread is not None or chunks._done
        seen.append(pd.concat(list(chunks), ignore_index=True))
    # The same rows as reading file after file.
    for path, frame in zip(paths, seen):
        pd.testing.assert_frame_equal(frame, pd.concat(list(read_points(path)), ignore_index=True), check_exact=True)


def test_one_file_ahead_reports_errors_in_order_and_stops_the_next_file():
    from crimemap.io.blocks import Prefetch, one_file_ahead

    made = {}

    def open_file(name):
        if name == "bad":
            raise ValueError("bad file")
        made[name] = Prefetch(iter([name + "1", name + "2"]))
        return made[name]

    got = []
    with pytest.raises(ValueError, match="bad file"):
        for name, chunks in one_file_ahead(["a", "b", "bad", "c"], open_file):
            got.extend(chunks)
    assert got == ["a1", "a2", "b1", "b2"]  # the error comes after the files before it

    pairs = one_file_ahead(["a", "b"], open_file)
    _, first = next(pairs)
    assert made["b"]._thread is not None  # started ahead
    pairs.close()  # the caller stops early: the next file's worker stops too
    assert made["b"]._done and made["b"]._thread is None
    assert first._thread is not None  # the caller's own file is the caller's to close
    assert list(one_file_ahead([], open_file)) == []
