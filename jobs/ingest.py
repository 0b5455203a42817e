"""Ingest job: read record sources, validate and normalise, quarantine bad rows.

Outputs under ``<output>/ingest/``: ``records`` (schemas.datasets.records), ``quarantine``
(schemas.datasets.QUARANTINE) and ``manifest.json``. One Spark task parses one file, or one
range of lines of a large CSV/TSV/JSONL file (``ingest.split_bytes``), with
transforms/records.py; a distributed newline count gives each range its first line number.
The task writes its records and bad rows itself and hands Spark only their counts; one
shuffle of the written records' key columns finds duplicate ids, and only when there are
some are the records written again without them.

Run: ``sigil ingest --conf FILE`` or ``spark-submit jobs/ingest.py --conf FILE``.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sigil.jobs.io import spark_schema, task_output, to_contract, write_parquet, write_table
from sigil.jobs.runner import Run, StrictError
from sigil.schemas import datasets
from sigil.schemas.config import SigilConfig
from sigil.transforms.records import (LINE_FORMATS, InputError, count_newlines, line_splits, list_files,
                                     read_header, records_from_file)
from sigil.transforms.xxhash import xxhash64


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

    # a few parts per task: fewer tasks cost less to schedule, and the cores stay busy
    tasks = min(n, 4 * spark.sparkContext.defaultParallelism)
    return parts.repartition(tasks).mapInArrow(parse, spark_schema(schema))


# What a parse task returns: the rows it wrote, per source and kind
COUNTS = pa.schema([("kind", pa.int32()), ("source", pa.string()), ("n", pa.int64())])
RECORDS, BAD = 0, 1


def write_part(batches, tag: str, names: list[str], records_path: str, quarantine_path: str):
    """Write the staged batches of one input part: good rows, with their key rid =
    xxhash64(source, id), to ``records_path``, bad rows to ``quarantine_path``, as
    ``part-<tag>.parquet``; yield how many of each per source (COUNTS). The rows never go
    through the JVM."""
    schemas = {records_path: datasets.records(names), quarantine_path: datasets.QUARANTINE}
    writers, counts = {}, {}
    try:
        for batch in batches:
            ok = pc.is_null(batch.column("reason"))
            for kind, path, rows in ((RECORDS, records_path, batch.filter(ok)),
                                     (BAD, quarantine_path, batch.filter(pc.invert(ok)))):
                if not rows.num_rows:
                    continue
                if path not in writers:
                    out = task_output(path, tag)
                    writers[path] = (out, pq.ParquetWriter(out, schemas[path], compression="zstd"))
                if kind == RECORDS:
                    rows = rows.append_column("rid", pa.array(xxhash64([rows.column("source"), rows.column("id")])))
                writers[path][1].write_batch(to_contract(rows, schemas[path]))
                for c in pc.value_counts(rows.column("source")).to_pylist():
                    counts[(kind, c["values"])] = counts.get((kind, c["values"]), 0) + c["counts"]
    finally:
        for out, writer in writers.values():
            writer.close()
            out.close()
    yield pa.RecordBatch.from_pylist([{"kind": k, "source": s, "n": n} for (k, s), n in counts.items()],
                                     schema=COUNTS)


def parse_and_write(spark, config: SigilConfig, records_path: str, quarantine_path: str) -> dict:
    """Parse every input part, its task writing the records and the bad rows (``write_part``);
    returns the rows written by (kind, source)."""
    sources = {s.name: s for s in config.ingest.sources}
    attributes = list(config.ingest.attributes)
    names = [a.name for a in attributes]

    def reader(name, path, start, end, line):
        tag = hashlib.sha1(f"{path}\0{start}".encode()).hexdigest()[:20]  # one file per part, retry-safe
        staged = records_from_file(path, sources[name], attributes, start, end, line)
        return write_part(staged, tag, names, records_path, quarantine_path)

    counts = parse_parts(spark, [(name, path, sources[name].format) for name, path in input_files(config)],
                         config.ingest.split_bytes, reader, COUNTS).groupBy("kind", "source").agg(F.sum("n").alias("n"))
    return {(r["kind"], r["source"]): r["n"] for r in counts.collect()}  # driver-ok: two rows per source


def flagged(records: DataFrame) -> DataFrame:
    """Records' (source, id, file, line) with ``duplicate`` (a later occurrence, by file and
    line, of a (source, id)), ``first`` (where that id first occurs, ``file:line``) and
    ``collision`` (another (source, id) with the same rid: the key would not be a key).
    One shuffle by rid of the key columns only."""
    # one window spec, one sort: without collisions a rid is one (source, id)
    by_rid = Window.partitionBy("rid").orderBy("source", "id", "file", "line")
    key = F.struct("source", "id")
    return records.select(
        "source", "id", "file", "line", (F.row_number().over(by_rid) > 1).alias("duplicate"),
        F.first(F.concat_ws(":", "file", "line")).over(by_rid).alias("first"),
        (F.first(key).over(by_rid) != key).alias("collision"))


def settle_duplicates(spark, job: Run, names: list[str]) -> dict[str, int]:
    """Move the parsed records (``parsed``) to ``records``. Duplicate ids join the
    quarantine with the reason ``duplicate id (first at file:line)`` and the records are
    written again without them; a rid collision fails the run. Returns the duplicates per
    source."""
    if not job.fs.exists(job.path("parsed")):
        return {}
    parsed = spark.read.parquet(job.path("parsed"))
    # a hash aggregate, no sort, finds the rids held by more than one row; usually none
    shared = parsed.groupBy("rid").count().where("count > 1")
    if shared.isEmpty():
        job.fs.rename(job.path("parsed"), job.path("records"))
        return {}
    flags = flagged(parsed.join(shared.select("rid"), "rid", "left_semi")).where("duplicate or collision")
    flags = flags.persist(StorageLevel.MEMORY_AND_DISK)
    found = {(r["source"], r["collision"]): r["count"] for r in flags.groupBy(
        "source", "collision").count().collect()}  # driver-ok: two rows per source
    if any(collision for _, collision in found):
        raise RuntimeError("record key collision: two (source, id) pairs hash to the same rid")
    at = flags.select("file", "line", "first")
    quarantined = parsed.join(at, ["file", "line"]).select(
        "source", "file", "line", "id", F.concat(F.lit("duplicate id (first at "), F.col("first"), F.lit(")"))
        .alias("reason"), F.to_json(F.struct("id", *names)).alias("raw"))
    write_parquet(quarantined, job.path("quarantine"), datasets.QUARANTINE)
    write_parquet(parsed.join(at, ["file", "line"], "left_anti"), job.path("records"), datasets.records(names))
    flags.unpersist()
    job.fs.delete(job.path("parsed"))
    return {source: n for (source, _), n in found.items()}


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
            counts = parse_and_write(spark, config, job.path("parsed"), job.path("quarantine"))
        with job.stage("duplicates"):
            dupes = settle_duplicates(spark, job, names)
        n_records = sum(n for (kind, _), n in counts.items() if kind == RECORDS) - sum(dupes.values())
        for dataset, schema in (("records", datasets.records(names)), ("quarantine", datasets.QUARANTINE)):
            if not job.fs.exists(job.path(dataset)):  # no rows: still a readable dataset
                write_table(schema.empty_table(), job.path(dataset))
        bad = {source: n for (kind, source), n in counts.items() if kind == BAD}
        n_quarantined = sum(bad.values()) + sum(dupes.values())
        if strict and n_quarantined:
            first = spark.read.parquet(job.path("quarantine")).orderBy("file", "line").limit(5).collect()  # driver-ok
            raise StrictError("--strict: {} row(s) quarantined; first: {}".format(
                n_quarantined, "; ".join(f"{r['file']} line {r['line']}: {r['reason']}" for r in first)))
        if config.ingest.validate_output:
            job.check_quality(spark, "records", "records")
        for name in sorted({source for _, source in counts}):
            total = sum(n for (_, source), n in counts.items() if source == name)
            job.manifest["inputs"][name] = total
            job.manifest["quarantined"][name] = bad.get(name, 0) + dupes.get(name, 0)
            job.manifest["outputs"][f"records.{name}"] = total - job.manifest["quarantined"][name]
        job.manifest["outputs"]["records"] = n_records
        job.manifest["metrics"]["input_rows"] = sum(counts.values())
        job.manifest["metrics"]["quarantined_rows"] = n_quarantined
        job.log(f"{n_records} records, {n_quarantined} quarantined")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/ingest.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["ingest", *sys.argv[1:]]))
