"""Reading ahead: crime files in blocks of whole lines, and chunks read in a worker thread.

:func:`csv_blocks` cuts the body of a CSV into blocks of whole lines for the
fast path of :mod:`crimemap.io.policeuk_arrow`, handing each block it cannot
take to the careful reader of :mod:`crimemap.io.crimes`. :class:`Prefetch`
is what :func:`crimemap.io.crimes.read_points` returns: its chunks, each read
while the caller works on the one before.
"""

import queue
import threading

from crimemap.io.crimes import PIECE_BYTES


def csv_block_bytes(block_rows):
    """Bytes per block of the fast path: about ``block_rows`` rows of a police.uk CSV, 1 to 64 MiB."""
    return min(64 << 20, max(PIECE_BYTES, block_rows * 128))


def csv_blocks(reader, src, body, fast, block_rows):
    """The body of a CSV in blocks of whole lines, each parsed by ``fast`` or, failing that, by ``reader``.

    See :func:`crimemap.io.crimes.csv_records`, which calls this with its
    ``_CsvBody`` reader, the open :class:`~crimemap.io.crimes.ByteSource` and the
    body bytes read so far.
    """
    block_bytes = csv_block_bytes(block_rows)
    pending, size, line_no, eof = [body], len(body), 2, False
    want = block_bytes
    while True:
        while not eof and size < want:
            piece = src.read(PIECE_BYTES)
            if not piece:
                eof = True
                break
            pending.append(piece)
            size += len(piece)
        data = b"".join(pending)
        rest = b""
        if not eof:
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # no line ends within the block yet: read on
                pending, want = [data], size + block_bytes
                continue
            data, rest = data[:cut], data[cut:]
        want = block_bytes
        chunk = fast(data, line_no) if reader.encoding == "utf-8" and not (eof and src.broken) else None
        if chunk is not None:
            if len(chunk):
                yield chunk, None
            line_no += len(chunk)
        else:
            if eof and src.broken:
                data = reader.cut_broken_tail(data, line_no, src)
            nlines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
            frame, rows, carry = reader.parse(data, line_no, nlines, eof)
            if len(rows):
                yield frame, rows
            if carry is not None:
                rest = data[carry:] + rest
                line_no += data[:carry].count(b"\n")
                want = max(block_bytes, len(rest) + PIECE_BYTES)  # the carried record needs what follows
            else:
                line_no += nlines
        if eof and not rest:
            return
        pending, size = [rest], len(rest)


def take_lines(pieces, counts, n):
    """Split off the first ``n`` complete lines of ``pieces`` (newline counts in ``counts``)."""
    before = 0
    for k, count in enumerate(counts):
        if before + count >= n:
            piece, pos = pieces[k], -1
            for _ in range(n - before):
                pos = piece.find(b"\n", pos + 1)
            head = b"".join(pieces[:k]) + piece[:pos + 1]
            tail = piece[pos + 1:]
            return head, [tail, *pieces[k + 1:]], [count - (n - before), *counts[k + 1:]]
        before += count
    raise ValueError("fewer lines than asked for")  # callers check the total first



# read_points reads the next chunk in a worker thread while the caller works on
# the current one (pyarrow, zlib, numpy, pyproj and GEOS release the GIL, so
# the two overlap on two cores). False reads in the caller's thread.
PREFETCH = True


class Prefetch:
    """Iterate ``items`` in a worker thread, at most ``depth`` items ahead of the caller.

    The worker starts at the first ``next()``. An exception the worker meets is
    raised by the caller's ``next()``, in order, after the items before it.
    ``close()``, also called when the object is garbage collected (the worker
    holds no reference to it), stops the worker.
    """

    def __init__(self, items, depth=1):
        self._items = items
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = None
        self._done = False

    def __iter__(self):
        return self

    def start(self):
        """Start the worker now instead of at the first ``next()``; returns self."""
        if self._thread is None and not self._done:
            self._thread = threading.Thread(target=_work, args=(self._items, self._queue, self._stop),
                                            name="crimemap-read-ahead", daemon=True)
            self._items = None
            self._thread.start()
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        self.start()
        kind, value = self._queue.get()
        if kind == "item":
            return value
        self._done = True
        self._thread.join()
        if kind == "error":
            raise value
        raise StopIteration

    def close(self):
        """Stop the worker (the caller stopped iterating early)."""
        self._stop.set()
        self._done = True
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            while thread.is_alive():
                try:
                    self._queue.get(timeout=0.1)
                except queue.Empty:
                    pass

    def __del__(self):
        self.close()


def _work(items, out, stop):
    """The worker of :class:`Prefetch`: ``items`` into ``out`` until they end or ``stop`` is set."""
    def put(entry):
        while not stop.is_set():
            try:
                out.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        for item in items:
            if not put(("item", item)):
                return
        put(("end", None))
    except BaseException as exc:  # handed to the caller's thread, which raises it
        put(("error", exc))
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


def one_file_ahead(paths, open_file):
    """Yield ``(path, chunks)`` for each path; the next file starts reading while the caller works on this one.

    ``open_file(path)`` returns the chunks of one file, e.g. ``read_points(path)``;
    it is called for the next path (and its :class:`Prefetch` started) just before
    the current file's chunks are handed out, so a file's first chunk is ready when
    the caller gets to it. At most two files are open at once. An exception
    ``open_file`` raises for the next file is raised once the caller has finished
    with the current one, so files are reported in order.
    """
    def opened(path):
        try:
            chunks = open_file(path)
        except Exception as exc:  # raised in turn, below
            return path, None, exc
        start = getattr(chunks, "start", None)
        if start is not None:
            start()
        return path, chunks, None

    paths = iter(paths)
    ahead = next((opened(path) for path in paths), None)
    while ahead is not None:
        path, chunks, error = ahead
        if error is not None:
            raise error
        ahead = next((opened(path) for path in paths), None)
        try:
            yield path, chunks
        except GeneratorExit:  # the caller stopped early: stop the next file's worker too
            close = getattr(ahead[1], "close", None) if ahead is not None else None
            if close is not None:
                close()
            raise
