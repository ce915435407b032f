"""Crime counts and rates per area, against the London average.

A pure core package: a store in, data frames and plain values out. The web
pages, the JSON API and downloads all take their numbers from here, so a map,
its data table and its download always agree.

- :mod:`crimemap.figures.months`: months and periods;
- :mod:`crimemap.figures.sources`: which data answers a query (police.uk
  points or the Met's count tables);
- :mod:`crimemap.figures.areas`: every area of a level (:func:`area_figures`);
- :mod:`crimemap.figures.summary`: one area in detail (:func:`area_summary`,
  :func:`area_by_type`).

Crime types live in :mod:`crimemap.crimetypes`, bands and classifications in
:mod:`crimemap.classify`, intervals in :mod:`crimemap.uncertainty`.
"""

from functools import lru_cache

from crimemap.classify import BANDS, band_for
from crimemap.crimetypes import ALL_CRIME, MOPAC7, registry
from crimemap.figures.areas import LEVELS, SMALL_COUNT, area_figures, find_area, get_layer, population_for
from crimemap.figures.months import DEFAULT_PERIOD, PERIODS, month_range, pick_period, previous_months, resolve_period
from crimemap.figures.sources import CITY, MET, catalog
from crimemap.figures.summary import area_by_type, area_summary, neighbours

__all__ = ["ALL_CRIME", "BANDS", "CITY", "DEFAULT_PERIOD", "LEVELS", "MET", "MOPAC7", "MOPAC7_POINT_CATEGORIES",
           "PERIODS", "SMALL_COUNT",
           "area_by_type", "area_figures", "area_summary", "band_for", "catalog", "categories_for",
           "category_labels", "crime_label", "find_area", "get_layer", "latest_months", "month_range",
           "neighbours", "pick_period", "population_for", "previous_months", "resolve_period"]

# For point data MOPAC 7 is approximated by the police.uk categories that
# contain its offences (docs/crime-types.md); the Met's tables count it exactly.
MOPAC7_POINT_CATEGORIES = registry().get(MOPAC7).police_uk


@lru_cache(maxsize=1)
def category_labels():
    """police.uk category slugs and their labels, in the order police.uk lists them.

    Returns
    -------
    dict of str to str
        Slug (``"violent-crime"``) to label (``"Violence and sexual offences"``).
    """
    return {t.id: t.label for t in registry() if t.kind == "police.uk"}


def crime_label(crime):
    """A person's name for a crime type id (unknown ids are returned as they are)."""
    return registry().get(crime).label if crime in registry() else crime


def categories_for(crime):
    """The police.uk categories a crime type id counts in point data.

    Returns
    -------
    list of str or None
        None for ``all-crime`` (every category, including ones added later);
        empty for a Met type, which point data cannot count.

    Raises
    ------
    BadQuery
        If ``crime`` is not a known crime type id.
    """
    crime_type = registry().get(crime)
    return None if crime_type.police_uk is None else list(crime_type.police_uk)


def latest_months(store, n=12):
    """The ``n`` calendar months ending at the latest month loaded.

    A month inside the run that was never loaded is still listed: a rolling
    12 months is 12 calendar months, and :func:`area_figures` reports how many
    of them hold data.

    Returns
    -------
    list of str
        ``YYYY-MM``, oldest first; empty when no crime data is loaded.
    """
    if int(n) < 1:
        raise ValueError(f"n must be at least 1, got {n!r}")
    latest = catalog(store).latest
    return resolve_period(None, None, latest, int(n), int(n)) if latest else []
