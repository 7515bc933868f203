"""Account index: an SQLite file saying where each account authors rows and where rows refer to it.

Keys are account identities as they appear in the unhashed (master) variant:
the raw user id, or the current pseudonym of a corrected account. The hashed
variant is row-aligned with the unhashed one, so the counterpart hashed file
of an indexed unhashed file holds the same rows.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from pathlib import Path

from . import csvio
from .handles import extract_handles
from .hashing import split_member, MENTIONS_FIELD, REFERENCE_FIELDS

TABLES = """
CREATE TABLE IF NOT EXISTS occ(dataset TEXT, file TEXT, key TEXT, kind TEXT, n INTEGER,
    PRIMARY KEY(dataset, file, key, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS names(dataset TEXT, key TEXT, sn TEXT, n INTEGER,
    PRIMARY KEY(dataset, key, sn)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS handles(dataset TEXT, file TEXT, handle TEXT, n INTEGER,
    PRIMARY KEY(dataset, file, handle)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS both_packed(dataset TEXT, file TEXT, key TEXT, pairs TEXT,
    PRIMARY KEY(dataset, file, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS followers(dataset TEXT, key TEXT, follower_count INTEGER,
    PRIMARY KEY(dataset, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS indexed(dataset TEXT PRIMARY KEY, version INTEGER, manifest TEXT);
"""
# What Index's lookups read (by account key, by handle). Only the data dir's index answers lookups:
# a file built in staging (an import) or exported as a snapshot is written once and merged whole
# (Index.merge_from reads it by dataset, its primary keys' first column), so it goes without them and
# each upsert maintains one B-tree instead of two.
LOOKUPS = """
CREATE INDEX IF NOT EXISTS occ_key ON occ(key);
CREATE INDEX IF NOT EXISTS names_key ON names(key);
CREATE INDEX IF NOT EXISTS handles_h ON handles(handle);
CREATE INDEX IF NOT EXISTS both_packed_key ON both_packed(key);
CREATE INDEX IF NOT EXISTS followers_key ON followers(key);
"""
SCHEMA = TABLES + LOOKUPS
TABLE_NAMES = ("occ", "names", "handles", "both_packed", "followers")
# both_packed: per file and referred id, the @handles of the rows that name that id and the handle alike, as
# "handle:n" entries joined by "," (a handle may appear more than once: readers add them up; handles hold
# neither ':' nor ','). One row per (file, id) instead of one per (file, id, handle): an import of 400,000
# tweets wrote 124,000 pair rows, and their inserts and merge were about 7% of its CPU.

# SQLite's page cache, KiB. A flush upserts up to FLUSH_AT rows in hash (random) key order: with the
# default 2 MB cache, a table larger than that spills and re-reads pages on almost every row (an
# import of 400,000 tweets writes about 140,000 rows, 20 MB). Pages are allocated as used.
CACHE_KIB = 64 * 1024

FLUSH_AT = 200_000  # counter entries held in memory before an upsert flush


def connect(path: Path, lookups: bool = False) -> sqlite3.Connection:
    """Open an index database (WAL so readers never wait for a writer); with `lookups`, the indexes that
    Index's lookups read (the data dir's index), else a file built once and merged whole (staging, snapshot)."""
    conn = sqlite3.connect(str(path), timeout=60, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    conn.executescript(SCHEMA if lookups else TABLES)
    _pack_old_pairs(conn)
    return conn


def _pack_old_pairs(conn: sqlite3.Connection) -> None:
    """Move an index file written before both_packed (one both_refs row per pair) into it, once."""
    exists = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='both_refs'"
    if not conn.execute(exists).fetchone():
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute(exists).fetchone():  # another process may have moved it while this one waited
            conn.execute("INSERT INTO both_packed SELECT dataset, file, key, group_concat(handle || ':' || n, ',') "
                         "FROM both_refs WHERE n > 0 GROUP BY dataset, file, key")
            conn.execute("DROP TABLE both_refs")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def unpack_pairs(pairs: str) -> Counter:
    """handle -> rows of a both_packed value."""
    out: Counter = Counter()
    for entry in pairs.split(","):
        handle, _, n = entry.rpartition(":")
        out[handle] += int(n)
    return out


def _pack(counts: dict) -> str:
    """A both_packed value of handle -> rows (sorted by handle, so equal counts pack alike)."""
    return ",".join(f"{h}:{n}" for h, n in sorted(counts.items()))


def contributions(kind: str, fields: list[str] | str, cols: dict[str, int] | None = None) -> list[tuple]:
    """What one record adds to the index: ("occ", key, kind) / ("name", key, sn) / ("h", handle) /
    ("both", key, handle) / ("fol", key, n)."""
    if kind == "media":
        name = fields  # a member name
        if name.endswith("/"):
            return []
        return [("occ", split_member(name)[0], "media")]
    uid = fields[cols["userid"]]
    out = [("occ", uid, "users" if kind == "users" else "authored")]
    sn_i = cols.get("user_screen_name")
    if sn_i is not None and fields[sn_i]:
        out.append(("name", uid, fields[sn_i].lower()))
    if kind == "users":
        try:
            out.append(("fol", uid, int(fields[cols["follower_count"]])))
        except (KeyError, ValueError):
            pass
        return out
    refs = set()
    for name in REFERENCE_FIELDS:
        i = cols.get(name)
        if i is not None and fields[i]:
            refs.add(fields[i])
    i = cols.get(MENTIONS_FIELD)
    if i is not None and fields[i] not in ("", "[]"):
        refs.update(csvio.list_entries(fields[i]))
    # A row counts once per account it refers to, whatever the number of references.
    out.extend(("occ", r, "ref") for r in refs)
    i = cols.get("tweet_text")
    if i is not None:
        handles = set(extract_handles(fields[i]))
        out.extend(("h", h) for h in handles)
        # A row that names an account by id and by @handle must count once: these
        # pairs let a lookup subtract the rows it would otherwise count twice.
        out.extend(("both", r, h) for r in refs for h in handles)
    return out


class Buffer:
    """Counts of index entries for one dataset, flushed into a connection by upsert."""

    def __init__(self, conn: sqlite3.Connection, dataset: str):
        self.conn = conn
        self.dataset = dataset
        self.occ: Counter = Counter()
        self.names: Counter = Counter()
        self.handles: Counter = Counter()
        self.both: Counter = Counter()
        self.fol_set: dict[str, int] = {}
        self.fol_del: set[str] = set()

    def add(self, file: str, contribs: list[tuple], sign: int = 1) -> None:
        """Add (sign=1) or subtract (sign=-1) one record's contributions."""
        for c in contribs:
            t = c[0]
            if t == "occ":
                self.occ[(file, c[1], c[2])] += sign
            elif t == "h":
                self.handles[(file, c[1])] += sign
            elif t == "both":
                self.both[(file, c[1], c[2])] += sign
            elif t == "name":
                self.names[(c[1], c[2])] += sign
            elif t == "fol":
                if sign > 0:
                    self.fol_set[c[1]] = c[2]
                    self.fol_del.discard(c[1])
                else:
                    self.fol_del.add(c[1])
        self.maybe_flush()

    def maybe_flush(self) -> None:
        """Flush when the held counts grow past FLUSH_AT (memory stays flat whatever the dataset's size)."""
        if len(self.occ) + len(self.handles) + len(self.both) > FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Write the held counts into the connection (caller owns the transaction)."""
        ds = self.dataset
        c = self.conn
        c.executemany(
            "INSERT INTO occ VALUES(?,?,?,?,?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
            ((ds, f, k, kind, n) for (f, k, kind), n in self.occ.items() if n),
        )
        c.executemany(
            "INSERT INTO handles VALUES(?,?,?,?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
            ((ds, f, h, n) for (f, h), n in self.handles.items() if n),
        )
        groups: dict[tuple[str, str], dict[str, int]] = {}
        for (f, k, h), n in self.both.items():
            if n:
                groups.setdefault((f, k), {})[h] = n
        c.executemany(
            "INSERT INTO both_packed VALUES(?,?,?,?) ON CONFLICT DO UPDATE SET pairs = pairs || ',' || excluded.pairs",
            ((ds, f, k, _pack(hs)) for (f, k), hs in groups.items()),
        )
        c.executemany(
            "INSERT INTO names VALUES(?,?,?,?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
            ((ds, k, sn, n) for (k, sn), n in self.names.items() if n),
        )
        c.executemany("DELETE FROM followers WHERE dataset=? AND key=?", ((ds, k) for k in self.fol_del))
        c.executemany(
            "INSERT OR REPLACE INTO followers VALUES(?,?,?)", ((ds, k, n) for k, n in self.fol_set.items())
        )
        # Only entries this flush subtracted from can have dropped to zero (an import never does):
        # deleting by key keeps a correction's cost independent of the dataset's size.
        c.executemany("DELETE FROM occ WHERE dataset=? AND file=? AND key=? AND kind=? AND n<=0",
                      ((ds, f, k, kind) for (f, k, kind), n in self.occ.items() if n < 0))
        c.executemany("DELETE FROM handles WHERE dataset=? AND file=? AND handle=? AND n<=0",
                      ((ds, f, h) for (f, h), n in self.handles.items() if n < 0))
        # A packed row this flush subtracted from is added up again: what cancelled goes, and so does the row.
        for f, k in {(f, k) for (f, k, _), n in self.both.items() if n < 0}:
            row = c.execute("SELECT pairs FROM both_packed WHERE dataset=? AND file=? AND key=?", (ds, f, k)).fetchone()
            packed = _pack({h: n for h, n in unpack_pairs(row[0]).items() if n > 0}) if row else ""
            if packed:
                c.execute("UPDATE both_packed SET pairs=? WHERE dataset=? AND file=? AND key=?", (packed, ds, f, k))
            else:
                c.execute("DELETE FROM both_packed WHERE dataset=? AND file=? AND key=?", (ds, f, k))
        c.executemany("DELETE FROM names WHERE dataset=? AND key=? AND sn=? AND n<=0",
                      ((ds, k, sn) for (k, sn), n in self.names.items() if n < 0))
        self.occ.clear()
        self.handles.clear()
        self.both.clear()
        self.names.clear()
        self.fol_set.clear()
        self.fol_del.clear()


def scan_file_into(buf: Buffer, kind: str, file: str, f) -> int:
    """Index every record of one unhashed file (opened binary); return its row count."""
    if kind == "media":
        import zipfile

        with zipfile.ZipFile(f) as z:
            names = [i.filename for i in z.infolist()]
        for n in names:
            buf.add(file, contributions("media", n))
        return len(names)
    _, names, blocks = csvio.open_records(f)
    cols = {n: i for i, n in enumerate(names)}
    rows = 0
    for block, line in blocks:
        _, parsed = csvio.parse_block(block, line, len(names))
        for fields in parsed:
            buf.add(file, contributions(kind, fields, cols))
        rows += len(parsed)
    return rows


class Index:
    """The account index of one data dir."""

    def __init__(self, path: Path):
        self.path = Path(path)
        # One connection per thread: an Engine is shared by a threaded web server,
        # and sqlite3 connections must stay in the thread that opened them.
        self._local = threading.local()
        self.conn  # create the file and schema now, in the constructing thread

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection to the index."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, lookups=True)
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def indexed(self) -> dict[str, tuple[int, str]]:
        """dataset -> (version, manifest sha) that the index reflects."""
        return {d: (v, m) for d, v, m in self.conn.execute("SELECT dataset, version, manifest FROM indexed")}

    def stale(self, head: dict) -> list[str]:
        """Datasets whose indexed release differs from HEAD (or that HEAD no longer has)."""
        have = self.indexed()
        out = []
        for ds, entry in head["datasets"].items():
            cur = entry["current"]
            if have.get(ds) != (cur, entry["versions"][str(cur)]):
                out.append(ds)
        out.extend(ds for ds in have if ds not in head["datasets"])
        return out

    def drop_dataset(self, dataset: str) -> None:
        """Forget a dataset (caller owns the transaction)."""
        for table in (*TABLE_NAMES, "indexed"):
            self.conn.execute(f"DELETE FROM {table} WHERE dataset=?", (dataset,))

    def rebuild_dataset(self, dataset: str, version: int, manifest_sha: str, manifest: dict, blobs, progress=False) -> None:
        """Re-scan the unhashed files of a release and replace the dataset's entries, in one transaction."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            self.drop_dataset(dataset)
            buf = Buffer(c, dataset)
            files = [e for e in manifest["files"] if e["variant"] == "unhashed"]
            bar = _bar(progress, sum(e["bytes"] for e in files), f"index {dataset}")
            for e in files:
                with blobs.open(e["sha256"]) as f:
                    scan_file_into(buf, e["kind"], e["path"], f)
                if bar:
                    bar.update(e["bytes"])
            if bar:
                bar.close()
            buf.flush()
            c.execute("INSERT OR REPLACE INTO indexed VALUES(?,?,?)", (dataset, version, manifest_sha))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def merge_from(self, other_path: Path, dataset: str, version: int, manifest_sha: str) -> None:
        """Replace the dataset's entries by those of another index file (built in staging)."""
        connect(other_path).close()  # a file an older version wrote is brought to this schema first
        c = self.conn
        c.execute("ATTACH DATABASE ? AS st", (str(other_path),))
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                self.drop_dataset(dataset)
                for table in TABLE_NAMES:
                    c.execute(f"INSERT INTO main.{table} SELECT * FROM st.{table} WHERE dataset=?", (dataset,))
                c.execute("INSERT OR REPLACE INTO indexed VALUES(?,?,?)", (dataset, version, manifest_sha))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        finally:
            c.execute("DETACH DATABASE st")

    def export_dataset(self, dataset: str, manifest_sha: str, dest: Path) -> bool:
        """Copy the dataset's entries into a new index file at dest (a snapshot for other machines);
        False when this index does not reflect that release."""
        row = self.conn.execute("SELECT manifest FROM indexed WHERE dataset=?", (dataset,)).fetchone()
        if row is None or row[0] != manifest_sha:
            return False
        connect(dest).close()  # the schema
        c = self.conn
        c.execute("ATTACH DATABASE ? AS snap", (str(dest),))
        try:
            c.execute("BEGIN")
            for table in (*TABLE_NAMES, "indexed"):
                c.execute(f"INSERT INTO snap.{table} SELECT * FROM main.{table} WHERE dataset=?", (dataset,))
            c.execute("COMMIT")
        finally:
            c.execute("DETACH DATABASE snap")
        with sqlite3.connect(str(dest)) as snap:
            snap.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to upload
        return True

    def apply_deltas(self, dataset: str, parent: tuple[int, str], new: tuple[int, str], buf_fill) -> bool:
        """Update a dataset from its parent release to the new one by deltas; False if the index
        did not reflect the parent (then the caller leaves it stale for a rebuild)."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            row = c.execute("SELECT version, manifest FROM indexed WHERE dataset=?", (dataset,)).fetchone()
            if row is None or tuple(row) != tuple(parent):
                c.execute("ROLLBACK")
                return False
            buf = Buffer(c, dataset)
            buf_fill(buf)
            buf.flush()
            c.execute("INSERT OR REPLACE INTO indexed VALUES(?,?,?)", (dataset, new[0], new[1]))
            c.execute("COMMIT")
            return True
        except BaseException:
            c.execute("ROLLBACK")
            raise

    # -- lookups ----------------------------------------------------------
    def screen_names(self, key: str) -> set[str]:
        """Lowercased screen names seen for this account in any dataset."""
        return {r[0] for r in self.conn.execute("SELECT sn FROM names WHERE key=?", (key,))}

    def locate(self, key: str, screen_names=None) -> dict[str, dict]:
        """dataset -> {"files": set, "users": n, "authored": n, "ref": n, "media": n, "handles": n,
        "both": n, "followers": int|None} for everything the index knows about this account; @handle
        mentions are looked up for `screen_names` (lowercased; default: the names the index knows);
        "both" counts rows that refer to it by id and by @handle alike."""
        out: dict[str, dict] = {}

        def entry(ds):
            return out.setdefault(
                ds, {"files": set(), "users": 0, "authored": 0, "ref": 0, "media": 0, "handles": 0, "both": 0,
                     "followers": None}
            )

        for ds, file, kind, n in self.conn.execute("SELECT dataset, file, kind, n FROM occ WHERE key=?", (key,)):
            e = entry(ds)
            e["files"].add(file)
            e[kind] += n
        names = list(self.screen_names(key) if screen_names is None else screen_names)
        for sn in names:
            for ds, file, n in self.conn.execute("SELECT dataset, file, n FROM handles WHERE handle=?", (sn,)):
                e = entry(ds)
                e["files"].add(file)
                e["handles"] += n
        if names:
            for ds, pairs in self.conn.execute("SELECT dataset, pairs FROM both_packed WHERE key=?", (key,)):
                counts = unpack_pairs(pairs)
                n = sum(counts.get(sn, 0) for sn in names)
                if n:
                    entry(ds)["both"] += n
        for ds, fc in self.conn.execute("SELECT dataset, follower_count FROM followers WHERE key=?", (key,)):
            if ds in out:
                out[ds]["followers"] = fc
        return out


def _bar(progress: bool, total: int, desc: str):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, leave=False)
