"""Hypothesis on the crime CSV readers: hostile rows are kept as text or rejected, never crash them.

Stop and search CSVs must account for every row too, with coordinates as
written. The Met's wide ward table is checked the same way: a row with any count that
is not a whole number is rejected whole, and the counts read equal the sums
of the clean cells computed with the csv module.

Each example is a file of rows mixing valid values with hostile ones (HTML
and script, quotes, commas, odd Unicode, numbers out of range, text where
numbers go). The reader (both the pyarrow fast path and the careful path) must:

- raise nothing but a :class:`crimemap.errors.CrimemapError` (a clear file-level message);
- account for every row: kept or rejected with a reason, never dropped silently;
- keep text as written (``<script>`` stays those characters: escaping is the
  page's job, not the reader's), and coordinates equal to ``float()`` of the
  written text, checked row by row against the csv module's own parse;
- read the same both ways.
"""

import csv
import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimemap.errors import CrimemapError
from crimemap.io import policeuk
from crimemap.io.crimes import Rejects, read_points

HEADER = ["Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location", "LSOA code",
          "LSOA name", "Crime type", "Last outcome category", "Context"]
HOSTILE = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "'; DROP TABLE crimes; --",
           "=HYPERLINK(\"http://x\")", "a,b", "\"quoted\"", "Ωmega ☃ 😀", "&amp;&lt;", " ", "NaN", "1e309", "-0"]
TEXT = st.one_of(st.sampled_from(HOSTILE),
                 st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=25))
MONTH = st.one_of(st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(2010, 2030), st.integers(1, 12)),
                  st.sampled_from(["2024-13", "2024-00", "01/2024", "2024-1", ""]), TEXT)
LON = st.one_of(st.floats(-0.5, 0.3).map(lambda v: f"{v:.6f}"), st.floats(allow_nan=True).map(str),
                st.just(""), TEXT)
LAT = st.one_of(st.floats(51.3, 51.7).map(lambda v: f"{v:.6f}"), st.floats(allow_nan=True).map(str),
                st.just(""), TEXT)
CRIME_TYPE = st.one_of(st.sampled_from(["Burglary", "Anti-social behaviour", "Theft from the person", "Other theft",
                                        "Violence and sexual offences", "Vehicle crime"]), TEXT)
FORCE = st.sampled_from(["City of London Police", "Metropolitan Police Service"])


@st.composite
def rows(draw):
    n = draw(st.integers(1, 12))
    out = []
    for i in range(n):
        force = draw(FORCE)
        out.append([f"r{i}", draw(MONTH), force, force, draw(LON), draw(LAT), draw(TEXT), draw(TEXT), draw(TEXT),
                    draw(CRIME_TYPE), draw(TEXT), draw(TEXT)])
    return out


def _read(path, fast, monkeypatch):
    monkeypatch.setattr(policeuk, "FAST_PATH", fast)
    rejects = Rejects()
    chunks = list(read_points(path, chunk_rows=5, rejects=rejects))
    frame = pd.concat(chunks, ignore_index=True) if chunks else None
    return frame, rejects


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@given(data=rows())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hostile_rows_are_kept_as_text_or_rejected(tmp_path_factory, monkeypatch, data):
    path = tmp_path_factory.mktemp("csv") / "2024-01-city-of-london-street.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(data)
    try:
        fast, fast_rejects = _read(path, True, monkeypatch)
    except CrimemapError as exc:  # a file-level refusal is allowed, and must say why
        assert str(exc)
        with pytest.raises(CrimemapError):
            _read(path, False, monkeypatch)
        return
    slow, slow_rejects = _read(path, False, monkeypatch)
    if fast is None or slow is None:
        assert fast is None and slow is None
    else:
        pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert (fast_rejects.count, fast_rejects.by_reason) == (slow_rejects.count, slow_rejects.by_reason)
    kept = 0 if fast is None else len(fast)
    assert kept + fast_rejects.count == len(data), (kept, fast_rejects)
    if fast is None:
        return
    written = {row[0]: row for row in data}
    for record in fast.to_dict("records"):
        row = written[record["crime_id"]]
        assert record["month"] == row[1]
        assert record["location"] == row[6].strip() or record["location"] == row[6]
        if not pd.isna(record["lon"]):
            assert record["lon"] == _number(row[4]) and record["lat"] == _number(row[5])


def test_a_script_in_a_valid_row_is_kept_as_those_characters(tmp_path, monkeypatch):
    path = tmp_path / "2024-01-city-of-london-street.csv"
    script = "<script>alert('x')</script>"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerow(["r0", "2024-01", "City of London Police", "City of London Police", "-0.091000", "51.515000",
                         script, "E01032739", script, "Burglary", "", script])
    for fast in (True, False):
        frame, rejects = _read(path, fast, monkeypatch)
        assert rejects.count == 0 and len(frame) == 1
        assert frame.loc[0, "location"] == script and frame.loc[0, "lsoa_name"] == script
        assert (frame.loc[0, "lon"], frame.loc[0, "lat"]) == (-0.091, 51.515)


# --- the Met's wide ward table ------------------------------------------------------------------------------

MET_HEADER = ["MajorText", "MinorText", "WardName", "WardCode", "LookUp_BoroughName", "202401", "202402", "202403"]
NAME = st.one_of(st.sampled_from(HOSTILE[:7]), st.text(st.characters(blacklist_categories=("Cs", "Cc")),
                                                     min_size=1, max_size=20).filter(lambda t: t.strip()))
COUNT = st.integers(0, 999).map(str)
BAD_COUNT = st.sampled_from(["-1", "x", "1.5", "<script>alert(1)</script>", "NaN", ""])  # ("1e3" reads as 1000)


@st.composite
def met_rows(draw):
    out = []
    for i in range(draw(st.integers(1, 10))):
        counts = [draw(st.one_of(COUNT, COUNT, COUNT, BAD_COUNT)) for _ in range(3)]
        out.append([draw(NAME), draw(NAME), draw(NAME), f"E0590{i:04d}",
                    draw(st.sampled_from(["Westminster", "Camden", "Aviation Security (SO18)"])), *counts])
    return out


@given(data=met_rows())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_met_ward_rows_count_exactly_the_clean_cells(tmp_path_factory, data):
    from crimemap.io import mps

    path = _write_csv(tmp_path_factory.mktemp("met") / "MPS_Ward_Level_Crime.csv", MET_HEADER, data)
    rejects = Rejects()
    try:
        out = mps.read(path, "mps-ward", rejects)
    except CrimemapError as exc:
        assert str(exc)
        return
    # Independently: a row with any count that is not a whole number >= 0 is rejected whole.
    clean = [row for row in data if all(c.isdigit() for c in row[5:])]
    assert rejects.count == len(data) - len(clean), rejects
    expected = {}
    for row in clean:
        for month, count in zip(("2024-01", "2024-02", "2024-03"), row[5:]):
            if int(count):
                key = (row[3], row[0].strip(), row[1].strip(), month)
                expected[key] = expected.get(key, 0) + int(count)
    got = out.groupby(["code", "major", "minor", "month"])["count"].sum().to_dict()
    assert got == expected
    names = {row[3]: row[2].strip() for row in clean}
    assert all(names[code] == name for code, name in zip(out["code"], out["name"]))


# --- police.uk stop and search CSVs ---------------------------------------------------------------------------

STOP_HEADER = ["Type", "Date", "Part of a policing operation", "Policing operation", "Latitude", "Longitude",
               "Gender", "Age range", "Self-defined ethnicity", "Officer-defined ethnicity", "Legislation",
               "Object of search", "Outcome", "Outcome linked to object of search",
               "Removal of more than just outer clothing"]
STAMP = st.one_of(st.builds(lambda d, h: f"2016-06-{d:02d}T{h:02d}:30:00+00:00", st.integers(1, 30),
                            st.integers(0, 23)), st.sampled_from(["2016-13-01T00:00:00", "yesterday", ""]), TEXT)
STOP_TYPE = st.one_of(st.sampled_from(["Person search", "Vehicle search", "Person and Vehicle search"]), TEXT)


@st.composite
def stop_rows(draw):
    return [[draw(STOP_TYPE), draw(STAMP), draw(st.sampled_from(["False", "True", "", "maybe"])), draw(TEXT),
             draw(LAT), draw(LON), *(draw(TEXT) for _ in range(9))] for _ in range(draw(st.integers(1, 10)))]


@given(data=stop_rows())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hostile_stop_rows_are_kept_or_rejected(tmp_path_factory, data):
    from crimemap.stops.io import read_stops

    path = _write_csv(tmp_path_factory.mktemp("stops") / "2016-06-metropolitan-stop-and-search.csv",
                      STOP_HEADER, data)
    rejects = Rejects()
    try:
        frame = read_stops(path, rejects=rejects)
    except CrimemapError as exc:
        assert str(exc)
        return
    assert len(frame) + rejects.count == len(data), (len(frame), rejects)
    located = frame.dropna(subset=["lat", "lon"])
    written = {(_number(row[4]), _number(row[5])) for row in data}
    assert all((lat, lon) in written for lat, lon in zip(located["lat"], located["lon"]))


def _write_csv(path, header, rows):
    """``rows`` under ``header`` as a UTF-8 CSV file; returns the path."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
