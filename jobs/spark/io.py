"""Parquet datasets with their exact Arrow schema, read and written by Spark tasks.

Spark has no unsigned integers and no fixed-size lists, so Spark's own Parquet writer
cannot honour the data contracts in schemas/datasets.py. Each task here writes its
partition with pyarrow instead, one file per partition, named by the partition index:
a retried task rewrites the same file, so a retry never duplicates rows.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark import TaskContext
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from sigil.transforms.packing import to_contract
from sigil.transforms.records import InputError, list_files, open_input


def spark_schema(schema: pa.Schema, packed: bool = False):
    """The Spark type of an Arrow schema (every field nullable, as Spark's Arrow batches
    are), for ``mapInArrow`` and ``createDataFrame``. ``packed``: list columns travel as
    binary (transforms/packing.py), since Spark has neither unsigned integers nor
    fixed-size lists; ``to_contract`` turns them back into lists when written."""
    def travelling(t: pa.DataType) -> pa.DataType:
        return pa.binary() if packed and (pa.types.is_list(t) or pa.types.is_fixed_size_list(t)) else t

    return from_arrow_schema(pa.schema([pa.field(f.name, travelling(f.type)) for f in schema]))


def write_parquet(df: DataFrame, path: str, schema: pa.Schema, empty_column: str | None = None,
                  transform: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None):
    """Write ``df`` to directory ``path`` as Parquet with exactly ``schema``; return the rows
    (and, with ``empty_column``, also how many rows have 0 there, counted on the way).

    ``transform`` maps each Arrow batch before it is written, in the same Python task: a
    last computation costs no second trip of the rows between the JVM and Python."""

    def write(batches):
        rows, zeros = write_batches(batches, path, schema, transform, empty_column)
        yield pa.RecordBatch.from_pydict({"rows": [rows], "zeros": [zeros]})

    counts = df.mapInArrow(write, "rows long, zeros long").agg(F.sum("rows"), F.sum("zeros")).first()  # driver-ok
    fs, root = open_input(path)
    if fs.get_file_info(root).type == pafs.FileType.NotFound:  # no partitions: still a readable dataset
        write_table(schema.empty_table(), path)
    written = int(counts[0] or 0)
    return (written, int(counts[1] or 0)) if empty_column is not None else written


def write_batches(batches, path: str, schema: pa.Schema,
                  transform: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
                  empty_column: str | None = None) -> tuple[int, int]:
    """In a task: write ``batches`` (each mapped by ``transform`` first) as the task's file
    in directory ``path``; return the rows written and how many have 0 in ``empty_column``."""
    rows = zeros = 0
    with task_output(path) as out, pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for batch in batches:
            if transform is not None:
                batch = transform(batch)
            writer.write_batch(to_contract(batch, schema))
            rows += batch.num_rows
            if empty_column is not None:
                zeros += pc.sum(pc.equal(batch.column(empty_column), 0)).as_py() or 0
    return rows, zeros


def row_group_tasks(path: str, tasks: int) -> list[list[tuple[str, list[int]]]]:
    """The row groups of the Parquet dataset at ``path`` in ``tasks`` lists of (file, row
    groups) of about equal rows: the largest groups first, each to the lightest task."""
    fs, _ = open_input(path)
    groups = []
    for file in list_files(path):
        with fs.open_input_file(open_input(file)[1]) as f:
            meta = pq.ParquetFile(f).metadata
        groups += [(meta.row_group(g).num_rows, file, g) for g in range(meta.num_row_groups)]
    load, out = [0] * tasks, [dict() for _ in range(tasks)]
    for rows, file, g in sorted(groups, key=lambda x: (-x[0], x[1], x[2])):
        t = load.index(min(load))
        load[t] += rows
        out[t].setdefault(file, []).append(g)
    return [sorted(task.items()) for task in out if task]


def map_parquet(spark, path: str, out_path: str, schema: pa.Schema, transform: Callable[[pa.RecordBatch], pa.RecordBatch],
                columns: list[str], batch_rows: int) -> int:
    """Write ``transform`` of every batch of ``columns`` of the Parquet dataset at ``path``
    to ``out_path`` with exactly ``schema``; return the rows written. Each Python task
    reads its share of the row groups itself (``row_group_tasks``, one task per core):
    for a stage whose work is all in Python, the rows never pass through the JVM."""
    parts = row_group_tasks(path, spark.sparkContext.defaultParallelism)

    def read(task: int):
        for file, groups in parts[task]:
            fs, name = open_input(file)
            with fs.open_input_file(name) as f:
                yield from pq.ParquetFile(f).iter_batches(batch_rows, groups, columns)

    def run(batches):
        for batch in batches:
            for task in batch.column("id").to_numpy():
                rows, _ = write_batches(read(task), out_path, schema, transform)
                yield pa.RecordBatch.from_pydict({"rows": [rows]})

    written = spark.range(len(parts), numPartitions=max(len(parts), 1)).mapInArrow(run, "rows long").agg(
        F.sum("rows")).first()[0]  # driver-ok: one number
    if not parts:
        write_table(schema.empty_table(), out_path)
    return int(written or 0)


def write_parquet_unless_empty(df: DataFrame, path: str, schema: pa.Schema, probe: DataFrame | None = None) -> int:
    """``write_parquet`` for a frame that is usually empty: when ``probe`` (a frame cheap to
    test, empty exactly when ``df`` is; by default ``df`` itself) is empty, the empty dataset
    is written from the driver, sparing a pass of Python tasks."""
    if (df if probe is None else probe).isEmpty():
        write_table(schema.empty_table(), path)
        return 0
    return write_parquet(df, path, schema)


def task_output(path: str, name: str | None = None):
    """The output stream of the running task's file ``part-<name>.parquet`` in directory
    ``path``, by default named by the task's partition: a retried task overwrites its own
    file."""
    fs, root = open_input(path)
    fs.create_dir(root, recursive=True)
    name = name if name is not None else f"{TaskContext.get().partitionId():05d}"
    return fs.open_output_stream(f"{root}/part-{name}.parquet")


def write_task_table(table: pa.Table, path: str) -> None:
    """From inside a Spark task: write a small side output of the task (statistics) into
    directory ``path``; ``read_task_tables`` reads them all once the job has run."""
    with task_output(path) as out:
        pq.write_table(table, out, compression="zstd")


def read_task_tables(path: str, schema: pa.Schema) -> pa.Table:
    """On the driver: the side outputs ``write_task_table`` wrote to ``path`` (empty when
    no task wrote any), after which the directory is removed."""
    fs, root = open_input(path)
    if fs.get_file_info(root).type == pafs.FileType.NotFound:
        return schema.empty_table()
    table = pq.read_table(root, filesystem=fs, schema=schema)
    fs.delete_dir(root)
    return table


def write_table(table: pa.Table, path: str, rows_per_file: int | None = None) -> int:
    """Write a small table (made on the driver) as the dataset at directory ``path``: one
    file, or files of ``rows_per_file`` rows (so that Spark reads it in as many tasks)."""
    fs, root = open_input(path)
    fs.create_dir(root, recursive=True)
    step = max(1, rows_per_file or table.num_rows)
    for i, lo in enumerate(range(0, max(table.num_rows, 1), step)):
        pq.write_table(table.slice(lo, step), f"{root}/part-{i:05d}.parquet", filesystem=fs, compression="zstd")
    return table.num_rows


def read_input(spark, path: str, what: str, job: str) -> DataFrame:
    """The Parquet dataset at ``path``, or a plain error naming the job that writes it."""
    try:
        list_files(path)
    except InputError as err:
        raise InputError(f"no {what} at {path}: run 'sigil {job}' first ({err})") from None
    return read_files(spark, path, "parquet")


def read_files(spark, path: str, fmt: str, **options) -> DataFrame:
    """``spark.read`` of the files at ``path`` (``csv`` with a header, or ``parquet``); a
    file Spark cannot read (not Parquet, truncated, unreadable) is an InputError naming it,
    not a Java stack trace."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    reader = spark.read.options(**options)
    try:
        return reader.option("header", True).csv(path) if fmt == "csv" else reader.parquet(path)
    except (PySparkException, Py4JJavaError) as err:
        text = str(err.java_exception.getMessage()) if isinstance(err, Py4JJavaError) else str(err)
        raise InputError(f"{path}: cannot be read as {fmt}: {text.strip().splitlines()[0]}") from None


def quarantine_examples(quarantine: DataFrame, n: int = 5) -> list[str]:
    """The first ``n`` quarantined rows by file and line, as ``file line N: reason`` (what
    --strict names)."""
    rows = quarantine.orderBy("file", "line").limit(n).collect()  # driver-ok: n rows
    return [f"{r['file']} line {r['line']}: {r['reason']}" for r in rows]
