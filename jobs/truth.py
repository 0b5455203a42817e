"""Ground truth: matching pairs from a file or from an id pattern, oriented like candidates.

Every stage that reports quality (block, match, cluster) reads the truth through here.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sigil.schemas.config import SigilConfig

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


def read_truth(spark, config: SigilConfig, sources: list[str], records: DataFrame) -> DataFrame:
    """Truth pairs, oriented like candidates; a file without source columns names the
    single source (dedupe) or the first and second sources (link)."""
    t, mode = config.truth, config.er_mode()
    if t.id_regex is not None:
        return truth_from_ids(records, t.id_regex, mode)
    df = (spark.read.option("header", True).csv(t.path) if t.format == "csv" else spark.read.parquet(t.path))
    df = df.toDF(*[c.strip() for c in df.columns])
    if "source_a" not in df.columns:
        sa, sb = (sources[0], sources[0]) if mode == "dedupe" else (sources[0], sources[1])
        df = df.withColumn("source_a", F.lit(sa)).withColumn("source_b", F.lit(sb))
    df = df.select(*[F.trim(F.col(c).cast("string")).alias(c) for c in ("source_a", "id_a", "source_b", "id_b")])
    swap = (F.col("source_a") > F.col("source_b")) | ((F.col("source_a") == F.col("source_b")) & (F.col("id_a") > F.col("id_b")))
    return df.select(
        F.when(swap, F.col("source_b")).otherwise(F.col("source_a")).alias("source_a"),
        F.when(swap, F.col("id_b")).otherwise(F.col("id_a")).alias("id_a"),
        F.when(swap, F.col("source_a")).otherwise(F.col("source_b")).alias("source_b"),
        F.when(swap, F.col("id_a")).otherwise(F.col("id_b")).alias("id_b")).distinct()


def possible_pairs(counts: dict[str, int], mode: str) -> int:
    n = sum(counts.values())
    if mode == "dedupe":
        return n * (n - 1) // 2
    return (n * n - sum(c * c for c in counts.values())) // 2
