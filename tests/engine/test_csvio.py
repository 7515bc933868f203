"""Property tests of the record format, list fields and the handle rule."""

from __future__ import annotations

import re

from hypothesis import example, given, settings, strategies as st

from workers.engine import csvio
from workers.engine.handles import extract_handles, handle_pattern

field_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(
    ['"', '""', "a,b", "line1\nline2", "\r\n", "سورية 🙂", ""])
records = st.lists(st.lists(field_text, min_size=1, max_size=6), min_size=1, max_size=8)


@given(records)
@settings(max_examples=200, deadline=None)
def test_encode_split_parse_round_trip(rows):
    raw = [csvio.encode_record(r) for r in rows]
    block = b"".join(raw)
    assert csvio.split_records(block) == raw
    assert [csvio.parse_record(r) for r in raw] == rows
    # Chunked reading finds the same records whatever the chunk size.
    import io

    blocks = list(csvio.iter_blocks(io.BytesIO(block), chunk=7))
    got = [rec for b, _ in blocks for rec in csvio.split_records(b)]
    assert got == raw
    # Each block comes with the line it starts on (what errors name).
    assert [line for _, line in blocks] == [1 + b"".join(b for b, _ in blocks[:i]).count(b"\n")
                                            for i in range(len(blocks))]


@given(records, st.data())
@settings(deadline=None)
def test_record_span_finds_the_enclosing_record(rows, data):
    raw = [csvio.encode_record(r) for r in rows]
    block = b"".join(raw)
    hit = data.draw(st.integers(0, len(block) - 1))
    s, e = csvio.record_span(block, 0, hit)
    assert block[s:e] in raw and s <= hit < e
    assert csvio.split_records(block[:s]) + [block[s:e]] == raw[: len(csvio.split_records(block[:s])) + 1]


# Fields built to fool a local rule: quotes, LFs, CRs and commas next to each other, empty first fields.
tricky_text = st.text(alphabet='"\n\r,a1', max_size=12)
tricky_records = st.lists(st.lists(tricky_text, min_size=1, max_size=4), min_size=1, max_size=12)


@given(tricky_records, st.data())
@settings(max_examples=300, deadline=None)
def test_sure_boundary_only_names_record_boundaries(rows, data):
    raw = [csvio.encode_record(r) for r in rows]
    block = b"".join(raw)
    starts = {sum(map(len, raw[:i])) for i in range(len(raw) + 1)}
    a = data.draw(st.integers(0, len(block)))
    b = data.draw(st.integers(a, len(block)))
    cut = csvio.sure_boundary(block, a, b)
    assert cut == -1 or (cut in starts and a < cut <= b)


@given(tricky_records, st.integers(1, 64))
@settings(max_examples=300, deadline=None)
def test_record_windows_tile_whole_records_even_without_sure_boundaries(rows, size):
    raw = [csvio.encode_record(r) for r in rows]
    block = b"".join(raw)
    spans = list(csvio.record_windows(block, 0, size))
    assert spans[0][0] == 0 and spans[-1][1] == len(block)
    assert all(b == a2 for (_, b), (a2, _) in zip(spans, spans[1:]))
    assert [r for a, b in spans for r in csvio.split_records(block[a:b])] == raw


ids = st.from_regex(r"[0-9]{1,12}", fullmatch=True)


@given(st.lists(ids, max_size=5), st.booleans(), st.data())
@settings(deadline=None)
def test_list_replace_keeps_spelling(entries, quoted, data):
    q = "'" if quoted else ""
    value = "[" + ", ".join(q + e + q for e in entries) + "]"
    assert csvio.list_entries(value) == entries
    if not entries:
        assert csvio.list_replace(value, {"1": "X"}) == value
        return
    target = data.draw(st.sampled_from(entries))
    new = csvio.list_replace(value, {target: "P+/="})
    assert new == "[" + ", ".join(q + ("P+/=" if e == target else e) + q for e in entries) + "]"


@given(st.lists(st.sampled_from(["1", "22", "007", "1 ", " 2", "'3'", "", "x", "\u0663", "44", "[5]"]), max_size=5),
       st.sampled_from([", ", ",", ",  ", " , "]),
       st.dictionaries(st.sampled_from(["1", "22", "007", "44", "3", "x"]), st.sampled_from(["P+/=", "Q"])))
@settings(deadline=None)
def test_plain_id_lists_read_as_any_other_spelling(entries, sep, mapping):
    """`[1, 22]` is read by a shortcut; with a leading space the same list takes the general split:
    both must give the same entries and the same replacement."""
    value = "[" + sep.join(entries) + "]"
    assert csvio.list_entries(value) == csvio.list_entries(" " + value)
    assert " " + csvio.list_replace(value, mapping) == csvio.list_replace(" " + value, mapping)


def test_list_field_spellings():
    assert csvio.list_entries("") == [] and csvio.list_entries("[]") == []
    assert csvio.list_entries("[http://a.example/x]") == ["http://a.example/x"]
    assert csvio.list_entries("['SyrianArmy', 'Hama']") == ["SyrianArmy", "Hama"]
    assert csvio.list_replace("[1536791610, 932196612]", {"932196612": "abc="}) == "[1536791610, abc=]"


handles = st.from_regex(r"[A-Za-z0-9_]{1,15}", fullmatch=True)


@given(handles, st.text(alphabet="abcXYZ019_ .,:!@#", max_size=3), st.booleans())
@settings(deadline=None)
@example(h="0", tail="0@0", upper=False)  # the handle again inside the tail: still a mention
def test_handle_rule_whole_handle_any_case(h, tail, upper):
    pat = handle_pattern([h.lower()])
    text = "hi @" + (h.upper() if upper else h) + tail
    # The oracle, by hand: some '@' followed by the handle in any case and then no handle character
    # (the tail itself may hold the handle again: "@00@0" mentions @0).
    low, n = text.lower(), len(h)
    should = any(low[i] == "@" and low[i + 1:i + 1 + n] == h.lower()
                 and not re.match(r"[a-z0-9_]", low[i + 1 + n:i + 2 + n]) for i in range(len(low)))
    assert bool(pat.search(text)) == should
    assert (h.lower() in extract_handles(text)) == should


def test_handle_decoys():
    pat = handle_pattern(["ab"])
    assert pat.search("@ab") and pat.search("@AB, hi") and pat.search("x@ab.")
    assert not pat.search("@abc") and not pat.search("@a") and not pat.search("@ab_")


def test_unterminated_quote_is_reported_with_its_line():
    import io

    import pytest

    data = b'"h1","h2"\n"a","b"\n"c","d\n"e","f"\n'
    with pytest.raises(csvio.CsvProblem) as e:
        _, names, blocks = csvio.open_records(io.BytesIO(data))
        for block, line in blocks:
            csvio.parse_block(block, line, 2)
    assert e.value.line == 3
