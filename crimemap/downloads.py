"""Downloads: figures as GeoJSON and CSV, each carrying the attribution and the data version.

Every map and table crimemap serves can be downloaded (docs/downloads.md):

- **GeoJSON** (RFC 7946: EPSG:4326, longitude first, no ``crs`` member,
  exterior rings counter-clockwise). The attribution lines, the data version
  and the rest of the context (period, London figure, classification, source)
  are top-level members beside ``features``.
- **CSV** (UTF-8, comma-separated, one header row). The context comes first,
  as comment lines starting with ``#`` (``pandas.read_csv(..., comment="#")``
  and R's ``read.csv(comment.char = "#")`` skip them), so a file never loses
  its attribution and data version however it is passed on.

- **XLSX** (Excel, via openpyxl): the table on its own sheet, the same
  context lines and attribution on an "About" sheet.

Text cells that a spreadsheet would run as a formula (starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return) get a leading ``'``.

A pure core module: data frames and dicts in, bytes and text out.
"""

import csv
import io
import math
import re

import numpy as np
import orjson
import shapely

from crimemap.attribution import ATTRIBUTION
from crimemap.crs import to_wgs84

# About 0.1 m: finer than any boundary file we read is accurate to.
DECIMALS = 6
FORMATS = ("json", "geojson", "csv", "xlsx")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")

CHOROPLETH_COLUMNS = ["code", "name", "level", "borough_code", "borough_name", "force", "separate_force", "source",
                      "count", "months_with_data", "population", "rate_per_1000", "rate_ci_lower", "rate_ci_upper",
                      "small_count", "ratio_to_london", "band", "band_label", "no_data"]
BY_TYPE_COLUMNS = ["crime", "label", "kind", "group", "count", "previous_count", "pct_change", "pct_change_ci_lower",
                   "pct_change_ci_upper", "change_is_clear", "small_count", "london_count", "london_previous_count",
                   "london_pct_change", "months_with_data", "previous_months_with_data", "rate_per_1000", "caveat"]
MONTHLY_COLUMNS = ["month", "count", "london_count", "in_period"]
NEIGHBOUR_COLUMNS = ["code", "name", "force", "separate_force", "count", "rate_per_1000", "ratio_to_london", "band",
                     "no_data", "shared_border_m"]


def clean(value):
    """A JSON-ready plain value: numpy scalars unboxed, NaN and infinities as None."""
    if value is None:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def dumps(document):
    """JSON bytes of a document (orjson; NaN becomes null)."""
    return orjson.dumps(clean(document))


def _web_geometries(gdf):
    web = to_wgs84(gdf)
    geoms = shapely.orient_polygons(web.geometry.to_numpy(), exterior_cw=False)
    return shapely.transform(geoms, lambda coords: np.round(coords, DECIMALS))


def feature_collection(frame, properties, document, geometry=True):
    """GeoJSON FeatureCollection bytes of a frame of areas, with top-level members.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        Areas with a CRS (reprojected here through :func:`crimemap.crs.to_wgs84`).
    properties : list of dict
        One properties mapping per row, in the frame's order.
    document : dict
        Top-level members (``attribution``, ``data_version``...), written before ``features``.
    geometry : bool
        False writes ``"geometry": null`` (a valid GeoJSON feature), for
        clients that only want the figures.

    Returns
    -------
    bytes
    """
    if geometry and len(frame):
        shapes = shapely.to_geojson(_web_geometries(frame))
    else:
        shapes = ["null"] * len(frame)
    head = dumps({"type": "FeatureCollection", **document})[:-1]  # drop the closing brace
    parts = [head, b',"features":[']
    for i, (props, shape) in enumerate(zip(properties, shapes)):
        if i:
            parts.append(b",")
        ident = props.get("code")
        parts += [b'{"type":"Feature","id":', dumps(ident), b',"geometry":', shape.encode("ascii"),
                  b',"properties":', dumps(props), b"}"]
    parts.append(b"]}")
    return b"".join(parts)


def _cell(value):
    value = clean(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _comment(text):
    return "# " + " ".join(str(text).split())


def csv_text(rows, columns, meta):
    """CSV text: ``#`` comment lines of context, a header row, then the rows.

    Parameters
    ----------
    rows : iterable of dict
    columns : list of str
    meta : list of str
        Context lines (title, period, source, data version); the attribution
        lines are added after them.

    Returns
    -------
    str
    """
    out = io.StringIO()
    for line in meta:
        out.write(_comment(line) + "\n")
    for line in ATTRIBUTION:
        out.write(_comment(f"Attribution: {line}") + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def filename(*parts, ext):
    """A safe download file name: ``crimemap-<parts>.<ext>``, letters, digits, ``.``, ``-`` and ``_`` only."""
    stem = "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", str(p)) for p in ("crimemap", *parts) if p not in (None, ""))
    return f"{stem[:150]}.{ext}"


# --- the choropleth --------------------------------------------------------------------


def choropleth_document(figures, attrs, data_as_of=None):
    """The top-level members of a choropleth (everything but the features).

    Parameters
    ----------
    figures : pandas.DataFrame
        From :func:`crimemap.figures.area_figures`.
    attrs : dict
        Its ``attrs``.
    data_as_of : str, optional
        The latest month loaded.
    """
    months = attrs["months"]
    notes = list(attrs["layer"].get("warnings", []))
    if attrs.get("approximate"):
        notes.append("MOPAC 7 from police.uk categories is an approximation that counts more than MOPAC 7 proper "
                     "(see /api/v1/crime-types).")
    if attrs["source"] is None:
        notes.append("No loaded data answers this crime type for the Metropolitan Police areas in this period.")
    return {
        "level": figures["level"].iloc[0] if len(figures) else None,
        "crime": {"id": attrs["category"], "label": attrs["crime_label"], "kind": attrs["crime_kind"]},
        "period": {"from": months[0] if months else None, "to": months[-1] if months else None,
                   "months": len(months)},
        "london": attrs["london"] | {"force": "metropolitan", "unallocated": attrs["unallocated"]},
        "classification": attrs["classification"],
        "source": attrs["source"],
        "sources": attrs["sources"],
        "layer": {k: attrs["layer"][k] for k in ("level", "vintage")},
        "population_year": attrs["population_year"],
        "small_count_threshold": attrs["small_count_threshold"],
        "notes": notes,
        "data_version": attrs["data_version"],
        "data_as_of": data_as_of,
        "attribution": list(ATTRIBUTION),
    }


def choropleth_properties(figures, attrs):
    """One properties mapping per area (API.md's fields, plus force, source and uncertainty)."""
    labels = {b["id"]: b["label"] for b in attrs["classification"]["bands"]}
    out = []
    columns = [c for c in figures.columns if c != "geometry"]
    for values in figures[columns].itertuples(index=False, name=None):
        row = dict(zip(columns, values))
        lower, upper = row.pop("rate_ci_lower"), row.pop("rate_ci_upper")
        row["rate_ci"] = None if lower is None else [lower, upper]
        row["band_label"] = labels.get(row["band"])
        out.append(clean(row))
    return out


def choropleth_geojson(figures, attrs, data_as_of=None, geometry=True):
    """A choropleth as GeoJSON bytes."""
    return feature_collection(figures, choropleth_properties(figures, attrs),
                              choropleth_document(figures, attrs, data_as_of), geometry=geometry)


def _period_text(period):
    if not period or not period.get("from"):
        return "no period"
    return f"{period['from']} to {period['to']} ({period['months']} months)"


def _london_text(london):
    if london.get("count") is None:
        return "London: no data"
    rate = london.get("rate_per_1000")
    return (f"London (Metropolitan Police areas): {london['count']:,} crimes, {london['population']:,} residents, "
            f"{rate:,.2f} per 1,000")


def _choropleth_rows(figures, attrs):
    props = choropleth_properties(figures, attrs)
    for row, values in zip(props, figures[["rate_ci_lower", "rate_ci_upper"]].itertuples(index=False, name=None)):
        row["rate_ci_lower"], row["rate_ci_upper"] = values
    return props


def _choropleth_meta(doc, data_as_of):
    classification = doc["classification"]
    return [f"crimemap: {doc['crime']['label']} by {doc['level']}, {_period_text(doc['period'])}",
            f"Source: {doc['source'] or 'none'}; boundaries: {doc['layer']['level']} {doc['layer']['vintage']}; "
            + (f"residents: {doc['population_year']} estimates" if doc["population_year"] else
               "residents: none loaded"),
            _london_text(doc["london"]),
            f"Bands: {classification['scheme']}, breaks (rate per 1,000) "
            f"{', '.join(f'{b:.4g}' for b in classification['breaks']) or 'none'}",
            f"rate_ci is the exact Poisson 95% interval; small_count marks counts under "
            f"{doc['small_count_threshold']}",
            *doc["notes"],
            f"Data version: {doc['data_version']}" + (f" (data as of {data_as_of})" if data_as_of else "")]


def choropleth_csv(figures, attrs, data_as_of=None):
    """A choropleth's figures as CSV text, one row per area."""
    doc = choropleth_document(figures, attrs, data_as_of)
    return csv_text(_choropleth_rows(figures, attrs), CHOROPLETH_COLUMNS, _choropleth_meta(doc, data_as_of))


def choropleth_xlsx(figures, attrs, data_as_of=None):
    """A choropleth's figures as an Excel workbook: the areas, then an "About" sheet (:func:`xlsx_bytes`)."""
    doc = choropleth_document(figures, attrs, data_as_of)
    return xlsx_bytes([("Areas", CHOROPLETH_COLUMNS, _choropleth_rows(figures, attrs))],
                      _choropleth_meta(doc, data_as_of))


# --- one area -------------------------------------------------------------------------------


def summary_document(summary, data_as_of=None):
    """The JSON document of an area summary: the summary plus data-as-of and attribution."""
    notes = list(summary["notes"]) + list(summary["layer"].get("warnings", []))
    return summary | {"notes": notes, "data_as_of": data_as_of, "attribution": list(ATTRIBUTION)}


def summary_geojson(summary, figures, data_as_of=None):
    """An area summary as GeoJSON: the area and its neighbours as features, the rest top-level.

    Parameters
    ----------
    summary : dict
        From :func:`crimemap.figures.area_summary`.
    figures : geopandas.GeoDataFrame
        The level's :func:`crimemap.figures.area_figures` (for the geometry).
    """
    code = summary["area"]["code"]
    neighbours = {n["code"]: n for n in summary["neighbours"]}
    wanted = figures[figures["code"].isin({code, *neighbours})]
    wanted = wanted.assign(_order=(wanted["code"] != code).astype(int)).sort_values(["_order", "code"])
    props = []
    for row in wanted.drop(columns=["geometry", "_order"]).to_dict("records"):
        if row["code"] == code:
            body = {k: summary[k] for k in ("count", "rate_per_1000", "rate_ci", "ratio_to_london", "band",
                                              "no_data", "small_count")}
            props.append(clean(summary["area"] | body | {"role": "area"}))
        else:
            props.append(clean(neighbours[row["code"]] | {"role": "neighbour"}))
    document = summary_document(summary, data_as_of)
    return feature_collection(wanted, props, document)


def _summary_table(summary, table, data_as_of):
    """(rows, columns, meta lines) of one table of an area summary."""
    area = summary["area"]
    if table == "by_type":
        rows = []
        for row in summary["by_type"]:
            interval = row.get("pct_change_ci") or [None, None]
            rows.append(row | {"pct_change_ci_lower": interval[0], "pct_change_ci_upper": interval[1]})
        columns = BY_TYPE_COLUMNS
        what = (f"crimes by type, {_period_text(summary['period'])} against "
                f"{_period_text(summary['previous_period'])}; London = Metropolitan Police areas")
        source = summary["by_type_source"]["id"] if summary["by_type_source"] else "none"
    elif table == "monthly":
        rows, columns = summary["monthly"], MONTHLY_COLUMNS
        what = f"{summary['crime']['label']} by month"
        source = summary["source"] or "none"
    else:
        rows, columns = summary["neighbours"], NEIGHBOUR_COLUMNS
        what = f"neighbouring areas, {summary['crime']['label']}, {_period_text(summary['period'])}"
        source = summary["source"] or "none"
    meta = [f"crimemap: {area['name']} ({area['level']} {area['code']}), {what}",
            f"Source: {source}; boundaries: {summary['layer']['level']} {summary['layer']['vintage']}",
            *[n for n in summary["notes"]], *summary["layer"].get("warnings", []),
            f"Data version: {summary['data_version']}" + (f" (data as of {data_as_of})" if data_as_of else "")]
    return rows, columns, meta


def summary_csv(summary, table="by_type", data_as_of=None):
    """One table of an area summary as CSV text.

    Parameters
    ----------
    table : str
        ``by_type`` (the Safer Neighbourhood Board table), ``monthly`` or ``neighbours``.
    """
    return csv_text(*_summary_table(summary, table, data_as_of))


SUMMARY_SHEETS = (("by_type", "By type"), ("monthly", "Monthly"), ("neighbours", "Neighbours"))


def summary_xlsx(summary, data_as_of=None):
    """An area summary as an Excel workbook: one sheet per table, then "About" (:func:`xlsx_bytes`)."""
    sheets, about, meta = [], [], []
    for table, title in SUMMARY_SHEETS:
        rows, columns, meta = _summary_table(summary, table, data_as_of)
        sheets.append((title, columns, rows))
        about.append(f"{title} sheet: {meta[0].removeprefix('crimemap: ')}")
    area = summary["area"]
    return xlsx_bytes(sheets, [f"crimemap: {area['name']} ({area['level']} {area['code']})", *about, *meta[1:]])


# --- Excel --------------------------------------------------------------------------------

# Characters a worksheet cannot hold (openpyxl refuses them): C0 controls but tab, newline, return.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xlsx_value(value):
    value = clean(value)
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    if isinstance(value, str):
        return _ILLEGAL.sub("", value)
    return value


def _put(sheet, row, column, value):
    cell = sheet.cell(row=row, column=column, value=_xlsx_value(value))
    if isinstance(cell.value, str) and cell.value.startswith("="):
        cell.data_type = "s"  # text, never a formula a spreadsheet would run
    return cell


def xlsx_bytes(sheets, meta):
    """An Excel workbook (.xlsx) of tables, with their context and the attribution on an "About" sheet.

    Each table's sheet has a header row, then the rows; a last column would
    be easy to lose, so the data version is also in the workbook's
    properties. Text starting with ``=`` is stored as text, never as a formula.

    Parameters
    ----------
    sheets : list of (str, list of str, iterable of dict)
        Sheet title, columns and rows.
    meta : list of str
        Context lines (title, period, source, data version), as in a CSV's
        comment lines; the attribution lines follow them.

    Returns
    -------
    bytes
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for title, columns, rows in sheets:
        sheet = book.create_sheet(title[:31])
        for j, column in enumerate(columns, start=1):
            _put(sheet, 1, j, column).font = Font(bold=True)
        for i, row in enumerate(rows, start=2):
            for j, column in enumerate(columns, start=1):
                _put(sheet, i, j, row.get(column))
        sheet.freeze_panes = "A2"
    about = book.create_sheet("About")
    lines = [*meta, *(f"Attribution: {line}" for line in ATTRIBUTION)]
    for i, line in enumerate(lines, start=1):
        _put(about, i, 1, " ".join(str(line).split()))
    about.column_dimensions["A"].width = 120
    version = next((line for line in meta if str(line).startswith("Data version:")), None)
    book.properties.title = str(meta[0]) if meta else "crimemap"
    book.properties.creator = "crimemap"
    book.properties.description = " ".join([*(version and [version] or []), *ATTRIBUTION])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
