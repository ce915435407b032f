"""Synthesise national-scale police.uk data: London's real points and wards, copied across the map.

Run from the repository root::

    python bench/synth_national.py --points 10000000 --copies 14 --out /tmp/national
    python bench/synth_national.py --points 200000 --copies 2 --out /tmp/national-quick

It writes, in ``--out``:

- ``wards.gpkg``: the 657 London wards of 2018 (``London-wards-2018``) copied
  ``--copies`` times, each copy translated by a whole number of London bounding
  boxes (plus a 2 km gap) in British National Grid, so 14 copies give 9,198
  wards, none overlapping. Copy 0 is London in place with its real codes and
  names; copy ``k`` > 0 has codes ``<GSS_CODE>-<kk>`` and names
  ``<NAME> (<kk>)``, its boroughs likewise. The columns are those of the 2018
  London Datastore file (``GSS_CODE, NAME, LAGSSCODE, DISTRICT``), so
  ``crimemap boundaries load ward`` reads it as it reads London's.
- ``street/YYYY-MM-synthetic-<kk>-street.csv``: police.uk street CSVs, one per
  (copy, month) as police.uk publishes one per (force, month), about 90,000
  rows each (a Met month), ``--points`` rows in all. Each copy is a force,
  "Synthetic Force <kk>".

The points follow the real ones. The base sample is every located point of
the police.uk API harvest (2018-03..05, 25 boroughs, SOURCES.md 2d) and of the
City of London street CSVs (2a) that falls inside a 2018 ward. From it,
``--map-points`` (750,000 by default) anonymised map points are drawn per
London: a real point chosen at random (so busy places are chosen often),
moved by a Gaussian jitter of ``--jitter-m`` metres, kept if it is still inside
London. Every crime of a copy is then one of its copy's map points, chosen
uniformly: locations repeat as police.uk's snapped locations do, and the
density follows the real one (the boroughs the API harvest missed stay thin,
as in the source). Crime type and outcome are drawn together from the real
City of London rows; Anti-social behaviour rows have no Crime ID and no
outcome, as published. Each map point's coordinates are written to 6
decimals, and a point whose rounded coordinates fall outside its copy's wards
is dropped from the map points, so every written point is inside a ward.

Memory stays bounded: the base sample and one copy's map points (a few tens
of MB) plus one file's rows; nothing grows with ``--points``. The output is a
function of ``--seed`` and the arguments alone (numpy's PCG64 generator).
"""

import argparse
import functools
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
from _ingest_common import API, CSV_HEADER, DATA, REPO, WARDS  # noqa: E402

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CITY = DATA / "crime" / "police_uk" / "city-of-london"
ROWS_PER_FILE = 90_000  # about one Metropolitan Police month
GAP_M = 2_000.0  # between copies of London
MAP_POINTS = 750_000
JITTER_M = 40.0
FIRST_MONTH = (2015, 1)
WARD_COLUMNS = ["GSS_CODE", "NAME", "LAGSSCODE", "DISTRICT"]
COLUMNS = CSV_HEADER.strip().split(",")


@dataclass
class Base:
    """The real sample every copy is drawn from (British National Grid, metres)."""

    x: np.ndarray
    y: np.ndarray
    street: np.ndarray  # index into ``streets`` per real point
    streets: list
    kinds: list  # (crime type, outcome) pairs of real rows, drawn from with replacement
    london: object  # shapely geometry: the union of the wards, prepared
    bounds: tuple


def read_wards():
    """The 2018 London wards with the columns the synthetic boundary file keeps."""
    import geopandas

    wards = geopandas.read_file(WARDS, engine="pyogrio")
    return wards[WARD_COLUMNS + ["geometry"]].set_crs(27700, allow_override=True)


@functools.lru_cache(maxsize=1)
def _real_points():
    """Longitude, latitude and street name of every located real police.uk point."""
    from crimemap.io.crimes import read_points

    lon, lat, street = [], [], []
    files = sorted(API.glob("*.jsonl.gz")) + sorted(CITY.glob("*-street.csv"))
    if len(files) < 4:
        raise SystemExit(f"the police.uk files were not found under {API} and {CITY} (set CRIMEMAP_SHARED_DATA)")
    for path in files:
        for chunk in read_points(path):
            chunk = chunk[chunk["lon"].notna() & chunk["lat"].notna()]
            lon.append(chunk["lon"].to_numpy())
            lat.append(chunk["lat"].to_numpy())
            street.append(chunk["location"].fillna("On or near Street").to_numpy(dtype=object))
    return np.concatenate(lon), np.concatenate(lat), np.concatenate(street)


@functools.lru_cache(maxsize=1)
def _real_kinds():
    """(Crime type, outcome) of every real City of London row, in file order."""
    import pandas as pd

    frames = [pd.read_csv(path, usecols=["Crime type", "Last outcome category"], dtype=str, keep_default_na=False)
              for path in sorted(CITY.glob("*-street.csv"))]
    frame = pd.concat(frames, ignore_index=True)
    return list(zip(frame["Crime type"], frame["Last outcome category"]))


def read_base(wards=None):
    """The real points inside London's wards, their street names, and the real crime types."""
    import shapely

    from crimemap.crs import lonlat_to_bng

    wards = read_wards() if wards is None else wards
    london = shapely.coverage_union_all(np.asarray(wards.geometry.values))
    shapely.prepare(london)
    lon, lat, street = _real_points()
    x, y = lonlat_to_bng(lon, lat)
    inside = shapely.contains_xy(london, x, y)
    # Written unquoted: a comma or quote in a (rare) street name becomes a space.
    clean = np.array([re.sub(r'[,"\r\n]', " ", text) for text in street[inside].astype(str)], dtype=object)
    streets, street_index = np.unique(clean, return_inverse=True)
    return Base(x=x[inside], y=y[inside], street=street_index, streets=list(streets), kinds=_real_kinds(),
                london=london, bounds=tuple(wards.total_bounds))


def offsets(copies, bounds):
    """(dx, dy) in metres of each copy: a grid of London-sized cells, copy 0 in place, the rest west and north."""
    minx, miny, maxx, maxy = bounds
    step_x, step_y = maxx - minx + GAP_M, maxy - miny + GAP_M
    cols = max(1, math.ceil(math.sqrt(copies)))
    return np.array([(-(k % cols) * step_x, (k // cols) * step_y) for k in range(copies)], dtype=float)


def copy_code(code, k):
    return code if k == 0 else f"{code}-{k:02d}"


def copy_name(name, k):
    return name if k == 0 else f"{name} ({k:02d})"


def scaled_wards(copies, wards=None):
    """The wards copied ``copies`` times across the grid of :func:`offsets`, distinct codes and names."""
    import geopandas
    import pandas as pd
    import shapely

    wards = read_wards() if wards is None else wards
    parts = []
    for k, (dx, dy) in enumerate(offsets(copies, wards.total_bounds)):
        part = wards.copy()
        for column, rename in (("GSS_CODE", copy_code), ("LAGSSCODE", copy_code), ("NAME", copy_name),
                               ("DISTRICT", copy_name)):
            part[column] = [rename(v, k) for v in part[column]]
        part["geometry"] = shapely.transform(np.asarray(wards.geometry.values), lambda xy: xy + (dx, dy))
        parts.append(part)
    return geopandas.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=27700)


def write_wards(path, copies, wards=None):
    """Write the scaled wards as a GeoPackage (pyogrio); returns how many."""
    frame = scaled_wards(copies, wards)
    Path(path).unlink(missing_ok=True)
    frame.to_file(path, driver="GPKG", layer="wards", engine="pyogrio")
    return len(frame)


def map_points(base, rng, n):
    """``n`` anonymised map points of one London: real points chosen at random, jittered, kept inside London."""
    import shapely

    xs, ys, streets, have = [], [], [], 0
    while have < n:
        want = int((n - have) * 1.1) + 100
        pick = rng.integers(0, len(base.x), want)
        x = base.x[pick] + rng.normal(0.0, JITTER_M, want)
        y = base.y[pick] + rng.normal(0.0, JITTER_M, want)
        keep = shapely.contains_xy(base.london, x, y)
        xs.append(x[keep])
        ys.append(y[keep])
        streets.append(base.street[pick[keep]])
        have += int(keep.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n], np.concatenate(streets)[:n]


def _fixed6(values):
    """Text of each value with 6 decimals, as police.uk writes coordinates (an Arrow string array)."""
    import pyarrow as pa

    return pa.array([f"{v:.6f}" for v in values.tolist()], type=pa.string())


def copy_locations(base, x, y, offset):
    """The map points of one copy as written: (kept mask, longitude text, latitude text).

    A point whose coordinates, rounded to 6 decimals and read back, leave London
    (a map point within centimetres of London's edge) is dropped.
    """
    import shapely

    from crimemap.crs import bng_to_lonlat, lonlat_to_bng

    lon, lat = bng_to_lonlat(x + offset[0], y + offset[1])
    lon, lat = np.round(lon, 6), np.round(lat, 6)
    back_x, back_y = lonlat_to_bng(lon, lat)
    keep = shapely.contains_xy(base.london, back_x - offset[0], back_y - offset[1])
    return keep, _fixed6(lon[keep]), _fixed6(lat[keep])


def months(count):
    """``count`` consecutive months from FIRST_MONTH, as YYYY-MM."""
    year, month = FIRST_MONTH
    out = []
    for i in range(count):
        m = month - 1 + i
        out.append(f"{year + m // 12}-{m % 12 + 1:02d}")
    return out


def plan(points, copies, rows_per_file=ROWS_PER_FILE):
    """Rows per (copy, month) file: ``points`` split evenly, the remainder to the first files."""
    n_months = max(1, round(points / (copies * rows_per_file)))
    files = copies * n_months
    rows = np.full(files, points // files, dtype=np.int64)
    rows[: points % files] += 1
    return n_months, rows.reshape(copies, n_months)


def _file_table(rng, rows, month, force, lon, lat, street_text, lsoa, kinds):
    """One file's rows as an Arrow table with the street CSV's columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pick = pa.array(rng.integers(0, len(lon), rows))
    kind = rng.integers(0, len(kinds["type"]), rows)
    crime_type = pc.take(kinds["type"], pa.array(kind))
    asb = np.asarray(kinds["asb"])[kind]
    ids = np.frombuffer(rng.bytes(32 * rows).hex().encode("ascii"), dtype="S64")
    crime_id = pa.array(np.where(asb, b"", ids)).cast(pa.string())
    zeros = pa.array(np.zeros(rows, dtype=np.int32))
    const = lambda text: pc.take(pa.array([text], type=pa.string()), zeros)  # noqa: E731
    street = pc.take(street_text, pick)
    columns = [crime_id, const(month), const(force), const(force), pc.take(lon, pick), pc.take(lat, pick),
               street, pc.take(lsoa["code"], pick), pc.take(lsoa["name"], pick), crime_type,
               pc.take(kinds["outcome"], pa.array(kind)), const("")]
    return pa.table(columns, names=COLUMNS)


def _write_csv(path, table):
    import pyarrow.csv as pacsv

    with open(path, "wb") as out:
        out.write(CSV_HEADER.encode("utf-8"))
        pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False, quoting_style="none",
                                                       batch_size=65_536))


def generate(out, points, copies, seed=2018, map_points_per_copy=MAP_POINTS, rows_per_file=ROWS_PER_FILE,
             progress=None):
    """Write the scaled wards and ``points`` street CSV rows into ``out``; returns a summary dict.

    Parameters
    ----------
    out : str or Path
        Folder to write into (created); ``wards.gpkg`` and ``street/*.csv``.
    points : int
        Rows in all.
    copies : int
        Copies of London (wards: 657 each).
    seed : int
        Seed of numpy's generator: the same arguments give the same bytes.
    map_points_per_copy : int
        Distinct locations per copy before the edge check.
    progress : callable, optional
        Called with the rows written so far after each file.
    """
    import pyarrow as pa

    start = time.perf_counter()
    out = Path(out)
    (out / "street").mkdir(parents=True, exist_ok=True)
    wards = read_wards()
    n_wards = write_wards(out / "wards.gpkg", copies, wards)
    base = read_base(wards)
    rng = np.random.default_rng(seed)
    x, y, street = map_points(base, rng, map_points_per_copy)
    kinds_list = base.kinds
    kinds = {"type": pa.array([t for t, _ in kinds_list]), "outcome": pa.array([o for _, o in kinds_list]),
             "asb": [t == "Anti-social behaviour" for t, _ in kinds_list]}
    streets = pa.array(base.streets, type=pa.string())
    n_months, rows = plan(points, copies, rows_per_file)
    month_names = months(n_months)
    written, files, distinct = 0, [], 0
    for k, offset in enumerate(offsets(copies, base.bounds)):
        keep, lon, lat = copy_locations(base, x, y, offset)
        distinct += len(lon)
        street_text = streets.take(pa.array(street[keep]))
        # One synthetic LSOA per 300 map points, in the order drawn: codes and names as long as real ones.
        group = np.arange(len(lon)) // 300
        lsoa = {"code": pa.array([f"E01{k:02d}{g:04d}" for g in group.tolist()]),
                "name": pa.array([f"Synthetic {k:02d} {g:04d}A" for g in group.tolist()])}
        force = f"Synthetic Force {k:02d}"
        for m, month in enumerate(month_names):
            path = out / "street" / f"{month}-synthetic-{k:02d}-street.csv"
            _write_csv(path, _file_table(rng, int(rows[k, m]), month, force, lon, lat, street_text, lsoa, kinds))
            files.append(str(path))
            written += int(rows[k, m])
            if progress:
                progress(written)
    return {"points": written, "files": len(files), "wards": n_wards, "copies": copies, "months": n_months,
            "map_points": distinct, "base_points": len(base.x), "seconds": time.perf_counter() - start,
            "bytes": sum(os.path.getsize(p) for p in files), "wards_path": str(out / "wards.gpkg"),
            "street_dir": str(out / "street")}


def street_files(out):
    """The street CSVs written into ``out``, in order."""
    return sorted((Path(out) / "street").glob("*-street.csv"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000, help="rows in all (default 10M)")
    parser.add_argument("--copies", type=int, default=14, help="copies of London's 657 wards (default 14: 9,198)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--map-points", type=int, default=MAP_POINTS, help="anonymised map points per copy")
    args = parser.parse_args(argv)
    if args.points < 1 or args.copies < 1 or args.map_points < 1:
        parser.error("--points, --copies and --map-points must be positive")
    summary = generate(args.out, args.points, args.copies, args.seed, args.map_points)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
