"""Load stop and search data and Census residents into the store.

Each public function is one transaction through the store's writer: if a file
is unreadable, or anything fails halfway, nothing is written and the previous
data keeps serving. Re-loading a (feed, month) replaces it.
"""

from collections import Counter
from pathlib import Path

import pandas as pd

from crimemap.crs import lonlat_to_bng
from crimemap.errors import BadInput
from crimemap.io.crimes import Rejects
from crimemap.store import stops as st
from crimemap.stops import ethnicity
from crimemap.stops.io import FORMATS, detect_format, read_stops

API_FEED = "police.uk-api-stops"


def feed_for(fmt, force):
    """The replacement key of a file's stops: ``police.uk-stops:<force>`` or ``police.uk-api-stops``."""
    if fmt == "police-uk-stops-json":
        return API_FEED
    return f"police.uk-stops:{force or 'unknown'}"


def ingest_stops(store, paths, fmt=None, force=None, settings=None, echo=None):
    """Load police.uk stop and search files; each (feed, month) replaces the one stored.

    Parameters
    ----------
    store : crimemap.store.sqlite.SQLiteStore
    paths : list of str or Path
        police.uk stop and search CSVs (``.gz`` too) or stops-street /
        stops-force JSON.
    fmt : str, optional
        One of :data:`crimemap.stops.io.FORMATS`; detected when omitted.
    force : str, optional
        The force of CSV files whose name does not say it.
    settings : dict, optional
        ``JOIN_GRID_CELL_M``, ``JOIN_THREADS``, ``REPORT_MAX_LISTED``.
    echo : callable, optional
        Called with one line per file read.

    Returns
    -------
    dict
        ``summary`` (rows read, stored, without a location, outside every
        borough, rejected by reason), ``files`` and ``batches``.
    """
    from crimemap.ingest import _IndexCache, join_locations

    settings = settings or {}
    listed = int(settings.get("REPORT_MAX_LISTED", 20))
    if fmt is not None and fmt not in FORMATS:
        raise BadInput(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    plans = [(Path(p), fmt or detect_format(p)) for p in paths]
    files, parts, rejected_in = [], {}, {}
    for path, path_fmt in plans:  # read everything before the write starts: a bad file changes nothing
        rejects = Rejects()
        frame = read_stops(path, path_fmt, rejects)
        feed = feed_for(path_fmt, frame.attrs["force"] or force)
        months = sorted(frame["month"].unique())
        for month, part in frame.groupby("month", sort=True):
            parts.setdefault((feed, month), []).append((part, frame.attrs["fields"], path_fmt, path))
        if len(months) == 1:
            rejected_in[(feed, months[0])] = rejected_in.get((feed, months[0]), 0) + rejects.count
        entry = {"path": str(path), "format": path_fmt, "feed": feed, "rows_read": len(frame) + rejects.count,
                 "stored": len(frame), "no_location": int(frame["lon"].isna().sum()), "rejected": rejects.count,
                 "by_reason": dict(rejects.by_reason), "examples": rejects.examples[:listed],
                 "notes": list(rejects.notes), "months": months}
        files.append(entry)
        if echo:
            echo(f"{path}: {path_fmt}, {entry['rows_read']:,} rows, {entry['no_location']:,} without a location, "
                 f"{entry['rejected']:,} rejected" + (f" ({_reasons(entry['by_reason'])})" if entry["rejected"] else ""))
    batches = []
    with store.writer() as writer:
        for (feed, month), pieces in sorted(parts.items()):
            frame = pd.concat([p[0] for p in pieces], ignore_index=True)
            located = frame["lon"].notna().to_numpy()
            location_id = pd.array([pd.NA] * len(frame), dtype="Int64")
            if located.any():
                lon, lat = frame["lon"].to_numpy()[located], frame["lat"].to_numpy()[located]
                x, y = lonlat_to_bng(lon, lat)
                location_id[located] = writer.location_ids(lon, lat, x, y)
            frame = frame.assign(location_id=location_id)
            fields = set().union(*[set(p[1]) for p in pieces])
            batches.append(st.replace_stop_batch(writer, feed, month, pieces[0][2], ", ".join(
                sorted({str(p[3]) for p in pieces})), frame, rejected_in.get((feed, month), 0), fields))
        join_locations(writer, _IndexCache(writer, settings))
        outside = _outside(writer, [b["month"] for b in batches])
        report = {"summary": _summary(files, outside), "files": files, "batches": batches}
        writer.log_ingest("stops", [str(p) for p, _ in plans], report)
    return report


def _reasons(by_reason):
    return ", ".join(f"{n:,} {reason}" for reason, n in sorted(by_reason.items()))


def _outside(writer, months):
    """Stops of these months with coordinates outside every borough (None when no borough layer)."""
    layer = writer.execute("SELECT id FROM layers WHERE level = 'borough' ORDER BY vintage DESC").fetchone()
    if layer is None or not months:
        return None
    marks = ",".join("?" * len(months))
    return int(writer.execute(
        f"SELECT COUNT(*) FROM stops s JOIN stop_batches b ON b.id = s.batch_id LEFT JOIN location_areas la "
        f"ON la.location_id = s.location_id AND la.layer_id = ? WHERE b.month IN ({marks}) "
        "AND s.location_id IS NOT NULL AND la.code IS NULL", [layer[0], *months]).fetchone()[0])


def _summary(files, outside):
    reasons = Counter()
    for entry in files:
        reasons.update(entry["by_reason"])
    stored = sum(f["stored"] for f in files)
    no_location = sum(f["no_location"] for f in files)
    return {"files": len(files), "rows_read": sum(f["rows_read"] for f in files), "stored": stored,
            "no_location": no_location, "outside": outside,
            "in_a_borough": None if outside is None else stored - no_location - outside,
            "rejected": sum(f["rejected"] for f in files), "rejected_by_reason": dict(reasons)}


def load_census(store, path):
    """Load Census 2011 residents by ethnic group (QS201EW by local authority, or KS201EW by output area).

    Returns
    -------
    dict
        ``areas`` loaded, ``boroughs`` (London borough codes E09 among them),
        ``persons`` in those boroughs and ``notes``.
    """
    frame = ethnicity.read_census(path)
    if frame.empty:
        raise BadInput(f"{path}: no areas in the table")
    with store.writer() as writer:
        n = st.replace_census(writer, frame, Path(path).name, list(ethnicity.census_categories()))
        london = frame[frame["code"].str.startswith("E09")]
        result = {"areas": n, "boroughs": len(london), "persons": int(london["total"].sum()),
                  "notes": frame.attrs.get("notes", [])}
        writer.log_ingest("stops-census", [str(path)], {"summary": result})
    return result


def load_taser(store, path, settings=None):
    """Load a Taser table: the Home Office force-by-year layout or one row per deployment.

    Returns
    -------
    dict
        ``layout``, ``rows`` stored, ``rejected`` (by reason, with examples)
        and, for records, ``deployments``, ``subjects`` and ``quarters``.
    """
    from crimemap.stops import taser

    listed = int((settings or {}).get("REPORT_MAX_LISTED", 20))
    layout = taser.detect_layout(path)
    rejects = Rejects()
    with store.writer() as writer:
        if layout == "force-year":
            frame = taser.read_force_year(path, rejects)
            if frame.empty:
                raise BadInput(f"{path}: no usable rows ({_reasons(rejects.by_reason) or 'empty'})")
            st.replace_taser_force_year(writer, frame, Path(path).name, taser.measures())
            result = {"layout": layout, "rows": len(frame), "forces": int(frame["force"].nunique()),
                      "years": sorted(frame["period"].unique().tolist()),
                      "inconsistent": frame.loc[~frame["consistent"], ["force", "year_end"]].to_dict("records")}
        else:
            frame = taser.read_records(path, rejects)
            if frame.empty:
                raise BadInput(f"{path}: no usable rows ({_reasons(rejects.by_reason) or 'empty'})")
            quarters = st.replace_taser_deployments(writer, frame, Path(path).name)
            counted = taser.count_deployments(frame)[0]
            result = {"layout": layout, "rows": len(frame), "deployments": counted["deployments"],
                      "subjects": counted["subjects"], "quarters": quarters}
        result.update(rejected=rejects.count, by_reason=dict(rejects.by_reason), examples=rejects.examples[:listed],
                      notes=list(rejects.notes))
        writer.log_ingest("taser", [str(path)], {"summary": result})
    return result
