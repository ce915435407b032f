"""Stop and search and Taser figures as JSON, GeoJSON and CSV, with attribution and data version.

Follows :mod:`crimemap.downloads` (docs/downloads.md): GeoJSON in EPSG:4326
with the context as top-level members; CSV with ``#`` comment lines of
context and attribution before the header. A pure core module.
"""

from crimemap import downloads as dl
from crimemap.attribution import ATTRIBUTION

SUMMARY_TABLES = ("monthly", "by_type", "by_object", "by_outcome", "disproportionality")
TABLE_COLUMNS = {
    "monthly": ["month", "has_data", "searches", "arrests", "person", "vehicle", "person-and-vehicle"],
    "by_type": ["type", "label", "searches", "share"],
    "by_object": ["group", "label", "value", "searches", "share"],
    "by_outcome": ["group", "label", "value", "searches", "share"],
    "disproportionality": ["group", "label", "ethnicity_basis", "searches", "population", "rate_per_1000",
                           "ratio_to_white", "ratio_ci_lower", "ratio_ci_upper", "display", "small_count", "caveat"],
}
TASER_COLUMNS = ["force", "year_end", "period", "total", "non_discharge", "discharge", "not_stated", "drawn", "aimed",
                 "red-dot", "arced", "drive-stun", "angled-drive-stun", "fired", "consistent"]
TASER_RECORD_COLUMNS = ["borough_code", "borough", "quarter", "deployments", "subjects", "incidents", "officers",
                        "drawn", "aimed", "red-dot", "arced", "drive-stun", "angled-drive-stun", "fired"]
STOPS_SOURCE = "police.uk stop and search (data.police.uk, Open Government Licence v3.0)"
CENSUS_SOURCE = "Census 2011 QS201EW ethnic group (ONS via Nomis, Open Government Licence v3.0)"


def _period(period):
    if not period or not period.get("from"):
        return "no period"
    return f"{period['from']} to {period['to']} ({period['months']} months)"


def choropleth_document(figures, data_as_of=None):
    """The top-level members of the stop and search choropleth."""
    attrs = figures.attrs
    months = attrs["months"]
    notes = ["Searches are placed in a borough by their published (anonymised) map point; searches with no "
             "location are counted in no_location, never dropped.",
             "The City of London Police is a separate force and publishes its own searches: its area is shown "
             "for reference, with only the Metropolitan Police searches located there, and is not part of the "
             "London rate."]
    if len(attrs["months_with_data"]) < len(months):
        notes.append(f"Stop and search data covers {len(attrs['months_with_data'])} of the {len(months)} months "
                     "of this period.")
    return {
        "level": "borough", "measure": "searches",
        "period": {"from": months[0] if months else None, "to": months[-1] if months else None,
                   "months": len(months), "months_with_data": attrs["months_with_data"]},
        "london": attrs["london"] | {"force": "metropolitan", "no_location": attrs["no_location"],
                                    "outside": attrs["outside"]},
        "classification": attrs["classification"], "source": attrs["source"], "feeds": attrs["feeds"],
        "layer": {k: attrs["layer"][k] for k in ("level", "vintage")},
        "population_source": attrs["population_source"], "small_count_threshold": attrs["small_count_threshold"],
        "notes": notes, "data_version": attrs["data_version"], "data_as_of": data_as_of,
        "attribution": list(ATTRIBUTION),
    }


def choropleth_geojson(figures, data_as_of=None, geometry=True):
    """The stop and search choropleth as GeoJSON bytes (same properties as the crime choropleth)."""
    return dl.feature_collection(figures, dl.choropleth_properties(figures, figures.attrs),
                                 choropleth_document(figures, data_as_of), geometry=geometry)


def choropleth_csv(figures, data_as_of=None):
    """The stop and search choropleth's figures as CSV text, one row per borough."""
    doc = choropleth_document(figures, data_as_of)
    props = dl.choropleth_properties(figures, figures.attrs)
    for row, values in zip(props, figures[["rate_ci_lower", "rate_ci_upper"]].itertuples(index=False, name=None)):
        row["rate_ci_lower"], row["rate_ci_upper"] = values
    london = doc["london"]
    meta = [f"crimemap: stop and search by borough, {_period(doc['period'])}; count = searches",
            f"Source: {STOPS_SOURCE}; residents: {doc['population_source'] or 'none loaded'}",
            (f"London (Metropolitan Police areas): {london['count']:,} searches, {london['population']:,} "
             f"residents, {london['rate_per_1000']:,.2f} per 1,000" if london.get("rate_per_1000") is not None
             else "London: no data"),
            f"Searches with no location: {london['no_location']:,}; outside every borough: {london['outside']:,}",
            *doc["notes"],
            f"Data version: {doc['data_version']}" + (f" (data as of {data_as_of})" if data_as_of else "")]
    return dl.csv_text(props, dl.CHOROPLETH_COLUMNS, meta)


def summary_document(summary, data_as_of=None):
    """A borough summary as the JSON document of ``/api/v1/stops/areas/borough/<code>``."""
    return summary | {"sources": [STOPS_SOURCE, CENSUS_SOURCE], "data_as_of": data_as_of,
                      "attribution": list(ATTRIBUTION)}


def summary_rows(summary, table):
    """The rows of one table of a borough summary (see :data:`SUMMARY_TABLES`)."""
    if table in ("by_object", "by_outcome"):
        rows = []
        for group in summary[table]:
            rows.append({k: group[k] for k in ("group", "label", "searches", "share")} | {"value": "(all)"})
            for value in group["values"]:
                rows.append({"group": group["group"], "label": group["label"], "value": value["value"],
                             "searches": value["searches"]})
        return rows
    if table == "disproportionality":
        return [row | {"ratio_ci_lower": (row["ratio_ci"] or [None, None])[0],
                       "ratio_ci_upper": (row["ratio_ci"] or [None, None])[1]} for row in summary[table]]
    return list(summary[table])


def summary_csv(summary, table, data_as_of=None):
    """One table of a borough summary as CSV text."""
    area = summary["area"]
    arrest = summary["arrest_rate"]
    meta = [f"crimemap: stop and search in {area['name']} (borough {area['code']}), {table.replace('_', ' ')}, "
            f"{_period(summary['period'])}",
            f"Source: {STOPS_SOURCE}" + (f"; residents: {CENSUS_SOURCE}" if table == "disproportionality" else ""),
            f"Searches: {summary['searches'] if summary['searches'] is not None else 'no data'}; arrests: "
            f"{summary['arrests'] if summary['arrests'] is not None else 'no data'}; arrest rate: "
            f"{'-' if arrest is None else f'{100 * arrest:.1f}%'}",
            *summary["notes"],
            f"Data version: {summary['data_version']}" + (f" (data as of {data_as_of})" if data_as_of else "")]
    return dl.csv_text(summary_rows(summary, table), TABLE_COLUMNS[table], meta)


def summary_geojson(summary, figures, data_as_of=None):
    """A borough summary as GeoJSON: the borough as one feature, the summary top-level."""
    row = figures[figures["code"] == summary["area"]["code"]]
    props = [dl.clean(summary["area"] | {"searches": summary["searches"], "arrests": summary["arrests"],
                                         "arrest_rate": summary["arrest_rate"]})]
    return dl.feature_collection(row, props, summary_document(summary, data_as_of))


def taser_document(rows, data_version, records=None):
    """The JSON document of the Taser routes."""
    return {"rows": rows, "levels_note": "Levels from least to most severe: drawn, aimed, red dot, arced (no "
            "discharge); drive stun, angled drive stun, fired (discharge). Each use is one deployment: one "
            "officer's use on one subject, counted at its highest level.",
            "source": "Home Office, Police use of force statistics, England and Wales (Open Government Licence v3.0)",
            "data_version": data_version, "attribution": list(ATTRIBUTION)} | ({"records": records} if records else {})


def taser_csv(rows, data_version, columns=TASER_COLUMNS, title="Taser use by force and year"):
    """Taser rows as CSV text."""
    flat = [row | row.get("by_level", {}) for row in rows]
    meta = [f"crimemap: {title}",
            "Source: Home Office, Police use of force statistics, England and Wales (Open Government Licence v3.0)",
            "Each use is one deployment (one officer, one subject), counted at its highest level",
            f"Data version: {data_version}"]
    return dl.csv_text(flat, columns, meta)
