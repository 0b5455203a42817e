"""Property tests of the record readers: any bytes give rows or an InputError, never another
exception, and every physical record of a file is one row, good or quarantined, on its
line (the rules of transforms/records.py's module docstring, checked against a slow
reference that reads one line and one byte at a time)."""

import csv
import io
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigil.transforms.records import InputError, count_newlines, line_splits, parse_file, records_from_file

HEADER = b"id,name,dob\n"
PIECES = [b",", b'"', b'""', b"\n", b"\r\n", b"\r", b"a", b"7", b"19900101", b"19900230", b" ", b"\t", b"\xff",
          b"\xc3\xa9", b"\xef\xbb\xbf", b"x" * 3000]
SETTINGS = settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def source(path, fmt):
    return SimpleNamespace(name="s", path=str(path), format=fmt, id_column="id", delimiter=None, strip_header=True,
                           column_map={})


ATTRIBUTES = [SimpleNamespace(name="name", type="string", date_format="%Y%m%d", normalize=("nfkc", "casefold")),
              SimpleNamespace(name="dob", type="date", date_format="%Y%m%d", normalize=())]


def staged(path, fmt, **kw) -> list[dict]:
    """Rows of the file, or [] for an InputError (the only exception allowed)."""
    try:
        return [r for b in records_from_file(str(path), source(path, fmt), ATTRIBUTES, **kw) for r in b.to_pylist()]
    except InputError:
        return []


def lex(line: bytes, state: str, fields: int, junk: bool) -> tuple[str, int, bool]:
    """The reference lexer over one line's bytes (its trailing \\r is the line end unless quoted)."""
    for c in line[:-1] if line.endswith(b"\r") else line:
        if state == "quoted":
            state = "after" if c == 34 else "quoted"
        elif c == 44:
            state, fields = "start", fields + 1
        elif c == 34 and state in ("start", "after"):
            state = "quoted"
        else:
            junk = junk or state == "after"
            state = "field"
    return state, fields, junk  # a final \r in quotes is data and leaves the state as it is


def reference(data: bytes, ncols: int, max_bytes: int) -> dict[int, str]:
    """Line -> "good" / "fields" / "unclosed" for every record after the header line."""
    lines = data.split(b"\n")
    out, i = {}, 1
    while i < len(lines):
        if lines[i] in (b"", b"\r"):
            i += 1
            continue
        state, fields, junk, j, size = "start", 1, False, i, 0
        while True:
            state, fields, junk = lex(lines[j], state, fields, junk)
            size += len(lines[j])
            if state != "quoted" or j + 1 == len(lines) or size > max_bytes:
                break
            size += 1
            j += 1
        if state == "quoted" or (j > i and (junk or fields != ncols)):
            out[i + 1], i = "unclosed", i + 1
        else:
            out[i + 1], i = "good" if fields == ncols else "fields", j + 1
    return out


def outcome(row) -> str:
    reason = row["reason"] or ""
    return "unclosed" if reason.endswith("unclosed quote") else "fields" if "fields, got" in reason else "good"


@SETTINGS
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=4)), max_size=60),
       st.sampled_from([4, 40, 1 << 20]), st.booleans())
def test_every_physical_record_is_one_row(tmp_path, pieces, max_bytes, bom):
    data = (b"\xef\xbb\xbf" if bom else b"") + HEADER + b"".join(pieces)
    f = tmp_path / "a.csv"
    f.write_bytes(data)
    rows = [r for b in records_from_file(str(f), source(f, "csv"), ATTRIBUTES, max_record_bytes=max_bytes)
            for r in b.to_pylist()]
    assert {r["line"]: outcome(r) for r in rows} == reference(data, 3, max_bytes)
    assert len({r["line"] for r in rows}) == len(rows)


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from(["csv", "tsv", "jsonl", "parquet"]))
def test_any_bytes_give_rows_or_an_input_error(tmp_path, data, fmt):
    f = tmp_path / f"a.{fmt}"
    f.write_bytes(data)
    lines = {r["line"] for r in staged(f, fmt)}
    assert lines <= set(range(1, data.count(b"\n") + 2))


@SETTINGS
@given(st.lists(st.lists(st.text(alphabet='a,"\n é\t\x00', max_size=6), min_size=3, max_size=3), max_size=12))
def test_written_csv_reads_back_on_its_lines(tmp_path, table):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name", "dob"])
    lines = []
    for row in table:
        lines.append(out.getvalue().count("\n") + 1)
        writer.writerow(row)
    f = tmp_path / "a.csv"
    f.write_text(out.getvalue())
    (parsed,) = parse_file(str(f), "csv", ["id", "name", "dob"])
    assert not parsed.bad
    want = [{"id": a, "name": b, "dob": c, "__line": n} for (a, b, c), n in zip(table, lines)]
    assert parsed.table.to_pylist() == want


@SETTINGS
@given(st.lists(st.sampled_from([b'{"id": "1", "name": "A", "dob": "19900101"}', b'{"id": 2, "dob": "19900230"}',
                                 b'{"id": "3", "name": {"x": 1}}', b"[1]", b"{", b"", b"\r", b" \t", b"\xff", b"\x00",
                                 b'{"id": "4"} {"id": "5"}', b'{"id": "6", "name": "\\ud800"}', b"7"]),
                max_size=30),
       st.integers(1, 400))
def test_jsonl_lines_are_rows_and_ranges_agree(tmp_path, lines, split):
    f = tmp_path / "a.jsonl"
    data = b"\n".join(lines) + b"\n"
    f.write_bytes(data)
    physical = {n for n, line in enumerate(lines, 1) if line.strip(b" \t\r")}
    whole = staged(f, "jsonl")
    assert sorted(r["line"] for r in whole) == sorted(physical)  # no physical line: an empty file
    if whole:
        parts = [r for start, end in line_splits(str(f), split)
                 for r in staged(f, "jsonl", start=start, end=end, first_line=count_newlines(str(f), 0, start) + 1)]
        assert sorted((r["line"], r["reason"] or "") for r in parts) == sorted((r["line"], r["reason"] or "")
                                                                              for r in whole)


@SETTINGS
@given(st.lists(st.sampled_from([b"1,a,19900101", b"2,b", b"", b"\r", b"3,\xff,19900101", b",c,19900101",
                                 b"4,d,x", b"5,e,19990229,9"]), max_size=40),
       st.integers(1, 200))
def test_csv_ranges_give_the_rows_of_the_whole_file(tmp_path, lines, split):
    f = tmp_path / "a.csv"
    f.write_bytes(HEADER + b"\n".join(lines))
    whole = staged(f, "csv")
    assert sorted(r["line"] for r in whole) == [n + 2 for n, line in enumerate(lines) if line not in (b"", b"\r")]
    parts = [r for start, end in line_splits(str(f), split)
             for r in staged(f, "csv", start=start, end=end, first_line=count_newlines(str(f), 0, start) + 1)]
    assert sorted(map(str, parts)) == sorted(map(str, whole))
