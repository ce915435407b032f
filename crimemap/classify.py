"""Shading classes: five bands against the London average, or a mapclassify scheme.

The default, ``london-ratio``, compares each area's rate with the London rate:
much lower (under half), lower (under 0.8x), around average, higher (1.25x or
more) and much higher (twice or more). The cut-offs are symmetric on a log
scale (x0.5 and x2, x0.8 and x1.25). docs/bands.md says why this rule and not
the Met dashboard's standard-deviation bands, which are offered as
``std-mean``, with ``quantiles`` and ``natural-breaks`` (Fisher-Jenks).

Data-driven schemes are fitted to the rates of the Metropolitan Police areas
that have one (the City of London, a separate force, and areas with no data
are left out of the fit) and then applied to every area with a rate.

Pure functions on numbers; no Flask, no store.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np

from crimemap.errors import BadQuery

DEFAULT_SCHEME = "london-ratio"
SCHEMES = ("london-ratio", "quantiles", "natural-breaks", "std-mean")

# Bands of the ratio of an area's rate to the London rate: (id, label, lower
# bound inclusive, upper bound exclusive).
BANDS = (
    ("much-lower", "Much lower", 0.0, 0.5),
    ("lower", "Lower", 0.5, 0.8),
    ("around", "Around average", 0.8, 1.25),
    ("higher", "Higher", 1.25, 2.0),
    ("much-higher", "Much higher", 2.0, float("inf")),
)
RATIO_BREAKS = tuple(band[2] for band in BANDS[1:])

# The Met dashboard's bands: standard deviations of the area rates from their mean.
STD_MULTIPLES = (-2, -1, 1, 2)
_STD_LABELS = ("Much lower (more than 2 SD below the mean)", "Lower (1 to 2 SD below)",
               "Around the mean (within 1 SD)", "Higher (1 to 2 SD above)", "Much higher (more than 2 SD above)")


def band_for(ratio):
    """The ``london-ratio`` band id of a ratio to the London rate (None when the ratio is unknown)."""
    if ratio is None or not np.isfinite(ratio):
        return None
    for band, _label, low, high in BANDS:
        if low <= ratio < high:
            return band
    return None


@dataclass
class Classification:
    """A fitted classification: how rates map to band ids.

    Attributes
    ----------
    scheme : str
        One of :data:`SCHEMES`.
    k : int
        Number of classes actually used (fewer than asked when the rates have
        fewer distinct values).
    breaks : list of float
        Inner cut points in rate per 1,000 (``k - 1`` of them).
    closed : str
        ``"left"``: a class holds its lower break (``london-ratio``);
        ``"right"``: it holds its upper break (mapclassify's convention).
    bands : list of dict
        ``id, label, lower, upper`` (rates; None for an open end), low to high.
    ratio_breaks : list of float or None
        The ``london-ratio`` cut-offs as ratios to the London rate.
    """

    scheme: str
    k: int
    breaks: list
    closed: str
    bands: list
    ratio_breaks: list = None
    note: str = ""
    _ids: list = field(default_factory=list, repr=False)

    def assign(self, rates, london_rate=None):
        """Band ids for rates (None where the rate is unknown).

        Parameters
        ----------
        rates : sequence of float or None
        london_rate : float, optional
            Needed by ``london-ratio``, which bands the ratio rather than the rate.
        """
        out = []
        for rate in rates:
            if rate is None or not np.isfinite(rate) or not self.bands:
                out.append(None)
            elif self.scheme == "london-ratio":
                out.append(band_for(rate / london_rate) if london_rate else None)
            else:
                side = "left" if self.closed == "right" else "right"
                out.append(self._ids[int(np.searchsorted(self.breaks, rate, side=side))])
        return out

    def to_dict(self, counts=None):
        """JSON-ready: ``scheme, k, breaks, closed, bands`` (+ ``ratio_breaks``, ``note``)."""
        body = {"scheme": self.scheme, "k": self.k, "breaks": [float(b) for b in self.breaks],
                "closed": self.closed, "bands": [dict(b) for b in self.bands]}
        if counts is not None:
            for band in body["bands"]:
                band["areas"] = int(counts.get(band["id"], 0))
        if self.ratio_breaks is not None:
            body["ratio_breaks"] = list(self.ratio_breaks)
        if self.note:
            body["note"] = self.note
        return body


def check_scheme(scheme, k, k_default=5, k_max=9):
    """Validate a query's ``classify`` and ``k``; return ``(scheme, k)``.

    Raises
    ------
    BadQuery
        For an unknown scheme or a ``k`` that is not a whole number from 2 to ``k_max``.
    """
    scheme = DEFAULT_SCHEME if scheme in (None, "") else scheme
    if scheme not in SCHEMES:
        raise BadQuery(f"unknown classify {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if k in (None, ""):
        return scheme, 5 if scheme in ("london-ratio", "std-mean") else int(k_default)
    try:
        k = int(str(k))
    except ValueError:
        raise BadQuery(f"bad k {k!r}; expected a whole number of classes from 2 to {k_max}") from None
    if not 2 <= k <= int(k_max):
        raise BadQuery(f"bad k {k!r}; expected a whole number of classes from 2 to {k_max} (CLASSIFY_K_MAX)")
    if scheme in ("london-ratio", "std-mean") and k != 5:
        raise BadQuery(f"classify={scheme} always has 5 bands; k applies to quantiles and natural-breaks")
    return scheme, k


def _fmt(value):
    return f"{value:,.1f}"


def _range_label(lower, upper, closed):
    if lower is None and upper is None:
        return "every rate"
    if lower is None:
        return f"up to {_fmt(upper)}" if closed == "right" else f"under {_fmt(upper)}"
    if upper is None:
        return f"over {_fmt(lower)}" if closed == "right" else f"{_fmt(lower)} or more"
    return f"{_fmt(lower)} to {_fmt(upper)}"


def _from_breaks(scheme, breaks, closed, ids, labels, note=""):
    edges = [None] + [float(b) for b in breaks] + [None]
    bands = []
    for i, band_id in enumerate(ids):
        lower, upper = edges[i], edges[i + 1]
        label = labels[i] if labels else _range_label(lower, upper, closed)
        bands.append({"id": band_id, "label": label, "lower": lower, "upper": upper,
                      "range": _range_label(lower, upper, closed)})
    return Classification(scheme, len(ids), [float(b) for b in breaks], closed, bands, note=note, _ids=list(ids))


def fisher_jenks_breaks(values, k):
    """Upper bounds of the ``k`` classes that minimise the within-class sum of squares.

    The algorithm of ``mapclassify.FisherJenks`` (exact dynamic programming,
    Fisher 1958), vectorised with numpy so that it needs no numba: the
    pure-Python fallback takes about a second for London's wards.

    Parameters
    ----------
    values : array-like of float
        At least ``k`` distinct finite values.
    k : int

    Returns
    -------
    numpy.ndarray
        ``k`` upper bounds, the last being the maximum (mapclassify's ``bins``).
    """
    y = np.sort(np.asarray(values, dtype="float64"))
    n = len(y)
    s1 = np.concatenate([[0.0], np.cumsum(y)])
    s2 = np.concatenate([[0.0], np.cumsum(y * y)])

    def cost(first, last):  # sum of squared deviations of y[first..last], vectorised over first
        m = last - first + 1
        total = s1[last + 1] - s1[first]
        return (s2[last + 1] - s2[first]) - total * total / m

    best = cost(np.zeros(n, dtype=int), np.arange(n))  # one class over y[0..j]
    starts = [np.zeros(n, dtype=int)]
    for classes in range(2, k + 1):
        new = np.full(n, np.inf)
        start = np.zeros(n, dtype=int)
        for last in range(classes - 1, n):
            first = np.arange(classes - 1, last + 1)  # first value of the last class
            total = best[first - 1] + cost(first, np.full(len(first), last))
            pick = int(np.argmin(total))
            new[last], start[last] = total[pick], first[pick]
        best = new
        starts.append(start)
    uppers, last = [], n - 1
    for classes in range(k, 0, -1):
        uppers.append(y[last])
        last = starts[classes - 1][last] - 1
    return np.array(uppers[::-1])


def _quiet(name, *args, **kwargs):
    # Imported on first use: mapclassify (with scipy.stats) takes seconds to
    # import, and the default bands do not need it, so servers start fast.
    import mapclassify

    # mapclassify warns when there are fewer distinct values than classes; the
    # caller has already reduced k, and the warning must not become an error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return getattr(mapclassify, name)(*args, **kwargs)


def classify(rates, reference, london_rate, scheme=DEFAULT_SCHEME, k=5):
    """Fit a classification to area rates.

    Parameters
    ----------
    rates : sequence of float or None
        Rate per 1,000 of every area.
    reference : sequence of bool
        The areas the scheme is fitted to (Metropolitan Police areas with data).
    london_rate : float or None
        The London rate per 1,000 (``london-ratio`` needs it).
    scheme : str
        One of :data:`SCHEMES`.
    k : int
        Classes for ``quantiles`` and ``natural-breaks``.

    Returns
    -------
    Classification
        With no bands when there is nothing to classify.
    """
    if scheme not in SCHEMES:
        raise BadQuery(f"unknown classify {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if scheme == "london-ratio":
        ids = [b[0] for b in BANDS]
        labels = [b[1] for b in BANDS]
        note = ("Ratio of each area's rate to the London rate: under 0.5, 0.5 to 0.8, 0.8 to 1.25, "
                "1.25 to 2, 2 or more.")
        if not london_rate:
            result = Classification(scheme, 5, [], "left", [], note=note, _ids=ids)
        else:
            result = _from_breaks(scheme, [r * london_rate for r in RATIO_BREAKS], "left", ids, labels, note)
        result.ratio_breaks = list(RATIO_BREAKS)
        return result
    values = np.array([r for r, ref in zip(rates, reference) if ref and r is not None and np.isfinite(r)],
                      dtype="float64")
    distinct = np.unique(values)
    if len(distinct) < 2:
        note = "Fewer than two distinct rates: nothing to classify."
        if len(distinct) == 1:
            return _from_breaks(scheme, [], "right", ["class-1"], [], note)
        return Classification(scheme, 0, [], "right", [], note=note)
    if scheme == "std-mean":
        fitted = _quiet("StdMean", values, multiples=list(STD_MULTIPLES))
        cuts = fitted.bins[:len(STD_MULTIPLES)]  # mapclassify appends the maximum when it is above the last
        note = (f"Mean of the area rates {values.mean():,.1f}, standard deviation {values.std(ddof=1):,.1f} "
                "(the Met dashboard's rule).")
        return _from_breaks(scheme, cuts, "right", [b[0] for b in BANDS], list(_STD_LABELS), note)
    k = min(int(k), len(distinct))
    if scheme == "quantiles":
        fitted = _quiet("Quantiles", values, k=k)
        bins = np.unique(fitted.bins)
        note = "Each class holds about the same number of areas."
    else:
        bins = _quiet("UserDefined", values, bins=list(fisher_jenks_breaks(values, k))).bins
        note = "Fisher-Jenks natural breaks: classes that keep similar rates together."
    inner = list(bins[:-1])
    return _from_breaks(scheme, inner, "right", [f"class-{i}" for i in range(1, len(inner) + 2)], [], note)
