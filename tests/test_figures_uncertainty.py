"""Exact Poisson intervals on rates and on changes, against published values and scipy's binomial test."""

import numpy as np
import pytest
from scipy import stats

from crimemap import uncertainty

# Exact (Garwood) 95% limits for a Poisson count, as tabulated (e.g. Ulm 1990).
TABLE = {0: (0.0, 3.689), 1: (0.0253, 5.572), 2: (0.2422, 7.225), 5: (1.624, 11.668), 10: (4.795, 18.390)}


@pytest.mark.parametrize("count, limits", TABLE.items())
def test_poisson_interval_matches_the_table(count, limits):
    lower, upper = uncertainty.poisson_interval(count)
    assert (lower, upper) == pytest.approx(limits, abs=1e-3)


def test_arrays_and_missing_counts():
    lower, upper = uncertainty.poisson_interval(np.array([0, 10, np.nan]))
    assert lower[:2] == pytest.approx([0.0, 4.795], abs=1e-3) and np.isnan(lower[2]) and np.isnan(upper[2])
    lo, hi = uncertainty.rate_intervals([10, 5, np.nan], [2000, 0, 100])
    assert lo[0] == pytest.approx(1000 * 4.795 / 2000, abs=1e-3)
    assert np.isnan(lo[1]) and np.isnan(lo[2])
    assert uncertainty.rate_interval(10, 2000) == pytest.approx((2.3975, 9.195), abs=1e-3)
    assert uncertainty.rate_interval(None, 2000) is None and uncertainty.rate_interval(3, 0) is None
    with pytest.raises(ValueError):
        uncertainty.poisson_interval(-1)


@pytest.mark.parametrize("now, before", [(4, 2), (30, 45), (0, 7), (1000, 900), (3, 3)])
def test_change_interval_is_the_exact_conditional_interval(now, before):
    # Independent route: scipy's exact binomial test on now out of now + before.
    ci = stats.binomtest(now, now + before).proportion_ci(confidence_level=0.95, method="exact")
    expected_low = 100 * (ci.low / (1 - ci.low) - 1)
    expected_high = 100 * (ci.high / (1 - ci.high) - 1)
    lower, upper = uncertainty.change_interval(now, before)
    assert lower == pytest.approx(expected_low, rel=1e-6, abs=1e-9)
    assert upper == pytest.approx(expected_high, rel=1e-6)
    assert lower <= uncertainty.pct_change(now, before) <= upper


def test_two_to_four_is_not_a_bare_plus_one_hundred_percent():
    interval = uncertainty.change_interval(4, 2)
    assert uncertainty.pct_change(4, 2) == 100.0
    assert interval[0] < 0 < interval[1]  # a fall is consistent with these numbers
    assert not uncertainty.change_is_clear(interval)
    caveat = uncertainty.change_caveat(4, 2, interval, 20)
    assert caveat.startswith("Small numbers: 2 to 4 could be chance") and "95% interval" in caveat
    big = uncertainty.change_interval(1000, 800)
    assert uncertainty.change_is_clear(big) and uncertainty.change_caveat(1000, 800, big, 20) is None


def test_edges_of_the_change_interval():
    assert uncertainty.change_interval(5, 0)[1] is None  # up from zero: no upper limit
    assert uncertainty.change_interval(0, 0) is None
    assert uncertainty.change_interval(None, 3) is None
    assert uncertainty.pct_change(3, 0) is None and uncertainty.pct_change(None, 1) is None
    assert uncertainty.is_small(19, 20) and not uncertainty.is_small(20, 20) and uncertainty.is_small(None, 20) is None
