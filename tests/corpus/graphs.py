"""Graph inputs: edge lists, vertex tables, GML/GraphML and seed-query tables, each ending
as a graph with its quarantined rows and reasons, or one message naming the file."""

import io

import pyarrow as pa
import pyarrow.parquet as pq

from corpus.case import Case

# a SNAP-style graph: space-separated, no header; two triangles joined by the edge 2-3
SNAP_EDGES = "0 1\n0 2\n1 2\n3 4\n3 5\n4 5\n2 3\n"
SNAP_LABELS = "0 1\n1 1\n2 1\n3 2\n4 2\n5 2\n"
SNAP = {"edges": {"path": "{dir}/edges.txt", "header": False, "delimiter": " "}}
EDGE_LIST = "src,dst,w\na,b,1\nb,c,2\na,b,0.5\n"
# one line per edge-list reason, besides the good ones above; the comment line is no row
BAD_EDGES = (EDGE_LIST + "c,,1\n,c,1\na,c,-1\na,c\n# a comment\nc,d,1\n\"a,b\n").encode() + b"caf\xe9,d,1\n"
GML = ('graph [ node [ id 0 label "a" ] node [ id 1 label "b" ] node [ id 2 label "c" ] '
       'edge [ source 0 target 1 ] edge [ source 1 target 0 ] edge [ source 1 target 2 ] ]')


def damaged_parquet() -> bytes:
    """An edge list in Parquet whose footer reads but whose data page does not decompress:
    the driver's check passes and the parse task fails."""
    out = io.BytesIO()
    pq.write_table(pa.table({"src": [f"v{i}" for i in range(200)], "dst": [f"w{i}" for i in range(200)]}), out,
                   compression="zstd", use_dictionary=False)
    data = bytearray(out.getvalue())
    data[60:200] = bytes(b ^ 0x5A for b in data[60:200])
    return bytes(data)


QUERY_LINES = [
    '{"query_id": "q1", "seeds": ["0", "1"], "size": 3}',  # answered
    '{"query_id": "q2", "seeds": "3 4"}',  # answered, seeds in a string
    "not json",
    '{"query_id": "q4", "seeds": [{"v": 0}]}',
    '{"query_id": "q5", "seeds": "0", "size": -2}',
    '{"query_id": "q6", "seeds": []}',
    '{"seeds": "1"}',
    '{"query_id": "q1", "seeds": "2"}',
    '{"query_id": "q9", "seeds": "ghost"}',
    '{"query_id": "q10", "seeds": "5 phantom"}',  # answered with 5; phantom quarantined
]


def graph_case(name: str, edges: dict, files: dict, **fields) -> Case:
    """A graph-ingest case on ``files`` with the ``graph.edges`` settings ``edges`` (path
    ``{dir}/edges.csv`` unless given) and optionally ``vertices``."""
    vertices = fields.pop("vertices", None)
    graph = {"edges": {"path": "{dir}/edges.csv", **edges}, **({"vertices": vertices} if vertices else {})}
    return Case(name=f"graph-{name}", job="graph-ingest", files=files, config={"graph": graph}, **fields)


def query_case(name: str, queries: dict, files: dict, **fields) -> Case:
    """A communities case with seed queries over the SNAP graph (graph-ingest and
    graph-index run first)."""
    config = {"graph": SNAP, "graph_index": {"minhash": {"num_perm": 16}, "lsh": {"bands": 16, "rows": 1}},
              "communities": {"queries": queries, "size": 3}}
    return Case(name=f"communities-{name}", job="communities", files={"edges.txt": SNAP_EDGES, **files},
                config=config, before=("graph-ingest", "graph-index"), **fields)


def failing(name: str, edges: dict, files: dict, message: str, **fields) -> Case:
    return graph_case(name, edges, files, exit=2, message=message, **fields)


CASES = [
    # 1. headerless vertex tables: read right with header: false; with a header the first
    # vertex is the header line, and its edges are quarantined (with a warning)
    graph_case("headerless-snap", SNAP["edges"], {"edges.txt": SNAP_EDGES, "labels.txt": SNAP_LABELS}, rows=7,
               vertices={"path": "{dir}/labels.txt", "header": False, "delimiter": " ", "community_column": "1"}),
    graph_case("vertex-header-eats-a-vertex", SNAP["edges"], {"edges.txt": SNAP_EDGES, "labels.txt": SNAP_LABELS},
               vertices={"path": "{dir}/labels.txt", "id_column": "0", "community_column": "1", "delimiter": " "},
               rows=5, quarantined={"unknown vertex": 2}),
    # 2. no edge rows at all
    failing("empty-edge-list", {}, {"edges.csv": ""}, r"no edges in .*edges\.csv"),
    failing("header-only-edge-list", {}, {"edges.csv": "src,dst\n"}, r"no edges in .*edges\.csv"),
    failing("comments-only-edge-list", {"header": False}, {"edges.csv": "# nothing\n\n# here\n"},
            r"no edges in .*edges\.csv"),
    failing("empty-vertex-table", {}, {"edges.csv": EDGE_LIST, "v.csv": "id\n"}, r"no vertices in .*v\.csv",
            vertices={"path": "{dir}/v.csv"}),
    graph_case("every-edge-quarantined", {"weight_column": "w"}, {"edges.csv": "src,dst,w\na,b,-1\nb,c,x\n"},
               rows=0, quarantined={"bad weight": 2}),
    # 3. no header: the end points are the first two columns unless named
    graph_case("headerless-default-columns", {"header": False}, {"edges.csv": "a,b,9\nb,c,9\nc,a,9\n"}, rows=3),
    failing("headerless-named-columns", {"header": False, "src_column": "src"}, {"edges.csv": "a,b\n"},
            r"edges\.csv: missing configured column\(s\) \['src'\]; the file has \['0', '1'\]"),
    # 4. GML and GraphML
    failing("malformed-graphml", {"path": "{dir}/g.graphml", "format": "graphml"},
            {"g.graphml": '<graphml><graph><edge source="a"'}, r"g\.graphml: not a readable graphml graph"),
    failing("malformed-gml", {"path": "{dir}/g.gml", "format": "gml"},
            {"g.gml": "graph [ node [ id 0 ] edge [ source 0 target"}, r"g\.gml: not a readable gml graph"),
    graph_case("gml-repeated-edges-summed", {"path": "{dir}/g.gml", "format": "gml"}, {"g.gml": GML}, rows=2),
    # 6. files that cannot be read
    failing("edges-not-parquet", {"path": "{dir}/edges.parquet", "format": "parquet"},
            {"edges.parquet": EDGE_LIST}, r"cannot read .*edges\.parquet"),
    failing("vertices-not-parquet", {}, {"edges.csv": EDGE_LIST, "v.parquet": "id\na\n"},
            r"cannot read .*v\.parquet", vertices={"path": "{dir}/v.parquet", "format": "parquet"}),
    failing("edges-utf16", {}, {"edges.csv": EDGE_LIST.encode("utf-16")}, r"edges\.csv: UTF-16"),
    failing("damaged-parquet", {"path": "{dir}/edges.parquet", "format": "parquet"},
            {"edges.parquet": damaged_parquet()}, r"cannot read .*edges\.parquet: ZSTD decompression failed"),
    # every reason of the readers
    graph_case("edge-reasons", {"weight_column": "w"}, {"edges.csv": BAD_EDGES}, rows=3,
               quarantined={"missing target vertex": 1, "missing source vertex": 1, "bad weight": 1,
                            "malformed line": 2, "undecodable bytes": 1}),
    graph_case("jsonl-edge-reasons", {"path": "{dir}/edges.jsonl", "format": "jsonl"},
               {"edges.jsonl": '{"src": "a", "dst": "b"}\n\n{oops\n{"src": ["a"], "dst": "b"}\n{"src": "a"}\n'},
               rows=1, quarantined={"malformed line": 1, "wrong type": 1, "missing target vertex": 1}),
    graph_case("vertex-reasons", {}, {"edges.csv": "src,dst\na,b\nb,c\nc,ghost\n",
                                      "v.csv": "id,team\na,x\nb,x\n ,y\nb,z\nc,y\n"},
               vertices={"path": "{dir}/v.csv", "community_column": "team"}, rows=2,
               quarantined={"unknown vertex": 1, "missing id": 1, "duplicate id": 1}),
    # 5. seed queries
    query_case("query-reasons", {"path": "{dir}/queries.jsonl", "format": "jsonl"},
               {"queries.jsonl": "\n".join(QUERY_LINES) + "\n"},
               quarantined={"malformed line": 1, "wrong type": 1, "bad size": 1, "no seeds": 1, "missing id": 1,
                            "duplicate id": 1, "no known seed vertex": 1, "unknown seed vertex": 2}),
    query_case("empty-queries", {"path": "{dir}/queries.csv"}, {"queries.csv": ""}, rows=0),
    query_case("headerless-queries", {"path": "{dir}/queries.csv", "header": False},
               {"queries.csv": "q1,0 1\nq2,3\n"}),
    query_case("queries-not-parquet", {"path": "{dir}/queries.parquet", "format": "parquet"},
               {"queries.parquet": "query_id,seeds\nq1,0\n"}, exit=2, message=r"cannot read .*queries\.parquet"),
]
