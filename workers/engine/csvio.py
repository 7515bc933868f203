"""Byte-faithful archive CSV records: split a byte stream into raw records, parse, re-encode.

Every archive field is double-quoted, so a record boundary is a LF outside
quotes: quote parity (bytes.count) finds it without a Python loop per byte, and
in a valid file some boundaries can even be told from the bytes around them
alone (sure_boundary), which lets a correction cut a file into windows without
counting its quotes. Untouched records are never re-encoded: callers copy their
raw bytes.
"""

from __future__ import annotations

import csv
import io
import re
import threading
from typing import BinaryIO, Iterator

# Records can hold long profile texts; the default 128 KiB limit is too tight.
csv.field_size_limit(64 * 1024 * 1024)

CHUNK = 8 * 1024 * 1024
# No archive record comes near this; a longer "record" means a quote was never closed.
MAX_RECORD = 64 * 1024 * 1024
_scratch = threading.local()  # count_quotes' reusable array


class CsvProblem(Exception):
    """A malformed record: `line` is the 1-based line where it starts."""

    def __init__(self, line: int, problem: str):
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


def count_quotes(buf, start: int = 0, end: int | None = None) -> int:
    """Number of '"' in buf[start:end] (bytes or mmap); numpy counts about 4x faster than bytes.count,
    without copying a mapped file and without holding the GIL."""
    import numpy as np  # here: commands that only look up the index start without numpy
    end = len(buf) if end is None else end
    n = end - start
    if n <= 0:
        return 0
    # The comparison goes into a reused per-thread array: a fresh 1 MiB temporary per call costs
    # more in page faults than the count itself.
    eq = getattr(_scratch, "eq", None)
    if eq is None or len(eq) < n:
        eq = _scratch.eq = np.empty(max(n, CHUNK), np.bool_)
    np.equal(np.frombuffer(buf, np.uint8, count=n, offset=start), 0x22, out=eq[:n])
    return int(np.count_nonzero(eq[:n]))


def last_boundary(buf, start: int = 0, end: int | None = None) -> int:
    """Index of the last LF in buf[start:end] that ends a record (buf[start] begins a record), or -1."""
    end = len(buf) if end is None else end
    total = count_quotes(buf, start, end)
    after = 0
    while True:
        pos = buf.rfind(b"\n", start, end)
        if pos < 0:
            return -1
        after += count_quotes(buf, pos, end)
        if not (total - after) & 1:
            return pos
        end = pos


def sure_boundary(buf, start: int, end: int) -> int:
    """Offset just past the last LF in buf[start:end] that provably ends a record of a valid file, or -1.

    A LF followed by a quote and then anything but a quote, a comma or a line end
    is outside every quoted field: inside one, a quote right after the LF would
    have to close the field (a comma or a line end follows it) or be doubled. So
    the next record starts after it, without counting a single quote. Records
    whose first field is empty or starts with one of those characters are simply
    not seen by this rule; callers fall back to quote parity.
    """
    while True:
        p = buf.rfind(b'\n"', start, end)
        if p < 0:
            return -1
        if p + 2 < len(buf) and buf[p + 2] not in b'",\r\n':
            return p + 1
        end = p + 1  # look further back (the pattern must start before p)


def record_windows(buf, start: int, size: int) -> Iterator[tuple[int, int]]:
    """Spans [a, b) of about `size` bytes of whole records covering buf[start:] (bytes or mmap; buf[start]
    begins a record; the file is valid, as published files are). Cuts come from sure_boundary, or from
    quote parity where it finds none. A record no window of MAX_RECORD holds is an unterminated quote."""
    n = len(buf)
    a = start
    while a < n:
        want = size
        while True:
            end = min(a + want, n)
            if end == n:
                if count_quotes(buf, a, n) & 1:
                    raise CsvProblem(0, f"unterminated quoted field after byte offset {a}")
                cut = n
                break
            cut = sure_boundary(buf, a, end)
            if cut < 0:
                cut = last_boundary(buf, a, end) + 1
            if cut > a:
                break
            if want > MAX_RECORD:
                raise CsvProblem(0, f"unterminated quoted field after byte offset {a}")
            want *= 2
        yield a, cut
        a = cut


def iter_blocks(f: BinaryIO, chunk: int = CHUNK, lines: bool = True) -> Iterator[tuple[bytes, int]]:
    """Yield (block, first_line): blocks of whole records read from f in large chunks (first_line 0 if not lines)."""
    # A seekable file is re-read from the cut instead of carrying the partial record
    # over: that saves two copies of every chunk (concatenation and split).
    seekable = f.seekable()
    pos = f.tell() if seekable else 0  # file offset of buf[0]
    buf = b""
    line = 1 if lines else 0
    while True:
        data = f.read(chunk)
        if not data:
            break
        buf = buf + data if buf else data
        cut = last_boundary(buf)
        if cut < 0:
            if len(buf) > MAX_RECORD:
                raise CsvProblem(line, "unterminated quoted field")
            continue
        if cut + 1 == len(buf):
            block, buf = buf, b""
        elif seekable:
            block, buf = buf[: cut + 1], b""
            f.seek(pos + cut + 1)
        else:
            block, buf = buf[: cut + 1], buf[cut + 1 :]
        pos += len(block)
        yield block, line
        if lines:
            line += block.count(b"\n")
    if buf:
        if buf.count(b'"') & 1:
            raise CsvProblem(line, "unterminated quoted field")
        yield buf, line  # a last record without a final LF


def split_records(block: bytes) -> list[bytes]:
    """Split a block of whole records into raw records (each keeps its line terminator)."""
    out = []
    start = 0
    pos = 0
    q = 0
    n = len(block)
    while pos < n:
        nl = block.find(b"\n", pos)
        if nl < 0:
            out.append(block[start:])
            return out
        q += block.count(b'"', pos, nl)
        pos = nl + 1
        if not q & 1:
            out.append(block[start:pos])
            start = pos
            q = 0
    if start < n:
        out.append(block[start:])
    return out


def record_span(block, cur: int, hit: int) -> tuple[int, int]:
    """Bounds [s, e) of the record holding offset `hit` in block (bytes or mmap); `cur` <= hit is a known
    record start."""
    cur = max(cur, sure_boundary(block, cur, hit + 1))  # start counting as close to the hit as is sure
    # Walk back over LFs to the nearest one with an even number of quotes since cur.
    s = cur
    end = hit
    q = count_quotes(block, cur, hit)
    while True:
        p = block.rfind(b"\n", cur, end)
        if p < 0:
            break
        q_before = q - count_quotes(block, p, end)
        if not q_before & 1:
            s = p + 1
            break
        q, end = q_before, p
    # Walk forward to the LF that closes the record.
    q = 0
    pos = s
    while True:
        nl = block.find(b"\n", pos)
        if nl < 0:
            return s, len(block)
        q += count_quotes(block, pos, nl)
        pos = nl + 1
        if not q & 1:
            return s, pos


def header(buf) -> tuple[int, list[str]]:
    """(length of the header record, column names) of the CSV in buf (bytes or mmap)."""
    end = first_record_end(buf)
    if end <= 0:
        raise CsvProblem(1, "empty file: no header")
    return end, parse_record(buf[:end], 1)


def first_record_end(buf) -> int:
    """Offset just past the first record of buf (bytes or mmap); len(buf) when it never ends."""
    q = 0
    pos = 0
    while True:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            return len(buf)
        q += count_quotes(buf, pos, nl)
        pos = nl + 1
        if not q & 1:
            return pos


def line_of(records: list[bytes], first_line: int, i: int) -> int:
    """Line number where records[i] starts."""
    return first_line + sum(r.count(b"\n") for r in records[:i])


def _decode(raw: bytes, first_line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = first_line + raw.count(b"\n", 0, e.start)
        raise CsvProblem(line, f"invalid UTF-8 byte 0x{raw[e.start]:02x} (not UTF-8 text)") from None


def parse_record(raw: bytes, line: int = 1) -> list[str]:
    """Parse one raw record into its fields."""
    text = _decode(raw, line)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as e:
        raise CsvProblem(line, f"malformed quoting: {e}") from None
    if len(rows) != 1:
        raise CsvProblem(line, "not exactly one record (empty line or stray quote)")
    return rows[0]


def parse_block(block: bytes, first_line: int, ncols: int) -> tuple[list[bytes], list[list[str]]]:
    """Split and parse a block; return (raw records, rows); every row must have ncols fields."""
    records = split_records(block)
    try:
        text = block.decode("utf-8")
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
        ok = len(rows) == len(records)
    except (UnicodeDecodeError, csv.Error):
        ok = False
    if not ok:
        # Slow path only on bad input: find the first bad record and name its line.
        line = first_line
        for raw in records:
            parse_record(raw, line)
            line += raw.count(b"\n")
        raise CsvProblem(first_line, "records do not parse consistently")
    for i, row in enumerate(rows):
        if len(row) != ncols:
            raise CsvProblem(line_of(records, first_line, i), f"expected {ncols} fields, found {len(row)}")
    return records, rows


def open_records(f: BinaryIO, chunk: int = CHUNK, lines: bool = True) -> tuple[bytes, list[str], Iterator[tuple[bytes, int]]]:
    """Read the header; return (raw header, column names, blocks of the data records); see iter_blocks."""
    blocks = iter_blocks(f, chunk, lines)
    first = next(blocks, None)
    if first is None:
        raise CsvProblem(1, "empty file: no header")
    block, line = first
    end = first_record_end(block)
    header_raw, rest = block[:end], block[end:]
    names = parse_record(header_raw, 1)
    if len(set(names)) != len(names):
        raise CsvProblem(1, "duplicate column names in header")
    rest_line = line + header_raw.count(b"\n") if lines else 0

    def data_blocks():
        if rest:
            yield rest, rest_line
        yield from blocks

    return header_raw, names, data_blocks()


def terminator(raw: bytes) -> bytes:
    """The line ending of a raw record, to keep it when re-encoding."""
    if raw.endswith(b"\r\n"):
        return b"\r\n"
    return b"\n" if raw.endswith(b"\n") else b""


def encode_record(fields: list[str], term: bytes = b"\n") -> bytes:
    """Encode fields in the archive's style: every field double-quoted, "" for a quote."""
    return ('"' + '","'.join(f.replace('"', '""') for f in fields) + '"').encode("utf-8") + term


_LIST_SEP = re.compile(r"(,\s*)")


def _unquote(tok: str) -> str:
    if len(tok) >= 2 and tok[0] == tok[-1] and tok[0] in "'\"":
        return tok[1:-1]
    return tok


def _list_parts(value: str) -> tuple[str, list[str], str] | None:
    v = value.strip()
    if not v or v == "[]":
        return None
    if v.startswith("[") and v.endswith("]"):
        return value[: value.index("[") + 1], _LIST_SEP.split(v[1:-1]), value[value.rindex("]") :]
    return "", _LIST_SEP.split(v), ""


def list_entries(value: str) -> list[str]:
    """Entries of a list field: `[1, 2]`, `['a', 'b']`, `[http://x]`, `[]` or empty string."""
    parts = _list_parts(value)
    if parts is None:
        return []
    return [_unquote(t.strip()) for t in parts[1][0::2] if t.strip()]


def list_replace(value: str, mapping: dict[str, str]) -> str:
    """Replace list entries found in mapping, keeping the field's spelling (quoted or not)."""
    parts = _list_parts(value)
    if parts is None:
        return value
    open_, toks, close = parts
    changed = False
    for i in range(0, len(toks), 2):
        tok = toks[i]
        core = tok.strip()
        entry = _unquote(core)
        new = mapping.get(entry)
        if new is not None:
            q = core[0] if core != entry else ""
            toks[i] = tok.replace(core, q + new + q)
            changed = True
    return open_ + "".join(toks) + close if changed else value
