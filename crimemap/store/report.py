"""Plain-text rendering of the status document for ``crimemap status``."""


def _months(months):
    if not months:
        return "none"
    return f"{months[0]} to {months[-1]} ({len(months)} months)"


def format_status(doc, instance):
    """Render :func:`crimemap.store.status.build_status` output for a terminal."""
    lines = [f"crimemap instance {instance}"]
    if doc["demo"]:
        lines.append("  SYNTHETIC DEMO DATA: not real crime figures")
    lines.append(f"  data version {doc['data_version']}, data as of {doc['data_as_of'] or '-'}, "
                 f"updated {doc['updated_at'] or 'never'}")
    lines.append("Boundary layers:")
    if not doc["layers"]:
        lines.append("  none loaded (crimemap boundaries load LEVEL PATH)")
    for layer in doc["layers"]:
        flag = " (default)" if layer["default"] else ""
        repaired = f", {layer['repairs']} repaired" if layer["repairs"] else ""
        lines.append(f"  {layer['level']:<8} {layer['vintage']:<6} {layer['areas']:>5} areas{repaired}{flag}  "
                     f"[{layer['layout']}]")
    if doc["snt_is_ward"]:
        lines.append("  no SNT layer: SNT = ward")
    lines.append("Crime sources:")
    if not doc["sources"]:
        lines.append("  none loaded (crimemap crimes ingest PATH...)")
    for src in doc["sources"]:
        if src["kind"] == "points":
            lines.append(f"  {src['feed']:<28} {_months(src['months'])}: {src['rows_read']:,} rows, "
                         f"{src['no_location']:,} without a location, {src['rejected']:,} rejected")
        else:
            lines.append(f"  {src['feed']:<28} {_months(src['months'])}: {src['crimes']:,} crimes (counts)")
    c = doc["crimes"]
    if c["rows_read"]:
        joined = "not joined (no layers)" if c["joined"] is None else f"{c['joined']:,}"
        outside = "-" if c["outside"] is None else f"{c['outside']:,}"
        lines.append(f"Points: {c['rows_read']:,} rows read, {joined} joined, {c['no_location']:,} no location, "
                     f"{outside} outside every area, {c['on_edge']:,} on an area edge, {c['rejected']:,} rejected")
    pop = doc["population"]["lsoa"]
    if pop:
        lines.append("Population: " + "; ".join(f"{p['year']}: {p['persons']:,} in {p['lsoas']:,} LSOAs" for p in pop))
    stops = doc.get("stops")
    if stops and not (stops["months"] or stops["taser_deployments"] or stops["taser_force_year_rows"]):
        lines.append("Stop and search: none loaded (crimemap stops ingest PATH...)")
    elif stops:
        lines.append(f"Stop and search: {_months(stops['months'])}: {stops['searches']:,} searches, "
                     f"{stops['no_location']:,} without a location; Taser: {stops['taser_deployments']:,} "
                     f"deployments, {stops['taser_force_year_rows']:,} force-year rows "
                     "(crimemap stops status)")
    if "postcodes" in doc:
        from crimemap.postcodes.status import format_status as format_postcodes

        lines.extend(format_postcodes(doc["postcodes"]))
    return "\n".join(lines)
