"""Crime file readers: police.uk points, Met wide counts, detection and bad input.

Expectations come from the fixtures' own text (read with the csv/json modules
here) or from plain pandas on the real files, never from the reader's output.
"""

import csv
import gzip
import io
import json
import zlib

import numpy as np
import pandas as pd
import pytest

from crimemap.errors import BadInput
from crimemap.io.crimes import COUNT_FORMATS, FORMATS, POINT_FORMATS, Rejects, detect_format, read_counts, \
    read_points

POINT_COLUMNS = {
    "month": "str", "crime_id": "str", "api_id": "Int64", "category": "str", "crime_type": "str", "force": "str",
    "lon": "float64", "lat": "float64", "location": "str", "street_id": "Int64", "lsoa_code": "str",
    "lsoa_name": "str", "outcome": "str", "outcome_month": "str", "context": "str", "location_type": "str",
    "location_subtype": "str", "source_row": "int64",
}
COUNT_COLUMNS = ["level", "code", "name", "borough_code", "borough_name", "major", "minor", "month", "count"]
# police.uk's own label <-> slug pairs, written out here so the schema file is checked, not trusted.
LABELS = {
    "Anti-social behaviour": "anti-social-behaviour", "Bicycle theft": "bicycle-theft", "Burglary": "burglary",
    "Criminal damage and arson": "criminal-damage-arson", "Drugs": "drugs", "Other theft": "other-theft",
    "Possession of weapons": "possession-of-weapons", "Public order": "public-order", "Robbery": "robbery",
    "Shoplifting": "shoplifting", "Theft from the person": "theft-from-the-person",
    "Vehicle crime": "vehicle-crime", "Violence and sexual offences": "violent-crime", "Other crime": "other-crime",
    "Public disorder and weapons": "public-disorder-weapons",
}
FORCES = {"City of London Police": "city-of-london", "Metropolitan Police Service": "metropolitan",
          "British Transport Police": "btp"}


@pytest.fixture
def crimes(fixtures):
    return fixtures / "crimes"


def points(path, **kwargs):
    rejects = kwargs.pop("rejects", None) or Rejects()
    chunks = list(read_points(path, rejects=rejects, **kwargs))
    return pd.concat(chunks, ignore_index=True), rejects


def csv_rows(path, encoding="utf-8-sig"):
    """The fixture as the csv module reads it: (line number, row dict) for well-formed rows."""
    with open(path, newline="", encoding=encoding) as fh:
        reader = csv.DictReader(fh)
        return [(reader.line_num, row) for row in reader]


def rejected_rows(rejects):
    return {row: text.split(":")[0] for row, text in rejects.examples}


# --- formats and detection ------------------------------------------------------------------------

def test_format_names():
    assert FORMATS == ("police-uk-csv", "police-uk-json", "mps-ward", "mps-borough", "mps-lsoa")
    assert POINT_FORMATS + COUNT_FORMATS == FORMATS


@pytest.mark.parametrize("name,fmt", [
    ("street_basic.csv", "police-uk-csv"), ("street_crlf.csv", "police-uk-csv"), ("street_bom.csv", "police-uk-csv"),
    ("street_cp1252.csv", "police-uk-csv"), ("api.jsonl", "police-uk-json"), ("api_array.json", "police-uk-json"),
    ("mps_ward.csv", "mps-ward"), ("mps_borough.csv", "mps-borough"), ("mps_lsoa.csv", "mps-lsoa"),
])
def test_detect_format_from_content_not_name(crimes, tmp_path, name, fmt):
    content = (crimes / name).read_bytes()
    assert detect_format(crimes / name) == fmt
    misleading = tmp_path / "download.json.txt"
    misleading.write_bytes(content)
    assert detect_format(misleading) == fmt
    gzipped = tmp_path / "download.csv"  # gzip content behind a plain name
    gzipped.write_bytes(gzip.compress(content))
    assert detect_format(gzipped) == fmt


@pytest.mark.parametrize("content", [b"", b"\n  \r\n\n", b"\xef\xbb\xbf", gzip.compress(b"")])
def test_empty_file_is_bad_input(tmp_path, content):
    path = tmp_path / "crimes-2024-01.csv"
    path.write_bytes(content)
    for call in (detect_format, read_points, read_counts):
        with pytest.raises(BadInput, match=r"crimes-2024-01\.csv is empty"):
            call(path)
    with pytest.raises(BadInput, match="is empty"):
        read_points(path, fmt="police-uk-json")


@pytest.mark.parametrize("name,content,message", [
    ("stop_and_search.csv", None, "unknown format: its first line has the columns Type, Date"),
    ("animals.csv", b"animal,legs\ncat,4\n", "unknown format"),
    ("other.json", b'[{"id": 1, "name": "x"}]', "not police.uk API crimes"),
    ("other.jsonl", b'{"category": "burglary", "location": {}}\n', "each record needs category, location, month"),
])
def test_unknown_format_is_bad_input(crimes, tmp_path, name, content, message):
    path = crimes / name if content is None else tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInput, match=message) as caught:
        detect_format(path)
    assert name in caught.value.message
    with pytest.raises(BadInput):
        read_points(path)


@pytest.mark.parametrize("name,content,message", [
    ("binary.png", None, "binary file"),
    ("all_bytes.csv", bytes(range(256)) * 4, "binary file"),
    ("sheet.xlsx", b"PK\x03\x04\x14\x00\x06\x00" + bytes(64), "ZIP archive"),
    ("utf16.csv", "Crime ID,Month\n".encode("utf-16"), "UTF-16"),
])
def test_unreadable_file_is_bad_input(crimes, tmp_path, name, content, message):
    path = crimes / name if content is None else tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInput, match=message):
        detect_format(path)
    with pytest.raises(BadInput, match=message):
        read_points(path, fmt="police-uk-csv")


def test_missing_file_and_directory_are_bad_input(tmp_path):
    with pytest.raises(BadInput, match="nope.csv: cannot be opened"):
        detect_format(tmp_path / "nope.csv")
    with pytest.raises(BadInput, match="cannot be opened"):
        read_counts(tmp_path)


def test_missing_required_column_names_it_and_lists_the_file(crimes):
    with pytest.raises(BadInput) as caught:
        read_points(crimes / "street_missing_column.csv")  # fails at call time, before iteration
    message = caught.value.message
    assert "missing required column 'Crime type'" in message
    assert "the file has: Crime ID, Month, Reported by" in message and "Last outcome category" in message


def test_reader_and_format_must_agree(crimes):
    with pytest.raises(BadInput, match="read it with read_counts"):
        read_points(crimes / "mps_ward.csv")
    with pytest.raises(BadInput, match="read it with read_points"):
        read_counts(crimes / "street_basic.csv")
    with pytest.raises(ValueError, match="fmt must be one of police-uk-csv, police-uk-json"):
        read_points(crimes / "street_basic.csv", fmt="mps-ward")
    with pytest.raises(ValueError, match="chunk_rows"):
        read_points(crimes / "street_basic.csv", chunk_rows=0)


# --- police.uk street CSV -------------------------------------------------------------------------

def test_chunk_has_declared_columns_and_dtypes(crimes):
    for name in ("street_basic.csv", "api.jsonl", "street_swapped.csv"):
        for chunk in read_points(crimes / name):
            assert {c: str(t) for c, t in chunk.dtypes.items()} == POINT_COLUMNS


def test_street_csv_values(crimes):
    frame, rejects = points(crimes / "street_basic.csv")
    expected = csv_rows(crimes / "street_basic.csv")
    assert rejects.count == 0
    assert frame["source_row"].tolist() == [line for line, _ in expected]
    assert frame["crime_id"].tolist() == [row["Crime ID"] for _, row in expected]
    assert frame["category"].tolist() == [LABELS[row["Crime type"]] for _, row in expected]
    assert frame["crime_type"].tolist() == [row["Crime type"] for _, row in expected]
    assert frame["force"].tolist() == [FORCES[row["Falls within"]] for _, row in expected]
    lon = [float(row["Longitude"]) if row["Longitude"] else np.nan for _, row in expected]
    np.testing.assert_array_equal(frame["lon"].to_numpy(), lon)
    no_location = frame[frame["lon"].isna()]
    assert no_location["crime_id"].tolist() == ["a3"] and no_location["lat"].isna().all()  # kept, not rejected
    assert frame["api_id"].isna().all() and frame["street_id"].isna().all()
    assert (frame["outcome_month"] == "").all() and (frame["location_type"] == "").all()
    assert frame.loc[frame["crime_id"] == "a6", "lon"].item() == -1.778  # outside London is not a reject


def test_crlf_reads_like_lf(crimes):
    assert b"\r\n" in (crimes / "street_crlf.csv").read_bytes()
    crlf, rejects = points(crimes / "street_crlf.csv")
    lf, _ = points(crimes / "street_basic.csv")
    pd.testing.assert_frame_equal(crlf, lf)
    assert rejects.count == 0 and rejects.notes == []


@pytest.mark.parametrize("name,encoding,note", [
    ("street_bom.csv", "utf-8-sig", "byte order mark (BOM) removed"),
    ("street_cp1252.csv", "cp1252", "decoded as Windows-1252"),
])
def test_bom_and_windows_1252_are_read_and_noted(crimes, name, encoding, note):
    frame, rejects = points(crimes / name)
    expected = csv_rows(crimes / name, encoding=encoding)
    assert rejects.count == 0
    assert frame["location"].tolist() == [row["Location"] for _, row in expected]
    assert "On or near Café Row" in frame["location"].tolist()
    assert frame["context"].tolist()[-1] == "Bag taken – £20"
    assert frame["crime_id"].tolist() == ["d1", "d2"]  # the BOM did not stick to the first column name
    assert any(note in n and name in n for n in rejects.notes)


def test_broken_rows_are_rejected_by_line_and_good_rows_kept(crimes):
    frame, rejects = points(crimes / "street_broken.csv")
    assert rejected_rows(rejects) == {3: "wrong number of fields", 4: "wrong number of fields",
                                      6: "unterminated quote"}
    assert rejects.by_reason == {"wrong number of fields": 2, "unterminated quote": 1}
    assert frame["crime_id"].tolist() == ["b1", "b4", "b6", "b7", "b8", "b9"]
    assert frame["source_row"].tolist() == [2, 5, 7, 9, 10, 12]  # line 8 is blank; b8 spans lines 10-11
    assert frame.loc[frame["crime_id"] == "b4", "location"].item() == "On or near Fish Street Hill, Monument"
    assert frame.loc[frame["crime_id"] == "b8", "location"].item() == "On or near Line\nBreak"
    assert "expected 12 fields, found 4" in dict(rejects.examples)[3]


def test_bad_values_each_get_a_reason(crimes):
    frame, rejects = points(crimes / "street_bad_values.csv")
    assert frame["crime_id"].tolist() == ["c1", "c11"]
    assert rejected_rows(rejects) == {
        3: "non-numeric Longitude", 4: "non-numeric Latitude", 5: "latitude and longitude swapped",
        6: "coordinates out of range", 7: "coordinates out of range", 8: "month not YYYY-MM",
        9: "month not YYYY-MM", 10: "unknown Crime type", 11: "missing Latitude", 13: "coordinates out of range",
    }
    assert rejects.count == sum(rejects.by_reason.values()) == 10
    assert "'west'" in dict(rejects.examples)[3]


def test_whole_file_swapped_says_so(crimes):
    frame, rejects = points(crimes / "street_swapped.csv")
    assert rejects.by_reason == {"latitude and longitude swapped": 3}
    assert frame["crime_id"].tolist() == ["s4"]  # the row without a location is still a crime
    assert any("latitude and longitude swapped" in n and "every one of its 3 located rows" in n for n in rejects.notes)
    _, partly = points(crimes / "street_bad_values.csv")
    assert not any("every one" in n for n in partly.notes)


def test_shared_rejects_accumulate_and_keep_twenty_examples(crimes):
    rejects = Rejects()
    for _ in range(3):
        points(crimes / "street_bad_values.csv", rejects=rejects)
    assert rejects.count == 30 and len(rejects.examples) == 20
    assert rejects.by_reason["coordinates out of range"] == 9


def _big_street_csv(path, n, newline="\n", damage=True):
    """n rows, with known damage unless told not: returns (good crime ids in order, {line: reason})."""
    header = "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name," \
             "Crime type,Last outcome category,Context"
    lines, good, bad = [header], [], {}
    for i in range(n):
        line_no = len(lines) + 1
        row = f"g{i},2024-05,City of London Police,City of London Police,-0.09,51.51,On or near X,E01032739,," \
              f"Burglary,,"
        if not damage:
            good.append(f"g{i}")
        elif i % 997 == 13:
            row, bad[line_no] = f"g{i},2024-05,too,few", "wrong number of fields"
        elif i % 1499 == 7:
            row, bad[line_no] = row.replace("On or near X", '"On or near X'), "unterminated quote"
        elif i % 2003 == 5:
            row = row.replace("On or near X", '"On or near\nmulti-line X"')
            good.append(f"g{i}")
        else:
            good.append(f"g{i}")
        lines.extend(row.split("\n"))
    path.write_bytes((newline.join(lines) + newline).encode())
    return good, bad


@pytest.mark.parametrize("chunk_rows", [7, 100, 4096, 200_000])
def test_chunks_are_bounded_and_lose_nothing(tmp_path, chunk_rows):
    path = tmp_path / "big.csv"
    good, bad = _big_street_csv(path, 20_000, newline="\r\n")
    rejects = Rejects()
    chunks = list(read_points(path, chunk_rows=chunk_rows, rejects=rejects))
    assert all(len(c) <= chunk_rows for c in chunks)
    frame = pd.concat(chunks, ignore_index=True)
    assert frame["crime_id"].tolist() == good
    assert rejects.count == len(bad)
    assert {row: why for row, why in rejected_rows(rejects).items()} == dict(list(bad.items())[:20])
    assert frame["source_row"].is_monotonic_increasing
    assert (frame["location"].str.contains("multi-line")).sum() == sum(1 for g in good if int(g[1:]) % 2003 == 5)


def test_quoted_record_across_block_boundary(tmp_path):
    # Blocks hold max(chunk_rows, 80) lines; put a two-line quoted record at the end of the
    # first block and an unterminated quote at the end of the second one.
    header = "Crime ID,Month,Falls within,Longitude,Latitude,Location,Crime type\n"
    lines = [f"q{i},2024-06,City of London Police,-0.09,51.51,On or near X,Drugs\n" for i in range(300)]
    lines[79] = 'q79,2024-06,City of London Police,-0.09,51.51,"On or near\nTwo Lines",Drugs\n'
    lines[159] = 'q159,2024-06,City of London Police,-0.09,51.51,"On or near Open,Drugs\n'
    path = tmp_path / "boundary.csv"
    path.write_text(header + "".join(lines))
    frame, rejects = points(path, chunk_rows=10)
    assert frame["crime_id"].tolist() == [f"q{i}" for i in range(300) if i != 159]
    assert frame.loc[frame["crime_id"] == "q79", "location"].item() == "On or near\nTwo Lines"
    assert frame.loc[frame["crime_id"] == "q80", "source_row"].item() == 83  # q79 took lines 81-82
    assert rejected_rows(rejects) == {162: "unterminated quote"}


@pytest.mark.parametrize("chunk_rows", [7, 200_000])
def test_any_valid_quoting_round_trips(tmp_path, chunk_rows):
    # Whatever csv.writer quotes (commas, quotes, line breaks, carriage returns) must come back unchanged.
    rng = np.random.default_rng(7)
    alphabet = np.array(list("ab ,\"\n\ré"))
    header = ["Crime ID", "Month", "Falls within", "Longitude", "Latitude", "Location", "Crime type", "Context"]
    rows = [[f"r{i}", "2024-07", "City of London Police", "-0.09", "51.51",
             "On or near " + "".join(rng.choice(alphabet, rng.integers(0, 12))),
             "Drugs", "".join(rng.choice(alphabet, rng.integers(0, 5)))] for i in range(3000)]
    text = io.StringIO(newline="")
    csv.writer(text, lineterminator="\r\n").writerows([header, *rows])
    path = tmp_path / "quoted.csv"
    path.write_bytes(text.getvalue().encode("utf-8"))
    frame, rejects = points(path, chunk_rows=chunk_rows)
    assert rejects.count == 0
    assert frame["location"].tolist() == [r[5] for r in rows]
    assert frame["context"].tolist() == [r[7] for r in rows]


def test_gzip_is_read_transparently(crimes, tmp_path):
    path = tmp_path / "street.csv.gz"
    path.write_bytes(gzip.compress((crimes / "street_basic.csv").read_bytes()))
    pd.testing.assert_frame_equal(points(path)[0], points(crimes / "street_basic.csv")[0])


def _decodable_lines(cut):
    """Complete lines a gzip prefix holds, by zlib directly (independent of the reader)."""
    data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut)
    return data[:data.rfind(b"\n") + 1].count(b"\n")


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json-array"])
def test_truncated_gzip_keeps_the_rows_before_the_cut(crimes, tmp_path, kind):
    if kind == "csv":
        path = tmp_path / "big.csv"
        good, _ = _big_street_csv(path, 30_000, damage=False)
        content = path.read_bytes()
    else:
        record = json.loads((crimes / "api.jsonl").read_text().splitlines()[0])
        records = [json.dumps(dict(record, id=i)) for i in range(30_000)]
        content = ("\n".join(records) + "\n" if kind == "jsonl" else "[" + ",\n".join(records) + "]").encode()
    packed = gzip.compress(content)
    cut = packed[: len(packed) // 2]
    path = tmp_path / f"cut.{kind}.gz"
    path.write_bytes(cut)
    frame, rejects = points(path)
    assert rejects.by_reason == {"truncated gzip stream": 1}
    assert any("truncated gzip stream" in n and "missing" in n for n in rejects.notes)
    complete = _decodable_lines(cut)
    assert 0 < complete < 30_000
    if kind == "csv":
        assert frame["crime_id"].tolist() == good[: complete - 1]  # every complete line but the header
        assert frame["source_row"].iloc[-1] == complete
    else:
        assert len(frame) == complete and frame["api_id"].tolist() == list(range(complete))


# --- police.uk API JSON -------------------------------------------------------------------------

def test_api_json_lines(crimes):
    frame, rejects = points(crimes / "api.jsonl")
    assert frame["api_id"].tolist() == [101, 102, 108, 112]
    assert rejected_rows(rejects) == {3: "duplicate id", 4: "invalid JSON", 6: "unknown category",
                                      7: "non-integer id", 9: "month not YYYY-MM",
                                      10: "latitude and longitude swapped", 11: "record is not an object"}
    assert rejects.count == 7  # line 5 is blank: not a record, not a reject
    first = json.loads((crimes / "api.jsonl").read_text().splitlines()[0])
    row = frame.iloc[0]
    assert (row["crime_id"], row["category"], row["crime_type"]) == (first["persistent_id"], "burglary", "Burglary")
    assert row["lat"] == float(first["location"]["latitude"]) and row["lon"] == float(first["location"]["longitude"])
    assert row["street_id"] == first["location"]["street"]["id"] and row["location"] == "On or near Street 101"
    assert (row["outcome"], row["outcome_month"]) == ("Under investigation", "2018-03")
    btp = frame.iloc[1]
    assert (btp["force"], btp["location_type"], btp["crime_id"], btp["outcome"]) == ("btp", "BTP", "", "")
    assert row["force"] == ""  # the API does not say which force
    assert np.isnan(frame.iloc[2]["lon"])  # location null: a crime without a location
    assert frame.iloc[3]["crime_type"] == "Public disorder and weapons"
    assert frame["source_row"].tolist() == [1, 2, 8, 12]


@pytest.mark.parametrize("name,ids,by_reason", [
    ("api_array.json", [201, 202], {"duplicate id": 1}),
    ("api_two_arrays.json", [301, 302, 303], {}),
    ("api_broken_array.json", [401], {"invalid JSON": 1}),
])
def test_api_json_arrays(crimes, name, ids, by_reason):
    frame, rejects = points(crimes / name, chunk_rows=1)
    assert frame["api_id"].tolist() == ids and rejects.by_reason == by_reason
    if by_reason.get("invalid JSON"):
        assert any("rest was skipped" in n for n in rejects.notes)


def test_empty_api_answer_is_no_crimes(tmp_path):
    path = tmp_path / "none.json"
    path.write_text("[]\n")
    assert detect_format(path) == "police-uk-json"
    frame, rejects = points(path)
    assert len(frame) == 0 and list(frame.columns) == list(POINT_COLUMNS) and rejects.count == 0


def test_unterminated_json_array_is_counted(crimes, tmp_path):
    path = tmp_path / "cut.json"
    path.write_text((crimes / "api_two_arrays.json").read_text().rstrip().rstrip("]"))
    frame, rejects = points(path)
    assert frame["api_id"].tolist() == [301, 302, 303] and rejects.by_reason == {"unterminated JSON array": 1}


# --- Met wide counts ------------------------------------------------------------------------------

def _long(path, id_columns):
    """The wide file melted with plain pandas: zero cells out, rows with a bad cell out."""
    wide = pd.read_csv(path, dtype=str, keep_default_na=False)
    months = [c for c in wide.columns if c.isdigit()]
    numbers = wide[months].apply(pd.to_numeric, errors="coerce")
    ok = (numbers.notna() & (numbers >= 0) & (numbers == numbers.round())).all(axis=1)
    melted = wide[ok].melt(id_vars=id_columns, value_vars=months, var_name="month", value_name="count")
    melted["count"] = melted["count"].astype(float).astype(int)
    melted["month"] = melted["month"].str[:4] + "-" + melted["month"].str[4:]
    return wide, melted[melted["count"] != 0]


def test_ward_counts(crimes):
    rejects = Rejects()
    frame = read_counts(crimes / "mps_ward.csv", rejects=rejects)
    wide, expected = _long(crimes / "mps_ward.csv", ["WardCode", "MajorText", "MinorText"])
    assert list(frame.columns) == COUNT_COLUMNS and frame["count"].dtype == np.int64
    got = set(frame[["code", "major", "minor", "month", "count"]].itertuples(index=False, name=None))
    assert got == set(expected.itertuples(index=False, name=None))
    assert (frame["level"] == "ward").all() and (frame["count"] > 0).all()
    assert rejected_rows(rejects) == {5: "negative count", 6: "non-integer count"}
    assert frame.attrs["areas"] == sorted(wide["WardCode"].unique())  # incl. the all-zero ward and rejected rows
    assert frame.attrs["months"] == ["2024-01", "2024-02", "2024-03"]
    heathrow = frame[frame["code"] == "E05013570"]
    assert set(heathrow["borough_name"]) == {"Aviation Security (SO18)"} and set(heathrow["borough_code"]) == {""}
    assert set(frame.loc[frame["code"] == "E05014001", "borough_code"]) == {"E09000002"}
    assert any("Aviation Security (SO18)" in n for n in rejects.notes)


def test_borough_counts_map_names_to_codes(crimes):
    frame = read_counts(crimes / "mps_borough.csv")
    codes = dict(zip(frame["name"], frame["code"]))
    assert codes == {"City and County of the City of London": "E09000001", "Kensington & Chelsea": "E09000020",
                     "Richmond-upon-Thames": "E09000027", "London Heathrow and London City Airports": "",
                     "Unknown": ""}
    assert (frame["borough_code"] == frame["code"]).all()
    assert frame.attrs["areas"] == sorted(["E09000001", "E09000020", "E09000027", "E09000033",
                                           "London Heathrow and London City Airports", "Unknown"])
    _, expected = _long(crimes / "mps_borough.csv", ["BoroughName", "MajorText", "MinorText"])
    assert frame["count"].sum() == expected["count"].sum()


def test_lsoa_counts_take_the_borough_code(crimes):
    frame = read_counts(crimes / "mps_lsoa.csv")
    assert frame[["code", "borough_code", "borough_name", "month", "count"]].values.tolist() == [
        ["E01000001", "E09000001", "City of London", "2024-03", 3],
        ["E01000006", "E09000002", "Barking and Dagenham", "2024-02", 1]]
    assert frame.attrs["areas"] == ["E01000001", "E01000006", "E01000007"]


def test_count_file_without_months_or_column(tmp_path):
    path = tmp_path / "ward.csv"
    path.write_text("MajorText,MinorText,WardName,WardCode,LookUp_BoroughName,Total\nA,B,C,D,E,1\n")
    with pytest.raises(BadInput, match="no month columns"):
        read_counts(path, fmt="mps-ward")
    path.write_text("MajorText,MinorText,WardName,LookUp_BoroughName,202401\nA,B,C,Barnet,1\n")
    with pytest.raises(BadInput, match="missing required column 'WardCode'.*the file has: MajorText"):
        read_counts(path)


# --- declared schemas -----------------------------------------------------------------------------

def test_category_schema_covers_police_uk(crimes):
    schema = json.loads((crimes.parents[2] / "crimemap" / "schemas" / "police_uk_categories.json").read_text())
    pairs = {c["label"]: c["slug"] for c in schema["categories"]}
    assert pairs == LABELS
    assert len({c["slug"] for c in schema["categories"]}) == len(schema["categories"])


def test_borough_schema_matches_ons_names(need_shared, crimes):
    import geopandas as gpd

    lad = gpd.read_file(need_shared("boundaries/london-2021-lad22-gen20.shp"), ignore_geometry=True)
    schema = json.loads((crimes.parents[2] / "crimemap" / "schemas" / "london_boroughs.json").read_text())
    assert {b["code"]: b["name"] for b in schema["boroughs"]} == dict(zip(lad["LAD22CD"], lad["LAD22NM"]))


# --- real files in ../shared/data -----------------------------------------------------------------

def test_city_of_london_csvs(need_shared):
    files = sorted(need_shared("crime/police_uk/city-of-london").glob("*-city-of-london-street.csv"))
    assert len(files) == 23
    rejects = Rejects()
    total = no_location = 0
    for path in files:
        frame, _ = points(path, rejects=rejects)
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        assert len(frame) == len(raw)
        assert frame["month"].unique().tolist() == [path.name[:7]]
        np.testing.assert_array_equal(frame["lon"].to_numpy(), pd.to_numeric(raw["Longitude"]).to_numpy())
        assert frame["category"].tolist() == raw["Crime type"].map(LABELS).tolist()
        assert frame["crime_id"].tolist() == raw["Crime ID"].tolist()
        assert set(frame["force"]) == {"city-of-london"}
        total += len(frame)
        no_location += int(frame["lon"].isna().sum())
        assert frame["lon"].isna().sum() == (raw["Longitude"] == "").sum()
    assert (total, no_location) == (18_434, 1_719)
    assert rejects.count == 0 and rejects.notes == []


def test_police_uk_api_months(need_shared):
    files = sorted(need_shared("crime/police_uk_api_partial").glob("*.jsonl.gz"))
    counts = []
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            records = {r["id"]: r for r in map(json.loads, fh)}
        frame, rejects = points(path, chunk_rows=25_000)
        assert rejects.count == 0
        assert sorted(frame["api_id"].tolist()) == sorted(records)
        assert (frame["force"] == "btp").sum() == sum(r["location_type"] == "BTP" for r in records.values())
        assert frame["lat"].notna().all()
        counts.append(len(frame))
    assert counts == [61_728, 63_658, 66_313]


def _wide_sums(path, key):
    wide = pd.read_csv(path, dtype={key: str})
    months = [c for c in wide.columns if c.isdigit()]
    sums = wide.groupby(key)[months].sum().stack()
    sums.index = sums.index.set_names([key, "month"])
    sums = sums[sums != 0]
    return wide, months, {(k, f"{m[:4]}-{m[4:]}"): int(v) for (k, m), v in sums.items()}


def test_met_ward_level_file(need_shared):
    path = need_shared("crime/mps_ward_level/MPS_Ward_Level_Crime_2023-07_to_2025-06.csv")
    rejects = Rejects()
    frame = read_counts(path, rejects=rejects)
    wide, months, expected = _wide_sums(path, "WardCode")
    ours = frame.groupby(["code", "month"])["count"].sum()
    assert {k: int(v) for k, v in ours.items()} == expected
    assert len(frame.attrs["areas"]) == wide["WardCode"].nunique() == 679
    assert frame.attrs["months"] == [f"{m[:4]}-{m[4:]}" for m in months]
    assert frame.attrs["months"][0] == "2023-07" and frame.attrs["months"][-1] == "2025-06" and len(months) == 24
    assert rejects.count == 0


def test_met_historical_ward_file_gz(need_shared):
    path = need_shared("crime/mps_ward_level/MPS_Ward_Level_Crime_Historical_2010-04_to_2024-02.csv.gz")
    frame = read_counts(path)
    wide = pd.read_csv(path)
    months = [c for c in wide.columns if c.isdigit()]
    per_month = frame.groupby("month")["count"].sum()
    assert [int(per_month.get(f"{m[:4]}-{m[4:]}", 0)) for m in months] == wide[months].sum().astype(int).tolist()
    assert len(frame.attrs["areas"]) == 679 and len(frame.attrs["months"]) == 167


@pytest.mark.parametrize("name,areas", [
    ("MPS_Borough_Level_Crime_Historical_2010-04_to_2024-02.csv", 34),
    ("MPS_Borough_Level_Crime_2024-03_to_2025-06.csv", 33),
])
def test_met_borough_files(need_shared, name, areas):
    import geopandas as gpd

    path = need_shared(f"crime/mps_borough_level/{name}")
    frame = read_counts(path)
    wide, _, expected = _wide_sums(path, "BoroughName")
    ours = frame.groupby(["name", "month"])["count"].sum()
    assert {k: int(v) for k, v in ours.items()} == expected
    assert len(frame.attrs["areas"]) == wide["BoroughName"].nunique() == areas
    lad = gpd.read_file(need_shared("boundaries/london-2021-lad22-gen20.shp"), ignore_geometry=True)
    ons = dict(zip(lad["LAD22NM"], lad["LAD22CD"]))
    codes = dict(zip(frame["name"], frame["code"]))
    assert codes == {n: ons.get(n, "") for n in wide["BoroughName"].unique() if n in codes}
    assert codes.get("Unknown") == ""  # kept, with no code


def test_met_lsoa_file(need_shared):
    path = need_shared("crime/mps_lsoa_level/MPS_LSOA_Level_Crime_2024-02_to_2025-06.csv.gz")
    frame = read_counts(path)
    wide = pd.read_csv(path)
    months = [c for c in wide.columns if c.isdigit()]
    per_month = frame.groupby("month")["count"].sum()
    assert [int(per_month[f"{m[:4]}-{m[4:]}"]) for m in months] == wide[months].sum().astype(int).tolist()
    assert int(per_month["2024-02"]) == 39  # the release's almost empty first month (SOURCES.md 3e)
    assert len(frame.attrs["areas"]) == wide["LSOA Code"].nunique() == 4_988
    pairs = frame[["code", "borough_code"]].drop_duplicates()
    assert pairs["code"].is_unique
    kept = set(pairs["code"])
    assert dict(zip(pairs["code"], pairs["borough_code"])) == {
        code: borough for code, borough in zip(wide["LSOA Code"], wide["Borough"]) if code in kept}
