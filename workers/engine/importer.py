"""Import an unhashed dataset directory as release 1 (unhashed as given + derived hashed variant).

Everything is written into a staging dir inside the data dir and published by
one HEAD swap, so a refused or interrupted import leaves no trace.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from array import array
from datetime import datetime, timezone
from pathlib import Path

from . import csvio, media
from .correct import DROP, Corrector
from .errors import ImportFailed, PublishConflict, VerificationFailed
from .hashing import (MENTIONS_FIELD, TEXT_FIELD, account_digest, split_member, hash_row, hashed_file_name, is_hashed,
                      pseudonym)
from .index import Buffer, connect, contributions
from .store import HashingWriter, Store
from .verify import Forbidden, verify_import_file

USERS_COLUMNS = ("userid", "user_display_name", "user_screen_name", "follower_count")
TWEETS_COLUMNS = (
    "tweetid", "userid", "user_display_name", "user_screen_name", "tweet_text",
    "in_reply_to_userid", "retweet_userid", "user_mentions",
)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")
RUN = 1_000_000  # tweet ids per sorted run of the duplicate check (8 MB, spilled to disk when full)
DUP_SORT_RUNS = 8  # up to this many runs (64 MB of keys) are checked by one sort in memory, not merged
# Smaller blocks than csvio.CHUNK: every record of a block is parsed into Python strings at once.
IMPORT_CHUNK = 2 * 1024 * 1024
_HANDLE = re.compile(r"@([A-Za-z0-9_]+)")  # a handle as handles.replace_handles reads it
_PSEUDONYM_SHAPE = re.compile(rb"[A-Za-z0-9+/]{43}=")  # what hashing.pseudonym gives (base64 of 32 bytes)


def utcnow() -> str:
    """Current time as ISO-8601 UTC."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def classify_files(src_dir: Path, name: str) -> dict:
    """Sort the files of src_dir into users / tweet parts (numeric order) / media; refuse anything else."""
    if not src_dir.is_dir():
        raise ImportFailed(f"{src_dir}: not a directory")
    users = None
    single = None
    parts: dict[int, Path] = {}
    media: list[tuple[tuple, Path]] = []
    esc = re.escape(name)
    part_re = re.compile(rf"^{esc}_tweets_csv_unhashed_(?:part)?0*(\d+)\.csv$")
    media_re = re.compile(rf"^{esc}_tweet_media_unhashed_(.+)\.zip$")
    for p in sorted(src_dir.iterdir()):
        fn = p.name
        if p.is_dir():
            raise ImportFailed(f"{fn}: unexpected directory")
        if fn == f"{name}_users_csv_unhashed.csv":
            users = p
        elif fn == f"{name}_tweets_csv_unhashed.csv":
            single = p
        elif m := part_re.match(fn):
            n = int(m.group(1))
            if n in parts:
                raise ImportFailed(f"{fn}: tweets part {n} given twice ({parts[n].name})")
            parts[n] = p
        elif m := media_re.match(fn):
            key = tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", m.group(1)) if t)
            media.append((key, p))
        else:
            raise ImportFailed(
                f"{fn}: unknown file (expected {name}_users_csv_unhashed.csv, "
                f"{name}_tweets_csv_unhashed[_N].csv or {name}_tweet_media_unhashed_*.zip)"
            )
    if users is None:
        raise ImportFailed(f"{name}_users_csv_unhashed.csv: missing file")
    if single and parts:
        raise ImportFailed(f"{single.name}: both a single tweets file and tweets parts given")
    tweets = [single] if single else [parts[k] for k in sorted(parts)]
    if not tweets:
        raise ImportFailed(f"{name}_tweets_csv_unhashed.csv: missing file")
    return {"users": users, "tweets": tweets, "media": [p for _, p in sorted(media, key=lambda t: t[0])]}


def _tid_key(tid: str) -> int:
    # Tweet ids are decimal; anything else is folded into 63 bits and confirmed on a second pass.
    if tid.isdigit() and len(tid) <= 18:
        return int(tid)
    return int.from_bytes(hashlib.blake2b(tid.encode(), digest_size=8).digest(), "big") >> 1


class _Job:
    """State of one import run."""

    def __init__(self, store: Store, name: str, files: dict, staging: Path, key: bytes, epochs, progress: bool,
                 decisions: dict | None = None, keep: frozenset = frozenset()):
        self.store = store
        self.name = name
        self.files = files
        self.staging = staging
        self.key = key
        self.epochs = epochs  # user id -> current epoch (accounts corrected before)
        self.progress = progress
        self.users: dict[str, int] = {}  # user id -> follower count
        self.pseudo_of: dict[str, str] = {}
        self.handle_of: dict[str, str] = {}  # lowercased screen name of a hashed account -> its pseudonym
        self.hashed_names: dict[str, set] = {}  # raw id of a hashed account -> its screen names (verification)
        self.keep = keep  # ids already pseudonyms (a re-derived release): never hashed again
        self.decisions = decisions or {}  # user id -> (remedy, epoch, screen names): the standing ledger
        # ledger_map's sets, owned by this job: the users file adds to them.
        self.decided_names: dict[str, set] = {u: d[2] for u, d in self.decisions.items()}
        self.decided_ids = frozenset(self.decisions)
        self.all_decided_names: set[str] = set().union(*self.decided_names.values()) if self.decisions else set()
        self.fix: Corrector | None = None
        self._pseudonyms: dict[tuple[str, int], str] = {}
        # The ledger costs per decision only where the dataset holds the account: a decision's pseudonyms
        # are computed when a lookup first finds one of its ids or handles (`held`), or, for the earlier
        # pseudonyms of every decision, once the input holds a pseudonym-shaped token (`all_old`).
        self.held: set[str] = set()  # decided accounts the import found (their pseudonyms are known)
        self.all_old = False
        self.names_added = False  # the users file gave a decided account a screen name its decision lacks
        self.old_pseudonyms: set[str] = set()  # earlier pseudonyms of `held` (of every decision once all_old)
        self.removed_ids: set[str] = {u for u, d in self.decisions.items() if d[0] == "remove"}
        self.forbidden: dict[bool, Forbidden] = {}  # _forbidden of each variant (hashed?)
        self.inline_fb = None  # Forbidden of the unhashed variant, once the users file is read
        self.inline_problems: list[str] = []
        self.inline_checked: set[str] = set()  # unhashed files proven block by block while written
        self.build_fix()
        self.changed = {"accounts_removed": 0, "accounts_rehashed": 0, "rows_removed": 0, "rows_rewritten": 0}
        self.decided_seen: set[str] = set()
        self.entries: list[dict] = []
        self.idx = connect(staging / "index.sqlite")
        self.idx.execute("BEGIN")
        self.buf = Buffer(self.idx, name)
        self.runs: list[Path] = []  # sorted runs on disk: memory stays flat whatever the file size
        self.cur_run = array("q")
        self.bar = None
        if progress:
            from tqdm import tqdm

            total = sum(p.stat().st_size for p in [files["users"], *files["tweets"], *files["media"]])
            self.bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"import {name}", leave=False)

    def fail(self, path: Path, line: int, problem: str):
        raise ImportFailed(f"{path.name}: line {line}: {problem}")

    def pseudonym(self, uid: str, epoch: int) -> str:
        """pseudonym(key, uid, epoch), computed once per import (the ledger asks for each several times)."""
        k = (uid, epoch)
        p = self._pseudonyms.get(k)
        if p is None:
            p = self._pseudonyms[k] = pseudonym(self.key, uid, epoch)
        return p

    def build_fix(self) -> None:
        """The Corrector of the standing decisions: dict lookups per record, nothing compiled, and no
        pseudonym computed before a lookup finds the account (_LedgerMap)."""
        if not self.decisions:
            return
        ids = _LedgerMap(self, dict(zip(self.decisions, self.decisions)))
        names = _LedgerMap(self, {sn: uid for uid, sns in self.decided_names.items() for sn in sns})
        self.fix = Corrector.of_maps(ids, set(self.removed_ids), names, _LedgerMap(self, {}))

    def resolve(self, uid: str) -> str:
        """The decided account's pseudonym at its decision's epoch; the first call marks it held and
        records its earlier pseudonyms (what the proof must find nowhere) and, when removed, its ids."""
        uid = str(uid)
        remedy, epoch, _ = self.decisions[uid]
        if uid not in self.held:
            self.held.add(uid)
            old = [self.pseudonym(uid, k) for k in range(epoch)]
            self.old_pseudonyms.update(old)
            if remedy == "remove":
                self.removed_ids.update(old)
                self.removed_ids.add(self.pseudonym(uid, epoch))
        return self.pseudonym(uid, epoch)

    def add_all_old(self) -> None:
        """Put the earlier pseudonyms of every decision in the Corrector's maps: the input holds a token
        shaped like a pseudonym (a re-derived release, or a master quoting one), which may be one."""
        if self.all_old or self.fix is None:
            return
        self.all_old = True
        fix = self.fix
        for uid, (remedy, epoch, _) in self.decisions.items():
            for k in range(epoch):
                p = self.pseudonym(uid, k)
                self.old_pseudonyms.add(p)
                fix.id_map.pending(p, uid)
                fix.pseudo_map.pending(p, uid)
                if remedy == "remove":
                    fix.removed.add(p)
                    self.removed_ids.add(p)

    def watch(self, data: bytes) -> None:
        """add_all_old once `data` (input bytes) holds a pseudonym-shaped token; none in a platform's master."""
        if not self.all_old and self.fix is not None and b"=" in data and _PSEUDONYM_SHAPE.search(data):
            self.add_all_old()

    def touched(self, uid: str, refs, mentions: str, text: str | None) -> bool:
        """Whether the ledger may change a record (a superset of the records Corrector.row changes): its
        author, a reference or a mention entry is a decided id, or its text holds a decided @handle or
        an earlier pseudonym. `text` None: the record's text holds neither '@' nor '='."""
        fix = self.fix
        if fix is None:
            return False
        idm = fix.id_map
        if uid in idm or any(r in idm for r in refs):
            return True
        if mentions not in ("", "[]") and any(e in idm for e in csvio.list_entries(mentions)):
            return True
        if text:
            if "@" in text and any(h.lower() in fix.sn_map for h in _HANDLE.findall(text)):
                return True
            if fix.pseudo_map and "=" in text:
                k = text.find("=", 43)  # as Corrector.fix_text looks for them
                while k >= 0:
                    if text[k - 43:k + 1] in fix.pseudo_map:
                        return True
                    k = text.find("=", k + 1)
        return False

    def touched_fields(self, fields: list[str], cols: dict) -> bool:
        """`touched` of a parsed record."""
        if self.fix is None:
            return False
        g = cols.get
        refs = [fields[i] for i in (g("in_reply_to_userid"), g("retweet_userid")) if i is not None]
        mi, ti = g(MENTIONS_FIELD), g(TEXT_FIELD)
        return self.touched(fields[cols["userid"]], refs, "" if mi is None else fields[mi],
                            None if ti is None else fields[ti])

    def csv_file(self, path: Path, kind: str) -> None:
        """Write the unhashed file (the input with the standing decisions applied) and derive the hashed
        one, index and check every record."""
        un_name = path.name
        h_name = hashed_file_name(un_name)
        rows = 0
        with HashingWriter(self.staging / un_name) as out_u, HashingWriter(self.staging / h_name) as out_h:
            try:
                with open(path, "rb") as f:
                    header, names, blocks = csvio.open_records(f, IMPORT_CHUNK)
                    need = USERS_COLUMNS if kind == "users" else TWEETS_COLUMNS
                    for col in need:
                        if col not in names:
                            self.fail(path, 1, f"missing column {col!r}")
                    cols = {n: i for i, n in enumerate(names)}
                    out_u.write(header)
                    out_h.write(header)
                    from . import fastimport  # numpy: loaded by imports only, not by every command using the engine

                    fast = (fastimport.FastTweets(self, cols, len(names), un_name, len(header))
                            if kind == "tweets" and fastimport.FAST else None)
                    for block, line in blocks:
                        self.watch(block)
                        done = fast.block(block) if fast is not None else None
                        if done is None:
                            if fast is not None:
                                fast.slow = True
                            done = self.slow_block(path, kind, block, line, names, cols, un_name)
                        data_u, data_h, n = done
                        rows += n
                        out_u.write(data_u)
                        out_h.write(data_h)
                        if self.bar:
                            self.bar.update(len(block))
                    if fast is not None:
                        fast.finish()
            except csvio.CsvProblem as e:
                self.fail(path, e.line, e.problem)
            for out, fn, variant in ((out_u, un_name, "unhashed"), (out_h, h_name, "hashed")):
                sha = out.close()
                self.entries.append(
                    {"variant": variant, "kind": kind, "path": fn, "bytes": out.bytes, "rows": rows, "sha256": sha}
                )
        if kind == "users" and self.names_added:
            # A name two decisions share goes to the later one, as Corrector builds it (no users row reads
            # sn_map: a users file has no tweet_text).
            self.fix.sn_map = _LedgerMap(self, {sn: uid for uid, sns in self.decided_names.items() for sn in sns})
        if kind == "users" and self.decisions:
            # What the unhashed tweets files must not hold is known now: checked on each fast block.
            self.inline_fb = _forbidden(self, False)
        if kind == "tweets" and fast is not None and not fast.slow and self.inline_fb is not None:
            self.inline_checked.add(un_name)

    def slow_block(self, path: Path, kind: str, block: bytes, line: int, names: list[str], cols: dict,
                   un_name: str) -> tuple[bytes, bytes, int]:
        """(unhashed bytes, hashed bytes, rows) of one block, every record parsed with the csv module: the
        reference path, taken for every block FastTweets does not take (users files, unusual CSV, errors)."""
        records, parsed = csvio.parse_block(block, line, len(names))
        pieces_u = []
        pieces = []
        rows = 0
        hit_any = False  # none: the unhashed block is the input, byte for byte
        for i, fields in enumerate(parsed):
            # Checked right before it is derived: a users row is hashed by what its own check learnt.
            self.check(path, kind, fields, cols, records, line, i)
            raw = records[i]
            hit = self.touched_fields(fields, cols)
            hit_any = hit_any or hit
            out = self.record(kind, fields, cols, raw, hit, un_name)
            if out is None:
                continue
            pieces_u.append(out[0])
            pieces.append(out[1])
            rows += 1
        return (b"".join(pieces_u) if hit_any else block), b"".join(pieces), rows

    def record(self, kind: str, fields: list[str], cols: dict, raw: bytes, hit: bool, un_name: str):
        """(unhashed record, hashed record) of one checked record, or None when the ledger removes it."""
        if hit:
            res = self.fix.row(fields, cols)
            if res is DROP:
                self.count(kind, fields[cols["userid"]], removed=True)
                return None
            if res is not None:
                self.count(kind, fields[cols["userid"]], removed=False)
                fields = res
                raw = csvio.encode_record(res, csvio.terminator(raw))
        self.buf.add(un_name, contributions(kind, fields, cols))
        new = hash_row(fields, cols, self.pseudo_of, self.handle_of)
        return raw, (csvio.encode_record(new, csvio.terminator(raw)) if new else raw)

    def count(self, kind: str, uid: str, removed: bool) -> None:
        """Tally what the standing decisions changed in a record authored by uid (the manifest gives counts only)."""
        self.changed["rows_removed" if removed else "rows_rewritten"] += 1
        if uid in self.decisions:
            self.decided_seen.add(uid)
        if kind == "users":
            self.changed["accounts_removed" if removed else "accounts_rehashed"] += 1

    def check(self, path, kind, fields, cols, records, line, i) -> None:
        """Per-record checks: unique users, known authors, numeric follower counts, unique tweet ids."""
        uid = fields[cols["userid"]]
        if kind == "users":
            if not uid:
                self.fail(path, csvio.line_of(records, line, i), "empty userid")
            if uid in self.users:
                self.fail(path, csvio.line_of(records, line, i), f"duplicate userid {uid}")
            try:
                fc = self.users[uid] = int(fields[cols["follower_count"]])
            except ValueError:
                self.fail(path, csvio.line_of(records, line, i),
                          f"follower_count {fields[cols['follower_count']]!r} is not an integer")
            sn = fields[cols["user_screen_name"]]
            if uid in self.decisions:
                self.resolve(uid)  # its rows move to the decision's pseudonym instead (or leave)
                if sn and sn.lower() not in self.decided_names[uid]:
                    # The screen names the users file gives decided accounts count for @handles in the tweets.
                    self.decided_names[uid].add(sn.lower())
                    self.all_decided_names.add(sn.lower())
                    self.names_added = True
            elif is_hashed(fc) and uid not in self.keep:
                # Known before hash_row runs on this very row, so the users file is hashed too.
                p = self.pseudo_of[uid] = pseudonym(self.key, uid, self.epochs(uid))
                self.hashed_names[uid] = {sn.lower()} if sn else set()
                if sn:
                    self.handle_of.setdefault(sn.lower(), p)
            return
        if uid not in self.users:
            self.fail(path, csvio.line_of(records, line, i), f"tweet author {uid} is not in the users file")
        tid = fields[cols["tweetid"]]
        if not tid:
            self.fail(path, csvio.line_of(records, line, i), "empty tweetid")
        self.cur_run.append(_tid_key(tid))
        if len(self.cur_run) >= RUN:
            self.spill_run()

    def spill_run(self) -> None:
        """Write the current run of tweet-id keys, sorted, to a staging file."""
        import numpy as np

        path = self.staging / f".tweetids.{len(self.runs)}"
        np.sort(np.frombuffer(self.cur_run, np.int64)).tofile(path)
        self.runs.append(path)
        self.cur_run = array("q")

    def check_duplicates(self) -> None:
        """Find duplicate tweet ids in the sorted runs of 8-byte keys: sorted together in memory when they
        are few (DUP_SORT_RUNS), else merged a read at a time (bounded memory)."""
        import numpy as np

        self.spill_run()
        if len(self.runs) <= DUP_SORT_RUNS:
            keys = np.sort(np.concatenate([np.fromfile(p, np.int64) for p in self.runs]))
            dup_keys = set(keys[1:][keys[1:] == keys[:-1]].tolist())
        else:
            dup_keys = set()
            prev = None
            for k in heapq.merge(*(_read_run(p) for p in self.runs)):
                if k == prev:
                    dup_keys.add(k)
                prev = k
        for p in self.runs:
            p.unlink()
        self.runs = []
        if not dup_keys:
            return
        # Second pass over the few suspicious keys: name the lines of a real duplicate.
        seen: dict[str, tuple[str, int]] = {}
        for path in self.files["tweets"]:
            with open(path, "rb") as f:
                _, names, blocks = csvio.open_records(f)
                ti = names.index("tweetid")
                for block, line in blocks:
                    records, parsed = csvio.parse_block(block, line, len(names))
                    for i, fields in enumerate(parsed):
                        tid = fields[ti]
                        if _tid_key(tid) in dup_keys:
                            where = (path.name, csvio.line_of(records, line, i))
                            if tid in seen:
                                first = seen[tid]
                                self.fail(path, where[1], f"duplicate tweetid {tid} (first at {first[0]} line {first[1]})")
                            seen[tid] = where

    def media_file(self, path: Path) -> None:
        """Check the archive (media.read_archive), index its members, write both variants normalised."""
        un_name = path.name
        h_name = hashed_file_name(un_name)
        try:
            arc = media.read_archive(path, self.keep)
        except media.MediaRefused as e:
            raise ImportFailed(str(e)) from None
        self.watch("\n".join(arc.names).encode("utf-8", "surrogateescape"))
        rename_u = self.fix.member if self.fix is not None else None
        for n, name in enumerate(arc.names, 1):
            if media.member_account(name) not in self.users and media.member_account(name) not in self.keep:
                raise ImportFailed(f"{un_name}: member {n} {name!r}: user {media.member_account(name)} "
                                   "is not in the users file")
            kept = name if rename_u is None else rename_u(name)
            if kept is not None:
                self.buf.add(un_name, contributions("media", kept))

        def rename_h(name: str) -> str | None:
            name = name if rename_u is None else rename_u(name)
            return None if name is None else _rename_member(name, self.pseudo_of)

        with HashingWriter(self.staging / un_name) as uw, HashingWriter(self.staging / h_name) as hw:
            rows_u, rows_h = media.write_archive(arc, [(uw, rename_u), (hw, rename_h)])
            usha, hsha = uw.close(), hw.close()
        # The proof of section 5 for the archive: no byte of the hashed variant's metadata names a hashed account.
        problems = media.metadata_traces(self.staging / h_name, self.pseudo_of,
                                         {sn for sns in self.hashed_names.values() for sn in sns}, label=h_name)
        if problems:
            raise ImportFailed("; ".join(problems[:5]))
        self.entries.append({"variant": "unhashed", "kind": "media", "path": un_name, "bytes": uw.bytes, "rows": rows_u, "sha256": usha})
        self.entries.append({"variant": "hashed", "kind": "media", "path": h_name, "bytes": hw.bytes, "rows": rows_h, "sha256": hsha})
        if self.bar:
            self.bar.update(path.stat().st_size)


class _LedgerMap(dict):
    """key (an id, earlier pseudonym or screen name of a decided account) -> the decided account's
    pseudonym, as the Corrector reads its maps (`in`, get, []). A key first maps to its account's user
    id, marked _Pending; the first lookup that finds it computes the pseudonym (_Job.resolve) and
    stores it in its place."""

    def __init__(self, job: "_Job", items: dict):
        super().__init__({k: _Pending(v) for k, v in items.items()})
        self.job = job

    def pending(self, key, uid: str) -> None:
        """Map key to the decided account uid, its pseudonym computed on first lookup."""
        dict.__setitem__(self, key, _Pending(uid))

    def get(self, key, default=None):
        v = dict.get(self, key)
        if v is None:
            return default
        if type(v) is _Pending:
            v = self.job.resolve(v)
            dict.__setitem__(self, key, v)
        return v

    def __getitem__(self, key):
        v = dict.__getitem__(self, key)
        if type(v) is _Pending:
            v = self.job.resolve(v)
            dict.__setitem__(self, key, v)
        return v


class _Pending(str):
    """A _LedgerMap value not looked up yet: the decided account's user id."""

    __slots__ = ()


def _read_run(path: Path, n: int = 64 * 1024):
    """The keys of a sorted run file, read n at a time."""
    with open(path, "rb") as f:
        while True:
            a = array("q")
            try:
                a.fromfile(f, n)
            except EOFError:  # the last, shorter read still fills `a`
                pass
            if not a:
                return
            yield from a


def _rename_member(name: str, pseudo_of: dict[str, str]) -> str:
    account, rest = split_member(name)
    p = pseudo_of.get(account)
    return p + rest if p else name


def ledger_map(decisions) -> dict[str, tuple[str, int, set]]:
    """user id -> (remedy, epoch, lowercased screen names) of the standing decisions (plain data from the
    ledger: dicts with user_id, remedy, epoch, screen_names); refuses malformed ones."""
    out = {}
    for d in decisions or ():
        uid, remedy, epoch = d.get("user_id"), d.get("remedy"), d.get("epoch")
        if not (isinstance(uid, str) and uid and remedy in ("remove", "rehash") and isinstance(epoch, int)
                and epoch >= 0 and uid not in out):
            raise ImportFailed(f"bad standing decision {d!r}")
        out[uid] = (remedy, epoch, {s.lower() for s in d.get("screen_names") or () if s})
    return out


def _forbidden(job: "_Job", hashed: bool) -> Forbidden:
    """What must appear nowhere in a variant of the new release: the decided accounts' raw ids, earlier
    pseudonyms and screen names; in the hashed variant also every hashed member's raw id and screen names.
    Computed once per variant after the users file (nothing read later changes it)."""
    if hashed not in job.forbidden:
        job.forbidden[hashed] = _forbidden_now(job, hashed)
    return job.forbidden[hashed]


def _forbidden_now(job: "_Job", hashed: bool) -> Forbidden:
    names = job.all_decided_names
    ids = job.decided_ids | job.old_pseudonyms
    if hashed:
        ids = ids.union(job.pseudo_of)
        names = names.union(*job.hashed_names.values())
    # The unhashed variant's Forbidden is built after the users file and checked block by block while
    # the tweets are written: its earlier pseudonyms are the live set, which grows as decisions are found.
    pseudos = frozenset(job.old_pseudonyms) if hashed else job.old_pseudonyms
    return Forbidden(frozenset(ids), pseudos, frozenset(names) - {""}, frozenset(job.removed_ids))


def run_import(store: Store, index, src_dir: Path, name: str, key: bytes, key_id: str, epochs, progress: bool = False,
               decisions=None, *, parent: tuple[int, str] | None = None, keep: frozenset = frozenset(),
               batch_id: str | None = None):
    """Validate and import src_dir as dataset `name` with the standing `decisions` applied; verify; publish
    release 1 (or, with `parent` = (version, manifest sha) of the current release, the next one: a
    re-derivation); return (version, manifest sha, manifest)."""
    src_dir = Path(src_dir)
    if not NAME_RE.match(name or ""):
        raise ImportFailed(f"{name!r}: dataset name must be letters, digits and underscores")
    head = store.read_head()
    if parent is None and name in head["datasets"]:
        raise ImportFailed(f"{name}: dataset already exists")
    ledger = ledger_map(decisions)
    files = classify_files(src_dir, name)
    version = 1 if parent is None else parent[0] + 1
    with store.staging() as staging:
        job = _Job(store, name, files, staging, key, epochs, progress, ledger, keep)
        try:
            job.csv_file(files["users"], "users")
            for p in files["tweets"]:
                job.csv_file(p, "tweets")
            job.check_duplicates()
            for p in files["media"]:
                job.media_file(p)
            job.buf.flush()
            job.idx.execute("COMMIT")
        finally:
            if job.bar:
                job.bar.close()
            job.idx.close()
        # The proof before publication: no file holds what the rules and the ledger forbid.
        fbs = {"unhashed": _forbidden(job, False), "hashed": _forbidden(job, True)}
        problems = list(job.inline_problems)
        for e in job.entries:
            if e["variant"] == "unhashed" and e["path"] in job.inline_checked:
                continue  # proven while written, on every block (fastimport, verify.import_block_traces)
            problems += verify_import_file(staging / e["path"], e["kind"], fbs[e["variant"]], f"{name} {e['variant']}/{e['path']}")
        if problems:
            more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
            raise VerificationFailed("; ".join(problems[:20]) + more)
        users_entry = next(e for e in job.entries if e["kind"] == "users")
        summary = {**job.changed, "files_changed": 0, "standing_decisions_applied": len(job.decided_seen)}
        if parent is not None:
            summary["files_changed"] = len(job.entries)
        manifest = {
            "dataset": name,
            "version": version,
            "parent_version": None if parent is None else parent[0],
            "created_at": utcnow(),
            "key_id": key_id,
            "batch_id": batch_id,
            "accounts": users_entry["rows"],
            "tweets": sum(e["rows"] for e in job.entries if e["kind"] == "tweets" and e["variant"] == "unhashed"),
            "summary": summary,
            "files": job.entries,
        }
        staged = [(staging / e["path"], e["sha256"]) for e in job.entries]
        staged.append(store.stage_json(manifest, staging))
        msha = staged[-1][1]
        # Every decision moves the engine's account state to its epoch: one current pseudonym everywhere.
        state_ref = head.get("state")
        state = store.get_json(state_ref)["accounts"] if state_ref else {}
        new_state = dict(state)
        # Only the decisions about accounts this release holds: a decision about an account no release
        # holds has no pseudonym published anywhere yet, and the import that first holds it records it.
        for uid in sorted(job.held):
            remedy, epoch, _ = ledger[uid]
            want = {"epoch": epoch, "removed": remedy == "remove", "current": job.pseudonym(uid, epoch)}
            d = account_digest(key, uid)
            if new_state.get(d) != want:
                new_state[d] = want
        new_state_ref = state_ref
        if new_state != state:
            staged.append(store.stage_state(new_state, staging))
            new_state_ref = staged[-1][1]
        store.blobs.put_many(staged)

        def update(cur):
            e = cur["datasets"].get(name)
            if parent is None and e is not None:
                raise PublishConflict(f"dataset {name} was published by someone else meanwhile")
            if parent is not None and (e is None or e["current"] != parent[0] or e["versions"][str(parent[0])] != parent[1]):
                raise PublishConflict(f"dataset {name} changed since this re-derivation read it")
            if cur.get("state") != state_ref:
                raise PublishConflict("account state changed since this import read it")
            if parent is None:
                cur["datasets"][name] = {"current": 1, "versions": {"1": msha}}
            else:
                cur["datasets"][name]["versions"][str(version)] = msha
                cur["datasets"][name]["current"] = version
            cur["state"] = new_state_ref
            return cur

        store.publish(update)
        # The index follows HEAD; if this merge is lost, the next sync rebuilds the dataset.
        index.merge_from(staging / "index.sqlite", name, version, msha)
    return version, msha, manifest
