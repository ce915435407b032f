"""police.uk street-level crime records: street CSVs and API JSON.

Both layouts are declared in ``schemas/police_uk_street.json``; categories in
``schemas/police_uk_categories.json`` and force names in
``schemas/police_uk_forces.json``. Callers use :func:`crimemap.io.crimes.read_points`.
API JSON is parsed into raw columns by :mod:`crimemap.io.policeuk_json`; both
layouts are then checked and turned into chunks here, by :func:`_finish`.
"""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from crimemap.errors import BadInput
from crimemap.io.crimes import csv_records, load_schema, norm, read_csv_header, resolve_columns, sniff
from crimemap.io import policeuk_arrow
from crimemap.io.policeuk_json import raw_chunks

# Clean blocks go through pyarrow (crimemap.io.policeuk_arrow) and everything
# else through the careful reader here; False reads every block carefully (the
# tests compare the two).
FAST_PATH = True

_TEXT_FIELDS = ("crime_id", "location", "lsoa_code", "lsoa_name", "outcome", "outcome_month", "context",
                "location_type", "location_subtype")
_DECIMAL_TEXT = re.compile(r"[0-9.\-\n]*")  # texts of digits, "." and "-", one per line


def _layout():
    return load_schema("police_uk_street.json")


def categories():
    """Return ``(label_to_slug, slug_to_label)``; label keys are normalised with :func:`norm`."""
    label_to_slug, slug_to_label = {}, {}
    for entry in load_schema("police_uk_categories.json")["categories"]:
        slug_to_label[entry["slug"]] = entry["label"]
        for label in [entry["label"], *entry.get("aliases", [])]:
            label_to_slug[norm(label)] = entry["slug"]
    return label_to_slug, slug_to_label


def force_slug(name):
    """Map a CSV "Falls within" force name to its police.uk force id ("" when empty).

    Returns
    -------
    (str, bool)
        The slug, and whether it is a known police.uk force id.
    """
    forces = load_schema("police_uk_forces.json")
    key = norm(name).replace("&", "and")
    if not key:
        return "", True
    named = {norm(k).replace("&", "and"): v for k, v in forces["names"].items()}
    slug = named.get(key)
    if slug is None:
        for suffix in forces["suffixes"]:
            if key.endswith(" " + suffix):
                key = key[: -len(suffix) - 1]
                break
        slug = "-".join(re.findall(r"[a-z0-9]+", key))
    return slug, slug in forces["ids"]


def check_api_json(text, name):
    """Check that ``text`` (a file's first 64 KiB of JSON) holds police.uk API records.

    Raises
    ------
    BadInput
        It is JSON of some other kind, or its first record cannot be parsed.
    """
    keys = _layout()["api_json"]["detect_keys"]
    decoder = json.JSONDecoder()
    body = text.lstrip()
    if body.startswith("[") and body[1:].lstrip()[:1] in ("]", ""):
        return  # an empty API answer: no crimes, still the API format
    try:
        first, _ = decoder.raw_decode(body[1:].lstrip() if body.startswith("[") else body.split("\n", 1)[0])
    except ValueError:
        try:
            first, _ = decoder.raw_decode(body)  # one pretty-printed object
        except ValueError:
            raise BadInput(f"{name}: looks like JSON but its first record cannot be parsed; expected "
                           f"police.uk API records ({', '.join(keys)})") from None
    if isinstance(first, dict) and all(k in first for k in keys):
        return
    found = sorted(first)[:12] if isinstance(first, dict) else type(first).__name__
    raise BadInput(f"{name}: unknown format: JSON, but not police.uk API crimes (each record needs "
                   f"{', '.join(keys)}; the first record has {found})")


def read(path, fmt, chunk_rows, rejects):
    """Check the file, then return the chunk iterator (see :func:`crimemap.io.crimes.read_points`)."""
    path = Path(path)
    if fmt == "police-uk-csv":
        spec = _layout()["csv"]["columns"]
        header = read_csv_header(path)
        position = resolve_columns(header, {f: s["headers"] for f, s in spec.items()},
                                   [f for f, s in spec.items() if s["required"]], path.name, "a police.uk street CSV")
        return _rechunk(_csv_frames(path, len(header), position, chunk_rows, rejects), chunk_rows)
    sniff(path)  # an empty or binary file fails now, not at the first chunk
    return _rechunk(_json_frames(path, chunk_rows, rejects), chunk_rows)


def _rechunk(frames, chunk_rows):
    empty = True
    for frame in frames:
        empty = empty and not len(frame)
        if len(frame) <= chunk_rows:
            yield frame
            continue
        for start in range(0, len(frame), chunk_rows):
            yield frame.iloc[start:start + chunk_rows].reset_index(drop=True)
    if empty:
        yield _empty()


def _empty():
    return _frame({}, np.empty(0, np.int64))


class _FileStats:
    """What one file's rows looked like, for notes that only the whole file can justify."""

    def __init__(self, name):
        self.name, self.located, self.swapped, self.unknown_forces = name, 0, 0, set()

    def finish(self, rejects):
        if self.swapped and self.swapped == self.located:
            rejects.note(f"{self.name}: every one of its {self.located:,} located rows has latitude and longitude "
                         "swapped (the Longitude and Latitude columns look exchanged); all were rejected")
        for name in sorted(self.unknown_forces):
            rejects.note(f"{self.name}: force name {name!r} is not a known police.uk force; "
                         "its slug was made from the name")


def _csv_frames(path, ncol, position, chunk_rows, rejects):
    stats = _FileStats(path.name)
    # Columns read but not output (e.g. "Reported by") only help recognise the format.
    used = {spec["name"] for spec in _layout()["output"]} | {"crime_type", "force", "lon", "lat"}
    fields = [f for f in sorted(position, key=position.get) if f in used]
    usecols = sorted({position[f] for f in fields})
    label_to_slug, slug_to_label = categories()
    def fast(data, line_no):
        table = policeuk_arrow.csv_table(data, ncol, usecols)
        if table is None:
            return None
        rows = np.arange(line_no, line_no + table.num_rows, dtype=np.int64)
        return policeuk_arrow.finish_csv(table, {f: position[f] for f in fields}, rows, stats,
                                         label_to_slug, slug_to_label)

    for frame, rows in csv_records(path, ncol, usecols, chunk_rows, rejects, fast=fast if FAST_PATH else None):
        if rows is None:  # a block the fast path took whole
            yield frame
            continue
        raw = {field: frame[position[field]] for field in fields}
        yield _finish(raw, rows, rejects, stats, label_to_slug=label_to_slug, slug_to_label=slug_to_label)
    stats.finish(rejects)


def _finish(raw, rows, rejects, stats, label_to_slug=None, slug_to_label=None, slugs=None, prior=None):
    """Validate one block of raw string columns and build the output frame.

    Checks run in order and a row gets the first reason that applies: month,
    category, then coordinates. ``prior`` maps a row's position to ``(reason, detail)``
    for problems found before (JSON records that are broken or duplicated).
    """
    layout = _layout()
    n = len(rows)
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, "", dtype=object)
    for i, (why, why_detail) in (prior or {}).items():
        reason[i], detail[i] = why, why_detail

    def flag(mask, why, why_detail):
        new = np.asarray(mask, dtype=bool) & np.equal(reason, None)
        if new.any():
            reason[new] = why
            detail[new] = [why_detail(i) for i in np.flatnonzero(new)]

    month = raw["month"]
    pattern = re.compile(layout["month_pattern"])
    month_ok = _per_unique(month, lambda m: bool(pattern.match(m))).astype(bool)
    flag(~month_ok, "month not YYYY-MM", lambda i: f"Month {month.iloc[i]!r}")

    if slugs is None:  # CSV: the label is given, the slug is looked up
        label = raw["crime_type"]
        slug, crime_type = _per_unique(label, lambda v: label_to_slug.get(norm(v), ""),
                                       lambda v: slug_to_label.get(label_to_slug.get(norm(v)), ""))
        flag(slug == "", "unknown Crime type", lambda i: f"Crime type {label.iloc[i]!r}")
    else:  # API JSON: the slug is given, the label is looked up
        slug, crime_type = slugs, _per_unique(slugs, lambda v: slug_to_label.get(v, ""))
        flag(crime_type == "", "unknown category", lambda i: f"category {slug.iloc[i]!r}")

    lon, lat = _coordinates(raw, flag, layout["coordinates"], reason, stats)

    if "force" in raw and slugs is None:
        force = _per_unique(raw["force"], lambda v: _force(v, stats))
    else:
        force = raw.get("force", pd.Series([""] * n, dtype="str"))

    bad = ~np.equal(reason, None)
    for i in np.flatnonzero(bad):
        rejects.add(rows[i], reason[i], detail[i])
    keep = ~bad
    out = {"month": month, "category": slug, "crime_type": crime_type, "force": force, "lon": lon, "lat": lat}
    for field in _TEXT_FIELDS:
        if field in raw:
            out[field] = raw[field]
    for field in ("api_id", "street_id"):
        if field in raw:
            out[field] = raw[field]
    everything = not bad.any()
    return _frame({k: _take(v, keep, everything) for k, v in out.items()}, np.asarray(rows, dtype=np.int64)[keep])


def _take(value, keep, everything):
    value = value.array if isinstance(value, pd.Series) else value
    return value if everything else value[keep]


def _force(value, stats):
    slug, known = force_slug(value)
    if not known:
        stats.unknown_forces.add(value)
    return slug


def _per_unique(series, func, *more):
    """Apply ``func`` (and each of ``more``) to every distinct value once, not once per row."""
    codes, uniques = pd.factorize(series.to_numpy(dtype=object), use_na_sentinel=False)
    uniques = ["" if u is None or u != u else u for u in uniques]
    results = [np.array([f(u) for u in uniques] + [None], dtype=object)[codes] for f in (func, *more)]
    return results[0] if not more else tuple(results)


def _coordinates(raw, flag, box, reason, stats):
    lon_text = raw["lon"].to_numpy(dtype=object)
    lat_text = raw["lat"].to_numpy(dtype=object)
    lon_empty = lon_text == ""
    lat_empty = lat_text == ""
    lon = _numbers(lon_text, lon_empty)
    lat = _numbers(lat_text, lat_empty)

    def shown(i):
        return f"Longitude {lon_text[i]!r}, Latitude {lat_text[i]!r}"

    flag(~lon_empty & ~np.isfinite(lon), "non-numeric Longitude", shown)
    flag(~lat_empty & ~np.isfinite(lat), "non-numeric Latitude", shown)
    flag(lon_empty & ~lat_empty, "missing Longitude", shown)
    flag(lat_empty & ~lon_empty, "missing Latitude", shown)
    (lon_lo, lon_hi), (lat_lo, lat_hi) = box["lon_range"], box["lat_range"]
    both = np.isfinite(lon) & np.isfinite(lat)
    with np.errstate(invalid="ignore"):
        inside = both & (lon >= lon_lo) & (lon <= lon_hi) & (lat >= lat_lo) & (lat <= lat_hi)
        swapped = both & ~inside & (lat >= lon_lo) & (lat <= lon_hi) & (lon >= lat_lo) & (lon <= lat_hi)
    undecided = np.equal(reason, None)
    stats.located += int((both & undecided).sum())
    stats.swapped += int((swapped & undecided).sum())
    flag(swapped, "latitude and longitude swapped", shown)
    flag(both & ~inside, "coordinates out of range",
         lambda i: f"{shown(i)} outside lon {lon_lo}..{lon_hi}, lat {lat_lo}..{lat_hi}")
    no_location = lon_empty & lat_empty
    lon[no_location] = np.nan
    lat[no_location] = np.nan
    return lon, lat


def _numbers(text, empty):
    """``pd.to_numeric(text, errors="coerce")`` as a new float64 array: NaN where it is not a number.

    When every text is written with digits, "." and "-" alone (as police.uk writes
    coordinates), ``float()`` reads them exactly as ``pd.to_numeric`` does, at
    about half the cost; anything else goes to ``pd.to_numeric``.
    """
    out = np.full(len(text), np.nan)
    filled = text[~empty]
    try:
        joined = "\n".join(filled)
        # The count rules out a text that holds a line break itself (float() would strip it).
        if _DECIMAL_TEXT.fullmatch(joined) and joined.count("\n") == len(filled) - 1:
            out[~empty] = filled.astype(np.float64)
            return out
    except (TypeError, ValueError):  # not all str; or "1-2", "." and the like, which float() refuses
        pass
    return pd.to_numeric(text, errors="coerce").astype(np.float64)


def _frame(columns, rows):
    """Assemble a chunk with exactly the declared columns and dtypes."""
    n = len(rows)
    out = {}
    for spec in _layout()["output"]:
        name, dtype = spec["name"], spec["dtype"]
        if name == "source_row":
            out[name] = rows.astype(np.int64)
        elif name in columns:
            value = columns[name]
            if dtype == "str" and getattr(value, "dtype", None) == "str":
                out[name] = value  # already a string array (straight from the CSV parser)
            elif dtype == "str":
                out[name] = pd.array(np.asarray(value, dtype=object), dtype="str")
            elif dtype == "Int64":
                out[name] = pd.array(value, dtype="Int64")
            else:
                out[name] = np.asarray(value, dtype=np.float64)
        elif dtype == "Int64":
            out[name] = pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, bool))
        elif dtype == "float64":
            out[name] = np.full(n, np.nan)
        else:
            out[name] = pd.array(np.full(n, "", dtype=object), dtype="str")
    return pd.DataFrame(out, copy=False)  # every column is built above (or taken from a discarded frame)


# --- API JSON -----------------------------------------------------------------------------------

def _json_frames(path, chunk_rows, rejects):
    _, slug_to_label = categories()
    stats = _FileStats(path.name)
    force_of = _layout()["api_json"]["force_from_location_type"]

    def fast(data, first_line, seen):
        return policeuk_arrow.json_chunk(data, first_line, stats, slug_to_label, force_of, seen)

    for item in raw_chunks(path, chunk_rows, rejects, fast=fast if FAST_PATH else None):
        if isinstance(item, pd.DataFrame):  # a block the fast path took whole
            yield item
            continue
        raw, rows, prior = item
        yield _finish(raw, rows, rejects, stats, slug_to_label=slug_to_label, slugs=raw["category"], prior=prior)
    stats.finish(rejects)
