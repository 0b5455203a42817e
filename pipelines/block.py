"""MinHash-LSH blocking as an Apache Beam pipeline (DirectRunner by default).

The same transforms and the same outputs as jobs/block.py, so both engines write equal
datasets from the same ingested records (tests/test_beam.py compares every one):
``signatures``, ``candidates``, ``bucket_sizes``, ``oversized`` and the manifest's metrics,
with pair completeness, pair quality and reduction ratio when the configuration has a
truth. Elements are Arrow tables, never single records: Parquet through Beam's own sharded
I/O (``ReadFromParquetBatched``, ``WriteToParquetBatched``), and every shuffle keyed by a
shard, ``pmod(xxhash64(key columns), shards)`` with ``shards = spark.shuffle_partitions``,
as Spark hash-partitions them:

records -> signatures (per table) -> band-key rows sharded by (band, key), so that a bucket
lies whole in one shard -> per shard: buckets, their pairs (oversized buckets skipped or
split) and statistics -> pairs sharded by (rid_a, rid_b) and made distinct -> joined with
both records' signatures by rid -> exact Jaccard, Jaccard estimate and their minimum
filters -> candidates. The truth's pairs meet the candidates in shards of (rid_a, rid_b)
and are counted with Beam metrics.

The Beam engine does MinHash blocking only: a configuration it cannot honour
(``block.method: rules``, ``quality.validate_output: fail``) fails at once with the key named.

Run: ``sigil block --engine beam --conf FILE``; other runners through Beam's pipeline
options, e.g. ``--set`` is for sigil, ``BEAM_OPTIONS="--runner=FlinkRunner ..."`` for Beam.
"""

from __future__ import annotations


import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.parquetio import ReadFromParquetBatched, WriteToParquetBatched
from apache_beam.metrics.metric import Metrics

from sigil.pipelines.beam.engine import execute, refuse, unchecked
from sigil.pipelines.beam.pairs import PAIRS, concat, count_truth, distinct, rid_pairs, shards
from sigil.run import Run
from sigil.schemas import datasets
from sigil.schemas.config import BlockConfig, SigilConfig
from sigil.transforms.lsh import BUCKET_STATS, band_keys, bucket_statistics, exact_scores, lsh_shape, \
    oversized_buckets, oversized_samples, partition_buckets, score_pairs, size_histogram
from sigil.transforms.minhash import MinHasher, signature_batch
from sigil.transforms.packing import to_contract, unpack_rows
from sigil.transforms.pairs import KEYS
from sigil.transforms.quality import blocking_scores
from sigil.transforms.records import InputError, list_files

NAMESPACE = "sigil.block"


def unsupported(config: SigilConfig) -> list[str]:
    """The configuration keys the Beam engine cannot honour, with what they ask."""
    block = config.block
    out = []
    if block.method != "minhash":
        out.append(f"block.method: {block.method} (the Beam engine blocks by MinHash-LSH only; use --engine spark)")
    return out


class Sign(beam.DoFn):
    """A table of records -> its signatures (signature and tokens packed), counting records
    per source and those without tokens."""

    def __init__(self, columns: list[str], block: BlockConfig):
        self.columns, self.block = columns, block

    def setup(self):
        m = self.block.minhash
        self.hasher = MinHasher(m.num_perm, m.seed, m.scheme)

    def process(self, table: pa.Table):
        tok = self.block.tokenizer
        for batch in table.to_batches():
            sig = signature_batch(batch, self.columns, self.hasher, kind=tok.kind, q=tok.q, join=tok.join,
                                  tag_columns=tok.tag_columns, with_tokens=self.block.exact_jaccard)
            for source, n in zip(*np.unique(sig.column("source").to_numpy(zero_copy_only=False), return_counts=True)):
                Metrics.counter(NAMESPACE, f"records:{source}").inc(int(n))
            Metrics.counter(NAMESPACE, "records_without_tokens").inc(
                int((sig.column("num_tokens").to_numpy() == 0).sum()))
            yield pa.Table.from_batches([sig])


def band_rows(sig: pa.Table, sources: list[str], bands: int, rows: int, num_perm: int, n: int):
    """Band-key rows (BAND_KEYS of jobs/spark/buckets.py) of the records with tokens,
    sharded by (band, key)."""
    sig = sig.filter(pc.greater(sig.column("num_tokens"), 0))
    if sig.num_rows == 0:
        return
    key, fine = band_keys(unpack_rows(sig.column("signature"), np.uint32, num_perm), bands, rows)
    src = pc.index_in(sig.column("source"), value_set=pa.array(sources)).to_numpy().astype(np.int32)
    t = pa.table({"band": np.tile(np.arange(bands, dtype=np.int32), sig.num_rows), "key": key.ravel(),
                  "fine": fine.ravel(), "rid": np.repeat(sig.column("rid").to_numpy(), bands),
                  "src": np.repeat(src, bands)})
    yield from shards(t, ["band", "key"], n)


def shard_pairs(item, block: BlockConfig):
    """One shard's band-key rows -> their buckets' pairs, and their statistics (tagged)."""
    _, tables = item
    t = concat(tables, pa.schema([]))
    out = partition_buckets(*(t.column(c).to_numpy() for c in ("band", "key", "fine", "rid", "src")),
                            block.lsh.max_bucket_size, block.lsh.oversized, block.mode == "link")
    yield beam.pvalue.TaggedOutput("stats", bucket_statistics(out))
    a, b = out["pairs"]
    if len(a):
        yield pa.table({"rid_a": a, "rid_b": b}, schema=PAIRS)


def attach(item, side: str, columns: list[str]) -> pa.Table:
    """One shard's pairs with ``columns`` of their side-``side`` records, suffixed."""
    _, groups = item
    pairs, sigs = concat(groups["pairs"], PAIRS), concat(groups["sigs"], pa.schema([]))
    if pairs.num_rows == 0:
        return pairs
    rid = sigs.column("rid").to_numpy()
    order = np.argsort(rid)
    rows = sigs.take(order[np.searchsorted(rid[order], pairs.column(f"rid_{side}").to_numpy())])
    for c in columns:  # every pair's records have signatures: the pairs came from them
        pairs = pairs.append_column(f"{c}_{side}", rows.column(c))
    return pairs


def score(pairs: pa.Table, block: BlockConfig, counter: str = "candidate_pairs") -> pa.Table:
    """Joined pairs -> CANDIDATES rows after the minimum filters (jobs/block.scored),
    counted as ``counter``."""
    if pairs.num_rows == 0:  # a shard without pairs has no sides attached
        return datasets.CANDIDATES.empty_table()
    if block.exact_jaccard:
        jaccard = pa.array(exact_scores(pairs), pa.float32())
    else:
        jaccard = pa.nulls(pairs.num_rows, pa.float32())
    pairs = pairs.append_column("jaccard", jaccard)
    if block.min_jaccard is not None:
        pairs = pairs.filter(pc.greater_equal(pairs.column("jaccard"), block.min_jaccard))
    out = pa.Table.from_batches([score_pairs(b, block.minhash.num_perm) for b in pairs.to_batches()]) \
        if pairs.num_rows else datasets.select(datasets.CANDIDATES, *KEYS, "jaccard_estimate", "jaccard").empty_table()
    if block.min_jaccard_estimate is not None:
        out = out.filter(pc.greater_equal(out.column("jaccard_estimate"), block.min_jaccard_estimate))
    out = out.append_column("cosine", pa.nulls(out.num_rows, pa.float32()))
    Metrics.counter(NAMESPACE, counter).inc(out.num_rows)
    return out.cast(datasets.CANDIDATES)


def write(tables, path: str, schema: pa.Schema, label: str, shards_out: int = 0):
    return (tables | f"{label} to contract" >> beam.Map(lambda t: pa.Table.from_batches(
        [to_contract(b, schema) for b in t.to_batches()], schema))
        | f"write {label}" >> WriteToParquetBatched(f"{path}/part", schema=schema, file_name_suffix=".parquet",
                                                    num_shards=shards_out))


def build(p, config: SigilConfig, records_path: str, columns: list[str], sources: list[str], job: Run) -> None:
    block, n = config.block, config.spark.shuffle_partitions
    bands, rows = lsh_shape(block.lsh, block.minhash.num_perm)
    wanted = ["rid", "source", "id", *[c + datasets.NORM_SUFFIX for c in columns]]
    sigs = (p | "read" >> ReadFromParquetBatched(f"{records_path.rstrip('/')}/*.parquet", columns=wanted)
            | "sign" >> beam.ParDo(Sign(columns, block)))
    write(sigs, job.path("signatures"), datasets.signatures(block.minhash.num_perm, block.exact_jaccard),
          "signatures")
    keyed = sigs | "band keys" >> beam.FlatMap(band_rows, sources, bands, rows, block.minhash.num_perm, n)
    buckets = (keyed | "buckets" >> beam.GroupByKey()
               | "bucket pairs" >> beam.FlatMap(shard_pairs, block).with_outputs("stats", main="pairs"))
    pairs = (buckets.pairs | "shard pairs" >> beam.FlatMap(shards, ["rid_a", "rid_b"], n)
             | "group pairs" >> beam.GroupByKey() | "distinct" >> beam.MapTuple(lambda _, tables: distinct(tables)))
    candidates = scored(pairs, sigs, block, n, "candidates")
    write(candidates, job.path("candidates"), datasets.CANDIDATES, "candidates")

    stats = buckets.stats | "statistics" >> beam.CombineGlobally(lambda ts: concat(ts, BUCKET_STATS))
    write(stats | "histogram" >> beam.Map(size_histogram), job.path("bucket_sizes"), datasets.BUCKET_SIZES,
          "bucket sizes", 1)
    samples = stats | "samples" >> beam.Map(lambda s: pa.array(oversized_samples(s), pa.int64()))
    named = (sigs | "sample names" >> beam.Map(lambda t, ids: t.select(["rid", "id"]).filter(
        pc.is_in(t.column("rid"), value_set=ids)), beam.pvalue.AsSingleton(samples))
             | "all names" >> beam.CombineGlobally(lambda ts: concat(ts, pa.schema([("rid", pa.int64()),
                                                                                    ("id", pa.string())]))))
    oversized = named | "oversized" >> beam.Map(lambda t, s: oversized_buckets(s, dict(zip(
        t.column("rid").to_pylist(), t.column("id").to_pylist()))), beam.pvalue.AsSingleton(stats))
    write(oversized, job.path("oversized"), datasets.OVERSIZED, "oversized", 1)

    if config.truth is not None:
        truth = count_truth(p, config, sigs, candidates, sources, NAMESPACE, "quality")
        cap_cost(truth, keyed, oversized, candidates, sigs, block, n)


def scored(pairs, sigs, block: BlockConfig, n: int, label: str, counter: str = "candidate_pairs"):
    """Pairs (rid_a, rid_b) with both records' signatures attached, scored and filtered."""
    payload = ["source", "id", "signature", *(["tokens"] if block.exact_jaccard else [])]
    for side in ("a", "b"):
        pairs = ({"pairs": pairs | f"{label}: pairs by rid_{side}" >> beam.FlatMap(shards, [f"rid_{side}"], n),
                  "sigs": sigs | f"{label}: signatures by rid ({side})" >> beam.FlatMap(shards, ["rid"], n)}
                 | f"{label}: join {side}" >> beam.CoGroupByKey()
                 | f"{label}: attach {side}" >> beam.Map(attach, side, payload))
    return pairs | f"{label}: score" >> beam.Map(score, block, counter)


def cap_cost(truth, keyed, oversized, candidates, sigs, block: BlockConfig, n: int) -> None:
    """Count as ``cap_lost_true_pairs`` the truth pairs that share an oversized bucket, pass
    the minimum filters and are not candidates (jobs/block.cap_cost)."""
    members = (keyed | "cap: oversized members" >> beam.Map(
        lambda item, big: item[1].join(big.select(["band", "key"]), ["band", "key"], join_type="inner")
        .select(["band", "key", "rid"]),
        beam.pvalue.AsSingleton(oversized)) | "cap: members by rid" >> beam.FlatMap(shards, ["rid"], n))
    side_a = ({"pairs": truth | "cap: truth by rid_a" >> beam.FlatMap(shards, ["rid_a"], n), "members": members}
              | "cap: meet a" >> beam.CoGroupByKey() | "cap: buckets of a" >> beam.Map(_in_buckets, "a"))
    shared = ({"pairs": side_a | "cap: by rid_b" >> beam.FlatMap(shards, ["rid_b"], n), "members": members}
              | "cap: meet b" >> beam.CoGroupByKey() | "cap: buckets of both" >> beam.Map(_in_buckets, "b"))
    missed = ({"shared": shared | "cap: shared shards" >> beam.FlatMap(shards, ["rid_a", "rid_b"], n),
               "found": candidates | "cap: candidate keys" >> beam.Map(rid_pairs)
               | "cap: candidate shards" >> beam.FlatMap(shards, ["rid_a", "rid_b"], n)}
              | "cap: meet candidates" >> beam.CoGroupByKey() | "cap: missed" >> beam.MapTuple(
                  lambda _, g: distinct(g["shared"]).join(concat(g["found"], PAIRS), ["rid_a", "rid_b"],
                                                          join_type="left anti")))
    scored(missed, sigs, block, n, "cap", "cap_lost_true_pairs")


def _in_buckets(item, side: str) -> pa.Table:
    """One shard of pairs and oversized-bucket members: side ``a``, each pair with the
    buckets of its record a; side ``b``, the pairs whose record b is in one of them too."""
    _, groups = item
    members = concat(groups["members"], pa.schema([("band", pa.int32()), ("key", pa.int64()), ("rid", pa.int64())]))
    pairs = concat(groups["pairs"], PAIRS if side == "a" else pa.schema([]))
    if pairs.num_rows == 0 or members.num_rows == 0:
        return pa.table({"rid_a": [], "rid_b": []}, schema=PAIRS) if side == "b" else \
            pa.table({"rid_a": [], "rid_b": [], "band": [], "key": []}, schema=_BUCKETED)
    members = members.rename_columns(["band", "key", f"rid_{side}"])
    if side == "a":
        return pairs.join(members, "rid_a", join_type="inner").select(_BUCKETED.names).cast(_BUCKETED)
    return pairs.join(members, ["rid_b", "band", "key"], join_type="inner").select(["rid_a", "rid_b"])


_BUCKETED = pa.schema([("rid_a", pa.int64()), ("rid_b", pa.int64()), ("band", pa.int32()), ("key", pa.int64())])


def run(config: SigilConfig, strict: bool = False, quiet: bool = False, pipeline_args: list[str] | None = None) -> dict:
    block = config.block
    if block is None:
        raise InputError("the configuration has no 'block' section")
    refuse(config, unsupported(config))
    with Run("block", config, strict=strict, quiet=quiet, check=unchecked) as job:
        records_path = config.records_path()
        list_files(records_path)
        dataset = pq.ParquetDataset(records_path)
        columns = config.token_columns(dataset.schema.names)
        missing = [c for c in columns if c + datasets.NORM_SUFFIX not in dataset.schema.names]
        if missing:
            raise InputError(f"block.tokenizer.columns {missing}: not attributes of the records at {records_path}")
        # the source names only (one small column), to number them as the Spark job does
        sources = sorted(pc.unique(dataset.read(columns=["source"]).column("source")).to_pylist())
        if block.mode == "link" and len(sources) < 2:
            raise InputError(f"block.mode=link needs at least two sources; the records have {sources}")
        bands, rows = lsh_shape(block.lsh, block.minhash.num_perm)
        metrics = job.manifest["metrics"]
        metrics.update({"bands": bands, "rows": rows, "columns": columns})
        with job.stage("pipeline"):
            count = execute(lambda p: build(p, config, records_path, columns, sources, job), NAMESPACE,
                            pipeline_args)
        counts = {s: count.get(f"records:{s}", 0) for s in sources}
        n_candidates = count.get("candidate_pairs", 0)
        oversized = pq.read_table(job.path("oversized"), schema=datasets.OVERSIZED)
        metrics.update({"records_without_tokens": count.get("records_without_tokens", 0),
                        "oversized_buckets": oversized.num_rows})
        if oversized.num_rows:
            sizes = np.array(oversized.column("size").to_pylist(), dtype=np.int64)
            metrics.update({"oversized_top": sorted(oversized.to_pylist(), key=lambda b: -b["size"])[:10],
                            "oversized_pairs_held": int((sizes * (sizes - 1) // 2).sum())})
            if config.truth is not None:
                metrics["cap_lost_true_pairs"] = count.get("cap_lost_true_pairs", 0)
        metrics.update({"records": sum(counts.values()), "candidate_pairs": n_candidates})
        if config.truth is not None:
            metrics.update(blocking_scores(count.get("true_pairs", 0), count.get("truth_pairs", 0), n_candidates,
                                           counts, block.mode))
        job.manifest["inputs"]["records"] = sum(counts.values())
        job.manifest["outputs"]["candidates"] = n_candidates
        job.log_metrics("records", "candidate_pairs", "pair_completeness", "pair_quality", "reduction_ratio",
                        "candidates_per_record")
        return job.commit()
