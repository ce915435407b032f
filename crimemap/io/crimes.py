"""Crime file readers: police.uk records (points) and Met wide files (counts).

This module is the public face: :func:`detect_format`, :func:`read_points`,
:func:`read_counts` and :class:`Rejects`. It also holds what both readers share:
opening a file (gzip by content, not by name), decoding it, and splitting a CSV
into records with their line numbers. The readers themselves live in
:mod:`crimemap.io.policeuk` and :mod:`crimemap.io.mps`; the layouts they read are
declared in ``crimemap/schemas/*.json``.
"""

import csv
import functools
import gzip
import io
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from crimemap.errors import BadInput

FORMATS = ("police-uk-csv", "police-uk-json", "mps-ward", "mps-borough", "mps-lsoa")
POINT_FORMATS = ("police-uk-csv", "police-uk-json")
COUNT_FORMATS = ("mps-ward", "mps-borough", "mps-lsoa")

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"
MAX_EXAMPLES = 20
SNIFF_BYTES = 64 * 1024
PIECE_BYTES = 1 << 20
MAX_HEADER_BYTES = 1 << 20
# A quoted field may hold a line break; police.uk never writes one, so a record
# spanning more lines than this is an unterminated quote, not a long field.
MAX_RECORD_LINES = 20
_BOM = b"\xef\xbb\xbf"
_EXPECTED = ("a police.uk street CSV (Crime ID, Month, Falls within, Longitude, Latitude, ..., Crime type), "
             "police.uk API JSON or JSON Lines (objects with category, location, month), or an MPS wide CSV "
             "(MajorText, MinorText with WardCode or BoroughName, or LSOA Code, Major Category, ...; "
             "months as YYYYMM columns)")


class Rejects:
    """Rows a reader refused, counted by reason, plus notes about whole files.

    One instance may be shared by several reads. ``row`` is the 1-based line
    number for CSV (the header is line 1) and the record number for JSON.

    Attributes
    ----------
    count : int
        Rows rejected in total.
    by_reason : dict of str to int
        Short, stable reason (e.g. ``"non-numeric Longitude"``) to count.
    examples : list of (int, str)
        The first 20 rejects: row and reason with detail.
    notes : list of str
        File-level notes, e.g. ``"x.csv: decoded as Windows-1252 ..."``.
    """

    def __init__(self):
        self.count = 0
        self.by_reason = {}
        self.examples = []
        self.notes = []

    def add(self, row, reason, detail=""):
        """Count one rejected row; ``detail`` (optional) goes into ``examples`` only."""
        self.count += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append((int(row), f"{reason}: {detail}" if detail else reason))

    def note(self, message):
        """Record a file-level note once."""
        if message not in self.notes:
            self.notes.append(message)

    def __repr__(self):
        return f"Rejects(count={self.count}, by_reason={self.by_reason!r}, notes={self.notes!r})"


@functools.lru_cache(maxsize=None)
def load_schema(name):
    """Return a declared layout from ``crimemap/schemas/<name>`` (parsed once)."""
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


def norm(text):
    """Header/label key: case-folded, runs of whitespace collapsed."""
    return " ".join(str(text).split()).casefold()


class ByteSource:
    """The bytes of a file, gunzipped when its content is gzip (whatever its name).

    A truncated or corrupt gzip stream ends the data instead of raising;
    ``broken`` then says why, and the reader reports it as a reject.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.name = self.path.name
        self.broken = None
        self.broken_detail = ""
        try:
            self._raw = open(self.path, "rb")
        except OSError as exc:
            raise BadInput(f"{self.name}: cannot be opened: {exc.strerror or exc}") from None
        magic = self._raw.read(2)
        self._raw.seek(0)
        self.gzip = magic == b"\x1f\x8b"
        self._fh = gzip.GzipFile(fileobj=self._raw, mode="rb") if self.gzip else self._raw

    def read(self, size=PIECE_BYTES):
        """Up to ``size`` bytes; ``b""`` at the end or once the stream is broken."""
        if self.broken:
            return b""
        try:
            # read1: a plain read() of a gzip stream drops what it had decoded when it hits a truncated end.
            return self._fh.read1(size) if self.gzip else self._fh.read(size)
        except EOFError:
            self.broken = "truncated gzip stream"
        except (OSError, zlib.error) as exc:
            self.broken = "corrupt gzip stream" if self.gzip else "read error"
            self.broken_detail = str(exc)
        return b""

    def close(self):
        if self._fh is not self._raw:
            self._fh.close()
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _text(data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _check_text(head, name):
    """Refuse what cannot be a text file we read, with a message saying what it is."""
    if not head.lstrip(_BOM).strip():
        raise BadInput(f"{name} is empty: expected {_EXPECTED}")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BadInput(f"{name} is UTF-16 text; save it as UTF-8 (or Windows-1252) CSV or JSON")
    if head.startswith(b"PK\x03\x04"):
        raise BadInput(f"{name} is a ZIP archive (a .zip or .xlsx); extract or export the CSV first")
    control = sum(head.count(bytes([b])) for b in range(32) if b not in (9, 10, 13))
    if b"\x00" in head or control > len(head) // 100:
        raise BadInput(f"{name} is a binary file, not text: expected {_EXPECTED}")


def sniff(path):
    """Return the first 64 KiB of a file's content, refusing an empty, binary or unreadable file."""
    name = Path(path).name
    with ByteSource(path) as src:
        head = src.read(SNIFF_BYTES)
        while len(head) < SNIFF_BYTES and (more := src.read(SNIFF_BYTES - len(head))):
            head += more
        if not head and src.broken:
            raise BadInput(f"{name}: {src.broken}, nothing could be read")
    _check_text(head, name)
    return head


def read_csv_header(path):
    """Return the header names of a CSV file (BOM and line ending stripped).

    Raises
    ------
    BadInput
        The file is empty, binary, or its first line is not a CSV header.
    """
    name = Path(path).name
    with ByteSource(path) as src:
        buf = b""
        while b"\n" not in buf and len(buf) < MAX_HEADER_BYTES and (piece := src.read(SNIFF_BYTES)):
            buf += piece
    _check_text(buf[:SNIFF_BYTES], name)
    if b"\n" not in buf and len(buf) >= MAX_HEADER_BYTES:
        raise BadInput(f"{name}: first line is over {MAX_HEADER_BYTES} bytes long, so it is not a CSV header")
    line = buf.split(b"\n", 1)[0]
    text = _text(line[len(_BOM):] if line.startswith(_BOM) else line)
    return [field.strip() for field in next(csv.reader([text.rstrip("\r")]), [])]


def resolve_columns(header, wanted, required, name, what):
    """Find each wanted field's column position by its declared header names.

    Parameters
    ----------
    header : list of str
    wanted : dict of str to list of str
        Field to the header spellings that may carry it.
    required : iterable of str
        Fields the file must have.
    name, what : str
        File name and a description of the format, for the error message.

    Returns
    -------
    dict of str to int
        Position of every field found (missing optional fields are absent).

    Raises
    ------
    BadInput
        A required column is missing; the message names it and lists the file's columns.
    """
    position = {}
    keys = [norm(h) for h in header]
    for field, spellings in wanted.items():
        for spelling in spellings:
            if norm(spelling) in keys:
                position[field] = keys.index(norm(spelling))
                break
    missing = [wanted[f][0] for f in required if f not in position]
    if missing:
        listed = ", ".join(repr(m) for m in missing)
        raise BadInput(f"{name}: missing required column{'s' if len(missing) > 1 else ''} {listed} for {what}; "
                       f"the file has: {', '.join(header) or '(no columns)'}")
    return position


def csv_records(path, ncol, usecols, block_rows, rejects, fast=None):
    """Yield ``(frame, source_rows)`` for the body of a CSV file, block by block.

    ``frame`` has one ``str`` column per position in ``usecols`` (named by
    position); ``source_rows`` holds each record's 1-based line number. Broken
    records (wrong field count, unterminated quote) and a truncated gzip tail
    go to ``rejects``; blank lines are skipped. At most ``block_rows`` lines
    are held at once, so memory stays bounded.

    ``fast``, when given, is tried first on each block of whole lines (about
    ``block_rows * 128`` bytes): called with the block's bytes and the line
    number of its first line, it returns the block's finished chunk (one row
    per line, every row clean), or None, and then the block is read here as
    without it. A chunk it returns is yielded as ``(chunk, None)``.
    """
    from crimemap.io.blocks import csv_blocks, take_lines  # blocks imports this module

    reader = _CsvBody(Path(path).name, ncol, usecols, rejects)
    block_rows = max(int(block_rows), 4 * MAX_RECORD_LINES)
    with ByteSource(path) as src:
        first = src.read(PIECE_BYTES)
        header_end = first.find(b"\n")
        while header_end < 0:
            more = src.read(PIECE_BYTES)
            if not more:
                break
            first += more
            header_end = first.find(b"\n")
        if first.startswith(_BOM):
            rejects.note(f"{reader.name}: UTF-8 byte order mark (BOM) removed")
        if header_end < 0:
            if src.broken:
                reader.cut_broken_tail(b"", 2, src)
            return
        body = first[header_end + 1:]
        if fast is not None:
            yield from csv_blocks(reader, src, body, fast, block_rows)
            return
        pending, counts = [body], [body.count(b"\n")]
        line_no, eof = 2, False
        while True:
            while not eof and sum(counts) < block_rows:
                piece = src.read(PIECE_BYTES)
                if not piece:
                    eof = True
                    break
                pending.append(piece)
                counts.append(piece.count(b"\n"))
            if sum(counts) > block_rows or (sum(counts) == block_rows and not eof):
                data, pending, counts = take_lines(pending, counts, block_rows)
                nlines, final = block_rows, False
            else:
                data = b"".join(pending)
                if src.broken:
                    data = reader.cut_broken_tail(data, line_no, src)
                nlines = sum(counts) + (1 if data and not data.endswith(b"\n") else 0)
                pending, counts, final = [], [], True
            frame, rows, carry = reader.parse(data, line_no, nlines, final)
            if len(rows):
                yield frame, rows
            if final and carry is None:
                return
            if carry is not None:
                pending.insert(0, data[carry:])
                counts.insert(0, data[carry:].count(b"\n"))
                data = data[:carry]
            line_no += data.count(b"\n") if carry is not None else nlines


class _CsvBody:
    """Splits CSV bytes into records: a fast check for clean blocks, a careful path otherwise."""

    def __init__(self, name, ncol, usecols, rejects):
        self.name, self.ncol, self.usecols, self.rejects = name, ncol, list(usecols), rejects
        self.encoding = "utf-8"

    def cut_broken_tail(self, data, line_no, src):
        # The last line of a truncated stream is cut short: refuse it rather than load half a row.
        end = data.rfind(b"\n") + 1
        cut_line = line_no + data.count(b"\n")
        detail = src.broken_detail or "the file ends early; rows after this line are missing"
        self.rejects.add(cut_line, src.broken, detail)
        self.rejects.note(f"{self.name}: {src.broken}: rows up to line {cut_line - 1} were read, "
                          "the rest of the file is missing")
        return data[:end]

    def parse(self, data, line_no, nlines, final):
        if not nlines:
            return None, np.empty(0, np.int64), None
        # A block is clean when nothing is quoted and the commas add up to exactly
        # ncol - 1 per line: then a short or blank line would have to be balanced by
        # a long one, which pandas refuses, and the careful path then finds both.
        if b'"' not in data and data.count(b",") == (self.ncol - 1) * nlines:
            frame = self._pandas(data)
            if frame is not None and len(frame) == nlines:
                return frame, np.arange(line_no, line_no + nlines, dtype=np.int64), None
        return self._careful(data, line_no, final)

    def _pandas(self, data):
        while True:
            try:
                return pd.read_csv(io.BytesIO(data), header=None, names=list(range(self.ncol)), usecols=self.usecols,
                                   dtype=str, na_filter=False, engine="c", encoding=self.encoding,
                                   skip_blank_lines=False, on_bad_lines="error", low_memory=False)
            except UnicodeDecodeError:
                self.encoding = {"utf-8": "cp1252", "cp1252": "latin-1"}[self.encoding]
                label = {"cp1252": "Windows-1252", "latin-1": "Latin-1"}[self.encoding]
                self.rejects.note(f"{self.name}: not valid UTF-8, decoded as {label}")
            except (pd.errors.ParserError, pd.errors.EmptyDataError):
                return None

    def _careful(self, data, line_no, final):
        arr = np.frombuffer(data, np.uint8)
        ends = np.flatnonzero(arr == 10)
        if len(data) and data[-1] != 10:
            ends = np.append(ends, len(data))
        starts = np.concatenate(([0], ends[:-1] + 1))

        comma_at, quote_at, return_at = (np.flatnonzero(arr == byte) for byte in (44, 34, 13))

        def per_line(at):
            return np.searchsorted(at, ends) - np.searchsorted(at, starts)

        commas, quotes = per_line(comma_at), per_line(quote_at)
        blank = (ends - starts - per_line(return_at)) == 0
        # A comma with an odd number of quotes before it on its line is inside a quoted
        # field. Counting so can only see fewer fields than there are (a stray quote
        # mid-field), and pandas then refuses the extra ones, so it is safe as a first pass.
        line_of = np.searchsorted(ends, comma_at)
        inside = (np.searchsorted(quote_at, comma_at) - np.searchsorted(quote_at, starts)[line_of]) % 2 == 1
        separators = commas - np.bincount(line_of[inside], minlength=len(ends))
        is_start = ~blank & (quotes % 2 == 0) & (separators == self.ncol - 1)
        last = np.arange(len(ends))
        carry = None
        skip_until = -1
        for i in np.flatnonzero(~is_start & ~blank).tolist():
            if i <= skip_until:
                continue
            where = line_no + i
            if quotes[i] == 0:
                self._wrong_fields(where, int(commas[i]) + 1)
                continue
            if quotes[i] % 2 == 0:
                fields = self._fields(data[starts[i]:ends[i]])
                if fields == self.ncol:
                    is_start[i] = True
                elif fields is None:
                    self.rejects.add(where, "unreadable record", "the quoting cannot be parsed")
                else:
                    self._wrong_fields(where, fields)
                continue
            j, total = i, int(quotes[i])
            while total % 2 and j + 1 < len(ends) and j - i < MAX_RECORD_LINES:
                j += 1
                total += int(quotes[j])
            if total % 2 and not final and j + 1 >= len(ends) and j - i < MAX_RECORD_LINES:
                carry = i  # the record may go on in the next block
                break
            fields = self._fields(data[starts[i]:ends[j]]) if total % 2 == 0 else None
            if fields == self.ncol:
                is_start[i], last[i] = True, j
                is_start[i + 1:j + 1] = False
                skip_until = j
            elif fields is None or j > i:
                self.rejects.add(where, "unterminated quote", "a quoted field does not close on this line")
            else:
                self._wrong_fields(where, fields)
        if carry is not None:
            is_start[carry:] = False
            carry = int(starts[carry])
        order = np.flatnonzero(is_start)
        if not len(order):
            return None, np.empty(0, np.int64), carry
        lasts = last[order]
        breaks = np.flatnonzero(order[1:] != lasts[:-1] + 1) + 1
        run_first = np.concatenate(([0], breaks))
        run_last = np.concatenate((breaks - 1, [len(order) - 1]))
        text = b"".join(data[starts[order[a]]:ends[lasts[b]]] + b"\n" for a, b in zip(run_first, run_last))
        frame = self._pandas(text)
        if frame is None or len(frame) != len(order):
            frame, order = self._python(data, starts, ends, order, lasts, line_no)
        return frame, line_no + order, carry

    def _fields(self, chunk):
        text = chunk.decode(self.encoding, errors="replace")
        try:
            rows = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error:
            return None
        return len(rows[0]) if len(rows) == 1 else None

    def _wrong_fields(self, where, found):
        self.rejects.add(where, "wrong number of fields", f"expected {self.ncol} fields, found {found}")

    def _python(self, data, starts, ends, order, lasts, line_no):
        # Last resort for records pandas splits differently (a stray carriage return inside a field).
        rows, keep = [], []
        for k, (a, b) in enumerate(zip(order.tolist(), lasts.tolist())):
            text = data[starts[a]:ends[b]].decode(self.encoding, errors="replace")
            try:
                parsed = list(csv.reader(io.StringIO(text, newline="")))
            except csv.Error as exc:
                self.rejects.add(line_no + a, "unreadable record", str(exc))
                continue
            if len(parsed) != 1 or len(parsed[0]) != self.ncol:
                self._wrong_fields(line_no + a, sum(len(p) for p in parsed))
                continue
            rows.append([parsed[0][c].rstrip("\r") if c == self.ncol - 1 else parsed[0][c] for c in self.usecols])
            keep.append(k)
        frame = pd.DataFrame(rows, columns=self.usecols, dtype="str") if rows else None
        return frame, order[np.array(keep, dtype=np.int64)]


def _csv_format(header, name):
    keys = {norm(h) for h in header}
    street = load_schema("police_uk_street.json")["csv"]["columns"]
    scores = {"police-uk-csv": _score(street.values(), keys, lambda spec: spec["headers"])}
    required = {norm(spec["headers"][0]) for spec in street.values() if spec["required"]}
    wide = load_schema("mps_wide.json")
    month = re.compile(wide["month_column_pattern"])
    if any(month.match(h) for h in header):
        for fmt, spec in wide["formats"].items():
            scores[fmt] = _score(spec["columns"].values(), keys, lambda spellings: spellings)
    # Most matching columns first: a ward file missing WardCode still matches the ward
    # layout on more columns than the borough one, so it fails on the missing column.
    best = max(scores, key=lambda f: (scores[f][1], scores[f][0]))
    if scores[best][0] >= 0.5 or required <= keys:
        return best if scores[best][0] >= 0.5 else "police-uk-csv"
    shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
    raise BadInput(f"{name}: unknown format: its first line has the columns {shown or '(none)'}; expected {_EXPECTED}")


def _score(fields, keys, spellings_of):
    fields = list(fields)
    hits = sum(any(norm(s) in keys for s in spellings_of(f)) for f in fields)
    return hits / len(fields), hits


def detect_format(path):
    """Tell which crime file format a file holds, from its content.

    The name is not trusted: the first 64 KiB are read (gunzipped when the
    content is gzip) and matched against the declared layouts.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Raises
    ------
    BadInput
        The file is empty, unreadable, binary, or in no known format; the
        message names the file and what was expected.
    """
    name = Path(path).name
    head = sniff(path)
    head = head[len(_BOM):] if head.startswith(_BOM) else head
    text = _text(head)  # a character cut at the 64 KiB limit only garbles what detection ignores
    if text.lstrip().startswith(("[", "{")):
        from crimemap.io import policeuk  # see read_points

        policeuk.check_api_json(text, name)
        return "police-uk-json"
    first = text.split("\n", 1)[0].rstrip("\r")
    return _csv_format([f.strip() for f in next(csv.reader([first]), [])], name)


def _formats_for(path, fmt, allowed, caller, other):
    if fmt is None:
        fmt = detect_format(path)
        if fmt not in allowed:
            raise BadInput(f"{Path(path).name} is a {fmt} file; read it with {other}, not {caller}")
    elif fmt not in allowed:
        raise ValueError(f"{caller}: fmt must be one of {', '.join(allowed)} (or None to detect), not {fmt!r}")
    return fmt


def read_points(path, fmt=None, chunk_rows=200_000, rejects=None):
    """Stream police.uk crime records as data frames of at most ``chunk_rows`` rows.

    Parameters
    ----------
    path : str or Path
        A police.uk street CSV, or API JSON (array or JSON Lines); ``.gz`` content is read transparently.
    fmt : {"police-uk-csv", "police-uk-json"}, optional
        Skip detection. ``None`` detects it from the content.
    chunk_rows : int
        Largest chunk; memory stays bounded whatever the file's size.
    rejects : Rejects, optional
        Collects refused rows and file notes; a fresh one is used when omitted.

    Returns
    -------
    iterator of pandas.DataFrame
        Columns and dtypes as declared in ``schemas/police_uk_street.json``:
        month, crime_id, api_id (Int64), category (slug), crime_type (label), force (slug),
        lon, lat (float64; NaN for a crime published without a location, which is
        not a rejection), location, street_id (Int64), lsoa_code, lsoa_name, outcome,
        outcome_month, context, location_type, location_subtype, source_row (int64).
        At least one chunk is yielded, empty when no row is valid.

    Raises
    ------
    BadInput
        At call time, for a whole-file problem: empty, unreadable, unknown format,
        a count file, or a required column missing.
    ValueError
        ``fmt`` is not a point format, or ``chunk_rows`` is not a positive integer.
    """
    if not isinstance(chunk_rows, (int, np.integer)) or isinstance(chunk_rows, bool) or chunk_rows < 1:
        raise ValueError(f"read_points: chunk_rows must be a positive integer, not {chunk_rows!r}")
    fmt = _formats_for(path, fmt, POINT_FORMATS, "read_points", "read_counts")
    # Imported here, not at the top: policeuk imports this module's shared helpers.
    from crimemap.io import policeuk

    chunks = policeuk.read(path, fmt, int(chunk_rows), rejects if rejects is not None else Rejects())
    from crimemap.io.blocks import PREFETCH, Prefetch  # see above

    return Prefetch(chunks) if PREFETCH else chunks


def read_counts(path, fmt=None, rejects=None):
    """Read a Met "MPS Recorded Crime: Geographic Breakdown" wide file as a long table.

    Parameters
    ----------
    path : str or Path
        Ward, borough or LSOA level wide CSV (``.gz`` content read transparently).
    fmt : {"mps-ward", "mps-borough", "mps-lsoa"}, optional
        Skip detection.
    rejects : Rejects, optional
        Collects refused rows (a negative or non-integer count refuses its whole row).

    Returns
    -------
    pandas.DataFrame
        Columns level, code, name, borough_code, borough_name, major, minor, month
        (``YYYY-MM``), count (int64), one row per non-zero cell. ``attrs["areas"]``
        is the sorted list of every area in the file (its code, or its name when it
        has no code) and ``attrs["months"]`` the sorted months, so a missing row
        means zero crimes only within that coverage.

    Raises
    ------
    BadInput
        For a whole-file problem: empty, unreadable, unknown format, a point file,
        a required column missing, no month columns.
    ValueError
        ``fmt`` is not a count format.
    """
    fmt = _formats_for(path, fmt, COUNT_FORMATS, "read_counts", "read_points")
    from crimemap.io import mps  # see read_points

    return mps.read(path, fmt, rejects if rejects is not None else Rejects())
