"""Cluster job: entities from the match job's scored pairs, as connected components.

Stages: the pairs at or above the edge threshold, keyed by both records' rids -> connected
components (alternating large-star / small-star) -> every record with its entity (a record
in no edge is its own entity) -> components over ``cluster.max_size`` reported and, with
``cluster.split_threshold``, re-clustered on their stricter edges only.

An entity id is the smallest rid of its component, so the same input gives the same ids.

Outputs under ``<output>/cluster/``: ``entities`` (schemas.datasets.ENTITIES), ``oversized``
(schemas.datasets.OVERSIZED_COMPONENTS), ``quarantine`` (edges naming unknown records) and
``manifest.json``; with a truth file, pairwise and B-cubed precision, recall and F1.

Run: ``sigil cluster --conf FILE`` or ``spark-submit jobs/cluster.py --conf FILE``.
"""

from __future__ import annotations


from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sigil.jobs.spark.components import component_labels
from sigil.jobs.spark.io import read_input, write_parquet, write_parquet_unless_empty
from sigil.jobs.spark.pairs import by_rid, read_truth, with_known
from sigil.jobs.spark.session import job_run
from sigil.run import Run, previous_manifest
from sigil.schemas import datasets
from sigil.schemas.config import ClusterConfig, SigilConfig
from sigil.transforms.pairs import KEYS
from sigil.transforms.quality import f1
from sigil.transforms.records import InputError

HISTOGRAM_CAP = 10  # entity sizes above this share one histogram bucket
SAMPLE_IDS = 10


def edge_threshold(config: SigilConfig, cluster: ClusterConfig) -> float:
    """``cluster.threshold``, else the threshold the match job recorded in its manifest."""
    if cluster.threshold is not None:
        return cluster.threshold
    try:
        threshold = previous_manifest(config, "match").get("metrics", {}).get("threshold")
    except InputError:
        threshold = None
    if type(threshold) not in (int, float):
        raise InputError(f"cluster.threshold is not set and {config.stage_path('match', 'manifest.json')} has no "
                         "metrics.threshold: set cluster.threshold or run 'sigil match' first")
    return float(threshold)


def as_edges(pairs: DataFrame) -> DataFrame:
    return pairs.select(F.col("rid_a").alias("src"), F.col("rid_b").alias("dst"))


def dangling(keyed: DataFrame, path: str) -> DataFrame:
    """Edges naming an unknown record, as quarantine rows (the first unknown side named)."""
    a_missing = F.col("known_a").isNull()
    source = F.when(a_missing, F.col("source_a")).otherwise(F.col("source_b"))
    ident = F.when(a_missing, F.col("id_a")).otherwise(F.col("id_b"))
    return keyed.where("known_a is null or known_b is null").select(
        source.alias("source"), F.lit(path).alias("file"), F.lit(None).cast("long").alias("line"), ident.alias("id"),
        F.concat(F.lit("dangling edge: record ("), source, F.lit(", "), ident, F.lit(") is not among the records"))
        .alias("reason"), F.concat_ws(",", *KEYS).alias("raw"))


def assign(records: DataFrame, components: DataFrame) -> DataFrame:
    """Records with ``entity_id``: their component (``component_labels``), or their own rid
    when they have none (in no edge, or the smallest of their component)."""
    comp = components.select(F.col("vertex").alias("rid"), "component")
    return records.join(comp, "rid", "left").select("rid", "source", "id",
                                                   F.coalesce("component", "rid").alias("entity_id"))


def with_sizes(assigned: DataFrame) -> DataFrame:
    size = F.count("*").over(Window.partitionBy("entity_id"))
    return assigned.select("rid", "source", "id", "entity_id", size.alias("cluster_size"))


def oversized_report(assigned: DataFrame, big: DataFrame, split: bool) -> DataFrame:
    """One row per oversized component: its size and its first ids, sorted."""
    first = Window.partitionBy("entity_id").orderBy("id", "source")
    samples = (assigned.join(big.select("entity_id"), "entity_id", "left_semi")
               .withColumn("_n", F.row_number().over(first)).where(F.col("_n") <= SAMPLE_IDS)
               .groupBy("entity_id").agg(F.array_sort(F.collect_list("id")).alias("sample_ids")))
    return big.join(samples, "entity_id").select("entity_id", "size", "sample_ids", F.lit(split).alias("split"))


def split_oversized(assigned: DataFrame, big: DataFrame, edges: DataFrame, threshold: float,
                    max_iterations: int) -> tuple[DataFrame, int]:
    """Re-cluster the records of the ``big`` components on their edges at or above
    ``threshold`` only; a record left without such an edge becomes a singleton."""
    inside = (edges.where(F.col("match_probability") >= threshold)
              .join(assigned.select(F.col("rid").alias("rid_a"), "entity_id"), "rid_a")
              .join(big, "entity_id", "left_semi"))
    comps, rounds = component_labels(as_edges(inside), max_iterations)
    out = (assigned.join(big.select("entity_id", F.lit(True).alias("_big")), "entity_id", "left")
           .join(comps.select(F.col("vertex").alias("rid"), "component"), "rid", "left"))
    entity = F.coalesce("component", F.when(F.col("_big"), F.col("rid")).otherwise(F.col("entity_id")))
    return out.select("rid", "source", "id", entity.alias("entity_id")), rounds


def report_oversized(spark, job: Run, assigned: DataFrame, big: DataFrame, cluster: ClusterConfig) -> int:
    """Write the ``oversized`` dataset of the ``big`` components, add them to the metrics."""
    split = cluster.split_threshold is not None
    n_big = write_parquet_unless_empty(oversized_report(assigned, big, split), job.path("oversized"),
                                       datasets.OVERSIZED_COMPONENTS, probe=big)
    job.manifest["metrics"]["oversized_components"] = n_big
    if n_big:
        top = (spark.read.parquet(job.path("oversized")).orderBy(F.desc("size"), "entity_id")
               .limit(10).collect())  # driver-ok: 10 rows
        job.manifest["metrics"]["oversized_top"] = [r.asDict() for r in top]
        done = f"split at match probability >= {cluster.split_threshold}" if split else "kept whole"
        job.log(f"{n_big} component(s) over {cluster.max_size} records were {done}; see oversized/")
    return n_big


def summary(entities: DataFrame) -> dict:
    """Entity counts and the size histogram (sizes 1..HISTOGRAM_CAP, then one bucket)."""
    reps = entities.where(F.col("rid") == F.col("entity_id"))  # each entity's smallest record: one row per entity
    size = F.col("cluster_size")
    bucket = F.when(size > HISTOGRAM_CAP, F.lit(f">{HISTOGRAM_CAP}")).otherwise(size.cast("string"))
    rows = (reps.groupBy(bucket.alias("size")).agg(F.count("*").alias("n"), F.max(size).alias("largest"))
            .collect())  # driver-ok: at most HISTOGRAM_CAP + 1 rows
    order = sorted(rows, key=lambda r: int(r["size"]) if r["size"].isdigit() else HISTOGRAM_CAP + 1)
    return {"entities": sum(r["n"] for r in rows),
            "singletons": sum(r["n"] for r in rows if r["size"] == "1"),
            "largest": max((r["largest"] for r in rows), default=0),
            "size_histogram": {r["size"]: r["n"] for r in order}}


def pairwise_quality(entities: DataFrame, truth: DataFrame, mode: str) -> dict:
    """Precision |P ∩ T| / |P|, recall |P ∩ T| / |T| and F1 of the pairs P that the entities
    imply (every two records of one entity; in link mode of different sources) against the
    truth pairs T, given by their records' keys (rid_a, rid_b). An entity of n records, n_s
    from source s, implies n(n-1)/2 pairs, or (n² - Σ_s n_s²)/2 in link mode."""
    same = F.col("entity_id_a") == F.col("entity_id_b")
    for side in ("a", "b"):
        entity = entities.select(F.col("rid").alias(f"rid_{side}"), F.col("entity_id").alias(f"entity_id_{side}"))
        truth = truth.join(entity, f"rid_{side}", "left")
    found = truth.agg(F.count("*").alias("t"), F.count(F.when(same, 1)).alias("tp")).first()  # driver-ok: one row
    per_source = entities.groupBy("entity_id", "source").agg(F.count("*").alias("ns"))
    per_entity = per_source.groupBy("entity_id").agg(F.sum("ns").alias("n"),
                                                     F.sum(F.col("ns") * F.col("ns")).alias("sq"))
    implied = F.expr("(n * n - sq) div 2") if mode == "link" else F.expr("n * (n - 1) div 2")
    predicted = per_entity.agg(F.sum(implied)).first()[0] or 0  # driver-ok: one number
    t, tp = found["t"], found["tp"]
    p, r = (tp / predicted if predicted else None), (tp / t if t else None)
    return {"truth_pairs": t, "predicted_pairs": predicted, "true_pairs": tp,
            "cluster_precision": p, "cluster_recall": r, "cluster_f1": f1(p, r)}


def bcubed_quality(entities: DataFrame, labels: DataFrame) -> dict:
    """B-cubed precision and recall (Bagga & Baldwin 1998) against the true clusters.

    With C(r) the entity and L(r) the true cluster of record r, among N records:
    P = (1/N) Σ_r |C(r) ∩ L(r)| / |C(r)| and R = (1/N) Σ_r |C(r) ∩ L(r)| / |L(r)|. The o
    records of one cell C ∩ L all add o / |C| (or o / |L|), so the sums run over the cells:
    P = (1/N) Σ o² / |C|, R = (1/N) Σ o² / |L|. ``labels``: (vertex, component) of the
    truth graph (``component_labels``); a record without a label labels itself.
    """
    label = labels.select(F.col("vertex").alias("rid"), F.col("component").alias("label"))
    lab = (entities.select("rid", "entity_id", "cluster_size").join(label, "rid", "left")
           .withColumn("label", F.coalesce("label", "rid")))
    lab = lab.withColumn("label_size", F.count("*").over(Window.partitionBy("label")))
    cells = lab.groupBy("entity_id", "label").agg(F.count("*").alias("o"), F.first("cluster_size").alias("c"),
                                                  F.first("label_size").alias("l"))
    s = cells.agg(F.sum("o").alias("n"), F.sum(F.col("o") * F.col("o") / F.col("c")).alias("p"),
                  F.sum(F.col("o") * F.col("o") / F.col("l")).alias("r")).first()  # driver-ok: one row
    p, r = (s["p"] / s["n"], s["r"] / s["n"]) if s["n"] else (None, None)
    return {"bcubed_precision": p, "bcubed_recall": r, "bcubed_f1": f1(p, r)}


def quality(spark, config: SigilConfig, entities: DataFrame, records: DataFrame, sources: list[str],
            max_iterations: int) -> dict:
    mode = config.er_mode()
    truth = read_truth(spark, config, sources, records)
    if mode == "link":
        truth = truth.where(F.col("source_a") != F.col("source_b"))
    truth = by_rid(truth).persist(StorageLevel.MEMORY_AND_DISK)
    known = with_known(truth, records).where("known_a and known_b")  # the truth graph of the records there are
    labels, _ = component_labels(as_edges(known), max_iterations)
    out = {**pairwise_quality(entities, truth, mode), **bcubed_quality(entities, labels)}
    truth.unpersist()
    return out


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    cluster = config.cluster or ClusterConfig()
    threshold = edge_threshold(config, cluster)
    if cluster.split_threshold is not None and cluster.split_threshold <= threshold:
        raise InputError(f"cluster.split_threshold ({cluster.split_threshold}) must be above the edge "
                         f"threshold ({threshold}) to split anything")
    with job_run("cluster", spark, config, strict, quiet) as job:
        pairs_path = cluster.input or config.stage_path("match", "pairs")
        pairs = read_input(spark, pairs_path, "scored pairs", "match")
        records = read_input(spark, config.records_path(), "ingested records", "ingest").select("rid", "source", "id")
        counts = dict(records.groupBy("source").count().collect())  # driver-ok: one row per source
        metrics = job.manifest["metrics"]

        with job.stage("components"):
            # the match job's decision (threshold, one-to-one) unless a threshold is set here
            edge = F.col("is_match") if cluster.threshold is None else F.col("match_probability") >= threshold
            above = pairs.where(edge).select(*KEYS, "match_probability")
            keyed = with_known(by_rid(above, *above.columns), records).persist(StorageLevel.MEMORY_AND_DISK)
            quarantine = dangling(keyed, pairs_path)
            n_dangling = write_parquet_unless_empty(quarantine, job.path("quarantine"), datasets.QUARANTINE)
            job.refuse_quarantined(n_dangling, lambda: [f"{r['raw']}: {r['reason']}" for r in quarantine.orderBy(
                "source", "id").limit(5).collect()], "edge(s)")  # driver-ok: 5 rows
            edges = keyed.where("known_a and known_b").select("rid_a", "rid_b", "match_probability")
            comps, rounds = component_labels(as_edges(edges), cluster.max_iterations)
            assigned = assign(records, comps).persist(StorageLevel.MEMORY_AND_DISK)
            metrics.update({"threshold": threshold, "edges": edges.count(), "iterations": rounds})

        with job.stage("oversized"):
            big = (assigned.groupBy("entity_id").agg(F.count("*").alias("size"))
                   .where(F.col("size") > cluster.max_size).persist(StorageLevel.MEMORY_AND_DISK))
            n_big = report_oversized(spark, job, assigned, big, cluster)
            final = assigned
            if n_big and cluster.split_threshold is not None:
                final, metrics["split_iterations"] = split_oversized(assigned, big, edges, cluster.split_threshold,
                                                                     cluster.max_iterations)
        with job.stage("entities"):
            n_records = write_parquet(with_sizes(final), job.path("entities"), datasets.ENTITIES)
        for df in (keyed, assigned, big):
            df.unpersist()
        entities = spark.read.parquet(job.path("entities"))
        metrics.update({"records": n_records, **summary(entities)})
        if config.truth is not None:
            with job.stage("quality"):
                metrics.update(quality(spark, config, entities, records, sorted(counts), cluster.max_iterations))
        job.manifest["inputs"].update({"records": sum(counts.values()), "pairs": pairs.count()})
        job.manifest["quarantined"]["edges"] = n_dangling
        job.manifest["outputs"].update({"entities": n_records, "oversized": n_big})
        job.log_metrics("records", "edges", "entities", "singletons", "largest", "cluster_precision",
                        "cluster_recall", "bcubed_f1")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/cluster.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["cluster", *sys.argv[1:]]))
