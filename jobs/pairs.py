"""Record pairs as every stage handles them: oriented (source_a, id_a) < (source_b, id_b),
read from files (ground truth, labels), joined with the records' columns, and scored
against the ground truth.

Every stage that reports quality (block, match, cluster) reads the truth through here.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sigil.schemas.config import SigilConfig
from sigil.transforms.records import InputError

KEYS = ["source_a", "id_a", "source_b", "id_b"]


def truth_from_ids(records: DataFrame, pattern: str, mode: str) -> DataFrame:
    """Pairs of records whose ids share the entity that ``pattern``'s first group extracts."""
    ent = records.select("source", "id", F.regexp_extract("id", pattern, 1).alias("entity")).where("entity != ''")
    a = ent.select(F.col("source").alias("source_a"), F.col("id").alias("id_a"), "entity")
    b = ent.select(F.col("source").alias("source_b"), F.col("id").alias("id_b"), "entity")
    pairs = a.join(b, "entity").where(F.struct("source_a", "id_a") < F.struct("source_b", "id_b"))
    if mode == "link":
        pairs = pairs.where(F.col("source_a") != F.col("source_b"))
    return pairs.drop("entity")


def read_pairs(spark, path: str, fmt: str, mode: str, sources: list[str],
               id_columns: tuple[str, str] = ("id_a", "id_b"), extra: tuple[str, ...] = ()) -> DataFrame:
    """Record pairs from a CSV/Parquet file, oriented like candidates, (source_a, id_a) <
    (source_b, id_b), without duplicates. A file without source columns names the single
    source (dedupe) or the first and second sources (link); ``extra`` columns (e.g. a
    label) are kept."""
    df = (spark.read.option("header", True).csv(path) if fmt == "csv" else spark.read.parquet(path))
    df = df.toDF(*[c.strip() for c in df.columns])
    missing = [c for c in (*id_columns, *extra) if c not in df.columns]
    if missing:
        raise InputError(f"{path} has no column(s) {missing}; it has {df.columns}")
    df = df.withColumnRenamed(id_columns[0], "id_a").withColumnRenamed(id_columns[1], "id_b")
    if "source_a" not in df.columns:
        sa, sb = (sources[0], sources[0]) if mode == "dedupe" else (sources[0], sources[1])
        df = df.withColumn("source_a", F.lit(sa)).withColumn("source_b", F.lit(sb))
    df = df.select(*[F.trim(F.col(c).cast("string")).alias(c) for c in KEYS], *extra)
    return oriented(df, *extra).dropDuplicates(KEYS)


def oriented(pairs: DataFrame, *extra: str) -> DataFrame:
    """Pairs with their sides swapped where needed so that (source_a, id_a) < (source_b, id_b)."""
    swap = (F.col("source_a") > F.col("source_b")) | ((F.col("source_a") == F.col("source_b"))
                                                      & (F.col("id_a") > F.col("id_b")))
    side = lambda a, b: F.when(swap, F.col(b)).otherwise(F.col(a))  # noqa: E731
    return pairs.select(side("source_a", "source_b").alias("source_a"), side("id_a", "id_b").alias("id_a"),
                        side("source_b", "source_a").alias("source_b"), side("id_b", "id_a").alias("id_b"), *extra)


def oriented_arrays(source_x: pa.Array, id_x: pa.Array, source_y: pa.Array, id_y: pa.Array) -> dict[str, pa.Array]:
    """``oriented`` of Arrow columns: KEYS with (source_a, id_a) < (source_b, id_b),
    comparing UTF-8 bytes as Spark does."""
    swap = pc.or_(pc.greater(source_x, source_y), pc.and_(pc.equal(source_x, source_y), pc.greater(id_x, id_y)))
    return {"source_a": pc.if_else(swap, source_y, source_x), "id_a": pc.if_else(swap, id_y, id_x),
            "source_b": pc.if_else(swap, source_x, source_y), "id_b": pc.if_else(swap, id_x, id_y)}


def read_truth(spark, config: SigilConfig, sources: list[str], records: DataFrame) -> DataFrame:
    """Truth pairs, oriented like candidates, from the configured file or id pattern."""
    t, mode = config.truth, config.er_mode()
    if t.id_regex is not None:
        return truth_from_ids(records, t.id_regex, mode)
    return read_pairs(spark, t.path, t.format, mode, sources, tuple(t.id_columns))


def named(pairs: DataFrame, records: DataFrame, *extra: str) -> DataFrame:
    """Pairs by record key (rid_a, rid_b, ...) -> KEYS of both records, oriented, with the
    ``extra`` columns; ``records`` needs rid, source and id."""
    for side in ("a", "b"):
        pairs = pairs.join(records.select(F.col("rid").alias(f"rid_{side}"), F.col("source").alias(f"source_{side}"),
                                          F.col("id").alias(f"id_{side}")), f"rid_{side}")
    return oriented(pairs.select(*KEYS, *extra), *extra)


def read_labels(spark, path: str, fmt: str, mode: str, sources: list[str], id_columns: tuple[str, str],
                label_column: str | None) -> DataFrame:
    """Labelled pairs (KEYS, label int) from a file; without a label column every pair is a match."""
    extra = (label_column,) if label_column else ()
    pairs = read_pairs(spark, path, fmt, mode, sources, tuple(id_columns), extra)
    return pairs.select(*KEYS, (F.col(label_column).cast("int") if label_column else F.lit(1)).alias("label"))


def with_record_columns(pairs: DataFrame, records: DataFrame, columns: list[str], how: str = "inner",
                        by_rid: bool = False) -> DataFrame:
    """``pairs`` joined, by source and id, with ``columns`` of both records, suffixed _a, _b.

    ``by_rid`` finds a record by its key instead, rid = xxhash64(source, id) as ingest
    writes it (schemas/datasets.records), computed from the pair's source and id: a join on
    one long rather than two strings, for millions of pairs."""
    for side in ("a", "b"):
        keys = [f"source_{side}", f"id_{side}"]
        if by_rid:
            pairs, keys = pairs.withColumn(f"_rid_{side}", record_key(side)), [f"_rid_{side}"]
            found = [F.col("rid").alias(keys[0])]
        else:
            found = [F.col("source").alias(keys[0]), F.col("id").alias(keys[1])]
        pairs = pairs.join(records.select(*found, *[F.col(c).alias(f"{c}_{side}") for c in columns]), keys, how)
        if by_rid:
            pairs = pairs.drop(keys[0])
    return pairs


def record_key(side: str):
    """The rid of side ``side`` ("a" or "b") of a pair, computed from its source and id as
    ingest computes it (schemas/datasets.records): equal exactly when the records are
    (ingest fails on a collision)."""
    return F.xxhash64(f"source_{side}", f"id_{side}")


def by_rid(pairs: DataFrame, *extra: str) -> DataFrame:
    """(rid_a, rid_b, ``extra``...) of pairs (KEYS), so that they join on two longs instead
    of four strings."""
    return pairs.select(record_key("a").alias("rid_a"), record_key("b").alias("rid_b"), *extra)


def with_known(pairs: DataFrame, records: DataFrame) -> DataFrame:
    """Pairs (rid_a, rid_b, ...) with ``known_a``, ``known_b``: true where the record is
    among ``records``, null where not."""
    for side in ("a", "b"):
        known = records.select(F.col("rid").alias(f"rid_{side}"), F.lit(True).alias(f"known_{side}"))
        pairs = pairs.join(known, f"rid_{side}", "left")
    return pairs


def true_pairs(predicted: DataFrame, truth: DataFrame) -> tuple[int, int]:
    """How many ``predicted`` pairs are truth pairs, and how many truth pairs there are."""
    keys = by_rid(truth).persist()
    n_truth = keys.count()
    tp = by_rid(predicted).join(keys, ["rid_a", "rid_b"]).count()
    keys.unpersist()
    return tp, n_truth


def pair_quality(predicted: DataFrame, n_predicted: int, truth: DataFrame) -> dict:
    """Pairwise precision, recall and F1 of ``predicted`` pairs (KEYS columns) against truth."""
    tp, n_truth = true_pairs(predicted, truth)
    precision = tp / n_predicted if n_predicted else 0.0
    recall = tp / n_truth if n_truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"true_positives": tp, "truth_pairs": n_truth, "precision": precision, "recall": recall, "f1": f1}


def possible_pairs(counts: dict[str, int], mode: str) -> int:
    n = sum(counts.values())
    if mode == "dedupe":
        return n * (n - 1) // 2
    return (n * n - sum(c * c for c in counts.values())) // 2
