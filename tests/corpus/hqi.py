"""HQI hybrid queries: hqi-index and hqi-query before their inputs exist, on data or
workloads they cannot read (one message each), and data, training and query rows of every
reason."""

import io

import pyarrow as pa
import pyarrow.parquet as pq

from corpus.case import Case
from sigil.transforms.hqi_workload import generate_data

D = 4
ROWS = 300


def parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def _data() -> pa.Table:
    return generate_data(ROWS, D, clusters=4, seed=1)


def _bad_data(first_id: int) -> pa.Table:
    """One row per reason: a missing id, a repeated id, a short, a NaN and a missing vector."""
    return pa.table({"id": pa.array([None, first_id, 10 ** 6, 10 ** 6 + 1, 10 ** 6 + 2], pa.int64()),
                     "vector": pa.array([[0.0] * D, [0.0] * D, [0.0] * 3, [float("nan")] * D, None],
                                        pa.list_(pa.float32())),
                     "genre": ["drama"] * 5, "country": ["US"] * 5, "year": pa.array([1990] * 5, pa.int64()),
                     "price": [1.0] * 5})


QUERY_ROWS = [  # (query_id, k, vector length, predicate)
    (1, 5, D, "[]"),  # answered: 5 rows
    (2, 3, D, '[{"col": "genre", "op": "in", "value": ["drama", "comedy"]}]'),  # answered: 3 rows
    (3, 5, D, "genre = 'drama'"),
    (4, 5, D, '[{"col": "colour", "op": "=", "value": "red"}]'),
    (5, 5, D, '[{"col": "price", "op": "<", "value": "cheap"}]'),
    (6, 5, 2, "[]"),
    (7, -1, D, "[]"),
    (None, 5, D, "[]"),
    (1, 5, D, "[]"),
]


def _queries() -> pa.Table:
    rows = list(zip(*QUERY_ROWS, strict=True))
    return pa.table({"query_id": pa.array(rows[0], pa.int64()), "k": pa.array(rows[1], pa.int32()),
                     "vector": pa.array([[0.5] * d for d in rows[2]], pa.list_(pa.float32())),
                     "predicate": pa.array(rows[3], pa.string())})


def hqi_case(name: str, job: str, hqi: dict | None, files: dict | None = None, **fields) -> Case:
    """A case of ``job`` with generated data (a file of bad rows beside it), a training
    workload with a bad predicate, a batch of queries of every reason."""
    data = _data()
    training = pa.table({"query_id": [1, 2, 3], "predicate": [
        '[{"col": "genre", "op": "=", "value": "drama"}]', '[{"col": "year", "op": "<", "value": 1980}]', "[{"]})
    files = {"data/part-0.parquet": parquet(data), "data/part-1.parquet": parquet(_bad_data(data["id"][0].as_py())),
             "training.parquet": parquet(training), "queries/part-0.parquet": parquet(_queries()), **(files or {})}
    base = {"data": {"path": "{dir}/data"}, "training": {"path": "{dir}/training.parquet"},
            "queries": {"path": "{dir}/queries"}, "min_leaf_rows": 50, "rows_per_cluster": 20}
    config = {} if hqi is None else {"hqi": {**base, **hqi}}
    return Case(name=f"hqi-{name}", job=job, files=files, config=config, **fields)


NOT_PARQUET = "id,vector\n1,2\n"
CASES = [
    hqi_case("no-section", "hqi-index", None, exit=2, message=r"the configuration has no 'hqi' section"),
    hqi_case("query-before-index", "hqi-query", {}, exit=2,
             message=r"no hqi_index output at .*: run 'sigil hqi-index' first"),
    hqi_case("query-without-queries", "hqi-query", {"queries": None}, before=("hqi-index",), exit=2,
             message=r"hqi-query reads its batch from hqi\.queries"),
    hqi_case("nprobe-zero", "hqi-query", {"nprobe": 0}, exit=2,
             message=r"hqi\.nprobe: Input should be greater than or equal to 1"),
    hqi_case("data-missing", "hqi-index", {"data": {"path": "{dir}/nowhere"}}, exit=2,
             message=r"nowhere"),
    hqi_case("data-not-parquet", "hqi-index", {"data": {"path": "{dir}/text"}}, files={"text/a.parquet": NOT_PARQUET},
             exit=2, message=r"cannot be read as parquet"),
    hqi_case("data-string-ids", "hqi-index", {"data": {"path": "{dir}/strings"}},
             files={"strings/a.parquet": parquet(pa.table({"id": ["a"], "vector": [[0.0] * D]}))}, exit=2,
             message=r"hqi\.data\.id_column 'id' has type string, not integers"),
    hqi_case("data-unknown-column", "hqi-index", {"data": {"path": "{dir}/data", "attribute_columns": ["colour"]}},
             exit=2, message=r"has no column\(s\) \['colour'\]"),
    hqi_case("data-boolean-attribute", "hqi-index", {"data": {"path": "{dir}/flags"}},
             files={"flags/a.parquet": parquet(pa.table({"id": [1], "vector": [[0.0] * D], "flag": [True]}))},
             exit=2, message=r"attribute column 'flag' has type boolean"),
    hqi_case("training-without-predicates", "hqi-index", {"training": {"path": "{dir}/data"}}, exit=2,
             message=r"hqi\.training: .* has no column 'predicate'"),
    hqi_case("index-reasons", "hqi-index", {}, rows=ROWS,
             quarantined={"missing id": 1, "duplicate id (first at ": 1, f"vector has 3 values, expected {D}": 1,
                          "vector has null, NaN or infinite values": 1, "missing vector": 1,
                          "predicate: malformed JSON": 1}),
    hqi_case("query-file-wrong-type", "hqi-query", {"queries": {"path": "{dir}/q.parquet"}}, before=("hqi-index",),
             files={"q.parquet": parquet(pa.table({"query_id": [1], "k": ["5"], "vector": [[0.0] * D],
                                                   "predicate": ["[]"]}))},
             exit=2, message=r"hqi\.queries: column 'k' of .*q\.parquet has type string"),
    hqi_case("query-reasons", "hqi-query", {"nprobe": 2}, before=("hqi-index",), rows=5 + 3,
             quarantined={"predicate: malformed JSON": 1, 'predicate: clause 0: unknown column "colour"': 1,
                          "predicate: clause 0: column 'price' is numeric": 1, f"vector has 2 values, expected {D}": 1,
                          "k must be a positive integer, got -1": 1, "missing query_id": 1,
                          "duplicate query_id (first at ": 1}),
]
