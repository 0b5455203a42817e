"""nlsh-block job: candidate pairs from record embeddings (neural LSH, NLSHBlock).

Stages: records repartitioned -> embeddings (``mapInArrow``: serialise ``COL a VAL v``,
encode with the model loaded once per Python worker, in batches) -> candidates, by one of

- ``topk``: the exact k nearest records by cosine. The smaller side of the blocked matrix
  product is broadcast: with the candidate side broadcast each task ranks its queries
  against all of it; with the query side broadcast each task ranks every query against
  its share of the candidates and the partial top-k lists are merged per query.
- ``ivf``: the k nearest among the records of the query's nearest k-means cells (an
  inverted file: centroids fitted on a sample, each candidate in its nearest cell, each
  query searched in its ``ivf.probes`` nearest, one matrix product per cell in
  ``applyInArrow``), for inputs whose smaller side is too large to broadcast.
- ``lsh``: random-hyperplane codes (``lsh.tables`` x ``lsh.bits``, optional multi-probe) of
  the embeddings centred on their mean (records of one domain share a direction that
  hyperplanes through the origin would not split), bucketed with the machinery of the
  MinHash blocker (hash-partitioned by table and key, oversized buckets split or skipped),
  every pair scored by its cosine.

-> optionally unioned with the MinHash candidates of the block job -> pair completeness,
pair quality, reduction ratio (and, for top-k and ivf, completeness at each k) against the truth.

Outputs under ``<output>/nlsh_block/``: ``candidates`` (schemas.datasets.CANDIDATES, with
``cosine``), ``embeddings`` (schemas.datasets.embeddings), for LSH ``bucket_sizes`` and
``oversized``, and ``manifest.json``.

Run: ``sigil nlsh-block --conf FILE`` or ``spark-submit jobs/nlsh_block.py --conf FILE``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sigil.jobs.spark.buckets import BAND_KEYS, bucket_pairs, write_statistics
from sigil.jobs.spark.io import read_input, spark_schema, write_parquet
from sigil.jobs.spark.pairs import blocking_quality, named, read_truth
from sigil.jobs.spark.session import job_run
from sigil.schemas import datasets
from sigil.schemas.config import EncoderConfig, SigilConfig
from sigil.transforms.encoder import encode, load_model, serialized
from sigil.transforms.hqi import kmeans
from sigil.transforms.nlsh import hyperplane_keys, hyperplanes, probe_cells, top_k
from sigil.transforms.packing import pack_rows, unpack_rows
from sigil.transforms.pairs import KEYS
from sigil.transforms.records import InputError

EMBEDDINGS = spark_schema(datasets.embeddings(1), packed=True)  # packed: any dimension
NEIGHBOURS = "rid_a long, rid_b long, cosine float"
PC_AT = (1, 3, 5, 10, 20, 50, 100)
SCORE_BYTES = 256 << 20  # the most one block of query-by-candidate scores may take


def encoder_settings(config: SigilConfig) -> tuple[str | None, EncoderConfig]:
    """The model directory (None: the packaged one) and encoder settings of this run. A
    trained model brings the settings it was trained with (``nlsh.json``)."""
    choice, encoder = config.nlsh_block.model, config.encoder
    if choice == "pretrained":
        return encoder.model, encoder
    path = config.stage_path("nlsh_train", "model") if choice == "trained" else choice
    meta = Path(path) / "nlsh.json"
    if not meta.is_file():
        run = "run 'sigil nlsh-train' first, or set nlsh_block.model: pretrained" if choice == "trained" else \
            "nlsh_block.model must be trained, pretrained or a directory written by nlsh-train"
        raise InputError(f"no trained model at {path}: {run}")
    trained = EncoderConfig.model_validate(json.loads(meta.read_text())["encoder"])
    return path, trained.model_copy(update={"batch_size": encoder.batch_size, "threads": encoder.threads,
                                            "precision": encoder.precision})


def embeddings(records: DataFrame, model_path: str | None, encoder: EncoderConfig, partitions: int) -> DataFrame:
    """``(rid, source, id, vector)``: each record's unit embedding packed as float32 bytes."""
    columns = encoder.columns

    def embed(batches):
        model = load_model(model_path, encoder.max_seq_length, encoder.threads, encoder.precision)  # once per worker
        for batch in batches:
            vectors = encode(model, serialized(batch, columns), encoder.batch_size, encoder.precision)
            yield pa.RecordBatch.from_pydict({"rid": batch.column("rid"), "source": batch.column("source"),
                                              "id": batch.column("id"), "vector": pack_rows(vectors)})

    return records.select("rid", "source", "id", *columns).repartition(partitions, "rid").mapInArrow(embed, EMBEDDINGS)


def packed(stored: DataFrame, dim: int) -> DataFrame:
    """Embeddings as written (``vector`` a list of floats) -> EMBEDDINGS (packed float32 bytes)."""

    def pack(batches):
        for batch in batches:
            vectors = batch.column("vector").flatten().to_numpy().reshape(-1, dim)
            yield pa.RecordBatch.from_pydict({"rid": batch.column("rid"), "source": batch.column("source"),
                                              "id": batch.column("id"), "vector": pack_rows(vectors)})

    return stored.select("rid", "source", "id", "vector").mapInArrow(pack, EMBEDDINGS)


def stored_embeddings(spark, path: str, records: DataFrame, n_records: int) -> tuple[DataFrame, int]:
    """Embeddings an earlier nlsh-block wrote (``path``) in place of encoding, with their
    dimension; they must cover exactly these records (same rid, source and id)."""
    stored = read_input(spark, path, "record embeddings", "nlsh-block")
    sizes = stored.select(F.min(F.size("vector")), F.max(F.size("vector"))).first()  # driver-ok: two numbers
    if sizes[0] != sizes[1] or not sizes[0]:
        raise InputError(f"embeddings at {path}: vectors of {sizes[0]} to {sizes[1]} dimensions")
    covered = stored.join(records.select("rid", "source", "id"), ["rid", "source", "id"])
    n, n_stored = covered.count(), stored.count()
    if n != n_records or n_stored != n_records:
        raise InputError(f"embeddings at {path} cover {n} of the {n_records} records (and hold "
                         f"{n_stored}): compute them again without nlsh_block.embeddings")
    return packed(covered, sizes[0]), sizes[0]


def _gather(side: DataFrame, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(rids sorted, vectors) of one side, on the driver (its size is checked first)."""
    table = side.select("rid", "vector").toArrow()  # driver-ok: checked against nlsh_block.broadcast_mb
    order = np.argsort(table.column("rid").to_numpy(), kind="stable")
    return table.column("rid").to_numpy()[order], unpack_rows(table.column("vector"), np.float32, dim)[order]


def top_k_pairs(spark, queries: DataFrame, base: DataFrame, n_queries: int, n_base: int, k: int, dim: int,
                block_rows: int, broadcast_mb: int) -> tuple[DataFrame, str]:
    """``(rid_a = query, rid_b, cosine, rank)``: each query's k nearest base records (never
    itself), ranked 1..k by cosine, ties by the lower rid. Returns the pairs and the side
    that was broadcast."""
    mb = min(n_queries, n_base) * dim * 4 / 2 ** 20
    if mb > broadcast_mb:
        raise InputError(f"top-k broadcasts the smaller side, {mb:.0f} MiB here, over nlsh_block.broadcast_mb="
                         f"{broadcast_mb}: raise it, or use nlsh_block.method: ivf (approximate top-k) or "
                         "nlsh_block.method: lsh")
    broadcast_side = "candidates" if n_base <= n_queries else "queries"
    shared, scanned = (base, queries) if broadcast_side == "candidates" else (queries, base)
    rids, vectors = _gather(shared, dim)
    held = spark.sparkContext.broadcast((rids, vectors))
    block_rows = max(1, min(block_rows, SCORE_BYTES // (4 * max(len(rids), 1))))  # bounds each score matrix

    def rank(batches):
        b_rids, b_vectors = held.value
        for batch in batches:
            ids = batch.column("rid").to_numpy()
            order = np.argsort(ids, kind="stable")
            ids, vecs = ids[order], unpack_rows(batch.column("vector"), np.float32, dim)[order]
            if broadcast_side == "candidates":  # every query of this batch against all candidates
                index, score = top_k(vecs, b_vectors, k, ids, b_rids, block_rows)
                q, c = np.repeat(ids, index.shape[1]), b_rids[index.clip(0)].ravel()
            else:  # every query against this batch of candidates: a partial list, merged below
                index, score = top_k(b_vectors, vecs, k, b_rids, ids, block_rows)
                q, c = np.repeat(b_rids, index.shape[1]), ids[index.clip(0)].ravel()
            keep = index.ravel() >= 0
            position = np.tile(np.arange(1, index.shape[1] + 1, dtype=np.int32), len(index))
            yield pa.RecordBatch.from_pydict({"rid_a": q[keep], "rid_b": c[keep], "cosine": score.ravel()[keep],
                                              "rank": position[keep]})

    pairs = scanned.select("rid", "vector").mapInArrow(rank, NEIGHBOURS + ", rank int")
    if broadcast_side == "candidates":  # each query's list is whole and ranked already
        return pairs, broadcast_side
    order = Window.partitionBy("rid_a").orderBy(F.desc("cosine"), "rid_b")
    merged = pairs.withColumn("rank", F.row_number().over(order))
    return merged.where(F.col("rank") <= k), broadcast_side


def ivf_pairs(spark, queries: DataFrame, base: DataFrame, n_base: int, nb, dim: int) -> tuple[DataFrame, int]:
    """``(rid_a = query, rid_b, cosine, rank)``: each query's k nearest base records among
    those of its ``ivf.probes`` nearest k-means cells, ranked 1..k by cosine, ties by the
    lower rid; and the number of cells.

    The centroids are fitted on the driver to a seeded sample of the base (about
    ``ivf.cell_size`` base records per cell). Every base record lies in its nearest cell,
    every query in its ``probes`` nearest (``probe_cells``), and each cell ranks its queries
    against its base records with one blocked matrix product (``applyInArrow``); a query's
    lists from its cells are merged."""
    ivf = nb.ivf
    sample = (base.select("rid", "vector").withColumn("_h", F.xxhash64("rid", F.lit(ivf.seed)))
              .orderBy("_h", "rid").limit(min(ivf.sample, n_base)))
    table = sample.select("vector").toArrow()  # driver-ok: ivf.sample rows
    centroids, _ = kmeans(unpack_rows(table.column("vector"), np.float32, dim), max(1, round(n_base / ivf.cell_size)),
                          seed=ivf.seed, iterations=ivf.iterations)
    held = spark.sparkContext.broadcast(centroids)

    def assign(probes: int, role: int):
        def cells_of(batches):
            for batch in batches:
                cell = probe_cells(unpack_rows(batch.column("vector"), np.float32, dim), held.value, probes)
                rows = pa.array(np.repeat(np.arange(batch.num_rows), cell.shape[1]))
                yield pa.RecordBatch.from_pydict({"cell": cell.ravel(), "role": np.full(len(rows), role, np.int8),
                                                  "rid": batch.column("rid").take(rows),
                                                  "vector": batch.column("vector").take(rows)})
        return cells_of

    schema = "cell long, role byte, rid long, vector binary"
    rows = (queries.select("rid", "vector").mapInArrow(assign(ivf.probes, 0), schema)
            .unionByName(base.select("rid", "vector").mapInArrow(assign(1, 1), schema)))
    k, block_rows = nb.k, nb.block_rows

    def search(cell: pa.Table) -> pa.Table:
        cell = cell.sort_by("rid")
        role, rid = cell.column("role").to_numpy(), cell.column("rid").to_numpy()
        vectors = unpack_rows(cell.column("vector"), np.float32, dim)
        q, b = role == 0, role == 1
        index, score = top_k(vectors[q], vectors[b], k, rid[q], rid[b], block_rows)
        keep = index.ravel() >= 0
        return pa.table({"rid_a": np.repeat(rid[q], index.shape[1])[keep], "rid_b": rid[b][index.clip(0)].ravel()[keep],
                         "cosine": score.ravel()[keep]})

    pairs = rows.groupBy("cell").applyInArrow(search, NEIGHBOURS)
    order = Window.partitionBy("rid_a").orderBy(F.desc("cosine"), "rid_b")
    ranked = pairs.withColumn("rank", F.row_number().over(order))
    return ranked.where(F.col("rank") <= k), len(centroids)


def lsh_pairs(emb: DataFrame, config: SigilConfig, dim: int, sources: list[str], stats_path: str) -> DataFrame:
    """``(rid_a, rid_b, cosine)`` of every pair sharing a hyperplane-LSH bucket; the bucket
    statistics go to ``stats_path`` as they are computed (jobs/spark/buckets.py)."""
    lsh, link = config.nlsh_block.lsh, config.er_mode() == "link"
    planes = hyperplanes(dim, lsh.tables, lsh.bits, lsh.seed)
    names = pa.array(sources)
    center = mean_vector(emb, dim) if lsh.center else np.zeros(dim, np.float32)

    def keys(batches):
        for batch in batches:
            vectors = unpack_rows(batch.column("vector"), np.float32, dim) - center
            row, table, key, fine = hyperplane_keys(vectors, planes, lsh.tables, lsh.bits, lsh.probes)
            src = pc.index_in(batch.column("source"), value_set=names).to_numpy().astype(np.int32)
            yield pa.RecordBatch.from_pydict({"band": table, "key": key, "fine": fine,
                                              "rid": batch.column("rid").to_numpy()[row], "src": src[row]})

    band_rows = emb.select("rid", "source", "vector").mapInArrow(keys, spark_schema(BAND_KEYS))
    pairs = bucket_pairs(band_rows, lsh.max_bucket_size, lsh.oversized, link, config.spark.shuffle_partitions,
                        stats_path).distinct()
    return cosines(pairs, emb, dim)


def mean_vector(emb: DataFrame, dim: int) -> np.ndarray:
    """The mean embedding, from per-batch sums."""

    def sums(batches):
        for batch in batches:
            vectors = unpack_rows(batch.column("vector"), np.float32, dim)
            total = vectors.sum(0, dtype=np.float64)[None]
            yield pa.RecordBatch.from_pydict({"n": [len(vectors)], "total": pack_rows(total)})

    rows = emb.select("vector").mapInArrow(sums, "n long, total binary").collect()  # driver-ok: one row per batch
    n = sum(r["n"] for r in rows)
    total = sum((np.frombuffer(r["total"], np.float64) for r in rows), np.zeros(dim))
    return (total / max(n, 1)).astype(np.float32)


def cosines(pairs: DataFrame, emb: DataFrame, dim: int) -> DataFrame:
    """``pairs`` (rid_a, rid_b) with the cosine of their embeddings."""
    for side in ("a", "b"):
        pairs = pairs.join(emb.select(F.col("rid").alias(f"rid_{side}"), F.col("vector").alias(f"v_{side}")),
                           f"rid_{side}")

    def score(batches):
        for batch in batches:
            va, vb = (unpack_rows(batch.column(f"v_{s}"), np.float32, dim) for s in "ab")
            yield pa.RecordBatch.from_pydict({"rid_a": batch.column("rid_a"), "rid_b": batch.column("rid_b"),
                                              "cosine": np.einsum("ij,ij->i", va, vb)})

    return pairs.mapInArrow(score, NEIGHBOURS)


def with_minhash(cands: DataFrame, spark, config: SigilConfig) -> DataFrame:
    """The union with the block job's MinHash candidates, each pair once with every score."""
    minhash = read_input(spark, config.stage_path("block", "candidates"), "MinHash candidates", "block")
    return (cands.select(*KEYS, "cosine")
            .join(minhash.select(*KEYS, "jaccard_estimate", "jaccard"), KEYS, "full_outer"))


def completeness_at_k(ranked: DataFrame, emb: DataFrame, truth: DataFrame, k: int) -> dict[str, float]:
    """Pair completeness of the top-k' lists for every k' <= k in PC_AT (and k itself)."""
    hits = named(ranked, emb, "rank").groupBy(*KEYS).agg(F.min("rank").alias("rank"))
    found = dict(hits.join(truth.select(*KEYS), KEYS).groupBy("rank").count().collect())  # driver-ok: k rows
    n_truth = truth.count()
    return {str(j): sum(c for r, c in found.items() if r <= j) / n_truth
            for j in sorted({*[j for j in PC_AT if j < k], k})} if n_truth else {}


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    nb = config.nlsh_block
    if nb is None or config.encoder is None:
        raise InputError("the configuration needs 'encoder' and 'nlsh_block' sections")
    model_path, encoder = (None, config.encoder) if nb.embeddings else encoder_settings(config)
    mode = config.er_mode()
    with job_run("nlsh_block", spark, config, strict, quiet) as job:
        path = nb.input or config.records_path()
        records = read_input(spark, path, "ingested records", "ingest")
        missing = [c for c in encoder.columns if c not in records.columns]
        if missing:
            raise InputError(f"encoder.columns {missing}: not attributes of the records at {path}")
        counts = dict(records.groupBy("source").count().collect())  # driver-ok: one row per source
        sources = sorted(counts)
        if mode == "link" and len(sources) < 2:
            raise InputError(f"block.mode=link needs at least two sources; the records have {sources}")
        metrics = job.manifest["metrics"]
        with job.stage("embeddings"):
            if nb.embeddings:
                emb, dim = stored_embeddings(spark, nb.embeddings, records, sum(counts.values()))
            else:
                emb = embeddings(records, model_path, encoder, config.spark.shuffle_partitions)
                dim = load_model(model_path, encoder.max_seq_length).get_embedding_dimension()
            n_emb = write_parquet(emb, job.path("embeddings"), datasets.embeddings(dim))
            # the costly part survives a failure of what follows; read back, not held in memory
            job.keep_on_failure("embeddings", "rerun with --set nlsh_block.embeddings={path} to skip encoding")
            emb = packed(spark.read.parquet(job.path("embeddings")), dim)
        model = nb.embeddings and f"embeddings reused from {nb.embeddings}"
        metrics.update({"model": model or model_path or "all-MiniLM-L6-v2 (packaged)", "dimensions": dim,
                        "method": nb.method, "columns": encoder.columns})
        ranked = stats_path = None
        with job.stage("candidates"):
            if nb.method in ("topk", "ivf"):
                query = nb.queries or (sources[0] if mode == "link" else None)
                if query is not None and query not in counts:
                    raise InputError(f"nlsh_block.queries={query!r} is not a source; sources: {sources}")
                queries = emb.where(F.col("source") == query) if query else emb
                base = emb.where(F.col("source") != query) if mode == "link" else emb
                n_q = counts[query] if query else n_emb
                n_b = n_emb - counts[query] if mode == "link" else n_emb
                if nb.method == "topk":
                    ranked, side = top_k_pairs(spark, queries, base, n_q, n_b, nb.k, dim, nb.block_rows,
                                               nb.broadcast_mb)
                    metrics["broadcast"] = side
                else:
                    ranked, metrics["cells"] = ivf_pairs(spark, queries, base, n_b, nb, dim)
                    metrics["probes"] = nb.ivf.probes
                ranked = ranked.persist(StorageLevel.MEMORY_AND_DISK)
                pairs = ranked.select("rid_a", "rid_b", "cosine")
                metrics.update({"k": nb.k, "queries": query or "all"})
            else:
                stats_path = job.path("bucket_stats")
                pairs = lsh_pairs(emb, config, dim, sources, stats_path)
                metrics.update({"tables": nb.lsh.tables, "bits": nb.lsh.bits, "probes": nb.lsh.probes})
            if nb.min_cosine is not None:
                pairs = pairs.where(F.col("cosine") >= nb.min_cosine)
            cands = named(pairs, emb, "cosine")
            if ranked is not None:  # a dedupe pair can be among the top k of both records: keep it once
                cands = cands.groupBy(*KEYS).agg(F.max("cosine").alias("cosine"))
            if nb.union_minhash:
                cands = with_minhash(cands, spark, config)
            n_candidates = write_parquet(cands, job.path("candidates"), datasets.CANDIDATES)
            if stats_path is not None:
                _, oversized = write_statistics(stats_path, emb.select("rid", "id"), job.path("bucket_sizes"),
                                                job.path("oversized"))
                metrics["oversized_buckets"] = oversized.num_rows
        metrics.update({"records": n_emb, "candidate_pairs": n_candidates})
        if config.truth is not None:
            with job.stage("quality"):
                truth = read_truth(spark, config, sources, records)
                metrics.update(blocking_quality(spark.read.parquet(job.path("candidates")), truth, n_candidates, counts,
                                                mode))
                if ranked is not None:
                    metrics["pair_completeness_at_k"] = completeness_at_k(ranked, emb, truth, nb.k)
        if ranked is not None:
            ranked.unpersist()
        job.manifest["inputs"]["records"] = sum(counts.values())
        job.manifest["outputs"].update({"embeddings": n_emb, "candidates": n_candidates})
        job.log_metrics("records", "candidate_pairs", "pair_completeness", "pair_quality", "reduction_ratio",
                        "pair_completeness_at_k")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/nlsh_block.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["nlsh-block", *sys.argv[1:]]))
