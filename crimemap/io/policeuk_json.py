"""police.uk API JSON and JSON Lines: records to raw columns, a block at a time.

The parsing half of the police.uk reader; :mod:`crimemap.io.policeuk` validates
the columns and builds the chunks, as it does for the street CSV. JSON Lines
are parsed with orjson a line at a time, a block of lines together, and the
fields declared in ``schemas/police_uk_street.json`` are pulled out of the whole
block one object level at a time (``operator.itemgetter`` over the block, a
comprehension where a record lacks a key) rather than record by record. JSON
arrays are cut into records by the standard library's incremental decoder and
then go through the same blocks. Checks that need the record itself are made
here and handed on, with the record number, as ``prior`` problems: invalid
JSON, a record that is not an object, a non-integer or duplicate id, and a
missing required field.

A line orjson refuses is parsed again with the standard library, so what is
accepted, the Windows-1252 fallback and the "invalid JSON" detail are the
standard library's; so is a block where orjson may have read an integer beyond
64 bits as a float (:func:`_maybe_inexact`).
"""

import array
import codecs
import functools
import itertools
import json
import operator

import numpy as np
import orjson
import pandas as pd

from crimemap.errors import BadInput
from crimemap.io.crimes import ByteSource, PIECE_BYTES, load_schema

MAX_JSON_RECORD_CHARS = 1 << 20
# Records parsed and pulled apart together. Small, so that a block's dicts are
# still in the CPU cache when they are pulled apart and die before the cycle
# collector moves them to its oldest generation (where every full collection
# would walk them again); big enough that the per-block cost disappears
# (64 to 256 measure the same).
BLOCK_RECORDS = 128
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_BAD = object()  # an id that is not an integer
_NONE = type(None)
_ONE_PER_CRIME = {"crime_id"}  # fields whose values hardly ever repeat: not worth sharing
_MAX_SHARED = 4096  # distinct values remembered per field


def raw_chunks(path, chunk_rows, rejects, fast=None):
    """Yield the records of a police.uk API JSON file as raw columns, ``chunk_rows`` at a time.

    Parameters
    ----------
    path : Path
        A JSON array (or several, one after another) or JSON Lines; gzip content is read transparently.
    chunk_rows : int
        Records per chunk (the last one may hold fewer).
    rejects : crimemap.io.crimes.Rejects
        Gets the problems of the file itself (a truncated gzip stream, an unreadable
        array); problems of single records are returned in ``prior`` instead.

    Yields
    ------
    raw : dict of str to pandas.Series or pandas.arrays.IntegerArray
        One entry per declared field, plus ``force``: text as object Series of
        ``str`` (missing values are ``""``), ``api_id`` and ``street_id`` as ``Int64``.
        A record with a problem keeps its place with empty values.
    rows : numpy.ndarray
        int64 record numbers (the line number for JSON Lines).
    prior : dict of int to (str, str)
        Position in the chunk to ``(reason, detail)`` for refused records.

    With ``fast`` (JSON Lines only), blocks of whole lines are offered to
    ``fast(data, first_line_number, seen_ids)`` first; a finished chunk it
    returns (one row per line) is yielded as it is (a DataFrame, not a tuple),
    and a block it refuses (None) is read here as without it.
    """
    columns = _Columns(load_schema("police_uk_street.json")["api_json"])
    with ByteSource(path) as src:
        source = _open(src, path.name, rejects)
        if fast is not None and isinstance(source, _LineSource):
            yield from _fast_lines(source, columns, chunk_rows, fast)
            return
        # A block never crosses a chunk boundary, so file-level rejects found at the
        # end of the file are counted after the chunks before it, as records arrive.
        while (block := source.take(min(BLOCK_RECORDS, chunk_rows - columns.size))) is not None:
            columns.add(*block)
            if columns.size >= chunk_rows:
                yield columns.flush()
    if columns.size:
        yield columns.flush()


def _careful(source, columns, chunk_rows):
    """Feed ``source``'s records to ``columns``; yield each chunk as it fills (the last one stays)."""
    while (block := source.take(min(BLOCK_RECORDS, chunk_rows - columns.size))) is not None:
        columns.add(*block)
        if columns.size >= chunk_rows:
            yield columns.flush()


class _Bytes:
    """A block already in memory, read like a :class:`ByteSource` that has ended."""

    broken = None

    def __init__(self, data=b""):
        self.data = data

    def read(self, size=PIECE_BYTES):
        data, self.data = self.data, b""
        return data


def _raw_blocks(src, pending, block_bytes, first_bytes=None):
    """Yield ``(bytes, eof)``: ``src`` in blocks of whole lines of about ``block_bytes``, ``pending`` first.

    Each block ends at a line end, except the last (``eof`` True), which holds
    the rest of the data. The first block is only ``first_bytes`` (when given),
    so that the caller's first chunk is ready sooner while the later, larger
    blocks keep the per-block costs low. Cutting here, in the worker thread,
    copies each byte once (the join of the pieces).
    """
    eof, want = False, first_bytes or block_bytes
    parts, size = [pending], len(pending)
    while True:
        while not eof and size < want:
            piece = src.read(PIECE_BYTES)
            if not piece:
                eof = True
                break
            parts.append(piece)
            size += len(piece)
        if eof:
            yield b"".join(parts), True
            return
        # The last line end, searched from the last piece back.
        k = next((k for k in range(len(parts) - 1, -1, -1) if b"\n" in parts[k]), None)
        if k is None:  # no line ends within the block yet: read on
            want = size + block_bytes
            continue
        cut = parts[k].rfind(b"\n") + 1
        rest = [parts[k][cut:], *parts[k + 1:]]
        yield b"".join([*parts[:k], parts[k][:cut]]), False
        parts, size, want = rest, sum(map(len, rest)), block_bytes


def _fast_lines(source, columns, chunk_rows, fast):
    """JSON Lines in blocks of whole lines: each taken by ``fast`` or, failing that, read record by record.

    The next block is read (and gunzipped) in a worker thread while this one is parsed.
    """
    from crimemap.io.blocks import Prefetch

    src, number = source.src, 0
    # An API record is ~360 bytes; blocks of a few MB let reading overlap parsing,
    # and a first block of 1 MB (~2,800 records) gets the caller going sooner.
    block_bytes = min(8 << 20, max(PIECE_BYTES, chunk_rows * 512))
    raw = Prefetch(_raw_blocks(src, source.pending, block_bytes, first_bytes=min(block_bytes, 1 << 20)))
    for block, eof in raw:
        if eof and src.broken:  # the careful reader reports the truncated tail, as without the fast path
            careful = _LineSource(src, block, source.name, source.rejects)
            careful.number = number
            yield from _careful(careful, columns, chunk_rows)
            break
        if not block:
            continue
        chunk = fast(block, number + 1, columns.seen)
        if chunk is None:
            careful = _LineSource(_Bytes(), block, source.name, source.rejects)
            careful.number = number
            yield from _careful(careful, columns, chunk_rows)
            number += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        else:
            if columns.size:
                yield columns.flush()
            yield chunk
            number += len(chunk)
    if columns.size:
        yield columns.flush()


def _open(src, name, rejects):
    first = src.read(PIECE_BYTES)
    while first and not first.strip() and (more := src.read(PIECE_BYTES)):
        first += more
    if first.startswith(b"\xef\xbb\xbf"):
        rejects.note(f"{name}: UTF-8 byte order mark (BOM) removed")
        first = first[3:]
    start = first.lstrip()[:1]
    if not start and not src.broken:
        raise BadInput(f"{name} is empty: expected police.uk API JSON")
    if start == b"[":
        return _ArraySource(_json_arrays(src, first, name, rejects))
    return _LineSource(src, first, name, rejects)


class _LineSource:
    """JSON Lines, one piece of the file at a time; a record's number is its line number."""

    def __init__(self, src, first, name, rejects):
        self.src, self.pending, self.name, self.rejects = src, first, name, rejects
        self.number = 0  # lines split off so far, blank ones included
        self.lines, self.numbers, self.pos = [], [], 0
        self.done = False

    def take(self, limit):
        """Up to ``limit`` records as ``(numbers, records, problems, exact)``, or None after the last."""
        while self.pos >= len(self.lines):
            if self.done:
                return None
            self._split_next_piece()
        lines = self.lines[self.pos:self.pos + limit]
        numbers = self.numbers[self.pos:self.pos + limit]
        self.pos += len(lines)
        exact = functools.partial(self._stdlib, numbers, lines)
        try:
            return numbers, [orjson.loads(line) for line in lines], None, exact
        except ValueError:
            return (*self._one_by_one(numbers, lines), exact)

    def _split_next_piece(self):
        src = self.src
        piece = src.read(PIECE_BYTES)
        lines = (self.pending + piece).split(b"\n")
        self.pending = lines.pop() if piece or src.broken else b""
        base, self.number = self.number, self.number + len(lines)
        kept = [line for line in lines if line.strip()]
        if len(kept) == len(lines):
            numbers = range(base + 1, self.number + 1)
        else:
            numbers = [base + 1 + i for i, line in enumerate(lines) if line.strip()]
        self.lines, self.numbers, self.pos = kept, numbers, 0
        if not piece:
            self.done = True
            if src.broken:
                number = self.number
                self.rejects.add(number + 1, src.broken, "the file ends early; records after this line are missing")
                self.rejects.note(f"{self.name}: {src.broken}: {number:,} lines were read, the rest of the file "
                                  "is missing")

    def _one_by_one(self, numbers, lines):
        records, problems = [], []
        for line in lines:
            try:
                record, problem = orjson.loads(line), None
            except ValueError:
                record, problem = _stdlib_line(line, self.name, self.rejects)
            records.append(record)
            problems.append(problem)
        return numbers, records, problems

    def _stdlib(self, numbers, lines):
        """The block as the standard library reads it (exact integers of any size)."""
        records, problems = zip(*(_stdlib_line(line, self.name, self.rejects) for line in lines))
        problems = list(problems)
        return numbers, list(records), None if problems.count(None) == len(problems) else problems, None


def _stdlib_line(line, name, rejects):
    try:
        return json.loads(line), None
    except UnicodeDecodeError:
        rejects.note(f"{name}: not valid UTF-8, decoded as Windows-1252")
        try:
            return json.loads(line.decode("cp1252", errors="replace")), None
        except ValueError as exc:
            return None, ("invalid JSON", str(exc))
    except ValueError as exc:
        return None, ("invalid JSON", str(exc))


class _ArraySource:
    """JSON arrays: records as the incremental parser in :func:`_json_arrays` finds them."""

    def __init__(self, items):
        self.items = items

    def take(self, limit):
        """Up to ``limit`` records as ``(numbers, records, problems, None)``; None after the last."""
        got = list(itertools.islice(self.items, limit))  # islice pulls no record beyond the limit
        if not got:
            return None
        numbers, records, problems = (list(column) for column in zip(*got))
        return numbers, records, None if problems.count(None) == len(problems) else problems, None


class _Columns:
    """Raw column buffers of one chunk, filled a block of records at a time."""

    def __init__(self, api):
        self.paths = {field: tuple(path) for field, path in api["fields"].items()}
        self.required = [(self.paths[field], f"missing {self.paths[field][-1]}") for field in api["required"]]
        self.force_of = api["force_from_location_type"]
        self.text_fields = [f for f in self.paths if f not in ("api_id", "street_id")]
        # The keys to read from each object level: {(): [...], ("location",): [...], ...}.
        self.plan = {}
        for path in self.paths.values():
            for depth in range(len(path)):
                keys = self.plan.setdefault(path[:depth], [])
                if path[depth] not in keys:
                    keys.append(path[depth])
        self.seen = set()  # ids met so far in the file
        self.shared = {field: _Shared(field not in _ONE_PER_CRIME) for field in self.text_fields}
        self._reset()

    def _reset(self):
        self.buffer = {field: [] for field in (*self.text_fields, "force")}
        self.ids = {field: (array.array("q"), []) for field in ("api_id", "street_id")}
        self.rows = []  # record numbers: one range or list per block
        self.size = 0
        self.prior = {}

    def add(self, numbers, records, problems, exact):
        """Append one block of records.

        ``problems`` is None or one ``(reason, detail)`` or None per record.
        ``exact``, when given, returns the same four for the block as the standard
        library reads it: orjson reads an integer beyond 64 bits as a float, so
        a block where one may hide is read again that way.
        """
        why = {} if problems is None else {i: p for i, p in enumerate(problems) if p is not None}
        if why or set(map(type, records)) != {dict}:
            for i, record in enumerate(records):
                if i not in why and not isinstance(record, dict):
                    why[i] = ("record is not an object", f"found {type(record).__name__}")
            # A refused record keeps its place, with empty values, so that rejects stay in file order.
            records = [{} if i in why else record for i, record in enumerate(records)]
        found = self._pull(records)
        kinds = {path: set(map(type, found[path])) for path in self.paths.values()}
        if exact is not None and _maybe_inexact(found, kinds):
            return self.add(*exact())

        raw_ids = found[self.paths["api_id"]]
        api_ids, clean = _integers(raw_ids, kinds[self.paths["api_id"]])
        self._check_ids(api_ids, raw_ids, clean, why)
        for path, reason in self.required:
            column = found[path]
            if not all(column):  # quick: no None and no "" in the block (nor other empty values)
                for i, value in enumerate(column):
                    if i not in why and (value is None or value == ""):
                        why[i] = (reason, "")

        base = self.size
        self.size += len(records)
        self._add_ints("api_id", api_ids, clean, base)
        street_id = self.paths["street_id"]
        self._add_ints("street_id", *_integers(found[street_id], kinds[street_id]), base)
        buffer = self.buffer
        for field in self.text_fields:
            path = self.paths[field]
            buffer[field] += self.shared[field](_texts(found[path], kinds[path]))
        location_types = buffer["location_type"][-len(records):]
        if set(location_types).isdisjoint(self.force_of):
            buffer["force"] += [""] * len(records)
        else:
            buffer["force"] += [self.force_of.get(v, "") for v in location_types]
        self.rows.append(numbers)
        self.prior.update((base + i, problem) for i, problem in why.items())

    def _pull(self, records):
        """Every declared path's values for this block: {path: sequence}, None where absent."""
        found = {(): records}
        for parent, keys in self.plan.items():
            objects = found[parent]
            try:
                # One C call per object for all its keys; it fails on a non-object or a missing key.
                columns = list(zip(*map(operator.itemgetter(*keys), objects))) if len(keys) > 1 else \
                    [list(map(operator.itemgetter(keys[0]), objects))]
            except (KeyError, TypeError):
                columns = [_get(objects, key) for key in keys]
            for key, column in zip(keys, columns):
                found[(*parent, key)] = column
        return found

    def _add_ints(self, field, values, clean, base):
        numbers, missing = self.ids[field]
        if not clean:
            missing += [base + i for i, v in enumerate(values) if v is None or v is _BAD]
            values = [0 if v is None or v is _BAD else v for v in values]
        numbers += array.array("q", values)

    def _check_ids(self, api_ids, raw_ids, clean, why):
        seen = self.seen
        if clean and not why and seen.isdisjoint(raw_ids) and len(set(raw_ids)) == len(raw_ids):
            seen.update(raw_ids)
            return
        for i, (value, raw) in enumerate(zip(api_ids, raw_ids)):
            if i in why:
                continue
            if value is _BAD:
                why[i] = ("non-integer id", f"id {raw!r}")
            elif value is not None:
                if value in seen:
                    why[i] = ("duplicate id", f"id {value} appeared earlier in the file")
                seen.add(value)

    def flush(self):
        """Hand over the buffered records as ``(raw, rows, prior)`` and start a new chunk."""
        buffer = self.buffer
        # Plain object columns: the checks that follow are quicker on them, and the
        # output columns become ``str`` once, after the refused rows are dropped.
        raw = {field: pd.Series(np.fromiter(buffer[field], dtype=object, count=self.size), dtype=object, copy=False)
               for field in (*self.text_fields, "force")}
        for field, (numbers, missing) in self.ids.items():
            mask = np.zeros(len(numbers), dtype=bool)
            mask[missing] = True
            raw[field] = pd.arrays.IntegerArray(np.frombuffer(numbers, dtype=np.int64).copy(), mask)
        rows = np.concatenate([np.arange(r.start, r.stop) if isinstance(r, range) else np.asarray(r, dtype=np.int64)
                               for r in self.rows]) if self.rows else np.empty(0, dtype=np.int64)
        out = raw, rows.astype(np.int64, copy=False), self.prior
        self._reset()
        return out


def _get(objects, key):
    try:
        return [o.get(key) for o in objects]
    except AttributeError:  # of all JSON values, only an object has .get
        return [o.get(key) if isinstance(o, dict) else None for o in objects]


def _maybe_inexact(found, kinds):
    """Whether orjson may have read a value differently from the standard library.

    orjson reads an integer outside [-2**63, 2**64) as a float. In police.uk records
    every field is text or an int, so only a big float or an object or array in a
    field (whose JSON text is kept) sends the block to the standard library.
    """
    for path, types in kinds.items():
        if types & {dict, list}:
            return True
        if float in types and any(isinstance(v, float) and abs(v) >= _INT64_MAX for v in found[path]):
            return True
    return False


def _integers(values, kinds):
    """``(values, True)`` when each is an int64 (the usual case), else ``(each through _integer, False)``."""
    if kinds == {int} and _INT64_MIN <= min(values) and max(values) <= _INT64_MAX:
        return values, True
    return [_integer(v) for v in values], False


def _integer(value):
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return _BAD
    if isinstance(value, str) and value.strip().lstrip("-").isascii() and value.strip().lstrip("-").isdigit():
        try:
            value = int(value)
        except ValueError:  # "--1", or digits int() does not read, such as "²"
            return _BAD
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else _BAD
    return _BAD


def _texts(values, kinds):
    """Record values as text: None is "", an object or array its JSON, anything else ``str()``."""
    if kinds == {str}:
        return values
    if kinds == {str, _NONE} or kinds == {_NONE}:
        return ["" if v is None else v for v in values]
    return [v if isinstance(v, str) else "" if v is None else json.dumps(v) if isinstance(v, (dict, list))
            else str(v) for v in values]


class _Shared:
    """One str object per distinct value of a field, instead of one per record.

    orjson makes a new object for every value. Sharing them while the block is
    still in the CPU cache means that each later pass over a column (checks,
    building the frame, writing the store) reads a few objects again and again
    rather than one cold object per record, and a chunk takes far less memory.
    """

    def __init__(self, enabled):
        self.enabled = enabled
        self.cache = {}

    def __call__(self, texts):
        if not self.enabled or not any(texts):  # any(): stops at the first non-empty text
            return texts
        shared = list(map(self.cache.setdefault, texts, texts))
        if len(self.cache) > _MAX_SHARED:  # many distinct values: looking them up costs more than it saves
            self.enabled, self.cache = False, {}
        return shared


def _json_arrays(src, first, name, rejects):
    """Yield ``(record_number, record, problem)`` from one JSON array or several in a row."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    parser = json.JSONDecoder()
    text, pos, number, eof = decoder.decode(first), 0, 0, False
    depth = 0  # 0 = between arrays, 1 = inside one, expecting a record; 2 = after a record
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text) - 1 and not eof:
            piece = src.read(PIECE_BYTES)
            eof = not piece
            text = text[pos:] + decoder.decode(piece, final=eof)
            pos = 0
            continue
        if pos >= len(text):
            break
        char = text[pos]
        if depth == 0:
            if char != "[":
                rejects.add(number + 1, "invalid JSON", f"expected '[' but found {char!r}; rest of file skipped")
                break
            depth, pos = 1, pos + 1
            continue
        if char == "]":
            depth, pos = 0, pos + 1
            continue
        if depth == 2:
            if char != ",":
                rejects.add(number + 1, "invalid JSON", f"expected ',' or ']' after record {number}; "
                                                        "rest of file skipped")
                break
            depth, pos = 1, pos + 1
            continue
        try:
            record, end = parser.raw_decode(text, pos)
            if end >= len(text) and not eof:
                raise ValueError("record may continue in the next piece")
        except ValueError as exc:
            if not eof and len(text) - pos < MAX_JSON_RECORD_CHARS:
                piece = src.read(PIECE_BYTES)
                eof = not piece
                text = text[pos:] + decoder.decode(piece, final=eof)
                pos = 0
                continue
            number += 1
            if eof and src.broken:
                yield number, None, (src.broken, "the file ends early; records after this one are missing")
                rejects.note(f"{name}: {src.broken}: {number - 1:,} records were read, the rest is missing")
            else:
                yield number, None, ("invalid JSON", f"{exc}; rest of file skipped")
                rejects.note(f"{name}: JSON array unreadable after record {number - 1:,}; the rest was skipped")
            return
        number += 1
        yield number, record, None
        depth, pos = 2, end
    if src.broken:
        rejects.add(number + 1, src.broken, "the file ends early; records after this one are missing")
        rejects.note(f"{name}: {src.broken}: {number:,} records were read, the rest of the file is missing")
    elif depth != 0:
        rejects.add(number + 1, "unterminated JSON array", "the file ends before the closing ']'")
