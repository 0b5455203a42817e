"""ppr-query job: a batch of personalized PageRank queries, answered from the fingerprints.

A query names one or more source vertices (external ids); its answer is the k vertices of
highest PPR of the uniform distribution over them. As PowerWalk does (Liu et al., CIKM 2016,
arXiv:1608.06054; transforms/ppr.py), each query's residual is pushed ``ppr.steps`` times
from its sources (entries under ``ppr.prune`` stay), the residual weights under
``ppr.resolution`` are sampled (unbiased, seeded by ``ppr.seed`` and the query's sources),
and the fingerprints of ppr-index cover what is left: ``ppr ~ estimate + residual @ F``.
Each task answers a batch of queries together, in parallel threads. The pushes need the graph in the tasks (each Python worker reads graph-ingest's edges
once); the fingerprints go one of two ways (``write_rankings``, ``scored``):

- held: fingerprints that fit ``ppr.held_fingerprints_mb`` are read by every worker too,
  into the in-memory ``PPRIndex`` (whose answers are the job's), and each task answers its
  slice of the queries a chunk at a time and keeps each query's k best;
- joined: otherwise the tasks push their queries, Spark joins the residuals with the
  fingerprints by vertex, adds up every query's scores (in integer units of 2^-52: exact in
  any order, so a rerun gives the same scores) and ranks them.

With ``ppr.exact_sample``, a seeded sample of the queries is compared with exact PPR (power
iteration, ``exact_ppr``): mean and median L1 error, precision@k and NDCG@k (the
benchmark's definitions) in the manifest.

Queries are read as communities' seed queries are (transforms/graph.py), a row answered or
quarantined (source ``queries``) with one reason: those of reading the file, ``no source
vertex``, ``bad k``, ``missing id``, ``duplicate id``, or ``unknown vertex: <ids>`` (a query
naming a vertex the graph lacks is not answered: without it, it would be another query).
``inputs.query_rows`` = ``metrics.queries`` + ``quarantined.queries``.

Outputs under ``<output>/ppr_query/``: ``rankings`` (schemas.datasets.PPR_RANKINGS),
``quarantine`` (QUARANTINE) and ``manifest.json``.

Run: ``sigil ppr-query --conf FILE`` or ``spark-submit jobs/ppr_query.py --conf FILE``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import reduce
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sigil.jobs.spark.io import quarantine_examples, read_input, spark_schema, write_parquet
from sigil.jobs.spark.lookup import dataset_version, worker_held
from sigil.jobs.spark.parse import split_duplicates, staged_queries
from sigil.jobs.spark.session import job_run
from sigil.jobs.spark.transitions import stop_mass, transition
from sigil.run import previous_manifest
from sigil.schemas import datasets
from sigil.schemas.config import PprConfig, SigilConfig
from sigil.transforms.ppr import (Graph, PPRIndex, decompose, exact_ppr, fingerprint_matrix, graph_bytes, l1_error,
                                  ndcg_at_k, precision_at_k, query_keys, roulette)
from sigil.transforms.records import InputError, open_input

QUERIES_PER_CALL = 1_000  # queries a task pushes together: one sparse product per step for all of them
EXACT_PER_CALL = 16  # queries whose exact PPR is iterated together (dense: 16 bytes per vertex each)
SCALE = float(1 << 52)  # joined scores add up as integers in units of 2^-52 (a score is at most 1)
REASONS = {"no seeds": "no source vertex", "bad size": "bad k"}  # the query reader's words, in PPR's
RANKED = spark_schema(datasets.select(datasets.PPR_RANKINGS, "query_id", "rank", "vid", "score"))
SCORES = "query_id string, vid long, score double"


class Held(NamedTuple):
    """What the tasks hold, and the key they hold it by: the graph (graph-ingest's edges,
    their ``dataset_version``, how ppr-index walked them; ``graph_held`` False: pushed by
    Spark instead) and, when they fit, the fingerprints (their path and version; None:
    they are joined)."""

    graph_held: bool
    edges: str
    edges_version: tuple
    n: int
    directed: bool
    weighted: bool
    alpha: float
    steps: int
    prune: float
    resolution: float
    seed: int
    fingerprints: str | None
    fingerprints_version: tuple | None

    def graph(self) -> Graph:
        """In a task: the graph, read once per Python worker."""
        if self.fingerprints is not None:
            return self.index().graph
        return worker_held(self, lambda: Graph.from_parquet(self.edges, self.n, directed=self.directed,
                                                     weighted=self.weighted))

    def index(self) -> PPRIndex:
        """In a task: the graph and the fingerprints as a ``PPRIndex``, read once per worker."""
        def build():
            fs, root = open_input(self.fingerprints)
            f = pq.read_table(root, filesystem=fs)
            matrix = fingerprint_matrix(f["source"].to_numpy(), f["target"].to_numpy(), f["value"].to_numpy(), self.n)
            del f  # before the graph is read: one of them at a time besides the matrix
            return PPRIndex(Graph.from_parquet(self.edges, self.n, directed=self.directed, weighted=self.weighted),
                            matrix, alpha=self.alpha, steps=self.steps, prune=self.prune, resolution=self.resolution,
                            seed=self.seed)
        return worker_held(self, build)


def holding(config: SigilConfig, index: dict) -> Held:
    """What the tasks will hold, from ppr-index's manifest metrics ``index`` and the memory
    allowed: the graph up to ``ppr.held_graph_mb`` (the pushes run there; larger graphs are
    pushed by Spark), and with it the fingerprints up to ``ppr.held_fingerprints_mb`` (8
    bytes a row, as ``PPRIndex`` holds them)."""
    ppr, n = config.ppr, index["vertices"]
    graph_held = graph_bytes(n, index["arcs"], weighted=index["weighted"], queries=True) <= ppr.held_graph_mb << 20
    edges, fingerprints = config.stage_path("graph", "edges"), config.stage_path("ppr_index", "fingerprints")
    fits = graph_held and 8 * index["rows"] + 8 * (n + 1) <= ppr.held_fingerprints_mb << 20
    return Held(graph_held, edges, dataset_version(edges), n, index["directed"], index["weighted"], ppr.alpha,
                ppr.steps, ppr.prune, ppr.resolution, ppr.seed, fingerprints if fits else None,
                dataset_version(fingerprints) if fits else None)


def query_rows(staged: DataFrame, vertices: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``(query_id, k, vids)`` of every query to answer, and the QUARANTINE rows of the others."""
    reason = F.col("reason")
    for said, meant in REASONS.items():
        reason = F.regexp_replace(reason, f"^{said}", meant)
    unread = staged.where("reason is not null").select("file", "line", "query_id", reason.alias("reason"), "raw")
    kept, dupes = split_duplicates(staged.where("reason is null"), ["query_id"])
    raw = F.to_json(F.struct("query_id", F.col("seeds").alias("sources"), F.col("size").alias("k"))).alias("raw")
    named = kept.select("file", "line", "query_id", "seeds", "size", F.explode("seeds").alias("vertex")).join(
        vertices.select("vertex", "vid"), "vertex", "left")
    grouped = named.groupBy("query_id").agg(
        *(F.first(c).alias(c) for c in ("file", "line", "seeds", "size")), F.collect_set("vid").alias("vids"),
        F.array_sort(F.collect_set(F.when(F.col("vid").isNull(), F.col("vertex")))).alias("unknown"))
    unknown = grouped.where(F.size("unknown") > 0).select(
        "file", "line", "query_id", F.concat(F.lit("unknown vertex: "), F.array_join("unknown", ", ")).alias("reason"),
        raw)
    bad = unread.unionByName(dupes.select("file", "line", "query_id", "reason", raw)).unionByName(unknown)
    quarantine = bad.select(F.lit("queries").alias("source"), "file", "line", F.col("query_id").alias("id"), "reason",
                            "raw")
    answered = grouped.where(F.size("unknown") == 0).select("query_id", F.col("size").alias("k"),
                                                           F.array_sort("vids").alias("vids"))
    return answered, quarantine


def _chunks(batches, size: int):
    """``(query ids, k, source lists)`` of every ``size`` queries of the batches."""
    for batch in batches:
        for lo in range(0, batch.num_rows, size):
            b = batch.slice(lo, size)
            vids = b.column("vids")
            ends = np.cumsum(pc.list_value_length(vids).to_numpy())
            yield b.column("query_id"), b.column("k").to_numpy(), np.split(vids.flatten().to_numpy(), ends[:-1])


def _held_rankings(queries: DataFrame, held: Held, tasks: int) -> DataFrame:
    """Each query's k best (``query_id, rank, vid, score``), answered by ``PPRIndex``."""

    def answer(batches):
        for ids, k, sources in _chunks(batches, QUERIES_PER_CALL):
            t = held.index().top_k(sources, int(k.max()))
            keep = t.rank <= k[t.query]
            yield pa.RecordBatch.from_pydict({"query_id": ids.take(pa.array(t.query[keep])), "rank": t.rank[keep],
                                              "vid": t.vid[keep], "score": t.score[keep]})

    return queries.repartition(tasks).mapInArrow(answer, RANKED)


def _held_scores(queries: DataFrame, held: Held, tasks: int) -> DataFrame:
    """Every positive score of every query (SCORES), from ``PPRIndex``."""

    def score(batches):
        for ids, _, sources in _chunks(batches, QUERIES_PER_CALL):
            s = held.index().scores(sources).tocoo()
            keep = s.data > 0
            yield pa.RecordBatch.from_pydict({"query_id": ids.take(pa.array(s.row[keep])),
                                              "vid": s.col[keep].astype(np.int64), "score": s.data[keep]})

    return queries.repartition(tasks).mapInArrow(score, SCORES)


PUSHED = "query_id string, vertex long, amount double, residual boolean"


def _pushed(queries: DataFrame, held: Held, tasks: int) -> DataFrame:
    """``(query_id, vertex, amount, residual)``: every query's decomposition (``decompose``),
    its estimate and its residual rows, pushed by tasks that hold the graph or, for a graph
    too large for them, by Spark (``_spark_pushed``)."""
    if not held.graph_held:
        return _spark_pushed(queries, held, tasks)

    def push(batches):
        for ids, _, sources in _chunks(batches, QUERIES_PER_CALL):
            d = decompose(held.graph(), sources, held.steps, alpha=held.alpha, prune=held.prune,
                          resolution=held.resolution, seed=held.seed)
            for part, residual in ((d.estimate, False), (d.residual, True)):
                c = part.tocoo()
                yield pa.RecordBatch.from_pydict({
                    "query_id": ids.take(pa.array(c.row)), "vertex": c.col.astype(np.int64), "amount": c.data,
                    "residual": np.full(c.nnz, residual)})

    return queries.repartition(tasks).mapInArrow(push, PUSHED)


def _spark_pushed(queries: DataFrame, held: Held, tasks: int) -> DataFrame:
    """``_pushed``'s rows by Spark joins, as ``decompose`` pushes in memory: each round
    joins the residual entries >= prune with the graph's transitions and adds up what they
    send (PowerWalk's vertex-centric decomposition as Spark rounds); then the estimate and
    the residual weighted by the stop mass are divided by each query's total, and the
    residual weights under the resolution sampled by the same keyed draws (``roulette``).
    The same answers as the held path but for float rounding (sums in another order)."""
    spark = queries.sparkSession
    edges = spark.read.parquet(held.edges)
    steps = transition(edges, held.directed, held.weighted).persist(StorageLevel.MEMORY_AND_DISK)
    vertices = spark.range(held.n).withColumnRenamed("id", "vid")
    dangling = steps.select("src").distinct().count() < held.n
    mass = stop_mass(vertices, steps, held.alpha) if dangling else None
    residual = queries.select("query_id", F.explode("vids").alias("vertex"),
                              (1.0 / F.size("vids")).alias("amount"))
    estimate = []
    amount = F.col("amount")
    for _ in range(held.steps):
        pushed = (amount > 0) & (amount >= held.prune)
        estimate.append(residual.where(pushed).select("query_id", "vertex", (held.alpha * amount).alias("amount")))
        sent = residual.where(pushed).join(steps.withColumnRenamed("src", "vertex"), "vertex").select(
            "query_id", F.col("dst").alias("vertex"), ((1 - held.alpha) * amount * F.col("p")).alias("amount"))
        residual = residual.where(~pushed).unionByName(sent).groupBy("query_id", "vertex").agg(
            F.sum("amount").alias("amount")).repartition(tasks, "query_id").localCheckpoint()
    weights = residual if mass is None else residual.join(mass.withColumnRenamed("vid", "vertex"), "vertex").select(
        "query_id", "vertex", (amount * F.col("m")).alias("amount"))
    rows = weights.withColumn("residual", F.lit(True))
    if estimate:
        est = reduce(DataFrame.unionByName, estimate).groupBy("query_id", "vertex").agg(F.sum("amount").alias("amount"))
        rows = rows.unionByName(est.withColumn("residual", F.lit(False)))
    total = rows.groupBy("query_id").agg(F.sum("amount").alias("total"))
    keys = queries.select("query_id", "vids").mapInArrow(_keys(held), "query_id string, key long")
    normalised = rows.join(total, "query_id").join(keys, "query_id").select(
        "query_id", "vertex", (amount / F.col("total")).alias("amount"), "residual", "key")
    out = normalised.mapInArrow(_sampled(held), PUSHED).where("amount > 0")
    steps.unpersist()
    return out


def _keys(held: Held):
    """mapInArrow: each query's sampling key (``query_keys``), as a signed long."""
    def keys(batches):
        for b in batches:
            vids = b.column("vids")
            ends = np.cumsum(pc.list_value_length(vids).to_numpy())
            sources = np.split(vids.flatten().to_numpy(), ends[:-1])
            key = query_keys(sources, held.n, held.seed) if b.num_rows else np.zeros(0, np.uint64)
            yield pa.RecordBatch.from_pydict({"query_id": b.column("query_id"), "key": key.view(np.int64)})
    return keys


def _sampled(held: Held):
    """mapInArrow: the residual weights sampled by ``roulette``, the estimate as it is."""
    def sample(batches):
        for b in batches:
            amount, residual = b.column("amount").to_numpy(), b.column("residual").to_numpy(zero_copy_only=False)
            key = b.column("key").to_numpy().view(np.uint64)
            sampled = roulette(amount, key, b.column("vertex").to_numpy(), held.resolution)
            yield pa.RecordBatch.from_pydict({"query_id": b.column("query_id"), "vertex": b.column("vertex"),
                                              "amount": np.where(residual, sampled, amount), "residual": residual})
    return sample


@contextmanager
def scored(queries: DataFrame, fingerprints: DataFrame, held: Held, tasks: int):
    """Every positive score of every query (SCORES), inside the ``with`` block: from the
    held index, or the pushes joined with the fingerprints and added up by Spark."""
    if held.fingerprints is not None:
        yield _held_scores(queries, held, tasks)
        return
    pushed = _pushed(queries, held, tasks).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        spread = pushed.where("residual").join(fingerprints.withColumnRenamed("source", "vertex"), "vertex").select(
            "query_id", F.col("target").alias("vid"), (F.col("amount") * F.col("value")).alias("amount"))
        direct = pushed.where("not residual").select("query_id", F.col("vertex").alias("vid"), "amount")
        units = F.round(F.col("amount") * SCALE).cast("long")
        yield spread.unionByName(direct).groupBy("query_id", "vid").agg(
            (F.sum(units) / SCALE).alias("score")).where("score > 0")
    finally:
        pushed.unpersist()


def write_rankings(path: str, queries: DataFrame, fingerprints: DataFrame, vertices: DataFrame, held: Held,
                   tasks: int) -> int:
    """Write every query's k best vertices (PPR_RANKINGS, ties to the smaller vid) to
    ``path``; returns the rows. Answered by tasks that hold the fingerprints when they fit
    (``_held_rankings``), else by the joined scores (``scored``) ranked by Spark; both give
    the same rankings, but for scores equal to float rounding."""

    def write(ranked: DataFrame) -> int:
        named = ranked.join(vertices.select("vid", "vertex"), "vid").select(*datasets.PPR_RANKINGS.names)
        return write_parquet(named.sortWithinPartitions("query_id", "rank"), path, datasets.PPR_RANKINGS)

    if held.fingerprints is not None:
        return write(_held_rankings(queries, held, tasks))
    with scored(queries, fingerprints, held, tasks) as scores:
        best = Window.partitionBy("query_id").orderBy(F.desc("score"), "vid")
        ranked = scores.join(queries.select("query_id", "k"), "query_id").withColumn("rank", F.row_number().over(best))
        return write(ranked.where("rank <= k").select("query_id", F.col("rank").cast("int"), "vid", "score"))


def exactness(queries: DataFrame, fingerprints: DataFrame, held: Held, ppr: PprConfig, tasks: int) -> dict:
    """L1 error, precision@k and NDCG@k (each query's own k) against exact PPR, over a
    sample of ``ppr.exact_sample`` queries, the first by a hash of their id with
    ``ppr.exact_seed``."""
    sample = queries.orderBy(F.xxhash64("query_id", F.lit(ppr.exact_seed)), "query_id").limit(ppr.exact_sample)
    sample = sample.persist(StorageLevel.MEMORY_AND_DISK)

    def check(batches):
        batches = list(batches)
        if not batches:
            return
        t = pa.Table.from_batches(batches)
        qid = t.column("query_id").to_numpy(zero_copy_only=False)
        starts = np.flatnonzero(np.r_[True, qid[1:] != qid[:-1]])
        vid, score = t.column("vid").fill_null(0).to_numpy(), t.column("score").fill_null(0.0).to_numpy()
        query_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(qid)]))
        estimate = sp.csr_array((score, (query_of, vid)), shape=(len(starts), held.n))
        k, sources = t.column("k").to_numpy()[starts], t.column("vids").take(pa.array(starts)).to_pylist()
        for lo in range(0, len(starts), EXACT_PER_CALL):
            exact = exact_ppr(held.graph(), sources[lo:lo + EXACT_PER_CALL], alpha=held.alpha)
            for i, row in enumerate(range(lo, min(lo + EXACT_PER_CALL, len(starts)))):
                e, x = estimate[[row]], exact[[i]]
                yield pa.RecordBatch.from_pydict({
                    "query_id": [qid[starts[row]]], "l1": l1_error(e, x),
                    "precision": precision_at_k(e, x, int(k[row])), "ndcg": ndcg_at_k(e, x, int(k[row]))})

    with scored(sample, fingerprints, held, tasks) as scores:
        rows = sample.join(scores, "query_id", "left").repartition(tasks, "query_id").sortWithinPartitions(
            "query_id", "vid")
        per_query = rows.mapInArrow(check, "query_id string, l1 double, precision double, ndcg double")
        r = per_query.agg(F.count("*"), F.mean("l1"), F.median("l1"), F.max("l1"), F.mean("precision"),
                          F.mean("ndcg")).first()  # driver-ok: one row
    sample.unpersist()
    return {"queries": r[0], "mean_l1": r[1], "median_l1": r[2], "max_l1": r[3], "precision_at_k": r[4],
            "ndcg_at_k": r[5]}


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    ppr = config.ppr
    if ppr is None:
        raise InputError("the configuration has no 'ppr' section")
    if ppr.queries is None:
        raise InputError("ppr-query reads its queries from ppr.queries (path, format, ...); add it")
    walked = previous_manifest(config, "ppr_index", "ppr-index")
    index = {**walked["metrics"], "rows": walked["outputs"]["fingerprints"]}
    if index["alpha"] != ppr.alpha:
        raise InputError(f"ppr.alpha is {ppr.alpha} but the fingerprints were walked with alpha {index['alpha']}: "
                         "run 'sigil ppr-index' again, or set ppr.alpha back")
    tasks = spark.sparkContext.defaultParallelism
    with job_run("ppr_query", spark, config, strict, quiet) as job:
        vertices = read_input(spark, config.stage_path("graph", "vertices"), "vertex dictionary", "graph-ingest")
        fingerprints = read_input(spark, config.stage_path("ppr_index", "fingerprints"), "fingerprints", "ppr-index")
        held = holding(config, index)
        with job.stage("queries"):
            staged, n_rows = staged_queries(spark, job, "ppr.queries", ppr.queries, ppr.k, "nothing to rank")
            queries, quarantine = query_rows(staged, vertices)
            queries = queries.persist(StorageLevel.MEMORY_AND_DISK)
            n_queries = queries.count()
            n_bad = write_parquet(quarantine, job.path("quarantine"), datasets.QUARANTINE)
        job.refuse_quarantined(n_bad, lambda: quarantine_examples(spark.read.parquet(job.path("quarantine"))),
                               "query row(s)")
        with job.stage("rankings"):
            n_ranked = write_rankings(job.path("rankings"), queries, fingerprints, vertices, held, tasks)
        metrics = {"path": "held" if held.fingerprints is not None else "joined",
                   "pushes": "tasks" if held.graph_held else "spark", "queries": n_queries,
                   "steps": ppr.steps, "prune": ppr.prune, "resolution": ppr.resolution, "alpha": ppr.alpha, "k": ppr.k,
                   "seconds_per_query": job.manifest["timings"]["rankings"] / max(n_queries, 1)}
        if ppr.exact_sample and n_queries:
            if not held.graph_held:
                job.log("ppr.exact_sample: exact PPR reads the whole graph into the tasks that check the sample, "
                        "beyond ppr.held_graph_mb", logging.WARNING)
            with job.stage("exactness"):
                metrics["exactness"] = exactness(queries, fingerprints, held, ppr, tasks)
        staged.unpersist()
        queries.unpersist()
        job.manifest["inputs"] = {"query_rows": n_rows}
        job.manifest["quarantined"] = {"queries": n_bad}
        job.manifest["outputs"] = {"rankings": n_ranked}
        job.manifest["metrics"] = metrics
        job.log(f"{n_queries} queries ranked ({n_bad} quarantined), {n_ranked} rows, path {metrics['path']}"
                + "".join(f", {k} {v:.4g}" for k, v in metrics.get("exactness", {}).items() if isinstance(v, float)))
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/ppr_query.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["ppr-query", *sys.argv[1:]]))
