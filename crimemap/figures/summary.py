"""One area in detail: crime types now against before, trends, neighbours, target.

This is the Safer Neighbourhood Board layout: for each crime type the count
of the period, the count of the period of the same length just before it, the
% change, and the London-wide % change beside it. Small counts carry an exact
Poisson interval on the change (:mod:`crimemap.uncertainty`), so 2 -> 4 is
never a bare "+100 %".

Counts of a period are summed over the months the source covers; a period
with no covered month has no count (None). A % change is given only when both
periods have the same number of covered months, so a period with half its
months missing is never compared with a whole one.
"""

import pandas as pd
import shapely

from crimemap import uncertainty
from crimemap.crimetypes import ALL_CRIME, MOPAC7
from crimemap.errors import UnknownArea
from crimemap.figures.areas import SMALL_COUNT, area_figures, get_layer, population_for, rate
from crimemap.figures.months import (baseline_months, check_months, describe_baseline, ending, previous_months,
                                     year_earlier)
from crimemap.figures import layer_cache
from crimemap.figures.sources import MET, POINTS, catalog

# Areas this close (metres) count as touching: boundary files generalised
# separately leave hairline gaps between neighbours.
NEIGHBOUR_TOLERANCE_M = 1.0


class _Series:
    """Monthly counts of one crime type for one area and for London, from one source."""

    def __init__(self, counts, crime_type, code, all_months):
        self.area, self.london = {}, {}
        if counts is None:
            self.area_cov, self.london_cov = set(), set()
            return
        for target, source in ((self.area, counts.area_rows), (self.london, counts.london_rows)):
            for (month, kind), n in source.items():
                if _counts_towards(counts, crime_type, kind):
                    target[month] = target.get(month, 0) + n
        self.area_cov = {m for m in all_months if (code, m) in counts.covered}
        self.london_cov = counts.london_cov

    def total(self, months, london=False):
        """(count or None, months covered) over a period."""
        series, cov = (self.london, self.london_cov) if london else (self.area, self.area_cov)
        inside = [m for m in months if m in cov]
        if not inside:
            return None, 0
        return int(sum(series.get(m, 0) for m in inside)), len(inside)


def _counts_towards(counts, crime_type, kind):
    """Whether rows of one kind (a police.uk category, or a Met (major, minor)) count towards a type."""
    key = (crime_type, kind)
    found = counts.matches.get(key)
    if found is None:
        if counts.source.kind == "points":
            found = crime_type.police_uk is None or kind in crime_type.police_uk
        else:
            found = crime_type.matches_met(*kind)
        counts.matches[key] = found
    return found


def _compare(series, now_months, before_months, small_count):
    now, now_n = series.total(now_months)
    before, before_n = series.total(before_months)
    lnow, lnow_n = series.total(now_months, london=True)
    lbefore, lbefore_n = series.total(before_months, london=True)
    comparable = now is not None and before is not None and now_n == before_n
    london_comparable = lnow is not None and lbefore is not None and lnow_n == lbefore_n
    interval = uncertainty.change_interval(now, before) if comparable else None
    return {
        "count": now, "previous_count": before,
        "pct_change": uncertainty.pct_change(now, before) if comparable else None,
        "pct_change_ci": None if interval is None else [interval[0], interval[1]],
        "change_is_clear": uncertainty.change_is_clear(interval),
        "small_count": uncertainty.is_small(now, small_count) or bool(uncertainty.is_small(before, small_count)),
        "caveat": uncertainty.change_caveat(now, before, interval, small_count),
        "london_count": lnow, "london_previous_count": lbefore,
        "london_pct_change": uncertainty.pct_change(lnow, lbefore) if london_comparable else None,
        "months_with_data": now_n, "previous_months_with_data": before_n,
    }


def _prepare(counts, code, met_codes, all_months):
    """Sum a source's rows per month and kind once: for the area, and over London's Met areas.

    Sets ``area_rows`` and ``london_rows`` of ``counts`` to dicts
    ``{(month, kind): n}``, where ``kind`` is a police.uk category or a Met
    ``(major, minor)``; the per-type sums then run over a few hundred keys.
    """
    if counts is None or counts.area_rows is not None:
        return counts
    types = ["category"] if counts.source.kind == "points" else ["major", "minor"]
    rows = counts.rows

    def summed(mask):
        part = rows[mask].groupby(["month"] + types, observed=True)["n"].sum()
        part = part[part > 0]
        if counts.source.kind == "points":
            return {(m, c): int(n) for (m, c), n in part.items()}
        return {(m, (a, b)): int(n) for (m, a, b), n in part.items()}

    counts.area_rows = summed((rows["code"] == code).to_numpy())
    # London's part is the same for every area of the layer: computed once per read (layer_cache.memo).
    shared = layer_cache.memo(counts)
    key = ("london", tuple(all_months))
    if key not in shared:
        shared[key] = (summed(rows["code"].isin(met_codes).to_numpy()),
                       frozenset(counts.months_covered(met_codes, all_months)))
    london_rows, london_cov = shared[key]
    counts.london_rows, counts.london_cov = dict(london_rows), set(london_cov)
    counts.matches = {}
    return counts


def _types_listed(reg, counts, months):
    """The crime types a by-type table lists for a source and the months it compares, in listing order."""
    if counts is None:
        return []
    months = set(months)
    present = {kind for month, kind in (*counts.area_rows, *counts.london_rows) if month in months}
    if counts.source.kind == "points":
        return [t for t in reg if t.kind == "police.uk" and (not t.historic or t.id in present)]
    return [t for t in reg if t.kind in ("met-major", "met-minor") and any(t.matches_met(*p) for p in present)]


def _type_rows(reg, counts, code, met_codes, all_months, months, previous, small_count, population):
    rows = []
    for crime_type in _types_listed(reg, counts, set(months) | set(previous)) + [reg.get(ALL_CRIME), reg.get(MOPAC7)]:
        series = _Series(counts, crime_type, code, all_months)
        row = {"crime": crime_type.id, "label": crime_type.label, "kind": crime_type.kind,
               "group": crime_type.group}
        row.update(_compare(series, months, previous, small_count))
        row["rate_per_1000"] = rate(row["count"], population)
        rows.append(row)
    # Largest first within each level of the table; totals last.
    body = [r for r in rows if r["kind"] not in ("total", "group")]
    totals = [r for r in rows if r["kind"] in ("total", "group")]
    majors = sorted([r for r in body if r["kind"] != "met-minor"], key=lambda r: -(r["count"] or 0))
    ordered = []
    for major in majors:
        ordered.append(major)
        ordered += sorted([r for r in body if r["group"] == major["crime"]], key=lambda r: -(r["count"] or 0))
    return ordered + totals


def _context(store, level, code, vintage):
    """The layer, its areas and the area's row."""
    layer = get_layer(store, level, vintage)
    areas = layer_cache.areas(store, layer["id"], False)
    match = areas[areas["code"] == code]
    if match.empty:
        raise UnknownArea(f"no {level} with code {code!r}")
    return layer, areas, match.iloc[0]


def area_by_type(store, level, code, months, previous=None, vintage=None, small_count=SMALL_COUNT):
    """Crimes of one area by type, now against an earlier period, with London beside.

    Parameters
    ----------
    store : crimemap.store.Store
    level : str
        ``borough``, ``ward`` or ``snt``.
    code : str
        The area's code.
    months : list of str
        The period.
    previous : list of str, optional
        The period to compare with; by default the same length just before.
    vintage : str, optional
        Boundary vintage.
    small_count : int
        Counts below this carry ``small_count`` and a ``caveat``.

    Returns
    -------
    pandas.DataFrame
        One row per crime type of the source that answers for the area (the
        Met's major types each followed by its minor types, or the police.uk
        categories), largest first, then ``all-crime`` and ``mopac7``.
        Columns ``crime, label, kind, group, count, previous_count,
        pct_change, pct_change_ci, change_is_clear, small_count, caveat,
        london_count, london_previous_count, london_pct_change,
        months_with_data, previous_months_with_data, rate_per_1000``. Counts
        are None for a period with no data. London means the Met areas of the
        layer. ``attrs``: ``months``, ``previous``, ``force``, ``source``.

    Raises
    ------
    UnknownArea
        If the level has no area with this code.
    """
    months = check_months(months)
    previous = previous_months(months) if previous is None else check_months(previous)
    layer, areas, row = _context(store, level, code, vintage)
    cat = catalog(store)
    reg = cat.registry()
    all_months = sorted(set(months) | set(previous))
    counts = layer_cache.choose(store, layer, areas, reg.get(ALL_CRIME), all_months, cat,
                                cache=layer_cache.shared_reads(store))[row["force"]]
    met_codes = set(areas.loc[areas["force"] == MET, "code"])
    _prepare(counts, code, met_codes, all_months)
    population, _ = population_for(store, layer["id"], months)
    persons = int(population[code]) if code in population.index else None
    rows = _type_rows(reg, counts, code, met_codes, all_months, months, previous, small_count, persons)
    frame = pd.DataFrame(rows, dtype=object)  # keeps None as None, not NaN
    frame.attrs = {"months": months, "previous": previous, "force": row["force"],
                   "source": counts.source.to_dict() if counts is not None else None}
    return frame


def _period(months):
    return {"from": months[0], "to": months[-1], "months": len(months)} if months else None


def neighbours(figures, code, tolerance=NEIGHBOUR_TOLERANCE_M):
    """Areas touching ``code`` in an :func:`area_figures` result with geometry.

    Returns
    -------
    list of dict
        ``code, name, force, separate_force, count, rate_per_1000,
        ratio_to_london, band, no_data, shared_border_m``, longest shared
        border first.
    """
    geoms = figures.geometry.to_numpy()
    target = geoms[(figures["code"] == code).to_numpy()][0]
    near = shapely.dwithin(geoms, target, tolerance) & (figures["code"] != code).to_numpy()
    border = shapely.buffer(shapely.boundary(target), tolerance)
    out = []
    for i in near.nonzero()[0]:
        row = figures.iloc[i]
        shared = float(shapely.length(shapely.intersection(shapely.boundary(geoms[i]), border)))
        out.append({"code": row["code"], "name": row["name"], "force": row["force"],
                    "separate_force": bool(row["separate_force"]), "count": row["count"],
                    "rate_per_1000": row["rate_per_1000"], "ratio_to_london": row["ratio_to_london"],
                    "band": row["band"], "no_data": bool(row["no_data"]), "shared_border_m": round(shared, 1)})
    out.sort(key=lambda n: (-n["shared_border_m"], n["name"] or ""))
    return out


def _no_location(store, force, months):
    found = []
    if months:
        # One indexed count (crimes_location holds the NULLs) instead of the whole status document.
        rows = store.query("SELECT month, COUNT(*) FROM crimes WHERE location_id IS NULL "
                           "AND COALESCE(NULLIF(force, ''), 'unknown') = ? "
                           f"AND month IN ({','.join('?' * len(months))}) GROUP BY month ORDER BY month",
                           [force, *months])
        found = [{"month": month, "count": int(n)} for month, n in rows]
    return {"force": force, "count": sum(r["count"] for r in found),
            "by_month": [{"month": r["month"], "count": r["count"]} for r in found],
            "note": ("Crimes the force published without a location, counted for the whole force; they are in "
                     "no area's figures. police.uk API data never includes them.")}


def _target(store, layer, areas, crime_type, code, force, end, spec, pct, small_count, cat, read, reads):
    """Progress of the rolling 12 months ending ``end`` against a baseline and target.

    ``read`` are the months to read (a superset of the baseline and the
    current 12), ``reads`` the summary's shared cache of reads.
    """
    try:
        base = baseline_months(spec)
    except ValueError as exc:
        return {"crime": crime_type.id, "available": False, "reason": str(exc)}
    current = ending(end, 12)
    needed = sorted(set(base) | set(current))
    counts = layer_cache.choose(store, layer, areas, crime_type, read, cat, judge=needed, cache=reads)[force]
    body = {"crime": crime_type.id, "label": crime_type.label, "baseline": describe_baseline(spec),
            "baseline_period": _period(base), "current_period": _period(current), "target_pct": float(pct)}
    if counts is None:
        return body | {"available": False, "reason": "no loaded data covers this area"}
    met_codes = set(areas.loc[areas["force"] == MET, "code"])
    _prepare(counts, code, met_codes, read)
    series = _Series(counts, crime_type, code, needed)
    baseline, base_n = series.total(base)
    now, now_n = series.total(current)
    if base_n < len(base) or now_n < len(current):
        held = cat.point_months() if counts.source.kind == "points" else cat.met_months(counts.source.table_level)
        span = f"{held[0]} to {held[-1]}" if held else "no months"
        return body | {"available": False, "source": counts.source.id,
                       "reason": f"{counts.source.id} data loaded covers {span}; the baseline "
                                 f"({describe_baseline(spec)}) and the latest 12 months must both be loaded"}
    target_count = baseline * (1 + float(pct) / 100.0)
    change = uncertainty.pct_change(now, baseline)
    return body | {"available": True, "source": counts.source.id, "baseline_count": baseline, "count": now,
                   "pct_change": change, "target_count": round(target_count, 1),
                   "met": change is not None and change <= float(pct),
                   "to_go": max(0, int(round(now - target_count))),
                   "small_count": bool(uncertainty.is_small(baseline, small_count))}


def area_summary(store, level, code, months, category=ALL_CRIME, vintage=None, small_count=SMALL_COUNT,
                 target_baseline=None, target_pct=None, scheme="london-ratio", k=5, with_figures=False):
    """Everything about one area for a period: the area page and ``/api/v1/areas``.

    Parameters
    ----------
    store : crimemap.store.Store
    level, code : str
        The area.
    months : list of str
        The period (the rolling 12 months by default in the web layer).
    category : str
        The headline crime type id.
    vintage : str, optional
    small_count : int
    target_baseline : str, optional
        ``"2012/13"`` (financial year), ``"2012"`` or ``"2012-04/2013-03"``;
        no target when None.
    target_pct : float, optional
        The target change against the baseline, e.g. -20.
    scheme, k
        Classification of the level (see :func:`area_figures`).
    with_figures : bool
        Also return the level's :func:`area_figures` (with geometry).

    Returns
    -------
    dict, or (dict, geopandas.GeoDataFrame) with ``with_figures``
        JSON-ready; see docs and ``/api/v1/areas``.

    Raises
    ------
    BadQuery, UnknownArea
    """
    months = check_months(months)
    layer, areas, area = _context(store, level, code, vintage)
    cat = catalog(store)
    reg = cat.registry()
    crime_type = reg.get(category)
    previous = previous_months(months)
    end = months[-1] if months else None
    last3 = ending(end, 3) if end else []
    roll12 = ending(end, 12) if end else []
    windows = [months, previous, last3, year_earlier(last3), roll12, previous_months(roll12)]
    all_months = sorted({m for w in windows for m in w})
    # One read of every month any part of the summary needs, shared by all parts.
    read = all_months
    if target_baseline and end:
        try:
            loaded = set(cat.months)  # never read baseline months that no feed holds
            read = sorted(set(all_months) | (set(baseline_months(target_baseline)) & loaded))
        except ValueError:
            pass  # _target reports the bad setting
    met_codes = set(areas.loc[areas["force"] == MET, "code"])
    reads = layer_cache.shared_reads(store)  # this request's reads, shared with the process's
    figures = area_figures(store, level, months, category, vintage=vintage, with_geometry=True, scheme=scheme,
                           k=k, small_count=small_count, read=read, cache=reads)
    row = figures[(figures["code"] == code).to_numpy()].drop(columns="geometry").to_dict("records")[0]

    def source_for(ctype):
        counts = layer_cache.choose(store, layer, areas, ctype, read, cat,
                                    judge=sorted(set(months) | set(previous)), cache=reads)[area["force"]]
        return _prepare(counts, code, met_codes, read)

    population, year = population_for(store, layer["id"], months)
    persons = int(population[code]) if code in population.index else None
    headline_counts = source_for(crime_type)
    all_counts = headline_counts if crime_type.id == ALL_CRIME else source_for(reg.get(ALL_CRIME))
    series = _Series(headline_counts, crime_type, code, all_months)
    monthly = []
    for month in sorted(set(previous) | set(months)):
        count, n = series.total([month])
        lcount, _ = series.total([month], london=True)
        monthly.append({"month": month, "count": count, "london_count": lcount, "in_period": month in months})

    def comparison(now_months, before_months):
        body = _compare(series, now_months, before_months, small_count)
        return {"period": _period(now_months), "previous_period": _period(before_months)} | body

    mopac_counts = headline_counts if crime_type.id == MOPAC7 else source_for(reg.get(MOPAC7))
    mopac = {"crime": MOPAC7, "label": reg.get(MOPAC7).label,
             "source": mopac_counts.source.id if mopac_counts is not None else None,
             "approximate": mopac_counts is not None and mopac_counts.source.kind == "points"}
    mopac.update(_compare(_Series(mopac_counts, reg.get(MOPAC7), code, all_months), months, previous,
                          small_count))
    mopac["members"] = _mopac_members(reg, mopac_counts, code, met_codes, all_months, months, previous,
                                      small_count)

    targets = []
    if target_baseline and end:
        for ctype in dict.fromkeys([crime_type, reg.get(MOPAC7)]):
            targets.append(_target(store, layer, areas, ctype, code, row["force"], end, target_baseline,
                                   target_pct or 0.0, small_count, cat, read, reads))

    no_location = _no_location(store, row["force"], months) if headline_counts is None or \
        headline_counts.source.id == POINTS else None
    attrs = figures.attrs
    notes = []
    if row["small_count"]:
        notes.append(f"Fewer than {small_count} crimes: the rate is uncertain; see rate_ci (95% interval).")
    if attrs["approximate"]:
        notes.append("MOPAC 7 from police.uk categories is an approximation that counts more than MOPAC 7 proper.")
    summary = {
        "area": {"code": row["code"], "name": row["name"], "level": level, "borough_code": row["borough_code"],
                 "borough_name": row["borough_name"], "force": row["force"],
                 "separate_force": bool(row["separate_force"]), "population": row["population"],
                 "population_year": year},
        "crime": {"id": crime_type.id, "label": crime_type.label},
        "period": _period(months), "previous_period": _period(previous),
        "source": row["source"] or (headline_counts.source.id if headline_counts is not None else None),
        "count": row["count"], "months_with_data": int(row["months_with_data"]), "no_data": bool(row["no_data"]),
        "rate_per_1000": row["rate_per_1000"],
        "rate_ci": None if row["rate_ci_lower"] is None else [row["rate_ci_lower"], row["rate_ci_upper"]],
        "small_count": row["small_count"], "ratio_to_london": row["ratio_to_london"], "band": row["band"],
        "london": attrs["london"] | {"unallocated": attrs["unallocated"]},
        "classification": attrs["classification"],
        "by_type_source": all_counts.source.to_dict() if all_counts is not None else None,
        "by_type": _type_rows(reg, all_counts, code, met_codes, all_months, months, previous, small_count,
                              persons),
        "monthly": monthly,
        "comparisons": {
            "last_3_months_vs_year_earlier": comparison(last3, year_earlier(last3)) if end else None,
            "rolling_12_vs_previous_12": comparison(roll12, previous_months(roll12)) if end else None,
        },
        "mopac7": mopac,
        "targets": targets,
        "neighbours": neighbours(figures, code),
        "no_location": no_location,
        "layer": attrs["layer"],
        "notes": notes,
        "data_version": attrs["data_version"],
    }
    return (summary, figures) if with_figures else summary


def _mopac_members(reg, counts, code, met_codes, all_months, months, previous, small_count):
    if counts is None:
        return []
    out = []
    if counts.source.kind == "points":
        # police.uk categories are coarser than the seven; list each category once.
        for slug in reg.get(MOPAC7).police_uk:
            ctype = reg.get(slug)
            body = _compare(_Series(counts, ctype, code, all_months), months, previous, small_count)
            out.append({"id": slug, "label": ctype.label} | body)
        return out
    from crimemap.crimetypes import CrimeType, mopac7_rules

    for member in reg.mopac7_members:
        ctype = CrimeType(member["id"], member["label"], "group", police_uk=(), met=mopac7_rules(member))
        body = _compare(_Series(counts, ctype, code, all_months), months, previous, small_count)
        out.append({"id": member["id"], "label": member["label"]} | body)
    return out
