"""Import of a tweets block at the byte level: the records' fields are located, not parsed.

A block whose records are all in the archive's canonical form (csvio.canonical_fields) is
imported without parsing every field, a column at a time: numpy finds the field boundaries of all
records at once; only the id-like fields and the mention lists become Python strings, each
distinct mention list is read once per file, and the @handles of all tweet texts are read from the
bytes in one pass (handles.handle_marks); hashing.hash_changes decides once per distinct value and
its changes are spliced in, every other byte copied; the account index is counted with numpy over
integer codes of the ids and handles. For canonical records that is byte for byte what encoding the parsed and changed
fields gives (csvio.encode_record), so the output equals the reference path's (importer
_Job.slow_block), which tests/engine/test_fast_import.py checks on tricky and random input.

Anything else goes to the reference path, block by block: a block that is not canonical or not
UTF-8, that holds a quote inside an id-like field, or that would fail a check (unknown author,
empty tweet id), so that the reference path names the error.

The ledger of standing decisions is applied the same way: correct.Corrector.changes decides once per
distinct reference, mention list and @handle run, its answers are spliced into both variants, and the
public rule is applied to the corrected values. Only a removed author's records and records whose text
holds an earlier pseudonym take the reference path's per-record code inside a fast block.
"""

from __future__ import annotations

import gc
from collections import Counter
from itertools import compress

import numpy as np

from . import csvio
from .handles import extract_handles, handle_marks
from .search import valid_utf8
from .correct import DROP
from .verify import pseudonym_ends, import_block_traces, rewritten_traces
from .hashing import IDENTITY_FIELDS, MENTIONS_FIELD, PROFILE_FIELDS, REFERENCE_FIELDS, TEXT_FIELD, hash_changes

FAST = True  # tests switch it off to compare with the reference path
# The records the ledger rewrote are proven in batches of about this many bytes: one column-wise pass
# per batch (verify.rewritten_traces) instead of one per block, whose fixed cost was most of it.
REWRITTEN_BATCH = 4 * 1024 * 1024
# The index's (id, handle) pairs are counted across a file's blocks as integer codes and named once per
# file (FastTweets.finish), or sooner once this many distinct pairs of blocks are held (memory stays flat):
# a pair seen in many blocks becomes one counter entry, not one per block.
PAIRS_HELD = 1_000_000


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

    def __init__(self, job, cols: dict[str, int], ncols: int, file: str, offset: int = 0):
        self.job = job
        self.offset = offset  # where the next block starts in the file
        self.label = f"{job.name} unhashed/{file}"
        self.rewritten: list = []  # (file offset, new record) not yet proven (rewritten_traces)
        self.rewritten_bytes = 0
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
        self.lists: dict[str, tuple] = {}  # mention list value -> read_list(value)
        self.penc: dict[str, bytes] = {}  # pseudonym -> its encoded field
        # Corrector.changes and hashing.hash_changes decide each distinct reference and @handle once per
        # file; these keep the answers: (field name, id) -> read_ref's triple, lowercased handle ->
        # read_handle's triple or None.
        self.ref_new: dict[tuple[str, str], tuple] = {}
        self.handle_new: dict[str, tuple | None] = {}
        self._old_pseudonyms = (None, frozenset())
        self.author_drops = _AuthorDrops(job)  # decided author -> whether the ledger removes the record
        # The (id, handle) pairs not yet in the index's buffer: the file's ids and handles as codes, and per
        # block the distinct pairs (id code << 32 | handle code) with their counts.
        self.pair_ids: dict[str, int] = {}
        self.pair_handles: dict[str, int] = {}
        self.pair_keys: list = []
        self.pair_counts: list = []

    def old_pseudonyms(self) -> frozenset:
        """The ledger's earlier pseudonyms as bytes (fix.pseudo_map's keys), rebuilt if the map changed size."""
        pm = self.job.fix.pseudo_map
        if self._old_pseudonyms[0] != len(pm):
            self._old_pseudonyms = (len(pm), frozenset(p.encode() for p in pm))
        return self._old_pseudonyms[1]

    def block(self, block: bytes) -> tuple[bytes, bytes, int] | None:
        """(unhashed bytes, hashed bytes, rows) of a block, or None (nothing done) for the reference path."""
        # The block's many small objects go with it; a collection in the middle of one would walk every
        # long-lived object of the import (the ledger's maps, the caches) for nothing.
        was = gc.isenabled()
        gc.disable()
        try:
            return self._block(block)
        finally:
            self.offset += len(block)
            if was:
                gc.enable()

    def finish(self) -> None:
        """Prove the rewritten records still waiting and count the pairs held into the index's buffer (call
        once the file's last block is done)."""
        self.add_pairs()
        self.prove_rewritten()

    def prove_rewritten(self) -> None:
        """Prove the records the ledger rewrote that are still waiting (verify.rewritten_traces)."""
        if self.rewritten:
            job = self.job
            job.inline_problems += rewritten_traces(job.inline_fb, self.cols, self.rewritten, self.label)
            self.rewritten = []
            self.rewritten_bytes = 0

    def _block(self, block: bytes):
        f = csvio.canonical_fields(block, self.ncols)
        if f is None:
            return None
        if not block.isascii() and not valid_utf8(block):
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
        if b"".join(tids).isdigit():
            keys = list(map(int, tids))
            long = np.flatnonzero(tid_e - tid_s > 18)
            if len(long):
                from .importer import _tid_key  # the rule for odd tweet ids lives there

                for k in long.tolist():
                    keys[k] = _tid_key(tids[k].decode("ascii"))
            job.cur_run.extend(keys)
        else:
            from .importer import _tid_key

            job.cur_run.extend(map(_tid_key, _strings(block, tid_s, tid_e)))
        if len(job.cur_run) >= job_run_limit():
            job.spill_run()

        sns = col(self.sn)
        b = np.frombuffer(block, np.uint8)
        n = len(block)
        lengths = C - O - 1  # value lengths (no id-like field holds a quote)
        fix = job.fix
        po = job.pseudo_of
        cols = self.cols
        file = self.file
        # Each column is read once for the whole block, for both the index and the rule.
        # References: the records holding one, and the values.
        ref_idx, ref_vals = [], []
        for c in self.refs:
            idx = np.flatnonzero(lengths[:, c] > 0)
            ref_idx.append(idx.tolist())
            ref_vals.append(_strings(block, O[idx, c] + 1, C[idx, c]))
        # Mention lists other than '' and '[]': each distinct one is read once per file (self.lists).
        mo, ml = O[:, self.ment], lengths[:, self.ment]
        empty_list = (ml == 2) & (b[np.minimum(mo + 1, n - 1)] == 0x5B) & (b[np.minimum(mo + 2, n - 1)] == 0x5D)
        m_arr = np.flatnonzero((ml > 0) & ~empty_list)
        m_idx = m_arr.tolist()
        m_vals = _strings(block, O[m_arr, self.ment] + 1, C[m_arr, self.ment])
        lists = self.lists
        if len(lists) > 500_000:
            lists.clear()  # memory stays flat on huge files; values are simply read again
        for m in set(m_vals).difference(lists):
            lists[m] = self.read_list(m)
        # Every '@' inside a tweet text, and what the @handle rules read there (handles.handle_marks).
        ts, te = O[:, self.text], C[:, self.text]
        at = np.flatnonzero(b == 0x40)
        if len(at):
            r = np.searchsorted(f.ends, at, side="right")
            inside = (at > ts[r]) & (at < te[r])
            at, at_rec = at[inside], r[inside].tolist()
        else:
            at_rec = []
        runs, tokens = handle_marks(block, at)
        at = at.tolist()

        rec_e = f.ends.tolist()
        rec_s = [0] + rec_e[:-1]
        Ol, Cl = _Cols(O), _Cols(C)
        # The ledger is applied as the public rule is: Corrector.changes is asked once per distinct reference,
        # mention list and @handle run (read_ref, read_list, read_handle), and its answers are spliced into
        # both variants by position, the public rule then applied to the corrected values. Only two kinds of
        # record need the correction rule whole, on the per-record path below (`slow`): a removed author's
        # (the record leaves) and one whose text holds an earlier pseudonym (the 44 bytes up to an '=' inside
        # a text, looked up whole as Corrector.fix_text reads them; such a window may overlap an @handle, whose
        # replacement it would then see). A re-hashed author's records get the author's new identity and
        # cleared profile per record (`rehashed`). Finding them takes Job.touched's own tests, made
        # column-wise; tests/engine/test_fast_import.py requires the reference path's output byte for byte.
        slow = set()
        rehashed = []
        if fix is not None:
            idm = fix.id_map
            if not idm.keys().isdisjoint(uids):
                drops = self.author_drops
                for i, u in enumerate(uids):
                    if u in idm:
                        if drops[u]:
                            slow.add(i)
                        else:
                            rehashed.append(i)
            if fix.pseudo_map and b"=" in block:
                eq = np.asarray(pseudonym_ends(block, self.old_pseudonyms()), np.int64)
                if len(eq):
                    r = np.searchsorted(f.ends, eq, side="right")
                    slow.update(r[(eq - 43 > ts[r]) & (eq < te[r])].tolist())

        # Each value's edits: (start, end, new bytes) of the hashed block in three parallel lists, and of the
        # unhashed block per record (the records the ledger changes: few).
        es, ee, ev = [], [], []
        ue: dict[int, list] = {}
        ref_fixed = []  # per reference column: the values as the unhashed variant holds them (for the index)
        known = self.ref_new
        for name, c, idx, vals in zip(REFERENCE_FIELDS, self.refs, ref_idx, ref_vals):
            oc, cc = Ol[c], Cl[c]
            fixed = []
            for i, v in zip(idx, vals):
                v2, h_new, u_new = known[(name, v)] if (name, v) in known else self.read_ref(name, v)
                fixed.append(v2)
                if h_new is not None and i not in slow:
                    es.append(oc[i])
                    ee.append(cc[i] + 1)
                    ev.append(h_new)
                    if u_new is not None:
                        ue.setdefault(i, []).append((oc[i], cc[i] + 1, u_new))
            ref_fixed.append(fixed)
        oc, cc = Ol[self.ment], Cl[self.ment]
        for i, m in zip(m_idx, m_vals):
            _, h_new, u_new = lists[m]
            if h_new is not None and i not in slow:
                es.append(oc[i])
                ee.append(cc[i] + 1)
                ev.append(h_new)
                if u_new is not None:
                    ue.setdefault(i, []).append((oc[i], cc[i] + 1, u_new))
        hb = self.handle_new
        tokens_fixed = tokens
        for k, a, i, h in zip(range(len(at)), at, at_rec, runs):
            got = hb[h] if h in hb else self.read_handle(h)
            if got is not None and i not in slow:
                # '@handle' -> '@' + pseudonym inside the text: neither holds a quote, nothing to escape
                token, h_new, u_new = got
                es.append(a + 1)
                ee.append(a + 1 + len(h))
                ev.append(h_new)
                if u_new is not None:
                    ue.setdefault(i, []).append((a + 1, a + 1 + len(h), u_new))
                    if tokens_fixed is tokens:
                        tokens_fixed = list(tokens)
                    tokens_fixed[k] = token
        # A re-hashed author's records: Corrector.changes of the author (new identity, profile cleared), then
        # the public rule on the new identity.
        prof = [cols.get(n) for n in PROFILE_FIELDS]
        ho = job.handle_of
        named_fixed = {}  # record -> (author, screen name) as the unhashed variant holds them
        for i in rehashed:
            if i in slow:
                continue
            u = uids[i]
            # Offsets read one by one: a few records of a block (converting their columns would read all).
            oi, ci = O[i].tolist(), C[i].tolist()
            pv = tuple(None if c is None else _value(block, oi[c], ci[c]) for c in prof)
            ch = fix.changes(u, (), None, None, pv)
            final = dict(ch)
            u2 = final.get("userid", u)
            named_fixed[i] = (u2, final.get("user_screen_name", sns[i]))
            final.update(hash_changes(u2, (), None, None, po, ho))
            mine = ue.setdefault(i, [])
            for name, v in ch:
                c = cols[name]
                mine.append((oi[c], ci[c] + 1, _enc(v)))
            for name, v in final.items():
                c = cols[name]
                es.append(oi[c])
                ee.append(ci[c] + 1)
                ev.append(_enc(v))

        # The index (index.contributions): ids referred to and @handles, once per record.
        rs_of = dict(zip(m_idx, [lists[m][0] for m in m_vals]))  # record -> distinct ids it refers to
        for idx, vals in zip(ref_idx, ref_fixed):
            for i, v in zip(idx, vals):
                s = rs_of.get(i)
                if not s:
                    rs_of[i] = (v,)
                elif v not in s:
                    rs_of[i] = s + (v,)
        for i in slow:
            rs_of.pop(i, None)
        # The counts with ids and handles as integer codes: numpy counts, and each distinct key is named
        # once. Ids first (rs_of holds each record's ids once).
        ritems = [(i, rs) for i, rs in rs_of.items() if rs]
        rrec = np.repeat(np.array([i for i, _ in ritems], np.int64), np.array([len(rs) for _, rs in ritems], np.int64))
        rflat = [r for _, rs in ritems for r in rs]
        rnames = list(dict.fromkeys(rflat))
        rcode = np.array(list(map(dict(zip(rnames, range(len(rnames)))).__getitem__, rflat)), np.int64)
        ref_pairs = (rrec, rflat)  # the proof's (records, ids); those of records the ledger changed are not read
        # @handle tokens (marks are in record order), each counted once per record.
        valid = np.fromiter(map(bool, tokens_fixed), np.bool_, len(tokens_fixed))
        hrec = np.asarray(at_rec, np.int64)[valid]
        htok = list(compress(tokens_fixed, valid.tolist()))
        hnames = list(dict.fromkeys(htok))
        hcode = np.array(list(map(dict(zip(hnames, range(len(hnames)))).__getitem__, htok)), np.int64)
        if slow and len(hrec):
            keep = ~np.isin(hrec, np.fromiter(slow, np.int64, len(slow)))
            hrec, hcode = hrec[keep], hcode[keep]
        nh = max(len(hnames), 1)
        pair = np.unique(hrec * nh + hcode)  # sorted by record
        hrec, hcode = pair // nh, pair % nh
        occ = Counter({(rnames[c], "ref"): k for c, k in _counts(rcode)})
        hcount = Counter({hnames[c]: k for c, k in _counts(hcode)})
        # Every (id, handle) pair of each record holding both.
        order = np.argsort(rrec, kind="stable")
        rrec, rcode = rrec[order], rcode[order]
        ur, ra, cr = np.unique(rrec, return_index=True, return_counts=True)
        uh, ha, ch = np.unique(hrec, return_index=True, return_counts=True)
        _, i1, i2 = np.intersect1d(ur, uh, assume_unique=True, return_indices=True)
        ra, cr, ha, ch = ra[i1], cr[i1], ha[i2], ch[i2]
        per = cr * ch
        j = np.arange(int(per.sum())) - np.repeat(np.cumsum(per) - per, per)
        chp = np.repeat(ch, per)
        key = rcode[np.repeat(ra, per) + j // chp] * nh + hcode[np.repeat(ha, per) + j % chp]
        self.hold_pairs(*np.unique(key, return_counts=True), rnames, hnames, nh)
        both = Counter()  # (id, handle) pairs of the records on the per-record path

        named_extra = Counter()  # (author, screen name) of the records on the per-record path
        edits_u = []  # (start, end, new bytes) in the unhashed variant (records the ledger changes)
        rows = nrec
        changed = []  # records the ledger changed and kept (the proof reads them in the unhashed block written)
        for i, mine in ue.items():
            job.count("tweets", uids[i], removed=False)
            edits_u += mine
            changed.append(i)
        # The per-record path: Corrector.changes of the whole record for the unhashed variant, then the
        # public variant's rule on the corrected values (as Job.record does with parsed fields).
        for i in sorted(slow):
            u = uids[i]
            # A removed author's record goes whatever it holds: Corrector.changes on the author alone says so.
            ch = fix.changes(u, (), None, None)
            if ch is not DROP:
                rv = tuple(_value(block, Ol[c][i], Cl[c][i]) for c in self.refs)
                m = _value(block, Ol[self.ment][i], Cl[self.ment][i])
                text = _value(block, Ol[self.text][i], Cl[self.text][i])
                # The profile fields matter only to a re-hashed author (Corrector.changes clears them then).
                pv = tuple(None if c is None else _value(block, Ol[c][i], Cl[c][i]) for c in prof) if u in idm else ()
                ch = fix.changes(u, rv, m, text, pv)
            if ch is DROP:
                job.count("tweets", u, removed=True)
                rows -= 1
                edits_u.append((rec_s[i], rec_e[i], None))
                es.append(rec_s[i])
                ee.append(rec_e[i])
                ev.append(b"")
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
            edits_u += [(Ol[cols[name]][i], Cl[cols[name]][i] + 1, _enc(v)) for name, v in ch]
            changed.append(i)
            for name, v in final.items():
                c = cols[name]
                es.append(Ol[c][i])
                ee.append(Cl[c][i] + 1)
                ev.append(_enc(v))
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
        news = list(map(ib.__getitem__, uids))
        first, last = ident[0], ident[-1]
        sel = [i for i, new in enumerate(news) if new is not None]
        if slow or named_fixed:
            sel = [i for i in sel if i not in slow and i not in named_fixed]
        id_s = O[sel, first]
        id_e = C[sel, last] + 1
        id_v = [news[i] for i in sel]
        if not all(type(v) is bytes for v in id_v):
            for k in reversed(range(len(sel))):
                v = id_v[k]
                if type(v) is not bytes:
                    i = sel[k]
                    for name, val in v:
                        es.append(Ol[cols[name]][i])
                        ee.append(Cl[cols[name]][i] + 1)
                        ev.append(_enc(val))
            keep = [k for k, v in enumerate(id_v) if type(v) is bytes]
            id_s, id_e, id_v = id_s[keep], id_e[keep], [id_v[k] for k in keep]
        # The index: index.contributions of every record not on the per-record path (which counted its own),
        # with the values the unhashed variant holds.
        auth, snames = uids, sns
        if named_fixed:
            auth, snames = list(uids), list(sns)
            for i, (u2, sn2) in named_fixed.items():
                auth[i] = u2
                snames[i] = sn2
        if slow:
            kept = np.ones(nrec, np.bool_)
            kept[list(slow)] = False
            kept = kept.tolist()
            auth, snames = list(compress(auth, kept)), list(compress(snames, kept))
        named = zip(auth, snames)
        buf = job.buf
        _add(buf.occ, [((file, key, "authored"), k) for key, k in Counter(auth).items()])
        named = Counter(named)
        named.update(named_extra)
        _add(buf.names, [((key, sn.lower()), k) for (key, sn), k in named.items() if sn])
        _add(buf.occ, [((file, key, kind), k) for (key, kind), k in occ.items()])
        _add(buf.handles, [((file, h), k) for h, k in hcount.items()])
        _add(buf.both, [((file, key, h), k) for (key, h), k in both.items()])
        buf.maybe_flush()
        out_u = _splice(block, edits_u)
        if job.inline_fb is not None:
            rewritten = [(self.offset + rec_s[i], out_u[a:z])
                         for i, a, z in zip(changed, *_moved(edits_u, [rec_s[i] for i in changed],
                                                              [rec_e[i] for i in changed]))]
            # The proof for the unhashed variant, on the values just read (verify.import_block_traces).
            job.inline_problems += import_block_traces(job.inline_fb, cols, block, f.ends, uids, sns, ref_pairs,
                                                       slow | ue.keys(), self.label, handles=(at_rec, runs),
                                                       base=self.offset)
            self.rewritten += rewritten
            self.rewritten_bytes += sum(len(r) for _, r in rewritten)
            if self.rewritten_bytes >= REWRITTEN_BATCH:
                self.prove_rewritten()
        starts = np.concatenate([np.array(es, np.int64), id_s])
        stops = np.concatenate([np.array(ee, np.int64), id_e])
        return out_u, _splice_arrays(block, starts, stops, ev + id_v), rows

    def hold_pairs(self, pairs, counts, rnames: list, hnames: list, nh: int) -> None:
        """Hold a block's distinct (id, handle) pairs (pairs: rnames index * nh + hnames index) and counts."""
        if not len(pairs):
            return
        ids, hs = self.pair_ids, self.pair_handles
        idc = np.array([ids.setdefault(n, len(ids)) for n in rnames], np.int64)
        hc = np.array([hs.setdefault(n, len(hs)) for n in hnames], np.int64)
        self.pair_keys.append((idc[pairs // nh] << 32) | hc[pairs % nh])
        self.pair_counts.append(counts)
        if sum(map(len, self.pair_keys)) >= PAIRS_HELD:
            self.add_pairs()

    def add_pairs(self) -> None:
        """Count the pairs held into the index's buffer, each distinct pair once, and forget them."""
        if not self.pair_keys:
            return
        keys, inv = np.unique(np.concatenate(self.pair_keys), return_inverse=True)
        counts = np.bincount(inv, weights=np.concatenate(self.pair_counts)).astype(np.int64)
        ids, hs = list(self.pair_ids), list(self.pair_handles)
        file = self.file
        _add(self.job.buf.both, [((file, ids[a], hs[h]), k) for a, h, k in
                                 zip((keys >> 32).tolist(), (keys & 0xFFFFFFFF).tolist(), counts.tolist())])
        self.pair_ids, self.pair_handles = {}, {}
        self.pair_keys, self.pair_counts = [], []

    def read_ref(self, name: str, v: str) -> tuple:
        """(value in the unhashed variant, public variant's encoded field or None if it is `v`'s, unhashed variant's
        encoded field or None if the ledger leaves `v`) of reference field `name` holding `v`: Corrector.changes
        and hashing.hash_changes of that reference alone, kept in self.ref_new."""
        job = self.job
        v2 = v
        if job.fix is not None and v in job.fix.id_map:
            v2 = dict(job.fix.changes(None, _only(name, v), None, None)).get(name, v)
        new = dict(hash_changes(None, _only(name, v2), None, None, job.pseudo_of)).get(name, v2)
        self.ref_new[(name, v)] = out = (v2, None if new == v else self._penc(new), None if v2 == v else self._penc(v2))
        return out

    def _penc(self, p: str) -> bytes:
        """_enc(p), kept per pseudonym."""
        got = self.penc.get(p)
        if got is None:
            got = self.penc[p] = _enc(p)
        return got

    def read_handle(self, h: str) -> tuple | None:
        """(the index's token there, public variant's bytes, unhashed variant's bytes or None if the ledger leaves
        it) for the lowercased run of handle characters `h` after an '@' of a text, or None when neither variant
        changes it: Corrector.changes, then hashing.hash_changes, of the text '@h' alone, kept in self.handle_new."""
        out = None
        if h:
            job = self.job
            text = text2 = "@" + h
            if job.fix is not None and h in job.fix.sn_map:
                text2 = dict(job.fix.changes(None, (), None, text)).get(TEXT_FIELD, text)
            new = dict(hash_changes(None, (), None, text2, job.pseudo_of, job.handle_of)).get(TEXT_FIELD, text2)
            if new != text:
                # what extract_handles reads after the '@' in the corrected text (a pseudonym's 44 characters)
                token = min(extract_handles(text2)) if text2 != text else None
                out = (token, new[1:].encode(), None if text2 == text else text2[1:].encode())
        self.handle_new[h] = out
        return out

    def read_list(self, m: str) -> tuple:
        """(distinct entries in the unhashed variant, public variant's encoded value or None if it is `m`, unhashed
        variant's encoded value or None if the ledger leaves `m`) of a mention list value: Corrector.changes and
        hashing.hash_changes of the list alone."""
        job = self.job
        ents = tuple(dict.fromkeys(csvio.list_entries(m)))
        m2 = m
        if job.fix is not None and not job.fix.id_map.keys().isdisjoint(ents):
            m2 = dict(job.fix.changes(None, (), m, None)).get(MENTIONS_FIELD, m)
            ents = tuple(dict.fromkeys(csvio.list_entries(m2)))
        new = dict(hash_changes(None, (), m2, None, job.pseudo_of, job.handle_of)).get(MENTIONS_FIELD, m2)
        return ents, (None if new == m else _enc(new)), (None if m2 == m else _enc(m2))


def _only(name: str, v: str) -> tuple:
    """REFERENCE_FIELDS values of a record holding only `v` in field `name`."""
    return tuple(v if n == name else None for n in REFERENCE_FIELDS)


class _AuthorDrops(dict):
    """Decided author -> whether Corrector.changes of the author alone drops the record, asked once each."""

    def __init__(self, job):
        super().__init__()
        self.job = job

    def __missing__(self, u):
        v = self[u] = self.job.fix.changes(u, (), None, None) is DROP
        return v


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


def _moved(edits: list, starts: list, ends: list) -> tuple[list, list]:
    """Where spans [starts[k], ends[k]) of a block are in _splice(block, edits) (sorted edits, as _splice
    leaves them): each edge moves by the length change of the edits that start before it."""
    if not edits:
        return starts, ends
    at = np.array([s for s, _, _ in edits], np.int64)
    grow = np.cumsum([(0 if v is None else len(v)) - (e - s) for s, e, v in edits])
    grow = np.concatenate([[0], grow])

    def move(x):
        x = np.asarray(x, np.int64)
        return (x + grow[np.searchsorted(at, x, side="left")]).tolist()

    return move(starts), move(ends)


def _splice_arrays(block: bytes, starts, stops, news: list) -> bytes:
    """block with block[starts[k]:stops[k]] replaced by news[k] for each k (spans do not overlap; b"" drops)."""
    if not len(news):
        return block
    order = np.argsort(starts, kind="stable")
    s, e = starts[order].tolist(), stops[order].tolist()
    pieces = [None] * (2 * len(s) + 1)
    pieces[1::2] = [news[k] for k in order.tolist()]
    pieces[0::2] = [block[a:z] for a, z in zip([0, *e], [*s, len(block)])]
    return b"".join(pieces)


def _counts(codes, unique: bool = False):
    """(code, number of times) of each code present in an int64 array (np.unique for sparse codes)."""
    if unique:
        u, k = np.unique(codes, return_counts=True)
        return zip(u.tolist(), k.tolist())
    k = np.bincount(codes)
    u = np.flatnonzero(k)
    return zip(u.tolist(), k[u].tolist())


def _add(counter: Counter, items: list) -> None:
    """counter[key] += k for each (key, k), without Counter.__missing__ (a Python call) per new key."""
    get = counter.get
    for key, k in items:
        counter[key] = get(key, 0) + k


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
