"""hqi-generate, hqi-index and hqi-query on Spark: exact answers equal to brute force, the
memory and spark engines answering alike, bad data, training and query rows quarantined
with their reasons, the manifests, reruns, and configuration errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import NO_CHECKS
from sigil.schemas import datasets
from sigil.schemas.config import load_config
from sigil.transforms.hqi import data_arrays, exact_search, load_layout, parse_workload, search
from sigil.transforms.predicates import Columns, column_types

DIM = 16
GENERATE = {"rows": 3000, "dim": DIM, "clusters": 16, "training": 300, "queries": 200, "k": [1, 10, 40], "seed": 4}
INDEX = {"min_leaf_rows": 200, "rows_per_cluster": 50, "sample_rows": 2000, "slice_rows": 150}
ORDER = [("query_id", "ascending"), ("rank", "ascending")]


def _config(root, inputs, **hqi) -> dict:
    """A configuration writing under ``root``, reading the data and workloads at ``inputs``."""
    return {"output": str(root), "spark": {"shuffle_partitions": 4}, "quality": NO_CHECKS,
            "hqi_generate": GENERATE,
            "hqi": {"data": {"path": str(inputs / "data")}, "training": {"path": str(inputs / "training")},
                    "queries": {"path": str(inputs / "batch")}, "truth": {"path": str(inputs / "truth")},
                    **INDEX, **hqi}}


def _manifest(root, job: str) -> dict:
    return json.loads((root / job / "manifest.json").read_text())


def _table(path, order=ORDER) -> pa.Table:
    return pq.read_table(str(path)).sort_by(order)


def _bad_data(n_first: int) -> pa.Table:
    """Rows that are all quarantined: a missing id, an id the generated data has, a short,
    a NaN and a missing vector."""
    v = [[0.5] * DIM, [0.5] * DIM, [0.5] * 3, [float("nan")] * DIM, None]
    return pa.table({"id": pa.array([None, n_first, 10 ** 9, 10 ** 9 + 1, 10 ** 9 + 2], pa.int64()),
                     "vector": pa.array(v, pa.list_(pa.float32())), "genre": ["drama"] * 5, "country": ["US"] * 5,
                     "year": pa.array([2000] * 5, pa.int64()), "price": [1.0] * 5})


BAD_QUERIES = [  # (query_id, k, vector length or None, predicate, reason's start)
    (9001, 5, DIM, "[{", "predicate: malformed JSON"),
    (9002, 5, DIM, '[{"col": "colour", "op": "=", "value": "red"}]', 'predicate: clause 0: unknown column "colour"'),
    (9003, 5, DIM, '[{"col": "year", "op": "=", "value": "1990"}]',
     "predicate: clause 0: column 'year' is numeric: its values must be numbers, got string"),
    (9004, 5, DIM, '[{"col": "genre", "op": "<", "value": "drama"}]',
     "predicate: clause 0: column 'genre' is categorical: only '=' and 'in' apply"),
    (9005, 5, 3, "[]", "vector has 3 values, expected 16"),
    (9006, 5, None, "[]", "missing vector"),
    (9007, 0, DIM, "[]", "k must be a positive integer, got 0"),
    (None, 5, DIM, "[]", "missing query_id"),
    (0, 5, DIM, "[]", "duplicate query_id (first at "),  # query 0 of the generated batch comes first
]


def _no_match() -> pa.Table:
    """Two good queries that no row satisfies: a genre that does not exist, FALSE."""
    nothing = ['[{"col": "genre", "op": "=", "value": "no such genre"}]', '{"op": "or", "value": []}']
    return pa.table({"query_id": [9100, 9101], "k": pa.array([5, 5], pa.int32()), "vector": [[0.0] * DIM] * 2,
                     "predicate": nothing}).cast(datasets.hqi_workload(DIM))


def _bad_queries() -> pa.Table:
    rows = list(zip(*BAD_QUERIES, strict=True))
    return pa.table({"query_id": pa.array(rows[0], pa.int64()), "k": pa.array(rows[1], pa.int32()),
                     "vector": pa.array([None if d is None else [0.25] * d for d in rows[2]], pa.list_(pa.float32())),
                     "predicate": pa.array(rows[3], pa.string())})


@pytest.fixture(scope="module")
def hqi(spark, tmp_path_factory):
    """Generated data and workloads with bad rows added (a file of its own in each input
    directory, after the generated ones), indexed and answered exactly."""
    from sigil.jobs import hqi_generate, hqi_index, hqi_query

    tmp = tmp_path_factory.mktemp("hqi")
    out = tmp / "out"
    config = load_config(base=_config(out, tmp))
    hqi_generate.run(spark, config, quiet=True)
    for name, copy in (("data", "data"), ("training", "training"), ("queries", "batch"), ("truth", "truth")):
        shutil.copytree(out / "hqi_generate" / name, tmp / copy)
    pq.write_table(_bad_data(int(pq.read_table(str(tmp / "data"))["id"][0].as_py())), tmp / "data" / "zz-bad.parquet")
    pq.write_table(pa.table({"query_id": [7, 8], "predicate": ["[{", '[{"col": "colour", "op": "=", "value": 1}]']}),
                   tmp / "training" / "zz-bad.parquet")
    pq.write_table(_bad_queries(), tmp / "batch" / "zz-bad.parquet")
    pq.write_table(_no_match(), tmp / "batch" / "extra.parquet")
    hqi_index.run(spark, config, quiet=True)
    hqi_query.run(spark, config, quiet=True)
    return tmp, config


def _clone(tmp, name: str):
    """A new output root holding a copy of the fixture's index."""
    root = tmp / name
    shutil.copytree(tmp / "out" / "hqi_index", root / "hqi_index")
    return root


def _query(spark, tmp, root, **hqi) -> tuple[dict, pa.Table, pa.Table]:
    from sigil.jobs import hqi_query

    manifest = hqi_query.run(spark, load_config(base=_config(root, tmp, **hqi)), quiet=True)
    return manifest, _table(root / "hqi_query" / "results"), _table(root / "hqi_query" / "query_stats",
                                                                    [("query_id", "ascending")])


def test_exact_answers_equal_brute_force(hqi):
    tmp, _ = hqi
    out = tmp / "out"
    results = _table(out / "hqi_query" / "results")
    assert pq.read_schema(next((out / "hqi_query" / "results").glob("*.parquet"))).equals(datasets.HQI_RESULTS)
    data = pq.read_table(str(out / "hqi_generate" / "data"))
    ids, x, attrs = data_arrays(data)
    batch = pa.concat_tables([pq.read_table(str(out / "hqi_generate" / "queries")), _no_match()])
    queries, bad = parse_workload(batch, column_types(attrs), DIM)
    assert bad.num_rows == 0
    truth = exact_search(ids, x, attrs, queries).to_arrow().sort_by(ORDER)
    assert results.equals(truth)
    # exactly min(k, satisfying rows) per query, some short of k and some with none
    columns = Columns.from_table(attrs)
    expected = np.minimum(queries.k, [p.mask(columns).sum() for p in queries.predicates])
    counts = np.bincount(np.searchsorted(queries.query_id, results["query_id"].to_numpy()), minlength=len(queries.k))
    assert np.array_equal(counts, expected) and (expected < queries.k).any() and (expected == 0).any()

    manifest = _manifest(out, "hqi_query")
    m = manifest["metrics"]
    assert m["engine"] == "memory" and m["nprobe"] is None and m["queries"] == 202 == manifest["outputs"]["query_stats"]
    assert m["results"] == results.num_rows == manifest["outputs"]["results"]
    assert m["recall"] == {"recall_at_k": 1.0, "queries": int((expected > 0).sum())}
    assert m["build_seconds"] == _manifest(out, "hqi_index")["metrics"]["build_seconds"]  # the index's, reported again
    assert m["query_seconds"] == manifest["timings"]["search"] and "queries_per_second" in m
    stats = _table(out / "hqi_query" / "query_stats", [("query_id", "ascending")])
    scanned = stats["rows_scanned"].to_numpy()
    assert m["rows_scanned"]["max"] == scanned.max() <= 3000 and m["rows_scanned"]["mean"] == pytest.approx(
        scanned.mean())
    assert 0 < m["scanned_share"] < 1  # the qd-tree spares most queries most rows


def test_index_layout_and_manifest(hqi):
    tmp, _ = hqi
    out = tmp / "out" / "hqi_index"
    manifest = _manifest(tmp / "out", "hqi_index")
    m = manifest["metrics"]
    assert manifest["inputs"] == {"data_rows": 3005, "training_rows": 302}
    assert manifest["quarantined"] == {"data": 5, "training": 2}
    assert manifest["outputs"] == {"layout": 3000, "centroids": m["clusters"]}
    assert m["rows"] == 3000 and m["dim"] == DIM and m["sampled"] and m["sample_rows"] == 2000
    assert m["attributes"] == {"genre": "categorical", "country": "categorical", "year": "numeric",
                               "price": "numeric"}
    assert m["leaves"] > 3 and m["rows_per_leaf"]["min"] >= 100 and 0 < m["training_scanned_share"] < 0.7
    assert m["training_predicates"] == 300 and "build_seconds" in m

    attrs = [pa.field(n, t) for n, t in (("genre", pa.string()), ("country", pa.string()), ("year", pa.int64()),
                                         ("price", pa.float64()))]
    files = sorted((out / "layout").glob("*.parquet"))
    leaves = [set(pq.read_table(f)["leaf"].to_pylist()) for f in files]
    assert sum(len(s) for s in leaves) == m["leaves"] == len(set().union(*leaves))  # a leaf in one file
    for f in files:
        assert pq.read_schema(f).equals(datasets.hqi_layout(DIM, attrs))
        t = pq.read_table(f)
        key = list(zip(t["leaf"].to_pylist(), t["cluster"].to_pylist(), t["id"].to_pylist()))
        assert key == sorted(key)
    centroids = pq.read_table(str(out / "centroids"))
    assert centroids.schema.equals(datasets.hqi_centroids(DIM)) and sum(centroids["rows"].to_pylist()) == 3000
    tree = json.loads((out / "tree.json").read_text())
    assert tree["nodes"][0]["rows"] == 3000 and tree["min_leaf_rows"] == 200

    # the layout read back answers as the job did; every usable row is in it, once
    layout = load_layout(str(out))
    data = pq.read_table(str(tmp / "out" / "hqi_generate" / "data"))
    assert sorted(layout.ids.tolist()) == sorted(data["id"].to_pylist())
    queries, _ = parse_workload(pq.read_table(str(tmp / "out" / "hqi_generate" / "queries")), layout.columns.types,
                                DIM)
    assert search(layout, queries).to_arrow().sort_by(ORDER).equals(_table(tmp / "out" / "hqi_query" / "results"))

    bad = pq.read_table(str(out / "quarantine")).to_pylist()
    by_source = {s: sorted((r["line"], r["reason"]) for r in bad if r["source"] == s) for s in ("data", "training")}
    assert [reason for _, reason in by_source["data"]] == [
        "missing id", f"duplicate id (first at {tmp / 'data' / 'part-00000.parquet'}:1)",
        f"vector has 3 values, expected {DIM}", "vector has null, NaN or infinite values", "missing vector"]
    assert [line for line, _ in by_source["data"]] == [1, 2, 3, 4, 5]
    assert by_source["training"][0][1].startswith("predicate: malformed JSON")
    assert by_source["training"][1][1].startswith('predicate: clause 0: unknown column "colour"')


def test_bad_query_rows_are_quarantined(hqi, spark):
    from sigil.jobs import hqi_query
    from sigil.run import StrictError

    tmp, config = hqi
    out = tmp / "out"
    bad = sorted(pq.read_table(str(out / "hqi_query" / "quarantine")).to_pylist(), key=lambda r: r["line"])
    assert {r["source"] for r in bad} == {"queries"} and {r["file"] for r in bad} == {str(tmp / "batch" /
                                                                                         "zz-bad.parquet")}
    assert [r["line"] for r in bad] == list(range(1, len(BAD_QUERIES) + 1))
    for row, (qid, _, _, _, reason) in zip(bad, BAD_QUERIES, strict=True):
        assert row["id"] == (None if qid is None else str(qid)) and row["reason"].startswith(reason), row
    first = str(tmp / "batch" / "part-00000.parquet")
    assert bad[-1]["reason"] == f"duplicate query_id (first at {first}:1)"
    manifest = _manifest(out, "hqi_query")
    assert manifest["inputs"]["query_rows"] == manifest["metrics"]["queries"] + manifest["quarantined"]["queries"]
    assert manifest["quarantined"]["queries"] == len(BAD_QUERIES)
    with pytest.raises(StrictError, match=r"9 query row\(s\) quarantined; first: .*zz-bad.parquet line 1: predicate"):
        hqi_query.run(spark, config, strict=True, quiet=True)
    assert _manifest(out, "hqi_query") == manifest  # the failed run left the output as it was


def test_engines_give_identical_answers(hqi, spark):
    """The spark engine (slices of leaves cogrouped with their queries, merged by a window)
    answers as the memory engine, exactly and with nprobe, and scans the same rows."""
    tmp, _ = hqi
    exact = _table(tmp / "out" / "hqi_query" / "results")
    exact_stats = _table(tmp / "out" / "hqi_query" / "query_stats", [("query_id", "ascending")])
    root = _clone(tmp, "engines")
    manifest, results, stats = _query(spark, tmp, root, engine="spark")
    leaves = _manifest(tmp / "out", "hqi_index")["metrics"]["leaves"]
    assert manifest["metrics"]["engine"] == "spark" and manifest["metrics"]["slices"] > leaves  # leaves cut
    assert results.equals(exact) and stats["rows_scanned"].equals(exact_stats["rows_scanned"])
    assert manifest["metrics"]["recall"]["recall_at_k"] == 1.0

    runs = {engine: _query(spark, tmp, root, engine=engine, nprobe=2) for engine in ("memory", "spark")}
    (m1, r1, s1), (m2, r2, s2) = runs["memory"], runs["spark"]
    assert r1.equals(r2) and s1["rows_scanned"].equals(s2["rows_scanned"])
    assert r1.num_rows == exact.num_rows  # never short: clusters are probed until they hold k
    assert s1["rows_scanned"].to_numpy().mean() < exact_stats["rows_scanned"].to_numpy().mean() / 2
    assert 0.3 < m1["metrics"]["recall"]["recall_at_k"] == m2["metrics"]["recall"]["recall_at_k"] < 1


def test_reruns_are_identical(hqi, spark):
    """hqi-index and hqi-query run again into another output write the same datasets."""
    from sigil.jobs import hqi_index

    tmp, _ = hqi
    root = tmp / "rerun"
    hqi_index.run(spark, load_config(base=_config(root, tmp)), quiet=True)
    first, again = tmp / "out" / "hqi_index", root / "hqi_index"
    for name, order in (("layout", [("id", "ascending")]), ("centroids", [("cluster", "ascending")]),
                        ("quarantine", [("source", "ascending"), ("line", "ascending")])):
        assert _table(again / name, order).equals(_table(first / name, order)), name
    for a, b in zip(sorted((first / "layout").glob("*.parquet")), sorted((again / "layout").glob("*.parquet")),
                    strict=True):
        assert pq.read_table(a).equals(pq.read_table(b))  # the same files, row for row
    assert (again / "tree.json").read_text() == (first / "tree.json").read_text()
    _, results, stats = _query(spark, tmp, root)
    assert results.equals(_table(tmp / "out" / "hqi_query" / "results"))


def test_configuration_and_input_errors(hqi, spark, tmp_path, capsys):
    from sigil.cli import main
    from sigil.jobs import hqi_index, hqi_query
    from sigil.transforms.records import InputError

    tmp, _ = hqi
    with pytest.raises(InputError, match="run 'sigil hqi-index' first"):
        hqi_query.run(spark, load_config(base=_config(tmp_path / "empty", tmp)), quiet=True)
    with pytest.raises(InputError, match="hqi.queries"):
        hqi_query.run(spark, load_config(base={**_config(tmp / "out", tmp), "hqi": {"data": {"path": "x"}}}),
                      quiet=True)
    with pytest.raises(InputError, match=r"no column\(s\) \['colour'\]"):
        hqi_index.run(spark, load_config(base=_config(tmp_path / "x", tmp, data={
            "path": str(tmp / "data"), "attribute_columns": ["genre", "colour"]})), quiet=True)
    pq.write_table(pa.table({"query_id": [1], "k": ["ten"], "vector": [[0.0] * DIM], "predicate": ["[]"]}),
                   tmp_path / "q.parquet")
    conf = tmp_path / "hqi.yaml"
    conf.write_text(json.dumps(_config(tmp_path / "out", tmp, queries={"path": str(tmp_path / "q.parquet")})))
    shutil.copytree(tmp / "out" / "hqi_index", tmp_path / "out" / "hqi_index")
    assert main(["hqi-query", "--conf", str(conf), "--quiet"]) == 2
    assert "column 'k' of" in capsys.readouterr().err
    assert main(["hqi-index", "--conf", str(conf), "--set", "hqi.engine=fast"]) == 2
    assert "hqi.engine: got 'fast'" in capsys.readouterr().err


def test_the_notebook_reads_the_run(hqi, spark, monkeypatch):
    """notebooks/hqi.ipynb on a run whose hqi-query probed 4 clusters per query: it draws
    the tree and the curves, and answers the batch again in memory with the manifest's
    nprobe, as the job did."""
    from conftest import run_notebook

    tmp, _ = hqi
    root = _clone(tmp, "notebook")
    shutil.copytree(tmp / "out" / "hqi_generate", root / "hqi_generate")
    manifest, _, _ = _query(spark, tmp, root, nprobe=4)
    assert manifest["metrics"]["nprobe"] == 4
    outputs, text = run_notebook("hqi.ipynb", str(root), monkeypatch)
    assert "the job's answers: the same" in text and "nprobe 4, engine memory" in text
    assert "rows scanned per query: the same" in text
    assert "exact mode against brute force: the same rows and distances" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # the tree, rows scanned, recall/throughput
