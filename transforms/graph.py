"""Graph input: edge lists, vertex tables and seed queries parsed into Arrow, validated,
with reasons.

Like transforms/records.py, every function works on one file (or one byte range of a
large CSV/TSV/JSONL file), so a Spark task, a Beam ``DoFn`` or a notebook calls the same
code. A parsed row keeps its file and line; a row that cannot be used gets a reason:
``malformed line``, ``undecodable bytes``, ``wrong type``, ``missing source vertex``,
``missing target vertex``, ``missing id``, ``bad weight``, and for queries ``no seeds``,
``bad size``. Comment lines are kept apart with the reason ``comment`` (not data, but
counted). A file that cannot be read at all (not readable, not Parquet, a configured column
missing) raises ``InputError`` naming it: ``input_columns`` checks that on the driver before
any Spark job, and the readers again. A file of nothing but blank and comment lines gives
no rows.

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

from sigil.transforms.records import BOM, COMMENT, InputError, check_columns, open_input, parse_file, read_header

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


def trimmed(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = pc.utf8_trim_whitespace(pc.cast(values, pa.large_string()))
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.large_string()), values)


def nonnegative_weights(values) -> tuple[np.ndarray, np.ndarray]:
    """Finite, non-negative floats (modularity needs them); ok mask and values."""
    text = pc.utf8_trim_whitespace(pc.cast(values, pa.large_string()))
    ok = pc.fill_null(pc.match_substring_regex(text, r"^[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"), False)
    ok = ok.to_numpy(zero_copy_only=False)
    out = np.ones(len(text), dtype=np.float64)
    if ok.any():
        out[ok] = pc.cast(pc.filter(text, pa.array(ok)), pa.float64()).to_numpy(zero_copy_only=False)
    ok &= np.isfinite(out)
    return ok, out


def input_columns(path: str, table) -> list[str] | None:
    """The columns to read from one input file, checked without reading its rows.

    The graph jobs call it on the driver for every file before any Spark job, so that a file
    that cannot be read fails there, with its name, and not inside a task.

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    table : schemas.config.EdgeInput, VertexInput or QueryInput
        Its ``format, header, delimiter`` (and ``comment``), and ``columns()``: the required
        and the optional columns.

    Returns
    -------
    list of str or None
        The required columns and the optional ones the file has (JSONL: all, since an
        object may leave keys out); None for a file that holds no rows: empty, or nothing
        but blank and comment lines.

    Raises
    ------
    records.InputError
        When the file cannot be read (as Parquet, for ``parquet``), starts with a UTF-16
        byte-order mark, or lacks a required column.

    Examples
    --------
    >>> import os, tempfile
    >>> from sigil.schemas.config import EdgeInput
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "edges.txt")
    ...     _ = open(path, "w").write("0 1\\n1 2\\n")
    ...     print(input_columns(path, EdgeInput(path=path, delimiter=" ", header=False)))
    ...     try:
    ...         input_columns(path, EdgeInput(path=path, delimiter=" "))
    ...     except InputError as err:
    ...         print(str(err).split(": ", 1)[1])
    ['0', '1']
    missing configured column(s) ['src', 'dst']; the file has ['0', '1']
    """
    required, optional = table.columns()
    fs, p = open_input(path)
    try:
        size, head = fs.get_file_info(p).size, b""
        if size and table.format != "parquet":
            with fs.open_input_stream(p) as f:
                head = f.read(1 << 20)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err}") from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path}: UTF-16 text (a byte-order mark); {table.format} files must be UTF-8")
    comment = getattr(table, "comment", None) if table.format in ("csv", "tsv") else None
    if not size or size == len(head) and all(line in (b"", b"\r") or comment and line.startswith(comment.encode())
                                             for line in head.removeprefix(BOM).split(b"\n")):
        return None  # nothing but blank lines (and csv/tsv comment lines)
    if table.format == "jsonl":
        return list(dict.fromkeys([*required, *optional]))
    names = read_header(path, table.format, table.delimiter, header=table.header, comment=comment)
    check_columns(path, required, names)
    return list(dict.fromkeys([*required, *(c for c in optional if c in names)]))


def positional_header(key: str, table) -> str | None:
    """A warning when a csv/tsv table with a header names all its columns by position
    (``0``, ``1``, ...), as a headerless one does: its first line is then read as the
    header, not as data (a SNAP file's first edge or vertex would be lost)."""
    columns = [c for group in table.columns() for c in group]
    if table.format in ("csv", "tsv") and table.header and all(c.isdigit() for c in columns):
        return (f"{key}: the columns are named by position {columns} but header is true, so each file's first "
                f"line is read as its header; set {key}.header: false if the files have none")
    return None


def bad_batch(schema: pa.Schema, path: str, rows: list[tuple], id_column: str | None = None) -> pa.RecordBatch:
    """``schema`` rows of ``(line, reason, raw[, id])`` tuples, the id (when known) in ``id_column``."""
    cols = {"file": [path] * len(rows), "line": [r[0] for r in rows], "reason": [r[1] for r in rows],
            "raw": [r[2] for r in rows]}
    if id_column:
        cols[id_column] = [r[3] if len(r) > 3 else None for r in rows]
    return pa.RecordBatch.from_pydict({**cols, **{f.name: [None] * len(rows) for f in schema if f.name not in cols}},
                                      schema=schema)


def rejected_rows(table: pa.Table, lines: np.ndarray, reasons: np.ndarray, ids: pa.Array | None = None) -> list[tuple]:
    """(line, reason, the row as JSON[, id]) of every row with a reason (not None)."""
    idx = np.flatnonzero(~np.equal(reasons, None))
    if not len(idx):
        return []
    data = table.drop_columns([c for c in ("__line",) if c in table.column_names])
    take = pa.array(idx, pa.int64())
    raw = data.take(take).to_pylist()
    rows = [(int(lines[i]), reasons[i], json.dumps(r, ensure_ascii=False, default=str)) for i, r in zip(idx, raw)]
    return rows if ids is None else [(*r, k) for r, k in zip(rows, ids.take(take).to_pylist())]


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
    s, d = trimmed(table[src]), trimmed(table[dst])
    reasons = np.full(table.num_rows, None, dtype=object)
    if weight is not None:
        ok_w, w = nonnegative_weights(table[weight])
        reasons[~ok_w] = "bad weight: not a finite number >= 0"
    else:
        w = np.ones(table.num_rows)
    reasons[~s.is_valid().to_numpy(zero_copy_only=False)] = "missing source vertex"
    reasons[~d.is_valid().to_numpy(zero_copy_only=False)] = "missing target vertex"
    if comment:  # a comment line that happens to have the right number of fields
        starts = pc.fill_null(pc.starts_with(pc.cast(table[src], pa.large_string()), comment), False)
        reasons[starts.to_numpy(zero_copy_only=False)] = COMMENT
    ok = np.equal(reasons, None)
    bad = rejected_rows(table, lines, reasons)
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
        ones (null ``reason``). Nothing for an empty file.

    Raises
    ------
    records.InputError
        When the file cannot be read at all (``input_columns``).

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
    columns = input_columns(path, edges)
    if columns is None:
        return
    for parsed in parse_file(path, edges.format, columns, delimiter=edges.delimiter, start=start, end=end,
                             first_line=first_line, header=edges.header, comment=edges.comment):
        good, bad = edge_table(parsed.table, parsed.table["__line"].to_numpy(), path, edges.src_column,
                               edges.dst_column, edges.weight_column, edges.comment)
        rows = parsed.bad + bad
        if rows:
            yield bad_batch(STAGED_EDGES, path, rows)
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
        Its ``format, id_column, community_column, header, delimiter``.
    start, end, first_line
        A byte range of the file, as in ``edges_from_file``.

    Yields
    ------
    pyarrow.RecordBatch
        ``STAGED_VERTICES`` rows: bad rows in a batch of their own, then the good ones.
        Nothing for an empty file.

    Raises
    ------
    records.InputError
        When the file cannot be read at all (``input_columns``).

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
    columns = input_columns(path, vertices)
    if columns is None:
        return
    for parsed in parse_file(path, vertices.format, columns, delimiter=vertices.delimiter, start=start, end=end,
                             first_line=first_line, header=vertices.header):
        t = parsed.table
        ids = trimmed(t[vertices.id_column])
        ok = ids.is_valid().to_numpy(zero_copy_only=False)
        lines = t["__line"].to_numpy()
        bad = rejected_rows(t, lines, np.where(ok, None, "missing id").astype(object))
        if parsed.bad or bad:
            yield bad_batch(STAGED_VERTICES, path, parsed.bad + bad)
        keep, n = pa.array(ok), int(ok.sum())
        community = (pc.cast(pc.filter(trimmed(t[vertices.community_column]), keep), pa.string())
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
    Repeated edges are all kept (a GML file is read as a multigraph whatever its header
    says), so that graph-ingest sums them as it sums an edge list's.

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
    try:
        with fs.open_input_stream(p) as f:
            text = f.read()
    except OSError as err:
        raise InputError(f"{path}: not readable ({err})") from None
    n_edges = count_edges(text, fmt)
    if n_edges > max_edges:
        raise InputError(f"{path}: {n_edges} edges in a {fmt} file, more than graph.max_local_edges="
                         f"{max_edges}; {fmt} is read on one machine, so convert large graphs to an edge list")
    try:
        if fmt == "gml":  # a multigraph keeps repeated edges, which a simple graph refuses
            lines = re.sub(r"\bgraph\s*\[", "graph [ multigraph 1 ", text.decode("utf-8"), count=1).splitlines()
            try:
                g = nx.parse_gml(lines, label="label")
            except nx.NetworkXError:
                g = nx.parse_gml(lines, label="id")
        else:  # XML bytes: the document declares its encoding
            g = nx.parse_graphml(text)
    except Exception as err:  # networkx raises many kinds (NetworkXError, ParseError, KeyError, ...): the file's
        raise InputError(f"{path}: not a readable {fmt} graph ({type(err).__name__}: {err})") from None
    names = [str(v) for v in g.nodes]
    communities = [g.nodes[v].get(community) if community else None for v in g.nodes]
    vertices = pa.RecordBatch.from_pydict({
        "file": [path] * len(names), "line": list(range(1, len(names) + 1)), "vertex": names,
        "community": [None if c is None else str(c) for c in communities],
        "reason": [None] * len(names), "raw": [None] * len(names)}, schema=STAGED_VERTICES)
    rows = []
    for i, (u, v, data) in enumerate(g.edges(data=True), start=1):
        given = data.get(weight, 1.0) if weight else 1.0
        try:
            w = float(given)
            reason = None if np.isfinite(w) and w >= 0 else "bad weight: not a finite number >= 0"
        except (TypeError, ValueError):
            w, reason = None, "bad weight: not a finite number >= 0"
        rows.append((i, str(u), str(v), w if reason is None else None, reason, None if reason is None else
                     json.dumps({"src": str(u), "dst": str(v), weight: given}, ensure_ascii=False, default=str)))
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
    flat = trimmed(values.flatten())
    offsets = np.asarray(values.offsets)
    parent = np.repeat(np.arange(len(values)), np.diff(offsets))
    keep = flat.is_valid().to_numpy(zero_copy_only=False)
    counts = np.bincount(parent[keep], minlength=len(values))
    out = pa.ListArray.from_arrays(pa.array(np.r_[0, np.cumsum(counts)], pa.int32()),
                                   pc.cast(pc.filter(flat, pa.array(keep)), pa.string()))
    return pc.if_else(values.is_valid(), out, pa.nulls(len(values), out.type))


def _text(value) -> str | None:
    """A JSON scalar as the string Arrow casts it to (strings as they are)."""
    return value if value is None or isinstance(value, str) else json.dumps(value, default=str)


def _json_rows(data: bytes, queries, columns: list[str]) -> tuple[pa.Table, list[tuple]]:
    """The rows of a JSONL query file, read line by line (query files are small, and their
    seeds may be a string in one row and a list in the next): ``malformed line`` (not a JSON
    object) and ``wrong type`` (a nested value; seeds may be a list of scalars) get a reason;
    the other rows come back with seeds as lists of strings and the rest as strings. Blank
    lines are no rows."""
    seeds = queries.list_column
    good, lines, bad = {c: [] for c in columns}, [], []
    for n, line in enumerate(data.removeprefix(BOM).split(b"\n"), start=1):
        if not line.rstrip(b"\r"):
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except (ValueError, RecursionError) as err:
            bad.append((n, f"malformed line: {' '.join(str(err).split())}", line.decode("utf-8", "replace")))
            continue
        values = {c: obj.get(c) for c in columns}
        if values[seeds] is not None and not isinstance(values[seeds], list):
            values[seeds] = _text(values[seeds]).split(queries.separator)
        nested = [c for c, v in values.items() if isinstance(v, dict) or isinstance(v, list) and (
            c != seeds or any(isinstance(x, (dict, list)) for x in v))]
        if nested:
            known = values[queries.id_column]
            bad.append((n, f"wrong type: column {nested[0]} holds a nested value", line.decode("utf-8"),
                        None if isinstance(known, (dict, list)) else _text(known)))
            continue
        for c, v in values.items():
            good[c].append([_text(x) for x in v] if c == seeds and v is not None else _text(v))
        lines.append(n)
    table = pa.table({**{c: pa.array(v, pa.list_(pa.large_string()) if c == seeds else pa.large_string())
                         for c, v in good.items()}, "__line": pa.array(lines, pa.int64())})
    return table, bad


def _scalars(table: pa.Table, queries) -> tuple[pa.Table, list[tuple]]:
    """Rows of a Parquet query table with a nested value (seeds may be a list of scalars)
    move out with the reason ``wrong type``; their columns are typed as text in the rest."""

    def allowed(name: str, kind: pa.DataType) -> bool:
        listed = pa.types.is_list(kind) or pa.types.is_large_list(kind)
        return not pa.types.is_nested(kind) or name == queries.list_column and listed and not pa.types.is_nested(
            kind.value_type)

    wrong = [c for c in table.column_names if not allowed(c, table.schema.field(c).type)]
    if not wrong:
        return table, []
    present = [table[c].is_valid().to_numpy(zero_copy_only=False) for c in wrong]
    first = np.select(present, np.arange(len(wrong)), default=-1)  # the first nested column of each row
    named = queries.id_column not in wrong
    bad = [(int(line), f"wrong type: column {wrong[k]} holds a nested value", json.dumps(row, default=str),
            _text(row[queries.id_column]) if named else None)
           for line, k, row in zip(table["__line"].to_numpy()[first >= 0], first[first >= 0],
                                   table.filter(pa.array(first >= 0)).drop_columns(["__line"]).to_pylist())]
    kept = table.filter(pa.array(first < 0))
    for c in wrong:  # all null now: typed as text
        kept = kept.set_column(kept.schema.get_field_index(c), c, pa.nulls(kept.num_rows, pa.large_string()))
    return kept, bad


def _query_rows(path: str, queries, columns: list[str]) -> tuple[pa.Table, list[tuple]]:
    """A query file's rows (``columns`` and ``__line``), and ``(line, reason, raw[, id])`` of
    those that cannot be read: CSV/TSV as ``records.parse_file`` reads them; Parquet typed,
    seeds a string or a list (``_scalars``); JSONL line by line (``_json_rows``)."""
    import pyarrow.parquet as pq

    if queries.format in ("csv", "tsv"):
        parsed = list(parse_file(path, queries.format, columns, delimiter=queries.delimiter, header=queries.header))
        return pa.concat_tables([p.table for p in parsed]), [r for p in parsed for r in p.bad]
    fs, p = open_input(path)
    try:
        with fs.open_input_file(p) as f:
            data = f.read() if queries.format == "jsonl" else pq.read_table(f, columns=columns)
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    if queries.format == "jsonl":
        return _json_rows(data, queries, columns)
    return _scalars(data.append_column("__line", pa.array(np.arange(1, data.num_rows + 1))), queries)


def queries_from_file(path: str, queries, default_size: int) -> Iterator[pa.RecordBatch]:
    """``STAGED_QUERIES`` batches of one seed-query file.

    CSV/TSV seeds are one string split by ``separator``; Parquet/JSONL seeds may also be a
    list. Seeds are trimmed and blank ones dropped. A missing size (or a file without the
    size column) is ``default_size``. Reasons, the later overriding the earlier: those of
    reading (``malformed line``, ``undecodable bytes``, ``wrong type``), ``bad size`` (not a
    positive integer), ``no seeds``, ``missing id``. A bad row keeps its query id when it
    has one.

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    queries : schemas.config.QueryInput
        Its ``format, id_column, list_column, separator, number_column, header, delimiter``.
    default_size : int
        Target community size of a query without one.

    Yields
    ------
    pyarrow.RecordBatch
        ``STAGED_QUERIES`` rows: bad rows in batches of their own, then the good ones.
        Nothing for an empty file.

    Raises
    ------
    records.InputError
        When the file cannot be read at all (``input_columns``).

    Examples
    --------
    >>> import os, tempfile
    >>> from sigil.schemas.config import QueryInput
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "queries.csv")
    ...     _ = open(path, "w").write("query_id,seeds,size\\nq1,a b,5\\nq2,,3\\nq3,c,\\n")
    ...     batches = list(queries_from_file(path, QueryInput(path=path), default_size=10))
    >>> [(r["query_id"], r["seeds"], r["size"], r["reason"]) for b in batches for r in b.to_pylist()]
    [('q2', None, None, 'no seeds'), ('q1', ['a', 'b'], 5, None), ('q3', ['c'], 10, None)]
    """
    columns = input_columns(path, queries)
    if columns is None:
        return
    table, bad = _query_rows(path, queries, columns)
    if bad:
        yield bad_batch(STAGED_QUERIES, path, bad, "query_id")
    lines = table["__line"].to_numpy()
    table = table.drop_columns(["__line"])
    ids = trimmed(table[queries.id_column])
    seeds = _seed_lists(table[queries.list_column], queries.separator)
    size = np.full(table.num_rows, default_size, dtype=np.int64)
    reasons = np.full(table.num_rows, None, dtype=object)
    if queries.number_column in columns:
        given = trimmed(table[queries.number_column])
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
        yield bad_batch(STAGED_QUERIES, path, rejected_rows(table, lines, reasons, ids), "query_id")
    keep, n = pa.array(good), int(good.sum())
    yield pa.RecordBatch.from_pydict({
        "file": pa.array([path] * n, pa.string()), "line": pa.array(lines[good], pa.int64()),
        "query_id": pc.cast(pc.filter(ids, keep), pa.string()), "seeds": pc.filter(seeds, keep),
        "size": pa.array(size[good]), "reason": pa.nulls(n, pa.string()), "raw": pa.nulls(n, pa.string())},
        schema=STAGED_QUERIES)
