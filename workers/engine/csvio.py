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
import functools
import io
import re
import threading
from typing import BinaryIO, Iterator

# Records can hold long profile texts; the default 128 KiB limit is too tight.
csv.field_size_limit(64 * 1024 * 1024)

CHUNK = 8 * 1024 * 1024
# No archive record comes near this; a longer "record" means a quote was never closed.
MAX_RECORD = 64 * 1024 * 1024
_scratch = threading.local()  # count_byte's reusable array


class CsvProblem(Exception):
    """A malformed record: `line` is the 1-based line where it starts."""

    def __init__(self, line: int, problem: str):
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


def count_byte(buf, byte: int, start: int = 0, end: int | None = None) -> int:
    """Number of bytes equal to `byte` in buf[start:end] (bytes or mmap); numpy counts 3-4x faster than
    bytes.count, without copying a mapped file and without holding the GIL."""
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
    np.equal(np.frombuffer(buf, np.uint8, count=n, offset=start), byte, out=eq[:n])
    return int(np.count_nonzero(eq[:n]))


def count_quotes(buf, start: int = 0, end: int | None = None) -> int:
    """Number of '"' in buf[start:end] (see count_byte)."""
    return count_byte(buf, 0x22, start, end)


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
            line += count_byte(block, 0x0A)  # every block: bytes.count would cost 3x more
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


# The archive's usual spelling of a list of ids, read without the general split (same result).
_PLAIN_LIST = re.compile(r"\[[0-9]+(?:, [0-9]+)*\]")


def list_entries(value: str) -> list[str]:
    """Entries of a list field: `[1, 2]`, `['a', 'b']`, `[http://x]`, `[]` or empty string."""
    if _PLAIN_LIST.fullmatch(value):
        return value[1:-1].split(", ")
    parts = _list_parts(value)
    if parts is None:
        return []
    return [_unquote(t.strip()) for t in parts[1][0::2] if t.strip()]


def list_replace(value: str, mapping: dict[str, str]) -> str:
    """Replace list entries found in mapping, keeping the field's spelling (quoted or not)."""
    if _PLAIN_LIST.fullmatch(value):
        ents = value[1:-1].split(", ")
        new = [mapping.get(e, e) for e in ents]
        return value if new == ents else "[" + ", ".join(new) + "]"
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


class Fields:
    """Where the fields of a block of canonical records lie (see `canonical_fields`)."""

    __slots__ = ("opens", "closes", "ends", "pairs")

    def __init__(self, opens, closes, ends, pairs):
        self.opens = opens  # (records, columns): offset of each field's opening quote
        self.closes = closes  # (records, columns): offset of each field's closing quote
        self.ends = ends  # (records,): offset just past each record (its terminator included)
        self.pairs = pairs  # offsets of the first quote of each doubled quote (a '"' in a value), sorted

    def inner_quotes(self, col: int):
        """Per record: whether field `col` holds a (doubled) quote in its value."""
        import numpy as np

        q = self.pairs
        if not len(q):
            return np.zeros(len(self.ends), np.bool_)
        return np.searchsorted(q, self.closes[:, col]) - np.searchsorted(q, self.opens[:, col]) > 0


@functools.cache
def _separators():
    # Built at first use, like every numpy use here: commands that only look up the index start without numpy.
    import numpy as np

    before = np.zeros(256, np.bool_)
    before[[0x2C, 0x0A, 0x22]] = True  # what may precede an opening (or a doubled) quote
    after = np.zeros(256, np.bool_)
    after[[0x2C, 0x0A, 0x0D, 0x22]] = True  # what may follow a closing (or doubled) quote
    return before, after


def canonical_fields(block: bytes, ncols: int) -> Fields | None:
    """Field offsets of a block of whole records in the archive's canonical form, or None.

    Canonical: every field double-quoted, every quote in a value doubled, fields separated by one
    comma, records ended by LF or CRLF (the last one may end the block instead), no NUL. Such a
    record parses with the csv module to exactly the values between its quotes (with "" read as
    "), and `encode_record` of those values gives back its bytes, so a caller may splice new
    encoded values into it instead of re-encoding it. Anything else (unquoted fields, blank lines,
    a lone CR, stray quotes, a wrong field count) gives None: the caller parses such a block with
    the csv module, which also names what is wrong. UTF-8 validity is not checked here.
    """
    import numpy as np

    n = len(block)
    if n == 0 or block[0] != 0x22 or b"\x00" in block:
        return None
    sep_before, sep_after = _separators()
    b = np.frombuffer(block, np.uint8)
    q = np.flatnonzero(b == 0x22)
    if len(q) & 1:
        return None
    # The byte before each even-numbered quote and after each odd-numbered one, with the block's edges
    # read as record separators (only the first quote starts it, only the last may end it).
    even_before = b[q[0::2] - 1]
    even_before[0] = 0x0A
    odd = q[1::2]
    odd_after = b[np.minimum(odd + 1, n - 1)]
    if odd[-1] == n - 1:
        odd_after[-1] = 0x0A
    # An even-numbered quote opens a field (after a separator) or is the second of a doubled pair
    # (after a quote); an odd-numbered one closes a field (before a separator) or starts a pair.
    if not (sep_before[even_before].all() and sep_after[odd_after].all()):
        return None
    pair_first = odd_after == 0x22  # odd quote k followed by quote k+1
    pair_second = even_before == 0x22
    # Quote k+1 right after odd quote k is necessarily its pair's second: both masks must agree.
    if not np.array_equal(pair_first[: len(pair_second) - 1], pair_second[1:]) or pair_second[0]:
        return None
    opens = q[0::2][~pair_second]
    closes = q[1::2][~pair_first]
    # Bytes outside quotes: after a close comes ',', '\n' or '\r\n', then an open or the block's end.
    nxt = closes + 1
    last_at_end = nxt[-1] == n
    if last_at_end:
        nxt = nxt[:-1]
    sep = b[nxt]
    crlf = sep == 0x0D
    if crlf.any():
        at = nxt[crlf] + 1
        if (at >= n).any() or (b[at] != 0x0A).any():
            return None
    is_lf = (sep == 0x0A) | crlf
    # The byte after the separator must be the next field's opening quote.
    if len(nxt):
        follow = nxt + 1 + crlf  # offset of the next open (or n when the block ends there)
        nopen = opens[1:] if len(opens) > 1 else opens[:0]
        expect = follow[:len(nopen)]
        # every separator but possibly the last LF is followed by an open, in order
        tail_end = not last_at_end
        if tail_end:
            # The block ends with a terminator: the last separator is an LF with nothing after it.
            if not is_lf[-1] or follow[-1] != n or len(nopen) != len(nxt) - 1:
                return None
            expect = follow[:-1]
        elif len(nopen) != len(nxt):
            return None
        if not np.array_equal(expect, nopen):
            return None
    elif len(opens) != 1:
        return None
    rec_last = np.flatnonzero(is_lf)  # index (among closes) of each record's last field
    if last_at_end:
        rec_last = np.append(rec_last, len(closes) - 1)
    nrec = len(rec_last)
    if nrec * ncols != len(opens) or not np.array_equal(rec_last, np.arange(ncols - 1, len(closes), ncols)):
        return None
    ends = np.empty(nrec, np.int64)
    term = (2 + crlf[is_lf]) if len(nxt) else np.zeros(0, np.int64)
    if last_at_end:
        ends[:-1] = closes[rec_last[:-1]] + term
        ends[-1] = n
    else:
        ends[:] = closes[rec_last] + term
    return Fields(opens.reshape(nrec, ncols), closes.reshape(nrec, ncols), ends, q[1::2][pair_first])


def spans(block: bytes, starts, ends, joined: bool = False):
    """[block[s:e] for each span] for a block without NUL bytes (canonical_fields refuses NUL): the spans
    are gathered with one numpy index into a NUL-separated buffer and split in C, not sliced one by one.
    `joined`: the buffer itself, each span followed by a NUL."""
    import numpy as np

    starts = np.asarray(starts, np.int64)
    lens = np.asarray(ends, np.int64) - starts
    if not len(lens):
        return b"" if joined else []
    step = lens + 1  # each span and its separator
    at = np.cumsum(step) - step  # where each span starts in the gathered buffer
    idx = np.arange(int(step.sum()), dtype=np.int64) - np.repeat(at - starts, step)
    b = np.frombuffer(block, np.uint8)
    out = b[np.minimum(idx, len(b) - 1)]
    out[at + lens] = 0
    return out.tobytes() if joined else out.tobytes().split(b"\0")[:-1]
