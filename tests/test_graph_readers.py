"""Graph input readers (transforms/graph.py) on bad files, without Spark: every file ends as
rows with reasons or one InputError naming it, and every line is accounted for."""

from __future__ import annotations

import json
import os

import networkx as nx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigil.schemas.config import EdgeInput, QueryInput, VertexInput
from sigil.transforms.graph import (edges_from_file, input_columns, positional_header, queries_from_file,
                                    read_local_graph, vertices_from_file)
from sigil.transforms.records import InputError


def _write(tmp_path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def _rows(batches, *keys) -> list[tuple]:
    return sorted((tuple(r[k] for k in keys) for b in batches for r in b.to_pylist()), key=lambda r: r[0])


def test_headerless_tables_default_to_positions():
    assert EdgeInput(path="e", header=False).columns() == (["0", "1"], [])
    assert EdgeInput(path="e", header=False, src_column="2", weight_column="3").columns() == (["2", "1", "3"], [])
    assert EdgeInput(path="e").columns() == (["src", "dst"], [])
    assert EdgeInput(path="e", header=False, format="parquet").columns() == (["src", "dst"], [])
    assert VertexInput(path="v", header=False, community_column="1").columns() == (["0", "1"], [])
    assert QueryInput(path="q", header=False).columns() == (["0", "1"], ["2"])


def test_headerless_vertex_table_keeps_its_first_line(tmp_path):
    """A SNAP label file: vertex 0 on the first line is a vertex, not a header."""
    path = _write(tmp_path, "labels.txt", "0 1\n1 1\n2 7\n")
    table = VertexInput(path=path, header=False, delimiter=" ", community_column="1")
    assert _rows(vertices_from_file(path, table), "line", "vertex", "community", "reason") == [
        (1, "0", "1", None), (2, "1", "1", None), (3, "2", "7", None)]
    # with a header the same file loses vertex 0, and the configuration says why
    named = VertexInput(path=path, delimiter=" ", id_column="0", community_column="1")
    assert [r[1] for r in _rows(vertices_from_file(path, named), "line", "vertex")] == ["1", "2"]
    assert "graph.vertices.header: false" in positional_header("graph.vertices", named)
    assert positional_header("graph.vertices", table) is None


def test_headerless_edge_list_reads_the_first_two_columns(tmp_path):
    """A third column (SNAP: often a timestamp) is no weight unless weight_column names it."""
    path = _write(tmp_path, "edges.txt", "a b 1700000000\nb c 1700000001\n")
    rows = _rows(edges_from_file(path, EdgeInput(path=path, header=False, delimiter=" ")), "line", "src", "dst",
                 "weight")
    assert rows == [(1, "a", "b", 1.0), (2, "b", "c", 1.0)]
    weighted = EdgeInput(path=path, header=False, delimiter=" ", weight_column="2")
    assert [r[1] for r in _rows(edges_from_file(path, weighted), "line", "weight")] == [1700000000.0, 1700000001.0]


@pytest.mark.parametrize("content", ["", "src,dst\n", "# only\n# comments\n", "\n\n", "\ufeff"])
def test_files_without_rows_give_none(tmp_path, content):
    path = _write(tmp_path, "edges.csv", content)
    assert sum(b.num_rows for b in edges_from_file(path, EdgeInput(path=path))) == 0


@pytest.mark.parametrize("content", ["", "query_id,seeds\n"])
def test_query_files_without_rows_give_none(tmp_path, content):
    path = _write(tmp_path, "queries.csv", content)
    assert sum(b.num_rows for b in queries_from_file(path, QueryInput(path=path), 5)) == 0


@pytest.mark.parametrize("name, content, table, message", [
    ("e.parquet", "src,dst\na,b\n", lambda p: EdgeInput(path=p, format="parquet"), "cannot read .*e.parquet"),
    ("v.parquet", b"PAR1 not really", lambda p: VertexInput(path=p, format="parquet"), "cannot read .*v.parquet"),
    ("q.parquet", "x", lambda p: QueryInput(path=p, format="parquet"), "cannot read .*q.parquet"),
    ("e.csv", "\ufeffsrc,dst\na,b\n".encode("utf-16"), lambda p: EdgeInput(path=p), "e.csv: UTF-16"),
    ("e.txt", "0 1\n", lambda p: EdgeInput(path=p, header=False, delimiter=" ", src_column="src"),
     r"e.txt: missing configured column\(s\) \['src'\]; the file has \['0', '1'\]"),
    ("v.csv", "vertex\na\n", lambda p: VertexInput(path=p), r"v.csv: missing configured column\(s\) \['id'\]"),
])
def test_unreadable_files_are_input_errors_naming_them(tmp_path, name, content, table, message):
    path = _write(tmp_path, name, content)
    spec = table(path)
    with pytest.raises(InputError, match=message):
        input_columns(path, spec)
    reader = {EdgeInput: edges_from_file, VertexInput: vertices_from_file}.get(type(spec))
    with pytest.raises(InputError, match=message):
        list(reader(path, spec) if reader else queries_from_file(path, spec, 5))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_without_read_permission_is_an_input_error(tmp_path):
    path = _write(tmp_path, "e.csv", "src,dst\na,b\n")
    os.chmod(path, 0)
    with pytest.raises(InputError, match="cannot read .*e.csv"):
        input_columns(path, EdgeInput(path=path))


@pytest.mark.parametrize("fmt, content", [
    ("gml", 'graph [ node [ id 0 label "a" ] edge [ source 0 target 1 '),
    ("gml", 'graph [ node [ id 0 ] edge [ source 0 target 9 ] ]'),
    ("gml", b"\xff\xfe"),
    ("graphml", '<graphml><graph><edge source="a"'),
    ("graphml", "not xml at all"),
    ("graphml", '<?xml version="1.0"?><graphml><graph edgedefault="undirected"><node/></graph></graphml>'),
])
def test_malformed_gml_and_graphml_are_input_errors(tmp_path, fmt, content):
    path = _write(tmp_path, f"g.{fmt}", content)
    with pytest.raises(InputError, match=rf"g.{fmt}: not a readable {fmt} graph"):
        read_local_graph(path, fmt, max_edges=10)


@pytest.mark.parametrize("header", ["", "multigraph 0", "multigraph 1"])
def test_gml_repeated_edges_are_all_kept(tmp_path, header):
    """graph-ingest sums repeated edges, whatever the GML header says."""
    gml = (f'graph [ {header} node [ id 0 label "a" ] node [ id 1 label "b" ] edge [ source 0 target 1 w 2 ] '
           'edge [ source 1 target 0 w 3 ] edge [ source 0 target 1 w 0.5 ] ]')
    edges, vertices = read_local_graph(_write(tmp_path, "g.gml", gml), "gml", max_edges=10, weight="w")
    assert sorted(r["weight"] for r in edges.to_pylist()) == [0.5, 2.0, 3.0]
    assert {(r["src"], r["dst"]) for r in edges.to_pylist()} <= {("a", "b"), ("b", "a")}
    assert vertices.num_rows == 2


def test_graphml_in_utf16_is_read(tmp_path):
    g = nx.Graph()
    g.add_edge("x", "y")
    path = str(tmp_path / "g.graphml")
    nx.write_graphml(g, path, encoding="utf-16")
    edges, _ = read_local_graph(path, "graphml", max_edges=10)
    assert [(r["src"], r["dst"]) for r in edges.to_pylist()] == [("x", "y")]


def test_jsonl_queries_quarantine_malformed_rows_with_their_ids(tmp_path):
    lines = ['{"query_id": "q1", "seeds": ["a", "b"]}', '{"query_id": "q2", "seeds": "c d", "size": 3}',
             "not json", "", '{"query_id": 5, "seeds": [1, 2]}', "[1, 2]",
             '{"query_id": "q6", "seeds": [{"x": 1}]}', '{"query_id": "q7", "seeds": "a", "size": "x"}',
             '{"query_id": "q8", "seeds": ["a"], "size": {"n": 1}}', '{"seeds": "a"}', '{"query_id": "q10"}']
    path = _write(tmp_path, "q.jsonl", "\n".join(lines) + "\n")
    rows = _rows(queries_from_file(path, QueryInput(path=path, format="jsonl"), 7), "line", "query_id", "seeds",
                 "size", "reason")
    assert [(r[0], r[1], r[4].split(":")[0] if r[4] else None) for r in rows] == [
        (1, "q1", None), (2, "q2", None), (3, None, "malformed line"), (5, "5", None), (6, None, "malformed line"),
        (7, "q6", "wrong type"), (8, "q7", "bad size"), (9, "q8", "wrong type"), (10, None, "missing id"),
        (11, "q10", "no seeds")]
    assert rows[1][2:4] == (["c", "d"], 3) and rows[3][2:4] == (["1", "2"], 7)


def test_parquet_queries_keep_list_seeds_and_quarantine_nested_values(tmp_path):
    path = str(tmp_path / "q.parquet")
    pq.write_table(pa.table({"query_id": ["a", "b", "c"], "seeds": [["x", " "], None, ["y"]], "size": [3, None, 0]}),
                   path)
    rows = _rows(queries_from_file(path, QueryInput(path=path, format="parquet"), 7), "line", "query_id", "seeds",
                 "size", "reason")
    assert rows == [(1, "a", ["x"], 3, None), (2, "b", None, None, "no seeds"),
                    (3, "c", None, None, "bad size: not a positive integer")]
    pq.write_table(pa.table({"query_id": ["a"], "seeds": [[{"v": 1}]]}), path)
    assert _rows(queries_from_file(path, QueryInput(path=path, format="parquet", size_column=None), 7),
                 "line", "query_id", "reason") == [(1, "a", "wrong type: column seeds holds a nested value")]


def test_headerless_csv_queries_without_a_size_column(tmp_path):
    path = _write(tmp_path, "q.csv", "q1,a b\n,c\nq3,\n")
    rows = _rows(queries_from_file(path, QueryInput(path=path, header=False), 4), "line", "query_id", "seeds",
                 "size", "reason")
    assert rows == [(1, "q1", ["a", "b"], 4, None), (2, None, None, None, "missing id"),
                    (3, "q3", None, None, "no seeds")]


# --- properties: any bytes, any edge list -------------------------------------------------

TABLES = [EdgeInput(path="e", header=False), EdgeInput(path="e", header=False, delimiter=" ", weight_column="2"),
          EdgeInput(path="e"), EdgeInput(path="e", format="jsonl"), EdgeInput(path="e", format="tsv", header=False),
          VertexInput(path="v", header=False, community_column="1"), VertexInput(path="v", format="jsonl")]
FAST = settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def _physical_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


@FAST
@given(data=st.one_of(st.binary(max_size=200), st.text("ab01 ,\t#\r\n\"{}:[]-.x\\", max_size=120).map(str.encode)),
       table=st.sampled_from(TABLES))
def test_any_bytes_give_rows_or_one_input_error(tmp_path, data, table):
    """No exception but InputError; each line is at most one row, numbered within the file;
    without quotes (a quoted CSV field may span lines) every line that is not blank, and not
    a header, is exactly one row (an edge, a quarantined row or a comment), unless the file
    holds nothing but comments (no rows)."""
    path = _write(tmp_path, "input", data)
    read = edges_from_file if isinstance(table, EdgeInput) else vertices_from_file
    try:
        lines = [r[0] for r in _rows(read(path, table.model_copy(update={"path": path})), "line")]
    except InputError:
        return
    physical = _physical_lines(data.removeprefix(b"\xef\xbb\xbf"))
    assert len(lines) == len(set(lines)) and all(1 <= n <= len(physical) for n in lines)
    if table.format == "jsonl" or b'"' not in data and not table.header:
        blank = (lambda line: not line.strip(b" \t\r")) if table.format == "jsonl" else (  # JSON white space
            lambda line: line in (b"", b"\r"))
        filled = [n for n, line in enumerate(physical, start=1) if not blank(line)]
        comment = (getattr(table, "comment", None) or "\n").encode() if table.format != "jsonl" else b"\n"
        assert lines == filled or not lines and all(physical[n - 1].startswith(comment) for n in filled)


KINDS = {  # an edge-list line of three fields, and the reason it gets
    "edge": (st.tuples(st.sampled_from("abc"), st.sampled_from("bcd"), st.sampled_from(["1", "2.5", "0"])), None),
    "bad weight": (st.tuples(st.sampled_from("ab"), st.just("c"), st.sampled_from(["-1", "x", "inf", "nan"])),
                   "bad weight"),
    "no source": (st.tuples(st.sampled_from(["", " "]), st.just("c"), st.just("1")), "missing source vertex"),
    "no target": (st.tuples(st.just("a"), st.sampled_from(["", " "]), st.just("1")), "missing target vertex"),
    "short": (st.tuples(st.just("a"), st.just("b")), "malformed line"),
    "long": (st.tuples(st.just("a"), st.just("b"), st.just("1"), st.just("x")), "malformed line"),
    "comment": (st.tuples(st.sampled_from(["# x", "#a", "# a"]), st.just("b"), st.just("1")), "comment"),
}


@st.composite
def edge_lists(draw):
    """(file bytes, header?, delimiter, expected (line, reason) rows)."""
    delimiter = draw(st.sampled_from([",", "\t", " "]))
    header = draw(st.booleans())
    kinds = draw(st.lists(st.sampled_from([*KINDS, "blank"]), max_size=12))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    lines, expected = ([("src", "dst", "w")] if header else []), []
    if not header:  # a headerless file's first line gives the number of columns
        kinds = ["edge", *kinds]
    for kind in kinds:
        if kind == "blank":
            lines.append("")
            continue
        fields, reason = KINDS[kind]
        fields = draw(fields)
        lines.append(tuple(f.strip() for f in fields) if delimiter == " " else fields)  # " " would be a delimiter
        expected.append((len(lines), reason))
    text = end.join(delimiter.join(f) if isinstance(f, (tuple, list)) else f for f in lines)
    return (text + (end if draw(st.booleans()) else "")).encode(), header, delimiter, expected


@FAST
@given(case=edge_lists())
def test_every_edge_list_line_is_accounted_for(tmp_path, case):
    data, header, delimiter, expected = case
    path = _write(tmp_path, "edges.txt", data)
    names = {} if header else {"src_column": "0", "dst_column": "1"}
    table = EdgeInput(path=path, header=header, delimiter=delimiter, weight_column="w" if header else "2", **names)
    got = [(line, reason and reason.split(":")[0]) for line, reason in _rows(edges_from_file(path, table),
                                                                              "line", "reason")]
    assert got == expected


def test_every_jsonl_line_is_accounted_for(tmp_path):
    lines = ['{"src": "a", "dst": "b", "w": 2}', "", "{oops", '{"src": "a", "w": 1}', '{"src": ["a"], "dst": "b"}',
             "[]", '{"src": 1, "dst": 2, "w": "x"}']
    path = _write(tmp_path, "e.jsonl", "\n".join(lines))
    rows = _rows(edges_from_file(path, EdgeInput(path=path, format="jsonl", weight_column="w")), "line", "reason",
                 "raw")
    assert [(n, r and r.split(":")[0]) for n, r, _ in rows] == [
        (1, None), (3, "malformed line"), (4, "missing target vertex"), (5, "wrong type"), (6, "malformed line"),
        (7, "bad weight")]
    assert json.loads(rows[-1][2]) == {"src": "1", "dst": "2", "w": "x"}
