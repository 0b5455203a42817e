"""MinHash-LSH blocking as an Apache Beam pipeline (DirectRunner by default).

The same transforms as jobs/block.py, so both engines write the same candidate pairs
from the same ingested records: signatures per Arrow batch -> band keys -> GroupByKey
per bucket -> pairs -> distinct -> two CoGroupByKey joins with the signatures ->
Jaccard scores per batch -> minimum filters -> Parquet (schemas.datasets.CANDIDATES).

Run: ``sigil block --engine beam --conf FILE``; other runners through Beam's pipeline
options, e.g. ``--set`` is for sigil, ``BEAM_OPTIONS="--runner=FlinkRunner ..."`` for Beam.
"""

from __future__ import annotations

import os
import shlex

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.parquetio import WriteToParquetBatched
from apache_beam.options.pipeline_options import PipelineOptions

from sigil.run import Run
from sigil.schemas import datasets
from sigil.schemas.config import BlockConfig, SigilConfig
from sigil.transforms.lsh import band_keys, bucket_pairs, exact_scores, lsh_shape, score_pairs
from sigil.transforms.minhash import MinHasher, signature_batch
from sigil.transforms.packing import unpack_rows
from sigil.transforms.records import InputError, list_files


class Sign(beam.DoFn):
    """Arrow table of records -> one (rid, (source, id, num_tokens, signature, tokens)) per
    record, and on the ``bands`` output ((band, key), (rid, source index, fine key)) for
    every band of every record with tokens: band keys are computed per batch, not per record."""

    def __init__(self, columns: list[str], block: BlockConfig, sources: dict[str, int]):
        self.columns, self.block, self.sources = columns, block, sources
        self.bands, self.rows = lsh_shape(block.lsh, block.minhash.num_perm)

    def setup(self):
        m = self.block.minhash
        self.hasher = MinHasher(m.num_perm, m.seed, m.scheme)

    def process(self, table: pa.Table):
        tok = self.block.tokenizer
        for batch in table.to_batches():
            sig = signature_batch(batch, self.columns, self.hasher, kind=tok.kind, q=tok.q, join=tok.join,
                                  tag_columns=tok.tag_columns, with_tokens=self.block.exact_jaccard)
            rids, sources = sig.column("rid").to_pylist(), sig.column("source").to_pylist()
            tokens = sig.column("tokens").to_pylist() if self.block.exact_jaccard else [b""] * sig.num_rows
            yield from zip(rids, zip(sources, sig.column("id").to_pylist(), sig.column("num_tokens").to_pylist(),
                                     sig.column("signature").to_pylist(), tokens))
            keys, fine = band_keys(unpack_rows(sig.column("signature"), np.uint32, self.block.minhash.num_perm),
                                   self.bands, self.rows)
            for i in np.flatnonzero(sig.column("num_tokens").to_numpy() > 0):
                for band in range(self.bands):
                    yield beam.pvalue.TaggedOutput("bands", ((band, int(keys[i, band])),
                                                             (rids[i], self.sources[sources[i]], int(fine[i, band]))))


def read_batches(path: str, columns: list[str]):
    """One Arrow table per row batch of a Parquet file."""
    for batch in pq.ParquetFile(path).iter_batches(10_000, columns=columns):
        yield pa.Table.from_batches([batch])


def bucket_to_pairs(bucket, block: BlockConfig):
    _, members = bucket
    members = list(members)
    if len(members) < 2:
        return
    rids, srcs, fine = (np.array(col, dtype=dt) for col, dt in zip(zip(*members), (np.int64, np.int32, np.int64)))
    a, b = bucket_pairs(np.array([0, len(members)]), rids, srcs, fine, block.lsh.max_bucket_size,
                        block.lsh.oversized, block.mode == "link")
    yield from zip(a.tolist(), b.tolist())


def attach_a(joined):
    """rid_a with its payload and partners -> (rid_b, (payload_a)) per partner."""
    _, groups = joined
    for payload in groups["sig"]:
        for rid_b in groups["pair"]:
            yield rid_b, payload


def attach_b(joined):
    _, groups = joined
    for payload_b in groups["sig"]:
        for payload_a in groups["half"]:
            yield payload_a, payload_b


def score(rows, block: BlockConfig):
    """A batch of (payload_a, payload_b) -> a CANDIDATES table after the minimum filters."""
    cols = {}
    for side, index in (("a", 0), ("b", 1)):
        payloads = [r[index] for r in rows]
        cols[f"source_{side}"] = pa.array([p[0] for p in payloads], pa.string())
        cols[f"id_{side}"] = pa.array([p[1] for p in payloads], pa.string())
        cols[f"signature_{side}"] = pa.array([p[3] for p in payloads], pa.binary())
        cols[f"tokens_{side}"] = pa.array([p[4] for p in payloads], pa.binary())
    batch = pa.RecordBatch.from_pydict(cols)
    jaccard = exact_scores(batch) if block.exact_jaccard else pa.nulls(batch.num_rows, pa.float32())
    batch = batch.append_column("jaccard", pa.array(jaccard, pa.float32()))
    out = pa.Table.from_batches([score_pairs(batch, block.minhash.num_perm)])
    keep = np.ones(out.num_rows, dtype=bool)
    if block.min_jaccard_estimate is not None:
        keep &= out.column("jaccard_estimate").to_numpy() >= block.min_jaccard_estimate
    if block.min_jaccard is not None:
        keep &= out.column("jaccard").to_numpy() >= block.min_jaccard
    out = out.append_column("cosine", pa.nulls(out.num_rows, pa.float32()))
    return out.filter(pa.array(keep)).cast(datasets.CANDIDATES)


def build(p, config: SigilConfig, records_path: str, columns: list[str], sources: list[str], out_prefix: str):
    block = config.block
    index = {name: i for i, name in enumerate(sources)}
    files = [f for f in list_files(records_path) if f.endswith(".parquet")]
    wanted = ["rid", "source", "id", *[c + datasets.NORM_SUFFIX for c in columns]]
    signed = (p | "files" >> beam.Create(files)
              | "read" >> beam.FlatMap(read_batches, wanted)
              | "sign" >> beam.ParDo(Sign(columns, block, index)).with_outputs("bands", main="sigs"))
    sigs = signed.sigs
    pairs = (signed.bands
             | "buckets" >> beam.GroupByKey()
             | "pairs" >> beam.FlatMap(bucket_to_pairs, block)
             | "distinct" >> beam.Distinct())
    half = ({"sig": sigs, "pair": pairs}
            | "join a" >> beam.CoGroupByKey() | "attach a" >> beam.FlatMap(attach_a))
    full = ({"sig": sigs, "half": half}
            | "join b" >> beam.CoGroupByKey() | "attach b" >> beam.FlatMap(attach_b))
    return (full
            | "batch" >> beam.BatchElements(min_batch_size=1_000, max_batch_size=50_000)
            | "score" >> beam.Map(score, block)
            | "write" >> WriteToParquetBatched(out_prefix, schema=datasets.CANDIDATES, file_name_suffix=".parquet",
                                               num_shards=1))


def run(config: SigilConfig, strict: bool = False, quiet: bool = False, pipeline_args: list[str] | None = None) -> dict:
    block = config.block
    if block is None:
        raise InputError("the configuration has no 'block' section")
    with Run("block", config, strict=strict, quiet=quiet) as job:
        records_path = config.records_path()
        dataset = pq.ParquetDataset(records_path)
        columns = config.token_columns(dataset.schema.names)
        # the source names only (one small column), to number them as the Spark job does
        sources = sorted(pc.unique(dataset.read(columns=["source"]).column("source")).to_pylist())
        args = pipeline_args if pipeline_args is not None else shlex.split(os.environ.get("BEAM_OPTIONS", ""))
        with job.stage("pipeline"):
            with beam.Pipeline(options=PipelineOptions(args or ["--runner=DirectRunner"])) as p:
                build(p, config, records_path, columns, sources, f"{job.path('candidates')}/part")
        n = pq.ParquetDataset(job.path("candidates")).read(columns=["id_a"]).num_rows
        job.manifest["outputs"]["candidates"] = n
        bands, rows = lsh_shape(block.lsh, block.minhash.num_perm)
        job.manifest["metrics"].update({"engine": "beam", "candidate_pairs": n, "bands": bands, "rows": rows})
        return job.commit()
