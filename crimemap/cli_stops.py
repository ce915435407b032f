"""``crimemap stops ...`` and ``crimemap taser ...``: thin click wrappers over :mod:`crimemap.stops`."""

import json

import click

from crimemap.cli import _store, command_errors


@click.group("stops")
def stops_group():
    """Stop and search: police.uk files and API JSON, Census residents by ethnic group."""


@stops_group.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["police-uk-stops-csv", "police-uk-stops-json"]),
              help="Override format detection.")
@click.option("--police-force", "force", help="police.uk force id of CSV files whose name does not say it "
                                       "(e.g. metropolitan).")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.pass_obj
@command_errors
def stops_ingest(settings, paths, fmt, force, as_json):
    """Load stop and search files. Re-loading a month of a feed replaces it."""
    from crimemap.stops.ingest import ingest_stops

    report = ingest_stops(_store(settings), paths, fmt=fmt, force=force, settings=settings,
                          echo=None if as_json else click.echo)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    s = report["summary"]
    placed = ("no borough boundaries loaded, so not placed" if s["outside"] is None else
              f"in a borough {s['in_a_borough']:,}; outside every borough {s['outside']:,}")
    click.echo(f"Searches read {s['rows_read']:,}; stored {s['stored']:,}; without a location {s['no_location']:,} "
               f"(kept and counted); {placed}; rejected {s['rejected']:,}.")
    for reason, n in sorted(s["rejected_by_reason"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  rejected {n:,}: {reason}")
    for entry in report["files"]:
        for row, reason in entry["examples"]:
            click.echo(f"  {entry['path']}:{row}: {reason}")
        for note in entry["notes"]:
            click.echo(f"  {note}")
    months = sorted({b["month"] for b in report["batches"]})
    if months:
        click.echo(f"Months loaded (London time): {months[0]} to {months[-1]} ({len(months)}).")


@stops_group.command("population")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
@command_errors
def stops_population(settings, path):
    """Load Census 2011 residents by ethnic group (Nomis QS201EW by local authority)."""
    from crimemap.stops.ingest import load_census

    result = load_census(_store(settings), path)
    click.echo(f"Loaded Census 2011 ethnic groups for {result['areas']:,} areas; {result['boroughs']} London "
               f"boroughs with {result['persons']:,} residents.")
    for note in result["notes"][:20]:
        click.echo(f"  warning: {note}")


@stops_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the same as GET /api/v1/stops/status).")
@click.pass_obj
@command_errors
def stops_status(settings, as_json):
    """Show the stop and search months, feeds and Taser tables loaded."""
    from crimemap.stops.figures import status

    doc = status(_store(settings))
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    if not doc["batches"]:
        click.echo("No stop and search data loaded (crimemap stops ingest PATH...).")
    for b in doc["batches"]:
        click.echo(f"  {b['feed']:<32} {b['month']}: {b['rows_read']:,} rows, {b['no_location']:,} without a "
                   f"location, {b['rejected']:,} rejected")
    click.echo(f"Census 2011 ethnic groups: {doc['census_areas']:,} areas loaded.")
    click.echo(f"Taser: {doc['taser']['force_year_rows']:,} force-year rows, {doc['taser']['deployments']:,} "
               "deployment records.")


@click.group("taser")
def taser_group():
    """Taser use: the Home Office force-by-year table, or one row per deployment."""


@taser_group.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
@command_errors
def taser_load(settings, path):
    """Load a Taser table (the layout is detected from the header)."""
    from crimemap.stops.ingest import load_taser

    result = load_taser(_store(settings), path, settings=settings)
    if result["layout"] == "force-year":
        click.echo(f"Loaded {result['rows']:,} force-year rows ({result['forces']} forces; "
                   f"{', '.join(result['years'])}).")
        for row in result["inconsistent"]:
            click.echo(f"  warning: {row['force']} {row['year_end']}: the levels do not add up to the totals")
    else:
        click.echo(f"Loaded {result['deployments']:,} deployments on {result['subjects']:,} subjects "
                   f"({', '.join(result['quarters'])}).")
    click.echo(f"Rejected {result['rejected']:,}.")
    for row, reason in result["examples"]:
        click.echo(f"  {path}:{row}: {reason}")
    for note in result["notes"]:
        click.echo(f"  {note}")
