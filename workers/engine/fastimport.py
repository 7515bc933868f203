"""Import of a tweets block at the byte level: the records' fields are located, not parsed.

A block whose records are all in the archive's canonical form (csvio.canonical_fields) is
imported without parsing every field: numpy finds the field boundaries of all records at once, only
the fields the rules read (ids, references, mentions, and the tweet texts holding an '@') become
Python strings, and a record the public-variant rule changes gets the new values spliced in, every
other byte copied. For canonical records that is byte for byte what encoding the parsed and changed
fields gives (csvio.encode_record), so the output equals the reference path's (importer
_Job.slow_block), which tests/engine/test_fast_import.py checks on tricky and random input.

Anything else goes to the reference path, block by block: a block that is not canonical or not
UTF-8, that holds a quote inside an id-like field, or that would fail a check (unknown author,
empty tweet id), so that the reference path names the error. Records the ledger may change
(Job.touched) go through the reference path's per-record code inside a fast block.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from . import csvio
from .handles import extract_handles
from .correct import DROP
from .verify import import_block_traces
from .hashing import IDENTITY_FIELDS, MENTIONS_FIELD, PROFILE_FIELDS, REFERENCE_FIELDS, TEXT_FIELD, hash_changes

FAST = True  # tests switch it off to compare with the reference path


def _enc(v: str) -> bytes:
    """One field in the archive's style (as csvio.encode_record writes each)."""
    return b'"' + v.replace('"', '""').encode("utf-8") + b'"'


def _value(block: bytes, o: int, c: int) -> str:
    """The value of the field whose quotes are at o and c."""
    v = block[o + 1:c]
    return (v.replace(b'""', b'"') if b'"' in v else v).decode("utf-8")


def _strings(block: bytes, starts: list, ends: list) -> list[str]:
    """block[s:e] for each span, decoded (one decode for all: the block holds no NUL)."""
    if len(starts) < 64:
        return b"\0".join([block[s:e] for s, e in zip(starts, ends)]).decode("utf-8").split("\0") if len(starts) else []
    return csvio.spans(block, starts, ends, joined=True)[:-1].decode("utf-8").split("\0")


class FastTweets:
    """Imports the blocks of one tweets file for a job (importer._Job)."""

    def __init__(self, job, cols: dict[str, int], ncols: int, file: str):
        self.job = job
        self.cols = cols
        self.ncols = ncols
        self.file = file
        self.uid = cols["userid"]
        self.tid = cols["tweetid"]
        self.sn = cols["user_screen_name"]
        self.refs = [cols[n] for n in REFERENCE_FIELDS]
        self.ment = cols[MENTIONS_FIELD]
        self.text = cols[TEXT_FIELD]
        # Columns that must hold no quote for their values to be read straight from the bytes.
        self.plain = sorted({self.uid, self.tid, self.sn, self.ment, *self.refs})
        self.ident = [cols[n] for n in IDENTITY_FIELDS]
        # The three identity fields side by side: one splice of '"p","p","p"' per record.
        self.ident_run = self.ident == list(range(self.ident[0], self.ident[0] + len(self.ident)))
        self.ident_bytes: dict[str, bytes] = {}
        self.slow = False  # some block went to the reference path

    def block(self, block: bytes) -> tuple[bytes, bytes, int] | None:
        """(unhashed bytes, hashed bytes, rows) of a block, or None (nothing done) for the reference path."""
        f = csvio.canonical_fields(block, self.ncols)
        if f is None:
            return None
        if not block.isascii():
            try:
                block.decode("utf-8")
            except UnicodeDecodeError:
                return None
        for c in self.plain:
            if f.inner_quotes(c).any():
                return None
        job = self.job
        O, C = f.opens, f.closes
        nrec = len(f.ends)

        def col(c):
            return _strings(block, O[:, c] + 1, C[:, c])

        uids = col(self.uid)
        if not job.users.keys() >= set(uids):
            return None
        tid_s, tid_e = O[:, self.tid] + 1, C[:, self.tid]
        tids = csvio.spans(block, tid_s, tid_e)
        if b"" in tids:
            return None
        # Every check passed: from here on the block is imported.
        joined = b"".join(tids)
        if joined.isdigit() and max(map(len, tids)) <= 18:
            job.cur_run.extend(map(int, tids))
        else:
            from .importer import _tid_key  # the rule for odd tweet ids lives there

            job.cur_run.extend(map(_tid_key, _strings(block, tid_s, tid_e)))
        if len(job.cur_run) >= job_run_limit():
            job.spill_run()

        sns = col(self.sn)
        b = np.frombuffer(block, np.uint8)
        lengths = C - O - 1  # value lengths (no id-like field holds a quote)
        # Records the rule may change beyond their author: a reference, a non-empty mention list, or an
        # '@' (or, with earlier pseudonyms in the ledger, an '=') inside the tweet text.
        mo = O[:, self.ment]
        ml = lengths[:, self.ment]
        empty_list = (ml == 2) & (b[np.minimum(mo + 1, len(b) - 1)] == 0x5B) & (b[np.minimum(mo + 2, len(b) - 1)] == 0x5D)
        busy = (ml > 0) & ~empty_list
        for c in self.refs:
            busy |= lengths[:, c] > 0
        ts, te = O[:, self.text], C[:, self.text]
        marks = np.flatnonzero(b == 0x40)
        job = self.job
        fix = job.fix
        if fix is not None and fix.pseudo_map:
            marks = np.union1d(marks, np.flatnonzero(b == 0x3D))
        texts: dict[int, str] = {}
        if len(marks):
            r = np.searchsorted(f.ends, marks, side="right")
            r = np.unique(r[(marks > ts[r]) & (marks < te[r])])
            busy[r] = True
            for i in r.tolist():
                t = block[ts[i] + 1:te[i]]
                if b'"' in t:
                    t = t.replace(b'""', b'"')
                texts[i] = t.decode("utf-8")
        busy_i = np.flatnonzero(busy).tolist()

        def some(c, idx):
            return _strings(block, O[idx, c] + 1, C[idx, c])

        refs = [some(c, busy_i) for c in self.refs]
        ments = some(self.ment, busy_i)

        po, ho = job.pseudo_of, job.handle_of
        rec_e = f.ends.tolist()
        rec_s = [0] + rec_e[:-1]
        file = self.file
        cols = self.cols
        occ = Counter()
        named_extra = Counter()  # (author, screen name) of corrected records
        hcount = Counter()
        both = Counter()
        edits = []  # (start, end, new bytes) in the hashed variant, by record
        edits_u = []  # the same for the unhashed variant (records the ledger changes)
        rows = nrec
        # The ledger: records whose author is decided, then (below) busy records holding a decided
        # reference, mention or @handle; a cheap superset of Job.touched first, then Job.touched itself.
        touched = set()
        if fix is not None:
            idm = fix.id_map
            if not idm.keys().isdisjoint(uids):
                touched = {i for i, u in enumerate(uids) if u in idm}
            sn_keys, pseudo_map = fix.sn_map.keys(), fix.pseudo_map
        Ol, Cl = _Cols(O), _Cols(C)
        refsets = []  # (record, ids it refers to): the inline verification's input
        rewritten = []  # (offset, new unhashed record) of records the ledger changed
        for k, i in enumerate(busy_i):
            u = uids[i]
            if i in touched:
                continue
            m = ments[k]
            rv = tuple(v[k] for v in refs)
            rs = {r for r in rv if r}
            if m not in ("", "[]"):
                rs.update(csvio.list_entries(m))
            if rs:
                refsets.append((i, rs))
            text = texts.get(i)
            hs = extract_handles(text) if text is not None else ()
            if fix is not None and (not idm.keys().isdisjoint(rs) or (text is not None and (
                    not sn_keys.isdisjoint(hs) or any(len(h) == 44 for h in hs)
                    or (pseudo_map and "=" in text)))) and job.touched(u, list(rv), m, text):
                touched.add(i)
                continue
            _count_references(occ, hcount, both, rs, hs)
            # The public variant beyond the author (hashing.hash_changes), spliced into the bytes.
            for name, v in hash_changes(None, rv, m, text, po, ho):
                c = cols[name]
                edits.append((Ol[c][i], Cl[c][i] + 1, _enc(v)))
        # Records the ledger changes: Corrector.changes for the unhashed variant, then the public
        # variant's rule on the corrected values (as Job.record does with parsed fields).
        prof = [cols.get(n) for n in PROFILE_FIELDS]
        for i in sorted(touched):
            u = uids[i]
            rv = tuple(_value(block, Ol[c][i], Cl[c][i]) for c in self.refs)
            m = _value(block, Ol[self.ment][i], Cl[self.ment][i])
            text = texts.get(i)
            pv = tuple(None if c is None else _value(block, Ol[c][i], Cl[c][i]) for c in prof)
            ch = fix.changes(u, rv, m, text, pv)
            if ch is DROP:
                job.count("tweets", u, removed=True)
                rows -= 1
                edits_u.append((rec_s[i], rec_e[i], None))
                edits.append((rec_s[i], rec_e[i], None))
                continue
            if ch:
                job.count("tweets", u, removed=False)
            fixed = dict(ch)
            u2 = fixed.get("userid", u)
            sn2 = fixed.get("user_screen_name", sns[i])
            rv2 = tuple(fixed.get(n, v) for n, v in zip(REFERENCE_FIELDS, rv))
            m2 = fixed.get(MENTIONS_FIELD, m)
            text2 = fixed.get(TEXT_FIELD, text)
            # index.contributions of the corrected record
            occ[(u2, "authored")] += 1
            if sn2:
                named_extra[(u2, sn2)] += 1
            rs = {r for r in rv2 if r}
            if m2 not in ("", "[]"):
                rs.update(csvio.list_entries(m2))
            hs = extract_handles(text2) if text2 is not None else ()
            _count_references(occ, hcount, both, rs, hs)
            final = dict(fixed)
            final.update(hash_changes(u2, rv2, m2, text2, po, ho))
            mine = [(Ol[cols[name]][i], Cl[cols[name]][i] + 1, _enc(v)) for name, v in ch]
            edits_u += mine
            if job.inline_fb is not None:
                rewritten.append((rec_s[i], _splice(block[rec_s[i]:rec_e[i]],
                                                    [(a - rec_s[i], b - rec_s[i], v) for a, b, v in mine])))
            for name, v in final.items():
                c = cols[name]
                edits.append((Ol[c][i], Cl[c][i] + 1, _enc(v)))
        # Authors (hashing.hash_changes of the author alone, once per account): the identity fields.
        ident = self.ident
        ib = self.ident_bytes
        for u in set(uids).difference(ib):
            ch = hash_changes(u, (), None, None, po, ho)
            if not ch:
                ib[u] = None
            elif self.ident_run and [n for n, _ in ch] == list(IDENTITY_FIELDS):
                ib[u] = b",".join([_enc(v) for _, v in ch])
            else:
                ib[u] = ch
        first, last = ident[0], ident[-1]
        for i, (u, new) in enumerate(zip(uids, [ib[u] for u in uids])):
            if new is None or i in touched:
                continue
            if type(new) is bytes:
                edits.append((Ol[first][i], Cl[last][i] + 1, new))
            else:
                edits.extend((Ol[cols[n]][i], Cl[cols[n]][i] + 1, _enc(v)) for n, v in new)
        # The index: index.contributions of every record kept as it is (touched ones went through it).
        if touched:
            kept = [i for i in range(nrec) if i not in touched]
            auth = [uids[i] for i in kept]
            named = [(uids[i], sns[i]) for i in kept]
        else:
            auth = uids
            named = zip(uids, sns)
        buf = job.buf
        for key, n in Counter(auth).items():
            buf.occ[(file, key, "authored")] += n
        named = Counter(named)
        named.update(named_extra)
        for (key, sn), n in named.items():
            if sn:
                buf.names[(key, sn.lower())] += n
        for (key, kind), n in occ.items():
            buf.occ[(file, key, kind)] += n
        for h, n in hcount.items():
            buf.handles[(file, h)] += n
        for (key, h), n in both.items():
            buf.both[(file, key, h)] += n
        buf.maybe_flush()
        if job.inline_fb is not None:
            # The proof for the unhashed variant, on the values just read (verify.import_block_traces).
            job.inline_problems += import_block_traces(job.inline_fb, cols, block, f.ends, uids, sns, refsets,
                                                       touched, rewritten, f"{job.name} unhashed/{file}")
        return _splice(block, edits_u), _splice(block, edits), rows


class _Cols(dict):
    """Column c of an offsets matrix as a Python list, converted on first use."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def __missing__(self, c):
        v = self[c] = self.m[:, c].tolist()
        return v


def _splice(block: bytes, edits: list) -> bytes:
    """block with each (start, end, new bytes | None) edit applied (edits do not overlap)."""
    if not edits:
        return block
    edits.sort(key=lambda e: e[0])
    pieces = []
    pos = 0
    for s, e, new in edits:
        pieces.append(block[pos:s])
        if new is not None:
            pieces.append(new)
        pos = e
    pieces.append(block[pos:])
    return b"".join(pieces)


def job_run_limit() -> int:
    """importer.RUN, read at call time (tests lower it)."""
    from . import importer

    return importer.RUN


def _count_references(occ, hcount, both, refs, handles) -> None:
    """A record's contributions to the account index: each referenced id, each @handle, and each
    (id, handle) pair seen together (index.contributions, counted without a parsed row)."""
    for r in refs:
        occ[(r, "ref")] += 1
    for h in handles:
        hcount[h] += 1
        for r in refs:
            both[(r, h)] += 1
