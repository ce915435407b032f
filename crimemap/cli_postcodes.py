"""``crimemap postcodes ...``: thin click wrappers over :mod:`crimemap.postcodes`."""

import json
import logging
import signal
import time

import click

from crimemap.cli import _Counter, command_errors

log = logging.getLogger("crimemap.postcodes")


@click.group("postcodes")
def postcodes_group():
    """The postcode lookup: refresh, roll back, schedule, look up."""


def _print_refresh(result):
    if not result["changed"]:
        click.echo(f"Nothing to do: {result['reason']}.")
        return
    previous = f" (was {result['previous']})" if result["previous"] else ""
    click.echo(f"Postcode lookup version {result['version']} is serving{previous}: {result['count']:,} postcodes, "
               f"{result['live']:,} live, {result['terminated']:,} terminated, {result['no_location']:,} without a "
               f"location.")
    click.echo(f"Rows read {result['rows_read']:,}; rejected {result['rejected']:,}; repeated postcodes "
               f"{result['duplicates']:,}. Layout: {', '.join(result['layouts'])}.")
    for entry in result["report"]["files"]:
        for line, reason in entry["examples"]:
            click.echo(f"  {entry['path']}:{line}: {reason}")
    for skipped in result["report"]["skipped"]:
        click.echo(f"  skipped {skipped}")
    checks = result["checks"]
    if "sample" in checks:
        click.echo(f"  validated: {checks['sample'] - checks['sample_missing']} of {checks['sample']} sampled "
                   f"postcodes of version {result['previous']} are still there.")
    if "forced" in checks:
        click.echo(f"  accepted with --force: {checks['forced']}")
    if result["pruned"]:
        click.echo(f"  removed old version(s) {', '.join(map(str, result['pruned']))} (POSTCODES_KEEP_VERSIONS)")


@postcodes_group.command("refresh")
@click.argument("source")
@click.option("--force", is_flag=True,
              help="Accept a lookup that shrank by more than POSTCODES_MAX_SHRINK_PCT, and rebuild an unchanged source.")
@click.pass_obj
@command_errors
def refresh_command(settings, source, force):
    """Load or refresh the lookup from SOURCE: a file, folder, zip or http(s) URL.

    Code-Point Open (with or without a header), ONSPD and NSPL are detected.
    The new version is built beside the serving one, validated and swapped
    in atomically; a failed refresh changes nothing.
    """
    from crimemap.postcodes import refresh

    counter = _Counter("read")
    try:
        result = refresh(settings["INSTANCE"], source, settings=settings, force=force, progress=counter,
                         echo=lambda line: click.echo(f"  {line}"))
    finally:
        counter.done()
    _print_refresh(result)


@postcodes_group.command("rollback")
@click.option("--to", "to", type=int, help="The version to serve (default: the newest older than the serving one).")
@click.pass_obj
@command_errors
def rollback_command(settings, to):
    """Serve an earlier kept version again (see `crimemap postcodes versions`)."""
    from crimemap.postcodes import rollback

    result = rollback(settings["INSTANCE"], to=to)
    click.echo(f"Postcode lookup version {result['version']} is serving (was {result['previous']}).")


@postcodes_group.command("versions")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@command_errors
def versions_command(settings, as_json):
    """List the kept lookup versions, newest first; * marks the serving one."""
    from crimemap.postcodes import versions

    kept = versions(settings["INSTANCE"])
    if as_json:
        click.echo(json.dumps(kept, indent=2))
        return
    if not kept:
        click.echo("No postcode lookup loaded (crimemap postcodes refresh SOURCE).")
    for v in kept:
        mark = "*" if v["current"] else " "
        click.echo(f"{mark} v{v['version']:<4} {v['refreshed_at'] or '-'}  {v['count'] or 0:>9,} postcodes "
                   f"({v['terminated'] or 0:,} terminated)  {v['source']}")


@postcodes_group.command("lookup")
@click.argument("postcode")
@click.pass_obj
@command_errors
def lookup_command(settings, postcode):
    """Resolve POSTCODE to its ward, SNT and borough, as the search does (JSON)."""
    from crimemap.errors import PostcodeNotFound
    from crimemap.postcodes import get_lookup, resolve
    from crimemap.store import open_store

    lookup = get_lookup(settings, open_store(settings, readonly=True))
    if lookup is None:
        raise click.ClickException("no postcode lookup loaded (crimemap postcodes refresh SOURCE)")
    try:
        click.echo(json.dumps(resolve(lookup, postcode), indent=2))
    except PostcodeNotFound as exc:
        click.echo(json.dumps(exc.to_dict(), indent=2))
        raise SystemExit(1) from None


@postcodes_group.command("schedule")
@click.option("--source", help="Source URL or path (default POSTCODES_SOURCE_URL).")
@click.option("--every", "hours", type=float, help="Hours between refreshes (default POSTCODES_REFRESH_HOURS).")
@click.option("--once", is_flag=True, help="Run one refresh now and exit (what a systemd timer or cron job calls).")
@click.pass_obj
@command_errors
def schedule_command(settings, source, hours, once):
    """Refresh from POSTCODES_SOURCE_URL every POSTCODES_REFRESH_HOURS, in the foreground.

    A failed or refused refresh is logged and the old lookup keeps serving;
    the loop goes on. Stop it with Ctrl-C or SIGTERM.
    """
    from crimemap.postcodes.schedule import run_schedule

    source = source or settings.get("POSTCODES_SOURCE_URL")
    if not source:
        raise click.ClickException("no source: set POSTCODES_SOURCE_URL or pass --source")
    hours = float(hours if hours is not None else settings.get("POSTCODES_REFRESH_HOURS", 24))
    if hours <= 0:
        raise click.ClickException(f"--every must be a positive number of hours, got {hours:g}")
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    runs = run_schedule(settings, source, hours, once=once, should_stop=lambda: stop["now"],
                        echo=lambda line: click.echo(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}"))
    if once and runs and not runs[-1]["ok"]:
        raise click.ClickException(runs[-1]["error"])
