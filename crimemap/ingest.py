"""Loading data into the store: boundaries, crimes and population.

Each public function here is one transaction. It reads with the readers in
:mod:`crimemap.io`, joins points with :mod:`crimemap.join`, and writes through
a store writer. If anything fails, nothing is written and the previous data
keeps serving. The CLI in :mod:`crimemap.cli` is a thin wrapper over these.
"""

import dataclasses
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from crimemap.crs import lonlat_to_bng
from crimemap.io.blocks import one_file_ahead
from crimemap.io.boundaries import read_boundaries
from crimemap.io.crimes import COUNT_FORMATS, POINT_FORMATS, Rejects, detect_format, read_counts, read_points
from crimemap.join import AreaIndex
from crimemap.population import recompute_area_population

API_FEED = "police.uk-api"


@dataclasses.dataclass
class IngestReport:
    """What an ingest read, joined and rejected: printed by the CLI, logged in the store."""

    files: list = dataclasses.field(default_factory=list)
    batches: list = dataclasses.field(default_factory=list)
    on_edge: list = dataclasses.field(default_factory=list)
    outside: int = 0

    def summary(self):
        """Totals over the files: rows read, joined, no location, outside, rejected."""
        points = [f for f in self.files if f["format"] in POINT_FORMATS]
        rows_read = sum(f["rows_read"] for f in points)
        rejected = sum(f["rejected"] for f in self.files)
        no_location = sum(f["no_location"] for f in points)
        reasons = Counter()
        for f in self.files:
            reasons.update(f["by_reason"])
        return {
            "files": len(self.files),
            "rows_read": rows_read,
            "joined": rows_read - rejected - no_location - self.outside,
            "no_location": no_location,
            "outside": self.outside,
            "on_edge": sum(e["crimes"] for e in self.on_edge),
            "rejected": rejected,
            "rejected_by_reason": dict(reasons),
            "count_rows": sum(f["rows_read"] for f in self.files if f["format"] in COUNT_FORMATS),
        }

    def to_dict(self):
        return {"summary": self.summary(), "files": self.files, "batches": self.batches, "on_edge": self.on_edge}


def _feed(fmt, force):
    """The replace key of a crime row: re-loading (feed, month) replaces it."""
    if fmt == "police-uk-json":
        return API_FEED
    if fmt == "police-uk-csv":
        return f"police.uk:{force or 'unknown'}"
    return fmt  # mps-ward, mps-borough, mps-lsoa


def build_indexes(layers, cell_m=50.0, threads=2):
    """Build an AreaIndex per ``(geometries, codes)`` layer, up to ``threads`` at a time.

    Building is mostly GEOS and numpy work, which releases the GIL, so two
    layers (wards and boroughs, say) build side by side on two cores.
    """
    def build(layer):
        return AreaIndex(layer[0], layer[1], cell_m=cell_m)

    layers = list(layers)
    if threads <= 1 or len(layers) <= 1:
        return [build(layer) for layer in layers]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(build, layers))


class _IndexCache:
    """Build each layer's AreaIndex once per transaction, and only when needed."""

    def __init__(self, writer, settings):
        self.writer = writer
        self.cell_m = float(settings.get("JOIN_GRID_CELL_M", 50.0))
        self.threads = int(settings.get("JOIN_THREADS", 2))
        self.chunk_rows = max(1, int(settings.get("INGEST_CHUNK_ROWS", 200_000)))
        self._indexes = {}

    def prepare(self, layer_ids):
        """Build the indexes of these layers (those not built yet) side by side."""
        todo = [layer_id for layer_id in layer_ids if layer_id not in self._indexes]
        layers = []
        for layer_id in todo:
            codes, wkbs = self.writer.layer_geometries(layer_id)
            layers.append((shapely.from_wkb(wkbs), np.asarray(codes, dtype=object)))
        self._indexes.update(zip(todo, build_indexes(layers, self.cell_m, self.threads)))

    def get(self, layer_id):
        self.prepare([layer_id])
        return self._indexes[layer_id]


def join_locations(writer, cache, layer_ids=None):
    """Join every location not yet joined to each layer; the location -> area cache.

    Returns
    -------
    dict
        layer id -> number of locations joined.
    """
    joined = {}
    todo = [layer_id for layer_id in (layer_ids if layer_ids is not None else writer.layer_ids())
            if writer.has_unjoined_locations(layer_id)]
    cache.prepare(todo)
    for layer_id in todo:
        # In chunks of INGEST_CHUNK_ROWS locations, in id order, so memory stays bounded
        # however many new locations an ingest brings (millions at national scale).
        after = 0
        while True:
            ids, x, y = writer.unjoined_locations(layer_id, after=after, limit=cache.chunk_rows)
            if len(ids) == 0:
                break
            index = cache.get(layer_id)
            result = index.assign(x, y, threads=cache.threads)
            codes = np.where(result.index >= 0, index.codes[np.maximum(result.index, 0)], None)
            writer.set_location_areas(layer_id, ids, codes.tolist(), result.on_edge)
            joined[layer_id] = joined.get(layer_id, 0) + len(ids)
            after = int(ids[-1])
    return joined


def ingest_crimes(store, paths, fmt=None, settings=None, progress=None, echo=None):
    """Load crime files; each (feed, month) they hold replaces the one stored.

    Parameters
    ----------
    store : crimemap.store.Store
    paths : list of str or Path
        police.uk street CSVs, police.uk API JSON / JSON Lines (``.gz`` too),
        or Met ward, borough or LSOA monthly count CSVs.
    fmt : str, optional
        Force a format (one of :data:`crimemap.io.crimes.FORMATS`).
    settings : dict, optional
        ``INGEST_CHUNK_ROWS``, ``JOIN_GRID_CELL_M``, ``JOIN_THREADS``.
    progress : callable, optional
        Called with the number of rows after each chunk.
    echo : callable, optional
        Called with one line of text when a file is done.

    Returns
    -------
    IngestReport
    """
    settings = settings or {}
    chunk_rows = int(settings.get("INGEST_CHUNK_ROWS", 200_000))
    listed = int(settings.get("REPORT_MAX_LISTED", 20))
    report = IngestReport()
    plans = [(Path(p), fmt or detect_format(p)) for p in paths]  # fail on an unknown format before writing
    rejects_of = [Rejects() for _ in plans]
    # Point files are read one file ahead: the next starts reading while this one is staged.
    points = one_file_ahead([k for k, (_, f) in enumerate(plans) if f in POINT_FORMATS],
                            lambda k: read_points(plans[k][0], plans[k][1], chunk_rows=chunk_rows,
                                                  rejects=rejects_of[k]))
    with store.writer() as writer:
        single_batch_rejects = {}
        for (path, path_fmt), rejects in zip(plans, rejects_of):
            if path_fmt in POINT_FORMATS:
                entry = _stage_point_file(writer, path, path_fmt, next(points)[1], rejects, progress)
                if len(entry["batches"]) == 1:
                    single_batch_rejects[entry["batches"][0]] = rejects.count
            else:
                frame = read_counts(path, path_fmt, rejects=rejects)
                coverage = {"areas": frame.attrs.get("areas", []), "months": frame.attrs.get("months", [])}
                written = writer.replace_counts(_feed(path_fmt, None), path_fmt, path, frame, coverage)
                report.batches.extend(written)
                entry = {"rows_read": len(frame), "no_location": 0, "crimes": int(frame["count"].sum()),
                         "batches": [(_feed(path_fmt, None), m) for m in coverage["months"]]}
                if progress:
                    progress(len(frame))
            entry.update(path=str(path), format=path_fmt, rejected=rejects.count, by_reason=dict(rejects.by_reason),
                         examples=rejects.examples[:listed], notes=list(rejects.notes))
            entry["batches"] = [f"{feed} {month}" for feed, month in entry["batches"]]
            report.files.append(entry)
            if echo:
                echo(_file_line(entry))
        report.batches.extend(writer.commit_staged(single_batch_rejects))
        # The indexes (hundreds of MB for a national ward layer) go once the join is done,
        # before the recount at commit needs its own memory.
        join_locations(writer, _IndexCache(writer, settings))
        months = sorted({b["month"] for b in report.batches})
        report.outside, report.on_edge = _placement(writer, months, listed)
        writer.log_ingest("crimes", [str(p) for p, _ in plans], report.to_dict())
    return report


def _stage_point_file(writer, path, fmt, chunks, rejects, progress):
    rows = no_location = 0
    batches = set()
    for chunk in chunks:
        rows += len(chunk)
        has = chunk["lon"].notna().to_numpy() & chunk["lat"].notna().to_numpy()
        no_location += int((~has).sum())
        location_id = pd.array([pd.NA] * len(chunk), dtype="Int64")
        if has.any():
            lon = chunk["lon"].to_numpy()[has]
            lat = chunk["lat"].to_numpy()[has]
            x, y = lonlat_to_bng(lon, lat)
            location_id[has] = writer.location_ids(lon, lat, x, y)
        chunk = chunk.assign(location_id=location_id)
        codes, forces = pd.factorize(chunk["force"], use_na_sentinel=False)
        feeds = [_feed(fmt, force) for force in forces]
        for feed in dict.fromkeys(feeds):  # each feed once, in order of first appearance
            mine = np.isin(codes, [k for k, f in enumerate(feeds) if f == feed])
            part = chunk if mine.all() else chunk[mine]
            writer.stage_points(feed, "points", fmt, path, part)
            batches.update((feed, m) for m in pd.unique(part["month"]))
        if progress:
            progress(len(chunk))
    return {"rows_read": rows + rejects.count, "no_location": no_location, "batches": sorted(batches)}


def _placement(writer, months, listed):
    """Crimes of these months outside every layer, and crimes on an area edge."""
    if not months or not writer.layer_ids():
        return 0, []
    marks = ",".join("?" * len(months))
    outside = int(writer.execute(
        f"SELECT COUNT(*) FROM crimes c WHERE c.month IN ({marks}) AND c.location_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM location_areas la WHERE la.location_id = c.location_id AND la.code IS NOT NULL)",
        months).fetchone()[0])
    rows = writer.execute(
        f"SELECT la.layer_id, la.location_id, la.code, l.x, l.y, COUNT(*) FROM crimes c "
        "JOIN location_areas la ON la.location_id = c.location_id JOIN locations l ON l.id = c.location_id "
        f"WHERE la.on_edge = 1 AND c.month IN ({marks}) GROUP BY la.layer_id, la.location_id, la.code, l.x, l.y "
        "ORDER BY la.layer_id, la.location_id", months).fetchall()
    layers = {info["id"]: info for info in writer.layer_info()}
    by_layer = {}
    for layer_id, location_id, code, x, y, n in rows:
        info = layers[layer_id]
        item = by_layer.setdefault(layer_id, {"level": info["level"], "vintage": info["vintage"], "crimes": 0,
                                              "locations": 0, "examples": []})
        item["crimes"] += int(n)
        item["locations"] += 1
        if len(item["examples"]) < listed:
            item["examples"].append({"x": x, "y": y, "assigned": code, "crimes": int(n)})
    return outside, list(by_layer.values())


def _file_line(entry):
    text = f"{entry['path']}: {entry['format']}, {entry['rows_read']:,} rows"
    if entry["format"] in POINT_FORMATS:
        text += f", {entry['no_location']:,} without a location"
    if entry["rejected"]:
        text += f", {entry['rejected']:,} rejected"
    return text


def load_boundaries(store, path, level, vintage=None, settings=None, layer=None):
    """Load one boundary layer, join every stored location to it, refresh populations.

    Returns
    -------
    dict
        level, vintage, layout, areas, crs_note, repairs, warnings, joined.
    """
    settings = settings or {}
    boundary = read_boundaries(path, level, vintage=vintage, layer=layer)
    with store.writer() as writer:
        layer_id = writer.put_layer(boundary)
        joined = join_locations(writer, _IndexCache(writer, settings), [layer_id])
        recompute_area_population(writer, settings)
        result = {"level": boundary.level, "vintage": boundary.vintage, "layout": boundary.layout,
                  "areas": len(boundary.gdf), "crs_note": boundary.crs_note, "repairs": boundary.repairs,
                  "warnings": boundary.warnings, "locations_joined": joined.get(layer_id, 0),
                  "city_of_london_areas": int((boundary.gdf["force"] == "city-of-london").sum())}
        writer.log_ingest("boundaries", [str(path)], {"summary": result})
    return result
