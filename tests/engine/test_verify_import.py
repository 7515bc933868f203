"""The import's proof of a hashed file (verify.verify_import_file): a forbidden value planted anywhere, in
any form the rules forbid, is found; a clean file with decoys around passes. Property tests (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings, strategies as st

from workers.engine import csvio
from workers.engine.hashing import pseudonym
from workers.engine.verify import Forbidden, verify_import_file

from .conftest import TWEET_COLS, tweet_row

KEY = b"verify-import-test-key"
P = {u: pseudonym(KEY, u, 0) for u in ("11", "22", "33", "44")}  # current pseudonyms: allowed
HASHED_ID = "123456789"  # a hashed member: its raw id and screen name are forbidden
HASHED_SN = "Hidden_One"
DECIDED_ID = "987654321012345678"  # a decided account: id, names and earlier pseudonym forbidden
DECIDED_SN = "decided_two"
OLD = pseudonym(KEY, DECIDED_ID, 0)  # its earlier pseudonym
REMOVED_ID = "555"
REMOVED_NEW = pseudonym(KEY, REMOVED_ID, 1)  # a removed account's new pseudonym: never an author
FB = Forbidden(ids=frozenset({HASHED_ID, DECIDED_ID, REMOVED_ID, OLD}), pseudonyms=frozenset({OLD}),
               screen_names=frozenset({HASHED_SN.lower(), DECIDED_SN}),
               removed_ids=frozenset({REMOVED_ID, OLD, REMOVED_NEW}))

AUTHOR = {"userid": P["11"], "user_display_name": P["11"], "user_screen_name": P["11"], "follower_count": "10"}
# Decoys a correct hashed file may hold: forbidden ids inside longer numbers or words, a handle that
# only starts like a forbidden name, a removed account's new pseudonym as a reference.
DECOY_TEXTS = [f"call {HASHED_ID}0 or x{DECIDED_ID}", f"@{HASHED_SN}s and @{DECIDED_SN}_x", "plain = text ==",
               f"RT @{P['22']}: hi", f"mail {HASHED_SN}@example.org"]


def _rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append(tweet_row(str(9000 + i), AUTHOR, DECOY_TEXTS[i % len(DECOY_TEXTS)],
                              in_reply_to_userid=P["22"] if i % 3 == 0 else "",
                              retweet_userid=REMOVED_NEW if i % 4 == 1 else "",
                              user_mentions=f"[{P['33']}, 4000]" if i % 2 else "[]"))
    return rows


def _write(path: Path, rows: list[dict], canonical: bool) -> None:
    with open(path, "wb") as f:
        f.write(csvio.encode_record(TWEET_COLS))
        for n, r in enumerate(rows):
            rec = csvio.encode_record([r[c] for c in TWEET_COLS])
            if not canonical and n == 0:
                rec = rec.replace(b'"false"', b"false", 1)  # an unquoted field: the csv-module path
            f.write(rec)


def _case(s: str, flips: list[bool]) -> str:
    return "".join(c.upper() if f else c.lower() for c, f in zip(s, flips + [False] * len(s)))


# (column, how the value is planted): every form a trace can take in a hashed file.
FORMS = st.one_of(
    st.tuples(st.sampled_from(["userid", "in_reply_to_userid", "retweet_userid"]),
              st.sampled_from([HASHED_ID, DECIDED_ID, REMOVED_ID, OLD]).map(lambda v: ("value", v))),
    st.tuples(st.just("userid"), st.just(("value", REMOVED_NEW))),
    st.tuples(st.just("user_mentions"), st.tuples(st.sampled_from(["entry", "quoted entry"]),
                                                  st.sampled_from([HASHED_ID, DECIDED_ID, OLD]))),
    st.tuples(st.just("user_screen_name"), st.tuples(st.just("name"), st.sampled_from([HASHED_SN, DECIDED_SN]))),
    st.tuples(st.just("tweet_text"), st.tuples(st.just("handle"), st.sampled_from([HASHED_SN, DECIDED_SN]))),
    st.tuples(st.sampled_from(TWEET_COLS), st.just(("anywhere", OLD))),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 40), at=st.integers(0, 10_000), form=FORMS, flips=st.lists(st.booleans(), max_size=20),
       pos=st.integers(0, 3), tail=st.sampled_from(["", " ", ":", ",", "!", "\n", '"', "'s"]),
       canonical=st.booleans(), chunk=st.sampled_from([None, 700]))
# An earlier pseudonym as the whole of an identity field: looked up with the column keys, not the '=' scan.
@example(n=3, at=1, form=("user_display_name", ("anywhere", OLD)), flips=[], pos=0, tail="", canonical=True, chunk=None)
@example(n=3, at=2, form=("user_screen_name", ("anywhere", OLD)), flips=[], pos=0, tail="", canonical=True, chunk=700)
def test_a_planted_trace_is_found(n, at, form, flips, pos, tail, canonical, chunk):
    rows = _rows(n)
    i = at % n
    col, (how, v) = form
    r = rows[i]
    if how == "value":
        r[col] = v
    elif how in ("entry", "quoted entry"):
        e = f"'{v}'" if how == "quoted entry" else v
        entries = [P["33"], "4000"]
        entries.insert(pos % 3, e)
        r[col] = "[" + ", ".join(entries) + "]"
    elif how == "name":
        r[col] = _case(v, flips)
    elif how == "handle":
        words = r[col].split(" ")
        words.insert(pos % (len(words) + 1), "@" + _case(v, flips) + tail)
        r[col] = " ".join(words)
    else:  # an earlier pseudonym anywhere: alone, or inside other text
        old = r[col]
        r[col] = [v, old + v, v + tail + old, old[:pos] + v + old[pos:]][pos]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x_tweets_csv_hashed.csv"
        _write(path, rows, canonical)
        problems = _verify(path, chunk)
    assert problems, (form, i)
    assert any("record at byte" in p for p in problems)


def _verify(path: Path, chunk):
    if chunk is None:
        return verify_import_file(path, "tweets", FB, "hashed/x")
    # Small blocks: a trace near a block's edge is still found (every block starts a record).
    orig = csvio.open_records

    def small(f, _size=None):
        return orig(f, chunk)

    csvio.open_records = small
    try:
        return verify_import_file(path, "tweets", FB, "hashed/x")
    finally:
        csvio.open_records = orig


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 60), canonical=st.booleans(), chunk=st.sampled_from([None, 700]))
def test_a_clean_file_with_decoys_passes(n, canonical, chunk):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x_tweets_csv_hashed.csv"
        _write(path, _rows(n), canonical)
        assert _verify(path, chunk) == []


# --- the unhashed variant's proof while an import writes it (verify.import_block_traces) -------------

UNHASHED_FB = Forbidden(ids=frozenset({DECIDED_ID, REMOVED_ID}), pseudonyms={OLD},
                        screen_names=frozenset({DECIDED_SN}), removed_ids=frozenset({REMOVED_ID, REMOVED_NEW}))
PLAIN = {"userid": "11", "user_display_name": "Eleven", "user_screen_name": "eleven", "follower_count": "10"}


def _block_args(rows: list[dict]):
    """What fastimport hands over for a block of records written as read: the block, record ends, authors,
    screen names and (record, referred ids) of those referring to any."""
    import numpy as np

    recs = [csvio.encode_record([r[c] for c in TWEET_COLS]) for r in rows]
    ends = np.cumsum([len(r) for r in recs])
    recs_of, ids = [], []
    for i, r in enumerate(rows):
        rs = {r[c] for c in ("in_reply_to_userid", "retweet_userid") if r[c]}
        rs.update(csvio.list_entries(r["user_mentions"]))
        recs_of += [i] * len(rs)
        ids += sorted(rs)
    return b"".join(recs), ends, [r["userid"] for r in rows], [r["user_screen_name"] for r in rows], (recs_of, ids)


UNHASHED_FORMS = st.sampled_from([
    ("userid", DECIDED_ID), ("userid", REMOVED_ID), ("in_reply_to_userid", DECIDED_ID),
    ("retweet_userid", DECIDED_ID), ("user_mentions", f"[22, {DECIDED_ID}]"), ("user_screen_name", "Decided_Two"),
    ("tweet_text", f"hi @{DECIDED_SN.upper()}!"), ("tweet_text", f"RT @{DECIDED_SN}: x"),
    ("tweet_text", f"old {OLD} here"), ("user_profile_description", f"was {OLD}"),
])


def _handle_runs(block: bytes, ends):
    """(records, runs) of every '@' of a block, as fastimport hands them over (handles.handle_marks)."""
    import numpy as np

    from workers.engine.handles import handle_marks

    at = [k for k, c in enumerate(block) if c == 0x40]
    runs, _ = handle_marks(block, at)
    return np.searchsorted(ends, at, side="right").tolist(), runs


@settings(max_examples=120, deadline=None)
@given(n=st.integers(1, 30), at=st.integers(0, 1000), form=UNHASHED_FORMS, rewritten=st.booleans(), marks=st.booleans())
def test_a_trace_in_a_written_block_is_found_while_importing(n, at, form, rewritten, marks):
    """Planted in a record written as read, or in a record the ledger wrote anew: found either way, with
    the @handles read from the block or handed over as fastimport reads them."""
    from workers.engine.verify import import_block_traces, rewritten_traces

    rows = [tweet_row(str(100 + i), PLAIN, f"text {i} @someone_else and @{DECIDED_SN}x",
                      user_mentions="[22]" if i % 2 else "[]") for i in range(n)]
    i = at % n
    col, v = form
    bad = dict(rows[i], **{col: v})
    cols = {c: k for k, c in enumerate(TWEET_COLS)}
    if rewritten:  # the block holds the record as read (clean); the ledger's new record holds the trace
        block, ends, uids, sns, refsets = _block_args(rows)
        new = csvio.encode_record([bad[c] for c in TWEET_COLS])
        out = (import_block_traces(UNHASHED_FB, cols, block, ends, uids, sns, refsets, {i}, "u/x",
                                   handles=_handle_runs(block, ends) if marks else None)
               + rewritten_traces(UNHASHED_FB, cols, [(0, new)], "u/x"))
    else:
        rows[i] = bad
        block, ends, uids, sns, refsets = _block_args(rows)
        out = import_block_traces(UNHASHED_FB, cols, block, ends, uids, sns, refsets, set(), "u/x",
                                  handles=_handle_runs(block, ends) if marks else None)
    assert out, form


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 30))
def test_a_clean_written_block_passes_while_importing(n):
    from workers.engine.verify import import_block_traces, rewritten_traces

    rows = [tweet_row(str(100 + i), PLAIN, f"text {i} @{DECIDED_SN}x {DECIDED_ID}0 =",
                      user_mentions=f"[22, {DECIDED_ID}1]" if i % 2 else "[]") for i in range(n)]
    cols = {c: k for k, c in enumerate(TWEET_COLS)}
    block, ends, uids, sns, refsets = _block_args(rows)
    new = csvio.encode_record([dict(rows[0], retweet_userid=REMOVED_NEW)[c] for c in TWEET_COLS])
    assert import_block_traces(UNHASHED_FB, cols, block, ends, uids, sns, refsets, {0}, "u/x") == []
    assert import_block_traces(UNHASHED_FB, cols, block, ends, uids, sns, refsets, {0}, "u/x",
                               handles=_handle_runs(block, ends)) == []
    assert rewritten_traces(UNHASHED_FB, cols, [(0, new)], "u/x") == []


_B64 = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", min_size=43, max_size=43)


@settings(max_examples=100, deadline=None)
@given(pseudos=st.lists(_B64.map(lambda s: (s + "=").encode()), min_size=1, max_size=6, unique=True),
       pieces=st.lists(st.one_of(st.integers(0, 5), st.sampled_from([b"=", b'","', b"@", b"x==", b" ", b"A" * 43])),
                       max_size=30))
def test_compiled_and_window_pseudonym_scans_agree(pseudos, pieces):
    """verify.pseudonym_ends finds the same '=' offsets with Hyperscan literals (a written file's pass) as with
    the window scan: pseudonyms alone, adjacent, sharing their '=' with what follows, at the block's edges."""
    from workers.engine.verify import pseudonym_ends

    block = b"".join(pseudos[p % len(pseudos)] if isinstance(p, int) else p for p in pieces) + b"="
    found = pseudonym_ends(block, frozenset(pseudos))
    assert pseudonym_ends(block, frozenset(pseudos), compiled=True) == found
    assert found == sorted(k for k in range(43, len(block)) if block[k - 43:k + 1] in pseudos)
