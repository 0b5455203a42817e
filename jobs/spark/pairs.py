"""Record pairs on Spark: the ground truth and labels read from files or id patterns (the
rules of transforms/pairs.py, as Spark expressions), pairs joined with the records'
columns or keys, and their quality against the truth.

Every stage that reports quality (block, nlsh-block, match, cluster) reads the truth
through here.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema

from sigil.jobs.spark.io import read_files
from sigil.schemas.config import SigilConfig
from sigil.transforms.pairs import KEYS, normalised_pairs
from sigil.transforms.quality import blocking_scores, precision_recall
from sigil.transforms.records import InputError, list_files


def truth_from_ids(records: DataFrame, pattern: str, mode: str) -> DataFrame:
    """Pairs of records whose ids share the entity that ``pattern``'s first group extracts:
    transforms/pairs.entity_pairs as Spark's own join, so that the truth of millions of
    records never crosses into Python (tests/test_outputs.py checks both give the same
    pairs)."""
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
    (source_b, id_b), without duplicates: transforms/pairs.normalised_pairs as Spark
    expressions. A file without source columns names the single source (dedupe) or the
    first and second sources (link); ``extra`` columns (e.g. a label) are kept. A missing
    or unreadable file, or a missing column, is an InputError naming the file, before any
    work."""
    list_files(path)  # a plain error for a missing path
    df = read_files(spark, path, fmt)
    df = df.toDF(*[c.strip() for c in df.columns])
    try:  # the columns checked by the Arrow function itself: one rule for both
        normalised_pairs(pa.Table.from_pylist([], to_arrow_schema(df.schema)), id_columns, mode, sources, extra)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
    df = df.withColumnRenamed(id_columns[0], "id_a").withColumnRenamed(id_columns[1], "id_b")
    if "source_a" not in df.columns:
        sa, sb = (sources[0], sources[0]) if mode == "dedupe" else (sources[0], sources[1])
        df = df.withColumn("source_a", F.lit(sa)).withColumn("source_b", F.lit(sb))
    df = df.select(*[F.trim(F.col(c).cast("string")).alias(c) for c in KEYS], *extra)
    return oriented(df, *extra).dropDuplicates(KEYS)


def read_truth(spark, config: SigilConfig, sources: list[str], records: DataFrame) -> DataFrame:
    """Truth pairs, oriented like candidates, from the configured file or id pattern."""
    t, mode = config.truth, config.er_mode()
    if t.id_regex is not None:
        return truth_from_ids(records, t.id_regex, mode)
    return read_pairs(spark, t.path, t.format, mode, sources, tuple(t.id_columns))


def read_labels(spark, path: str, fmt: str, mode: str, sources: list[str], id_columns: tuple[str, str],
                label_column: str | None) -> DataFrame:
    """Labelled pairs (KEYS, label int) from a file; without a label column every pair is a
    match. A label other than 0 or 1 is an InputError naming the first such pair."""
    extra = (label_column,) if label_column else ()
    pairs = read_pairs(spark, path, fmt, mode, sources, tuple(id_columns), extra)
    if not label_column:
        return pairs.select(*KEYS, F.lit(1).alias("label"))
    label = F.col(label_column).try_cast("double")  # "1", "1.0", 1: a number; "maybe": null
    bad = pairs.where(label.isNull() | ~label.isin(0, 1))
    first = bad.limit(1).collect()  # driver-ok: one row
    if first:
        raise InputError(f"{path}: {label_column} must be 0 or 1, e.g. {first[0].asDict()}")
    return pairs.select(*KEYS, label.cast("int").alias("label"))


def oriented(pairs: DataFrame, *extra: str) -> DataFrame:
    """Pairs with their sides swapped where needed so that (source_a, id_a) < (source_b,
    id_b): transforms/pairs.oriented as Spark expressions, for pairs that stay in the JVM."""
    swap = (F.col("source_a") > F.col("source_b")) | ((F.col("source_a") == F.col("source_b"))
                                                      & (F.col("id_a") > F.col("id_b")))
    side = lambda a, b: F.when(swap, F.col(b)).otherwise(F.col(a))  # noqa: E731
    return pairs.select(side("source_a", "source_b").alias("source_a"), side("id_a", "id_b").alias("id_a"),
                        side("source_b", "source_a").alias("source_b"), side("id_b", "id_a").alias("id_b"), *extra)


def named(pairs: DataFrame, records: DataFrame, *extra: str) -> DataFrame:
    """Pairs by record key (rid_a, rid_b, ...) -> KEYS of both records, oriented, with the
    ``extra`` columns; ``records`` needs rid, source and id."""
    for side in ("a", "b"):
        pairs = pairs.join(records.select(F.col("rid").alias(f"rid_{side}"), F.col("source").alias(f"source_{side}"),
                                          F.col("id").alias(f"id_{side}")), f"rid_{side}")
    return oriented(pairs.select(*KEYS, *extra), *extra)


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
    return {"true_positives": tp, "truth_pairs": n_truth, **precision_recall(tp, n_predicted, n_truth)}


def blocking_quality(candidates: DataFrame, truth: DataFrame, n_candidates: int, counts: dict[str, int],
                     mode: str) -> dict:
    """Pair completeness (recall), pair quality (precision), reduction ratio, candidates per record."""
    found, n_truth = true_pairs(candidates, truth)
    return blocking_scores(found, n_truth, n_candidates, counts, mode)
