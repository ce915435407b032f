"""Reading postcode directories as published: Code-Point Open, ONSPD and NSPL.

The layouts are data, declared in ``crimemap/schemas/codepoint_open.json``
and ``crimemap/schemas/onspd.json``; this module is the one reader that
interprets them. A source is a file (``.csv``, ``.csv.gz``), a folder of such
files, a zip (as OS and ONS publish them), or an http(s) URL of any of those,
which :func:`fetch` downloads first.

The reader streams in chunks, so a whole-UK ONSPD (2.7 million rows, about
50 columns) is read with bounded memory: only the declared columns are kept.
Everything is pure I/O-to-arrays; building and swapping a lookup version is
:mod:`crimemap.postcodes.build`'s job.
"""

import dataclasses
import gzip
import hashlib
import io
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from crimemap.crs import bng_to_lonlat, lonlat_to_bng
from crimemap.errors import BadInput
from crimemap.postcodes.normalise import compact, key_of, normalise

__all__ = ["SourceError", "Fetched", "ReadReport", "layouts", "fetch", "read_source", "CODE_FIELDS"]

SCHEMA_FILES = ("codepoint_open.json", "onspd.json")

# Code columns kept per postcode (stored as small integer indexes into a table).
CODE_FIELDS = ("country_code", "nhs_region_code", "nhs_ha_code", "county_code", "district_code", "ward_code")

_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"


class SourceError(BadInput):
    """A postcode source that cannot be read: unknown layout, truncated, unreachable."""


@lru_cache(maxsize=None)
def layouts():
    """The declared layouts, in detection order.

    Returns
    -------
    tuple of dict
        Each layout as written in the schema files.
    """
    found = []
    for name in SCHEMA_FILES:
        text = resources.files("crimemap").joinpath("schemas", name).read_text(encoding="utf-8")
        found.extend(json.loads(text)["layouts"])
    return tuple(found)


# ---------------------------------------------------------------- fetching


@dataclasses.dataclass
class Fetched:
    """A source made local: where it is and what the server said about it."""

    path: Path
    url: str = None
    etag: str = None
    last_modified: str = None
    not_modified: bool = False
    bytes: int = 0
    temporary: bool = False

    def cleanup(self):
        if self.temporary and self.path is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


def is_url(source):
    return isinstance(source, str) and urllib.parse.urlsplit(source).scheme.lower() in ("http", "https")


def fetch(source, workdir, timeout=60, max_bytes=None, etag=None, last_modified=None, progress=None):
    """Make a source local, downloading it when it is an http(s) URL.

    Parameters
    ----------
    source : str or Path
        A path or an ``http://`` / ``https://`` URL.
    workdir : Path
        Where a download is written (a temporary file, removed by
        :meth:`Fetched.cleanup`); the instance folder, so it is on the same
        disk as the lookup and never in a world-readable /tmp.
    timeout : float
        Seconds to wait for the server at each step.
    max_bytes : int, optional
        Refuse a download larger than this.
    etag, last_modified : str, optional
        Validators from the previous download: the server may answer
        304 Not Modified, and then nothing is downloaded.
    progress : callable, optional
        Called with the number of bytes received in each block.

    Returns
    -------
    Fetched

    Raises
    ------
    SourceError
        If the path does not exist, or the download fails or is cut short.
    """
    if not is_url(source):
        path = Path(source)
        if not path.exists():
            raise SourceError(f"postcode source not found: {path}")
        return Fetched(path=path)
    headers = {"User-Agent": "crimemap postcode refresh"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = urllib.request.Request(source, headers=headers)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - scheme checked above
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return Fetched(path=None, url=source, etag=etag, last_modified=last_modified, not_modified=True)
        raise SourceError(f"download failed: {source} answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SourceError(f"download failed: {source}: {getattr(exc, 'reason', exc)}") from None
    suffix = "".join(Path(urllib.parse.urlsplit(source).path).suffixes[-2:])[:16]
    fd, name = tempfile.mkstemp(prefix=".download-", suffix=suffix, dir=workdir)
    path = Path(name)
    received = 0
    try:
        with response, os.fdopen(fd, "wb") as out:
            expected = response.headers.get("Content-Length")
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                received += len(block)
                if max_bytes is not None and received > max_bytes:
                    raise SourceError(f"download refused: {source} is larger than {max_bytes:,} bytes "
                                      "(POSTCODES_DOWNLOAD_MAX_MB)")
                out.write(block)
                if progress:
                    progress(len(block))
        if expected is not None and expected.isascii() and expected.isdigit() and int(expected) != received:
            raise SourceError(f"download cut short: {source} sent {received:,} of {int(expected):,} bytes")
    except (OSError, urllib.error.URLError) as exc:
        path.unlink(missing_ok=True)
        raise SourceError(f"download failed: {source}: {exc}") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Fetched(path=path, url=source, etag=response.headers.get("ETag"),
                   last_modified=response.headers.get("Last-Modified"), bytes=received, temporary=True)


def sha256_of(path):
    """The SHA-256 of a file or of a folder's files (names and contents), hex."""
    digest = hashlib.sha256()
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode())
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- members


def _members(path):
    """Yield (name, opener) for every CSV a source holds; opener() gives a binary stream."""
    path = Path(path)
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            if file.name.startswith("."):
                continue
            yield from _file_members(file, str(file.relative_to(path)), in_container=True)
        return
    yield from _file_members(path, path.name, in_container=False)


def _file_members(path, name, in_container):
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic.startswith(_ZIP_MAGIC):
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise SourceError(f"{name}: not a readable zip ({exc}); is the download complete?") from None
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            lower = info.filename.lower()
            if info.is_dir() or not (lower.endswith(".csv") or lower.endswith(".csv.gz")):
                continue
            yield (f"{name}:{info.filename}", _zip_opener(archive, info.filename, lower.endswith(".gz")), True)
        return
    lower = name.lower()
    if in_container and not (lower.endswith(".csv") or lower.endswith(".csv.gz") or lower.endswith(".txt")):
        return
    if magic.startswith(_GZIP_MAGIC):
        yield name, lambda: gzip.open(path, "rb"), in_container
    else:
        yield name, lambda: open(path, "rb"), in_container


def _zip_opener(archive, member, gzipped):
    def opener():
        stream = archive.open(member)
        return gzip.GzipFile(fileobj=stream) if gzipped else stream
    return opener


# ---------------------------------------------------------------- detection


def _header_index(header_cells):
    return {cell.strip().strip('"').strip().lower(): cell for cell in header_cells}


def _resolve_fields(layout, header_cells):
    """Map each field of a layout to a column of this file, or None if a required one is missing."""
    available = _header_index(header_cells)
    mapping = {}
    for field, names in layout["fields"].items():
        for name in [names] if isinstance(names, str) else names:
            if name.lower() in available:
                mapping[field] = available[name.lower()]
                break
    if all(field in mapping for field in layout["required"]):
        return mapping
    return None


def detect(first_line):
    """Find the layout of a file from its first line.

    Parameters
    ----------
    first_line : str

    Returns
    -------
    tuple or None
        ``(layout, mapping)``: the layout dict and its field -> column map,
        or None when no declared layout fits.
    """
    cells = next(iter(pd.read_csv(io.StringIO(first_line), header=None, dtype=str,
                                  keep_default_na=False).itertuples(index=False, name=None)), ())
    for layout in layouts():
        if layout["header"]:
            mapping = _resolve_fields(layout, cells)
            if mapping is not None:
                return layout, mapping
        elif len(cells) == len(layout["columns"]) and normalise(cells[0]) is not None:
            return layout, dict(layout["fields"])
    return None


def _first_line(opener):
    with opener() as stream:
        raw = stream.readline(1 << 16)
    return raw.decode("utf-8-sig", errors="replace").rstrip("\r\n")


# ---------------------------------------------------------------- reading


@dataclasses.dataclass
class ReadReport:
    """What a read found: per file, rows read and rejected (with reasons and examples)."""

    files: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    max_examples: int = 20

    @property
    def rows_read(self):
        return sum(f["rows"] for f in self.files)

    @property
    def rejected(self):
        return sum(f["rejected"] for f in self.files)

    def to_dict(self):
        return {"rows_read": self.rows_read, "rejected": self.rejected, "files": self.files, "skipped": self.skipped}


def _number(values):
    return pd.to_numeric(pd.Series(values, copy=False).replace("", None), errors="coerce").to_numpy(dtype="float64", copy=True)


def _chunk_arrays(chunk, layout, mapping, first_line_no, entry, max_examples):
    """Turn one chunk of text columns into typed arrays; reject rows without a valid postcode."""
    column = {field: chunk[col].to_numpy(dtype=object) for field, col in mapping.items() if col in chunk}
    raw = column["postcode"]
    canonical = [normalise(p) for p in raw]
    valid = np.fromiter((c is not None for c in canonical), dtype=bool, count=len(canonical))
    if not valid.all():
        bad = np.flatnonzero(~valid)
        entry["rejected"] += len(bad)
        entry["by_reason"]["not a UK postcode"] = entry["by_reason"].get("not a UK postcode", 0) + len(bad)
        for i in bad[: max(0, max_examples - len(entry["examples"]))]:
            entry["examples"].append([int(first_line_no + i), f"not a UK postcode: {str(raw[i])[:40]!r}"])
    keep = np.flatnonzero(valid)
    n = len(keep)
    out = {"postcode": np.array([canonical[i] for i in keep], dtype=object)}
    out["key"] = np.fromiter((key_of(compact(p)) for p in out["postcode"]), dtype=np.int64, count=n)
    get = {field: values[keep] for field, values in column.items()}
    quality = _number(get["quality"]) if "quality" in get else np.full(n, np.nan)
    east = _number(get["eastings"]) if "eastings" in get else np.full(n, np.nan)
    north = _number(get["northings"]) if "northings" in get else np.full(n, np.nan)
    lat = _number(get["latitude"]) if "latitude" in get else np.full(n, np.nan)
    lon = _number(get["longitude"]) if "longitude" in get else np.full(n, np.nan)
    missing = np.zeros(n, dtype=bool)
    if "quality" in get and layout.get("no_location_quality"):
        missing |= np.isin(get["quality"], layout["no_location_quality"])
    if "latitude" in get and layout.get("no_location_latitude"):
        missing |= np.isin(get["latitude"], layout["no_location_latitude"])
    if layout["coordinates"] == "eastings_northings":
        # Code-Point Open gives 0, 0 for postcodes it cannot place.
        missing |= (east == 0) & (north == 0)
    codes = {field: (get[field] if field in get else np.full(n, "", dtype=object)) for field in CODE_FIELDS}
    if layout["coordinates"] == "eastings_northings":
        need = np.isnan(lat) | np.isnan(lon)
        if need.any():
            glon, glat = bng_to_lonlat(east[need], north[need])
            lon[need], lat[need] = glon, glat
    else:
        placed = ~(np.isnan(east) | np.isnan(north)) & ~np.isin(codes["country_code"],
                                                               layout.get("irish_grid_countries", []))
        need = (np.isnan(lat) | np.isnan(lon)) & placed
        if need.any():
            glon, glat = bng_to_lonlat(east[need], north[need])
            lon[need], lat[need] = glon, glat
        # ONSPD grid references of Northern Ireland are Irish Grid, not British
        # National Grid: derive BNG from latitude/longitude there, and wherever
        # the file gives no grid reference.
        irish = np.isin(codes["country_code"], layout.get("irish_grid_countries", []))
        need = irish | np.isnan(east) | np.isnan(north)
        if need.any():
            gx, gy = lonlat_to_bng(lon[need], lat[need])
            east[need], north[need] = np.round(gx), np.round(gy)
    for values in (east, north, lat, lon):
        values[missing] = np.nan
    out.update(eastings=east, northings=north, latitude=lat, longitude=lon,
               quality=np.nan_to_num(quality, nan=-1).astype(np.int16))
    for field in ("introduced", "terminated"):
        dates = _number(get[field]) if field in get else np.full(n, np.nan)
        out[field] = np.nan_to_num(dates, nan=0).astype(np.int32)
    for field in CODE_FIELDS:
        out[field] = np.asarray(codes[field], dtype=object)
    entry["rows"] += len(raw)
    entry["no_location"] += int(np.isnan(lat).sum())
    entry["terminated"] += int((out["terminated"] > 0).sum())
    return out


def read_source(path, chunk_rows=200_000, progress=None, max_examples=20, echo=None):
    """Read every postcode row of a local source.

    Parameters
    ----------
    path : Path
        A file (``.csv`` or ``.csv.gz``), a folder of them, or a zip.
    chunk_rows : int
        Rows parsed at a time; bounds memory.
    progress : callable, optional
        Called with the number of rows in each chunk.
    max_examples : int
        Rejected rows listed one by one per file.
    echo : callable, optional
        Called with a line when each file has been read.

    Returns
    -------
    tuple
        ``(columns, layout_names, report)``: ``columns`` is a dict of equal
        length arrays (``postcode``, ``key``, ``eastings``, ``northings``,
        ``latitude``, ``longitude``, ``quality``, ``introduced``,
        ``terminated`` and the :data:`CODE_FIELDS`), unsorted and possibly
        with repeated postcodes.

    Raises
    ------
    SourceError
        If a file is truncated or corrupt, a lone file has no known layout,
        or the source holds no postcode file at all.
    """
    report = ReadReport(max_examples=max_examples)
    parts = []
    names = set()
    for name, opener, in_container in _members(path):
        try:
            found = detect(_first_line(opener))
        except (EOFError, OSError, zlib.error, zipfile.BadZipFile, pd.errors.ParserError) as exc:
            raise SourceError(f"{name}: cannot be read ({exc})") from None
        if found is None:
            if in_container:
                report.skipped.append(f"{name}: not a postcode file of a known layout")
                continue
            known = ", ".join(layout["name"] for layout in layouts())
            raise SourceError(f"{name}: not a known postcode layout (known: {known})")
        layout, mapping = found
        names.add(layout["name"])
        entry = {"path": name, "layout": layout["name"], "rows": 0, "rejected": 0, "no_location": 0,
                 "terminated": 0, "by_reason": {}, "examples": []}
        report.files.append(entry)
        options = dict(dtype=str, keep_default_na=False, na_filter=False, chunksize=chunk_rows,
                       encoding="utf-8-sig", on_bad_lines="error")
        if layout["header"]:
            options.update(header=0, usecols=sorted(set(mapping.values())))
            line_no = 2
        else:
            options.update(header=None, names=layout["columns"])
            line_no = 1
        try:
            with opener() as stream, pd.read_csv(stream, **options) as reader:
                for chunk in reader:
                    parts.append(_chunk_arrays(chunk, layout, mapping, line_no, entry, max_examples))
                    line_no += len(chunk)
                    if progress:
                        progress(len(chunk))
        except (EOFError, zlib.error, zipfile.BadZipFile, gzip.BadGzipFile) as exc:
            raise SourceError(f"{name} is truncated or corrupt ({type(exc).__name__}: {exc}); "
                              "nothing was changed") from None
        except pd.errors.ParserError as exc:
            raise SourceError(f"{name}: malformed CSV ({exc}); nothing was changed") from None
        except UnicodeDecodeError as exc:
            raise SourceError(f"{name}: not UTF-8 text ({exc}); nothing was changed") from None
        if echo:
            echo(f"read {name}: {entry['rows']:,} rows ({layout['name']})")
    if not report.files:
        raise SourceError(f"{path}: holds no postcode file of a known layout")
    if not parts:
        return {}, sorted(names), report
    columns = {field: np.concatenate([p[field] for p in parts]) for field in parts[0]}
    return columns, sorted(names), report
