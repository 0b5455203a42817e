"""Graph-ingest job: an edge list (and optionally a vertex table) -> the vertex dictionary
and the merged edges that every graph job reads.

Stages: parse (one task per file or line range; GML/GraphML on the driver, size-checked)
-> the vertex dictionary: distinct external ids numbered 0..n-1 (integer ids in numeric
order first, then the rest in string order), by a range-partitioned sort and per-partition
offsets -> edges by dense index, duplicates merged (undirected: stored once, src <= dst),
self-loops kept or dropped -> degrees, connected components and the statistics.

Outputs under ``<output>/graph/``: ``vertices`` (schemas.datasets.VERTICES), ``edges``
(EDGES), ``communities`` (VERTEX_COMMUNITIES, when the input names a ground-truth
community), ``quarantine`` (QUARANTINE: malformed rows, bad weights, edges naming a vertex
missing from the vertex table (``unknown vertex``), duplicate vertices) and
``manifest.json`` with the graph statistics.

Every input file is checked on the driver before any Spark job (transforms/graph.py
``input_columns``). Rows add up in the manifest: ``inputs.edge_rows`` = ``metrics.
edge_rows_used`` + ``quarantined.edges`` (comment lines counted apart, blank lines and
headers are no rows), and with a vertex table (or a GML/GraphML graph's nodes)
``metrics.vertex_rows`` = ``metrics.vertex_rows_used`` + ``quarantined.vertices``. An input
without a single edge row (empty, a header or comments only) fails, naming it; one whose
edge rows are all quarantined gives an empty graph with a warning (and fails with
``--strict``).

Run: ``sigil graph-ingest --conf FILE`` or ``spark-submit jobs/graph_ingest.py --conf FILE``.
"""

from __future__ import annotations

import logging

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sigil.jobs.spark.components import connected_components
from sigil.jobs.spark.dictionary import dense_ids
from sigil.jobs.spark.io import quarantine_examples, spark_schema, write_parquet
from sigil.jobs.spark.parse import parse_parts, split_duplicates, task_input_errors
from sigil.jobs.spark.session import job_run
from sigil.schemas import datasets
from sigil.schemas.config import GraphConfig, SigilConfig
from sigil.transforms.graph import (LOCAL_FORMATS, STAGED_EDGES, STAGED_VERTICES, edges_from_file, input_columns,
                                   positional_header, read_local_graph, vertices_from_file)
from sigil.transforms.records import COMMENT, InputError, list_files


def input_files(table) -> list[tuple[str, str, str]]:
    """``(name, file, format)`` of the files of an input table that hold rows, each checked
    on the driver (``input_columns``): one that cannot be read fails here, naming it."""
    return [("table", p, table.format) for p in list_files(table.path) if input_columns(p, table) is not None]


def staged(spark, graph: GraphConfig) -> tuple[DataFrame, DataFrame | None]:
    """Parsed edge rows and vertex rows (None without a vertex table): reason null when good."""
    edges, vertices = graph.edges, graph.vertices
    if edges.format in LOCAL_FORMATS:
        parts = [read_local_graph(path, edges.format, graph.max_local_edges, edges.weight_column,
                                  edges.community_attribute) for path in list_files(edges.path)]
        e = spark.createDataFrame(pa.Table.from_batches([p[0] for p in parts], STAGED_EDGES).to_pandas(),
                                  spark_schema(STAGED_EDGES))
        v = spark.createDataFrame(pa.Table.from_batches([p[1] for p in parts], STAGED_VERTICES).to_pandas(),
                                  spark_schema(STAGED_VERTICES))
    else:
        e = parse_parts(spark, input_files(edges), graph.split_bytes,
                        lambda _, path, *span: edges_from_file(path, edges, *span), STAGED_EDGES)
        v = None
    if vertices is not None:
        v = parse_parts(spark, input_files(vertices), graph.split_bytes,
                        lambda _, path, *span: vertices_from_file(path, vertices, *span), STAGED_VERTICES)
    return e, v


def _quarantined(rows: DataFrame, source: str, id_column: str | None = None) -> DataFrame:
    return rows.select(F.lit(source).alias("source"), "file", "line",
                       (F.col(id_column) if id_column else F.lit(None).cast("string")).alias("id"), "reason", "raw")


def vertex_rows(edges: DataFrame, vertices: DataFrame | None) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(the vertices the graph has, with their community or null; edges whose endpoints are
    all known; quarantined rows: unknown endpoints, duplicate vertex rows)."""
    good = edges.where("reason is null")
    if vertices is None:
        names = good.select(F.col("src").alias("vertex")).union(good.select(F.col("dst").alias("vertex")))
        return names.distinct().withColumn("community", F.lit(None).cast("string")), good, None
    kept, dupes = split_duplicates(vertices.where("reason is null"), ["vertex"])
    dupes = dupes.withColumn("raw", F.to_json(F.struct("vertex", "community")))
    known = kept.select("vertex", "community")
    names = known.select(F.col("vertex").alias("_v"))
    checked = (good.join(names.withColumnRenamed("_v", "src"), "src", "left_semi")
               .join(names.withColumnRenamed("_v", "dst"), "dst", "left_semi"))
    unknown = good.join(checked.select("file", "line"), ["file", "line"], "left_anti").select(
        "file", "line", F.lit("unknown vertex").alias("reason"),
        F.to_json(F.struct("src", "dst", "weight")).alias("raw"))
    quarantine = _quarantined(unknown, "edges").unionByName(_quarantined(dupes, "vertices", "vertex"))
    return known, checked, quarantine


def merged_edges(edges: DataFrame, ids: DataFrame, graph: GraphConfig) -> DataFrame:
    """Edges by dense index (before dropping self-loops): duplicates merged, weights summed;
    undirected edges oriented src <= dst."""
    for side in ("src", "dst"):
        edges = edges.join(ids.select(F.col("vertex").alias(side), F.col("vid").alias(f"{side}_vid")), side)
    src, dst = F.col("src_vid"), F.col("dst_vid")
    if not graph.directed:
        src, dst = F.least(src, dst), F.greatest(src, dst)
    return (edges.select(src.alias("src"), dst.alias("dst"), "weight").groupBy("src", "dst")
            .agg(F.sum("weight").alias("weight"), F.count("*").alias("multiplicity")))


def degrees(edges: DataFrame, directed: bool) -> DataFrame:
    """``(vid, in_degree, out_degree)`` of every vertex in an edge (distinct neighbours)."""
    out = edges.groupBy(F.col("src").alias("vid")).agg(F.count("*").alias("out_degree"))
    inn = edges.groupBy(F.col("dst").alias("vid")).agg(F.count("*").alias("in_degree"))
    if directed:
        return out.join(inn, "vid", "full").fillna(0)
    ends = edges.select(F.col("src").alias("vid")).union(edges.where("src != dst").select(F.col("dst").alias("vid")))
    both = ends.groupBy("vid").agg(F.count("*").alias("in_degree"))
    return both.withColumn("out_degree", F.col("in_degree"))


def statistics(spark, vertices_path: str, edges_path: str, graph: GraphConfig) -> dict:
    """Vertices, edges, self-loops, the degree distribution (power-of-two bins) and the
    (weakly) connected components."""
    vertices, edges = spark.read.parquet(vertices_path), spark.read.parquet(edges_path)
    degree = F.col("in_degree") + F.col("out_degree") if graph.directed else F.col("in_degree")
    d = vertices.select(degree.alias("d"))
    row = d.agg(F.min("d"), F.max("d"), F.mean("d"), F.percentile_approx("d", [0.5, 0.9, 0.99], 10_000),
                F.sum(F.when(F.col("d") == 0, 1).otherwise(0))).first()  # driver-ok: one row
    quantiles = row[3] or [None] * 3  # null without vertices
    bins = d.groupBy(F.when(F.col("d") == 0, 0).otherwise(F.floor(F.log2("d")) + 1).alias("bin")).count()
    histogram = {("0" if b == 0 else f"{1 << (b - 1)}-{(1 << b) - 1}"): n
                 for b, n in sorted(bins.collect())}  # driver-ok: at most 64 bins
    components, rounds = connected_components(edges.where("src != dst").select("src", "dst"),
                                              graph.max_iterations, return_n_iter=True)
    sizes = components.groupBy("component").count()
    comp = sizes.agg(F.count("*"), F.max("count")).first()  # driver-ok: one row
    in_edges = int(comp[0] or 0)
    n_vertices = vertices.count()
    touched = components.count()
    return {
        "vertices": n_vertices, "edges": edges.count(), "directed": graph.directed,
        "self_loops": edges.where("src = dst").count(),
        "degree": {"min": row[0], "max": row[1], "mean": row[2], "p50": quantiles[0], "p90": quantiles[1],
                   "p99": quantiles[2], "isolated": row[4] or 0, "histogram": histogram},
        "components": in_edges + (n_vertices - touched),
        "largest_component": max(int(comp[1] or 0), 1 if n_vertices > touched else 0),
        "component_rounds": rounds,
    }


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    graph = config.graph
    if graph is None:
        raise InputError("the configuration has no 'graph' section")
    partitions = config.spark.shuffle_partitions
    with job_run("graph", spark, config, strict, quiet) as job:
        for key, table in (("graph.edges", graph.edges), ("graph.vertices", graph.vertices)):
            warning = table is not None and positional_header(key, table)
            if warning:
                job.log(warning, logging.WARNING)
        with job.stage("parse"):
            edges, vertex_table = staged(spark, graph)
            edges = edges.persist(StorageLevel.MEMORY_AND_DISK)
            with task_input_errors():
                counts = dict(edges.groupBy(F.when(F.col("reason").isNull(), "good").when(
                    F.col("reason") == COMMENT, "comment").otherwise("bad")).count().collect())  # driver-ok: 3 rows
            n_rows = counts.get("good", 0) + counts.get("bad", 0)
            if not n_rows:
                raise InputError(f"no edges in {graph.edges.path}: not one edge row (the input is empty, or only "
                                 "a header, blank or comment lines)")
            if vertex_table is not None:
                vertex_table = vertex_table.persist(StorageLevel.MEMORY_AND_DISK)
                with task_input_errors():
                    n_vertex_rows = vertex_table.count()
                if not n_vertex_rows:
                    raise InputError(f"no vertices in {graph.vertices.path if graph.vertices else graph.edges.path}")
            known, good, unknown = vertex_rows(edges, vertex_table)
            quarantine = _quarantined(edges.where(f"reason is not null and reason != '{COMMENT}'"), "edges")
            if vertex_table is not None:
                quarantine = quarantine.unionByName(_quarantined(vertex_table.where("reason is not null"),
                                                                 "vertices", "vertex"))
            if unknown is not None:
                quarantine = quarantine.unionByName(unknown)
            quarantine = quarantine.persist(StorageLevel.MEMORY_AND_DISK)
            by_source = dict(quarantine.groupBy("source").count().collect())  # driver-ok: two rows
            n_quarantined = sum(by_source.values())
        job.refuse_quarantined(n_quarantined, lambda: quarantine_examples(quarantine))
        with job.stage("dictionary"):
            ids = dense_ids(known, partitions).persist(StorageLevel.MEMORY_AND_DISK)
            n_vertices = ids.count()
        with job.stage("edges"):
            n_good = good.count()
            merged = merged_edges(good, ids, graph).persist(StorageLevel.MEMORY_AND_DISK)
            n_merged, loops = merged.agg(F.count("*"), F.sum(F.when(F.col("src") == F.col("dst"), 1).otherwise(0))).first()  # driver-ok: one row
            loops = int(loops or 0)
            kept = merged.where("src != dst") if graph.self_loops == "drop" else merged
            n_edges = write_parquet(kept, job.path("edges"), datasets.EDGES)
            out = ids.join(degrees(spark.read.parquet(job.path("edges")), graph.directed), "vid", "left").fillna(0)
            write_parquet(out.select(*datasets.VERTICES.names), job.path("vertices"), datasets.VERTICES)
            truth = known.where("community is not null").join(ids, "vertex").select(*datasets.VERTEX_COMMUNITIES.names)
            n_truth = write_parquet(truth, job.path("communities"), datasets.VERTEX_COMMUNITIES)
            write_parquet(quarantine, job.path("quarantine"), datasets.QUARANTINE)
        with job.stage("statistics"):
            stats = statistics(spark, job.path("vertices"), job.path("edges"), graph)
        if not n_good:
            job.log(f"every edge row of {graph.edges.path} was quarantined: the graph has no edges", logging.WARNING)
        job.manifest["inputs"] = {"edge_rows": n_rows, "comment_lines": counts.get("comment", 0)}
        job.manifest["quarantined"] = {"edges": by_source.get("edges", 0), "vertices": by_source.get("vertices", 0)}
        job.manifest["outputs"] = {"vertices": n_vertices, "edges": n_edges, "communities": n_truth}
        job.manifest["metrics"] = {**stats, "edge_rows_used": n_good, "duplicate_edges_merged": n_good - n_merged,
                                   "self_loops_dropped": loops if graph.self_loops == "drop" else 0}
        if vertex_table is not None:
            job.manifest["metrics"].update(vertex_rows=n_vertex_rows, vertex_rows_used=n_vertices)
            vertex_table.unpersist()
        for frame in (edges, quarantine, ids, merged):
            frame.unpersist()
        job.log(f"{n_vertices} vertices, {n_edges} edges, {stats['components']} components, "
                f"{n_quarantined} rows quarantined")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/graph_ingest.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["graph-ingest", *sys.argv[1:]]))
