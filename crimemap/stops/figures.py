"""Stop and search figures: the borough map, and one borough in detail.

The borough map has the shape of the crime map's figures
(:data:`crimemap.figures.areas.COLUMNS`), so the same bands, legend, table and
downloads serve it: searches per 1,000 residents against the London rate (the
Metropolitan Police area; the City of London Police is a separate force).

A borough's summary holds searches by month and type, objects of search in
the Safer Neighbourhood Board groups, outcomes and the arrest rate, and
disproportionality ratios (:func:`disproportionality`).
"""

import numpy as np
import pandas as pd
from scipy.special import betaincinv

from crimemap import uncertainty
from crimemap.classify import classify
from crimemap.errors import NotFound, UnknownArea
from crimemap.figures.areas import COLUMNS, london_figures, population_for, rate
from crimemap.figures.months import check_months, resolve_period
from crimemap.figures.sources import MET
from crimemap.store import stops as st
from crimemap.stops import ethnicity
from crimemap.stops.groups import object_group, object_groups, outcome_group, outcome_groups, type_labels

LEVEL = "borough"
BASES = ("officer", "self")
BASIS_COLUMNS = {"officer": "officer_defined_ethnicity", "self": "self_defined_ethnicity"}
CONFIDENCE = 0.95


def period(store, start, end, default_n, max_n):
    """The months a stop and search query covers.

    By default the ``default_n`` months ending at the latest month loaded,
    but not before the first month loaded.
    """
    months = st.stop_months(store)
    period = resolve_period(start, end, months[-1] if months else None, default_n, max_n)
    if start in (None, "") and end in (None, "") and months:
        # With fewer months loaded than the default period, the default starts at the first loaded month, so
        # a rate is never spread over months that hold no data.
        period = [m for m in period if m >= months[0]]
    return period


def borough_layer(store):
    """The borough layer stops are counted in.

    Raises
    ------
    UnknownArea
        When no borough boundaries are loaded.
    """
    layer = store.layer(LEVEL)
    if layer is None:
        raise UnknownArea("no borough boundaries are loaded (crimemap boundaries load borough PATH)")
    return layer


def census_by_code(store):
    """Census 2011 residents per area: code -> {category: persons} (with ``total`` and ``name``)."""
    frame = st.census(store)
    out = {}
    for code, part in frame.groupby("code"):
        row = dict(zip(part["category"], part["persons"].astype(int)))
        row["name"] = part["name"].iloc[0]
        out[code] = row
    return out


def residents(store, layer, months, codes):
    """Residents per borough for rates: the layer's loaded estimates, else Census 2011 totals.

    Returns
    -------
    (dict, str or None)
        code -> persons, and a description of the source.
    """
    population, year = population_for(store, layer["id"], months)
    if len(population):
        return {c: int(population[c]) for c in codes if c in population.index}, f"{year} population estimates"
    census = census_by_code(store)
    found = {c: int(census[c]["total"]) for c in codes if c in census}
    return found, ("Census 2011 usual residents" if found else None)


def borough_figures(store, months, with_geometry=True, small_count=20, scheme="london-ratio", k=5):
    """Searches, residents and the search rate per 1,000 for every borough.

    Parameters
    ----------
    store : crimemap.store.sqlite.SQLiteStore
    months : list of str
    with_geometry : bool
    small_count : int
        Counts below this are flagged ``small_count``.
    scheme, k
        Classification, as for the crime map.

    Returns
    -------
    geopandas.GeoDataFrame or pandas.DataFrame
        :data:`crimemap.figures.areas.COLUMNS` per borough. ``count`` is None
        for every borough when no stop data covers the period ("no data", not
        zero). ``attrs`` as :func:`crimemap.figures.area_figures`, plus
        ``no_location`` and ``outside`` (searches of the period with no
        location, or outside every borough), ``population_source`` and
        ``feeds``.
    """
    months = check_months(months)
    layer = borough_layer(store)
    with store.snapshot():
        areas = store.areas(layer["id"], with_geometry=with_geometry).reset_index(drop=True)
        counts = st.stop_counts(store, layer["id"], months)
        batches = st.stop_batches(store)
        people, population_source = residents(store, layer, months, areas["code"])
        version = str(store.data_version())
    batches = batches[batches["month"].isin(months)]
    covered = sorted(batches["month"].unique())
    located = counts[counts["code"].notna()].groupby("code")["n"].sum()
    per_code = [int(located.get(c, 0)) if covered else None for c in areas["code"]]
    persons = [people.get(c) for c in areas["code"]]
    rates = [rate(c, p) for c, p in zip(per_code, persons)]
    london = london_figures(per_code, persons, areas["force"])
    ratios = [r / london["rate_per_1000"] if r is not None and london["rate_per_1000"] else None for r in rates]
    lower, upper = uncertainty.rate_intervals([np.nan if c is None else c for c in per_code],
                                              [np.nan if p is None else p for p in persons])
    reference = [f == MET for f in areas["force"]]
    classification = classify(rates, reference, london["rate_per_1000"], scheme, k)
    bands = classification.assign(rates, london["rate_per_1000"])
    out = areas.drop(columns=[c for c in ("area_m2",) if c in areas.columns]).copy()
    out.insert(2, "level", LEVEL)
    out["separate_force"] = out["force"] != MET
    out["source"] = "police.uk-stops" if covered else None
    obj = (lambda values: pd.Series(values, index=out.index, dtype=object))
    out["count"] = obj(per_code)
    out["months_with_data"] = len(covered)
    out["population"] = obj(persons)
    out["rate_per_1000"] = obj(rates)
    ok = [r is not None for r in rates]
    out["rate_ci_lower"] = obj([float(v) if o else None for v, o in zip(lower, ok)])
    out["rate_ci_upper"] = obj([float(v) if o else None for v, o in zip(upper, ok)])
    out["small_count"] = obj([uncertainty.is_small(c, small_count) for c in per_code])
    out["ratio_to_london"] = obj(ratios)
    out["band"] = obj(bands)
    out["no_data"] = [c is None for c in per_code]
    out = out[COLUMNS + (["geometry"] if with_geometry else [])]
    band_counts = pd.Series([b for b, r in zip(bands, reference) if b is not None and r]).value_counts()
    unplaced = counts[counts["code"].isna()]
    out.attrs = {
        "london": london, "months": months, "months_with_data": covered, "category": "stop-and-search",
        "crime_label": "Stop and search", "crime_kind": "stops", "population_year": population_source,
        "population_source": population_source,
        "layer": {k_: layer[k_] for k_ in ("id", "level", "vintage")} | {"warnings": list(layer.get("warnings", []))},
        "source": "police.uk-stops" if covered else None,
        "sources": {"feeds": sorted(batches["feed"].unique().tolist())},
        "feeds": sorted(batches["feed"].unique().tolist()),
        "approximate": False, "classification": classification.to_dict(band_counts.to_dict()),
        "unallocated": None, "no_location": int(unplaced.loc[unplaced["located"] == 0, "n"].sum()),
        "outside": int(unplaced.loc[unplaced["located"] == 1, "n"].sum()),
        "data_version": version, "small_count_threshold": int(small_count),
    }
    return out


def proportion_interval(k, n, confidence=CONFIDENCE):
    """Exact (Clopper-Pearson) interval of a proportion ``k / n``; None when ``n`` is 0."""
    if not n:
        return None
    alpha = 1 - confidence
    low = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - alpha / 2))
    return [low, high]


def ratio_interval(searches, population, white_searches, white_population, confidence=CONFIDENCE):
    """Exact conditional interval of a rate ratio (searches/population over the White rate).

    Given the two counts' total, the group's count is binomial; the
    Clopper-Pearson interval of its share becomes an interval of the ratio of
    counts (:func:`crimemap.uncertainty.change_interval`), scaled by the
    populations. None when either count's population is missing or no search
    was recorded in either group; the upper end is None when unbounded.
    """
    if not population or not white_population or searches + white_searches == 0:
        return None
    interval = uncertainty.change_interval(searches, white_searches, confidence)
    scale = white_population / population
    lower = (1 + interval[0] / 100) * scale
    upper = None if interval[1] is None else (1 + interval[1] / 100) * scale
    return [lower, upper]


def disproportionality(searches, population, basis, small_count=20):
    """Search rates per 1,000 residents of each group, and their ratio to the White rate.

    Parameters
    ----------
    searches : dict
        Group id (``white``, ``black``, ``asian``, ``other``) -> searches.
    population : dict
        Group id -> residents (Census 2011).
    basis : str
        ``officer`` or ``self`` (which ethnicity the searches were counted by).
    small_count : int
        A ratio built on fewer searches than this (in the group or the White
        group) gets a caveat.

    Returns
    -------
    list of dict
        One per group, White first: ``group, label, ethnicity_basis, searches,
        population, rate_per_1000, ratio_to_white, ratio_ci, small_count,
        caveat``, and ``display`` (e.g. ``"3.4 (1,234 : 2,345)"``, the ratio
        with the two counts in brackets as the board packs show it).
    """
    ref = ethnicity.reference_group()
    labels = {g["id"]: g["label"] for g in ethnicity.groups()}
    white_n, white_pop = int(searches.get(ref, 0)), population.get(ref)
    white_rate = rate(white_n, white_pop)
    out = []
    for group in [ref, *ethnicity.compared_groups()]:
        n, pop = int(searches.get(group, 0)), population.get(group)
        group_rate = rate(n, pop)
        ratio = group_rate / white_rate if group_rate is not None and white_rate else None
        interval = ratio_interval(n, pop, white_n, white_pop) if group != ref else None
        small = n < small_count or white_n < small_count
        caveat = None
        if group != ref and ratio is None:
            caveat = "No ratio: no White searches or residents to compare with." if not white_rate else \
                "No ratio: no residents of this group."
        elif group != ref and small:
            upper = "no upper limit" if interval is None or interval[1] is None else f"{interval[1]:.1f}"
            lower = "–" if interval is None else f"{interval[0]:.1f}"
            caveat = (f"Small numbers ({n:,} and {white_n:,} White searches): read with care; "
                      f"95% interval {lower} to {upper}.")
        display = None
        if group != ref and ratio is not None:
            display = f"{ratio:.1f} ({n:,} : {white_n:,})"
        out.append({"group": group, "label": labels[group], "ethnicity_basis": basis, "searches": n,
                    "population": pop, "rate_per_1000": group_rate,
                    "ratio_to_white": 1.0 if group == ref and white_rate else ratio,
                    "ratio_ci": interval, "small_count": small if group != ref else n < small_count,
                    "caveat": caveat, "display": display})
    return out


def searches_by_group(frame, basis):
    """Searches per ethnic group from a frame with the basis's column and ``n``; plus those not stated."""
    column = BASIS_COLUMNS[basis]
    mapper = ethnicity.officer_group if basis == "officer" else ethnicity.self_group
    counts, not_stated = {}, 0
    for value, n in frame.groupby(column, dropna=False)["n"].sum().items():
        group = mapper(None if pd.isna(value) else value)
        if group is None:
            not_stated += int(n)
        else:
            counts[group] = counts.get(group, 0) + int(n)
    return counts, not_stated


def _by(frame, column, key, groups, labeller):
    totals = frame.groupby(frame[column].map(key))["n"].sum() if len(frame) else pd.Series(dtype="int64")
    detail = frame.groupby(frame[column].fillna(""))["n"].sum() if len(frame) else pd.Series(dtype="int64")
    total = int(frame["n"].sum()) if len(frame) else 0
    out = []
    for group in groups:
        members = [{"value": v or "Not recorded", "searches": int(n)} for v, n in detail.items() if key(v or None) ==
                   group["id"]]
        n = int(totals.get(group["id"], 0))
        out.append({"group": group["id"], "label": labeller(group), "searches": n,
                    "share": n / total if total else None,
                    "values": sorted(members, key=lambda m: -m["searches"])})
    return out


def borough_summary(store, code, months, small_count=20):
    """One borough's stop and search: monthly trend, types, objects, outcomes, arrest rate, disproportionality.

    Returns
    -------
    dict
        ``area``, ``period``, ``searches``, ``london`` (searches, arrest rate),
        ``monthly`` (searches and arrests by month, with types), ``by_type``,
        ``by_object``, ``by_outcome``, ``arrests``, ``arrest_rate``,
        ``arrest_rate_ci``, ``disproportionality`` (officer- then
        self-defined), ``not_stated``, ``fields_missing``, ``population``,
        ``notes`` and ``data_version``.

    Raises
    ------
    UnknownArea
        When no borough has the code.
    NotFound
        When the period is empty (no stop and search data loaded).
    """
    months = check_months(months)
    layer = borough_layer(store)
    if not months:
        raise NotFound("no stop and search data is loaded (crimemap stops ingest PATH...)")
    with store.snapshot():
        areas = store.areas(layer["id"], with_geometry=False)
        hit = areas[areas["code"] == code]
        if hit.empty:
            raise UnknownArea(f"no borough with code {code!r}")
        area = hit.iloc[0]
        dims = ("type", "object_of_search", "outcome", "officer_defined_ethnicity", "self_defined_ethnicity")
        rows = st.stop_counts(store, layer["id"], months, by=dims, code=code)
        london_rows = st.stop_counts(store, layer["id"], months, by=("outcome",))
        batches = st.stop_batches(store)
        census = census_by_code(store).get(code)
        version = str(store.data_version())
    batches = batches[batches["month"].isin(months)]
    covered = sorted(batches["month"].unique())
    total = int(rows["n"].sum()) if len(rows) else 0
    arrests = int(rows.loc[rows["outcome"].map(outcome_group) == "arrest", "n"].sum()) if total else 0
    london_met = london_rows[london_rows["code"].isin(areas.loc[areas["force"] == MET, "code"])]
    london_total = int(london_met["n"].sum())
    london_arrests = int(london_met.loc[london_met["outcome"].map(outcome_group) == "arrest", "n"].sum()) \
        if london_total else 0
    types = type_labels()
    monthly = []
    for month in months:
        part = rows[rows["month"] == month]
        entry = {"month": month, "has_data": month in covered,
                 "searches": int(part["n"].sum()) if month in covered else None,
                 "arrests": int(part.loc[part["outcome"].map(outcome_group) == "arrest", "n"].sum())
                 if month in covered else None}
        for type_id in types:
            entry[type_id] = int(part.loc[part["type"] == type_id, "n"].sum()) if month in covered else None
        monthly.append(entry)
    by_type = [{"type": t, "label": label, "searches": int(rows.loc[rows["type"] == t, "n"].sum()),
                "share": int(rows.loc[rows["type"] == t, "n"].sum()) / total if total else None}
               for t, label in types.items()]
    per_batch = [set(value.split(",")) for value in batches["fields"].fillna("")]
    fields = set().union(*per_batch) if per_batch else set()
    notes = ["Residents are Census 2011 usual residents: the people on a borough's streets (commuters, "
             "visitors, night-time economy) can differ a lot from those who live there, especially in central "
             "London (Westminster, Camden, the City), so ratios there overstate or understate exposure."]
    disparity, not_stated = [], {}
    population = ethnicity.population_by_group(census) if census else None
    for basis in BASES:
        if not fields or BASIS_COLUMNS[basis] in fields:
            counts, not_stated[basis] = searches_by_group(rows, basis)
            if population:
                disparity.extend(disproportionality(counts, population, basis, small_count))
    if not population:
        notes.append("No Census 2011 ethnic group table is loaded (crimemap stops population PATH), so there are "
                     "no disproportionality ratios.")
    missing = [b for b in BASES if fields and BASIS_COLUMNS[b] not in fields]
    partial = [b for b in BASES if BASIS_COLUMNS[b] in fields and any(BASIS_COLUMNS[b] not in f for f in per_batch)]
    if missing:
        notes.append("The loaded files do not carry " + " or ".join(f"{b}-defined ethnicity" for b in missing) +
                     " (police.uk reduced-column files): those ratios are not shown.")
    if partial:
        notes.append("Some months' files do not carry " + " or ".join(f"{b}-defined ethnicity" for b in partial) +
                     ": their searches count as not stated, so those ratios cover only the other months.")
    if len(covered) < len(months):
        notes.append(f"Stop and search data covers {len(covered)} of the {len(months)} months of this period.")
    interval = proportion_interval(arrests, total)
    return {
        "area": {"code": code, "name": area["name"], "level": LEVEL, "force": area["force"],
                 "separate_force": area["force"] != MET},
        "period": {"from": months[0], "to": months[-1], "months": len(months), "months_with_data": len(covered)},
        "searches": total if covered else None,
        "arrests": arrests if covered else None,
        "arrest_rate": arrests / total if total else None,
        "arrest_rate_ci": interval,
        "london": {"searches": london_total, "arrests": london_arrests,
                   "arrest_rate": london_arrests / london_total if london_total else None},
        "monthly": monthly, "by_type": by_type,
        "by_object": _by(rows, "object_of_search", object_group, object_groups(), lambda g: g["label"]),
        "by_outcome": _by(rows, "outcome", outcome_group, outcome_groups(), lambda g: g["label"]),
        "disproportionality": disparity, "not_stated": not_stated,
        "population": population, "population_source": "Census 2011 (QS201EW)" if population else None,
        "fields_missing": missing, "small_count_threshold": int(small_count), "notes": notes,
        "data_version": version,
    }


def status(store):
    """What stop and search and Taser data is loaded, as a JSON-ready dict."""
    batches = st.stop_batches(store)
    census = st.census(store)
    force_year = st.taser_force_year(store)
    deployments = st.taser_deployments(store)
    return {
        "months": sorted(batches["month"].unique().tolist()),
        "feeds": sorted(batches["feed"].unique().tolist()),
        "batches": [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in batches.to_dict("records")],
        "searches": int(batches["rows_read"].sum() - batches["rejected"].sum()) if len(batches) else 0,
        "no_location": int(batches["no_location"].sum()) if len(batches) else 0,
        "census_areas": int(census["code"].nunique()),
        "taser": {"force_year_rows": int(force_year[["force", "year_end"]].drop_duplicates().shape[0]),
                  "deployments": int(len(deployments)),
                  "quarters": sorted(deployments["quarter"].unique().tolist())},
        "data_version": str(store.data_version()),
    }
