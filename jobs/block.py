"""Block job: MinHash-LSH candidate pairs from ingested records.

Stages: signatures (``mapInArrow``: tokenise, MinHash) -> band keys (``mapInArrow``) ->
buckets (``groupBy(band, key)``) -> pairs per bucket (``mapInArrow``, oversized buckets
skipped or split) -> distinct pairs joined with both signatures -> Jaccard estimate and
exact Jaccard (``mapInArrow``) -> minimum filters.

Outputs under ``<output>/block/``: ``candidates`` (schemas.datasets.CANDIDATES),
``signatures``, ``bucket_sizes``, ``oversized`` and ``manifest.json``; with a truth file,
pair completeness, pair quality and reduction ratio in the manifest.

Run: ``sigil block --conf FILE`` or ``spark-submit jobs/block.py --conf FILE``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sigil.jobs.io import write_parquet, write_table
from sigil.jobs.runner import Run
from sigil.schemas import datasets
from sigil.schemas.config import BlockConfig, SigilConfig
from sigil.transforms.lsh import band_keys, bucket_pairs, exact_scores, lsh_shape, score_pairs
from sigil.transforms.minhash import MinHasher, signature_batch
from sigil.transforms.packing import unpack_rows
from sigil.transforms.records import InputError

SIGNATURES = "rid long, source string, id string, num_tokens int, signature binary"
KEYS = "band int, key long, fine long, rid long, src int"
PAIRS = "rid_a long, rid_b long"


def token_columns(config: SigilConfig, records: DataFrame) -> list[str]:
    if config.block.tokenizer.columns:
        return list(config.block.tokenizer.columns)
    return [c[: -len(datasets.NORM_SUFFIX)] for c in records.columns if c.endswith(datasets.NORM_SUFFIX)]


def signatures(records: DataFrame, columns: list[str], block: BlockConfig) -> DataFrame:
    hasher = MinHasher(block.minhash.num_perm, block.minhash.seed, block.minhash.scheme)
    tok = block.tokenizer
    schema = SIGNATURES + (", tokens binary" if block.exact_jaccard else "")

    def sign(batches):
        for batch in batches:
            yield signature_batch(batch, columns, hasher, kind=tok.kind, q=tok.q, join=tok.join,
                                  tag_columns=tok.tag_columns, with_tokens=block.exact_jaccard)

    return records.select("rid", "source", "id", *[c + datasets.NORM_SUFFIX for c in columns]).mapInArrow(sign, schema)


def keys(sigs: DataFrame, sources: list[str], bands: int, rows: int, num_perm: int) -> DataFrame:
    index = {name: i for i, name in enumerate(sources)}

    def band(batches):
        for batch in batches:
            sig = unpack_rows(batch.column("signature"), np.uint32, num_perm)
            key, fine = band_keys(sig, bands, rows)
            n = batch.num_rows
            src = np.array([index[s] for s in batch.column("source").to_pylist()], np.int32)
            yield pa.RecordBatch.from_pydict({
                "band": np.tile(np.arange(bands, dtype=np.int32), n), "key": key.ravel(), "fine": fine.ravel(),
                "rid": np.repeat(batch.column("rid").to_numpy(), bands), "src": np.repeat(src, bands)})

    return sigs.where("num_tokens > 0").select("rid", "source", "signature").mapInArrow(band, KEYS)


def pairs(buckets: DataFrame, block: BlockConfig) -> DataFrame:
    lsh, cross = block.lsh, block.mode == "link"

    def emit(batches):
        for batch in batches:
            rid = batch.column("rids")
            offsets = np.asarray(rid.offsets)
            a, b = bucket_pairs(offsets, rid.values.to_numpy(), batch.column("srcs").values.to_numpy(),
                                batch.column("fines").values.to_numpy(), lsh.max_bucket_size, lsh.oversized, cross)
            yield pa.RecordBatch.from_pydict({"rid_a": a, "rid_b": b})

    return buckets.where("size > 1").select("rids", "srcs", "fines").mapInArrow(emit, PAIRS).distinct()


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
        score, "source_a string, id_a string, source_b string, id_b string, jaccard_estimate float, jaccard float")
    if block.min_jaccard_estimate is not None:
        out = out.where(F.col("jaccard_estimate") >= block.min_jaccard_estimate)
    return out


def truth_from_ids(records: DataFrame, pattern: str, mode: str) -> DataFrame:
    """Pairs of records whose ids share the entity that ``pattern``'s first group extracts."""
    ent = records.select("source", "id", F.regexp_extract("id", pattern, 1).alias("entity")).where("entity != ''")
    a = ent.select(F.col("source").alias("source_a"), F.col("id").alias("id_a"), "entity")
    b = ent.select(F.col("source").alias("source_b"), F.col("id").alias("id_b"), "entity")
    pairs = a.join(b, "entity").where(F.struct("source_a", "id_a") < F.struct("source_b", "id_b"))
    if mode == "link":
        pairs = pairs.where(F.col("source_a") != F.col("source_b"))
    return pairs.drop("entity")


def read_truth(spark, block: BlockConfig, sources: list[str], records: DataFrame) -> DataFrame:
    """Truth pairs, oriented like candidates; a file without source columns names the
    single source (dedupe) or the first and second sources (link)."""
    t = block.truth
    if t.id_regex is not None:
        return truth_from_ids(records, t.id_regex, block.mode)
    df = (spark.read.option("header", True).csv(t.path) if t.format == "csv" else spark.read.parquet(t.path))
    df = df.toDF(*[c.strip() for c in df.columns])
    if "source_a" not in df.columns:
        sa, sb = (sources[0], sources[0]) if block.mode == "dedupe" else (sources[0], sources[1])
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


def quality(candidates: DataFrame, truth: DataFrame, n_candidates: int, counts: dict[str, int], mode: str) -> dict:
    """Pair completeness (recall), pair quality (precision), reduction ratio, candidates per record."""
    keys = ["source_a", "id_a", "source_b", "id_b"]
    n_truth = truth.count()
    found = candidates.select(*keys).join(truth, keys).count()
    total = possible_pairs(counts, mode)
    return {
        "truth_pairs": n_truth, "true_candidates": found,
        "pair_completeness": found / n_truth if n_truth else None,
        "pair_quality": found / n_candidates if n_candidates else None,
        "reduction_ratio": 1 - n_candidates / total if total else None,
        "candidates_per_record": n_candidates / max(sum(counts.values()), 1),
    }


def oversized_report(buckets: DataFrame, sigs: DataFrame, max_size: int) -> DataFrame:
    """Buckets above the size limit, with up to five member ids each."""
    big = buckets.where(F.col("size") > max_size).select("band", "key", "size",
                                                         F.explode(F.slice("rids", 1, 5)).alias("rid"))
    return (big.join(sigs.select("rid", "id"), "rid").groupBy("band", "key", "size")
            .agg(F.sort_array(F.collect_list("id")).alias("sample_ids")))


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    block = config.block
    if block is None:
        raise InputError("the configuration has no 'block' section")
    job = Run("block", config, spark, strict, quiet)
    try:
        path = block.input or f"{config.output.rstrip('/')}/ingest/records"
        try:
            records = spark.read.parquet(path)
        except Exception as err:  # noqa: BLE001 - Spark raises AnalysisException for a missing path
            raise InputError(f"cannot read ingested records at {path}: run 'sigil ingest' first ({err})") from None
        columns = token_columns(config, records)
        missing = [c for c in columns if c + datasets.NORM_SUFFIX not in records.columns]
        if missing:
            raise InputError(f"block.tokenizer.columns {missing} are not attributes of the records at {path}")
        bands, rows = lsh_shape(block.lsh, block.minhash.num_perm)
        job.manifest["metrics"].update({"bands": bands, "rows": rows, "columns": columns})
        counts = dict(records.groupBy("source").count().collect())  # driver-ok: one row per source
        sources = sorted(counts)
        if block.mode == "link" and len(sources) < 2:
            raise InputError(f"block.mode=link needs at least two sources; the records have {sources}")

        with job.stage("signatures"):
            sigs = signatures(records, columns, block).persist(StorageLevel.MEMORY_AND_DISK)
            sig_schema = datasets.signatures(block.minhash.num_perm, block.exact_jaccard)
            _, empty = write_parquet(sigs, job.path("signatures"), sig_schema, empty_column="num_tokens")
        with job.stage("buckets"):
            buckets = (keys(sigs, sources, bands, rows, block.minhash.num_perm).groupBy("band", "key")
                       .agg(F.count("*").alias("size"), F.collect_list("rid").alias("rids"),
                            F.collect_list("src").alias("srcs"), F.collect_list("fine").alias("fines"))
                       .persist(StorageLevel.MEMORY_AND_DISK))
            # the histogram has a row per (band, distinct size): small by construction
            sizes = pa.Table.from_pylist([r.asDict() for r in buckets.groupBy("band", "size").agg(
                F.count("*").alias("buckets")).collect()], datasets.BUCKET_SIZES)  # driver-ok: histogram
            write_table(sizes, job.path("bucket_sizes"))
            if sizes.num_rows and max(sizes.column("size").to_pylist()) > block.lsh.max_bucket_size:
                n_oversized = write_parquet(oversized_report(buckets, sigs, block.lsh.max_bucket_size).coalesce(1),
                                            job.path("oversized"), datasets.OVERSIZED)
            else:
                n_oversized = write_table(datasets.OVERSIZED.empty_table(), job.path("oversized"))
        with job.stage("pairs"):
            candidates = scored(pairs(buckets, block), sigs, block)
            n_candidates = write_parquet(candidates, job.path("candidates"), datasets.CANDIDATES)
        buckets.unpersist()
        sigs.unpersist()
        metrics = job.manifest["metrics"]
        metrics.update({"records": sum(counts.values()), "records_without_tokens": empty,
                        "oversized_buckets": n_oversized, "candidate_pairs": n_candidates})
        if n_oversized:
            top = spark.read.parquet(job.path("oversized")).orderBy(F.desc("size")).limit(10).collect()  # driver-ok
            metrics["oversized_top"] = [r.asDict() for r in top]
            job.log(f"{n_oversized} bucket(s) over {block.lsh.max_bucket_size} members were {block.lsh.oversized}"
                    f"{'ped' if block.lsh.oversized == 'skip' else ''}; see oversized/")
        if block.truth is not None:
            with job.stage("quality"):
                cands = spark.read.parquet(job.path("candidates"))
                metrics.update(quality(cands, read_truth(spark, block, sources, records), n_candidates, counts,
                                        block.mode))
        if block.validate_output:
            job.check_quality(spark, "candidates", "candidates")
        job.manifest["inputs"]["records"] = sum(counts.values())
        job.manifest["outputs"]["candidates"] = n_candidates
        job.log(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
                          if k in ("records", "candidate_pairs", "pair_completeness", "pair_quality",
                                   "reduction_ratio", "candidates_per_record")))
        return job.commit()
    except BaseException:
        job.abort()
        raise


if __name__ == "__main__":  # spark-submit jobs/block.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["block", *sys.argv[1:]]))
