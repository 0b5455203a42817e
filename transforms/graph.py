"""Graph input: edge lists and vertex tables parsed into Arrow, validated, with reasons.

Like transforms/records.py, every function works on one file (or one byte range of a
large CSV/TSV/JSONL file), so a Spark task, a Beam ``DoFn`` or a notebook calls the same
code. A parsed row keeps its file and line; a row that cannot be used gets a reason:
``malformed line``, ``undecodable bytes``, ``wrong type``, ``missing source vertex``,
``missing target vertex``, ``missing id``, ``bad weight``. Comment lines are kept apart with
the reason ``comment`` (not data, but counted).

GML and GraphML files describe a whole graph in nested syntax that cannot be split; they
are read with networkx on one machine, after counting their edges against a limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sigil.transforms.records import COMMENT, InputError, open_input, parse_file

#: Edges as parsed, before the vertex dictionary: good rows have a null reason.
STAGED_EDGES = pa.schema([
    pa.field("file", pa.string()), pa.field("line", pa.int64()),
    pa.field("src", pa.string()), pa.field("dst", pa.string()), pa.field("weight", pa.float64()),
    pa.field("reason", pa.string()), pa.field("raw", pa.string()),
])

#: Vertices as parsed (a vertex table, or a GML/GraphML graph's nodes).
STAGED_VERTICES = pa.schema([
    pa.field("file", pa.string()), pa.field("line", pa.int64()),
    pa.field("vertex", pa.string()), pa.field("community", pa.string()),
    pa.field("reason", pa.string()), pa.field("raw", pa.string()),
])

LOCAL_FORMATS = ("gml", "graphml")


def _trimmed(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = pc.utf8_trim_whitespace(pc.cast(values, pa.large_string()))
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.large_string()), values)


def _weights(values) -> tuple[np.ndarray, np.ndarray]:
    """Finite, non-negative floats (modularity needs them); ok mask and values."""
    text = pc.utf8_trim_whitespace(pc.cast(values, pa.large_string()))
    ok = pc.fill_null(pc.match_substring_regex(text, r"^[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"), False)
    ok = ok.to_numpy(zero_copy_only=False)
    out = np.ones(len(text), dtype=np.float64)
    if ok.any():
        out[ok] = pc.cast(pc.filter(text, pa.array(ok)), pa.float64()).to_numpy(zero_copy_only=False)
    ok &= np.isfinite(out)
    return ok, out


def _bad_batch(schema: pa.Schema, path: str, rows: list[tuple]) -> pa.RecordBatch:
    cols = {"file": [path] * len(rows), "line": [r[0] for r in rows], "reason": [r[1] for r in rows],
            "raw": [r[2] for r in rows]}
    return pa.RecordBatch.from_pydict({**cols, **{f.name: [None] * len(rows) for f in schema if f.name not in cols}},
                                      schema=schema)


def _rejected(table: pa.Table, lines: np.ndarray, reasons: np.ndarray) -> list[tuple]:
    """(line, reason, the row as JSON) of every row with a reason (not None)."""
    idx = np.flatnonzero(~np.equal(reasons, None))
    if not len(idx):
        return []
    data = table.drop_columns([c for c in ("__line",) if c in table.column_names])
    raw = data.take(pa.array(idx, pa.int64())).to_pylist()
    return [(int(lines[i]), reasons[i], json.dumps(r, ensure_ascii=False, default=str)) for i, r in zip(idx, raw)]


def edge_table(table: pa.Table, lines: np.ndarray, path: str, src: str, dst: str, weight: str | None,
               comment: str | None) -> tuple[pa.RecordBatch, list[tuple]]:
    """Validate parsed edge rows: the good ones as ``STAGED_EDGES``, the others with a reason.

    End points are trimmed (blank is missing); a weight must be a finite number >= 0
    (modularity needs it). Reasons, the later overriding the earlier: ``bad weight``,
    ``missing source vertex``, ``missing target vertex``, and ``comment`` for a row whose
    source starts with ``comment`` (a comment line that has the right number of fields).

    Parameters
    ----------
    table : pyarrow.Table
        Parsed rows, string columns (as ``records.parse_file`` yields them).
    lines : numpy.ndarray
        int64 line of each row in its file.
    path : str
        The file, recorded in each row.
    src, dst : str
        Columns of the end points.
    weight : str or None
        Column of the weights; None gives every edge weight 1.
    comment : str or None
        Comment prefix.

    Returns
    -------
    good : pyarrow.RecordBatch
        ``STAGED_EDGES`` rows with a null ``reason``.
    bad : list of tuple
        ``(line, reason, raw)`` of the other rows, ``raw`` the row as JSON.

    Examples
    --------
    >>> import numpy as np
    >>> import pyarrow as pa
    >>> table = pa.table({"a": ["x", " y ", None, "#c"], "b": ["y", "z", "w", "q"], "w": ["1.5", "-1", "2", "1"]})
    >>> good, bad = edge_table(table, np.array([2, 3, 4, 5]), "e.csv", "a", "b", "w", "#")
    >>> good.select(["line", "src", "dst", "weight"]).to_pylist()
    [{'line': 2, 'src': 'x', 'dst': 'y', 'weight': 1.5}]
    >>> [(line, reason) for line, reason, _ in bad]
    [(3, 'bad weight: not a finite number >= 0'), (4, 'missing source vertex'), (5, 'comment')]
    """
    s, d = _trimmed(table[src]), _trimmed(table[dst])
    reasons = np.full(table.num_rows, None, dtype=object)
    if weight is not None:
        ok_w, w = _weights(table[weight])
        reasons[~ok_w] = "bad weight: not a finite number >= 0"
    else:
        w = np.ones(table.num_rows)
    reasons[~s.is_valid().to_numpy(zero_copy_only=False)] = "missing source vertex"
    reasons[~d.is_valid().to_numpy(zero_copy_only=False)] = "missing target vertex"
    if comment:  # a comment line that happens to have the right number of fields
        starts = pc.fill_null(pc.starts_with(pc.cast(table[src], pa.large_string()), comment), False)
        reasons[starts.to_numpy(zero_copy_only=False)] = COMMENT
    ok = np.equal(reasons, None)
    bad = _rejected(table, lines, reasons)
    keep = pa.array(ok)
    n = int(ok.sum())
    good = pa.RecordBatch.from_pydict({
        "file": pa.array([path] * n, pa.string()), "line": pa.array(lines[ok], pa.int64()),
        "src": pc.cast(pc.filter(s, keep), pa.string()), "dst": pc.cast(pc.filter(d, keep), pa.string()),
        "weight": pa.array(w[ok]), "reason": pa.nulls(n, pa.string()), "raw": pa.nulls(n, pa.string())},
        schema=STAGED_EDGES)
    return good, bad


def edges_from_file(path: str, edges, start: int = 0, end: int | None = None,
                    first_line: int = 1) -> Iterator[pa.RecordBatch]:
    """``STAGED_EDGES`` batches of one edge-list file, or one byte range of it.

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    edges : schemas.config.EdgeInput
        Its ``format, src_column, dst_column, weight_column, header, delimiter, comment``.
    start, end : int, optional
        Byte range ``[start, end)`` of a CSV/TSV/JSONL file, starting at a line start
        (``records.line_splits``); the whole file by default.
    first_line : int, default 1
        The file's line number of the range's first line.

    Yields
    ------
    pyarrow.RecordBatch
        ``STAGED_EDGES`` rows: bad rows (with a ``reason`` and the ``raw`` text, see
        ``edge_table`` and ``records.parse_file``) in a batch of their own, then the good
        ones (null ``reason``).

    Examples
    --------
    >>> import os, tempfile
    >>> from sigil.schemas.config import EdgeInput
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "edges.csv")
    ...     _ = open(path, "w").write("src,dst,weight\\n# a comment\\na,b,1\\nb,c,x\\nc,,1\\n")
    ...     batches = list(edges_from_file(path, EdgeInput(path=path, weight_column="weight")))
    >>> [(r["line"], r["src"], r["reason"]) for b in batches for r in b.to_pylist()]
    [(2, None, 'comment'), (4, None, 'bad weight: not a finite number >= 0'),
     (5, None, 'missing target vertex'), (3, 'a', None)]
    """
    columns = list(dict.fromkeys(c for c in (edges.src_column, edges.dst_column, edges.weight_column) if c))
    for parsed in parse_file(path, edges.format, columns, delimiter=edges.delimiter, start=start, end=end,
                             first_line=first_line, header=edges.header, comment=edges.comment):
        good, bad = edge_table(parsed.table, parsed.table["__line"].to_numpy(), path, edges.src_column,
                               edges.dst_column, edges.weight_column, edges.comment)
        rows = parsed.bad + bad
        if rows:
            yield _bad_batch(STAGED_EDGES, path, rows)
        yield good


def vertices_from_file(path: str, vertices, start: int = 0, end: int | None = None,
                       first_line: int = 1) -> Iterator[pa.RecordBatch]:
    """``STAGED_VERTICES`` batches of one vertex-table file, or one byte range of it.

    A row without an id (blank after trimming) gets the reason ``missing id``.

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    vertices : schemas.config.VertexInput
        Its ``format, id_column, community_column, delimiter``.
    start, end, first_line
        A byte range of the file, as in ``edges_from_file``.

    Yields
    ------
    pyarrow.RecordBatch
        ``STAGED_VERTICES`` rows: bad rows in a batch of their own, then the good ones.

    Examples
    --------
    >>> import os, tempfile
    >>> from sigil.schemas.config import VertexInput
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "vertices.csv")
    ...     _ = open(path, "w").write("id,community\\na,1\\n,2\\nb,\\n")
    ...     batches = list(vertices_from_file(path, VertexInput(path=path, community_column="community")))
    >>> [(r["line"], r["vertex"], r["community"], r["reason"]) for b in batches for r in b.to_pylist()]
    [(3, None, None, 'missing id'), (2, 'a', '1', None), (4, 'b', None, None)]
    """
    columns = list(dict.fromkeys(c for c in (vertices.id_column, vertices.community_column) if c))
    for parsed in parse_file(path, vertices.format, columns, delimiter=vertices.delimiter, start=start, end=end,
                             first_line=first_line):
        t = parsed.table
        ids = _trimmed(t[vertices.id_column])
        ok = ids.is_valid().to_numpy(zero_copy_only=False)
        lines = t["__line"].to_numpy()
        bad = _rejected(t, lines, np.where(ok, None, "missing id").astype(object))
        if parsed.bad or bad:
            yield _bad_batch(STAGED_VERTICES, path, parsed.bad + bad)
        keep, n = pa.array(ok), int(ok.sum())
        community = (pc.cast(pc.filter(_trimmed(t[vertices.community_column]), keep), pa.string())
                     if vertices.community_column else pa.nulls(n, pa.string()))
        yield pa.RecordBatch.from_pydict({
            "file": pa.array([path] * n, pa.string()), "line": pa.array(lines[ok], pa.int64()),
            "vertex": pc.cast(pc.filter(ids, keep), pa.string()), "community": community,
            "reason": pa.nulls(n, pa.string()), "raw": pa.nulls(n, pa.string())}, schema=STAGED_VERTICES)


def count_edges(text: bytes, fmt: str) -> int:
    """Edges of a GML/GraphML document, counted by their keyword without parsing it.

    Parameters
    ----------
    text : bytes
        The document.
    fmt : {"gml", "graphml"}
        Its format: counts ``edge [`` (GML) or ``<edge`` elements (GraphML).

    Returns
    -------
    int

    Examples
    --------
    >>> count_edges(b'graph [ node [ id 0 ] node [ id 1 ] edge [ source 0 target 1 ] ]', "gml")
    1
    >>> count_edges(b'<graph><edge source="a" target="b"/><edge source="b" target="c"></edge></graph>', "graphml")
    2
    """
    pattern = rb"(?<![\w])edge\s*\[" if fmt == "gml" else rb"<edge[\s>/]"
    return sum(1 for _ in re.finditer(pattern, text))


def read_local_graph(path: str, fmt: str, max_edges: int, weight: str | None = None,
                     community: str | None = None) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """A GML/GraphML graph read with networkx on one machine: (STAGED_EDGES, STAGED_VERTICES).

    Vertices are named by their GML ``label`` (or ``id`` when labels are absent), GraphML
    ``id``. The graph's line numbers are not known; ``line`` is the element's position.
    An edge whose weight is not a finite number >= 0 gets the reason ``bad weight``.

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    fmt : {"gml", "graphml"}
        Its format.
    max_edges : int
        Most edges read on one machine (``count_edges`` checks before parsing).
    weight : str, optional
        Edge attribute holding the weight; default 1 per edge.
    community : str, optional
        Node attribute holding a ground-truth community.

    Returns
    -------
    edges : pyarrow.RecordBatch
        ``STAGED_EDGES``.
    vertices : pyarrow.RecordBatch
        ``STAGED_VERTICES``, every node (isolated ones too).

    Raises
    ------
    records.InputError
        When the file has more than ``max_edges`` edges (use an edge list for those) or is
        not a readable graph of that format.

    References
    ----------
    .. [1] networkx, ``parse_gml`` and ``parse_graphml``.
       https://networkx.org/documentation/stable/reference/readwrite/

    Examples
    --------
    >>> import os, tempfile
    >>> gml = 'graph [ node [ id 0 label "a" club "x" ] node [ id 1 label "b" ] edge [ source 0 target 1 w 2.5 ] ]'
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "g.gml")
    ...     _ = open(path, "w").write(gml)
    ...     edges, vertices = read_local_graph(path, "gml", max_edges=10, weight="w", community="club")
    >>> edges.select(["src", "dst", "weight"]).to_pylist()
    [{'src': 'a', 'dst': 'b', 'weight': 2.5}]
    >>> vertices.select(["vertex", "community"]).to_pylist()
    [{'vertex': 'a', 'community': 'x'}, {'vertex': 'b', 'community': None}]
    """
    import networkx as nx

    fs, p = open_input(path)
    with fs.open_input_stream(p) as f:
        text = f.read()
    n_edges = count_edges(text, fmt)
    if n_edges > max_edges:
        raise InputError(f"{path}: {n_edges} edges in a {fmt} file, more than graph.max_local_edges="
                         f"{max_edges}; {fmt} is read on one machine, so convert large graphs to an edge list")
    try:
        if fmt == "gml":
            try:
                g = nx.parse_gml(text.decode("utf-8").splitlines(), label="label")
            except nx.NetworkXError:
                g = nx.parse_gml(text.decode("utf-8").splitlines(), label="id")
        else:
            g = nx.parse_graphml(text.decode("utf-8"))
    except (nx.NetworkXError, ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable {fmt} graph ({err})") from None
    names = [str(v) for v in g.nodes]
    communities = [g.nodes[v].get(community) if community else None for v in g.nodes]
    vertices = pa.RecordBatch.from_pydict({
        "file": [path] * len(names), "line": list(range(1, len(names) + 1)), "vertex": names,
        "community": [None if c is None else str(c) for c in communities],
        "reason": [None] * len(names), "raw": [None] * len(names)}, schema=STAGED_VERTICES)
    rows = []
    for i, (u, v, data) in enumerate(g.edges(data=True), start=1):
        w = data.get(weight, 1.0) if weight else 1.0
        try:
            w = float(w)
            reason = None if np.isfinite(w) and w >= 0 else "bad weight: not a finite number >= 0"
        except (TypeError, ValueError):
            w, reason = None, "bad weight: not a finite number >= 0"
        rows.append((i, str(u), str(v), w if reason is None else None, reason,
                     None if reason is None else json.dumps({"src": str(u), "dst": str(v), weight: str(w)})))
    edges = pa.RecordBatch.from_pydict({
        "file": [path] * len(rows), **{name: [r[i] for r in rows] for i, name in enumerate(
            ("line", "src", "dst", "weight", "reason", "raw"))}}, schema=STAGED_EDGES)
    return edges, vertices


#: Seed queries as parsed: good rows have a null reason.
STAGED_QUERIES = pa.schema([
    pa.field("file", pa.string()), pa.field("line", pa.int64()),
    pa.field("query_id", pa.string()), pa.field("seeds", pa.list_(pa.string())), pa.field("size", pa.int64()),
    pa.field("reason", pa.string()), pa.field("raw", pa.string()),
])


def _seed_lists(values, separator: str) -> pa.ListArray:
    """Seeds as lists of trimmed, non-empty strings: list columns as they are, strings split."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_list(values.type) and not pa.types.is_large_list(values.type):
        values = pc.split_pattern(pc.cast(values, pa.large_string()), separator)
    flat = _trimmed(values.flatten())
    offsets = np.asarray(values.offsets)
    parent = np.repeat(np.arange(len(values)), np.diff(offsets))
    keep = flat.is_valid().to_numpy(zero_copy_only=False)
    counts = np.bincount(parent[keep], minlength=len(values))
    out = pa.ListArray.from_arrays(pa.array(np.r_[0, np.cumsum(counts)], pa.int32()),
                                   pc.cast(pc.filter(flat, pa.array(keep)), pa.string()))
    return pc.if_else(values.is_valid(), out, pa.nulls(len(values), out.type))


def queries_from_file(path: str, queries, default_size: int) -> Iterator[pa.RecordBatch]:
    """``STAGED_QUERIES`` batches of one seed-query file.

    CSV/TSV seeds are one string split by ``separator``; Parquet/JSONL seeds may also be a
    list. Seeds are trimmed and blank ones dropped. A missing size is ``default_size``.
    Reasons, the later overriding the earlier: ``bad size`` (not a positive integer),
    ``no seeds``, ``missing id``.

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    queries : schemas.config.QueryInput
        Its ``format, id_column, seeds_column, separator, size_column, delimiter``.
    default_size : int
        Target community size of a query without one.

    Yields
    ------
    pyarrow.RecordBatch
        ``STAGED_QUERIES`` rows: bad rows in batches of their own, then the good ones.

    Raises
    ------
    records.InputError
        When a configured column is missing from a Parquet/JSONL file.

    Examples
    --------
    >>> import os, tempfile
    >>> from sigil.schemas.config import QueryInput
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "queries.csv")
    ...     _ = open(path, "w").write("query_id,seeds,size\\nq1,a b,5\\nq2,,3\\nq3,c,\\n")
    ...     batches = list(queries_from_file(path, QueryInput(path=path), default_size=10))
    >>> [(r["query_id"], r["seeds"], r["size"], r["reason"]) for b in batches for r in b.to_pylist()]
    [(None, None, None, 'no seeds'), ('q1', ['a', 'b'], 5, None), ('q3', ['c'], 10, None)]
    """
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    columns = list(dict.fromkeys(c for c in (queries.id_column, queries.seeds_column, queries.size_column) if c))
    if queries.format in ("csv", "tsv"):
        parsed = list(parse_file(path, queries.format, columns, delimiter=queries.delimiter))
        bad = [r for p in parsed for r in p.bad]
        table = pa.concat_tables([p.table for p in parsed])
        lines = table["__line"].to_numpy()
        table = table.drop_columns(["__line"])
    else:
        fs, p = open_input(path)
        with fs.open_input_file(p) as f:
            table = pq.read_table(f) if queries.format == "parquet" else pajson.read_json(f)
        missing = [c for c in columns if c not in table.column_names and c != queries.size_column]
        if missing:
            raise InputError(f"{path}: missing query column(s) {missing}; the file has {table.column_names}")
        bad, lines = [], np.arange(1, table.num_rows + 1)
    if bad:
        yield _bad_batch(STAGED_QUERIES, path, bad)
    ids = _trimmed(table[queries.id_column])
    seeds = _seed_lists(table[queries.seeds_column], queries.separator)
    size = np.full(table.num_rows, default_size, dtype=np.int64)
    reasons = np.full(table.num_rows, None, dtype=object)
    if queries.size_column and queries.size_column in table.column_names:
        given = _trimmed(table[queries.size_column])
        present = given.is_valid().to_numpy(zero_copy_only=False)
        ok = pc.fill_null(pc.match_substring_regex(given, r"^\+?\d{1,9}$"), False).to_numpy(zero_copy_only=False)
        reasons[present & ~ok] = "bad size: not a positive integer"
        size[ok] = pc.cast(pc.filter(given, pa.array(ok)), pa.int64()).to_numpy()
        reasons[ok & (size < 1)] = "bad size: not a positive integer"
    lengths = pc.fill_null(pc.list_value_length(seeds), 0).to_numpy(zero_copy_only=False)
    reasons[lengths == 0] = "no seeds"
    reasons[~ids.is_valid().to_numpy(zero_copy_only=False)] = "missing id"
    good = np.equal(reasons, None)
    if not good.all():
        yield _bad_batch(STAGED_QUERIES, path, _rejected(table, lines, reasons))
    keep, n = pa.array(good), int(good.sum())
    yield pa.RecordBatch.from_pydict({
        "file": pa.array([path] * n, pa.string()), "line": pa.array(lines[good], pa.int64()),
        "query_id": pc.cast(pc.filter(ids, keep), pa.string()), "seeds": pc.filter(seeds, keep),
        "size": pa.array(size[good]), "reason": pa.nulls(n, pa.string()), "raw": pa.nulls(n, pa.string())},
        schema=STAGED_QUERIES)
