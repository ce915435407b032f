"""The ``crimemap`` command: thin click wrappers over the core functions.

Errors a user can fix become ``click.ClickException`` with the message and a
non-zero exit. Anything unexpected is logged with its traceback in the
instance folder's ``logs/crimemap.log`` and reported in one line.
"""

import errno
import functools
import json
import logging
import re
import sqlite3
import sys
import time
from pathlib import Path

import click

from crimemap.config import load_settings
from crimemap.errors import CrimemapError, StoreError

log = logging.getLogger("crimemap")


def _log_to_instance(settings):
    folder = Path(settings["INSTANCE"]) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / "crimemap.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    return folder / "crimemap.log"


_DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_SHORT_WRITE = re.compile(r"^\d+ requested and \d+ written$")  # numpy's tofile on a full disk


_SQLITE_DISK = ("database or disk is full", "disk I/O error")  # the embedded store's errors
_SQLSTATE_DISK_FULL = "53100"  # PostgreSQL's disk_full (psycopg errors carry it as ``sqlstate``)


def _disk_full_one(exc):
    if isinstance(exc, sqlite3.OperationalError) and str(exc) in _SQLITE_DISK:
        return str(exc)
    if getattr(exc, "sqlstate", None) == _SQLSTATE_DISK_FULL:
        return (str(exc).strip().splitlines() or ["the database server's disk is full"])[0]
    if isinstance(exc, OSError) and (exc.errno in _DISK_ERRNOS or _SHORT_WRITE.match(str(exc))):
        return exc.strerror or str(exc)
    return None


def _disk_full(exc):
    """What a write that ran out of disk space (or past a file size limit) said, else None.

    Works for either store: SQLite's own errors, PostgreSQL's ``disk_full``
    (SQLSTATE 53100), and OS errors; also when a store wrapped the error (in a
    :class:`~crimemap.errors.StoreError`), by following the chain of causes.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        found = _disk_full_one(exc)
        if found:
            return found
        exc = exc.__cause__ if exc.__cause__ is not None or exc.__suppress_context__ else exc.__context__
    return None


def _disk_full_error(full):
    return click.ClickException(
        f"could not write to disk ({full}); the disk may be full. Nothing was changed and the previous "
        f"data keeps serving; free some space and run again.")


def command_errors(func):
    """Turn errors into one clear line and a non-zero exit, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except CrimemapError as exc:
            full = _disk_full(exc) if isinstance(exc, StoreError) else None
            if full:
                raise _disk_full_error(full) from None
            raise click.ClickException(exc.message) from None
        except KeyboardInterrupt:
            raise click.ClickException("interrupted; nothing was changed") from None
        except Exception as exc:  # noqa: BLE001 - the edge that keeps tracebacks from users
            full = _disk_full(exc)
            if full:  # no log entry: the log is on the same full disk
                raise _disk_full_error(full) from None
            settings = click.get_current_context().obj or {}
            where = "the log"
            if settings.get("INSTANCE"):
                where = str(_log_to_instance(settings))
            log.exception("unexpected error in %s", func.__name__)
            raise click.ClickException(
                f"unexpected error ({type(exc).__name__}: {exc}); nothing was changed. Details in {where}") from None

    return wrapper


class _Counter:
    """Rows processed, redrawn in place on a terminal, silent otherwise."""

    def __init__(self, label):
        self.label = label
        self.rows = 0
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def __call__(self, rows):
        self.rows += rows
        if self.tty:
            rate = self.rows / max(time.perf_counter() - self.start, 1e-9)
            click.echo(f"\r  {self.label}: {self.rows:,} rows ({rate:,.0f}/s)", nl=False, err=True)

    def done(self):
        if self.tty and self.rows:
            click.echo("", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--instance", type=click.Path(file_okay=False), envvar="CRIMEMAP_INSTANCE",
              help="Instance folder where the data lives (default ./instance; env CRIMEMAP_INSTANCE).")
@click.version_option(package_name="crimemap")
@click.pass_context
def main(ctx, instance):
    """crimemap: crime where Londoners live."""
    try:
        ctx.obj = load_settings(instance=instance)
    except (ValueError, SyntaxError) as exc:
        raise click.ClickException(f"bad configuration: {exc}") from None


def _store(settings):
    from crimemap.store import open_store

    return open_store(settings)


@main.group()
def boundaries():
    """Boundary layers: wards, SNTs, boroughs, LSOAs."""


@boundaries.command("load")
@click.argument("level", type=click.Choice(["ward", "snt", "borough", "lsoa"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--vintage", help="Boundary vintage, e.g. 2018 (detected from the layout when omitted).")
@click.option("--layer", help="Layer name inside a GeoPackage with several layers.")
@click.pass_obj
@command_errors
def boundaries_load(settings, level, path, vintage, layer):
    """Load one boundary layer from a Shapefile, GeoPackage or GeoJSON."""
    from crimemap.ingest import load_boundaries

    result = load_boundaries(_store(settings), path, level, vintage=vintage, settings=settings, layer=layer)
    click.echo(f"Loaded {result['areas']} {level} areas, vintage {result['vintage']} "
               f"(layout {result['layout']}; {result['crs_note']}).")
    if result["city_of_london_areas"]:
        click.echo(f"  {result['city_of_london_areas']} area(s) are City of London Police, shown as a separate force.")
    for repair in result["repairs"]:
        click.echo(f"  repaired {repair['code']} {repair['name']}: {repair['problem']} "
                   f"(area {repair['area_before_m2']:,.0f} -> {repair['area_after_m2']:,.0f} m²)")
    for warning in result["warnings"]:
        click.echo(f"  warning: {warning}")
    click.echo(f"  {result['locations_joined']:,} stored crime locations joined to this layer.")


@main.group()
def crimes():
    """Crime data: police.uk street files and API JSON, Met count tables."""


@crimes.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["police-uk-csv", "police-uk-json", "mps-ward", "mps-borough",
                                                     "mps-lsoa"]), help="Override format detection.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.pass_obj
@command_errors
def crimes_ingest(settings, paths, fmt, as_json):
    """Load crime files. Re-loading a month replaces that month."""
    from crimemap.ingest import ingest_crimes

    counter = _Counter("read")
    echo = None if as_json else click.echo
    try:
        report = ingest_crimes(_store(settings), paths, fmt=fmt, settings=settings, progress=counter, echo=echo)
    finally:
        counter.done()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
        return
    s = report.summary()
    click.echo(f"Rows read {s['rows_read']:,}; joined {s['joined']:,}; no location {s['no_location']:,}; "
               f"outside every area {s['outside']:,}; rejected {s['rejected']:,}.")
    if s["count_rows"]:
        click.echo(f"Count rows read {s['count_rows']:,}.")
    for reason, n in sorted(s["rejected_by_reason"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  rejected {n:,}: {reason}")
    for entry in report.files:
        for row, reason in entry["examples"]:
            click.echo(f"  {entry['path']}:{row}: {reason}")
        for note in entry["notes"]:
            click.echo(f"  {entry['path']}: {note}")
    for edge in report.on_edge:
        click.echo(f"  {edge['crimes']:,} crimes at {edge['locations']:,} locations lie exactly on a "
                   f"{edge['level']} {edge['vintage']} boundary (assigned to the smallest code; see docs/join.md).")
    months = sorted({b["month"] for b in report.batches})
    if months:
        click.echo(f"Months loaded: {months[0]} to {months[-1]} ({len(months)}).")


@main.group()
def population():
    """Residents per area, for rates per 1,000."""


@population.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--year", help="Year of the estimate when the file name or columns do not say.")
@click.pass_obj
@command_errors
def population_load(settings, path, year):
    """Load a population table (ONS LSOA mid-year estimates, GLA ward tables)."""
    from crimemap.population import load_population

    result = load_population(_store(settings), path, year=year, settings=settings)
    residents = f", {result['persons']:,} residents" if result["persons"] is not None else ""
    click.echo(f"Loaded {result['rows']:,} {result['kind']} rows ({result['layout']}){residents}, "
               f"year {', '.join(result['years'])}.")
    for note in result["notes"]:
        click.echo(f"  {note}")
    for layer in result["layers"]:
        method = ", ".join(layer["method"]) if layer["method"] else "no rule applies (load an LSOA layer)"
        click.echo(f"  {layer['level']} {layer['vintage']}: {method}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the same as GET /api/v1/status).")
@click.pass_obj
@command_errors
def status(settings, as_json):
    """Show what is loaded: layers, months per source, counts, data version."""
    doc = _store(settings).status()
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    from crimemap.store.report import format_status

    click.echo(format_status(doc, settings["INSTANCE"]))


@main.command()
@click.option("--demo", is_flag=True, help="Build (if needed) and serve a synthetic demo instance; works offline.")
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default 8000).")
@click.option("--workers", default=None, type=int, help="Worker processes (default 2).")
@click.pass_obj
@command_errors
def serve(settings, demo, host, port, workers):
    """Serve the site on a production WSGI server (gunicorn)."""
    from crimemap.server import serve as run_server

    if demo:
        from crimemap.demo import ensure_demo_instance

        settings = ensure_demo_instance(settings, echo=click.echo)
    run_server(settings, host=host or settings["HOST"], port=port or settings["PORT"],
               workers=workers or settings["WORKERS"])


from crimemap.cli_postcodes import postcodes_group  # noqa: E402 - registered last; it imports helpers above

main.add_command(postcodes_group)

from crimemap.cli_stops import stops_group, taser_group  # noqa: E402 - registered last; it imports helpers above

main.add_command(stops_group)
main.add_command(taser_group)

from crimemap.cli_tiles import tiles_group  # noqa: E402 - registered last; it imports helpers above

main.add_command(tiles_group)
