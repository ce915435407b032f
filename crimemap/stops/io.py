"""Read police.uk stop and search data: monthly CSVs and the API's JSON.

Layouts are declared in ``crimemap/schemas/stops_layouts.json``:

- the CSV download with all 15 columns, or with some dropped (the 2018
  "reduced columns" concatenation has no gender, age or ethnicity, and an
  unnamed index column first);
- ``stops-street`` and ``stops-force`` API JSON (a JSON array, or JSON Lines),
  where ``stops-force`` records have ``location: null``.

Every row comes out as one stop with its UTC timestamp and its London month
(``Europe/London`` through :mod:`zoneinfo`): police.uk's ``Date`` is UTC, so
a search at 00:30 on 1 June BST is ``2016-05-31T23:30:00+00:00`` and belongs
to June. A row with no coordinates is kept (``lon``/``lat`` NaN) and counted;
a broken row is rejected with a reason, never raised.
"""

import csv
import io
import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from crimemap.errors import BadInput
from crimemap.io.crimes import ByteSource, Rejects
from crimemap.stops.groups import schema, type_ids

LONDON = ZoneInfo("Europe/London")
FORMATS = ("police-uk-stops-csv", "police-uk-stops-json")
COLUMNS = ["month", "datetime", "type", "lon", "lat", "street", "gender", "age_range", "self_defined_ethnicity",
           "officer_defined_ethnicity", "legislation", "object_of_search", "outcome", "outcome_linked",
           "removal_of_clothing", "operation", "operation_name"]
_FORCE = re.compile(r"^(?:\d{4}(?:-\d{2})?-)?([a-z][a-z-]*?)-stop-and-search", re.IGNORECASE)


def _layout():
    return schema("stops_layouts.json")


def force_from_name(path):
    """The police.uk force slug in a file name (``2016-06-metropolitan-stop-and-search.csv``), or None."""
    found = _FORCE.match(Path(path).name)
    return found.group(1).lower() if found else None


def _read_bytes(path):
    with ByteSource(path) as src:
        parts = []
        while piece := src.read():
            parts.append(piece)
        broken = src.broken
    data = b"".join(parts)
    if not data.strip():
        raise BadInput(f"{Path(path).name}: the file is empty; expected police.uk stop and search CSV or JSON")
    if data.startswith(b"PK\x03\x04"):
        raise BadInput(f"{Path(path).name} is a ZIP archive; extract the CSV first")
    if b"\x00" in data[:65536]:
        raise BadInput(f"{Path(path).name} is a binary file, not police.uk stop and search CSV or JSON")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    return text, broken


def detect_format(path):
    """``police-uk-stops-json`` when the content starts with ``[`` or ``{``, else ``police-uk-stops-csv``."""
    text, _ = _read_bytes(path)
    return "police-uk-stops-json" if text.lstrip()[:1] in ("[", "{") else "police-uk-stops-csv"


def read_stops(path, fmt=None, rejects=None):
    """Read one stop and search file.

    Parameters
    ----------
    path : str or Path
    fmt : str, optional
        One of :data:`FORMATS`; detected from the content when omitted.
    rejects : crimemap.io.crimes.Rejects, optional
        Collects refused rows with their reasons.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`, one row per stop. ``attrs`` holds ``format``,
        ``force`` (from the file name, or None) and ``fields`` (the fields the
        file carries).

    Raises
    ------
    BadInput
        The file cannot be read at all: empty, binary, not the layout, or a
        required column is missing. Single bad rows are rejected instead.
    """
    rejects = rejects if rejects is not None else Rejects()
    text, broken = _read_bytes(path)
    fmt = fmt or ("police-uk-stops-json" if text.lstrip()[:1] in ("[", "{") else "police-uk-stops-csv")
    if fmt not in FORMATS:
        raise BadInput(f"unknown stop and search format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "police-uk-stops-csv":
        raw, lines, fields = _csv_rows(text, Path(path).name, rejects)
    else:
        raw, lines, fields = _json_rows(text, Path(path).name, rejects)
    if broken:
        rejects.add(len(lines) + 1, broken, "the rest of the file could not be read")
        rejects.note(f"{Path(path).name}: {broken}; rows after it are lost")
    frame = _normalise(raw, lines, rejects)
    frame.attrs = {"format": fmt, "force": force_from_name(path), "fields": sorted(fields)}
    return frame


def _csv_rows(text, name, rejects):
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise BadInput(f"{name}: no CSV header ({exc})") from None
    spellings = {field: [s.casefold() for s in names] for field, names in _layout()["csv"].items()}
    position = {}
    for i, column in enumerate(header):
        for field, names in spellings.items():
            if column.casefold() in names and field not in position:
                position[field] = i
    missing = [f for f in _layout()["required"] if f not in position]
    if missing:
        wanted = ", ".join(_layout()["csv"][f][0] for f in missing)
        raise BadInput(f"{name}: not a police.uk stop and search CSV: missing column(s) {wanted} "
                       f"(header: {', '.join(header[:16])})")
    unknown = [h for i, h in enumerate(header) if i not in position.values()]
    if unknown:
        rejects.note(f"{name}: ignored column(s) {', '.join(repr(u) for u in unknown)}")
    rows, lines = [], []
    width = len(header)
    line = 1
    try:
        for record in reader:
            line = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if len(record) != width:
                rejects.add(line, "wrong number of fields", f"{len(record)} instead of {width}")
                continue
            rows.append({field: record[i] for field, i in position.items()})
            lines.append(line)
    except csv.Error as exc:
        rejects.add(line + 1, "malformed CSV", str(exc))
        rejects.note(f"{name}: CSV broken after line {line}: {exc}; rows after it are lost")
    return pd.DataFrame(rows, columns=list(position)), lines, set(position)


def _dig(record, dotted):
    value = record
    for key in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _json_rows(text, name, rejects):
    stripped = text.lstrip()
    records = []
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
        records = list(enumerate(data, start=1))
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                rejects.add(number, "invalid JSON", exc.msg)
    keys = _layout()["json"]
    rows, lines = [], []
    for number, record in records:
        if not isinstance(record, dict):
            rejects.add(number, "not a JSON object", type(record).__name__)
            continue
        row = {field: _dig(record, key) for field, key in keys.items()}
        # Early API answers carried "outcome": false and the name in outcome_object.
        if not isinstance(row["outcome"], str):
            row["outcome"] = row["outcome_name"] if isinstance(row["outcome_name"], str) else None
        del row["outcome_name"]
        rows.append(row)
        lines.append(number)
    fields = set(keys) - {"outcome_name"}
    return pd.DataFrame(rows, columns=sorted(fields)), lines, fields


def _text(series):
    values = series.astype(object).where(series.notna(), None)
    return values.map(lambda v: None if v is None or str(v).strip() == "" else str(v).strip())


def _flag(series):
    def one(value):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().casefold()
        return {"true": True, "false": False, "1": True, "0": False}.get(text)
    return series.map(one)


def _normalise(raw, lines, rejects):
    n = len(raw)
    lines = np.asarray(lines, dtype="int64")
    keep = np.ones(n, dtype=bool)
    get = (lambda f: _text(raw[f]) if f in raw.columns else pd.Series([None] * n, dtype=object))

    when = pd.to_datetime(get("datetime"), utc=True, errors="coerce", format="ISO8601")
    for i in np.flatnonzero(when.isna().to_numpy()):
        rejects.add(lines[i], "bad Date", f"{raw['datetime'].iloc[i]!r} is not an ISO 8601 date-time")
    keep &= when.notna().to_numpy()

    known = type_ids()
    types = get("type").map(lambda v: _type_id(v, known))
    for i in np.flatnonzero((types.isna().to_numpy()) & keep):
        rejects.add(lines[i], "unknown Type", f"{raw['type'].iloc[i]!r}; expected one of {', '.join(known)}")
    keep &= types.notna().to_numpy()

    lat_text, lon_text = get("latitude"), get("longitude")
    lat = pd.to_numeric(lat_text, errors="coerce").to_numpy(dtype="float64")
    lon = pd.to_numeric(lon_text, errors="coerce").to_numpy(dtype="float64")
    has_lat, has_lon = lat_text.notna().to_numpy(), lon_text.notna().to_numpy()
    checks = [
        (has_lat != has_lon, "half a location", "one of Latitude/Longitude is empty"),
        (has_lat & np.isnan(lat) | has_lon & np.isnan(lon), "non-numeric coordinates", "Latitude/Longitude"),
        (~np.isnan(lat) & ((np.abs(lat) > 90) | (np.abs(lon) > 180)), "coordinates out of range",
         "latitude beyond ±90 or longitude beyond ±180"),
    ]
    for bad, reason, detail in checks:
        for i in np.flatnonzero(bad & keep):
            rejects.add(lines[i], reason, f"{detail}: {lat_text.iloc[i]!r}, {lon_text.iloc[i]!r}")
        keep &= ~bad

    local = when.dt.tz_convert(LONDON)
    out = pd.DataFrame({
        "month": local.dt.strftime("%Y-%m"),
        "datetime": when.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "type": types,
        "lon": lon, "lat": lat,
        "street": get("street"),
        "gender": get("gender"), "age_range": get("age_range"),
        "self_defined_ethnicity": get("self_defined_ethnicity"),
        "officer_defined_ethnicity": get("officer_defined_ethnicity"),
        "legislation": get("legislation"), "object_of_search": get("object_of_search"),
        "outcome": get("outcome"),
        "outcome_linked": _flag(raw["outcome_linked"]) if "outcome_linked" in raw.columns else None,
        "removal_of_clothing": _flag(raw["removal_of_clothing"]) if "removal_of_clothing" in raw.columns else None,
        "operation": _flag(raw["operation"]) if "operation" in raw.columns else None,
        "operation_name": get("operation_name"),
    })
    return out[keep].reset_index(drop=True)[COLUMNS]


def _type_id(value, known):
    if not value:
        return None
    text = " ".join(str(value).split()).casefold()
    for label, type_id in known.items():
        if label.casefold() == text:
            return type_id
    return None
