"""The fast path of the police.uk reader: clean blocks parsed and checked by pyarrow.

A block of whole lines of a street CSV or of JSON Lines is parsed by pyarrow
(C++, no Python object per value) and checked with vectorised tests. A block is
taken here only when every row of it is clean: it parses without error, has one
row per line, and no row would be rejected by the careful reader
(:func:`crimemap.io.policeuk._finish`). Anything else, one bad row in a million
included, makes these functions return None, and the caller reads that block
again with the careful reader, which finds the reasons and line numbers. So the
fast path can only ever be faster, never different: ``tests/test_io_fast.py``
compares the two on clean and broken inputs. ``docs/ingest-speed.md`` has the
design and the measurements.
"""

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from crimemap.io.crimes import load_schema

# Text as large_string: the type pandas keeps its "str" columns in, so no copy is made.
_TEXT = pa.large_string()
_STREET = pa.struct([("id", pa.int64()), ("name", _TEXT)])
_JSON_SCHEMA = pa.schema([
    ("id", pa.int64()), ("persistent_id", _TEXT), ("category", _TEXT), ("month", _TEXT),
    ("location", pa.struct([("latitude", _TEXT), ("longitude", _TEXT), ("street", _STREET)])),
    ("outcome_status", pa.struct([("category", _TEXT), ("date", _TEXT)])),
    ("context", _TEXT), ("location_type", _TEXT), ("location_subtype", _TEXT),
])
_STR = None  # the pandas dtype of a "str" column, found on first use


def csv_table(data, ncol, usecols, threads=True):
    """Parse a block of whole CSV lines (no header) into string columns, or None.

    None when the block holds a quote, a lone carriage return, invalid UTF-8, a
    blank line or a line with other than ``ncol`` fields: the careful reader handles those.
    Columns are named by position (``"0"``, ``"1"``, ...); only ``usecols`` are kept.
    """
    if not data or b'"' in data or not _utf8(data):
        return None
    names = [str(i) for i in range(ncol)]
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(data),
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=threads, block_size=4 << 20),
            parse_options=pa_csv.ParseOptions(quote_char=False, double_quote=False, escape_char=False,
                                              newlines_in_values=False, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(include_columns=[names[c] for c in usecols],
                                                  column_types={names[c]: pa.large_string() for c in usecols},
                                                  strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                  check_utf8=True))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if b"\r" in data:
        # pyarrow, like pandas, ends a line at "\r\n" and at a lone "\r"; the careful
        # reader numbers lines by "\n", so a lone "\r" (one row more) goes there.
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        if table.num_rows != lines:
            return None
    return table


def json_table(data, threads=True):
    """Parse a block of whole JSON Lines into a table of the police.uk API fields, or None.

    None for anything pyarrow refuses (invalid JSON, a value of another type than
    the API's, an integer beyond 64 bits, a line that is not an object), and for
    a block whose row count is not its line count (a blank line, two records on
    one line): the careful reader handles those.
    """
    if not data or not _utf8(data):
        return None
    # Every line starts a record: no blank line, so one row per line means one record per line.
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    starts = np.concatenate(([0], ends[ends < len(data) - 1] + 1))
    if not (np.frombuffer(data, dtype=np.uint8)[starts] == ord("{")).all():
        return None
    try:
        table = pa_json.read_json(
            pa.BufferReader(data),
            read_options=pa_json.ReadOptions(use_threads=threads, block_size=4 << 20),
            parse_options=pa_json.ParseOptions(explicit_schema=_JSON_SCHEMA, unexpected_field_behavior="ignore",
                                               newlines_in_values=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return table if table.num_rows == len(starts) else None


def json_chunk(data, first_line, stats, slug_to_label, force_of, seen):
    """:func:`json_table` then :func:`finish_json`, the lines numbered from ``first_line``; or None."""
    table = json_table(data)
    if table is None:
        return None
    rows = np.arange(first_line, first_line + table.num_rows, dtype=np.int64)
    return finish_json(table, rows, stats, slug_to_label, force_of, seen)


def _utf8(data):
    """Whether the whole block is valid UTF-8 (pyarrow checks only the columns it keeps)."""
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def finish_csv(table, position, rows, stats, label_to_slug, slug_to_label):
    """Check a parsed street-CSV block and build its chunk, or None if any row needs the careful reader."""
    from crimemap.io.policeuk import _force

    col = {field: table.column(str(pos)) for field, pos in position.items() if str(pos) in table.column_names}
    n = table.num_rows
    if not _months_ok(col["month"]):
        return None
    codes, labels = _factorize(col["crime_type"])
    slugs = [label_to_slug.get(_norm(v), "") for v in labels]
    if "" in slugs:
        return None
    category = _take(slugs, codes)
    crime_type = _take([slug_to_label[s] for s in slugs], codes)
    coords = _coordinates(col["lon"], col["lat"], stats)
    if coords is None:
        return None
    if "force" in col:
        codes, names = _factorize(col["force"])
        force = _take([_force(v, stats) for v in names], codes)
    else:
        force = None
    out = {"month": col["month"], "category": category, "crime_type": crime_type, "force": force,
           "lon": coords[0], "lat": coords[1]}
    for field in ("crime_id", "location", "lsoa_code", "lsoa_name", "outcome", "context"):
        out[field] = col.get(field)
    return _frame(out, rows, n)


def finish_json(table, rows, stats, slug_to_label, force_of, seen):
    """Check a parsed JSON Lines block and build its chunk, or None if any record needs the careful reader.

    ``seen`` is the set of API ids met so far in the file; it is updated when the block is taken.
    """
    n = table.num_rows
    ids = table.column("id")
    if ids.null_count:
        return None
    id_values = ids.to_numpy()
    id_list = id_values.tolist()
    if len(set(id_list)) != n or not seen.isdisjoint(id_list):
        return None  # a duplicate id: the careful reader says which
    location = _fields(table, "location", ("latitude", "longitude", "street"))
    street = _fields_of(location["street"], ("id", "name"))
    outcome = _fields(table, "outcome_status", ("category", "date"))
    text = {"crime_id": table.column("persistent_id"), "category": table.column("category"),
            "month": table.column("month"), "context": table.column("context"),
            "location_type": table.column("location_type"), "location_subtype": table.column("location_subtype"),
            "location": street["name"], "outcome": outcome["category"], "outcome_month": outcome["date"]}
    if text["category"].null_count or text["month"].null_count:
        return None  # a missing required field
    text = {field: pc.fill_null(value, "") for field, value in text.items()}
    if not _months_ok(text["month"]) or pc.any(pc.equal(text["category"], "")).as_py():
        return None
    codes, slugs = _factorize(text["category"])
    labels = [slug_to_label.get(s, "") for s in slugs]
    if "" in labels:
        return None
    coords = _coordinates(pc.fill_null(location["longitude"], ""), pc.fill_null(location["latitude"], ""), stats)
    if coords is None:
        return None
    codes_t, types = _factorize(text["location_type"])
    force = _take([force_of.get(t, "") for t in types], codes_t)
    street_id = street["id"]
    seen.update(id_list)
    out = dict(text, crime_type=_take(labels, codes), force=force, lon=coords[0], lat=coords[1],
               api_id=pd.arrays.IntegerArray(id_values.astype(np.int64, copy=False), np.zeros(n, dtype=bool)),
               street_id=pd.arrays.IntegerArray(pc.fill_null(street_id, 0).to_numpy().astype(np.int64, copy=False),
                                                pc.is_null(street_id).to_numpy(zero_copy_only=False)))
    return _frame(out, rows, n)


# ----------------------------------------------------------------------------- helpers


def _fields(table, name, keys):
    return _fields_of(table.column(name), keys)


def _fields_of(column, keys):
    """Child arrays of a struct column, null wherever the parent is null."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if not chunks:
        return {key: pa.chunked_array([], type=column.type.field(key).type) for key in keys}
    parts = [chunk.flatten() for chunk in chunks]  # flatten() merges the parent's nulls into the children
    index = {column.type.field(i).name: i for i in range(column.type.num_fields)}
    return {key: pa.chunked_array([part[index[key]] for part in parts]) for key in keys}


def _norm(text):
    return " ".join(str(text).split()).casefold()


def _months_ok(month):
    pattern = re.compile(load_schema("police_uk_street.json")["month_pattern"])
    return all(isinstance(m, str) and pattern.match(m) for m in pc.unique(month).to_pylist())


def _factorize(values):
    """``(codes, distinct values)`` of a string column: codes as int32 numpy, values as a list."""
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.unify_dictionaries()
        chunks = encoded.chunks
        if not chunks:
            return np.empty(0, np.int32), []
        dictionary = chunks[0].dictionary
        codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks])
    else:
        dictionary, codes = encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False)
    return codes, dictionary.to_pylist()


def _take(values, codes):
    return pa.array(values, type=pa.large_string()).take(pa.array(codes))


def _coordinates(lon_text, lat_text, stats):
    """float64 lon, lat (NaN where both are empty), or None if any row has a coordinate problem."""
    lon_empty = _empty(lon_text)
    lat_empty = _empty(lat_text)
    if not np.array_equal(lon_empty, lat_empty):
        return None  # one coordinate without the other
    lon, lat = _decimals(lon_text, lon_empty), _decimals(lat_text, lat_empty)
    if lon is None or lat is None:
        return None
    box = load_schema("police_uk_street.json")["coordinates"]
    (lon_lo, lon_hi), (lat_lo, lat_hi) = box["lon_range"], box["lat_range"]
    located = ~lon_empty
    lo, la = lon[located], lat[located]
    if not (np.isfinite(lo).all() and np.isfinite(la).all()
            and ((lo >= lon_lo) & (lo <= lon_hi) & (la >= lat_lo) & (la <= lat_hi)).all()):
        return None  # out of the box, or swapped
    stats.located += int(located.sum())
    return lon, lat


def _empty(text):
    lengths = pc.binary_length(text)
    if isinstance(lengths, pa.ChunkedArray):
        lengths = lengths.combine_chunks() if lengths.num_chunks != 1 else lengths.chunk(0)
    return lengths.to_numpy(zero_copy_only=False) == 0


def _decimals(text, empty):
    """The texts as float64 (NaN where empty), or None when one is not plain digits, "." and "-"."""
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    for chunk in chunks:
        if not _decimal_bytes(chunk):
            return None
    try:
        values = pc.cast(pc.if_else(pa.array(empty), None, text), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _decimal_bytes(chunk):
    """Whether every character of a string array chunk is a digit, "." or "-".

    The characters police.uk writes coordinates with. A text made of these alone is
    read the same by float() (the careful reader) and by pyarrow's cast (both round
    correctly); one that is not, or that either refuses, goes to the careful reader.
    """
    if len(chunk) == 0:
        return True
    offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    buffers = chunk.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[chunk.offset:chunk.offset + len(chunk) + 1]
    if buffers[2] is None:
        return True
    data = np.frombuffer(buffers[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    # "-" "." "/" "0".."9" are 45..57: shifted down by 45 (wrapping below), every byte must be
    # at most 12 and not 2 (the "/"). Two vector comparisons instead of a table lookup per byte.
    shifted = data - np.uint8(45)
    return bool((shifted <= 12).all() and not (shifted == 2).any())


def _strings(values):
    """A pandas ``str`` array over an arrow string column (no copy when pandas keeps strings in arrow)."""
    if isinstance(values, pa.ChunkedArray) and values.num_chunks == 0:
        values = pa.array([], type=pa.large_string())
    if not pa.types.is_large_string(values.type):
        values = values.cast(pa.large_string())
    return pd.array(values, dtype="str")


def _frame(columns, rows, n):
    """Assemble a chunk with exactly the declared columns and dtypes, from arrow and numpy columns."""
    out = {}
    for spec in load_schema("police_uk_street.json")["output"]:
        name, dtype = spec["name"], spec["dtype"]
        value = columns.get(name)
        if name == "source_row":
            out[name] = np.asarray(rows, dtype=np.int64)
        elif value is None and dtype == "Int64":
            out[name] = pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, bool))
        elif value is None and dtype == "float64":
            out[name] = np.full(n, np.nan)
        elif value is None:
            out[name] = _strings(pa.repeat("", n) if n else pa.array([], type=pa.large_string()))
        elif dtype == "str":
            out[name] = _strings(value)
        else:
            out[name] = value
    return pd.DataFrame(out, copy=False)
