"""Graph-index job: every vertex's neighbourhood MinHash signature and their LSH index.

Stages: (owner, member) rows from the edges (in-neighbours by default, as the paper hashes
followers; out- or all-neighbours by configuration; undirected edges count both ways),
plus one row per vertex (itself with ``include_self``, else an empty marker) ->
hash-partitioned by owner and sorted -> per partition (``mapInArrow``): each owner's set,
MinHashed in one numba pass over the partition (transforms/communities.py) -> band keys
-> hash-partitioned by (band, key) -> per partition: buckets, their size histogram,
oversized buckets; the index keeps the members of buckets of 2 to ``lsh.max_bucket_size``
vertices (a singleton pairs nothing, an oversized bucket pairs too much).

Outputs under ``<output>/graph_index/``: ``signatures``
(schemas.datasets.neighbourhood_signatures), ``lsh`` (LSH_INDEX), ``bucket_sizes``
(BUCKET_SIZES), ``oversized`` (OVERSIZED, with sample vertices) and ``manifest.json``.

Run: ``sigil graph-index --conf FILE`` or ``spark-submit jobs/graph_index.py --conf FILE``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sigil.jobs.spark.buckets import write_statistics
from sigil.jobs.spark.io import read_input, spark_schema, write_parquet, write_task_table
from sigil.jobs.spark.session import job_run
from sigil.run import previous_manifest
from sigil.schemas import datasets
from sigil.schemas.config import GraphIndexConfig, SigilConfig
from sigil.transforms.communities import neighbourhood_signatures
from sigil.transforms.lsh import HISTOGRAM, band_keys, bucket_members, bucket_statistics, lsh_shape
from sigil.transforms.minhash import MinHasher
from sigil.transforms.packing import pack_rows, unpack_rows
from sigil.transforms.records import InputError

def neighbour_rows(edges: DataFrame, vertices: DataFrame, index: GraphIndexConfig, directed: bool) -> DataFrame:
    """``(owner, member)``: member is in owner's hashed set; every vertex has a row (member
    -1 when it has no set of its own)."""
    forward = edges.select(F.col("src").alias("owner"), F.col("dst").alias("member"))
    backward = edges.select(F.col("dst").alias("owner"), F.col("src").alias("member"))
    if not directed or index.neighbourhood == "all":
        rows = forward.union(backward)
    else:
        rows = backward if index.neighbourhood == "in" else forward
    self_rows = vertices.select(F.col("vid").alias("owner"),
                                (F.col("vid") if index.include_self else F.lit(-1).cast("long")).alias("member"))
    return rows.union(self_rows)


def signatures(rows: DataFrame, index: GraphIndexConfig, partitions: int) -> DataFrame:
    """``(vid, set_size, signature)`` of every owner, the signature packed as binary."""
    hasher = MinHasher(index.minhash.num_perm, index.minhash.seed, index.minhash.scheme)

    def sign(batches):
        batches = list(batches)
        if not batches:
            return
        t = pa.Table.from_batches(batches)
        owners, members = t.column("owner").to_numpy(), t.column("member").to_numpy()
        vid, size, sig = neighbourhood_signatures(owners, members, hasher)
        for lo in range(0, len(vid), 50_000):  # batches of bounded size
            hi = lo + 50_000
            yield pa.RecordBatch.from_pydict({"vid": vid[lo:hi], "set_size": size[lo:hi],
                                              "signature": pack_rows(sig[lo:hi])})

    schema = datasets.select(datasets.neighbourhood_signatures(index.minhash.num_perm), "vid", "set_size", "signature")
    return rows.repartition(partitions, "owner").sortWithinPartitions("owner").mapInArrow(
        sign, spark_schema(schema, packed=True))


def index_rows(sigs: DataFrame, index: GraphIndexConfig, partitions: int, stats_path: str) -> DataFrame:
    """The signatures' index rows (band, key, vid) of every bucket that can pair anything;
    the bucket statistics go to ``stats_path`` (jobs/spark/buckets.write_statistics)."""
    bands, rows = lsh_shape(index.lsh, index.minhash.num_perm)
    num_perm, max_size = index.minhash.num_perm, index.lsh.max_bucket_size

    def band(batches):
        for batch in batches:
            key, _ = band_keys(unpack_rows(batch.column("signature"), np.uint32, num_perm), bands, rows)
            yield pa.RecordBatch.from_pydict({
                "band": np.tile(np.arange(bands, dtype=np.int32), batch.num_rows), "key": key.ravel(),
                "vid": np.repeat(batch.column("vid").to_numpy(), bands)})

    def group(batches):
        batches = list(batches)
        if not batches:
            return
        t = pa.Table.from_batches(batches)
        out = bucket_members(t.column("band").to_numpy().astype(np.int64), t.column("key").to_numpy(),
                             t.column("vid").to_numpy(), max_size)
        write_task_table(bucket_statistics(out), stats_path)
        band, key, vid = out["members"]
        yield pa.RecordBatch.from_pydict({"band": band.astype(np.int32), "key": key, "vid": vid})

    keyed = sigs.where("set_size > 0").select("vid", "signature").mapInArrow(band, spark_schema(datasets.LSH_INDEX))
    return keyed.repartition(partitions, "band", "key").mapInArrow(group, spark_schema(datasets.LSH_INDEX))


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    index = config.graph_index
    if index is None:
        raise InputError("the configuration has no 'graph_index' section")
    partitions = config.spark.shuffle_partitions
    directed = previous_manifest(config, "graph", "graph-ingest")["metrics"]["directed"]
    with job_run("graph_index", spark, config, strict, quiet) as job:
        vertices = read_input(spark, config.stage_path("graph", "vertices"), "vertex dictionary", "graph-ingest")
        edges = read_input(spark, config.stage_path("graph", "edges"), "edges", "graph-ingest")
        bands, rows = lsh_shape(index.lsh, index.minhash.num_perm)
        with job.stage("signatures"):
            sigs = signatures(neighbour_rows(edges, vertices, index, directed), index, partitions)
            sigs = sigs.persist(StorageLevel.MEMORY_AND_DISK)
            named = sigs.join(vertices.select("vid", "vertex"), "vid")
            schema = datasets.neighbourhood_signatures(index.minhash.num_perm)
            n_sigs, empty = write_parquet(named.select(*schema.names), job.path("signatures"), schema,
                                          empty_column="set_size")
        with job.stage("index"):
            stats_path = job.path("bucket_stats")
            n_index = write_parquet(index_rows(sigs, index, partitions, stats_path), job.path("lsh"), datasets.LSH_INDEX)
            stats, oversized = write_statistics(stats_path, vertices.select("vid", "vertex"), job.path("bucket_sizes"),
                                                job.path("oversized"))
        sigs.unpersist()
        sizes = [(r["b"], r["c"]) for r in stats.to_pylist() if r["kind"] == HISTOGRAM]
        job.manifest["inputs"] = {"vertices": n_sigs}
        job.manifest["outputs"] = {"signatures": n_sigs, "lsh": n_index, "oversized": oversized.num_rows}
        job.manifest["metrics"] = {
            "bands": bands, "rows": rows, "directed": directed, "empty_sets": empty,
            "index_rows": n_index, "buckets_indexed": sum(c for s, c in sizes if 1 < s <= index.lsh.max_bucket_size),
            "singleton_buckets": sum(c for s, c in sizes if s == 1), "oversized_buckets": oversized.num_rows,
        }
        job.log(f"{n_sigs} signatures ({empty} empty sets), {bands} bands x {rows} rows, {n_index} index rows, "
                f"{oversized.num_rows} oversized buckets")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/graph_index.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["graph-index", *sys.argv[1:]]))
