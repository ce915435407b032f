"""Bands against the London average, and the mapclassify schemes, against independent computations."""

import warnings

import mapclassify
import numpy as np
import pytest

from crimemap import classify
from crimemap.errors import BadQuery

# The documented rule (docs/bands.md), written out independently of the code.
RULE = [(0.5, "much-lower"), (0.8, "lower"), (1.25, "around"), (2.0, "higher"), (np.inf, "much-higher")]


def expected_band(ratio):
    return next(band for upper, band in RULE if ratio < upper)


@pytest.fixture
def rates():
    rng = np.random.default_rng(7)
    return list(rng.gamma(2.0, 50.0, 300))


def test_london_ratio_bands_follow_the_rule(rates):
    london = 100.0
    result = classify.classify(rates, [True] * len(rates), london)
    assert result.scheme == "london-ratio" and result.closed == "left"
    assert result.breaks == pytest.approx([50.0, 80.0, 125.0, 200.0])
    assert result.ratio_breaks == [0.5, 0.8, 1.25, 2.0]
    assert result.assign(rates, london) == [expected_band(r / london) for r in rates]
    # Edges belong to the band above; symmetric on a log scale.
    assert result.assign([50.0, 80.0, 125.0, 200.0, 0.0], london) == ["lower", "around", "higher", "much-higher",
                                                                      "much-lower"]
    assert [round(np.log(b), 6) for b in (0.5, 2.0)] == [-round(np.log(2.0), 6), round(np.log(2.0), 6)]
    assert result.assign([None, float("nan")], london) == [None, None]


def test_no_london_rate_no_bands(rates):
    result = classify.classify(rates, [True] * len(rates), None)
    assert result.bands == [] and set(result.assign(rates)) == {None}


def _quiet(cls, *args, **kwargs):
    with warnings.catch_warnings():
        # mapclassify's FisherJenks warns that numba is missing and falls back to pure Python.
        warnings.simplefilter("ignore", UserWarning)
        return cls(*args, **kwargs)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_quantiles_and_natural_breaks_equal_mapclassify(rates, k):
    y = np.array(rates)
    quantiles = classify.classify(rates, [True] * len(rates), 100.0, "quantiles", k)
    assert quantiles.breaks == pytest.approx(list(mapclassify.Quantiles(y, k=k).bins[:-1]))
    jenks = classify.classify(rates, [True] * len(rates), 100.0, "natural-breaks", k)
    assert jenks.breaks == pytest.approx(list(_quiet(mapclassify.FisherJenks, y, k=k).bins[:-1]))
    # Class of each area as mapclassify assigns it (yb, 0-based).
    fitted = mapclassify.Quantiles(y, k=k)
    assert quantiles.assign(rates) == [f"class-{i + 1}" for i in fitted.yb]


def test_std_mean_is_the_met_dashboards_rule(rates):
    y = np.array(rates)
    result = classify.classify(rates, [True] * len(rates), 100.0, "std-mean")
    mean, sd = y.mean(), y.std(ddof=1)
    assert result.breaks == pytest.approx([mean - 2 * sd, mean - sd, mean + sd, mean + 2 * sd])
    assert [b["id"] for b in result.bands] == ["much-lower", "lower", "around", "higher", "much-higher"]
    assert result.assign([mean], 100.0) == ["around"]


def test_fit_uses_reference_areas_only(rates):
    # The City (not a reference area) must not move the breaks, but still gets a class.
    with_city = rates + [5000.0]
    reference = [True] * len(rates) + [False]
    result = classify.classify(with_city, reference, 100.0, "quantiles", 5)
    assert result.breaks == pytest.approx(list(mapclassify.Quantiles(np.array(rates), k=5).bins[:-1]))
    assert result.assign([5000.0]) == ["class-5"]


def test_too_few_distinct_rates():
    one = classify.classify([3.0, 3.0, None], [True, True, True], 3.0, "natural-breaks", 5)
    assert one.k == 1 and one.assign([3.0]) == ["class-1"]
    three = classify.classify([1.0, 2.0, 3.0], [True] * 3, 2.0, "quantiles", 5)
    assert three.k == 3 and three.assign([1.0, 3.0]) == ["class-1", "class-3"]
    none = classify.classify([None], [True], None, "std-mean")
    assert none.bands == []


@pytest.mark.parametrize("scheme, k, message", [
    ("jenks", None, "unknown classify 'jenks'; expected one of london-ratio, quantiles, natural-breaks, std-mean"),
    ("quantiles", "1", "bad k"), ("quantiles", "ten", "bad k 'ten'"), ("quantiles", "10", "from 2 to 9"),
    ("std-mean", "4", "always has 5 bands"),
])
def test_bad_scheme_or_k_is_a_bad_query(scheme, k, message):
    with pytest.raises(BadQuery, match=message):
        classify.check_scheme(scheme, k, 5, 9)


def test_defaults():
    assert classify.check_scheme(None, None, 6, 9) == ("london-ratio", 5)
    assert classify.check_scheme("quantiles", None, 6, 9) == ("quantiles", 6)
    assert classify.check_scheme("natural-breaks", "3", 6, 9) == ("natural-breaks", 3)
