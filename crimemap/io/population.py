"""Read population tables: ONS LSOA mid-year estimates, GLA ward tables.

The layouts are declared in ``crimemap/schemas/population_layouts.json``;
:func:`read_population` matches a file's header against them in order.
"""

import json
import re
from importlib import resources
from pathlib import Path

import pandas as pd

from crimemap.errors import BadInput


def layouts():
    """The declared population layouts, in matching order."""
    text = resources.files("crimemap.schemas").joinpath("population_layouts.json").read_text(encoding="utf-8")
    return json.loads(text)["layouts"]


def _read_csv(path):
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return pd.read_csv(path, dtype=str, encoding=encoding, keep_default_na=False), encoding
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise BadInput(f"{path}: the file is empty") from None
        except (pd.errors.ParserError, OSError) as exc:
            raise BadInput(f"{path}: cannot read as CSV ({exc})") from None
    raise BadInput(f"{path}: not UTF-8 or Windows-1252 text")


def read_population(path, year=None):
    """Read residents per area from a population table.

    Parameters
    ----------
    path : str or Path
    year : str, optional
        The year of the estimate, when neither a column nor the file name says.

    Returns
    -------
    tuple of (DataFrame, dict)
        Rows ``code, year, persons`` (plus ``lad_code`` for LSOA tables) and
        a description: layout name, kind (``lsoa`` or ``area``), notes.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    frame, encoding = _read_csv(path)
    if frame.empty:
        raise BadInput(f"{path}: the file has a header but no rows")
    for layout in layouts():
        if layout["code"] not in frame.columns or layout["persons"] not in frame.columns:
            continue
        out = pd.DataFrame({"code": frame[layout["code"]].str.strip()})
        persons = pd.to_numeric(frame[layout["persons"]].str.replace(",", "", regex=False).str.strip(),
                                errors="coerce")
        if "year" in layout:
            out["year"] = year or layout["year"]
        elif "year_column" in layout and layout["year_column"] in frame.columns:
            out["year"] = frame[layout["year_column"]].str.strip()
        else:
            found = re.search(layout.get("year_from_name", r"(\d{4})"), path.name)
            if not (year or found):
                raise BadInput(f"{path}: cannot tell the year of the estimate; pass --year")
            out["year"] = str(year or found.group(1))
        if layout.get("lad_code"):
            out["lad_code"] = frame.get(layout["lad_code"], "").str.strip() if layout["lad_code"] in frame else ""
        good = persons.notna() & (persons >= 0) & out["code"].str.match(r"^[EWSN]\d{8}$")
        notes = [f"read as {encoding}"] if encoding != "utf-8-sig" else []
        skipped = int((~good).sum())
        if skipped:
            notes.append(f"{skipped} rows without a GSS code or a number were skipped "
                         f"(e.g. {', '.join(frame.loc[~good, layout['code']].head(3))})")
        out = out[good].assign(persons=persons[good].round().astype("int64"))
        if out.empty:
            raise BadInput(f"{path}: no rows with an area code and a population")
        return out.reset_index(drop=True), {"layout": layout["name"], "kind": layout["kind"], "notes": notes}
    expected = "; ".join(f"{lay['name']}: {lay['code']} + {lay['persons']}" for lay in layouts())
    raise BadInput(f"{path}: not a population table crimemap knows. Columns found: "
                   f"{', '.join(frame.columns[:12])}. Expected one of: {expected}")
