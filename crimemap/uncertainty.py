"""Uncertainty of counts, rates and changes: exact Poisson intervals.

Recorded crime in a small area over a short period is a small count, and a
small count moves a lot by chance: 2 burglaries one year and 4 the next is
"+100 %" but says little. Every rate and year-on-year change crimemap shows
carries a 95 % interval computed here (docs/uncertainty.md):

- a count's interval is the exact (Garwood) Poisson interval;
- a rate's interval is the count's interval over the residents;
- a change between two periods of the same length uses the exact conditional
  method: given ``n = now + before``, ``now`` is binomial with
  ``p = rate_now / (rate_now + rate_before)``; the Clopper-Pearson interval
  for ``p`` becomes an interval for the ratio ``p / (1 - p)`` and so for the
  % change.

Pure functions on numbers and numpy arrays; no Flask, no store.
"""

import numpy as np
from scipy.special import betaincinv, gammaincinv  # scipy.special imports in a tenth of the time of scipy.stats

CONFIDENCE = 0.95


def _alpha(confidence):
    confidence = float(confidence)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    return 1.0 - confidence


def poisson_interval(count, confidence=CONFIDENCE):
    """Exact (Garwood) confidence interval for the mean of a Poisson count.

    Parameters
    ----------
    count : int or array-like of float
        Observed counts (non-negative); NaN for unknown.
    confidence : float
        0.95 for a 95 % interval.

    Returns
    -------
    tuple of (float or numpy.ndarray)
        ``(lower, upper)``; NaN where the count is unknown. The lower bound of
        a zero count is 0.

    Raises
    ------
    ValueError
        For a negative count or a confidence outside (0, 1).
    """
    alpha = _alpha(confidence)
    k = np.asarray(count, dtype="float64")
    if np.any(k[np.isfinite(k)] < 0):
        raise ValueError("counts must not be negative")
    with np.errstate(invalid="ignore"):
        # chi2.ppf(q, 2k) / 2 is the inverse regularised gamma function at (k, q).
        lower = np.where(k > 0, gammaincinv(np.maximum(k, 1e-300), alpha / 2), 0.0)
        upper = gammaincinv(k + 1, 1 - alpha / 2)
    lower = np.where(np.isfinite(k), lower, np.nan)
    upper = np.where(np.isfinite(k), upper, np.nan)
    if np.ndim(count) == 0:
        return float(lower), float(upper)
    return lower, upper


def rate_interval(count, population, per=1000, confidence=CONFIDENCE):
    """Interval of a rate per ``per`` residents from the Poisson interval of its count.

    Residents are treated as known exactly (population estimates carry their
    own, much smaller, error).

    Returns
    -------
    tuple or None
        ``(lower, upper)`` per ``per`` residents, or None when the count or a
        positive population is missing.
    """
    if count is None or population is None or not population or population <= 0:
        return None
    lower, upper = poisson_interval(count, confidence)
    return per * lower / population, per * upper / population


def rate_intervals(counts, populations, per=1000, confidence=CONFIDENCE):
    """:func:`rate_interval` for arrays (NaN where a count or population is missing or zero)."""
    counts = np.asarray(counts, dtype="float64")
    populations = np.asarray(populations, dtype="float64")
    lower, upper = poisson_interval(counts, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = np.isfinite(populations) & (populations > 0)
        lower = np.where(ok, per * lower / np.where(ok, populations, 1), np.nan)
        upper = np.where(ok, per * upper / np.where(ok, populations, 1), np.nan)
    return lower, upper


def pct_change(now, before):
    """The % change from ``before`` to ``now``; None when either is missing or ``before`` is 0."""
    if now is None or before is None or before == 0:
        return None
    return 100.0 * (now - before) / before


def change_interval(now, before, confidence=CONFIDENCE):
    """Interval of the % change between two counts over periods of the same length.

    Parameters
    ----------
    now, before : int or None
        Counts of this period and the one before.
    confidence : float

    Returns
    -------
    tuple or None
        ``(lower, upper)`` in percent; ``upper`` is None when it is unbounded
        (``before`` is 0). None when a count is missing or both are 0.

    Examples
    --------
    2 -> 4 is +100 %, but its 95 % interval runs from about -71 % to +2,100 %:
    the data are consistent with a fall.
    """
    if now is None or before is None:
        return None
    now, before = int(now), int(before)
    if now < 0 or before < 0:
        raise ValueError("counts must not be negative")
    n = now + before
    if n == 0:
        return None
    alpha = _alpha(confidence)
    p_low = 0.0 if now == 0 else float(betaincinv(now, n - now + 1, alpha / 2))
    p_high = 1.0 if now == n else float(betaincinv(now + 1, n - now, 1 - alpha / 2))
    lower = 100.0 * (p_low / (1.0 - p_low) - 1.0)
    upper = None if p_high >= 1.0 else 100.0 * (p_high / (1.0 - p_high) - 1.0)
    return lower, upper


def is_small(count, threshold):
    """True when a count is below the threshold under which rates are unreliable (None: unknown)."""
    if count is None:
        return None
    return int(count) < int(threshold)


def change_is_clear(interval):
    """True when a change interval excludes 0 % (the change is unlikely to be chance alone)."""
    if interval is None:
        return False
    lower, upper = interval
    return lower > 0 or (upper is not None and upper < 0)


def change_caveat(now, before, interval, threshold):
    """A sentence for a change that small numbers make uncertain, or None.

    Returns
    -------
    str or None
        Set when either count is below ``threshold`` or the interval includes 0.
    """
    if interval is None or now is None or before is None:
        return None
    small = is_small(now, threshold) or is_small(before, threshold)
    if not small and change_is_clear(interval):
        return None
    lower, upper = interval
    upper_text = "no upper limit" if upper is None else f"{upper:+,.0f}%"
    reason = "Small numbers" if small else "Within chance"
    return (f"{reason}: {before:,} to {now:,} could be chance (95% interval {lower:+,.0f}% to {upper_text}).")
