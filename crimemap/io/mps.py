"""Met "MPS Recorded Crime: Geographic Breakdown" wide files, read as a long table.

Column names and the month-column pattern are declared in ``schemas/mps_wide.json``;
borough names and codes in ``schemas/london_boroughs.json``. Callers use
:func:`crimemap.io.crimes.read_counts`.
"""

import re
from pathlib import Path

import numpy as np
import pandas as pd

from crimemap.errors import BadInput
from crimemap.io.crimes import csv_records, load_schema, norm, read_csv_header, resolve_columns

COLUMNS = ("level", "code", "name", "borough_code", "borough_name", "major", "minor", "month", "count")
_BLOCK_ROWS = 200_000


def _key(name):
    return norm(name).replace("&", "and").replace("-", " ").replace("  ", " ")


def boroughs():
    """Return ``(by_name, by_code)``: normalised name or alias -> (code, name), and code -> name."""
    by_name, by_code = {}, {}
    for entry in load_schema("london_boroughs.json")["boroughs"]:
        by_code[entry["code"]] = entry["name"]
        for spelling in [entry["name"], *entry.get("aliases", [])]:
            by_name[_key(spelling)] = (entry["code"], entry["name"])
    return by_name, by_code


def borough_code(value):
    """Resolve a borough given as a name (any declared spelling) or an E09 code.

    Returns
    -------
    (str, str)
        The E09 code and the borough name to show: the file's own spelling for
        a name, the declared name for a code. The code is "" for a value that
        is not a London borough (e.g. "Unknown", "Aviation Security (SO18)").
    """
    by_name, by_code = boroughs()
    value = value.strip()
    if value.upper() in by_code:
        return value.upper(), by_code[value.upper()]
    code, _ = by_name.get(_key(value), ("", None))
    return code, value


def read(path, fmt, rejects):
    """Read one wide file (see :func:`crimemap.io.crimes.read_counts`)."""
    path = Path(path)
    name = path.name
    wide = load_schema("mps_wide.json")
    spec = wide["formats"][fmt]
    header = read_csv_header(path)
    what = f"an MPS {spec['level']}-level crime file"
    position = resolve_columns(header, spec["columns"], list(spec["columns"]), name, what)
    months = _month_columns(header, re.compile(wide["month_column_pattern"]), name, what)
    usecols = sorted(set(position.values()) | set(months))
    frames, rows = [], []
    for frame, source_rows in csv_records(path, len(header), usecols, _BLOCK_ROWS, rejects):
        frames.append(frame)
        rows.append(source_rows)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=usecols, dtype="str")
    source = np.concatenate(rows) if rows else np.empty(0, np.int64)

    order = sorted(months, key=months.get)  # month columns in calendar order
    labels = np.array([months[p] for p in order], dtype=object)
    values, bad = _counts(table, order, labels, source, rejects)

    ident = {field: table[pos].str.strip().to_numpy(dtype=object) for field, pos in position.items()}
    borough_value = ident.get("borough", ident.get(spec.get("borough_from")))
    resolved = _resolve_boroughs(borough_value, name, rejects)
    b_code = np.array([c for c, _ in resolved], dtype=object)
    b_name = np.array([n for _, n in resolved], dtype=object)
    code = ident["code"] if "code" in ident else b_code if spec.get("code_from") == "borough" else \
        np.full(len(table), "", dtype=object)
    area = np.where(code != "", code, ident["name"])

    values[bad] = 0  # a rejected row contributes nothing
    r, c = np.nonzero(values)
    out = pd.DataFrame({
        "level": pd.array(np.full(len(r), spec["level"], dtype=object), dtype="str"),
        "code": pd.array(code[r], dtype="str"),
        "name": pd.array(ident["name"][r], dtype="str"),
        "borough_code": pd.array(b_code[r], dtype="str"),
        "borough_name": pd.array(b_name[r], dtype="str"),
        "major": pd.array(ident["major"][r], dtype="str"),
        "minor": pd.array(ident["minor"][r], dtype="str"),
        "month": pd.array(labels[c], dtype="str"),
        "count": values[r, c].astype(np.int64),
    }, columns=list(COLUMNS))
    out.attrs["areas"] = sorted(set(area.tolist()))
    out.attrs["months"] = sorted(labels.tolist())
    return out


def _month_columns(header, pattern, name, what):
    months = {}
    for pos, column in enumerate(header):
        found = pattern.match(column)
        if found:
            months[pos] = f"{found['year']}-{found['month']}"
    if not months:
        raise BadInput(f"{name}: no month columns (named YYYYMM, e.g. 202307) in {what}; "
                       f"the file has: {', '.join(header)}")
    seen = {}
    for pos, month in months.items():
        if month in seen:
            raise BadInput(f"{name}: month {month} appears twice, as columns {header[seen[month]]!r} "
                           f"and {header[pos]!r}")
        seen[month] = pos
    return months


_COUNT_TEXT = r"\s*[+-]?[0-9]+(?:\.[0-9]*)?\s*"


def _counts(table, order, labels, source, rejects):
    """Parse the month cells: int64 matrix plus the rows refused (any bad cell refuses its row)."""
    n = len(table)
    values = np.zeros((n, len(order)), dtype=np.int64)
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, "", dtype=object)
    for k, pos in enumerate(order):
        text = table[pos].to_numpy(dtype=object)
        number = pd.to_numeric(table[pos], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        empty = (table[pos].str.strip() == "").to_numpy()
        # A count is written in decimal digits ("12", "-1", or "12.0" from a spreadsheet): "1e3", "0x1F",
        # "inf" or "1,000" are not counts, though pd.to_numeric reads some of them.
        plain = table[pos].str.fullmatch(_COUNT_TEXT).to_numpy(dtype=bool, na_value=False)
        with np.errstate(invalid="ignore"):
            fractional = ~plain | ~np.isfinite(number) | (number != np.floor(number))
            negative = ~fractional & (number < 0)
        for mask, why in ((empty, "empty count"), (fractional & ~empty, "non-integer count"),
                          (negative, "negative count")):
            new = mask & np.equal(reason, None)
            reason[new] = why
            detail[new] = [f"{text[i]!r} in month {labels[k]}" for i in np.flatnonzero(new)]
        values[:, k] = np.where(fractional | negative, 0, np.nan_to_num(number)).astype(np.int64)
    bad = ~np.equal(reason, None)
    for i in np.flatnonzero(bad):
        rejects.add(source[i], reason[i], detail[i])
    return values, bad


def _resolve_boroughs(values, name, rejects):
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    resolved = [borough_code(str(u)) for u in uniques]
    counts = np.bincount(codes, minlength=len(uniques))
    unmatched = [f"{str(u)!r} ({counts[k]:,} row{'s' if counts[k] != 1 else ''})"
                 for k, u in enumerate(uniques) if not resolved[k][0]]
    if unmatched:
        rejects.note(f"{name}: not London borough names, so borough_code is empty: {', '.join(unmatched)}")
    return [resolved[k] for k in codes]
