"""ppr-index job: every vertex's PowerWalk fingerprint, ``ppr.walks`` random walks from it.

PowerWalk (Liu et al., CIKM 2016, arXiv:1608.06054) answers personalized PageRank queries
from precomputed fingerprints: R walks from every vertex that stop with probability
``alpha`` at each step, every visit counted (transforms/ppr.py). The walks go one of two
ways (``write_fingerprints``), with the same draws, keyed by (seed, source, walk, step), so
both give the same fingerprints:

- held: when the graph's CSR fits ``ppr.held_graph_mb``, every Python worker reads
  graph-ingest's edges once (``Graph.from_parquet``) and keeps them for its tasks; the
  sources are split into tasks (``spark.range``) and each task walks its batch in numba
  (``fingerprints``) and writes its rows.
- joined: otherwise the walkers ``(source, walk, at, step)`` move one step per round:
  gathered by the vertex they stand at and joined with its out-edges (one row per vertex:
  targets and cumulative weights, built per partition by ``Graph.from_edges`` itself), so
  a vertex's edges meet all its walkers at once, and stepped by ``advance``; each round's
  walkers are written and read back (a checkpoint), and the
  rounds end when no walker is left, or at the step where fewer than ``CUT`` walks are
  expected to go on (the walks still going are reported as cut). Spark counts the visits.

Undirected graphs (stored once per edge, src <= dst) are walked both ways; weights bias
the steps, unless they are all equal; dangling vertices send the walk back to its source.

Outputs under ``<output>/ppr_index/``: ``fingerprints`` (schemas.datasets.FINGERPRINTS)
and ``manifest.json``: the walks (count, visits, mean length), the truncation below
``ppr.floor`` (sources truncated, mass left out in all and at most per source), the path
taken and, joined, the rounds and walks cut.

Run: ``sigil ppr-index --conf FILE`` or ``spark-submit jobs/ppr_index.py --conf FILE``.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sigil.jobs.spark.io import read_input, read_task_tables, spark_schema, task_output, write_parquet
from sigil.jobs.spark.lookup import dataset_version, worker_held
from sigil.jobs.spark.session import job_run
from sigil.jobs.spark.transitions import arcs
from sigil.run import Run, previous_manifest
from sigil.schemas import datasets
from sigil.schemas.config import PprConfig, SigilConfig
from sigil.transforms.ppr import Graph, advance, fingerprints, graph_bytes, min_visits, visit_values
from sigil.transforms.records import InputError

SOURCES_PER_TASK = 20_000  # held path: sources walked per task (about 8 bytes x R / alpha of visits each)
ROWS_PER_TASK = 2_000_000  # joined path: out-edges, or visits, per task building their rows
CUT = 1e-6  # joined path: stop stepping where fewer walks than this are expected to go on

#: Per batch of sources walked in the tasks: what the manifest adds up.
WALK_STATS = pa.schema([("visits", pa.int64()), ("truncated", pa.int64()), ("dropped", pa.float64()),
                        ("dropped_max", pa.float64())])
#: Walkers of the joined path: walk ``walk`` from ``source`` stands at ``at`` after ``step`` steps.
WALKERS = pa.schema([("source", pa.int64()), ("walk", pa.int64()), ("at", pa.int64()), ("step", pa.int32())])
#: Out-edges of a vertex as ``Graph`` holds them (``cumulative`` null when unweighted).
ADJACENCY = pa.schema([("vertex", pa.int64()), ("targets", pa.list_(pa.int64())),
                       ("cumulative", pa.list_(pa.float64()))])

def held_graph(key: tuple) -> Graph:
    """In a task: the graph of ``key`` = (edges path, its ``dataset_version``, n, directed,
    weighted), read once per Python worker and kept for its later tasks."""
    path, _, n, directed, weighted = key
    return worker_held(("graph", key), lambda: Graph.from_parquet(path, n, directed=directed, weighted=weighted))


def write_fingerprints(spark, job: Run, ppr: PprConfig, edges: DataFrame, graph: dict, partitions: int) -> dict:
    """Write every vertex's fingerprint to ``job.path("fingerprints")``; returns the walk
    and truncation metrics. ``graph``: n, arcs, directed, weighted, the edges' path.

    The tasks hold the graph when its CSR fits ``ppr.held_graph_mb`` (``_held``); larger
    graphs are walked by joins (``_joined``). Both give the same fingerprints."""
    if graph_bytes(graph["n"], graph["arcs"], weighted=graph["weighted"]) <= ppr.held_graph_mb << 20:
        return {"path": "held", **_held(spark, job, ppr, graph)}
    return {"path": "joined", **_joined(spark, job, ppr, edges, graph, partitions)}


def _held(spark, job: Run, ppr: PprConfig, graph: dict) -> dict:
    """Fingerprints walked by tasks that hold the graph, one batch of sources each."""
    n, path, stats_path = graph["n"], graph["path"], job.path("walk_stats")
    key = (path, dataset_version(path), n, graph["directed"], graph["weighted"])

    def walk(batch: pa.RecordBatch) -> pa.RecordBatch:
        sources = batch.column("id").to_numpy()
        fp = fingerprints(held_graph(key), sources, ppr.walks, alpha=ppr.alpha, seed=ppr.seed, floor=ppr.floor)
        per_visit = ppr.walks / ppr.alpha  # a value is visits / per_visit, to 2^-24: rounding gives the count back
        visits = np.rint(fp.value.astype(np.float64) * per_visit).sum() + np.rint(fp.dropped * per_visit).sum()
        stats = {"visits": [int(visits)], "truncated": [int((fp.dropped > 0).sum())],
                 "dropped": [float(fp.dropped.sum())], "dropped_max": [float(fp.dropped.max(initial=0.0))]}
        with task_output(stats_path, f"{int(sources[0]):012d}") as out:  # a retried batch rewrites its own file
            pq.write_table(pa.table(stats, WALK_STATS), out)
        return pa.RecordBatch.from_pydict({"source": fp.source, "target": fp.target, "value": fp.value})

    tasks = max(1, min(n, max(spark.sparkContext.defaultParallelism, -(-n // SOURCES_PER_TASK))))
    rows = write_parquet(spark.range(n, numPartitions=tasks), job.path("fingerprints"), datasets.FINGERPRINTS,
                         transform=walk)
    stats = read_task_tables(stats_path, WALK_STATS)
    total = {name: stats[name].to_numpy() for name in WALK_STATS.names}
    return {"rows": rows, "visits": int(total["visits"].sum()), "truncated_sources": int(total["truncated"].sum()),
            "dropped_mass": float(total["dropped"].sum()), "dropped_max": float(total["dropped_max"].max(initial=0))}


def adjacency(edges: DataFrame, directed: bool, weighted: bool, partitions: int) -> DataFrame:
    """ADJACENCY rows of every vertex with an out-edge, hash-partitioned by vertex. Each
    task builds its vertices' rows with ``Graph.from_edges`` on their out-edges (renumbered
    in vid order, which keeps their order), so they hold what the whole graph's CSR holds."""
    def build(batches):
        batches = list(batches)
        t = pa.Table.from_batches(batches) if batches else None
        if t is None or not t.num_rows:
            return
        ids, local = np.unique(np.r_[t["src"].to_numpy(), t["dst"].to_numpy()], return_inverse=True)
        g = Graph.from_edges(local[:t.num_rows], local[t.num_rows:], t["weight"].to_numpy() if weighted else None,
                             n=len(ids))
        degree = g.out_degree
        offsets = pa.array(np.r_[0, np.cumsum(degree[degree > 0])], pa.int32())
        yield pa.RecordBatch.from_pydict({
            "vertex": ids[degree > 0], "targets": pa.ListArray.from_arrays(offsets, pa.array(ids[g.targets])),
            "cumulative": pa.ListArray.from_arrays(offsets, pa.array(g.cumulative)) if weighted else
            pa.nulls(len(offsets) - 1, ADJACENCY.field("cumulative").type)})

    built = arcs(edges, directed).repartition(partitions, "src").mapInArrow(build, spark_schema(ADJACENCY))
    # partitioned as the joins with the walkers need it: only the walkers move each round
    return built.repartition(partitions, "vertex")


def step_cap(walks: int, alpha: float) -> int:
    """The step after which fewer than ``CUT`` of ``walks`` walks are expected to go on
    (each goes on with probability 1 - alpha per step)."""
    return 1 if alpha >= 1 else max(1, math.ceil(math.log(CUT / max(walks, 1)) / math.log(1 - alpha)))


def _joined(spark, job: Run, ppr: PprConfig, edges: DataFrame, graph: dict, partitions: int) -> dict:
    """Fingerprints walked by joins: every walker moves one step per round (``advance``)
    joined with the out-edges of its vertex; Spark counts the visits."""
    n, weighted, walks = graph["n"], graph["weighted"], ppr.walks
    adj = adjacency(edges, graph["directed"], weighted, max(partitions, -(-graph["arcs"] // ROWS_PER_TASK)))
    adj = adj.persist(StorageLevel.MEMORY_AND_DISK)

    def step(batch: pa.RecordBatch) -> pa.RecordBatch:
        walkers = batch.column("walkers")  # each vertex's walkers, and its out-edges once (null: none)
        flat = walkers.flatten()
        source, walk, steps = (flat.field(c).to_numpy() for c in ("source", "walk", "step"))
        targets = batch.column("targets")
        offsets = np.r_[0, np.cumsum(pc.fill_null(pc.list_value_length(targets), 0).to_numpy())]
        at = np.repeat(np.arange(batch.num_rows), pc.list_value_length(walkers).to_numpy())
        nxt = advance(offsets, targets.flatten().to_numpy(),
                      batch.column("cumulative").flatten().to_numpy() if weighted else None, at, source, walk, steps,
                      alpha=ppr.alpha, seed=ppr.seed)
        go = nxt >= 0
        return pa.RecordBatch.from_pydict({"source": source[go], "walk": walk[go], "at": nxt[go],
                                           "step": steps[go] + 1})

    start = spark.range(n * walks).select(F.expr(f"id div {walks}").alias("source"), (F.col("id") % walks).alias(
        "walk"), F.expr(f"id div {walks}").alias("at"), F.lit(0).cast("int").alias("step"))
    walkers, rounds, visits, cap, going = start, [], n * walks, step_cap(n * walks, ppr.alpha), 0
    for k in range(1, cap + 1):
        path = job.path(f"walkers/step={k:05d}")
        # the walkers of a vertex meet its out-edges in one row: a hub's edges cross once, not once per walker
        at = walkers.groupBy("at").agg(F.collect_list(F.struct("source", "walk", "step")).alias("walkers"))
        going = write_parquet(at.join(adj, at["at"] == adj["vertex"], "left"), path, WALKERS, transform=step)
        if not going:
            break
        rounds.append(path)
        visits += going
        walkers = spark.read.parquet(path)  # read back: each round starts from a checkpoint, not a longer plan
    adj.unpersist()
    every = start.select("source", "at")
    if rounds:
        every = every.unionByName(spark.read.parquet(*rounds).select("source", "at"))
    by_source = every.repartition(max(partitions, -(-visits // ROWS_PER_TASK)), "source")
    counts = by_source.groupBy("source", "at").count()  # and by source below: one shuffle
    counts = counts.persist(StorageLevel.MEMORY_AND_DISK)
    least = min_visits(walks, ppr.alpha, ppr.floor)

    def values(batch: pa.RecordBatch) -> pa.RecordBatch:
        return pa.RecordBatch.from_pydict({"source": batch.column("source"), "target": batch.column("at"),
                                           "value": visit_values(batch.column("count").to_numpy(), walks, ppr.alpha)})

    rows = write_parquet(counts.where(F.col("count") >= least).sortWithinPartitions("source", "at"),
                         job.path("fingerprints"), datasets.FINGERPRINTS, transform=values)
    dropped = counts.where(F.col("count") < least).groupBy("source").agg(F.sum("count").alias("c"))
    truncated = dropped.agg(F.count("*"), F.sum("c"), F.max("c")).first()  # driver-ok: one row
    counts.unpersist()
    job.storage.delete(job.path("walkers"))
    per_visit = ppr.alpha / walks
    return {"rows": rows, "visits": visits, "truncated_sources": truncated[0],
            "dropped_mass": (truncated[1] or 0) * per_visit, "dropped_max": (truncated[2] or 0) * per_visit,
            "rounds": len(rounds), "step_cap": cap,
            "walks_cut": going if len(rounds) == cap else 0}


def graph_facts(config: SigilConfig, edges: DataFrame) -> dict:
    """What the walks need to know of graph-ingest's graph: vertices, out-edges of its CSR,
    direction, and whether the weights differ (all equal: an unweighted walk, the same
    distribution without a search per step)."""
    stats = previous_manifest(config, "graph", "graph-ingest")["metrics"]
    lo, hi = edges.agg(F.min("weight"), F.max("weight")).first()  # driver-ok: one row
    directed = stats["directed"]
    arcs = stats["edges"] if directed else 2 * stats["edges"] - stats["self_loops"]  # undirected: both ways
    return {"n": stats["vertices"], "edges": stats["edges"], "arcs": arcs, "directed": directed,
            "weighted": lo is not None and not lo == hi > 0, "path": config.stage_path("graph", "edges")}


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    ppr = config.ppr
    if ppr is None:
        raise InputError("the configuration has no 'ppr' section")
    with job_run("ppr_index", spark, config, strict, quiet) as job:
        edges = read_input(spark, config.stage_path("graph", "edges"), "edges", "graph-ingest")
        graph = graph_facts(config, edges)
        with job.stage("walks"):
            walked = write_fingerprints(spark, job, ppr, edges, graph, config.spark.shuffle_partitions)
        n, walks, rows, visits = graph["n"], graph["n"] * ppr.walks, walked.pop("rows"), walked.pop("visits")
        job.manifest["inputs"] = {"vertices": n, "edges": graph["edges"]}
        job.manifest["outputs"] = {"fingerprints": rows}
        job.manifest["metrics"] = {
            "path": walked.pop("path"), "vertices": n, "arcs": graph["arcs"], "directed": graph["directed"],
            "weighted": graph["weighted"], "walks_per_vertex": ppr.walks, "alpha": ppr.alpha, "seed": ppr.seed,
            "walks": walks, "visits": visits, "mean_walk_length": visits / walks if walks else None,
            "rows_per_source": rows / n if n else None,
            "truncation": {"floor": ppr.floor, "sources": walked.pop("truncated_sources"),
                           "dropped_mass": walked.pop("dropped_mass"), "dropped_max": walked.pop("dropped_max")},
            **walked}
        job.log_metrics("path", "walks", "mean_walk_length", "rows_per_source", "rounds", "walks_cut")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/ppr_index.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["ppr-index", *sys.argv[1:]]))
