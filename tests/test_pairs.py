"""transforms/pairs.py: orientation, pairs files, and the true pairs of an id pattern (no Spark)."""

from __future__ import annotations

from itertools import combinations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sigil.transforms.pairs import KEYS, distinct_pairs, entity_of, entity_pairs, normalised_pairs, oriented, read_pairs
from sigil.transforms.records import InputError

TEXT = st.text(alphabet="ab\u00e9\ufffd\U0001F600 ", max_size=3)


def rows(table) -> list[tuple]:
    return list(zip(*(table[k].to_pylist() for k in KEYS)))


def by_bytes(x: tuple, y: tuple) -> tuple:
    """The pair (x, y) of (source, id) oriented by UTF-8 bytes: the obviously correct reference."""
    key = lambda r: tuple(v.encode() for v in r)  # noqa: E731
    return (*x, *y) if key(x) <= key(y) else (*y, *x)


def test_orientation_compares_utf8_bytes_as_spark_does():
    # U+FFFD < U+1F600 in UTF-8 bytes (and code points); in Java's UTF-16 order the emoji's
    # surrogate 0xD83D comes first. é (0xC3 0xA9) sorts after z (0x7A).
    x = pa.array(["\U0001F600", "a", "s", "s"])
    y = pa.array(["\ufffd", "a", "s", "s"])
    got = oriented(pa.array(["s", "s", "t", "s"]), pa.array(["1", "é", "1", "2"]), pa.array(["s", "s", "s", "s"]),
                   pa.array(["2", "z", "9", "1"]))
    assert rows(got) == [("s", "1", "s", "2"), ("s", "z", "s", "é"), ("s", "9", "t", "1"), ("s", "1", "s", "2")]
    got = oriented(x, pa.array(["i"] * 4), y, pa.array(["j"] * 4))
    assert rows(got)[0] == ("\ufffd", "j", "\U0001F600", "i")
    assert "\ufffd".encode("utf-16-be") > "\U0001F600".encode("utf-16-be")  # the order Spark does not use


def test_orientation_with_nulls_follows_sparks_three_valued_logic():
    # a null id cannot decide, but different sources still do; an undecided pair stays as it is
    got = oriented(pa.array(["b", "a", None]), pa.array([None, None, "2"]), pa.array(["a", "a", "a"]),
                   pa.array(["1", "1", "1"]))
    assert rows(got) == [("a", "1", "b", None), ("a", None, "a", "1"), (None, "2", "a", "1")]


@given(st.lists(st.tuples(TEXT, TEXT, TEXT, TEXT), max_size=20))
def test_orientation_against_byte_order(data):
    cols = [pa.array([r[k] for r in data], pa.string()) for k in range(4)]
    got = rows(oriented(*cols))
    assert got == [by_bytes((sx, ix), (sy, iy)) for sx, ix, sy, iy in data]
    assert got == [(*min((sx, ix), (sy, iy)), *max((sx, ix), (sy, iy))) for sx, ix, sy, iy in data]  # = str order


def test_a_file_with_spaces_in_its_headers_and_values(tmp_path):
    file = tmp_path / "truth.csv"
    file.write_text(" id_a , id_b ,label\n rec-2 ,rec-1,1\nrec-1,rec-2,0\n007,008,1\n")
    got = read_pairs(str(file), "csv", "dedupe", ["people"], extra=["label"])
    assert got.column_names == [*KEYS, "label"]
    assert got.to_pylist() == [
        {"source_a": "people", "id_a": "rec-1", "source_b": "people", "id_b": "rec-2", "label": "1"},
        {"source_a": "people", "id_a": "007", "source_b": "people", "id_b": "008", "label": "1"}]  # strings kept


def test_link_mode_names_the_first_and_second_source_and_a_directory_is_read_whole(tmp_path):
    (tmp_path / "pairs").mkdir()
    pq.write_table(pa.table({"idA": [1, 2], "idB": [10, 20]}), tmp_path / "pairs" / "part-0.parquet")
    pq.write_table(pa.table({"idA": [1], "idB": [10]}), tmp_path / "pairs" / "part-1.parquet")
    (tmp_path / "pairs" / "_SUCCESS").write_text("")
    got = read_pairs(str(tmp_path / "pairs"), "parquet", "link", ["abt", "buy", "other"], ("idA", "idB"))
    assert rows(got) == [("abt", "1", "buy", "10"), ("abt", "2", "buy", "20")]


def test_source_columns_in_the_file_are_used_and_oriented():
    batch = pa.record_batch({"source_b": ["a", "b"], "id_a": ["2", "1"], "source_a": ["b", "b"], "id_b": ["1", "0"]})
    got = normalised_pairs(batch, mode="link", sources=["x", "y"])
    assert isinstance(got, pa.RecordBatch)
    assert rows(got) == [("a", "1", "b", "2"), ("b", "0", "b", "1")]


def test_dedupe_fills_the_single_source_and_keeps_tables_as_tables():
    table = pa.table({"id_a": ["2", "1"], "id_b": ["1", "3"]})
    got = normalised_pairs(table, mode="dedupe", sources=["only"])
    assert isinstance(got, pa.Table)
    assert rows(got) == [("only", "1", "only", "2"), ("only", "1", "only", "3")]
    assert rows(distinct_pairs(normalised_pairs(pa.concat_tables([table, table]), sources=["only"]))) == rows(got)


def test_missing_columns_and_sources_are_named():
    batch = pa.record_batch({"left": ["1"], "id_b": ["2"]})
    with pytest.raises(InputError, match=r"no column\(s\) \['id_a', 'label'\]; they have \['left', 'id_b'\]"):
        normalised_pairs(batch, extra=["label"], sources=["s"])
    with pytest.raises(InputError, match="need 2 source"):
        normalised_pairs(pa.record_batch({"id_a": ["1"], "id_b": ["2"]}), mode="link", sources=["s"])
    with pytest.raises(InputError, match="source_b"):
        normalised_pairs(pa.record_batch({"id_a": ["1"], "id_b": ["2"], "source_a": ["s"]}), sources=["s"])


def test_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_pairs(str(tmp_path / "nope.csv"), "csv", "dedupe", ["s"])
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match=r"t\.csv: the pairs have no column"):
        read_pairs(str(tmp_path / "t.csv"), "csv", "dedupe", ["s"])


def test_entity_of_has_python_re_semantics():
    ids = pa.array(["rec-1-org", "x rec-2-dup", "rec--org", "rec-3", None, "b"])
    assert entity_of(ids, r"rec-(\d*)-").to_pylist() == ["1", "2", None, None, None, None]  # searched, empty is null
    assert entity_of(ids, r"^(a)?b").to_pylist() == [None] * 5 + [None]  # a group that did not take part
    assert entity_of(pa.chunked_array([["é1"], ["é2"]]), r"(\w)\d").to_pylist() == ["é", "é"]  # Unicode \w
    with pytest.raises(ValueError, match="no group"):
        entity_of(ids, r"rec-\d+")


IDS = ["1", "2", "10", "\ufffd", "z"]
RECORDS = st.lists(st.tuples(st.sampled_from(["a", "b", "\u00e9"]), st.sampled_from(IDS)), max_size=25)
ENTITIES = st.dictionaries(st.sampled_from(IDS), st.sampled_from(["e", "f", "", None]))  # an id's entity


@given(RECORDS, ENTITIES, st.sampled_from(["dedupe", "link"]))
def test_entity_pairs_against_brute_force(records, entities, mode):
    table = pa.table({"source": [r[0] for r in records], "id": [r[1] for r in records],
                      "entity": pa.array([entities.get(r[1]) for r in records], pa.string())})
    got = rows(entity_pairs(table, mode))
    want = {by_bytes(x, y) for x, y in combinations(sorted(set(records)), 2)
            if entities.get(x[1]) and entities.get(x[1]) == entities.get(y[1]) and (mode == "dedupe" or x[0] != y[0])}
    assert len(got) == len(set(got)) and set(got) == want


def test_entity_pairs_of_febrl_ids():
    ids = ["rec-1-org", "rec-1-dup-0", "rec-1-dup-1", "rec-2-org", "rec-3-dup-0"]
    table = pa.table({"source": ["a", "b", "b", "a", "b"], "id": ids})
    table = table.append_column("entity", entity_of(table["id"], r"^rec-(\d+)-"))
    assert rows(entity_pairs(table, "link")) == [("a", "rec-1-org", "b", "rec-1-dup-0"),
                                                 ("a", "rec-1-org", "b", "rec-1-dup-1")]
    assert len(entity_pairs(table, "dedupe")) == 3
    assert entity_pairs(table.slice(0, 0)).schema == pa.schema([(k, pa.string()) for k in KEYS])


def test_mode_is_checked():
    with pytest.raises(ValueError, match="mode must be one of"):
        entity_pairs(pa.table({"source": ["a"], "id": ["1"], "entity": ["e"]}), "links")
