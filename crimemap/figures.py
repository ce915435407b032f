"""Crime counts and rates per area, against the London average.

A pure core module: a store in, data frames out. The web pages, the JSON API
and embeds all take their numbers from here, so a map, its data table and its
download always agree.

Counts come from police.uk point data joined to the boundary layer
(``store.point_counts``). Published Met count tables (``store.area_counts``)
are not used here yet.

No data is not zero
-------------------
police.uk publishes one file per force and month. An area has data for a
month when its force has any crime in that month anywhere in the layer; an
area of such a force with no crime of the chosen type then really has zero.
An area whose force has no data in any month of the period gets ``count``
None (shown as "no data"). ``months_with_data`` says how many months of the
period were covered.

The London average
------------------
Over the Metropolitan Police area only: the City of London Police is a
separate force, so its areas are shown (``separate_force`` True) but left out
of the average. The average is the total count over the total population of
the Met areas that have both.
"""

import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from crimemap.errors import BadQuery, UnknownArea

LEVELS = ("borough", "ward", "snt")
MET = "metropolitan"
CITY = "city-of-london"
ALL_CRIME = "all-crime"
MOPAC7 = "mopac7"

# The MOPAC 7 neighbourhood crimes are violence with injury, robbery,
# burglary, theft from the person, theft/taking of a motor vehicle, theft from
# a motor vehicle and criminal damage. police.uk categories are coarser, so for
# point data the group is approximated by the categories that contain them.
# "violent-crime" also holds violence without injury and sexual offences, so
# the approximation counts more than MOPAC 7 proper; "vehicle-crime" also
# holds vehicle interference; "criminal-damage-arson" also holds arson.
MOPAC7_POINT_CATEGORIES = ("violent-crime", "robbery", "burglary", "theft-from-the-person", "vehicle-crime",
                           "criminal-damage-arson")

# Bands of the ratio of an area's rate to the London rate: (id, label, lower
# bound inclusive, upper bound exclusive). Symmetric on a log scale (x0.5 and
# x2, x0.8 and x1.25), so "much lower" and "much higher" are equally far from
# the average.
BANDS = (
    ("much-lower", "Much lower", 0.0, 0.5),
    ("lower", "Lower", 0.5, 0.8),
    ("around", "Around average", 0.8, 1.25),
    ("higher", "Higher", 1.25, 2.0),
    ("much-higher", "Much higher", 2.0, float("inf")),
)

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_CATEGORIES_FILE = Path(__file__).resolve().parent / "schemas" / "police_uk_categories.json"


@lru_cache(maxsize=1)
def category_labels():
    """police.uk category slugs and their labels, in the order police.uk lists them.

    Returns
    -------
    dict of str to str
        Slug (``"violent-crime"``) to label (``"Violence and sexual offences"``).
    """
    with open(_CATEGORIES_FILE, encoding="utf-8") as f:
        return {c["slug"]: c["label"] for c in json.load(f)["categories"]}


def crime_label(crime):
    """A person's name for a crime type id (a slug, ``all-crime`` or ``mopac7``)."""
    if crime == ALL_CRIME:
        return "All crime"
    if crime == MOPAC7:
        return "MOPAC 7 neighbourhood crimes (approximation)"
    return category_labels().get(crime, crime)


def categories_for(crime):
    """The police.uk categories a crime type id stands for.

    Parameters
    ----------
    crime : str
        ``all-crime``, ``mopac7`` or a police.uk category slug.

    Returns
    -------
    list of str or None
        None for ``all-crime`` (every category, including ones added later).

    Raises
    ------
    BadQuery
        If ``crime`` is none of these.
    """
    if crime == ALL_CRIME:
        return None
    if crime == MOPAC7:
        return list(MOPAC7_POINT_CATEGORIES)
    if crime in category_labels():
        return [crime]
    raise BadQuery(f"unknown crime type {crime!r}; expected all-crime, mopac7 or one of "
                   f"{', '.join(category_labels())}")


# --- months ---------------------------------------------------------------------


def _month_index(month):
    if not isinstance(month, str) or not _MONTH.match(month):
        raise BadQuery(f"bad month {month!r}; expected YYYY-MM")
    return int(month[:4]) * 12 + int(month[5:]) - 1


def _month_name(index):
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_range(first, last):
    """Every month from ``first`` to ``last``, both inclusive (``YYYY-MM``).

    Raises
    ------
    BadQuery
        If either is not ``YYYY-MM`` or ``first`` is after ``last``.
    """
    a, b = _month_index(first), _month_index(last)
    if a > b:
        raise BadQuery(f"the period starts ({first}) after it ends ({last})")
    return [_month_name(i) for i in range(a, b + 1)]


def previous_months(months):
    """The period of the same length that ends where ``months`` starts.

    Parameters
    ----------
    months : list of str
        A run of consecutive months, oldest first.

    Returns
    -------
    list of str
    """
    if not months:
        return []
    start = _month_index(months[0])
    return [_month_name(i) for i in range(start - len(months), start)]


def latest_months(store, n=12):
    """The ``n`` calendar months ending at the latest month loaded.

    A month inside the run that was never loaded is still listed: a rolling
    12 months is 12 calendar months, and :func:`area_figures` reports how many
    of them hold data.

    Parameters
    ----------
    store : crimemap.store.Store
    n : int
        Number of months.

    Returns
    -------
    list of str
        ``YYYY-MM``, oldest first; empty when no crime data is loaded.
    """
    if int(n) < 1:
        raise ValueError(f"n must be at least 1, got {n!r}")
    loaded = _loaded_months(store)
    if not loaded:
        return []
    end = _month_index(max(loaded))
    return [_month_name(i) for i in range(end - int(n) + 1, end + 1)]


def _loaded_months(store):
    query = getattr(store, "_query", None)
    if query is not None:
        # One indexed query instead of the whole status document.
        return [row[0] for row in query("SELECT DISTINCT month FROM batches") if row[0]]
    return list(store.status().get("months", []))


# --- figures per area --------------------------------------------------------------


def _check_level(level):
    if level not in LEVELS:
        raise BadQuery(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


def _layer(store, level, vintage):
    _check_level(level)
    layer = store.layer(level, vintage=vintage)
    if layer is None:
        which = f"{level} boundaries" + (f" of vintage {vintage}" if vintage else "")
        raise UnknownArea(f"no {which} are loaded")
    return layer


def _population(store, layer_id, months):
    """Residents per area for the year nearest before the period ends."""
    pop = store.population(layer_id)
    if pop.empty:
        return pd.Series(dtype="int64"), None
    years = sorted(pop["year"].astype(str).unique())
    end_year = months[-1][:4] if months else years[-1]
    before = [y for y in years if y <= end_year]
    year = before[-1] if before else years[0]
    chosen = pop[pop["year"].astype(str) == year]
    return chosen.groupby("code")["persons"].sum(), year


def band_for(ratio):
    """The band id of a ratio to the London rate (None when the ratio is unknown)."""
    if ratio is None or not np.isfinite(ratio):
        return None
    for band, _label, low, high in BANDS:
        if low <= ratio < high:
            return band
    return None


def _rate(count, population):
    if count is None or population is None or population <= 0:
        return None
    return 1000.0 * count / population


def area_figures(store, level, months, category=ALL_CRIME, vintage=None, with_geometry=True):
    """Crimes, residents and the rate per 1,000 for every area of a level.

    Parameters
    ----------
    store : crimemap.store.Store
    level : str
        ``borough``, ``ward`` or ``snt`` (SNT uses the ward layer when no SNT
        layer is loaded).
    months : list of str
        The period, ``YYYY-MM`` each.
    category : str
        ``all-crime``, ``mopac7`` (see :data:`MOPAC7_POINT_CATEGORIES`) or a
        police.uk category slug.
    vintage : str, optional
        Boundary vintage; the newest loaded by default.
    with_geometry : bool
        Return a GeoDataFrame (EPSG:27700) with the areas' geometry.

    Returns
    -------
    geopandas.GeoDataFrame or pandas.DataFrame
        One row per area, ordered by code, with ``code, name, level,
        borough_code, borough_name, force, separate_force, count,
        months_with_data, population, rate_per_1000, ratio_to_london, band,
        no_data``. ``count``, ``population``, ``rate_per_1000``,
        ``ratio_to_london`` and ``band`` hold None when unknown; ``count`` is
        None when the area has no data for the period (not zero). ``attrs``
        holds ``london`` (``{count, population, rate_per_1000}`` over the Met
        area), ``months``, ``category``, ``layer`` and ``population_year``.

    Raises
    ------
    BadQuery
        For an unknown level or crime type, or a malformed month.
    UnknownArea
        When no boundaries of the level are loaded.
    """
    months = [str(m) for m in months]
    for month in months:
        _month_index(month)
    cats = categories_for(category)
    layer = _layer(store, level, vintage)
    snapshot = getattr(store, "snapshot", None)
    if snapshot is not None:
        with snapshot():
            areas, counts, population, year = _read(store, layer["id"], months, with_geometry)
    else:
        areas, counts, population, year = _read(store, layer["id"], months, with_geometry)

    force_of = areas.set_index("code")["force"]
    counts = counts[counts["code"].isin(force_of.index)].assign(force=lambda f: f["code"].map(force_of))
    covered = counts.groupby("force")["month"].nunique()
    if cats is not None:
        counts = counts[counts["category"].isin(cats)]
    summed = counts.groupby("code")["n"].sum()

    months_covered = areas["force"].map(covered).fillna(0).astype(int)
    count = [int(summed.get(code, 0)) if covered_n else None
             for code, covered_n in zip(areas["code"], months_covered)]
    persons = [int(population[code]) if code in population.index else None for code in areas["code"]]
    out = areas.copy()
    out.insert(2, "level", level)
    out["separate_force"] = out["force"] != MET
    out["count"] = pd.Series(count, index=out.index, dtype=object)
    out["months_with_data"] = months_covered.to_numpy()
    out["population"] = pd.Series(persons, index=out.index, dtype=object)
    rates = [_rate(c, p) for c, p in zip(count, persons)]
    out["rate_per_1000"] = pd.Series(rates, index=out.index, dtype=object)

    met = [(c, p) for c, p, f in zip(count, persons, out["force"]) if f == MET and c is not None and p]
    london_count = sum(c for c, _ in met) if met else None
    london_pop = sum(p for _, p in met) if met else None
    london_rate = _rate(london_count, london_pop)
    ratios = [r / london_rate if r is not None and london_rate else None for r in rates]
    out["ratio_to_london"] = pd.Series(ratios, index=out.index, dtype=object)
    out["band"] = pd.Series([band_for(r) for r in ratios], index=out.index, dtype=object)
    out["no_data"] = [c is None for c in count]
    columns = ["code", "name", "level", "borough_code", "borough_name", "force", "separate_force", "count",
               "months_with_data", "population", "rate_per_1000", "ratio_to_london", "band", "no_data"]
    out = out[columns + (["geometry"] if with_geometry else [])]
    out.attrs = {
        "london": {"count": london_count, "population": london_pop, "rate_per_1000": london_rate},
        "months": months, "category": category, "population_year": year,
        "layer": {k: layer[k] for k in ("id", "level", "vintage")},
    }
    return out


def _read(store, layer_id, months, with_geometry):
    areas = store.areas(layer_id, with_geometry=with_geometry)
    counts = store.point_counts(layer_id, months=months) if months else \
        pd.DataFrame(columns=["code", "month", "category", "n"])
    population, year = _population(store, layer_id, months)
    return areas.reset_index(drop=True), counts, population, year


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


# --- crime types of one area ------------------------------------------------------------


def _pct_change(now, before):
    if now is None or before is None or before == 0:
        return None
    return 100.0 * (now - before) / before


def area_by_type(store, level, code, months, previous=None, vintage=None):
    """Crimes of one area by police.uk category, now against an earlier period.

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

    Returns
    -------
    pandas.DataFrame
        One row per category (``crime``, ``label``, ``count``,
        ``previous_count``, ``pct_change``, ``london_count``,
        ``london_previous_count``, ``london_pct_change``), largest first, then
        ``all-crime`` and ``mopac7`` rows. Counts are None for a period in
        which the area's force has no data. London means the Met area.

    Raises
    ------
    UnknownArea
        If the level has no area with this code.
    """
    months = [str(m) for m in months]
    previous = previous_months(months) if previous is None else [str(m) for m in previous]
    for month in months + previous:
        _month_index(month)
    layer = _layer(store, level, vintage)
    areas = store.areas(layer["id"], with_geometry=False)
    match = areas[areas["code"] == code]
    if match.empty:
        raise UnknownArea(f"no {level} with code {code!r}")
    force = match["force"].iloc[0]
    wanted = months + [m for m in previous if m not in months]
    counts = store.point_counts(layer["id"], months=wanted) if wanted else \
        pd.DataFrame(columns=["code", "month", "category", "n"])
    counts = counts.assign(force=counts["code"].map(areas.set_index("code")["force"]))

    def totals(period, rows):
        period = set(period)
        part = rows[rows["month"].isin(period)]
        return part.groupby("category")["n"].sum()

    def has_data(period, force_name):
        return bool(counts[(counts["force"] == force_name) & counts["month"].isin(set(period))].shape[0])

    here = counts[counts["code"] == code]
    london = counts[counts["force"] == MET]
    now, before = totals(months, here), totals(previous, here)
    lnow, lbefore = totals(months, london), totals(previous, london)
    area_now, area_before = has_data(months, force), has_data(previous, force)
    met_now, met_before = has_data(months, MET), has_data(previous, MET)

    def value(series, ok, keys):
        return int(sum(int(series.get(k, 0)) for k in keys)) if ok else None

    labels = category_labels()
    present = set(now.index) | set(before.index)
    # Every category police.uk uses today, plus retired or unknown ones that hold crimes.
    order = [c for c in labels if c in _CURRENT_CATEGORIES or c in present] + sorted(present - set(labels))
    rows = [_type_row(crime, crime_label(crime), [crime], value, now, before, lnow, lbefore,
                      area_now, area_before, met_now, met_before) for crime in order]
    rows.sort(key=lambda r: -(r["count"] or 0))
    every = sorted(present | set(lnow.index) | set(lbefore.index))
    rows.append(_type_row(ALL_CRIME, crime_label(ALL_CRIME), every, value, now, before, lnow, lbefore,
                          area_now, area_before, met_now, met_before))
    rows.append(_type_row(MOPAC7, crime_label(MOPAC7), MOPAC7_POINT_CATEGORIES, value, now, before, lnow,
                          lbefore, area_now, area_before, met_now, met_before))
    frame = pd.DataFrame(rows, dtype=object)  # keeps None as None, not NaN
    frame.attrs = {"months": months, "previous": previous, "force": force}
    return frame


# Categories police.uk uses today; older ones appear only when they hold crimes.
_CURRENT_CATEGORIES = {"anti-social-behaviour", "bicycle-theft", "burglary", "criminal-damage-arson", "drugs",
                       "other-theft", "possession-of-weapons", "public-order", "robbery", "shoplifting",
                       "theft-from-the-person", "vehicle-crime", "violent-crime", "other-crime"}


def _type_row(crime, label, keys, value, now, before, lnow, lbefore, area_now, area_before, met_now, met_before):
    count, prev = value(now, area_now, keys), value(before, area_before, keys)
    lcount, lprev = value(lnow, met_now, keys), value(lbefore, met_before, keys)
    return {"crime": crime, "label": label, "count": count, "previous_count": prev,
            "pct_change": _pct_change(count, prev), "london_count": lcount, "london_previous_count": lprev,
            "london_pct_change": _pct_change(lcount, lprev)}
