"""Months and periods: ``YYYY-MM`` parsing, ranges, and the periods that queries compare.

A period is a list of consecutive ``YYYY-MM`` strings, oldest first. Every
function here raises :class:`~crimemap.errors.BadQuery` for text a user typed
and names the bad value, so the web layer can answer 400.
"""

import re

from crimemap.errors import BadQuery

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# Years a month may name: wide enough for any crime record, narrow enough that
# shifting a period back years never leaves four-digit years.
FIRST_YEAR, LAST_YEAR = 1900, 2999
_FINANCIAL_YEAR = re.compile(r"^(\d{4})/(\d{2}|\d{4})$")
_CALENDAR_YEAR = re.compile(r"^(\d{4})$")
_SPAN = re.compile(r"^(\d{4}-\d{2})/(\d{4}-\d{2})$")


def month_index(month, name="month"):
    """Months since year 0 of a ``YYYY-MM`` string.

    Raises
    ------
    BadQuery
        If ``month`` is not a ``YYYY-MM`` string with a month 01-12 and a year
        from :data:`FIRST_YEAR` to :data:`LAST_YEAR`.
    """
    found = _MONTH.match(month) if isinstance(month, str) else None
    if not found or not FIRST_YEAR <= int(found.group(1)) <= LAST_YEAR:
        raise BadQuery(f"bad {name} {month!r}; expected a month as YYYY-MM between {FIRST_YEAR}-01 and "
                       f"{LAST_YEAR}-12, e.g. 2024-07")
    return int(found.group(1)) * 12 + int(found.group(2)) - 1


def _idx(month):
    # For months computed from checked ones (a period's previous period may
    # start before FIRST_YEAR): the format is checked, the year range is not.
    found = _MONTH.match(month) if isinstance(month, str) else None
    if not found:
        raise BadQuery(f"bad month {month!r}; expected a month as YYYY-MM, e.g. 2024-07")
    return int(found.group(1)) * 12 + int(found.group(2)) - 1


def month_name(index):
    """The ``YYYY-MM`` of a :func:`month_index`."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def shift(month, n):
    """The month ``n`` months after ``month`` (before, for negative ``n``)."""
    return month_name(_idx(month) + int(n))


def month_range(first, last):
    """Every month from ``first`` to ``last``, both inclusive (``YYYY-MM``).

    Raises
    ------
    BadQuery
        If either is not ``YYYY-MM`` or ``first`` is after ``last``.
    """
    a, b = month_index(first, "from"), month_index(last, "to")
    if a > b:
        raise BadQuery(f"the period starts ({first}) after it ends ({last}); 'from' must not be after 'to'")
    return [month_name(i) for i in range(a, b + 1)]


def ending(last, n):
    """The ``n`` months ending with ``last``, oldest first."""
    end = _idx(last)
    return [month_name(i) for i in range(end - int(n) + 1, end + 1)]


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
    start = _idx(months[0])
    return [month_name(i) for i in range(start - len(months), start)]


def year_earlier(months):
    """The same months one year earlier."""
    return [shift(m, -12) for m in months]


def check_months(months):
    """Validate a list of months (each ``YYYY-MM``); return it as a list of str."""
    months = [str(m) for m in months]
    for month in months:
        month_index(month)
    return months


def resolve_period(start, end, latest, default_n, max_n):
    """The months a query asks for.

    Parameters
    ----------
    start, end : str or None
        The query's ``from`` and ``to`` (``YYYY-MM``, both inclusive).
    latest : str or None
        The latest month loaded; None when no crime data is loaded.
    default_n : int
        Months when neither is given (``QUERY_MONTHS_DEFAULT``).
    max_n : int
        The longest period allowed (``QUERY_MONTHS_MAX``).

    Returns
    -------
    list of str
        With neither: the ``default_n`` months ending at ``latest``. With only
        ``to``: the ``default_n`` months ending there. With only ``from``:
        ``from`` to ``latest`` (or just ``from`` when it is later). Empty when
        nothing is given and nothing is loaded.

    Raises
    ------
    BadQuery
        For a malformed month, a reversed range, or more than ``max_n`` months.
    """
    default_n, max_n = int(default_n), int(max_n)
    if start in ("", None) and end in ("", None):
        return ending(latest, default_n) if latest else []
    if start in ("", None):
        month_index(end, "to")
        months = ending(end, default_n)
    elif end in ("", None):
        first = month_index(start, "from")
        last = max(first, month_index(latest)) if latest else first
        span = last - first + 1
        if span > max_n:
            raise BadQuery(f"the period from {start} to the latest month loaded ({latest}) is {span} months; "
                           f"at most {max_n} are allowed (QUERY_MONTHS_MAX): give 'to' as well")
        months = [month_name(i) for i in range(first, last + 1)]
    else:
        first, last = month_index(start, "from"), month_index(end, "to")
        if first > last:
            raise BadQuery(f"the period starts ({start}) after it ends ({end}); 'from' must not be after 'to'")
        span = last - first + 1
        if span > max_n:
            raise BadQuery(f"the period {start} to {end} is {span} months; at most {max_n} are allowed "
                           "(QUERY_MONTHS_MAX)")
        months = [month_name(i) for i in range(first, last + 1)]
    return months


def baseline_months(spec):
    """The months of a target baseline.

    Parameters
    ----------
    spec : str
        ``"2012/13"`` (financial year: April 2012 to March 2013), ``"2012"``
        (calendar year) or ``"2012-04/2013-03"`` (any span of months).

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        For any other form (a configuration error, not a user's query).
    """
    spec = str(spec).strip()
    found = _FINANCIAL_YEAR.match(spec)
    if found:
        first = int(found.group(1))
        second = int(found.group(2))
        if second not in (first + 1, (first + 1) % 100):
            raise ValueError(f"financial year {spec!r}: the second year must follow the first, e.g. 2012/13")
        return [month_name(i) for i in range(first * 12 + 3, first * 12 + 15)]
    found = _CALENDAR_YEAR.match(spec)
    if found:
        first = int(found.group(1))
        return [month_name(i) for i in range(first * 12, first * 12 + 12)]
    found = _SPAN.match(spec)
    if found:
        try:
            return month_range(found.group(1), found.group(2))
        except BadQuery as exc:
            raise ValueError(f"baseline {spec!r}: {exc.message}") from None
    raise ValueError(f"baseline {spec!r}: expected a financial year (2012/13), a calendar year (2012) "
                     "or a span of months (2012-04/2013-03)")


def describe_baseline(spec):
    """How a baseline reads: "financial year 2012/13", "2012", "2012-04 to 2013-03"."""
    spec = str(spec).strip()
    if _FINANCIAL_YEAR.match(spec):
        return f"financial year {spec}"
    if _SPAN.match(spec):
        first, last = spec.split("/")
        return f"{first} to {last}"
    return spec


# The periods the pages offer, in the order a picker lists them: key, label,
# months (None for a custom from/to range).
PERIODS = (
    ("latest-month", "Latest month", 1),
    ("last-3-months", "Last 3 months", 3),
    ("rolling-12-months", "Rolling 12 months", 12),
    ("custom", "Custom", None),
)
DEFAULT_PERIOD = "rolling-12-months"


def pick_period(kind, start, end, latest, max_n, default=DEFAULT_PERIOD):
    """The months of a page's period picker.

    Parameters
    ----------
    kind : str or None
        A key of :data:`PERIODS`. None (or empty) means ``custom`` when
        ``start`` or ``end`` is given, else ``default``.
    start, end : str or None
        ``from`` and ``to`` (``YYYY-MM``); read only for ``custom``, so a form
        that always submits its month fields still means what its choice says.
    latest : str or None
        The latest month loaded.
    max_n : int
        The longest custom period allowed (``QUERY_MONTHS_MAX``).
    default : str
        The period when nothing is asked for.

    Returns
    -------
    (str, list of str)
        The period key and its months (empty when nothing is loaded).

    Raises
    ------
    BadQuery
        For an unknown period, a malformed month, a reversed or too long range.
    """
    sizes = {key: n for key, _label, n in PERIODS}
    if kind in ("", None):
        kind = "custom" if start not in ("", None) or end not in ("", None) else default
    if kind not in sizes:
        raise BadQuery(f"unknown period {kind!r}; expected one of {', '.join(sizes)}")
    if kind == "custom":
        return kind, resolve_period(start, end, latest, sizes[DEFAULT_PERIOD], max_n)
    return kind, ending(latest, sizes[kind]) if latest else []
