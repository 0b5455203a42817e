"""Records looked up inside the tasks that need them, instead of joined to millions of pairs.

A stage that needs a few columns of both records of every pair would join the pairs with
the records twice: the records' columns cross from the JVM to Python once per pair side.
When those columns are small enough that Spark would broadcast them anyway (its size
estimate under ``spark.broadcast_join_mb``), each Python worker reads them from the
records' Parquet once instead, ordered by record key, and its tasks find the records of
each pair by binary search on rid = xxhash64(source, id) (transforms/xxhash.py, the key
ingest writes): only the pairs cross into Python, and nothing is shuffled.

Larger records fall back to the joins (jobs/spark/pairs.with_record_columns).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
from pyspark.sql import DataFrame

from sigil.transforms.records import list_files, open_input
from sigil.transforms.xxhash import xxhash64


def fits_in_tasks(spark, frame: DataFrame) -> bool:
    """Whether Spark estimates ``frame`` (the columns to look up) under its broadcast
    threshold: the same bound as a broadcast join, so a lookup holds no more per worker
    than Spark itself would ship to every executor."""
    limit = size_in_bytes(spark.conf.get("spark.sql.autoBroadcastJoinThreshold"))
    size = int(str(frame._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()))
    return 0 <= size <= limit


def size_in_bytes(setting: str) -> int:
    """A Spark byte-size setting ("10485760", "64m", "1g", "512kb") in bytes; -1 stays -1."""
    match = re.fullmatch(r"\s*(-?\d+)\s*([kmgt]?)b?\s*", setting.lower())
    if match is None:
        raise ValueError(f"not a byte size: {setting!r}")
    return int(match.group(1)) << (10 * " kmgt".index(match.group(2) or " "))


class RecordIndex:
    """The records at one path, findable by rid. A column is read when first asked for and
    what callers derive from the columns is memoised (``cached``), so the tasks of a worker,
    and the stages of one session, share both."""

    def __init__(self, version: tuple):
        fs, _ = open_input(version[0][0])
        self.dataset = ds.dataset([open_input(f)[1] for f, _, _ in version], filesystem=fs, format="parquet")
        self.read_rids = self.dataset.to_table(columns=["rid"]).column("rid").to_numpy()
        self.order = np.argsort(self.read_rids, kind="stable")
        self.rids = self.read_rids[self.order]
        self.columns: dict[str, pa.Array] = {}
        self.derived: dict = {}

    def column(self, name: str) -> pa.Array:
        """Column ``name`` of every record, in rid order."""
        if name not in self.columns:
            read = self.dataset.to_table(columns=["rid", name])
            rid = read.column("rid").to_numpy()
            order = self.order if np.array_equal(rid, self.read_rids) else np.argsort(rid, kind="stable")
            self.columns[name] = read.column(name).combine_chunks().take(pa.array(order))
        return self.columns[name]

    def table(self, names: list[str]) -> pa.Table:
        return pa.table({name: self.column(name) for name in names})

    def positions(self, rids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row of each rid, and whether it was found (rows of missing rids are 0)."""
        at = np.minimum(np.searchsorted(self.rids, rids), max(len(self.rids) - 1, 0))
        found = self.rids[at] == rids if len(self.rids) else np.zeros(len(rids), bool)
        return np.where(found, at, 0), found

    def find(self, source: pa.Array, ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the records (source, id), and whether each exists."""
        return self.positions(xxhash64([source, ids]))

    def cached(self, key, compute):
        """``compute()``, once per worker for each ``key``."""
        if key not in self.derived:
            self.derived[key] = compute()
        return self.derived[key]


_WORKER: dict = {}  # what this Python worker holds for its tasks: one thing, until another is asked


def worker_held(key, build):
    """In a task: what ``build()`` returns, made once per Python worker and kept for its
    later tasks while they ask for the same ``key`` (hashable; include a
    ``dataset_version`` so that changed files are read again). Asking for another key drops
    the old value first: a worker holds one graph, index or layout at a time."""
    if _WORKER.get("key") != key:
        _WORKER.clear()
        _WORKER.update(key=key, value=build())
    return _WORKER["value"]


def dataset_version(path: str) -> tuple:
    """The data files of ``path`` with their sizes and times: a worker's index is reused
    only while these are unchanged."""
    fs, _ = open_input(path)
    files = list_files(path)
    infos = fs.get_file_info([open_input(f)[1] for f in files])
    return tuple((f, i.size, i.mtime_ns) for f, i in zip(files, infos))


def record_index(version: tuple) -> RecordIndex:
    """In a task: the worker's index of the records whose files ``version`` lists
    (``dataset_version``), made on first use."""
    return worker_held(("records", version), lambda: RecordIndex(version))


def found_pairs(index: RecordIndex, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, dict[str, np.ndarray]]:
    """The pairs of ``batch`` (KEYS) whose two records exist, and the index rows of each
    side's records (``{"a": rows, "b": rows}``). Pairs with a record missing are dropped,
    as an inner join would."""
    rows, found = {}, np.ones(batch.num_rows, bool)
    for side in ("a", "b"):
        rows[side], ok = index.find(batch.column(f"source_{side}"), batch.column(f"id_{side}"))
        found &= ok
    if not found.all():
        batch = batch.filter(pa.array(found))
        rows = {side: r[found] for side, r in rows.items()}
    return batch, rows
