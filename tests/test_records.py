"""Parsing, validation and normalisation of input files."""

import json
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sigil.transforms.records import InputError, list_files, normalize, records_from_file, typed_ok


def source(path, fmt="csv", **kw):
    return SimpleNamespace(name="s", path=str(path), format=fmt, id_column="id", delimiter=None,
                           strip_header=True, column_map={}, **kw)


def attr(name, type="string", normalize=("nfkc", "casefold", "whitespace")):
    return SimpleNamespace(name=name, type=type, date_format="%Y%m%d", normalize=normalize)


def staged(path, fmt="csv", attributes=(attr("name"), attr("age", "int"))):
    return pa.Table.from_batches(list(records_from_file(str(path), source(path, fmt), list(attributes)))).to_pylist()


def test_csv_bad_rows_get_reasons_and_lines(tmp_path):
    f = tmp_path / "people.csv"
    f.write_bytes(b"id, name, age\n1, Alice  Smith, 30\n2, bob\n, carol, 4\n4, \xff\xfe, 7\n5, Eve, x1\n6, \xc3\x89VE, 9\n")
    rows = staged(f)
    bad = {(r["line"], r["reason"].split(":")[0]) for r in rows if r["reason"]}
    assert bad == {(3, "malformed line"), (4, "missing id"), (5, "undecodable bytes in column name"),
                   (6, "wrong type")}
    good = {r["id"]: r for r in rows if not r["reason"]}
    assert set(good) == {"1", "6"}
    assert good["1"]["line"] == 2 and good["6"]["line"] == 7
    assert good["1"]["name"] == " Alice  Smith" and good["1"]["name_norm"] == "alice smith"
    assert good["6"]["name_norm"] == "éve"
    wrong = next(r for r in rows if r["line"] == 6)
    assert wrong["id"] == "5" and json.loads(wrong["raw"])["age"] == " x1"


def test_missing_column_and_missing_path_are_clear_errors(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("id,name\n1,x\n")
    with pytest.raises(InputError, match=r"missing configured column\(s\) \['age'\]"):
        staged(f)
    with pytest.raises(InputError, match="does not exist"):
        list_files(str(tmp_path / "nope.csv"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty file"):
        staged(tmp_path / "empty.csv")


def test_jsonl_malformed_lines_and_nested_values(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text('{"id": "1", "name": "A", "age": 3}\n{"id": 2, "name": \n{"id": "3", "name": {"x": 1}, "age": 1}\n'
                 '[1, 2]\n{"id": "5", "name": "E"}\n')
    rows = staged(f, "jsonl")
    reasons = {r["line"]: r["reason"] for r in rows}
    assert reasons[1] is None and reasons[5] is None
    assert reasons[2].startswith("malformed line") and reasons[4].startswith("malformed line")
    assert reasons[3].startswith("wrong type: column name holds a nested value")
    five = next(r for r in rows if r["line"] == 5)
    assert five["age"] is None and five["name_norm"] == "e"


def test_parquet_rows_are_numbered(tmp_path):
    f = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": ["a", "b", None], "name": ["X", "Y", "Z"], "age": [1, 2, 3]}), f)
    rows = staged(f, "parquet")
    assert [(r["line"], r["reason"]) for r in rows] == [(3, "missing id"), (1, None), (2, None)] or \
        sorted((r["line"], r["reason"] or "") for r in rows) == [(1, ""), (2, ""), (3, "missing id")]
    assert {r["age_norm"] for r in rows if not r["reason"]} == {"1", "2"}


@pytest.mark.parametrize("steps,value,want", [
    (("nfkc",), "ﬁ①", "fi1"),
    (("casefold",), "ÀBC", "àbc"),
    (("whitespace",), "  a \t b  ", "a b"),
    (("strip_punctuation", "whitespace"), "o'neil-smith, jr.", "oneilsmith jr"),
    (("digits_only",), "(02) 9876-5432", "0298765432"),
    (("whitespace",), "   ", None),
])
def test_normalize_steps(steps, value, want):
    assert normalize(pa.array([value, None]), steps).to_pylist() == [want, None]


def test_typed_values():
    ok, canon = typed_ok(pa.array(["19991231", "19991332", None, " 20000101"]), "date")
    assert ok.tolist() == [True, False, True, True]
    assert canon.to_pylist()[0] == "1999-12-31"
    ok, _ = typed_ok(pa.array(["12", "-3", "1.5", "x"]), "int")
    assert ok.tolist() == [True, True, False, False]
    ok, _ = typed_ok(pa.array(["1.5", ".5", "1e3", "e"]), "float")
    assert ok.tolist() == [True, True, True, False]


def test_line_splits_cover_the_file_at_line_starts(tmp_path):
    from sigil.transforms.records import count_newlines, line_splits

    f = tmp_path / "a.csv"
    data = b"".join(b"x" * (i % 37) + b"\n" for i in range(300)) + b"tail"
    f.write_bytes(data)
    ranges = line_splits(str(f), 256)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data) and len(ranges) > 10
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert all(data[start - 1:start] == b"\n" for start, _ in ranges[1:])
    assert sum(count_newlines(str(f), s, e) for s, e in ranges) == 300
