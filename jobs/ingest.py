"""Ingest job: read record sources, validate and normalise, quarantine bad rows.

Outputs under ``<output>/ingest/``: ``records`` (schemas.datasets.records), ``quarantine``
(schemas.datasets.QUARANTINE) and ``manifest.json``. One Spark task parses one file, or one
range of lines of a large CSV/TSV/JSONL file (``ingest.split_bytes``), with
transforms/records.py; a distributed newline count gives each range its first line number.

Run: ``sigil ingest --conf FILE`` or ``spark-submit jobs/ingest.py --conf FILE``.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sigil.jobs.io import spark_schema, write_parquet
from sigil.jobs.runner import Run, StrictError
from sigil.schemas import datasets
from sigil.schemas.config import SigilConfig
from sigil.transforms.records import (LINE_FORMATS, InputError, count_newlines, line_splits, list_files,
                                     read_header, records_from_file, staged_schema)


def input_files(config: SigilConfig) -> list[tuple[str, str]]:
    """(source name, file) for every input file; fails before any work on a missing
    path, an empty file or a configured column absent from a file's header."""
    files = []
    for source in config.ingest.sources:
        wanted = [source.id_column] + [source.column_map.get(a.name, a.name) for a in config.ingest.attributes]
        for path in list_files(source.path):
            header = read_header(path, source.format, source.delimiter, source.strip_header)
            if source.format != "jsonl":  # JSON objects may leave keys out
                missing = [c for c in wanted if c not in header]
                if missing:
                    raise InputError(f"{path}: missing configured column(s) {missing}; the file has {header}")
            files.append((source.name, path))
    return files


PARTS = "source string, path string, start long, end long, first_line long"
PARTS_COLUMNS = ("source", "path", "start", "end", "first_line")


def input_parts(spark, files: list[tuple[str, str, str]], split_bytes: int) -> tuple[DataFrame, int]:
    """One row per parse task for ``(source name, file, format)`` files, and how many: whole
    files, and large line-oriented files cut at line boundaries, each range with the file
    line it starts at (from a distributed newline count)."""
    ranges = [(name, path, start, end) for name, path, fmt in files
              for start, end in (line_splits(path, split_bytes) if fmt in LINE_FORMATS else [(0, -1)])]
    if all(start == 0 for _, _, start, _ in ranges):
        return spark.createDataFrame([(*r, 1) for r in ranges], PARTS), len(ranges)

    def newlines(batches):
        for b in batches:
            spans = zip(*(b.column(c).to_pylist() for c in ("path", "start", "end")))
            yield b.append_column("newlines", pa.array([count_newlines(*span) for span in spans], pa.int64()))

    split = (spark.createDataFrame(ranges, "source string, path string, start long, end long")
             .repartition(min(len(ranges), 4 * spark.sparkContext.defaultParallelism))
             .mapInArrow(newlines, "source string, path string, start long, end long, newlines long"))
    before = Window.partitionBy("path").orderBy("start").rowsBetween(Window.unboundedPreceding, -1)
    return split.select("source", "path", "start", "end",
                        (F.coalesce(F.sum("newlines").over(before), F.lit(0)) + 1).alias("first_line")), len(ranges)


def parse_parts(spark, files: list[tuple[str, str, str]], split_bytes: int, reader, schema: pa.Schema) -> DataFrame:
    """Every row of ``(name, file, format)`` files, one task per file or line range:
    ``reader(name, path, start, end, first_line)`` yields ``schema`` batches."""
    parts, n = input_parts(spark, files, split_bytes)

    def parse(batches):
        for batch in batches:
            for name, path, start, end, line in zip(*(batch[c].to_pylist() for c in PARTS_COLUMNS)):
                yield from reader(name, path, start, None if end < 0 else end, line)

    return parts.repartition(n).mapInArrow(parse, spark_schema(schema))


def staged(spark, config: SigilConfig) -> DataFrame:
    """Every input row, parsed and validated: ``reason`` is null for a good row."""
    sources = {s.name: s for s in config.ingest.sources}
    attributes = list(config.ingest.attributes)

    def reader(name, path, start, end, line):
        return records_from_file(path, sources[name], attributes, start, end, line)

    return parse_parts(spark, [(name, path, sources[name].format) for name, path in input_files(config)],
                       config.ingest.split_bytes, reader, staged_schema([a.name for a in attributes]))


def split_duplicates(rows: DataFrame, keys: list[str]) -> tuple[DataFrame, DataFrame]:
    """The first occurrence of each ``keys`` value by (file, line) is kept; the later ones
    come back apart with the reason ``duplicate id (first at file:line)``."""
    first = Window.partitionBy(*keys).orderBy("file", "line")
    ranked = (rows.withColumn("_n", F.row_number().over(first))
              .withColumn("_first", F.first(F.concat_ws(":", "file", "line")).over(first)))
    dupes = ranked.where("_n > 1").withColumn(
        "reason", F.concat(F.lit("duplicate id (first at "), F.col("_first"), F.lit(")")))
    return ranked.where("_n = 1").drop("_n", "_first"), dupes.drop("_n", "_first")


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    if config.ingest is None:
        raise InputError("the configuration has no 'ingest' section")
    with Run("ingest", config, spark, strict, quiet) as job:
        names = [a.name for a in config.ingest.attributes]
        with job.stage("parse"):
            rows = staged(spark, config).persist()
            good, dupes = split_duplicates(rows.where("reason is null"), ["source", "id"])
            good = good.drop("reason", "raw")
            dupes = dupes.select("source", "file", "line", "id", "reason", F.to_json(F.struct(*[
                c for c in rows.columns if c not in ("reason", "raw", "file", "line", "source")
                and not c.endswith(datasets.NORM_SUFFIX)])).alias("raw"))
            quarantine = rows.where("reason is not null").select(*datasets.QUARANTINE.names).unionByName(dupes)
            records = good.withColumn("rid", F.xxhash64("source", "id")).select(*datasets.records(names).names)
            per_source = rows.groupBy("source").agg(F.count("*").alias("input"), F.count("reason").alias("bad"))
            counts = {r["source"]: r.asDict() for r in per_source.collect()}  # driver-ok: one row per source
            dup_counts = dict(dupes.groupBy("source").count().collect())  # driver-ok: one row per source
        n_quarantined = sum(c["bad"] for c in counts.values()) + sum(dup_counts.values())
        if strict and n_quarantined:
            first = quarantine.orderBy("file", "line").limit(5).collect()  # driver-ok: 5 rows
            raise StrictError("--strict: {} row(s) quarantined; first: {}".format(
                n_quarantined, "; ".join(f"{r['file']} line {r['line']}: {r['reason']}" for r in first)))
        with job.stage("write"):
            n_records = write_parquet(records, job.path("records"), datasets.records(names))
            write_parquet(quarantine, job.path("quarantine"), datasets.QUARANTINE)
        if spark.read.parquet(job.path("records")).select("rid").distinct().count() != n_records:
            raise RuntimeError("record key collision: two (source, id) pairs hash to the same rid")
        rows.unpersist()
        if config.ingest.validate_output:
            job.check_quality(spark, "records", "records")
        for name, c in sorted(counts.items()):
            out = c["input"] - c["bad"] - dup_counts.get(name, 0)
            job.manifest["inputs"][name] = c["input"]
            job.manifest["quarantined"][name] = c["bad"] + dup_counts.get(name, 0)
            job.manifest["outputs"][f"records.{name}"] = out
        job.manifest["outputs"]["records"] = n_records
        job.manifest["metrics"]["input_rows"] = sum(c["input"] for c in counts.values())
        job.manifest["metrics"]["quarantined_rows"] = n_quarantined
        job.log(f"{n_records} records, {n_quarantined} quarantined")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/ingest.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["ingest", *sys.argv[1:]]))
