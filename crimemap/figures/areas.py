"""Figures for every area of a level: count, residents, rate, London average, band.

No data is not zero
-------------------
An area has data for a month when its source covers it then: for police.uk
points, when the area's force published anything for that month anywhere in
the layer; for a Met table, when the table lists the area in that month. An
area with no month of data gets ``count`` None ("no data"), never 0.
``months_with_data`` says how many months of the period were covered.

The London average
------------------
Over the Metropolitan Police area only: the City of London Police is a
separate force, so its areas are shown (``separate_force`` True) but left out
of the average. The London rate is the total count over the total residents
of the Met areas that have both, so it always equals the sum of the areas
shown.
"""

import numpy as np
import pandas as pd

from crimemap import uncertainty
from crimemap.classify import DEFAULT_SCHEME, classify
from crimemap.errors import BadQuery, UnknownArea
from crimemap.figures.months import check_months
from crimemap.figures import layer_cache
from crimemap.figures.sources import MET, catalog

LEVELS = ("borough", "ward", "snt")
# Levels area_figures can count: LEVELS plus LSOAs, which only the vector
# tiles show (crimemap.tiles); pages and the JSON API still accept LEVELS.
FIGURE_LEVELS = LEVELS + ("lsoa",)
# Counts under this many crimes give rates too unreliable to read alone (ONS
# treats rates from fewer than 20 events as unreliable); ``small_count`` flags
# them. The web layer passes the SMALL_COUNT setting.
SMALL_COUNT = 20

COLUMNS = ["code", "name", "level", "borough_code", "borough_name", "force", "separate_force", "source", "count",
           "months_with_data", "population", "rate_per_1000", "rate_ci_lower", "rate_ci_upper", "small_count",
           "ratio_to_london", "band", "no_data"]


def check_level(level):
    """Raise :class:`BadQuery` unless ``level`` is one of :data:`FIGURE_LEVELS`."""
    if level not in FIGURE_LEVELS:
        raise BadQuery(f"unknown level {level!r}; expected one of {', '.join(FIGURE_LEVELS)}")


def get_layer(store, level, vintage=None):
    """The boundary layer serving ``level`` (SNT falls back to wards).

    Raises
    ------
    BadQuery
        For an unknown level, or a vintage that is not loaded (listing those that are).
    UnknownArea
        When no boundaries of the level are loaded.
    """
    check_level(level)
    layer = store.layer(level, vintage=vintage)
    if layer is None:
        if vintage is not None:
            loaded = sorted({lay["vintage"] for lay in store.layers()
                             if lay["level"] == level or (level == "snt" and lay["level"] == "ward")})
            if loaded:
                raise BadQuery(f"unknown vintage {vintage!r} for {level}; loaded: {', '.join(loaded)}")
        which = f"{level} boundaries" + (f" of vintage {vintage}" if vintage else "")
        raise UnknownArea(f"no {which} are loaded")
    return layer


def population_for(store, layer_id, months):
    """Residents per area for the estimate year nearest before the period ends.

    Returns
    -------
    (pandas.Series, str or None)
        Persons by code, and the year used (None when no population is loaded).
    """
    pop = store.population(layer_id)
    if pop.empty:
        return pd.Series(dtype="int64"), None
    years = sorted(pop["year"].astype(str).unique())
    end_year = months[-1][:4] if months else years[-1]
    before = [y for y in years if y <= end_year]
    year = before[-1] if before else years[0]
    chosen = pop[pop["year"].astype(str) == year]
    return chosen.groupby("code")["persons"].sum(), year


def rate(count, population):
    """Crimes per 1,000 residents; None when either is unknown or there are no residents."""
    if count is None or population is None or population <= 0:
        return None
    return 1000.0 * count / population


def london_figures(counts, populations, forces):
    """The London figure: totals over the Met areas that have a count and residents.

    Returns
    -------
    dict
        ``count, population, rate_per_1000, rate_ci, areas``; None values when no area qualifies.
    """
    met = [(c, p) for c, p, f in zip(counts, populations, forces) if f == MET and c is not None and p]
    if not met:
        return {"count": None, "population": None, "rate_per_1000": None, "rate_ci": None, "areas": 0}
    count, persons = sum(c for c, _ in met), sum(p for _, p in met)
    return {"count": int(count), "population": int(persons), "rate_per_1000": rate(count, persons),
            "rate_ci": _pair(uncertainty.rate_interval(count, persons)), "areas": len(met)}


def _pair(interval):
    return None if interval is None else [float(interval[0]), float(interval[1])]


def _snapshot(store):
    snapshot = getattr(store, "snapshot", None)
    if snapshot is None:
        import contextlib

        return contextlib.nullcontext()
    return snapshot()


def area_figures(store, level, months, category="all-crime", vintage=None, with_geometry=True,
                 scheme=DEFAULT_SCHEME, k=5, small_count=SMALL_COUNT, read=None, cache=None):
    """Crimes, residents and the rate per 1,000 for every area of a level.

    Computed once per data version and query in a process and kept
    (:mod:`crimemap.figures.layer_cache`); every call gets its own copy.

    Parameters
    ----------
    store : crimemap.store.Store
    level : str
        ``borough``, ``ward`` or ``snt`` (SNT uses the ward layer when no SNT
        layer is loaded).
    months : list of str
        The period, ``YYYY-MM`` each.
    category : str
        A crime type id (see :mod:`crimemap.crimetypes`): ``all-crime``,
        ``mopac7``, a police.uk slug or a Met ``met-...`` id.
    vintage : str, optional
        Boundary vintage; the newest loaded by default.
    with_geometry : bool
        Return a GeoDataFrame (EPSG:27700) with the areas' geometry.
    scheme : str
        Classification (:data:`crimemap.classify.SCHEMES`); bands against the
        London average by default.
    k : int
        Classes for the ``quantiles`` and ``natural-breaks`` schemes.
    small_count : int
        Counts below this are flagged ``small_count``.
    read, cache : optional
        Months to read (a superset of ``months``) and a cache of reads to
        share, for callers that need several periods (see
        :func:`crimemap.figures.sources.choose`).

    Returns
    -------
    geopandas.GeoDataFrame or pandas.DataFrame
        One row per area, ordered by code, with :data:`COLUMNS`. ``count``,
        ``population``, ``rate_per_1000``, ``ratio_to_london`` and ``band``
        hold None when unknown; ``count`` is None when the area has no data
        for the period (not zero). ``attrs`` holds ``london``
        (``{count, population, rate_per_1000, rate_ci, areas}`` over the Met
        area), ``months``, ``category``, ``crime_label``, ``layer``,
        ``population_year``, ``source`` (of the Met areas), ``sources`` (per
        force), ``classification``, ``unallocated`` and ``data_version``.

    Raises
    ------
    BadQuery
        For an unknown level or crime type, or a malformed month.
    UnknownArea
        When no boundaries of the level are loaded.
    """
    months = check_months(months)
    check_level(level)
    with _snapshot(store):
        # One computation per data version and query, shared by the choropleth, the area API and the tiles.
        version = layer_cache.version_key(store)
        cat = catalog(store)
        cat.registry().get(category)  # an unknown crime type is refused before anything is kept
        layer = get_layer(store, level, vintage)
        key = (version, int(layer["id"]), level, tuple(months), category, bool(with_geometry), scheme, k,
               small_count)
        if cache is None:
            cache = layer_cache.shared_reads(store, version)
        return layer_cache.figures(key, lambda: _compute(store, level, months, category, layer, cat, with_geometry,
                                                         scheme, k, small_count, read, cache))


def _compute(store, level, months, category, layer, cat, with_geometry, scheme, k, small_count, read, cache):
    """:func:`area_figures` computed (inside the caller's snapshot)."""
    crime_type = cat.registry().get(category)
    areas = layer_cache.areas(store, layer["id"], with_geometry).reset_index(drop=True)
    chosen = layer_cache.choose(store, layer, areas, crime_type, sorted(set(months) | set(read or ())), cat,
                                judge=months, cache=cache)
    population, year = population_for(store, layer["id"], months)
    version = str(store.data_version())

    counts, covered_n, sources = [], [], []
    for code, force in zip(areas["code"], areas["force"]):
        found = chosen.get(force)
        months_in = [m for m in months if found is not None and (code, m) in found.covered]
        covered_n.append(len(months_in))
        sources.append(found.source.id if found is not None and months_in else None)
        counts.append(None if not months_in else 0)
    for force, found in chosen.items():
        if found is None:
            continue
        rows = found.select(crime_type)
        summed = rows[rows["month"].isin(months).to_numpy()].groupby("code", observed=True)["n"].sum()
        for i, (code, f) in enumerate(zip(areas["code"], areas["force"])):
            if f == force and counts[i] is not None:
                counts[i] = int(summed.get(code, 0))

    persons = [int(population[code]) if code in population.index else None for code in areas["code"]]
    rates = [rate(c, p) for c, p in zip(counts, persons)]
    london = london_figures(counts, persons, areas["force"])
    london_rate = london["rate_per_1000"]
    ratios = [r / london_rate if r is not None and london_rate else None for r in rates]
    lower, upper = uncertainty.rate_intervals([np.nan if c is None else c for c in counts],
                                              [np.nan if p is None else p for p in persons])
    reference = [f == MET for f in areas["force"]]
    classification = classify(rates, reference, london_rate, scheme, k)
    bands = classification.assign(rates, london_rate)

    out = areas.drop(columns=[c for c in ("area_m2",) if c in areas.columns]).copy()
    out.insert(2, "level", level)
    out["separate_force"] = out["force"] != MET
    out["source"] = pd.Series(sources, index=out.index, dtype=object)
    out["count"] = pd.Series(counts, index=out.index, dtype=object)
    out["months_with_data"] = np.asarray(covered_n, dtype=int)
    out["population"] = pd.Series(persons, index=out.index, dtype=object)
    out["rate_per_1000"] = pd.Series(rates, index=out.index, dtype=object)
    ok = [r is not None for r in rates]
    out["rate_ci_lower"] = pd.Series([float(v) if o else None for v, o in zip(lower, ok)], index=out.index,
                                     dtype=object)
    out["rate_ci_upper"] = pd.Series([float(v) if o else None for v, o in zip(upper, ok)], index=out.index,
                                     dtype=object)
    out["small_count"] = pd.Series([uncertainty.is_small(c, small_count) for c in counts], index=out.index,
                                   dtype=object)
    out["ratio_to_london"] = pd.Series(ratios, index=out.index, dtype=object)
    out["band"] = pd.Series(bands, index=out.index, dtype=object)
    out["no_data"] = [c is None for c in counts]
    out = out[COLUMNS + (["geometry"] if with_geometry else [])]
    band_counts = pd.Series([b for b, r in zip(bands, reference) if b is not None and r]).value_counts()
    met_source = chosen.get(MET)
    unallocated = None
    if met_source is not None and met_source.source.kind == "counts":
        rows = met_source.select(crime_type, met_source.unallocated)
        unallocated = int(rows.loc[rows["month"].isin(months).to_numpy(), "n"].sum())
    out.attrs = {
        "london": london, "months": months, "category": crime_type.id, "crime_label": crime_type.label,
        "crime_kind": crime_type.kind, "population_year": year,
        "layer": {k_: layer[k_] for k_ in ("id", "level", "vintage")} | {"warnings": list(layer.get("warnings", []))},
        "source": met_source.source.id if met_source is not None else None,
        "sources": {force: (found.source.to_dict() if found is not None else None)
                    for force, found in chosen.items()},
        "approximate": bool(crime_type.approximate_in_points and met_source is not None
                            and met_source.source.kind == "points"),
        "classification": classification.to_dict(band_counts.to_dict()),
        "unallocated": unallocated, "data_version": version, "small_count_threshold": int(small_count),
    }
    return out


def find_area(figures, code):
    """The row of ``code`` in an :func:`area_figures` result.

    Raises
    ------
    UnknownArea
        If no area of that level has the code.
    """
    hits = figures[figures["code"] == code]
    if hits.empty:
        level = figures["level"].iloc[0] if len(figures) else "area"
        raise UnknownArea(f"no {level} with code {code!r}")
    return hits.iloc[0]
