"""Ingest as an Apache Beam pipeline: read record sources, validate and normalise, quarantine
bad rows (DirectRunner by default).

The same parsing (transforms/records.py) and the same outputs as jobs/ingest.py, so both
engines write equal ``records`` and ``quarantine`` datasets and manifests from the same
files (tests/test_beam.py): one element per file, or per byte range of a large CSV/TSV/JSONL
file (``ingest.split_bytes``), whose first line number comes from the newlines of the
ranges before it (counted in parallel, summed as a side input). The records are sharded by
``pmod(xxhash64(rid), shuffle_partitions)``; in each shard the first row of an id by (file,
line) stays and the later ones join the quarantine with the reason ``duplicate id (first at
file:line)``, as on Spark; a rid shared by two (source, id) keys fails the run. Parquet is
written through Beam's sharded I/O.

Run: ``sigil ingest --engine beam --conf FILE`` (``BEAM_OPTIONS`` for other runners).
"""

from __future__ import annotations

import json
import os

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.parquetio import WriteToParquetBatched
from apache_beam.metrics.metric import Metrics

from sigil.pipelines.beam.engine import execute, refuse, unchecked
from sigil.pipelines.beam.pairs import shards
from sigil.run import Run
from sigil.schemas import datasets
from sigil.schemas.config import SigilConfig
from sigil.transforms.packing import to_contract
from sigil.transforms.records import LINE_FORMATS, InputError, count_newlines, input_files, line_splits, \
    records_from_file
from sigil.transforms.xxhash import xxhash64

NAMESPACE = "sigil.ingest"


def first_lines(counted: list[tuple[str, int, int]]) -> dict[tuple[str, int], int]:
    """Each range's first line number from the newlines of the ranges of its file before it."""
    out, seen = {}, {}
    for path, start, newlines in sorted(counted):
        out[(path, start)] = seen.get(path, 0) + 1
        seen[path] = seen.get(path, 0) + newlines
    return out


def parse(part, lines: dict, config: SigilConfig):
    """One file or range -> its staged rows: records (with rid) and, tagged, bad rows."""
    name, path, start, end = part
    source = next(s for s in config.ingest.sources if s.name == name)
    names = [a.name for a in config.ingest.attributes]
    for batch in records_from_file(path, source, list(config.ingest.attributes), start, None if end < 0 else end,
                                   lines[(path, start)], config.ingest.max_record_bytes):
        ok = pc.is_null(batch.column("reason"))
        good, bad = batch.filter(ok), batch.filter(pc.invert(ok))
        for kind, rows in (("records", good), ("bad", bad)):
            for c in pc.value_counts(rows.column("source")).to_pylist():
                Metrics.counter(NAMESPACE, f"{kind}:{c['values']}").inc(c["counts"])
        if good.num_rows:
            good = good.append_column("rid", pa.array(xxhash64([good.column("source"), good.column("id")])))
            yield pa.Table.from_batches([to_contract(good, datasets.records(names))])
        if bad.num_rows:
            yield beam.pvalue.TaggedOutput("bad", pa.Table.from_batches([to_contract(bad, datasets.QUARANTINE)]))


def raw_json(rows: pa.Table, names: list[str]) -> pa.Array:
    """Spark's ``to_json(struct(id, *names))`` of each row: nulls left out, UTF-8 as is."""
    return pa.array([json.dumps({k: v for k, v in r.items() if v is not None}, ensure_ascii=False,
                                separators=(",", ":")) for r in rows.select(["id", *names]).to_pylist()],
                    pa.string())


def settle(item, names: list[str]):
    """One shard of records: the first of each id by (file, line) kept, the later ones out
    (tagged) as quarantine rows; a rid of two keys is an error."""
    _, tables = item
    t = pa.concat_tables(tables)
    rid, line = t.column("rid").to_numpy(), t.column("line").to_numpy()
    file = t.column("file").to_numpy(zero_copy_only=False)
    order = np.lexsort((line, file, rid))
    t, rid = t.take(order), rid[order]
    first = np.r_[True, rid[1:] != rid[:-1]]
    if first.all():
        yield t
        return
    keys = pc.binary_join_element_wise(t.column("source"), t.column("id"), "\0").to_numpy(zero_copy_only=False)
    start = np.flatnonzero(first)[np.cumsum(first) - 1]  # each row's first row of its rid
    if (keys != keys[start]).any():
        raise RuntimeError("record key collision: two (source, id) pairs hash to the same rid")
    yield t.filter(pa.array(first))
    dupes = t.filter(pa.array(~first))
    at = start[~first]
    reason = [f"duplicate id (first at {f}:{n})" for f, n in zip(t.column("file").take(at).to_pylist(),
                                                                 t.column("line").take(at).to_pylist())]
    for source in np.unique(dupes.column("source").to_numpy(zero_copy_only=False)):
        Metrics.counter(NAMESPACE, f"dupes:{source}").inc(int((dupes.column("source").to_numpy(
            zero_copy_only=False) == source).sum()))
    yield beam.pvalue.TaggedOutput("dupes", pa.table({
        "source": dupes.column("source"), "file": dupes.column("file"), "line": dupes.column("line"),
        "id": dupes.column("id"), "reason": pa.array(reason, pa.string()), "raw": raw_json(dupes, names)},
        schema=datasets.QUARANTINE))


def newlines(part, split: set[str]) -> tuple[str, int, int]:
    """(file, start, newlines in the range); a file read whole needs no count."""
    _, path, start, end = part
    return path, start, count_newlines(path, start, end) if path in split else 0


def build(p, config: SigilConfig, ranges: list[tuple[str, str, int, int]], job: Run) -> None:
    names, n = [a.name for a in config.ingest.attributes], config.spark.shuffle_partitions
    parts = p | "parts" >> beam.Create(ranges)
    split = {path for _, path, start, _ in ranges if start > 0}
    counted = (parts | "newlines" >> beam.Map(newlines, split)
               | "all newlines" >> beam.combiners.ToList() | "first lines" >> beam.Map(first_lines))
    parsed = parts | "parse" >> beam.FlatMap(parse, beam.pvalue.AsSingleton(counted), config).with_outputs(
        "bad", main="records")
    settled = (parsed.records | "by rid" >> beam.FlatMap(shards, ["rid"], n) | "group" >> beam.GroupByKey()
               | "duplicates" >> beam.FlatMap(settle, names).with_outputs("dupes", main="records"))
    schema = datasets.records(names)
    settled.records | "write records" >> WriteToParquetBatched(f"{job.path('records')}/part", schema=schema,
                                                               file_name_suffix=".parquet")
    ((parsed.bad, settled.dupes) | "quarantine" >> beam.Flatten()
     | "write quarantine" >> WriteToParquetBatched(f"{job.path('quarantine')}/part", schema=datasets.QUARANTINE,
                                                   file_name_suffix=".parquet"))


def parquet_files(path: str) -> list[str]:
    """The Parquet files a pipeline wrote to the directory ``path`` (none when it wrote none)."""
    return sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".parquet")) \
        if os.path.isdir(path) else []


def run(config: SigilConfig, strict: bool = False, quiet: bool = False, pipeline_args: list[str] | None = None) -> dict:
    if config.ingest is None:
        raise InputError("the configuration has no 'ingest' section")
    refuse(config, [])
    with Run("ingest", config, strict=strict, quiet=quiet, check=unchecked) as job:
        formats = {s.name: s.format for s in config.ingest.sources}
        ranges = [(name, path, start, end) for name, path in input_files(config)
                  for start, end in (line_splits(path, config.ingest.split_bytes)
                                     if formats[name] in LINE_FORMATS else [(0, -1)])]
        with job.stage("pipeline"):
            count = execute(lambda p: build(p, config, ranges, job), NAMESPACE, pipeline_args)
        names = [a.name for a in config.ingest.attributes]
        for dataset, schema in (("records", datasets.records(names)), ("quarantine", datasets.QUARANTINE)):
            if not parquet_files(job.path(dataset)):  # no rows: still a readable dataset
                os.makedirs(job.path(dataset), exist_ok=True)
                pq.write_table(schema.empty_table(), os.path.join(job.path(dataset), "part-empty.parquet"))
        sources = sorted(s.name for s in config.ingest.sources)
        good = {s: count.get(f"records:{s}", 0) for s in sources}
        bad = {s: count.get(f"bad:{s}", 0) for s in sources}
        dupes = {s: count.get(f"dupes:{s}", 0) for s in sources}
        n_quarantined = sum(bad.values()) + sum(dupes.values())
        n_records = sum(good.values()) - sum(dupes.values())

        def examples(n: int = 5) -> list[str]:
            q = pq.read_table(parquet_files(job.path("quarantine")), schema=datasets.QUARANTINE)
            q = q.sort_by([("file", "ascending"), ("line", "ascending")])
            return [f"{r['file']} line {r['line']}: {r['reason']}" for r in q.slice(0, n).to_pylist()]
        job.refuse_quarantined(n_quarantined, examples)
        for name in sources:
            job.manifest["inputs"][name] = good[name] + bad[name]
            job.manifest["quarantined"][name] = bad[name] + dupes[name]
            job.manifest["outputs"][f"records.{name}"] = good[name] - dupes[name]
        job.manifest["outputs"]["records"] = n_records
        job.manifest["metrics"]["input_rows"] = sum(good.values()) + sum(bad.values())
        job.manifest["metrics"]["quarantined_rows"] = n_quarantined
        job.log(f"{n_records} records, {n_quarantined} quarantined")
        return job.commit()
