"""Personalized PageRank: ppr-index and ppr-query before their inputs exist or with settings
that cannot run (one message each), and a query table with a row of every reason."""

from corpus.case import Case
from corpus.graphs import SNAP, SNAP_EDGES

QUERY_LINES = [
    '{"query_id": "q1", "sources": ["0", "1"], "k": 3}',  # answered
    '{"query_id": "q2", "sources": "3 4"}',  # answered, sources in a string, k by default
    "not json",
    '{"query_id": "q4", "sources": [{"v": 0}]}',
    '{"query_id": "q5", "sources": "0", "k": 0}',
    '{"query_id": "q6", "sources": []}',
    '{"sources": "1"}',
    '{"query_id": "q1", "sources": "2"}',
    '{"query_id": "q9", "sources": "5 ghost phantom"}',
]
QUERIES = {"path": "{dir}/queries.jsonl", "format": "jsonl"}


def ppr_case(name: str, job: str, ppr: dict | None, **fields) -> Case:
    """A case of ``job`` on the SNAP graph of tests/corpus/graphs.py with the ``ppr`` section."""
    files = {"edges.txt": SNAP_EDGES, "queries.jsonl": "\n".join(QUERY_LINES) + "\n"}
    config = {"graph": SNAP} if ppr is None else {"graph": SNAP, "ppr": ppr}
    return Case(name=f"ppr-{name}", job=job, files=files, config=config, **fields)


CASES = [
    ppr_case("no-section", "ppr-index", None, exit=2, message=r"the configuration has no 'ppr' section"),
    ppr_case("index-before-graph-ingest", "ppr-index", {}, exit=2,
             message=r"no edges at .*graph/edges: run 'sigil graph-ingest' first"),
    ppr_case("query-before-index", "ppr-query", {"queries": QUERIES}, exit=2,
             message=r"no ppr_index output at .*: run 'sigil ppr-index' first"),
    ppr_case("query-without-queries", "ppr-query", {}, exit=2,
             message=r"ppr-query reads its queries from ppr\.queries"),
    ppr_case("alpha-out-of-range", "ppr-index", {"alpha": 0}, exit=2,
             message=r"ppr\.alpha: Input should be greater than 0"),
    ppr_case("alpha-changed", "ppr-query", {"queries": QUERIES, "walks": 5}, args=("--set", "ppr.alpha=0.3"),
             before=("graph-ingest", "ppr-index"), exit=2,
             message=r"ppr\.alpha is 0\.3 but the fingerprints were walked with alpha 0\.15"),
    ppr_case("query-reasons", "ppr-query", {"queries": QUERIES, "walks": 5, "k": 3},
             before=("graph-ingest", "ppr-index"), rows=3 + 3,
             quarantined={"malformed line": 1, "wrong type": 1, "bad k": 1, "no source vertex": 1, "missing id": 1,
                          "duplicate id": 1, "unknown vertex: ghost, phantom": 1}),
]
