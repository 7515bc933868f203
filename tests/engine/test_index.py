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
TABLES = ("occ", "names", "handles", "both_refs", "followers", "indexed")
LOOKUPS = {"occ_key", "names_key", "handles_h", "both_refs_key", "followers_key"}


def _rows(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}


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
            staged.append((_lookups(c), c.execute("SELECT count(*) FROM both_refs").fetchone()[0]))
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
