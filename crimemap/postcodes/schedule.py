"""Refreshing the postcode lookup on a schedule, in the foreground.

One job at a fixed period needs no scheduler library: a loop on the
monotonic clock that sleeps in short steps (so SIGTERM stops it within a
second) does it, and it cannot overlap itself. The refresh lock in
:mod:`crimemap.postcodes.build` keeps it from overlapping a manual refresh
too. A failed refresh is reported and the old lookup keeps serving; the next
one runs at the next period. For production, docs/postcodes.md also ships a
systemd timer and a cron line that call ``crimemap postcodes schedule --once``.
"""

import logging
import time

from crimemap.errors import CrimemapError

__all__ = ["run_schedule", "refresh_once"]

log = logging.getLogger("crimemap.postcodes")


def refresh_once(settings, source, echo):
    """Run one refresh, reporting instead of raising. Returns ``{ok, changed, version, error}``."""
    from crimemap.postcodes.build import refresh

    try:
        result = refresh(settings["INSTANCE"], source, settings=settings, echo=echo)
    except CrimemapError as exc:
        echo(f"refresh failed, the previous lookup keeps serving: {exc.message}")
        log.warning("postcode refresh from %s failed: %s", source, exc.message)
        return {"ok": False, "changed": False, "version": None, "error": exc.message}
    except Exception as exc:  # noqa: BLE001 - a scheduler must outlive one bad run
        log.exception("postcode refresh from %s failed unexpectedly", source)
        echo(f"refresh failed unexpectedly, the previous lookup keeps serving: {type(exc).__name__}: {exc}")
        return {"ok": False, "changed": False, "version": None, "error": f"{type(exc).__name__}: {exc}"}
    if result["changed"]:
        echo(f"version {result['version']} is serving: {result['count']:,} postcodes")
    else:
        echo(f"nothing to do: {result['reason']}")
    return {"ok": True, "changed": result["changed"], "version": result["version"], "error": None}


def run_schedule(settings, source, hours, once=False, should_stop=lambda: False, echo=print,
                 clock=time.monotonic, sleep=time.sleep, max_runs=None):
    """Refresh now and then every ``hours`` until ``should_stop()``.

    Parameters
    ----------
    settings : dict
    source : str
        URL or path to refresh from.
    hours : float
        The period, from the start of one run to the start of the next; a run
        that overruns the period is followed at once by the next.
    once : bool
        Run one refresh and return.
    should_stop : callable
        Polled about once a second while waiting.
    echo : callable
        Receives one line per event.
    clock, sleep : callable
        The monotonic clock and the sleep function (replaceable in tests).
    max_runs : int, optional
        Stop after this many runs.

    Returns
    -------
    list of dict
        One :func:`refresh_once` result per run.
    """
    period = float(hours) * 3600.0
    runs = []
    while not should_stop():
        started = clock()
        runs.append(refresh_once(settings, source, echo))
        if once or (max_runs is not None and len(runs) >= max_runs):
            break
        due = started + period
        echo(f"next refresh in {max(due - clock(), 0) / 3600:.2f} h")
        while not should_stop() and clock() < due:
            sleep(min(1.0, max(due - clock(), 0.0)))
    return runs
