"""Small charts drawn on the server as inline SVG: no script, no CDN, printable.

A chart here is plain numbers (bar positions, axis ticks, labels) that
``templates/_chart.html`` turns into SVG; Jinja escapes every text on the
way, and the page puts the same figures in a table beside the chart for
screen readers and for anyone who wants the numbers.
"""

import math

WIDTH, HEIGHT = 640, 220
MARGIN = {"left": 48, "right": 26, "top": 12, "bottom": 34}


def nice_ticks(top, n=4):
    """Round axis values from 0 up to at least ``top``: 0, 5, 10, 15, 20 or 0, 200, 400...

    Parameters
    ----------
    top : float
        The largest value to show (0 or less gives a 0-to-1 axis).
    n : int
        About how many steps.

    Returns
    -------
    list of int
        Ascending, starting at 0, the last one >= ``top``.
    """
    if top <= 0:
        return [0, 1]
    raw = top / n
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step)) if step >= 1 else 1
    ticks = [0]
    while ticks[-1] < top:
        ticks.append(ticks[-1] + step)
    return ticks


def trend_chart(monthly, width=WIDTH, height=HEIGHT):
    """Bars of monthly counts, the reported period dark and the one before it light.

    Parameters
    ----------
    monthly : list of dict
        ``month``, ``count`` (None for a month with no data) and
        ``in_period``, oldest first (an area summary's ``monthly``).

    Returns
    -------
    dict or None
        ``width, height, bars`` (``x, y, w, h, month, count, in_period,
        no_data``), ``ticks`` (``y, label``), ``labels`` (``x, text``: every
        third month) and ``baseline`` (the y of zero); None when no month has
        a count.
    """
    counts = [m["count"] for m in monthly if m["count"] is not None]
    if not counts:
        return None
    left, right, top, bottom = MARGIN["left"], MARGIN["right"], MARGIN["top"], MARGIN["bottom"]
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max(counts))
    scale = plot_h / ticks[-1]
    slot = plot_w / len(monthly)
    gap = min(4.0, slot * 0.2)
    base = top + plot_h
    bars, labels = [], []
    for i, month in enumerate(monthly):
        x = left + i * slot + gap / 2
        count = month["count"]
        h = 0.0 if count is None else count * scale
        bars.append({"x": round(x, 1), "y": round(base - h, 1), "w": round(slot - gap, 1), "h": round(h, 1),
                     "month": month["month"], "count": count, "in_period": bool(month["in_period"]),
                     "no_data": count is None})
        if i % 3 == 0 or i == len(monthly) - 1:
            labels.append({"x": round(x + (slot - gap) / 2, 1), "text": month["month"]})
    if len(labels) > 1 and labels[-1]["x"] - labels[-2]["x"] < slot * 2.5:
        labels.pop(-2)  # the last month's label would crowd the one before it
    return {"width": width, "height": height, "bars": bars, "baseline": round(base, 1),
            "left": left, "right": width - right,
            "ticks": [{"y": round(base - t * scale, 1), "label": f"{t:,}"} for t in ticks],
            "labels": labels}
