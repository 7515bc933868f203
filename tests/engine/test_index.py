"""The account index an import builds (counts per block, upserted in bulk into a staging file, merged into
the data dir's index) against the one a rebuild gives (every record of the published unhashed files
parsed and counted one by one), and which files carry the lookups' indexes."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from hypothesis import example, given, settings, strategies as st

from workers.engine import index
from workers.engine.api import Engine

from .conftest import TWEET_COLS, USER_COLS, tweet_row, user_row
from .test_fast_import import ACCOUNTS, LEDGER, MENTIONS, TEXT_ST, _write

KEY = b"index-test-key"
TABLES = ("occ", "names", "handles", "both_packed", "followers", "indexed")
LOOKUPS = {"occ_key", "names_key", "handles_h", "both_packed_key", "followers_key"}


def _rows(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    """Every table's rows; a packed pair row as its sorted counts (flushes may split one row's entries)."""
    rows = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}
    rows["both_packed"] = [(*r[:3], sorted(index.unpack_pairs(r[3]).items())) for r in rows["both_packed"]]
    return rows


def _lookups(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(range(len(ACCOUNTS))), TEXT_ST, st.sampled_from(["", "1", "2", "3", "44", "9"]),
                          st.sampled_from(["", "1", "55", "44"]), st.sampled_from(MENTIONS)), min_size=2, max_size=30),
       st.booleans(), st.sampled_from([1, 7, index.FLUSH_AT]), st.sampled_from([None, 400]))
@example([(0, "@at @Dec", "2", "55", "[1, 2]"), (3, "hi @below @below", "1", "", "['3', '44']"),
          (0, "@x_3", "", "", "[44]")], True, 1, 400)
def test_an_imports_index_is_the_one_a_rebuild_counts_record_by_record(rows, ledger, flush_at, chunk):
    """Whatever the flushes (one per block, or one at the end) and the blocks, the bulk path's counts,
    merged across flushes by upsert, are those of a per-record scan of what was published."""
    from workers.engine import importer

    old = index.FLUSH_AT, importer.IMPORT_CHUNK
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        _write(src / "ds_users_csv_unhashed.csv", USER_COLS, [user_row(a) for a in ACCOUNTS], [b"\n"])
        recs = [tweet_row(str(500 + n), ACCOUNTS[a], text, in_reply_to_userid=rep, retweet_userid=rt, user_mentions=m)
                for n, (a, text, rep, rt, m) in enumerate(rows)]
        # Two tweets files: the same key in two files is two index entries.
        _write(src / "ds_tweets_csv_unhashed_1.csv", TWEET_COLS, recs[::2], [b"\n"])
        _write(src / "ds_tweets_csv_unhashed_2.csv", TWEET_COLS, recs[1::2], [b"\r\n"])
        index.FLUSH_AT = flush_at
        if chunk:
            importer.IMPORT_CHUNK = chunk
        try:
            eng = Engine(Path(tmp) / "data", KEY, "k")
            eng.import_dataset(src, "ds", decisions=LEDGER if ledger else None)
            imported = _rows(eng.index.conn)
            eng.reindex()
            rebuilt = _rows(eng.index.conn)
            eng.index.close()
        finally:
            index.FLUSH_AT, importer.IMPORT_CHUNK = old
    assert imported["occ"] and imported["indexed"]
    assert imported == rebuilt


def test_only_the_data_dirs_index_carries_the_lookups(tmp_path, monkeypatch):
    """Lookups search the data dir's index by key and handle; the file an import builds in staging is
    merged whole and goes without those indexes (what makes its upserts cheap)."""
    staged = []
    real = index.Index.merge_from

    def spy(self, other_path, *args):
        with sqlite3.connect(other_path) as c:
            staged.append((_lookups(c), c.execute("SELECT count(*) FROM both_packed").fetchone()[0]))
        c.close()
        return real(self, other_path, *args)

    monkeypatch.setattr(index.Index, "merge_from", spy)
    src = tmp_path / "src"
    src.mkdir()
    _write(src / "ds_users_csv_unhashed.csv", USER_COLS, [user_row(a) for a in ACCOUNTS], [b"\n"])
    _write(src / "ds_tweets_csv_unhashed.csv", TWEET_COLS,
           [tweet_row("9", ACCOUNTS[0], "hi @at", user_mentions="[2]")], [b"\n"])
    eng = Engine(tmp_path / "data", KEY, "k")
    eng.import_dataset(src, "ds")
    assert staged == [(set(), 1)]
    assert LOOKUPS <= _lookups(eng.index.conn)
    assert eng.index.locate("2")["ds"]["both"] == 1
    eng.index.close()


def test_pair_rows_add_up_across_flushes_and_leave_when_nothing_is_left(tmp_path):
    """both_packed keeps one row per (file, id): later flushes append, a subtraction sums the row up again,
    and a row whose counts all cancel goes."""
    conn = index.connect(tmp_path / "index.sqlite", lookups=True)
    buf = index.Buffer(conn, "ds")

    def packed():
        return {(f, k): index.unpack_pairs(p) for f, k, p in conn.execute("SELECT file, key, pairs FROM both_packed")}

    buf.add("f1", [("both", "1", "bob"), ("both", "1", "al"), ("both", "2", "bob")])
    buf.flush()
    buf.add("f1", [("both", "1", "bob")])
    buf.flush()
    assert packed() == {("f1", "1"): {"bob": 2, "al": 1}, ("f1", "2"): {"bob": 1}}
    assert conn.execute("SELECT count(*) FROM both_packed").fetchone()[0] == 2
    buf.add("f1", [("both", "1", "bob"), ("both", "1", "al")], sign=-1)
    buf.flush()
    assert conn.execute("SELECT pairs FROM both_packed WHERE key='1'").fetchone()[0] == "bob:1"
    buf.add("f1", [("both", "1", "bob")], sign=-1)
    buf.flush()
    assert packed() == {("f1", "2"): {"bob": 1}}
    conn.close()


def test_an_index_file_of_the_earlier_schema_is_packed_when_opened(tmp_path):
    """An index written with one both_refs row per (file, id, handle) is moved into both_packed once, and
    lookups answer as before."""
    path = tmp_path / "index.sqlite"
    old = sqlite3.connect(path)
    old.executescript(index.SCHEMA.replace(
        "CREATE TABLE IF NOT EXISTS both_packed(dataset TEXT, file TEXT, key TEXT, pairs TEXT,\n"
        "    PRIMARY KEY(dataset, file, key)) WITHOUT ROWID;",
        "CREATE TABLE IF NOT EXISTS both_refs(dataset TEXT, file TEXT, key TEXT, handle TEXT, n INTEGER,\n"
        "    PRIMARY KEY(dataset, file, key, handle)) WITHOUT ROWID;").replace(
        "CREATE INDEX IF NOT EXISTS both_packed_key ON both_packed(key);", ""))
    old.executemany("INSERT INTO both_refs VALUES(?,?,?,?,?)", [
        ("ds", "f1", "1", "bob", 2), ("ds", "f1", "1", "al", 1), ("ds", "f2", "1", "bob", 1), ("ds", "f1", "2", "bob", 0)])
    old.executemany("INSERT INTO handles VALUES(?,?,?,?)", [("ds", "f1", "bob", 3), ("ds", "f2", "bob", 1)])
    old.executemany("INSERT INTO names VALUES(?,?,?,?)", [("ds", "1", "bob", 1)])
    old.commit()
    old.close()
    idx = index.Index(path)
    tables = {r[0] for r in idx.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "both_refs" not in tables and "both_packed" in tables
    rows = {(f, k): dict(index.unpack_pairs(p)) for f, k, p in idx.conn.execute("SELECT file, key, pairs FROM both_packed")}
    assert rows == {("f1", "1"): {"bob": 2, "al": 1}, ("f2", "1"): {"bob": 1}}
    assert idx.locate("1")["ds"]["both"] == 3
    assert idx.locate("1", ["al"])["ds"]["both"] == 1
    idx.close()
    index.connect(path).close()  # opened again: nothing left to move
