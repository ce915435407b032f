"""Building, validating and swapping postcode lookup versions.

Layout of ``<INSTANCE>/postcodes/``::

    current          the serving version number, one line; replaced with os.replace
    v7/              one version: one .npy file per column, and meta.json
    v6/              previous versions kept for rollback (POSTCODES_KEEP_VERSIONS)
    .lock            held (flock) by the one refresh or rollback running
    .build-*/        a version being built; removed by the next refresh if left behind
    .download-*      a source being downloaded

A refresh builds the new version beside the serving one, validates it (every
column present with the same length and checksum after a re-read, a plausible
row count, no suspicious shrinkage, a sample of known postcodes still there,
plausible coordinates), renames it into place and only then swaps ``current``.
Whatever kills it before that swap -- an exception, a truncated source,
SIGKILL, a power cut -- leaves ``current`` and the version it names untouched.
"""

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from crimemap.errors import BadInput, CrimemapError
from crimemap.postcodes.normalise import postcode_of_key
from crimemap.postcodes.sources import CODE_FIELDS, fetch, is_url, read_source, sha256_of

__all__ = ["RefreshError", "RefreshBusy", "refresh", "rollback", "versions", "current_version", "folder_of",
           "read_meta", "FORMAT"]

FORMAT = 1  # on-disk format of a version folder; bump when the columns change
POINTER = "current"
_VERSION_DIR = re.compile(r"^v(\d+)$")
NUMERIC_COLUMNS = ("keys", "latitude", "longitude", "eastings", "northings", "quality", "introduced", "terminated",
                   "outcode")
# Where a plausible UK (and Crown dependency) postcode lies.
UK_BOUNDS = (-9.0, 49.0, 2.5, 61.0)


class RefreshError(BadInput):
    """A refresh that was refused or failed; the serving lookup is unchanged."""


class RefreshBusy(CrimemapError):
    """Another refresh or rollback holds the lock."""

    status = 409


def _now():
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def folder_of(instance):
    """The postcode folder of an instance folder."""
    return Path(instance) / "postcodes"


# ------------------------------------------------------------- pointers


def current_version(folder):
    """The serving version number in ``folder``, or None when none is loaded."""
    try:
        text = (Path(folder) / POINTER).read_text(encoding="ascii").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return int(text) if text.isascii() and text.isdigit() else None


def read_meta(folder, version):
    """The meta.json of one version, or None if that version is missing."""
    try:
        return json.loads((Path(folder) / f"v{version}" / "meta.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def _version_numbers(folder):
    if not Path(folder).is_dir():
        return []
    found = [int(m.group(1)) for p in Path(folder).iterdir() if (m := _VERSION_DIR.match(p.name)) and p.is_dir()]
    return sorted(found)


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _set_current(folder, version):
    """Point ``current`` at ``version`` atomically (write, fsync, os.replace, fsync the folder)."""
    fd, tmp = tempfile.mkstemp(prefix=".current-", dir=folder)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(f"{version}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, Path(folder) / POINTER)
    _fsync_dir(folder)


@contextlib.contextmanager
def _locked(folder):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RefreshBusy("another postcode refresh or rollback is running; try again when it ends") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clean_leftovers(folder):
    """Remove what a killed refresh left behind (only called under the lock)."""
    for path in folder.iterdir():
        if path.name.startswith((".build-", ".download-", ".current-")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


# ------------------------------------------------------------- building


def _tables(columns):
    """Sort by postcode, drop repeats (a live row wins), factorize the code columns."""
    keys = columns["key"]
    terminated = columns["terminated"] > 0
    order = np.lexsort((terminated, keys))
    sorted_keys = keys[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    order = order[first]
    arrays = {
        "keys": sorted_keys[first],
        "latitude": columns["latitude"][order],
        "longitude": columns["longitude"][order],
        "eastings": columns["eastings"][order].astype(np.float32),
        "northings": columns["northings"][order].astype(np.float32),
        "quality": columns["quality"][order],
        "introduced": columns["introduced"][order],
        "terminated": columns["terminated"][order],
    }
    # The outward code of every postcode, as an index into a table, so the
    # lookup can answer "postcodes of SW1A" without holding strings.
    outward = pd.Series(columns["postcode"][order]).str.split(" ", n=1).str[0]
    codes, table = pd.factorize(outward, sort=True)
    arrays["outcode"] = codes.astype(np.min_scalar_type(max(len(table) - 1, 0)))
    tables = {"outcode": np.asarray(table, dtype=str)}
    for field in CODE_FIELDS:
        values = pd.Series(columns[field][order]).fillna("").str.strip()
        codes, table = pd.factorize(values, sort=True)
        arrays[field] = codes.astype(np.min_scalar_type(max(len(table) - 1, 0)))
        tables[field] = np.asarray(table, dtype=str) if len(table) else np.array([""], dtype=str)
    return arrays, tables, int((~first).sum())


def _write_version(build, arrays, tables, meta):
    checksums = {}
    for name, values in list(arrays.items()) + [(f"table_{k}", v) for k, v in tables.items()]:
        path = build / f"{name}.npy"
        with open(path, "wb") as fh:
            np.save(fh, np.ascontiguousarray(values), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        checksums[name] = {"sha256": sha256_of(path), "dtype": str(values.dtype), "length": int(len(values))}
    meta["arrays"] = checksums
    with open(build / "meta.json", "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(build)


def _validate(build, meta, previous, settings, force):
    """Check a written version before it may serve. Returns the checks made (raises RefreshError)."""
    checks = {}
    arrays = {}
    for name, expect in meta["arrays"].items():
        path = build / f"{name}.npy"
        if not path.is_file() or sha256_of(path) != expect["sha256"]:
            raise RefreshError(f"validation failed: {name}.npy is missing or does not match what was written")
        arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
        if len(arrays[name]) != expect["length"] or str(arrays[name].dtype) != expect["dtype"]:
            raise RefreshError(f"validation failed: {name}.npy has the wrong length or type")
    n = meta["count"]
    missing = [c for c in NUMERIC_COLUMNS + CODE_FIELDS if c not in arrays or len(arrays[c]) != n]
    if missing:
        raise RefreshError(f"validation failed: columns missing or of the wrong length: {', '.join(missing)}")
    keys = np.asarray(arrays["keys"])
    if n == 0:
        raise RefreshError("validation failed: the source holds no valid postcode")
    if n > 1 and not (keys[1:] > keys[:-1]).all():
        raise RefreshError("validation failed: postcodes are not sorted and unique")
    lat, lon = np.asarray(arrays["latitude"]), np.asarray(arrays["longitude"])
    located = ~np.isnan(lat)
    west, south, east, north = UK_BOUNDS
    inside = located & (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    checks["located"] = int(located.sum())
    checks["outside_uk"] = int(located.sum() - inside.sum())
    if located.any() and checks["outside_uk"] > 0.01 * located.sum():
        raise RefreshError(f"validation failed: {checks['outside_uk']:,} of {int(located.sum()):,} located postcodes "
                           "lie outside the UK; is the layout right?")
    shrink_pct = float(settings.get("POSTCODES_MAX_SHRINK_PCT", 5.0))
    if previous is not None:
        old_live, new_live = previous["meta"]["live"], meta["live"]
        checks["previous_live"] = old_live
        if old_live and new_live < old_live * (1 - shrink_pct / 100):
            message = (f"the new lookup has {new_live:,} live postcodes, {100 * (1 - new_live / old_live):.1f}% fewer "
                       f"than version {previous['version']} ({old_live:,}); POSTCODES_MAX_SHRINK_PCT is {shrink_pct:g}")
            if not force:
                raise RefreshError(f"refused: {message}. Use --force if this is intended.")
            checks["forced"] = message
        # A sample of postcodes known to the serving version must still be
        # known (live or terminated): a partial file loses them at random.
        old_keys = previous["keys"]
        size = min(int(settings.get("POSTCODES_VALIDATE_SAMPLE", 1000)), len(old_keys))
        if size:
            rng = np.random.default_rng(previous["version"])
            sample = np.sort(np.asarray(old_keys)[rng.choice(len(old_keys), size=size, replace=False)])
            pos = np.minimum(np.searchsorted(keys, sample), n - 1)
            lost = sample[keys[pos] != sample]
            checks["sample"] = size
            checks["sample_missing"] = int(len(lost))
            if len(lost) > size * shrink_pct / 100:
                examples = ", ".join(postcode_of_key(k) for k in lost[:5])
                message = (f"{len(lost)} of {size} sampled postcodes of version {previous['version']} are missing "
                           f"(e.g. {examples})")
                if not force:
                    raise RefreshError(f"refused: {message}. Use --force if this is intended.")
                checks.setdefault("forced", message)
    return checks


def _serving(folder):
    """(version, meta) of the serving lookup, or None when there is none or its meta is unreadable."""
    version = current_version(folder)
    meta = None if version is None else read_meta(folder, version)
    return None if meta is None else (version, meta)


def _previous(folder):
    serving = _serving(folder)
    if serving is None:
        return None
    version, meta = serving
    keys = np.load(folder / f"v{version}" / "keys.npy", mmap_mode="r", allow_pickle=False)
    return {"version": version, "meta": meta, "keys": keys}


def refresh(instance, source, settings=None, force=False, progress=None, echo=None):
    """Load or refresh the postcode lookup of an instance, atomically.

    Parameters
    ----------
    instance : str or Path
        The instance folder; the lookup lives in its ``postcodes/`` folder.
    source : str or Path
        A file, folder or zip in Code-Point Open, ONSPD or NSPL layout, or an
        http(s) URL of one.
    settings : dict, optional
        ``POSTCODES_MAX_SHRINK_PCT``, ``POSTCODES_KEEP_VERSIONS``,
        ``POSTCODES_VALIDATE_SAMPLE``, ``POSTCODES_DOWNLOAD_MAX_MB``,
        ``POSTCODES_DOWNLOAD_TIMEOUT_S``, ``INGEST_CHUNK_ROWS``,
        ``REPORT_MAX_LISTED``.
    force : bool
        Accept a lookup that shrank or lost sampled postcodes, and rebuild
        even when the source is unchanged.
    progress : callable, optional
        Called with the rows of each chunk read.
    echo : callable, optional
        Called with a line for each stage (reading, writing, validating, swapping).

    Returns
    -------
    dict
        ``changed`` (bool), ``version``, ``previous``, ``count``, ``live``,
        ``terminated``, ``no_location``, ``rows_read``, ``rejected``,
        ``duplicates``, ``layouts``, ``checks``, ``report`` and, when nothing
        changed, ``reason``.

    Raises
    ------
    RefreshError, SourceError
        When the source cannot be read or the new lookup fails validation;
        the serving lookup is unchanged.
    RefreshBusy
        When another refresh is running.
    """
    settings = settings or {}
    echo = echo or (lambda line: None)
    folder = folder_of(instance)
    if not is_url(str(source)):
        source = Path(source).resolve()
    with _locked(folder):
        _clean_leftovers(folder)
        previous = _previous(folder)
        prev_meta = previous["meta"] if previous else {}
        same_url = is_url(str(source)) and prev_meta.get("source") == str(source)
        http = prev_meta.get("http") or {}
        echo(f"fetching {source}" if is_url(str(source)) else f"reading {source}")
        fetched = fetch(str(source), folder, timeout=float(settings.get("POSTCODES_DOWNLOAD_TIMEOUT_S", 60)),
                        max_bytes=int(float(settings.get("POSTCODES_DOWNLOAD_MAX_MB", 2048)) * 2**20),
                        etag=None if force or not same_url else http.get("etag"),
                        last_modified=None if force or not same_url else http.get("last_modified"))
        build = None
        try:
            unchanged = {"changed": False, "version": previous and previous["version"], "previous": None}
            if fetched.not_modified:
                return unchanged | {"reason": f"{source} is not modified since version {previous['version']}"}
            digest = sha256_of(fetched.path)
            if previous and not force and prev_meta.get("source_sha256") == digest:
                return unchanged | {"reason": f"the source is the same as version {previous['version']}'s "
                                              "(use --force to rebuild it)"}
            columns, layouts, report = read_source(
                fetched.path, chunk_rows=int(settings.get("INGEST_CHUNK_ROWS", 200_000)), progress=progress,
                max_examples=int(settings.get("REPORT_MAX_LISTED", 20)), echo=echo)
            if not columns:
                raise RefreshError(f"{source}: no valid postcode found ({report.rejected:,} rows rejected)")
            echo(f"read {report.rows_read:,} rows from {len(report.files)} file(s)")
            arrays, tables, duplicates = _tables(columns)
            del columns
            live = int((arrays["terminated"] == 0).sum())
            meta = {
                "format": FORMAT, "source": str(source), "source_sha256": digest, "layouts": layouts,
                "http": {"etag": fetched.etag, "last_modified": fetched.last_modified} if fetched.url else None,
                "refreshed_at": _now(), "count": int(len(arrays["keys"])), "live": live,
                "terminated": int(len(arrays["keys"]) - live),
                "no_location": int(np.isnan(arrays["latitude"]).sum()),
                "rows_read": report.rows_read, "rejected": report.rejected, "duplicates": duplicates,
                "report": report.to_dict(),
            }
            build = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))
            echo(f"writing {meta['count']:,} postcodes")
            _write_version(build, arrays, tables, meta)
            del arrays
            echo("validating")
            checks = _validate(build, meta, previous, settings, force)
            version = max(_version_numbers(folder) + [0]) + 1
            meta["version"] = version
            meta["checks"] = checks
            with open(build / "meta.json", "w", encoding="utf-8") as fh:
                json.dump(meta, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            echo(f"swapping in version {version}")
            os.rename(build, folder / f"v{version}")
            _fsync_dir(folder)
            _set_current(folder, version)
            pruned = _prune(folder, int(settings.get("POSTCODES_KEEP_VERSIONS", 3)))
        finally:
            fetched.cleanup()
            if build is not None and build.exists():
                # Refused or failed: the half-built version goes (a SIGKILLed
                # one is removed by the next refresh, under the lock).
                shutil.rmtree(build, ignore_errors=True)
    return {"changed": True, "version": version, "previous": previous and previous["version"], "pruned": pruned,
            "checks": checks, **{k: meta[k] for k in ("count", "live", "terminated", "no_location", "rows_read",
                                                       "rejected", "duplicates", "layouts", "report")}}


def _prune(folder, keep):
    """Delete the oldest versions beyond ``keep`` (never the serving one)."""
    keep = max(int(keep), 1)
    current = current_version(folder)
    others = [v for v in _version_numbers(folder) if v != current]
    doomed = others[: max(len(others) - (keep - 1), 0)]
    for version in doomed:
        # Renamed first so that a reader never sees a half-deleted version.
        trash = folder / f".build-trash-v{version}"
        os.rename(folder / f"v{version}", trash)
        shutil.rmtree(trash, ignore_errors=True)
    return doomed


def versions(instance):
    """The versions kept in an instance, newest first.

    Parameters
    ----------
    instance : str or Path

    Returns
    -------
    list of dict
        ``version``, ``current``, ``source``, ``refreshed_at``, ``count``,
        ``live``, ``terminated``.
    """
    folder = folder_of(instance)
    current = current_version(folder)
    out = []
    for version in reversed(_version_numbers(folder)):
        meta = read_meta(folder, version) or {}
        out.append({"version": version, "current": version == current, "source": meta.get("source"),
                    "refreshed_at": meta.get("refreshed_at"), "count": meta.get("count"), "live": meta.get("live"),
                    "terminated": meta.get("terminated")})
    return out


def rollback(instance, to=None):
    """Serve an earlier version again.

    Parameters
    ----------
    instance : str or Path
    to : int, optional
        The version to serve; by default the newest version older than the
        serving one.

    Returns
    -------
    dict
        ``version`` (now serving) and ``previous``.

    Raises
    ------
    RefreshError
        When there is no such version, or nothing older to roll back to.
    """
    folder = folder_of(instance)
    with _locked(folder):
        current = current_version(folder)
        kept = _version_numbers(folder)
        if to is None:
            older = [v for v in kept if current is None or v < current]
            if not older:
                raise RefreshError("no earlier postcode lookup version is kept to roll back to")
            to = older[-1]
        to = int(to)
        if to not in kept or read_meta(folder, to) is None:
            listed = ", ".join(str(v) for v in kept) or "none"
            raise RefreshError(f"postcode lookup version {to} is not kept (kept: {listed})")
        _set_current(folder, to)
    return {"version": to, "previous": current}


def describe(instance):
    """The serving version's meta (without the per-file report), or None."""
    folder = folder_of(instance)
    serving = _serving(folder)
    if serving is None:
        return None
    _, meta = serving
    keys = ("version", "source", "refreshed_at", "count", "live", "terminated", "no_location", "layouts",
            "rows_read", "rejected", "duplicates")
    return {k: meta.get(k) for k in keys} | {"kept_versions": _version_numbers(folder)}

