"""hqi-query job: a batch of hybrid queries answered on hqi-index's layout (Mohoney et al.,
"High-Throughput Vector Similarity Search in Knowledge Graphs", SIGMOD 2023,
doi:10.1145/3589777; transforms/hqi.py).

A hybrid query ``(q, k, p)`` asks for the k rows nearest to the vector q (squared L2)
among those whose attributes satisfy the predicate p, ties in distance broken by id:
exactly (``hqi.nprobe`` unset), or by probing the query's ``nprobe`` nearest clusters that
hold a satisfying row, and more until they hold k. Two engines (``hqi.engine``; unset: the
memory engine when the layout fits ``hqi.held_mb``) give the same answers:

- memory: every Python worker reads the layout once (``load_layout``) and keeps it for its
  tasks; each task answers its slice of the batch with ``search``, which shares the work
  of a predicate's queries (a mask per leaf, a matrix product per leaf or cluster);
- spark: the layout's leaves, cut into slices of consecutive clusters
  (``hqi.slice_rows``), are Spark's groups. The batch's distinct predicates are routed
  through the qd-tree on the driver. In approximate mode, tasks over the layout count each
  predicate's satisfying rows per cluster, and the queries of a predicate, grouped with
  those counts, choose their clusters (``choose_clusters``, as ``search`` does). Every
  (query, slice) pair is cogrouped with the slice's rows (``applyInArrow``), searched there
  (``slice_layout``; exactly, or the chosen clusters), and a window keeps each query's k
  best by (distance, id).

A query's answer depends on nothing else in its batch (exact distances; cluster order by
exact centroid distances where float32 is in doubt), so the engines' answers are equal.

Queries are read one task per file; a row is answered or quarantined (source ``queries``)
with one reason: ``missing query_id``, ``k must be a positive integer``, ``missing
vector``, ``vector has N values, expected d``, ``vector has NaN or infinite values``,
``predicate: ...`` (malformed JSON, an unknown column, an op or value that does not fit
the column: the parser's words) or ``duplicate query_id (first at file:line)``.
``inputs.query_rows`` = ``metrics.queries`` + ``quarantined.queries``.

Outputs under ``<output>/hqi_query/``: ``results`` (schemas.datasets.HQI_RESULTS),
``query_stats`` (HQI_QUERY_STATS), ``quarantine`` (QUARANTINE) and ``manifest.json``: the
engine, hqi-index's build seconds and this run's query seconds (from the parsed batch held
in Spark's memory to every result written), rows scanned per query (mean, median, max, and
the mean's share of the rows) and, with ``hqi.truth``, the recall@k of each query's own k
(``recall_at_k``'s definition: ties with the k-th true distance count as found).

Run: ``sigil hqi-query --conf FILE`` or ``spark-submit jobs/hqi_query.py --conf FILE``.
"""

from __future__ import annotations

import json
import logging
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sigil.jobs.spark.io import quarantine_examples, read_files, read_input, spark_schema, write_parquet
from sigil.jobs.spark.lookup import dataset_version, worker_held
from sigil.jobs.spark.parse import parse_parts, split_duplicates, task_input_errors
from sigil.jobs.spark.session import job_run
from sigil.run import previous_manifest
from sigil.schemas import datasets
from sigil.schemas.config import HqiConfig, SigilConfig
from sigil.transforms.hqi import (Layout, Queries, SearchResult, check_workload, choose_clusters, load_layout, search,
                                  slice_layout, vectors_of)
from sigil.transforms.predicates import Columns, parse, parse_many
from sigil.transforms.qdtree import QdTree
from sigil.transforms.records import InputError, list_files, open_input

NO_SPLIT = 1 << 62  # query files are read whole, one task each
BLOCK = 1 << 22  # queries x clusters per call of choose_clusters
WARM_UP = 64  # queries each worker answers before the batch is timed, to compile the search's kernels
#: Query rows as read: good ones with their predicate's normal form, bad ones with a reason.
STAGED = pa.schema([("file", pa.string()), ("line", pa.int64()), ("query_id", pa.int64()), ("k", pa.int64()),
                    ("vector", pa.list_(pa.float32())), ("predicate", pa.string()), ("reason", pa.string()),
                    ("raw", pa.string())])
#: What the search tasks return: result rows (``id`` set; ``rank`` null when a slice's, to
#: be merged) and one row per query of its work (``id`` null).
ANSWERS = pa.schema([("query_id", pa.int64()), ("rank", pa.int32()), ("id", pa.int64()), ("distance", pa.float32()),
                     ("rows_scanned", pa.int64()), ("distance_computations", pa.int64())])


def _numbers(t: pa.DataType) -> bool:
    """Whether ``t`` is a list (of any kind) of numbers."""
    lists = pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t)
    return lists and (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type))


#: The workload interface's columns, and whether a type will do for each.
WORKLOAD_TYPES = {"query_id": pa.types.is_integer, "k": pa.types.is_integer, "vector": _numbers,
                  "predicate": pa.types.is_string}


class Index(NamedTuple):
    """hqi-index's output as the tasks find it: its directory, the versions of its files
    (a worker's layout is reused while they are unchanged), the attribute kinds, d."""

    path: str
    version: tuple
    types: dict
    dim: int


def held_layout(index: Index) -> Layout:
    """In a task: the layout, read once per Python worker and kept for its later tasks."""
    return worker_held(index, lambda: load_layout(index.path))


def layout_bytes(metrics: dict) -> int:
    """What a held layout takes, from hqi-index's metrics: per row the vector, id, norm and
    position (4 d + 20 bytes, and 4 for slack), 9 bytes per attribute; the centroids."""
    d = metrics["dim"]
    return metrics["rows"] * (4 * d + 24 + 9 * len(metrics["attributes"])) + metrics["clusters"] * 4 * d


def engine_of(hqi: HqiConfig, metrics: dict) -> str:
    """``hqi.engine``, or else memory when the layout fits ``hqi.held_mb``, else spark."""
    if hqi.engine is not None:
        return hqi.engine
    return "memory" if layout_bytes(metrics) <= hqi.held_mb << 20 else "spark"


# ---------------------------------------------------------------------------- the batch


def _check_file(path: str) -> None:
    """A workload file with the columns the interface names, of usable types (else
    InputError naming the file and column)."""
    fs, p = open_input(path)
    try:
        with fs.open_input_file(p) as f:
            schema = pq.read_schema(f)
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"hqi.queries: cannot read {path} as Parquet: {err}") from None
    for name, ok in WORKLOAD_TYPES.items():
        if name not in schema.names:
            raise InputError(f"hqi.queries: {path} has no column {name!r}; it has {schema.names}")
        if not ok(schema.field(name).type):
            raise InputError(f"hqi.queries: column {name!r} of {path} has type {schema.field(name).type}; the "
                             "workload interface has query_id and k integers, vector a list of numbers, predicate "
                             "JSON text")


def _staged(path: str, types: dict, dim: int, first_line: int) -> pa.Table:
    """STAGED rows of one workload file (``check_workload``; duplicates are Spark's)."""
    fs, p = open_input(path)
    try:
        with fs.open_input_file(p) as f:
            table = pq.read_table(f, columns=list(WORKLOAD_TYPES))
    except (OSError, pa.ArrowException) as err:  # changed or damaged since the driver checked it
        raise InputError(f"hqi.queries: cannot read {path}: {err}") from None
    queries, reasons = check_workload(table, types, dim, duplicates=False)
    bad = reasons != None  # noqa: E711 - elementwise
    text = table.column("predicate").combine_chunks()
    normal = [None if q is None else q.to_json() for q in queries.predicates]
    raw = [json.dumps({"query_id": i, "k": k, "predicate": t}) if b else None for i, k, t, b in zip(
        table.column("query_id").to_pylist(), table.column("k").to_pylist(), text.to_pylist(), bad, strict=True)]
    vectors = pc.cast(table.column("vector"), pa.list_(pa.float32()))
    vectors = pc.if_else(pa.array(~bad), vectors, pa.scalar(None, vectors.type))  # bad rows' vectors travel as null
    return pa.table({
        "file": [path] * table.num_rows, "line": np.arange(first_line, first_line + table.num_rows),
        "query_id": pc.cast(table.column("query_id"), pa.int64()), "k": pc.cast(table.column("k"), pa.int64()),
        "vector": vectors, "predicate": pa.array([t if b else n for t, n, b in zip(text.to_pylist(), normal, bad)],
                                                 pa.string()),
        "reason": pa.array(reasons.tolist(), pa.string()), "raw": pa.array(raw, pa.string())}, schema=STAGED)


def staged_queries(spark, hqi: HqiConfig, types: dict, dim: int) -> DataFrame:
    """Every row of the batch's files (STAGED), one task per file, each file's columns
    checked on the driver first."""
    files = list_files(hqi.queries.path)
    for path in files:
        _check_file(path)

    def reader(_, path, start, end, first_line):
        yield from _staged(path, types, dim, first_line).to_batches()

    return parse_parts(spark, [("queries", p, "parquet") for p in files], NO_SPLIT, reader, STAGED)


def query_rows(staged: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``(query_id, k, vector, predicate)`` of every query to answer, and the QUARANTINE
    rows of the others."""
    kept, dupes = split_duplicates(staged.where("reason is null"), ["query_id"])
    dupes = dupes.select("file", "line", "query_id", F.regexp_replace("reason", "^duplicate id", "duplicate query_id")
                         .alias("reason"), F.to_json(F.struct("query_id", "k", "predicate")).alias("raw"))
    bad = staged.where("reason is not null").select("file", "line", "query_id", "reason", "raw").unionByName(dupes)
    quarantine = bad.select(F.lit("queries").alias("source"), "file", "line",
                            F.col("query_id").cast("string").alias("id"), "reason", "raw")
    return kept.select("query_id", "k", "vector", "predicate"), quarantine


def _queries(table, types: dict) -> Queries:
    """Staged query rows (normal-form predicates) as ``Queries``."""
    predicates, _ = parse_many(table.column("predicate").to_pylist(), types)
    return Queries(table.column("query_id").to_numpy(), table.column("k").to_numpy(),
                   vectors_of(table.column("vector")), predicates)


def _answer_table(result: SearchResult, queries: Queries, ranked: bool) -> pa.Table:
    """ANSWERS rows: the results, and each query's work."""
    m, n = len(queries.query_id), len(result.id)
    nulls = lambda t, count: pa.nulls(count, t)  # noqa: E731
    found = pa.table({"query_id": result.query_id, "rank": result.rank if ranked else nulls(pa.int32(), n),
                      "id": result.id, "distance": result.distance, "rows_scanned": nulls(pa.int64(), n),
                      "distance_computations": nulls(pa.int64(), n)}, schema=ANSWERS)
    work = pa.table({"query_id": queries.query_id, "rank": nulls(pa.int32(), m), "id": nulls(pa.int64(), m),
                     "distance": nulls(pa.float32(), m), "rows_scanned": result.stats.rows_scanned,
                     "distance_computations": result.stats.distance_computations}, schema=ANSWERS)
    return pa.concat_tables([found, work])


# ---------------------------------------------------------------------------- the engines


def answers(spark, queries: DataFrame, index: Index, hqi: HqiConfig, engine: str) -> tuple[DataFrame, dict]:
    """ANSWERS of the batch by either engine (``engine_of``), and the engine's metrics.
    The memory engine's result rows are ranked; the spark engine's are its slices', which
    ``results_of`` merges."""
    if engine == "memory":
        return _memory_answers(spark, queries, index, hqi.nprobe), {}
    found, slices = _spark_answers(spark, queries, index, hqi.nprobe, hqi.slice_rows)
    return found, {"slices": slices}


def _memory_answers(spark, queries: DataFrame, index: Index, nprobe: int | None) -> DataFrame:
    """ANSWERS of tasks that hold the layout, each answering its Arrow batches of queries."""

    def answer(batches):
        for batch in batches:
            layout = held_layout(index)
            q = _queries(batch, layout.columns.types)
            yield from _answer_table(search(layout, q, nprobe=nprobe), q, ranked=True).to_batches()

    tasks = spark.sparkContext.defaultParallelism
    return queries.repartition(tasks).mapInArrow(answer, spark_schema(ANSWERS))


def warm_up(spark, index: Index, sample: pa.Table | None = None, nprobe: int | None = None) -> None:
    """Have the Python workers read the layout, and answer ``sample`` (a few of the batch's
    queries, answers dropped) so that the search's kernels are compiled, before the batch
    is timed."""

    def load(batches):
        for batch in batches:
            layout = held_layout(index)
            if sample is not None and sample.num_rows:
                search(layout, _queries(sample, layout.columns.types), nprobe=nprobe)
            yield pa.RecordBatch.from_pydict({"rows": [len(layout.ids)] * batch.num_rows})

    tasks = spark.sparkContext.defaultParallelism
    spark.range(tasks, numPartitions=tasks).mapInArrow(load, "rows long").collect()  # driver-ok: one row per task


def slices_of(rows: np.ndarray, leaf_clusters: np.ndarray, slice_rows: int) -> np.ndarray:
    """The slice of every cluster: a leaf's consecutive clusters while they add up to at
    most ``slice_rows`` rows (a larger cluster alone), slices numbered over all leaves."""
    out, s = np.empty(len(rows), dtype=np.int64), -1
    for lf in range(len(leaf_clusters) - 1):
        held = None
        for c in range(leaf_clusters[lf], leaf_clusters[lf + 1]):
            if held is None or held + rows[c] > slice_rows:
                s, held = s + 1, 0
            out[c], held = s, held + rows[c]
    return out


class Slicing(NamedTuple):
    """What the spark engine knows on the driver: the tree, the centroids, every cluster's
    leaf, rows and slice."""

    tree: QdTree
    centroids: np.ndarray
    leaf: np.ndarray
    slice: np.ndarray


def slicing(index: Index, slice_rows: int) -> Slicing:
    """The tree, the centroids and every cluster's leaf and slice, read on the driver (one
    row per cluster)."""
    fs, root = open_input(index.path)
    with fs.open_input_stream(f"{root}/tree.json") as f:
        tree = QdTree.from_dict(json.loads(f.read()))
    c = pq.read_table(f"{root}/centroids", filesystem=fs).sort_by("cluster")  # driver-ok: one row per cluster
    leaf, rows = c.column("leaf").to_numpy().astype(np.int64), c.column("rows").to_numpy()
    leaf_clusters = np.r_[0, np.cumsum(np.bincount(leaf, minlength=tree.num_leaves))]
    return Slicing(tree, vectors_of(c.column("centroid")), leaf, slices_of(rows, leaf_clusters, slice_rows))


def _routes(spark, queries: DataFrame, tree: QdTree) -> dict:
    """Every distinct predicate of the batch (normal form) -> the leaves it reaches."""
    texts = [r["predicate"] for r in queries.select("predicate").distinct().collect()]  # driver-ok: distinct ones
    return {t: [int(lf) for lf in tree.route(parse(t, tree.types))] for t in sorted(texts)}


def _satisfying(spark, layout: DataFrame, routes: dict, types: dict) -> DataFrame:
    """``(predicate, cluster, satisfying)``: every routed predicate's satisfying rows in each
    cluster of the leaves it reaches, counted by tasks over the layout (a mask per leaf and
    predicate in each batch)."""
    by_leaf: dict = {}
    for text, leaves in routes.items():
        for lf in leaves:
            by_leaf.setdefault(lf, []).append((text, parse(text, types)))
    shared = spark.sparkContext.broadcast(by_leaf)
    names = list(types)

    def count(batches):
        for batch in batches:
            leaf, cluster = batch.column("leaf").to_numpy(), batch.column("cluster").to_numpy()
            columns = Columns.from_table(pa.Table.from_batches([batch]).select(names), types)
            order = np.argsort(leaf, kind="stable")
            starts = np.flatnonzero(np.r_[True, leaf[order][1:] != leaf[order][:-1]]) if len(leaf) else order
            out = []
            for a, b in zip(starts, np.r_[starts[1:], len(leaf)]):
                rows = order[a:b]
                for text, p in shared.value.get(int(leaf[rows[0]]), []):
                    hit = rows if p.is_true else rows[p.mask(columns, rows)]
                    c, n = np.unique(cluster[hit], return_counts=True)
                    out.append(pa.table({"predicate": pa.array([text] * len(c), pa.string()),
                                         "cluster": c.astype(np.int32), "satisfying": n}))
            if out:
                yield from pa.concat_tables(out).to_batches()

    counted = layout.select("leaf", "cluster", *names).mapInArrow(
        count, "predicate string, cluster int, satisfying long")
    return counted.groupBy("predicate", "cluster").agg(F.sum("satisfying").alias("satisfying"))


def _chosen(queries: DataFrame, counts: DataFrame, centroids: np.ndarray, nprobe: int, spark) -> DataFrame:
    """``(query_id, cluster, rank)``: the clusters each query probes, chosen by the queries
    of one predicate together with its satisfying counts (``choose_clusters``)."""
    shared = spark.sparkContext.broadcast(centroids)

    def choose(q: pa.Table, c: pa.Table) -> pa.Table:
        c = c.filter(pc.greater(c.column("satisfying"), 0)).sort_by("cluster")
        out = {"query_id": [], "cluster": [], "rank": []}
        if q.num_rows and c.num_rows:
            cluster, satisfying = c.column("cluster").to_numpy().astype(np.int64), c.column("satisfying").to_numpy()
            vectors, k, ids = vectors_of(q.column("vector")), q.column("k").to_numpy(), q.column("query_id").to_numpy()
            step = max(1, BLOCK // len(cluster))
            for lo in range(0, len(k), step):
                g, pos, rank = choose_clusters(vectors[lo:lo + step], k[lo:lo + step], shared.value[cluster],
                                               satisfying, nprobe)
                out["query_id"].append(ids[lo:lo + step][g])
                out["cluster"].append(cluster[pos].astype(np.int32))
                out["rank"].append(rank.astype(np.int32))
        return pa.table({name: np.concatenate(v) if v else np.zeros(0, t) for (name, v), t in
                         zip(out.items(), (np.int64, np.int32, np.int32))})

    return queries.groupBy("predicate").cogroup(counts.groupBy("predicate")).applyInArrow(
        choose, "query_id long, cluster int, rank int")


def _spark_answers(spark, queries: DataFrame, index: Index, nprobe: int | None, slice_rows: int) -> tuple[DataFrame,
                                                                                                         int]:
    """ANSWERS of the slices' groups (result rows unranked), and the number of slices."""
    s = slicing(index, slice_rows)
    types = index.types
    routes = _routes(spark, queries, s.tree)
    table = [(int(c), int(sl)) for c, sl in enumerate(s.slice)]
    slice_of = lambda: F.broadcast(spark.createDataFrame(table, "cluster int, slice long"))  # noqa: E731 - one per use
    layout = read_input(spark, f"{index.path}/layout", "layout", "hqi-index")
    if nprobe is None:  # every slice of every leaf a query's predicate reaches
        leaves = sorted({lf for reached in routes.values() for lf in reached})
        slices = spark.createDataFrame([(int(lf), int(sl)) for lf, sl in sorted(set(zip(s.leaf, s.slice)))],
                                       "leaf int, slice long")
        reached = spark.createDataFrame([(t, lf) for t, r in routes.items() for lf in r], "predicate string, leaf int")
        pairs = queries.join(F.broadcast(reached), "predicate").join(F.broadcast(slices), "leaf").select(
            "slice", "query_id", "k", "vector", "predicate", F.lit(None).cast("array<int>").alias("clusters"))
        rows = layout.where(F.col("leaf").isin(leaves))
    else:  # the slices holding the clusters chosen for a query, each with its clusters there
        counts = _satisfying(spark, layout, routes, types)
        chosen = _chosen(queries, counts, s.centroids, nprobe, spark).localCheckpoint()  # used twice: computed once
        lists = chosen.join(slice_of(), "cluster").groupBy("query_id", "slice").agg(
            F.array_sort(F.collect_list(F.struct("rank", "cluster"))).alias("probes"))
        pairs = lists.join(queries, "query_id").select("slice", "query_id", "k", "vector", "predicate",
                                                       F.col("probes.cluster").alias("clusters"))
        wanted = [r[0] for r in chosen.select("cluster").distinct().collect()]  # driver-ok: one row per cluster
        rows = layout.where(F.col("cluster").isin(wanted))
    rows = rows.join(slice_of(), "cluster")
    shared = spark.sparkContext.broadcast(s.centroids)
    names = list(types)

    def answer(rows: pa.Table, pairs: pa.Table) -> pa.Table:
        if not rows.num_rows or not pairs.num_rows:
            return ANSWERS.empty_table()
        cluster = rows.column("cluster").to_numpy().astype(np.int64)
        present = np.unique(cluster)
        part = slice_layout(rows.column("id").to_numpy(), rows.column("vector"), rows.select(names),
                            np.searchsorted(present, cluster), shared.value[present], types=types)
        q = _queries(pairs, types)
        probes = None
        if nprobe is not None:
            lists = pairs.column("clusters").combine_chunks()
            probes = (np.repeat(np.arange(pairs.num_rows), pc.list_value_length(lists).to_numpy()),
                      np.searchsorted(present, lists.flatten().to_numpy()))
        return _answer_table(search(part, q, probes=probes), q, ranked=False)

    answers = rows.groupBy("slice").cogroup(pairs.groupBy("slice")).applyInArrow(answer, spark_schema(ANSWERS))
    return answers, int(s.slice.max(initial=-1)) + 1


def results_of(answers: DataFrame, queries: DataFrame, merge: bool) -> DataFrame:
    """HQI_RESULTS rows: the memory engine's as they are; the slices' merged, each query's
    k best by (distance, id)."""
    found = answers.where("id is not null")
    if merge:
        best = Window.partitionBy("query_id").orderBy("distance", "id")
        found = found.join(queries.select("query_id", "k"), "query_id").withColumn(
            "rank", (F.row_number().over(best) - 1).cast("int")).where("rank < k")
    return found.select(*datasets.HQI_RESULTS.names)


def stats_of(answers: DataFrame, queries: DataFrame) -> DataFrame:
    """HQI_QUERY_STATS rows: every query's work, summed over its slices (0 where it
    reached none)."""
    work = answers.where("id is null").groupBy("query_id").agg(
        F.sum("rows_scanned").alias("rows_scanned"), F.sum("distance_computations").alias("distance_computations"))
    return queries.select("query_id").join(work, "query_id", "left").select(
        "query_id", *(F.coalesce(c, F.lit(0)).cast("long").alias(c) for c in ("rows_scanned", "distance_computations")))


# ---------------------------------------------------------------------------- quality


def recall(spark, path: str, results: DataFrame, queries: DataFrame, rtol: float = 1e-5) -> dict:
    """Mean recall@k against the answers at ``path``, each query's own k, as
    ``transforms.hqi.recall_at_k`` defines it: a result counts when its distance is at most
    the k-th true distance (relative tolerance ``rtol``); over the queries with a true
    answer."""
    truth = read_files(spark, path, "parquet")
    missing = sorted(set(datasets.HQI_RESULTS.names) - set(truth.columns))
    if missing:
        raise InputError(f"hqi.truth: {path} has no column(s) {missing}; it has {truth.columns}")
    top = truth.join(queries.select("query_id", "k"), "query_id").where("rank < k").groupBy("query_id").agg(
        F.count("*").alias("expected"), F.max("distance").alias("kth"))
    tolerance = F.lit(rtol) * F.greatest(F.lit(1.0), F.abs("kth"))
    correct = results.join(top, "query_id").where(F.col("distance") <= F.col("kth") + tolerance).groupBy(
        "query_id").agg(F.count("*").alias("correct"))
    r = top.join(correct, "query_id", "left").select(
        (F.least(F.coalesce("correct", F.lit(0)), F.col("expected")) / F.col("expected")).alias("recall")).agg(
        F.mean("recall"), F.count("*")).first()  # driver-ok: one row
    return {"recall_at_k": 1.0 if r[1] == 0 else r[0], "queries": r[1]}


def _spread(frame: DataFrame, column: str) -> dict:
    r = frame.agg(F.mean(column), F.median(column), F.max(column)).first()  # driver-ok: one row
    return {"mean": r[0], "median": r[1], "max": r[2]}


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    hqi = config.hqi
    if hqi is None:
        raise InputError("the configuration has no 'hqi' section")
    if hqi.queries is None:
        raise InputError("hqi-query reads its batch from hqi.queries (a path of Parquet files); add it")
    built = previous_manifest(config, "hqi_index", "hqi-index")["metrics"]
    path = f"{config.output.rstrip('/')}/hqi_index"
    engine = engine_of(hqi, built)
    with job_run("hqi_query", spark, config, strict, quiet) as job:
        index = Index(path, (dataset_version(f"{path}/layout"), dataset_version(f"{path}/centroids")),
                      built["attributes"], built["dim"])
        with job.stage("queries"):
            staged = staged_queries(spark, hqi, index.types, index.dim).persist(StorageLevel.MEMORY_AND_DISK)
            with task_input_errors():
                n_rows = staged.count()
            queries, quarantine = query_rows(staged)
            queries = queries.persist(StorageLevel.MEMORY_AND_DISK)
            n_queries = queries.count()  # the batch, parsed, in memory
            n_bad = write_parquet(quarantine, job.path("quarantine"), datasets.QUARANTINE)
        job.refuse_quarantined(n_bad, lambda: quarantine_examples(spark.read.parquet(job.path("quarantine"))),
                               "query row(s)")
        metrics = {"engine": engine, "nprobe": hqi.nprobe, "queries": n_queries}
        if engine == "memory":
            if layout_bytes(built) > hqi.held_mb << 20:
                job.log(f"hqi.engine=memory: every Python worker holds the layout, about "
                        f"{layout_bytes(built) >> 20} MB, more than hqi.held_mb={hqi.held_mb}", logging.WARNING)
            with job.stage("load"):
                warm_up(spark, index, queries.limit(WARM_UP).toArrow(), hqi.nprobe)  # driver-ok: a few queries
        with job.stage("search"):
            found, more = answers(spark, queries, index, hqi, engine)
            metrics.update(more)
            found = found.persist(StorageLevel.MEMORY_AND_DISK)
            results = results_of(found, queries, merge=engine == "spark")
            n_results = write_parquet(results.sortWithinPartitions("query_id", "rank"), job.path("results"),
                                      datasets.HQI_RESULTS)
        with job.stage("stats"):
            write_parquet(stats_of(found, queries), job.path("query_stats"), datasets.HQI_QUERY_STATS)
            found.unpersist()
            stats = spark.read.parquet(job.path("query_stats"))
            scanned = _spread(stats, "rows_scanned")
            if hqi.truth is not None:
                metrics["recall"] = recall(spark, hqi.truth.path, spark.read.parquet(job.path("results")), queries)
        staged.unpersist()
        queries.unpersist()
        seconds, mean = job.manifest["timings"]["search"], scanned["mean"]
        metrics.update({
            "results": n_results, "build_seconds": built["build_seconds"], "query_seconds": seconds,
            "queries_per_second": n_queries / seconds if seconds else None, "rows_scanned": scanned,
            "scanned_share": mean / built["rows"] if mean is not None and built["rows"] else None})
        job.manifest["inputs"] = {"query_rows": n_rows}
        job.manifest["quarantined"] = {"queries": n_bad}
        job.manifest["outputs"] = {"results": n_results, "query_stats": n_queries}
        job.manifest["metrics"] = metrics
        job.log(f"{n_queries} queries answered ({n_bad} quarantined) by the {engine} engine in {seconds:.1f} s, "
                f"{n_results} results" + (f", recall@k {metrics['recall']['recall_at_k']:.4f}" if "recall" in metrics
                                          else ""))
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/hqi_query.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["hqi-query", *sys.argv[1:]]))
