"""LSH buckets on Spark: band-key rows hash-partitioned by (band, key), so that every
bucket lies whole in one partition, then paired in one numba call per partition
(transforms/lsh.py). Each task writes its buckets' statistics beside its pairs, so one
pass gives both and nothing is cached. Used by MinHash blocking, rule blocking on shuffled
records, hyperplane-LSH blocking and the graph index.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sigil.jobs.spark.io import read_task_tables, write_table, write_task_table
from sigil.transforms.lsh import BUCKET_STATS, bucket_statistics, oversized_buckets, oversized_samples, \
    partition_buckets, size_histogram

#: Rows of buckets: the band (or table, or rule), the bucket key, a finer key that splits
#: an oversized bucket, the row's id and its source's index.
BAND_KEYS = pa.schema([("band", pa.int32()), ("key", pa.int64()), ("fine", pa.int64()), ("rid", pa.int64()),
                       ("src", pa.int32())])
PAIR_ROWS = 200_000  # pairs per Arrow batch handed back to Spark


def bucket_pairs(band_keys: DataFrame, max_size: int, oversized: str, cross: bool, partitions: int,
                 stats_path: str) -> DataFrame:
    """Pairs (rid_a < rid_b) of BAND_KEYS rows: those of every bucket of at most ``max_size``
    members (larger ones skipped or split, transforms/lsh.bucket_pairs; ``cross``: only
    rows of different sources pair). Each task writes its buckets' statistics to
    ``stats_path`` on the way (read by ``write_statistics``). A pair of several bands
    comes once per band."""

    def per_partition(batches):
        batches = list(batches)  # Spark marks literal columns not-null: compare types, not nullability
        t = pa.Table.from_batches(batches).cast(BAND_KEYS) if batches else BAND_KEYS.empty_table()
        out = partition_buckets(*(t.column(c).to_numpy() for c in BAND_KEYS.names), max_size, oversized, cross)
        write_task_table(bucket_statistics(out), stats_path)
        a, b = out["pairs"]
        for lo in range(0, len(a), PAIR_ROWS):
            yield pa.RecordBatch.from_pydict({"rid_a": a[lo:lo + PAIR_ROWS], "rid_b": b[lo:lo + PAIR_ROWS]})

    return band_keys.repartition(partitions, "band", "key").mapInArrow(per_partition, "rid_a long, rid_b long")


def write_statistics(stats_path: str, names: DataFrame, sizes_path: str,
                     oversized_path: str) -> tuple[pa.Table, pa.Table]:
    """Write the bucket-size distribution (BUCKET_SIZES) and the oversized buckets
    (OVERSIZED, their samples named by ``names``: two columns, the id and the name users
    know) from the statistics the tasks wrote to ``stats_path``; run once the pairs are
    computed. Returns the statistics and the oversized buckets."""
    stats = read_task_tables(stats_path, BUCKET_STATS)
    write_table(size_histogram(stats), sizes_path)
    key, name = names.columns
    samples = oversized_samples(stats)
    found = dict(names.where(F.col(key).isin(samples)).collect()) if samples else {}  # driver-ok: samples only
    oversized = oversized_buckets(stats, found)
    write_table(oversized, oversized_path)
    return stats, oversized
