"""Periods: parsing `from`/`to`, defaults, limits, and the periods summaries compare (with Hypothesis)."""

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from crimemap.errors import BadQuery
from crimemap.figures import months as m

# Hypothesis's "explain" phase imports libcst, whose import warns, and warnings are errors here: a real
# failure would then surface as an internal error instead of its falsifying example.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
MONTHS = st.builds(lambda y, mo: f"{y:04d}-{mo:02d}", st.integers(1900, 2999), st.integers(1, 12))
TEXT = st.one_of(st.none(), st.text(max_size=12), MONTHS,
                 st.from_regex(r"\A\d{4}-\d{1,2}\Z"), st.from_regex(r"\A\d{1,5}-\d{2}\Z"))


@settings(max_examples=300, deadline=None, phases=PHASES, database=None)
@given(start=TEXT, end=TEXT, latest=st.one_of(st.none(), MONTHS), default_n=st.integers(1, 24),
       max_n=st.integers(1, 240))
def test_resolve_period_only_ever_raises_bad_query(start, end, latest, default_n, max_n):
    try:
        months = m.resolve_period(start, end, latest, default_n, max_n)
    except BadQuery as exc:
        assert exc.status == 400 and exc.message
        return
    # Whatever comes back is a run of consecutive, valid months.
    indices = [int(x[:4]) * 12 + int(x[5:]) - 1 for x in months]
    assert indices == list(range(indices[0], indices[0] + len(indices))) if months else True
    if start not in (None, "") and end not in (None, ""):
        assert months[0] == start and months[-1] == end and len(months) <= max_n


@settings(max_examples=200, deadline=None, phases=PHASES, database=None)
@given(first=st.builds(lambda y, mo: f"{y:04d}-{mo:02d}", st.integers(1900, 2990), st.integers(1, 12)),
       span=st.integers(1, 60))
def test_previous_and_year_earlier_periods(first, span):
    period = m.month_range(first, m.shift(first, span - 1))
    before = m.previous_months(period)
    assert len(before) == len(period) and m.shift(before[-1], 1) == period[0]
    assert [m.shift(x, 12) for x in m.year_earlier(period)] == period


@pytest.mark.parametrize("start, end, message", [
    ("2024-13", "2024-12", "bad from '2024-13'"), ("2024-1", None, "bad from '2024-1'"),
    ("2024-01", "24-02", "bad to '24-02'"), ("2025-01", "2024-01", "starts (2025-01) after it ends (2024-01)"),
    ("2000-01", "2025-01", "301 months; at most 120"), ("0000-01", "2000-01", "between 1900-01 and 2999-12"),
    ("1990-01", None, "at most 120"),
])
def test_bad_periods_name_the_value(start, end, message):
    with pytest.raises(BadQuery, match=message.replace("(", r"\(").replace(")", r"\)")):
        m.resolve_period(start, end, "2025-06", 12, 120)


def test_defaults():
    assert m.resolve_period(None, None, "2025-06", 12, 120) == m.month_range("2024-07", "2025-06")
    assert m.resolve_period(None, "2024-03", "2025-06", 3, 120) == ["2024-01", "2024-02", "2024-03"]
    assert m.resolve_period("2025-04", None, "2025-06", 12, 120) == ["2025-04", "2025-05", "2025-06"]
    assert m.resolve_period("2026-01", "", "2025-06", 12, 120) == ["2026-01"]
    assert m.resolve_period(None, None, None, 12, 120) == []


def test_baselines():
    assert m.baseline_months("2012/13") == m.month_range("2012-04", "2013-03")
    assert m.baseline_months("1999/2000") == m.month_range("1999-04", "2000-03")
    assert m.baseline_months("2012") == m.month_range("2012-01", "2012-12")
    assert m.baseline_months("2012-04/2012-06") == ["2012-04", "2012-05", "2012-06"]
    assert m.describe_baseline("2012/13") == "financial year 2012/13"
    for bad in ("2012/15", "FY12", "2012-13/2012-01"):
        with pytest.raises(ValueError):
            m.baseline_months(bad)


@pytest.mark.parametrize("kind, start, end, expected", [
    ("latest-month", None, None, ["2024-06"]),
    ("last-3-months", "2020-01", "2020-02", ["2024-04", "2024-05", "2024-06"]),  # from/to only count for custom
    ("rolling-12-months", None, None, [f"2023-{m:02d}" for m in range(7, 13)] + [f"2024-{m:02d}" for m in range(1, 7)]),
    (None, None, None, [f"2023-{m:02d}" for m in range(7, 13)] + [f"2024-{m:02d}" for m in range(1, 7)]),
    ("custom", "2023-11", "2024-02", ["2023-11", "2023-12", "2024-01", "2024-02"]),
    (None, "2024-05", None, ["2024-05", "2024-06"]),  # from alone: to the latest month, and means custom
])
def test_pick_period(kind, start, end, expected):
    from crimemap.figures.months import pick_period

    key, months = pick_period(kind, start, end, "2024-06", 120)
    assert months == expected
    assert key == (kind or ("custom" if start or end else "rolling-12-months"))


def test_pick_period_errors_and_nothing_loaded():
    from crimemap.figures.months import pick_period

    with pytest.raises(BadQuery, match="unknown period 'week'; expected one of latest-month"):
        pick_period("week", None, None, "2024-06", 120)
    with pytest.raises(BadQuery, match="at most 12"):
        pick_period("custom", "2020-01", "2024-06", "2024-06", 12)
    assert pick_period("last-3-months", None, None, None, 120) == ("last-3-months", [])


@pytest.mark.parametrize("top", [0, 1, 3, 7, 10, 19, 73, 101, 999, 12345])
def test_chart_axis_ticks_are_round_and_cover_the_top(top):
    from crimemap.web.charts import nice_ticks

    ticks = nice_ticks(top)
    steps = {b - a for a, b in zip(ticks, ticks[1:])}
    assert ticks[0] == 0 and ticks[-1] >= top and len(steps) == 1
    step = steps.pop()
    assert step >= 1 and str(step).rstrip("0") in ("1", "2", "25", "5")
    assert len(ticks) <= 7
