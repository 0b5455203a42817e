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
from pyspark.sql import functions as F

from sigil.jobs.spark.expectations import check_sources
from sigil.jobs.spark.io import quarantine_examples, task_output, write_parquet, write_table
from sigil.jobs.spark.parse import parse_parts, split_duplicates, task_input_errors
from sigil.jobs.spark.session import job_run
from sigil.run import Run
from sigil.schemas import datasets
from sigil.schemas.config import SigilConfig
from sigil.transforms.packing import to_contract
from sigil.transforms.records import InputError, input_files, records_from_file
from sigil.transforms.xxhash import xxhash64


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
        staged = records_from_file(path, sources[name], attributes, start, end, line,
                                   config.ingest.max_record_bytes)
        return write_part(staged, tag, names, records_path, quarantine_path)

    counts = parse_parts(spark, [(name, path, sources[name].format) for name, path in input_files(config)],
                         config.ingest.split_bytes, reader, COUNTS).groupBy("kind", "source").agg(F.sum("n").alias("n"))
    with task_input_errors():  # e.g. a damaged Parquet page, which the driver's check does not read
        rows = counts.collect()  # driver-ok: two rows per source
    return {(r["kind"], r["source"]): r["n"] for r in rows}


def settle_duplicates(spark, job: Run, names: list[str]) -> dict[str, int]:
    """Move the parsed records (``parsed``) to ``records``. Duplicate ids join the
    quarantine with the reason ``duplicate id (first at file:line)`` (jobs/spark/parse.py)
    and the records are written again without them; a rid collision fails the run. Returns
    the duplicates per source."""
    if not job.storage.exists(job.path("parsed")):
        return {}
    parsed = spark.read.parquet(job.path("parsed"))
    # a hash aggregate, no sort, finds the rids held by more than one row; usually none
    shared = parsed.groupBy("rid").count().where("count > 1")
    if shared.isEmpty():
        job.storage.move(job.path("parsed"), job.path("records"))
        return {}
    suspects = parsed.join(shared.select("rid"), "rid", "left_semi").persist(StorageLevel.MEMORY_AND_DISK)
    keys = suspects.groupBy("rid").agg(F.countDistinct("source", "id").alias("keys"))
    if not keys.where("keys > 1").isEmpty():
        raise RuntimeError("record key collision: two (source, id) pairs hash to the same rid")
    _, dupes = split_duplicates(suspects, ["source", "id"])
    dupes = dupes.select("source", "file", "line", "id", "reason",
                         F.to_json(F.struct("id", *names)).alias("raw")).persist(StorageLevel.MEMORY_AND_DISK)
    found = dict(dupes.groupBy("source").count().collect())  # driver-ok: one row per source
    write_parquet(dupes, job.path("quarantine"), datasets.QUARANTINE)
    write_parquet(parsed.join(dupes.select("file", "line"), ["file", "line"], "left_anti"), job.path("records"),
                  datasets.records(names))
    for frame in (suspects, dupes):
        frame.unpersist()
    job.storage.delete(job.path("parsed"))
    return found


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    if config.ingest is None:
        raise InputError("the configuration has no 'ingest' section")
    with job_run("ingest", spark, config, strict, quiet) as job:
        names = [a.name for a in config.ingest.attributes]
        with job.stage("parse"):
            counts = parse_and_write(spark, config, job.path("parsed"), job.path("quarantine"))
        with job.stage("duplicates"):
            dupes = settle_duplicates(spark, job, names)
        n_records = sum(n for (kind, _), n in counts.items() if kind == RECORDS) - sum(dupes.values())
        for dataset, schema in (("records", datasets.records(names)), ("quarantine", datasets.QUARANTINE)):
            if not job.storage.exists(job.path(dataset)):  # no rows: still a readable dataset
                write_table(schema.empty_table(), job.path(dataset))
        bad = {source: n for (kind, source), n in counts.items() if kind == BAD}
        n_quarantined = sum(bad.values()) + sum(dupes.values())
        job.refuse_quarantined(n_quarantined, lambda: quarantine_examples(spark.read.parquet(job.path("quarantine"))))
        for name in sorted(s.name for s in config.ingest.sources):  # every source, 0 where it has no rows
            total = sum(n for (_, source), n in counts.items() if source == name)
            job.manifest["inputs"][name] = total
            job.manifest["quarantined"][name] = bad.get(name, 0) + dupes.get(name, 0)
            job.manifest["outputs"][f"records.{name}"] = total - job.manifest["quarantined"][name]
        job.manifest["outputs"]["records"] = n_records
        job.manifest["metrics"]["input_rows"] = sum(counts.values())
        job.manifest["metrics"]["quarantined_rows"] = n_quarantined
        job.log(f"{n_records} records, {n_quarantined} quarantined")
        check_sources(spark, job)
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/ingest.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["ingest", *sys.argv[1:]]))
