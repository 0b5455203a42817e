"""Parsing, validation and normalisation of input files."""

import json
import os
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


def test_equal_numbers_normalise_equal():
    """Exports write one number many ways (``1999.0`` in one table, ``1999`` in the other):
    a typed attribute's normalised value is one form, so ``exact`` comparisons agree."""
    years = pa.array(["1999.0", "1999", " 1.999E3 ", "1999.00001", "-0.0", "0", None])
    ok, canon = typed_ok(years, "float")
    assert ok.all()
    assert canon.to_pylist() == ["1999", "1999", "1999", "1999.00001", "0", "0", None]
    ok, canon = typed_ok(pa.array(["0042", "+42", "42", "-007", "-0"]), "int")
    assert ok.all() and canon.to_pylist() == ["42", "42", "42", "-7", "0"]
    ok, _ = typed_ok(pa.array(["1e400", "-1e999", "1e308"]), "float")  # beyond the double range
    assert ok.tolist() == [False, False, True]


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


PEOPLE = "id,name,town,age,dob\n" + "".join(f"{i},Name{i},Town{i},{20 + i},19900101\n" for i in range(1, 21))


def people(**rows):
    """PEOPLE with the rows of the given ids (``r4=...``) replaced."""
    lines = PEOPLE.splitlines(keepends=True)
    for key, text in rows.items():
        lines[int(key[1:])] = text
    return "".join(lines)


def reasons(rows):
    return {r["line"]: r["reason"] for r in rows if r["reason"]}


@pytest.mark.parametrize("r10", ['10,"Smith, J",Town10,30,19900101\n', '10,Name10,"",30,19900101\n', None])
def test_an_unclosed_quote_costs_its_line_alone(tmp_path, r10):
    f = tmp_path / "people.csv"
    f.write_text(people(r4='4,"Unclosed Name,Town4,30,19900101\n', **({"r10": r10} if r10 else {})))
    rows = staged(f, attributes=(attr("name"), attr("dob", "date")))
    assert len(rows) == 20 and reasons(rows) == {5: "malformed line: unclosed quote"}
    assert next(r["raw"] for r in rows if r["reason"]) == '4,"Unclosed Name,Town4,30,19900101'
    assert sorted(r["line"] for r in rows) == list(range(2, 22))


def test_a_record_spanning_lines_closes_within_max_record_bytes(tmp_path):
    f = tmp_path / "people.csv"
    f.write_text(people(r4='4,"Name\nstill\nopen",Town4,24,19900101\n'))
    src = source(f)
    attributes = [attr("name", normalize=())]
    rows = [r for b in records_from_file(str(f), src, attributes) for r in b.to_pylist()]
    assert not reasons(rows) and next(r["name"] for r in rows if r["id"] == "4") == "Name\nstill\nopen"
    assert sorted(r["line"] for r in rows) == [2, 3, 4, 5] + list(range(8, 24))  # lines, not records
    rows = [r for b in records_from_file(str(f), src, attributes, max_record_bytes=12) for r in b.to_pylist()]
    assert reasons(rows) == {5: "malformed line: unclosed quote", 6: "malformed line: expected 5 fields, got 1",
                             7: "malformed line: expected 5 fields, got 4"}
    assert len(rows) == 22  # 19 records + 3 quarantined lines


def test_line_numbers_are_physical_lines_in_every_range(tmp_path):
    from sigil.transforms.records import count_newlines, line_splits

    f = tmp_path / "people.csv"
    f.write_text(people(r3='3,"Name\n3",Town3,23,19900101\n', r8='8,"Na""me\r\n8",Town8,28,19900101\r\n',
                        r12='12,Name12\n', r15='15,"x,Town15,35,19900101\n'))
    whole = staged(f)
    parts = []
    for start, end in line_splits(str(f), 64):
        first = count_newlines(str(f), 0, start) + 1
        parts += [r for b in records_from_file(str(f), source(f), [attr("name", normalize=()), attr("age", "int")],
                                               start, end, first) for r in b.to_pylist()]
    for rows in (whole, parts):
        assert sorted(r["line"] for r in rows) == [2, 3, 4, 6, 7, 8, 9, 10] + list(range(12, 24))
        assert reasons(rows) == {15: "malformed line: expected 5 fields, got 2", 18: "malformed line: unclosed quote"}
        names = {r["id"]: r["name"] for r in rows}
        assert names["3"] == "Name\n3" and names["8"] == 'Na"me\r\n8' and names["9"] == "Name9"


def test_long_fields_parse_and_a_long_first_line_is_an_error(tmp_path):
    f = tmp_path / "long.csv"
    f.write_bytes(b"id,name,age\n1," + b"x" * (3 << 20) + b",30\n2,Bob,40\n")
    rows = staged(f)
    assert [len(r["name"]) for r in rows] == [3 << 20, 3] and [r["line"] for r in rows] == [2, 3]
    f.write_bytes(b"x" * (10 << 20))
    with pytest.raises(InputError, match=r"long\.csv: the first line does not end within 1048576 bytes"):
        staged(f)


def test_byte_order_mark_blank_lines_and_crlf(tmp_path):
    f = tmp_path / "excel.csv"
    f.write_bytes(b"\xef\xbb\xbfid,name,age\r\n1,Ann,30\r\n\r\n\n2,Bob,40\r\n")
    rows = staged(f)
    assert [(r["line"], r["id"], r["name"], r["age"]) for r in rows] == [(2, "1", "Ann", "30"), (5, "2", "Bob", "40")]
    j = tmp_path / "excel.jsonl"
    j.write_bytes(b'\xef\xbb\xbf{"id": "1", "name": "Ann", "age": 3}\n\n{"id": "2", "dob": "19900102"}\r\n')
    rows = staged(j, "jsonl", attributes=(attr("name"), attr("dob", "date")))
    assert [(r["line"], r["id"], r["reason"]) for r in rows] == [(1, "1", None), (3, "2", None)]


def test_comment_lines_and_files_without_a_header(tmp_path):
    from sigil.transforms.records import COMMENT, parse_file

    f = tmp_path / "edges.csv"
    f.write_text('# top\na,b\n# a,b\n"c\n",d\n')
    (parsed,) = parse_file(str(f), "csv", ["0", "1"], header=False, comment="#")
    assert parsed.table.to_pylist() == [{"0": "a", "1": "b", "__line": 2}, {"0": "c\n", "1": "d", "__line": 4}]
    assert [(line, reason) for line, reason, _ in parsed.bad] == [(1, COMMENT), (3, COMMENT)]


def test_impossible_dates_are_a_wrong_type():
    values = pa.array(["19900230", "19990229", "1990011", "20000229", "19900101", None])
    ok, canonical = typed_ok(values, "date")
    assert ok.tolist() == [False, False, False, True, True, True]
    assert canonical.to_pylist() == [None, None, None, "2000-02-29", "1990-01-01", None]
    ok, canonical = typed_ok(pa.array(["1/2/1990", "01/02/1990", "31/2/1990", "1/13/1990"]), "date", "%d/%m/%Y")
    assert ok.tolist() == [True, True, False, False] and canonical.to_pylist()[:2] == ["1990-02-01"] * 2
    ok, _ = typed_ok(pa.array(["2 jan 1990", "30 feb 1990"]), "date", "%d %b %Y")
    assert ok.tolist() == [True, False]


@pytest.mark.parametrize("name,content,message", [
    ("a.parquet", b"id,name,age\n1,x,2\n", r"cannot read .*a\.parquet: Parquet magic bytes not found"),
    ("empty.parquet", b"", r"cannot read .*empty\.parquet: Parquet file size is 0 bytes"),
    ("empty.csv", b"", r"empty file \(no header line\): .*empty\.csv"),
    ("blank.csv", b"\n\r\n", r"empty file \(no header line\): .*blank\.csv"),
    ("quote.csv", b'id,"name\n1,2\n', r"quote\.csv: unclosed quote in the header line"),
    ("empty.jsonl", b"", r"empty file: .*empty\.jsonl"),
])
def test_unreadable_files_are_input_errors_naming_them(tmp_path, name, content, message):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(InputError, match=message):
        staged(f, name.split(".")[1])


def test_truncated_parquet_and_unreadable_paths(tmp_path):
    from sigil.transforms.records import read_header

    f = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": ["a"] * 100, "name": ["x"] * 100, "age": [1] * 100}), f)
    f.write_bytes(f.read_bytes()[:-20])
    with pytest.raises(InputError, match=r"cannot read .*a\.parquet"):
        read_header(str(f), "parquet")
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "_SUCCESS").write_text("")
    with pytest.raises(InputError, match=r"no data files under .*dir"):
        list_files(str(tmp_path / "dir"))
    with pytest.raises(InputError, match="delimiter must be one ASCII character"):
        read_header(str(f), "csv", delimiter="§")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_without_read_permission_is_an_input_error(tmp_path):
    f = tmp_path / "secret.csv"
    f.write_text("id,name,age\n1,x,2\n")
    f.chmod(0)
    with pytest.raises(InputError, match=r"cannot read .*secret\.csv: .*Permission denied"):
        staged(f)
