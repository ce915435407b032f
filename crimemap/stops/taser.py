"""Taser (conducted energy device) use: the Home Office force-by-year table and record-level data.

Two layouts are read (``crimemap/schemas/taser_layouts.json``, docs/taser.md):

- **force by year**: one row per force and year end, with the total uses,
  the non-discharge levels (drawn, aimed, red dot, arced), the discharge
  levels (drive stun, angled drive stun, fired) and "not stated". Each use is
  one officer's use on one subject: a *deployment*.
- **records**: one row per officer's use of Taser on one subject in one
  incident, with the date, the borough and the highest level of use. From it
  deployments and subjects are counted apart, by the published rule: two
  officers using Taser on one subject are two deployments and one subject.
"""

from pathlib import Path

import pandas as pd

from crimemap.errors import BadInput
from crimemap.io.crimes import Rejects
from crimemap.stops.groups import schema

MEASURES_TOTALS = ("total", "non_discharge", "discharge", "not_stated")


def _layout():
    return schema("taser_layouts.json")


def levels():
    """The use levels, least to most severe: list of ``{id, label, discharge}``."""
    return list(_layout()["levels"])


def level_ids():
    """The use level ids, least to most severe."""
    return [level["id"] for level in levels()]


def measures():
    """Every measure of the force-by-year table: the totals, then each level."""
    return [*MEASURES_TOTALS, *level_ids()]


def _read(path):
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise BadInput(f"{Path(path).name}: cannot read as CSV ({exc})") from None


def _columns(raw, spellings):
    lookup = {c.strip().casefold(): c for c in raw.columns}
    return {field: next((lookup[s.casefold()] for s in names if s.casefold() in lookup), None)
            for field, names in spellings.items()}


def detect_layout(path):
    """``force-year`` or ``records`` from a file's header.

    Raises
    ------
    BadInput
        When the header matches neither layout.
    """
    raw = _read(path)
    for name, key, needed in (("force-year", "force_year", ("force", "total", "year_end")),
                              ("records", "records", ("incident", "subject", "officer", "date", "level"))):
        found = _columns(raw, _layout()[key])
        if all(found[f] for f in needed):
            return name
    raise BadInput(f"{Path(path).name}: not a Taser table: expected the Home Office force-by-year columns "
                   "(Police force, Total, ..., ytd) or one row per deployment (incident_id, subject_id, officer_id, "
                   "date, highest_use)")


def period_label(year_end):
    """``2015`` for a calendar year ending 31 December, ``2019/20`` for a financial year ending 31 March."""
    if year_end.endswith("-12-31"):
        return year_end[:4]
    if year_end.endswith("-03-31"):
        end = int(year_end[:4])
        return f"{end - 1}/{str(end)[2:]}"
    return f"year to {year_end}"


def read_force_year(path, rejects=None):
    """Read the Home Office force-by-year Taser table.

    Returns
    -------
    pandas.DataFrame
        ``force, year_end, period`` and every measure of :func:`measures`
        (integers), plus ``consistent``: whether the total is the sum of
        non-discharge, discharge and not stated, and each of those the sum of
        its levels. Rows with a non-numeric or negative count are rejected.
    """
    rejects = rejects if rejects is not None else Rejects()
    raw = _read(path)
    cols = _columns(raw, _layout()["force_year"])
    missing = [f for f, c in cols.items() if c is None]
    if missing:
        raise BadInput(f"{Path(path).name}: missing Taser column(s) {', '.join(missing)}")
    rows = []
    for i, record in enumerate(raw.to_dict("records"), start=2):
        row = {"line": i, "force": record[cols["force"]].strip(), "year_end": record[cols["year_end"]].strip()}
        if not row["force"]:
            rejects.add(i, "no force")
            continue
        try:
            pd.Timestamp(row["year_end"])
        except ValueError:
            rejects.add(i, "bad year end", repr(row["year_end"]))
            continue
        bad = None
        for measure in measures():
            text = record[cols[measure]].strip().replace(",", "")
            try:
                value = float(text) if text else 0.0
            except ValueError:
                bad = (measure, text)
                break
            if value < 0 or value != int(value):
                bad = (measure, text)
                break
            row[measure] = int(value)
        if bad:
            rejects.add(i, "bad count", f"{bad[0]} = {bad[1]!r}")
            continue
        row["year_end"] = str(pd.Timestamp(row["year_end"]).date())
        row["period"] = period_label(row["year_end"])
        nd = sum(row[lv["id"]] for lv in levels() if not lv["discharge"])
        dis = sum(row[lv["id"]] for lv in levels() if lv["discharge"])
        row["consistent"] = (row["non_discharge"] == nd and row["discharge"] == dis and
                             row["total"] == row["non_discharge"] + row["discharge"] + row["not_stated"])
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["line", "force", "year_end", "period", *measures(), "consistent"])
    # A force listed twice for one year with different figures cannot be
    # settled from the file (the 2015 table lists West Midlands twice): both
    # rows are rejected and named, rather than one picked silently.
    repeated = frame.duplicated(["force", "year_end"], keep=False)
    for (force, year_end), part in frame[repeated].groupby(["force", "year_end"]):
        lines = ", ".join(str(n) for n in part["line"])
        for line in part["line"]:
            rejects.add(line, "repeated force and year", f"{force} {year_end} is on lines {lines}; neither is used")
        rejects.note(f"{Path(path).name}: {force} {year_end} appears on lines {lines} with different figures; "
                     "neither is used")
    return frame[~repeated].drop(columns="line").reset_index(drop=True)


def quarter_of(date):
    """The calendar quarter of a date: ``2019-Q3``."""
    return f"{date.year}-Q{(date.month - 1) // 3 + 1}"


def read_records(path, rejects=None):
    """Read Taser records, one row per officer's use on one subject.

    A repeated (incident, subject, officer) is one deployment, counted at its
    highest level of use.

    Returns
    -------
    pandas.DataFrame
        ``incident, subject, officer, date, quarter, borough_code, borough, level``.
    """
    rejects = rejects if rejects is not None else Rejects()
    raw = _read(path)
    cols = _columns(raw, _layout()["records"])
    missing = [f for f in ("incident", "subject", "officer", "date", "level") if cols[f] is None]
    if missing:
        raise BadInput(f"{Path(path).name}: missing Taser record column(s) {', '.join(missing)}")
    spellings = _layout()["level_spellings"]
    order = {lv: i for i, lv in enumerate(level_ids())}
    rows = []
    for i, record in enumerate(raw.to_dict("records"), start=2):
        get = (lambda f: record[cols[f]].strip() if cols[f] else "")
        ids = {f: get(f) for f in ("incident", "subject", "officer")}
        empty = [f for f, v in ids.items() if not v]
        if empty:
            rejects.add(i, f"no {empty[0]}")
            continue
        level = spellings.get(" ".join(get("level").split()).casefold())
        if level is None:
            rejects.add(i, "unknown use level", f"{get('level')!r}; expected one of {', '.join(level_ids())}")
            continue
        try:
            date = pd.Timestamp(get("date"))
        except ValueError:
            rejects.add(i, "bad date", repr(get("date")))
            continue
        if pd.isna(date):
            rejects.add(i, "bad date", repr(get("date")))
            continue
        rows.append({**ids, "date": str(date.date()), "quarter": quarter_of(date),
                     "borough_code": get("borough_code") or None, "borough": get("borough") or None,
                     "level": level, "_rank": order[level]})
    frame = pd.DataFrame(rows, columns=["incident", "subject", "officer", "date", "quarter", "borough_code",
                                        "borough", "level", "_rank"])
    frame = frame.sort_values("_rank").drop_duplicates(["incident", "subject", "officer"], keep="last")
    return frame.drop(columns="_rank").sort_values(["date", "incident", "subject", "officer"]).reset_index(drop=True)


def count_deployments(frame, by=()):
    """Deployments and subjects, by the published rule.

    A deployment is one officer's use of Taser on one subject; a subject is
    one person in one incident, however many officers used Taser on them. So
    two officers using Taser on one subject are two deployments and one
    subject.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :func:`read_records` (or the store).
    by : tuple of str
        Columns to count within (e.g. ``("borough", "quarter")``).

    Returns
    -------
    list of dict
        One per group: the ``by`` values, ``deployments``, ``subjects``,
        ``incidents``, ``officers`` and ``by_level`` (deployments at each
        highest level of use, least to most severe).
    """
    groups = frame.groupby(list(by), dropna=False, sort=True) if by else [((), frame)]
    out = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        levels_n = part["level"].value_counts()
        out.append({**{b: (None if pd.isna(v) else v) for b, v in zip(by, key)},
                    "deployments": int(len(part)),
                    "subjects": int(part[["incident", "subject"]].drop_duplicates().shape[0]),
                    "incidents": int(part["incident"].nunique()),
                    "officers": int(part["officer"].nunique()),
                    "by_level": {lv: int(levels_n.get(lv, 0)) for lv in level_ids()}})
    return out


def force_year_table(long):
    """The stored force-by-year table (long: ``force, year_end, measure, n``) as one row per force and year.

    Returns
    -------
    list of dict
        ``force, year_end, period``, every measure, ``by_level`` and
        ``consistent``, newest year first, forces in name order.
    """
    if long.empty:
        return []
    wide = long.pivot_table(index=["force", "year_end"], columns="measure", values="n", aggfunc="sum")
    out = []
    for (force, year_end), values in wide.iterrows():
        row = {"force": force, "year_end": year_end, "period": period_label(year_end)}
        row.update({m: int(values[m]) for m in measures() if m in values and pd.notna(values[m])})
        row["by_level"] = {lv: row.get(lv, 0) for lv in level_ids()}
        nd = sum(row.get(lv["id"], 0) for lv in levels() if not lv["discharge"])
        dis = sum(row.get(lv["id"], 0) for lv in levels() if lv["discharge"])
        row["consistent"] = (row.get("non_discharge") == nd and row.get("discharge") == dis and
                             row.get("total") == row.get("non_discharge", 0) + row.get("discharge", 0) +
                             row.get("not_stated", 0))
        out.append(row)
    out.sort(key=lambda r: (r["force"], r["year_end"]))
    out.sort(key=lambda r: r["year_end"], reverse=True)
    return out
