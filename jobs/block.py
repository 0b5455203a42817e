"""Block job: MinHash-LSH candidate pairs from ingested records.

Stages: signatures (``mapInArrow``: tokenise, MinHash) -> band keys (``mapInArrow``) ->
rows hash-partitioned by (band, key), so every bucket lies whole in one partition ->
per partition (``mapInArrow``): buckets, their pairs (oversized buckets skipped or split),
the size histogram -> distinct pairs joined with both token sets -> exact Jaccard and its
minimum -> the survivors joined with both signatures -> Jaccard estimate and its minimum.

Outputs under ``<output>/block/``: ``candidates`` (schemas.datasets.CANDIDATES),
``signatures``, ``bucket_sizes``, ``oversized`` and ``manifest.json``; with a truth file,
pair completeness, pair quality and reduction ratio in the manifest.

Run: ``sigil block --conf FILE`` or ``spark-submit jobs/block.py --conf FILE``.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sigil.jobs.spark.buckets import BAND_KEYS, bucket_pairs, write_statistics
from sigil.jobs.spark.io import read_input, read_task_tables, spark_schema, write_parquet, write_task_table
from sigil.jobs.spark.lookup import dataset_version, fits_in_tasks, record_index
from sigil.jobs.spark.pairs import blocking_quality, by_rid, named, read_truth
from sigil.jobs.spark.session import job_run
from sigil.run import Run
from sigil.schemas import datasets
from sigil.schemas.config import BlockConfig, SigilConfig
from sigil.transforms.lsh import BUCKET_STATS, OVERSIZED, band_keys, exact_scores, lsh_shape, score_pairs
from sigil.transforms.minhash import MinHasher, signature_batch
from sigil.transforms.packing import unpack_rows
from sigil.transforms.pairs import KEYS, oriented
from sigil.transforms.records import InputError
from sigil.transforms.rule_keys import RuleKeys

def signatures(records: DataFrame, columns: list[str], block: BlockConfig) -> DataFrame:
    hasher = MinHasher(block.minhash.num_perm, block.minhash.seed, block.minhash.scheme)
    tok = block.tokenizer
    schema = spark_schema(datasets.signatures(block.minhash.num_perm, block.exact_jaccard), packed=True)

    def sign(batches):
        for batch in batches:
            yield signature_batch(batch, columns, hasher, kind=tok.kind, q=tok.q, join=tok.join,
                                  tag_columns=tok.tag_columns, with_tokens=block.exact_jaccard)

    return records.select("rid", "source", "id", *[c + datasets.NORM_SUFFIX for c in columns]).mapInArrow(sign, schema)


def keys(sigs: DataFrame, sources: list[str], bands: int, rows: int, num_perm: int) -> DataFrame:
    names = pa.array(sources)

    def band(batches):
        for batch in batches:
            sig = unpack_rows(batch.column("signature"), np.uint32, num_perm)
            key, fine = band_keys(sig, bands, rows)
            n = batch.num_rows
            src = pc.index_in(batch.column("source"), value_set=names).to_numpy().astype(np.int32)
            yield pa.RecordBatch.from_pydict({
                "band": np.tile(np.arange(bands, dtype=np.int32), n), "key": key.ravel(), "fine": fine.ravel(),
                "rid": np.repeat(batch.column("rid").to_numpy(), bands), "src": np.repeat(src, bands)})

    return sigs.where("num_tokens > 0").select("rid", "source", "signature").mapInArrow(band, spark_schema(BAND_KEYS))


def with_sides(pairs: DataFrame, sigs: DataFrame, columns: list[str]) -> DataFrame:
    """``pairs`` (rid_a, rid_b, ...) joined with ``columns`` of both records, suffixed _a, _b."""
    for side in ("a", "b"):
        pairs = pairs.join(sigs.select(*[F.col(c).alias(f"{c}_{side}") for c in ["rid", *columns]]), f"rid_{side}")
    return pairs


def scored(candidate_ids: DataFrame, sigs: DataFrame, block: BlockConfig) -> DataFrame:
    """Candidates with their Jaccard scores, after the minimum filters.

    With exact Jaccard the token sets are joined first and the pairs below ``min_jaccard``
    dropped, so only the survivors are joined with the (larger) signatures.
    """
    if block.exact_jaccard:
        def exact(batches):
            for batch in batches:
                yield pa.RecordBatch.from_pydict({"rid_a": batch.column("rid_a"), "rid_b": batch.column("rid_b"),
                                                  "jaccard": exact_scores(batch)})

        candidate_ids = with_sides(candidate_ids, sigs, ["tokens"]).mapInArrow(
            exact, "rid_a long, rid_b long, jaccard float")
        if block.min_jaccard is not None:
            candidate_ids = candidate_ids.where(F.col("jaccard") >= block.min_jaccard)
    else:
        candidate_ids = candidate_ids.withColumn("jaccard", F.lit(None).cast("float"))
    num_perm = block.minhash.num_perm

    def score(batches):
        for batch in batches:
            yield score_pairs(batch, num_perm)

    out = with_sides(candidate_ids, sigs, ["source", "id", "signature"]).mapInArrow(
        score, spark_schema(datasets.select(datasets.CANDIDATES, *KEYS, "jaccard_estimate", "jaccard")))
    if block.min_jaccard_estimate is not None:
        out = out.where(F.col("jaccard_estimate") >= block.min_jaccard_estimate)
    return out


def rule_key(parts: list[str]):
    """The key of a rule: its parts' normalised values joined, null when any is missing."""
    cols = []
    for part in parts:
        name, _, cut = part.partition("[")
        col = F.col(name + datasets.NORM_SUFFIX)
        if cut:
            start, stop = (int(x) if x else None for x in cut.rstrip("]").split(":"))
            start = start or 0
            col = F.substring(col, start + 1, (stop - start) if stop is not None else 1 << 30)
        cols.append(F.when(F.trim(col) != "", col))
    return F.concat_ws("\x1f", *cols).alias("key") if len(cols) > 1 else cols[0].alias("key"), cols


def rule_pairs(records: DataFrame, block: BlockConfig, sources: list[str], partitions: int,
               stats_path: str) -> tuple[DataFrame, list[DataFrame]]:
    """Candidate rids (rid_a < rid_b) from equality rules, and the oversized keys of cross
    rules skipped (rule, key hash, size); those of the other rules are among the bucket
    statistics written to ``stats_path``.

    A rule's key shared by more than ``max_rule_group`` records would emit the square of
    that many pairs, so it is skipped and reported instead. A rule of one key is exact
    banding: every rule's keys go through the LSH bucket machinery together (one scan, one
    shuffle, pairs per bucket in numba, see jobs/spark/buckets.py). A cross rule (x's left key
    equals y's right key) is an equi-join of the two keys.
    """
    src = F.create_map(*[x for i, s in enumerate(sources) for x in (F.lit(s), F.lit(i))])[F.col("source")]
    pairs, skipped, banded = [], [], []
    for index, rule in enumerate(block.rules):
        if isinstance(rule, list):
            key, cols = rule_key(rule)
            present = functools.reduce(lambda x, y: x & y, [c.isNotNull() for c in cols])
            banded.append(F.struct(F.lit(index).alias("band"), F.when(present, F.xxhash64(key)).alias("key")))
            continue
        sides = []
        for side, parts in (("a", rule.left), ("b", rule.right)):
            key, cols = rule_key(parts)
            present = functools.reduce(lambda x, y: x & y, [c.isNotNull() for c in cols])
            sides.append(records.where(present).select(F.col("rid").alias(f"rid_{side}"),
                                                       F.col("source").alias(f"src_{side}"), key))
        big = sides[0].groupBy("key").count().where(F.col("count") > block.max_rule_group)
        skipped.append(big.select(F.lit(index).alias("rule"), F.xxhash64("key").alias("key"), F.col("count").alias("size")))
        a, b = (s.join(big, "key", "left_anti") for s in sides)
        joined = a.join(b, "key").where(F.col("rid_a") != F.col("rid_b"))
        if block.mode == "link":
            joined = joined.where(F.col("src_a") != F.col("src_b"))
        pairs.append(joined.select(F.least("rid_a", "rid_b").alias("rid_a"), F.greatest("rid_a", "rid_b").alias("rid_b")))
    if banded:
        keys = records.select("rid", src.cast("int").alias("src"), F.explode(F.array(*banded)).alias("k"))
        keys = keys.where(F.col("k.key").isNotNull()).select(
            F.col("k.band").cast("int").alias("band"), F.col("k.key").alias("key"),
            F.lit(0).cast("long").alias("fine"), "rid", "src")
        pairs.append(bucket_pairs(keys, block.max_rule_group, "skip", block.mode == "link", partitions, stats_path))
    return _union(pairs).distinct(), skipped


def _union(frames: list[DataFrame]) -> DataFrame:
    out = frames[0]
    for more in frames[1:]:
        out = out.unionByName(more)
    return out


SKIPPED_KEYS = pa.schema([("rule", pa.int64()), ("key", pa.int64()), ("size", pa.int64())])


def rule_candidates(spark, path: str, records: DataFrame, block: BlockConfig, sources: list[str], partitions: int,
                    job: Run) -> int:
    """Write the candidates of rule blocking (no Jaccard: the rules are the evidence) and
    report the keys skipped as shared by too many records; returns the candidates.

    The rules run in tasks that hold the records' key columns when Spark would broadcast
    them anyway (``_held_rule_candidates``), else by a shuffle
    (``_shuffled_rule_candidates``); both give the same candidates."""
    columns = ["rid", "source", "id", *(c + datasets.NORM_SUFFIX for c in block.rule_columns())]
    if fits_in_tasks(spark, records.select(*columns)):
        n, skipped = _held_rule_candidates(spark, path, block, sources, job)
    else:
        n, skipped = _shuffled_rule_candidates(records, block, sources, partitions, job)
    top = [{"rule": rule, "key": key, "size": size}
           for rule, key, size in sorted(skipped, key=lambda r: (-r[2], r[0], r[1]))[:10]]
    job.manifest["metrics"]["skipped_rule_keys"] = top
    if top:
        job.log(f"rule keys shared by more than {block.max_rule_group} records were skipped, e.g. {top[0]}")
    return n


def _held_rule_candidates(spark, path: str, block: BlockConfig, sources: list[str], job: Run) -> tuple[int, set]:
    """Rule blocking by tasks that each read the records' key columns (jobs/spark/lookup.py)
    and pair the keys of one slice (transforms/rule_keys.py): every pair from the first rule
    that finds it, so no shuffle and no distinct. Writes the candidates; returns how many,
    and the skipped keys (rule, key hash, size)."""
    version, columns = dataset_version(path), [c + datasets.NORM_SUFFIX for c in block.rule_columns()]
    slices, stats_path = 4 * spark.sparkContext.defaultParallelism, job.path("skipped_keys")

    def slice_candidates(batch: pa.RecordBatch) -> pa.RecordBatch:
        index = record_index(version)
        keys = index.cached(("rules", repr(block.rules), block.max_rule_group),
                            lambda: RuleKeys(index.table(columns), block.rules, block.max_rule_group))
        src = index.cached(("source codes", tuple(sources)), lambda: pc.index_in(
            index.column("source"), value_set=pa.array(sources)).to_numpy())
        (t,) = batch.column("id").to_numpy()
        x, y, skipped = keys.pairs(int(t), slices, src, block.mode == "link")
        if skipped:
            write_task_table(pa.Table.from_pylist([dict(zip(SKIPPED_KEYS.names, s)) for s in skipped], SKIPPED_KEYS),
                             stats_path)
        source, ids = index.column("source"), index.column("id")
        x, y = pa.array(x), pa.array(y)
        return pa.RecordBatch.from_pydict(oriented(source.take(x), ids.take(x), source.take(y), ids.take(y)))

    n = write_parquet(spark.range(slices, numPartitions=slices), job.path("candidates"), datasets.CANDIDATES,
                      transform=slice_candidates)
    return n, {tuple(r.values()) for r in read_task_tables(stats_path, SKIPPED_KEYS).to_pylist()}


def _shuffled_rule_candidates(records: DataFrame, block: BlockConfig, sources: list[str], partitions: int,
                              job: Run) -> tuple[int, set]:
    """Rule blocking by Spark (``rule_pairs``), for records too large for every task to
    hold. Writes the candidates; returns how many, and the skipped keys (rule, key hash,
    size)."""
    stats_path = job.path("bucket_stats")
    ids, cross_skipped = rule_pairs(records, block, sources, partitions, stats_path)
    out = named(ids, records).select(*KEYS, F.lit(None).cast("float").alias("jaccard_estimate"),
                                     F.lit(None).cast("float").alias("jaccard"))
    n = write_parquet(out, job.path("candidates"), datasets.CANDIDATES)
    skipped = {(r["a"], r["b"], r["c"]) for r in read_task_tables(stats_path, BUCKET_STATS).to_pylist()
               if r["kind"] == OVERSIZED}
    for frame in cross_skipped:
        skipped |= {tuple(r) for r in frame.orderBy(F.desc("size")).limit(10).collect()}  # driver-ok: 10 rows
    return n, skipped


def minhash_candidates(records: DataFrame, columns: list[str], sources: list[str], block: BlockConfig,
                       partitions: int, job: Run, truth: DataFrame | None = None) -> int:
    """Signatures -> LSH buckets -> scored candidates; bucket statistics into the manifest,
    with what the bucket cap cost when there were oversized buckets and a ``truth``."""
    bands, rows = lsh_shape(block.lsh, block.minhash.num_perm)
    metrics = job.manifest["metrics"]
    metrics.update({"bands": bands, "rows": rows, "columns": columns})
    with job.stage("signatures"):
        sigs = signatures(records, columns, block).persist(StorageLevel.MEMORY_AND_DISK)
        sig_schema = datasets.signatures(block.minhash.num_perm, block.exact_jaccard)
        _, empty = write_parquet(sigs, job.path("signatures"), sig_schema, empty_column="num_tokens")
    with job.stage("pairs"):
        stats_path = job.path("bucket_stats")
        bucketed = keys(sigs, sources, bands, rows, block.minhash.num_perm)
        pairs = bucket_pairs(bucketed, block.lsh.max_bucket_size, block.lsh.oversized, block.mode == "link",
                             partitions, stats_path).distinct()
        n_candidates = write_parquet(scored(pairs, sigs, block), job.path("candidates"), datasets.CANDIDATES)
        _, oversized = write_statistics(stats_path, sigs.select("rid", "id"), job.path("bucket_sizes"),
                                        job.path("oversized"))
    metrics.update({"records_without_tokens": empty, "oversized_buckets": oversized.num_rows})
    if oversized.num_rows:
        sizes = np.array(oversized.column("size").to_pylist(), dtype=np.int64)
        metrics.update({"oversized_top": sorted(oversized.to_pylist(), key=lambda b: -b["size"])[:10],
                        "oversized_pairs_held": int((sizes * (sizes - 1) // 2).sum())})
        done = {"skip": "skipped", "split": "split by their next band"}[block.lsh.oversized]
        job.log(f"{oversized.num_rows} bucket(s) over {block.lsh.max_bucket_size} members were {done}; "
                f"they hold {metrics['oversized_pairs_held']:,} pairs; see oversized/")
        if truth is not None:
            with job.stage("cap cost"):
                lost = cap_cost(bucketed, oversized, truth, sigs, job.path("candidates"), block)
            metrics["cap_lost_true_pairs"] = lost
            job.log(f"block.lsh.max_bucket_size={block.lsh.max_bucket_size} cost {lost} true pair(s) that an "
                    "uncapped run would have kept", logging.WARNING if lost else logging.INFO)
    sigs.unpersist()
    return n_candidates


def cap_cost(bucketed: DataFrame, oversized: pa.Table, truth: DataFrame, sigs: DataFrame, candidates_path: str,
             block: BlockConfig) -> int:
    """The true pairs that ``max_bucket_size`` cost: pairs of the truth that share a band's
    oversized bucket, pass the minimum filters, and are not candidates. Only the truth's
    pairs are scored, so the cost is known without generating what the cap held back."""
    spark = bucketed.sparkSession
    big = spark.createDataFrame(oversized.select(["band", "key"]).to_pylist(), "band int, key long")
    members = bucketed.join(F.broadcast(big), ["band", "key"]).select("band", "key", "rid")
    pairs = by_rid(truth)
    shared = (pairs.join(members.withColumnRenamed("rid", "rid_a"), "rid_a")
              .join(members.withColumnRenamed("rid", "rid_b"), ["band", "key", "rid_b"])
              .select("rid_a", "rid_b").distinct())
    found = by_rid(spark.read.parquet(candidates_path))
    missed = shared.join(found, ["rid_a", "rid_b"], "left_anti")
    return scored(missed, sigs, block).count()


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    block = config.block
    if block is None:
        raise InputError("the configuration has no 'block' section")
    with job_run("block", spark, config, strict, quiet) as job:
        path = config.records_path()
        records = read_input(spark, path, "ingested records", "ingest")
        columns = config.token_columns(records.columns) if block.method == "minhash" else block.rule_columns()
        missing = [c for c in columns if c + datasets.NORM_SUFFIX not in records.columns]
        if missing:
            what = "block.tokenizer.columns" if block.method == "minhash" else "block.rules name"
            raise InputError(f"{what} {missing}: not attributes of the records at {path}")
        counts = dict(records.groupBy("source").count().collect())  # driver-ok: one row per source
        sources = sorted(counts)
        if block.mode == "link" and len(sources) < 2:
            raise InputError(f"block.mode=link needs at least two sources; the records have {sources}")
        truth = read_truth(spark, config, sources, records) if config.truth is not None else None
        if block.method == "rules":
            with job.stage("rules"):
                n_candidates = rule_candidates(spark, path, records, block, sources, config.spark.shuffle_partitions,
                                               job)
        else:
            n_candidates = minhash_candidates(records, columns, sources, block, config.spark.shuffle_partitions, job,
                                              truth)
        metrics = job.manifest["metrics"]
        metrics.update({"records": sum(counts.values()), "candidate_pairs": n_candidates})
        if config.truth is not None:
            with job.stage("quality"):
                cands = spark.read.parquet(job.path("candidates"))
                metrics.update(blocking_quality(cands, truth, n_candidates, counts, block.mode))
        job.manifest["inputs"]["records"] = sum(counts.values())
        job.manifest["outputs"]["candidates"] = n_candidates
        job.log_metrics("records", "candidate_pairs", "pair_completeness", "pair_quality", "reduction_ratio",
                        "candidates_per_record")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/block.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["block", *sys.argv[1:]]))
