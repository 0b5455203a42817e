"""Dictionaries: distinct external ids numbered 0..n-1, on Spark, without a driver copy."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel, TaskContext
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def dense_ids(names: DataFrame, partitions: int, name: str = "vertex", dense: str = "vid") -> DataFrame:
    """``(dense, name)``: the distinct strings of column ``name`` numbered 0..n-1 (int64),
    integers numerically first, then the others by string. Two passes over a
    range-partitioned sort: count each partition, then number its rows from the
    partition's offset (the offsets are one number per partition)."""
    integer = F.when(F.col(name).rlike(r"^-?\d{1,18}$"), F.col(name).cast("long"))
    ranked = (names.select(name).distinct().withColumn("_int", integer)
              .repartitionByRange(partitions, F.col("_int").isNull(), "_int", name)
              .sortWithinPartitions(F.col("_int").isNull(), "_int", name).drop("_int")
              .persist(StorageLevel.MEMORY_AND_DISK))

    def count(batches):
        n = sum(b.num_rows for b in batches)
        yield pa.RecordBatch.from_pydict({"part": [TaskContext.get().partitionId()], "rows": [n]})

    sizes = dict(ranked.mapInArrow(count, "part long, rows long").collect())  # driver-ok: one row per partition
    starts = np.r_[0, np.cumsum([sizes.get(p, 0) for p in range(max(sizes, default=-1) + 1)])]

    def number(batches):
        next_id = int(starts[TaskContext.get().partitionId()])
        for b in batches:
            yield pa.RecordBatch.from_pydict({dense: np.arange(next_id, next_id + b.num_rows, dtype=np.int64),
                                              name: b.column(name)})
            next_id += b.num_rows

    return ranked.mapInArrow(number, f"{dense} long not null, {name} string not null")
