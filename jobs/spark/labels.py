"""Labelled record pairs for training (nlsh-train, match), in any format ``PairLabels``
reads, mapped to the records; every line or pair that does not map is quarantined with its
reason, and the run says what share mapped.

Serialised lines (DeepMatcher / Ditto, transforms/pair_text.py) map by normalised content on
the chosen columns, then, for a side no record's key matches, to the one record of its
source most similar to it above ``nearest`` (scored on Spark, batch by batch, against the
few sides left). Id tables map when both records exist.
"""

from __future__ import annotations

import logging

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sigil.jobs.spark.io import spark_schema, write_parquet, write_table
from sigil.jobs.spark.pairs import read_labels
from sigil.run import Run, StrictError
from sigil.schemas import datasets
from sigil.schemas.config import PairLabels
from sigil.transforms.pair_text import canonical_key, map_pairs, nearest_matches, parse_record, record_text
from sigil.transforms.pairs import KEYS
from sigil.transforms.records import InputError, open_input

LABELLED = spark_schema(pa.schema([*(pa.field(k, pa.string()) for k in KEYS), pa.field("label", pa.int32())]))
NEAREST = pa.schema([("query", pa.int64()), ("source", pa.string()), ("id", pa.string()), ("score", pa.float64())])


def labelled_pairs(spark, labels: PairLabels, records: DataFrame, sources: list[str], mode: str, job: Run,
                   name: str = "labels") -> DataFrame:
    """``(source_a, id_a, source_b, id_b, label)`` oriented like candidates. What does not
    map is written to ``<name>_quarantine``; the manifest counts the lines or pairs read,
    mapped (``<name>_nearest``: by nearest record) and quarantined, and a share mapped under
    ``labels.min_mapped`` warns, or fails the run under --strict."""
    if labels.format == "serialized":
        pairs, quarantine, read, nearest = _serialized(spark, labels, records, sources, mode)
    else:
        pairs, quarantine, read, nearest = _id_pairs(spark, labels, records, sources, mode)
    path = job.path(f"{name}_quarantine")
    n_bad = write_parquet(quarantine, path, datasets.QUARANTINE) if isinstance(quarantine, DataFrame) else \
        write_table(quarantine, path)
    mapped = read - n_bad
    job.manifest["metrics"].update({f"{name}_read": read, f"{name}_mapped": mapped, f"{name}_nearest": nearest})
    job.manifest["quarantined"][name] = job.manifest["outputs"][f"{name}_quarantine"] = n_bad
    if read and mapped / read < labels.min_mapped:
        message = (f"{labels.path}: {mapped} of {read} ({mapped / read:.0%}) labelled lines or pairs map to records, "
                   f"under min_mapped={labels.min_mapped:g}; the others, with their reasons: "
                   f"{job.final_path(f'{name}_quarantine')}")
        if job.strict:
            raise StrictError(f"--strict: {message}")
        job.log(f"warning: {message}", logging.WARNING)
    return pairs


def _id_pairs(spark, labels: PairLabels, records: DataFrame, sources: list[str], mode: str):
    """Id tables: the pairs whose records both exist, and the others quarantined."""
    pairs = read_labels(spark, labels.path, labels.format, mode, sources, labels.id_columns, labels.label_column)
    keys = records.select("source", "id").distinct()
    checked = pairs
    for side in ("a", "b"):
        found = keys.select(F.col("source").alias(f"source_{side}"), F.col("id").alias(f"id_{side}"),
                            F.lit(True).alias(f"has_{side}"))
        checked = checked.join(found, [f"source_{side}", f"id_{side}"], "left")
    missing = F.concat_ws("; ", *[F.when(F.col(f"has_{s}").isNull(), F.concat(F.lit("record not in "),
                                                                               F.col(f"source_{s}")))
                                  for s in "ab"])
    checked = checked.withColumn("reason", missing).persist()
    quarantine = checked.where("reason != ''").select(
        F.lit("labels").alias("source"), F.lit(labels.path).alias("file"), F.lit(None).cast("long").alias("line"),
        F.concat_ws(" / ", "id_a", "id_b").alias("id"), "reason",
        F.concat_ws(",", *KEYS, F.col("label").cast("string")).alias("raw"))
    return checked.where("reason = ''").select(*KEYS, "label"), quarantine, checked.count(), 0


def _serialized(spark, labels: PairLabels, records: DataFrame, sources: list[str], mode: str):
    """Serialised lines, read on the driver (they are labels: bounded by ``max_pairs``);
    only the records whose key occurs in them are gathered, and the nearest records of
    the sides left are found on Spark."""
    if mode != "link" or len(sources) != 2:
        raise InputError("serialized labels pair records of two sources: they need block.mode=link and two sources")
    lines = _lines(labels)
    columns = _columns(labels, lines[0], records)
    sides = [parse_record(side) for line in lines for side in line.split("\t")[:2] if side.startswith("COL ")]
    wanted = {canonical_key(side, columns) for side in sides}

    def matching(batches):
        for batch in batches:
            yield batch.filter(pa.array([canonical_key(r, columns) in wanted for r in batch.to_pylist()]))

    subset = records.select("source", "id", *columns)
    found = subset.mapInArrow(matching, subset.schema).toArrow()  # driver-ok: the labelled records
    by_source = {s: [r for r in found.to_pylist() if r["source"] == s] for s in sources}
    mapped, unmapped = map_pairs(lines, by_source, columns)
    nearest = {}
    if labels.nearest is not None and unmapped:
        left = {n for n, reason in unmapped if reason.startswith(("record not in", "no side found"))}
        texts = sorted({record_text(parse_record(side), columns) for n in left
                        for side in lines[n - 1].split("\t")[:2] if side.startswith("COL ")})
        nearest = _nearest(subset, texts, columns, labels.nearest)
        exact = len(mapped)
        mapped, unmapped = map_pairs(lines, by_source, columns, nearest=nearest)
        nearest = len(mapped) - exact
    quarantine = pa.table({"source": ["labels"] * len(unmapped), "file": [labels.path] * len(unmapped),
                           "line": [n for n, _ in unmapped], "id": [None] * len(unmapped),
                           "reason": [r for _, r in unmapped], "raw": [lines[n - 1] for n, _ in unmapped]},
                          datasets.QUARANTINE)
    rows = [(sources[0], a, sources[1], b, label) for _, a, b, label in mapped]
    return spark.createDataFrame(rows, LABELLED), quarantine, len(lines), nearest or 0


def _lines(labels: PairLabels) -> list[str]:
    fs, root = open_input(labels.path)
    with fs.open_input_stream(root) as f:
        lines = f.read().decode("utf-8").splitlines()
    if not lines:
        raise InputError(f"{labels.path} is empty")
    if len(lines) > labels.max_pairs:
        raise InputError(f"{labels.path}: {len(lines)} lines, over max_pairs={labels.max_pairs} (labels are mapped "
                         "on the driver)")
    return lines


def _columns(labels: PairLabels, first: str, records: DataFrame) -> list[str]:
    """The attributes the sides are matched on: ``labels.columns``, or those of the first
    line that the records have."""
    try:
        serialised = list(parse_record(first.split("\t")[0]))
    except ValueError as err:
        raise InputError(f"{labels.path} line 1: {err}") from None
    columns = labels.columns or [c for c in serialised if c in records.columns]
    missing = [c for c in columns if c not in records.columns]
    if missing or not columns:
        raise InputError(f"{labels.path}: the records have no column {missing or serialised} to match the serialised "
                         f"attributes on; set labels.columns to some of {records.columns}")
    return columns


def _nearest(records: DataFrame, texts: list[str], columns: list[str], floor: float) -> dict[tuple[str, str], str]:
    """``(source, text)`` -> the id of the one record of that source most similar to
    ``text`` at or above ``floor``; texts whose best is not unique are left out."""
    if not texts:
        return {}

    def best(batches):
        for batch in batches:
            rows = batch.to_pylist()
            for source in {r["source"] for r in rows}:
                own = [r for r in rows if r["source"] == source]
                index, score = nearest_matches(texts, [record_text(r, columns) for r in own], floor)
                q, k = (index >= 0).nonzero()
                yield pa.RecordBatch.from_pydict({"query": q.tolist(), "source": [source] * len(q),
                                                  "id": [own[i]["id"] for i in index[q, k]],
                                                  "score": score[q, k].tolist()}, schema=NEAREST)

    found = records.mapInArrow(best, spark_schema(NEAREST)).toArrow().to_pylist()  # driver-ok: two per side and task
    by_side: dict[tuple, list] = {}
    for r in found:
        by_side.setdefault((r["source"], texts[r["query"]]), []).append((r["score"], r["id"]))
    out = {}
    for side, scored in by_side.items():
        scored.sort(reverse=True)
        if len(scored) == 1 or scored[0][0] > scored[1][0]:
            out[side] = scored[0][1]
    return out
