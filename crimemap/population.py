"""Residents per area, for rates per 1,000, whatever boundary vintage is loaded.

The rule (docs/population.md):

1. A population table given per area code (ward profiles, borough tables)
   applies directly to a layer when it covers at least 95 % of the layer's codes.
2. Otherwise LSOA mid-year estimates are aggregated to the layer by best fit:
   each LSOA goes wholly to the area holding its point on surface (a point
   guaranteed inside the LSOA polygon). This needs an LSOA layer whose codes
   match the estimates (``crimemap boundaries load lsoa ...``).
3. Without LSOA polygons, borough layers still get populations by summing
   LSOAs on the local authority code the estimates carry.

LSOAs are small (about 1,500 residents) and nest in boroughs, so best fit is
exact for boroughs and typically within a few per cent for wards.
"""

import numpy as np
import pandas as pd
import shapely

from crimemap.join import AreaIndex

DIRECT_COVERAGE = 0.95


def best_fit(lsoa_codes, x, y, persons_by_lsoa, index):
    """Aggregate LSOA populations to the areas of an index by point on surface.

    Parameters
    ----------
    lsoa_codes : array of str
        LSOA codes, aligned with ``x`` and ``y``.
    x, y : arrays of float
        Each LSOA's point on surface, EPSG:27700.
    persons_by_lsoa : DataFrame
        Columns ``lsoa_code``, ``year``, ``persons``.
    index : crimemap.join.AreaIndex
        The target layer.

    Returns
    -------
    DataFrame
        ``code, year, persons`` for every area that received residents.
    """
    result = index.assign(np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64"))
    placed = pd.DataFrame({"lsoa_code": lsoa_codes,
                           "code": np.where(result.index >= 0, index.codes[np.maximum(result.index, 0)], None)})
    merged = persons_by_lsoa.merge(placed.dropna(), on="lsoa_code", how="inner")
    return merged.groupby(["code", "year"], as_index=False)["persons"].sum()


def recompute_area_population(writer, settings=None):
    """Recompute residents per area for every loaded layer, inside a write.

    Returns
    -------
    dict
        layer id -> method used (or ``None`` when no rule applies).
    """
    settings = settings or {}
    layers = writer.layer_info()
    lsoa = writer.lsoa_population()
    direct = writer.direct_population()
    methods = {}
    lsoa_layer = None
    if not lsoa.empty:
        known = set(lsoa["lsoa_code"])
        for info in layers:
            if info["level"] == "lsoa":
                codes, _ = writer.layer_geometries(info["id"])
                if codes and np.mean([c in known for c in codes]) >= DIRECT_COVERAGE:
                    lsoa_layer = info
    for info in layers:
        codes, wkbs = writer.layer_geometries(info["id"])
        code_set = set(codes)
        frames = []
        if not direct.empty:
            hits = direct[direct["code"].isin(code_set)]
            if len(set(hits["code"])) >= DIRECT_COVERAGE * len(code_set):
                frames.append(hits[["code", "year", "persons"]].assign(method="direct by area code"))
        if not lsoa.empty:
            if info["level"] == "lsoa" and lsoa_layer and lsoa_layer["id"] == info["id"]:
                frame = lsoa.rename(columns={"lsoa_code": "code"})[["code", "year", "persons"]]
                frames.append(frame.assign(method="LSOA estimates"))
            elif lsoa_layer is not None:
                lsoa_codes, x, y = writer.lsoa_points(lsoa_layer["id"])
                index = AreaIndex(shapely.from_wkb(wkbs), np.asarray(codes, dtype=object),
                                  cell_m=float(settings.get("JOIN_GRID_CELL_M", 50.0)))
                frame = best_fit(lsoa_codes, x, y, lsoa[["lsoa_code", "year", "persons"]], index)
                frames.append(frame.assign(method=f"best fit of LSOA {lsoa_layer['vintage']} estimates"))
            elif info["level"] == "borough":
                hits = lsoa[lsoa["lad_code"].isin(code_set)]
                frame = hits.groupby(["lad_code", "year"], as_index=False)["persons"].sum().rename(
                    columns={"lad_code": "code"})
                frames.append(frame.assign(method="sum of LSOA estimates by local authority code"))
        frames = [f for f in frames if not f.empty]
        if frames:
            # Several rules may give the same year: the first (direct) wins.
            combined = pd.concat(frames, ignore_index=True).drop_duplicates(["code", "year"], keep="first")
            writer.put_area_population(info["id"], combined)
            methods[info["id"]] = sorted(combined["method"].unique().tolist())
        else:
            methods[info["id"]] = None
    return methods


def load_population(store, path, year=None, settings=None):
    """Load a population table and refresh residents per area for every layer."""
    from crimemap.io.population import read_population

    frame, described = read_population(path, year=year)
    with store.writer() as writer:
        if described["kind"] == "lsoa":
            writer.put_lsoa_population(frame.rename(columns={"code": "lsoa_code"}), path)
        else:
            writer.put_direct_population(frame, path)
        methods = recompute_area_population(writer, settings)
        layers = {info["id"]: info for info in writer.layer_info()}
        # Area tables mix levels (wards, boroughs, London), so only LSOA rows add up.
        persons = int(frame["persons"].sum()) if described["kind"] == "lsoa" else None
        result = dict(described, rows=len(frame), persons=persons,
                      years=sorted(frame["year"].unique().tolist()),
                      layers=[{"level": layers[i]["level"], "vintage": layers[i]["vintage"], "method": m}
                              for i, m in methods.items()])
        writer.log_ingest("population", [str(path)], {"summary": result})
    return result
