"""interactions-ingest job: an interaction log -> user and item dictionaries, the merged
interactions and a train/test split, which the graphhash job and a recommender's training
read.

Stages: parse (one task per file or line range; transforms/interaction_log.py checks every
row) -> dictionaries: the distinct user ids and item ids, each numbered 0..n-1 apart
(integer ids in numeric order first, then the rest in string order), by a
range-partitioned sort and per-partition offsets -> interactions by dense index, the rows
of one (user, item) pair merged (rows counted, weights summed, first and last timestamp
kept) -> the split: each user's items ordered by a seeded hash of (seed, user, item)
(``split.method: random``) or by their last timestamp (``time``), the last
``split.test_fraction`` of them (rounded, at least one) held out for test when the user
has ``split.min_user_items`` or more -> statistics.

Outputs under ``<output>/interactions/``: ``users`` and ``items`` (schemas.datasets.USERS,
ITEMS: the dictionaries with each entity's degree, weight and train degree),
``interactions``, ``train`` and ``test`` (INTERACTIONS), ``quarantine`` (QUARANTINE: rows
with a missing user or item, a bad weight, timestamp or label, malformed lines) and
``manifest.json``.

Rows add up: ``inputs.rows`` = ``metrics.rows_used`` + ``metrics.negative_rows`` (labelled
0: not interactions) + ``quarantined.rows``. Test items that have no train interaction
are *cold* (``metrics.cold_test_items``): a model trained on the train split has never seen
them, and a mapping gives them its fallback bucket.

Run: ``sigil interactions-ingest --conf FILE`` or ``spark-submit jobs/interactions_ingest.py
--conf FILE``.
"""

from __future__ import annotations

import logging

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sigil.jobs.spark.dictionary import dense_ids
from sigil.jobs.spark.io import quarantine_examples, write_parquet
from sigil.jobs.spark.parse import parse_parts, task_input_errors
from sigil.jobs.spark.session import job_run
from sigil.schemas import datasets
from sigil.schemas.config import InteractionsConfig, SigilConfig, SplitConfig
from sigil.transforms.graph import input_columns, positional_header
from sigil.transforms.interaction_log import STAGED_INTERACTIONS, interactions_from_file
from sigil.transforms.records import COMMENT, InputError, list_files


def staged(spark, cfg: InteractionsConfig) -> DataFrame:
    """Every row of the log, parsed and checked: reason null when good."""
    log = cfg.log
    files = [("log", p, log.format) for p in list_files(log.path) if input_columns(p, log) is not None]
    return parse_parts(spark, files, cfg.split_bytes, lambda _, path, *span: interactions_from_file(path, log, *span),
                       STAGED_INTERACTIONS)


def merged(rows: DataFrame, users: DataFrame, items: DataFrame) -> DataFrame:
    """INTERACTIONS: the positive rows by dense index, one per (user, item) pair."""
    return (rows.join(users, "user").join(items, "item").groupBy("uid", "iid")
            .agg(F.count("*").alias("count"), F.sum("weight").alias("weight"),
                 F.min("timestamp").alias("first_timestamp"), F.max("timestamp").alias("last_timestamp")))


def held_out(interactions: DataFrame, split: SplitConfig) -> DataFrame:
    """The interactions with a ``test`` flag: each user's last ``test_fraction`` of items
    (at least one, for users with ``min_user_items`` or more) in the split's order."""
    order = F.col("last_timestamp") if split.method == "time" else F.xxhash64(F.lit(split.seed), "uid", "iid")
    n = F.count("*").over(Window.partitionBy("uid"))
    rank = F.row_number().over(Window.partitionBy("uid").orderBy(order, "iid"))
    tests = F.when(n >= split.min_user_items, F.greatest(F.lit(1), F.round(n * split.test_fraction)))
    tests = tests.otherwise(0) if split.test_fraction > 0 else F.lit(0)
    return interactions.withColumn("test", rank > n - tests)


def entities(ids: DataFrame, interactions: DataFrame, dense: str, schema) -> DataFrame:
    """A dictionary with each entity's degree, weight and train degree."""
    totals = interactions.groupBy(dense).agg(
        F.count("*").alias("degree"), F.sum("weight").alias("weight"),
        F.sum(F.when(~F.col("test"), 1).otherwise(0)).alias("train_degree"))
    return ids.join(totals, dense, "left").fillna(0).select(*schema.names)


def degree_spread(frame: DataFrame) -> dict:
    """min, p50, p90, p99, max and mean of ``degree``."""
    row = frame.agg(F.min("degree"), F.percentile_approx("degree", [0.5, 0.9, 0.99], 10_000), F.max("degree"),
                    F.mean("degree")).first()  # driver-ok: one row
    q = row[1] or [None] * 3
    return {"min": row[0], "p50": q[0], "p90": q[1], "p99": q[2], "max": row[2], "mean": row[3]}


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    cfg = config.interactions
    if cfg is None:
        raise InputError("the configuration has no 'interactions' section")
    if cfg.split.method == "time" and cfg.log.timestamp_column is None:
        raise InputError("interactions.split.method: time orders each user's items by time; set "
                         "interactions.log.timestamp_column, or use method: random")
    partitions = config.spark.shuffle_partitions
    with job_run("interactions", spark, config, strict, quiet) as job:
        warning = positional_header("interactions.log", cfg.log)
        if warning:
            job.log(warning, logging.WARNING)
        with job.stage("parse"):
            rows = staged(spark, cfg).persist(StorageLevel.MEMORY_AND_DISK)
            kind = (F.when(F.col("reason").isNull() & F.col("positive"), "good")
                    .when(F.col("reason").isNull(), "negative").when(F.col("reason") == COMMENT, "comment")
                    .otherwise("bad"))
            with task_input_errors():
                counts = dict(rows.groupBy(kind).count().collect())  # driver-ok: 4 rows
            n_rows = sum(counts.get(k, 0) for k in ("good", "negative", "bad"))
            if not n_rows:
                raise InputError(f"no interactions in {cfg.log.path}: not one row (the input is empty, or only a "
                                 "header, blank or comment lines)")
            quarantine = rows.where(f"reason is not null and reason != '{COMMENT}'").select(
                F.lit("log").alias("source"), "file", "line", F.lit(None).cast("string").alias("id"), "reason", "raw")
            n_bad = write_parquet(quarantine, job.path("quarantine"), datasets.QUARANTINE)
        job.refuse_quarantined(n_bad, lambda: quarantine_examples(spark.read.parquet(job.path("quarantine"))))
        good = rows.where("reason is null and positive")
        with job.stage("dictionaries"):
            users = dense_ids(good.select("user"), partitions, "user", "uid").persist(StorageLevel.MEMORY_AND_DISK)
            items = dense_ids(good.select("item"), partitions, "item", "iid").persist(StorageLevel.MEMORY_AND_DISK)
            n_users, n_items = users.count(), items.count()
        with job.stage("interactions"):
            pairs = held_out(merged(good, users, items), cfg.split).persist(StorageLevel.MEMORY_AND_DISK)
            n_pairs = write_parquet(pairs.drop("test"), job.path("interactions"), datasets.INTERACTIONS)
            n_train = write_parquet(pairs.where(~F.col("test")).drop("test"), job.path("train"), datasets.INTERACTIONS)
            n_test = write_parquet(pairs.where("test").drop("test"), job.path("test"), datasets.INTERACTIONS)
            for ids, dense, name, schema in ((users, "uid", "users", datasets.USERS),
                                            (items, "iid", "items", datasets.ITEMS)):
                write_parquet(entities(ids, pairs, dense, schema), job.path(name), schema)
        with job.stage("statistics"):
            u, i = spark.read.parquet(job.path("users")), spark.read.parquet(job.path("items"))
            test = spark.read.parquet(job.path("test"))
            cold_items = test.join(i.where("train_degree = 0"), "iid", "left_semi")
            stats = {"users": n_users, "items": n_items, "interactions": n_pairs,
                     "rows_used": counts.get("good", 0), "negative_rows": counts.get("negative", 0),
                     "repeats_merged": counts.get("good", 0) - n_pairs,
                     "density": n_pairs / (n_users * n_items) if n_users and n_items else None,
                     "train": n_train, "test": n_test, "test_users": test.select("uid").distinct().count(),
                     "cold_test_items": cold_items.select("iid").distinct().count(),
                     "cold_test_interactions": cold_items.count(),
                     "user_degree": degree_spread(u), "item_degree": degree_spread(i),
                     "split": cfg.split.model_dump()}
        rows.unpersist()
        pairs.unpersist()
        job.manifest["inputs"] = {"rows": n_rows, "comment_lines": counts.get("comment", 0)}
        job.manifest["quarantined"] = {"rows": n_bad}
        job.manifest["outputs"] = {"users": n_users, "items": n_items, "interactions": n_pairs, "train": n_train,
                                   "test": n_test}
        job.manifest["metrics"] = stats
        if not n_pairs:
            job.log(f"no positive interaction in {cfg.log.path}: every row was quarantined or labelled 0",
                    logging.WARNING)
        job.log(f"{n_users} users, {n_items} items, {n_pairs} interactions ({n_train} train, {n_test} test), "
                f"{n_bad} rows quarantined")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/interactions_ingest.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["interactions-ingest", *sys.argv[1:]]))
