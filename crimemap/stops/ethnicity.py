"""Ethnic groups: Census 2011 (18 groups + total) to stop and search (4 groups + not stated).

Disproportionality compares the search rate per 1,000 residents of a group
with the White rate. Stop and search records an officer-defined ethnicity
(White, Black, Asian, Other) and a self-defined one (police.uk's 16 codes of
the 2001 Census, or 2011 Census labels in newer files); residents come from
Census 2011 table QS201EW (by local authority) or KS201EW (by output area),
with 18 groups. The mapping is declared in
``crimemap/schemas/stops_ethnicity.json`` and tabled in docs/stops.md.
"""

import functools
import re

import pandas as pd

from crimemap.errors import BadInput
from crimemap.stops.groups import schema

_CODE = re.compile(r"\(([A-Z]{1,2}\d?)\)\s*$")
_COLUMN = re.compile(r"^Ethnic Group:\s*(.*?);\s*measures:\s*Value$", re.IGNORECASE)


def _mapping():
    return schema("stops_ethnicity.json")


def groups():
    """The four groups, in display order: list of ``{id, label}``."""
    return list(_mapping()["groups"])


def compared_groups():
    """The groups compared with the reference group (``black``, ``asian``, ``other``)."""
    return list(_mapping()["compared"])


def reference_group():
    """The group every ratio divides by: ``white``."""
    return _mapping()["reference"]


def census_categories():
    """The 18 Census 2011 categories: code -> ``{group, label}``."""
    return dict(_mapping()["census_2011"])


def officer_group(value):
    """The group of an officer-defined ethnicity, or None when not stated."""
    if value is None or not str(value).strip():
        return None
    return _mapping()["officer_defined"].get(str(value).strip())


@functools.lru_cache(maxsize=256)
def self_group(value):
    """The group of a self-defined ethnicity, or None when not stated or unknown.

    Tries, in order: the code in brackets police.uk appends ("... (B2)"), an
    exact label, then the part before " - " ("Black/African/Caribbean/Black
    British - African").
    """
    if value is None or not str(value).strip():
        return None
    text = " ".join(str(value).split())
    mapping = _mapping()
    found = _CODE.search(text)
    if found and found.group(1) in mapping["self_defined_codes"]:
        return mapping["self_defined_codes"][found.group(1)]
    exact = {k.casefold(): v for k, v in mapping["self_defined_exact"].items()}
    if text.casefold() in exact:
        return exact[text.casefold()]
    if "not stated" in text.casefold():
        return None
    prefix = text.split(" - ", 1)[0].casefold()
    return {k.casefold(): v for k, v in mapping["self_defined_prefixes"].items()}.get(prefix)


def _category_of_column(name):
    """The Census category code (``W1``..``O2``), ``total``, or None for a column header."""
    found = _COLUMN.match(str(name).strip())
    if not found:
        return None
    parts = [p.strip() for p in found.group(1).split(":")]
    label = ": ".join(parts).casefold()
    if any(label == t.casefold() for t in _mapping()["census_total_labels"]):
        return "total"
    if len(parts) < 2:
        return None  # a group subtotal ("White", "Asian/Asian British")
    leaf = parts[-1].casefold()
    for code, info in census_categories().items():
        if info["label"].casefold() == leaf:
            return code
    return None


def read_census(path):
    """Read Census 2011 residents by ethnic group (Nomis QS201EW or KS201EW export).

    Parameters
    ----------
    path : str or Path
        A CSV with ``geography code`` and one ``Ethnic Group: ...; measures:
        Value`` column per category (gzip is fine).

    Returns
    -------
    pandas.DataFrame
        One row per area: ``code``, ``name``, ``total`` and the 18 category
        codes ``W1`` .. ``O2`` (integers). ``attrs["notes"]`` lists areas whose
        categories do not add up to their total.

    Raises
    ------
    BadInput
        When the file is not such a table (missing columns, non-numeric counts).
    """
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise BadInput(f"{path}: cannot read as a Census CSV ({exc})") from None
    columns = {c.strip().casefold(): c for c in raw.columns}
    code_col = columns.get("geography code")
    if code_col is None:
        raise BadInput(f"{path}: no 'geography code' column; expected a Nomis Census 2011 QS201EW/KS201EW export")
    found = {}
    for column in raw.columns:
        category = _category_of_column(column)
        if category and category not in found:
            found[category] = column
    missing = [c for c in ["total", *census_categories()] if c not in found]
    if missing:
        raise BadInput(f"{path}: missing Census ethnic group columns for {', '.join(missing)}; expected "
                       "'Ethnic Group: <group>: <category>; measures: Value' headers (QS201EW or KS201EW)")
    out = pd.DataFrame({"code": raw[code_col].str.strip(),
                        "name": raw[columns.get("geography", code_col)].str.strip()})
    for category, column in found.items():
        values = pd.to_numeric(raw[column].str.replace(",", ""), errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax()) + 2
            raise BadInput(f"{path}: line {row}: column {column!r} is not a whole number: {raw[column].iloc[row - 2]!r}")
        out[category] = values.astype("int64")
    out = out[["code", "name", "total", *census_categories()]]
    sums = out[list(census_categories())].sum(axis=1)
    bad = out.loc[sums != out["total"], "code"].tolist()
    out.attrs["notes"] = [f"{code}: the 18 categories do not add up to the total" for code in bad]
    return out


def population_by_group(census_row):
    """Residents per stop and search group from one Census row (or a dict of category counts).

    Returns
    -------
    dict
        ``white``, ``black``, ``asian``, ``other`` and ``total``.
    """
    out = {g["id"]: 0 for g in groups()}
    for code, info in census_categories().items():
        out[info["group"]] += int(census_row[code])
    out["total"] = int(census_row["total"])
    return out
