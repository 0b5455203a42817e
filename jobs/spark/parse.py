"""Input files parsed by parallel Spark tasks: one task per file, or per range of lines of
a large line-oriented file, each range knowing the file line it starts at; and the
first-occurrence rule for duplicate keys. Used by every job that reads user files
(ingest, graph-ingest, communities' queries).
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sigil.jobs.spark.io import spark_schema
from sigil.transforms.graph import STAGED_QUERIES, input_columns, positional_header, queries_from_file
from sigil.transforms.records import LINE_FORMATS, InputError, count_newlines, line_splits, list_files


PARTS = "source string, path string, start long, end long, first_line long"
PARTS_COLUMNS = ("source", "path", "start", "end", "first_line")


def input_parts(spark, files: list[tuple[str, str, str]], split_bytes: int) -> tuple[DataFrame, int]:
    """One row per parse task for ``(source name, file, format)`` files, and how many: whole
    files, and large line-oriented files cut at line boundaries, each range with the file
    line it starts at (from a distributed newline count)."""
    ranges = [(name, path, start, end) for name, path, fmt in files
              for start, end in (line_splits(path, split_bytes) if fmt in LINE_FORMATS else [(0, -1)])]
    if all(start == 0 for _, _, start, _ in ranges):
        return spark.createDataFrame([(*r, 1) for r in ranges], PARTS), len(ranges)

    def newlines(batches):
        for b in batches:
            spans = zip(*(b.column(c).to_pylist() for c in ("path", "start", "end")))
            yield b.append_column("newlines", pa.array([count_newlines(*span) for span in spans], pa.int64()))

    split = (spark.createDataFrame(ranges, "source string, path string, start long, end long")
             .repartition(min(len(ranges), 4 * spark.sparkContext.defaultParallelism))
             .mapInArrow(newlines, "source string, path string, start long, end long, newlines long"))
    before = Window.partitionBy("path").orderBy("start").rowsBetween(Window.unboundedPreceding, -1)
    return split.select("source", "path", "start", "end",
                        (F.coalesce(F.sum("newlines").over(before), F.lit(0)) + 1).alias("first_line")), len(ranges)


def parse_parts(spark, files: list[tuple[str, str, str]], split_bytes: int, reader, schema: pa.Schema) -> DataFrame:
    """Every row of ``(name, file, format)`` files, one task per file or line range:
    ``reader(name, path, start, end, first_line)`` yields ``schema`` batches."""
    parts, n = input_parts(spark, files, split_bytes)

    def parse(batches):
        for batch in batches:
            for name, path, start, end, line in zip(*(batch[c].to_pylist() for c in PARTS_COLUMNS)):
                yield from reader(name, path, start, None if end < 0 else end, line)

    # a few parts per task: fewer tasks cost less to schedule, and the cores stay busy; and
    # one task when there is nothing to parse (empty files), which gives no rows
    tasks = max(1, min(n, 4 * spark.sparkContext.defaultParallelism))
    return parts.repartition(tasks).mapInArrow(parse, spark_schema(schema))


@contextmanager
def task_input_errors():
    """Around the first action on parsed rows: an InputError that a parse task raised (a
    file changed or damaged after the driver checked it) reaches the driver wrapped in a
    Spark error with the worker's traceback; it is raised again as the InputError it was."""
    try:
        yield
    except Exception as err:
        found = re.search(r"InputError: (.+)", str(err))
        if found is None:
            raise
        raise InputError(found.group(1)) from None


def split_duplicates(rows: DataFrame, keys: list[str]) -> tuple[DataFrame, DataFrame]:
    """The first occurrence of each ``keys`` value by (file, line) is kept; the later ones
    come back apart with the reason ``duplicate id (first at file:line)``."""
    first = Window.partitionBy(*keys).orderBy("file", "line")
    ranked = (rows.withColumn("_n", F.row_number().over(first))
              .withColumn("_first", F.first(F.concat_ws(":", "file", "line")).over(first)))
    dupes = ranked.where("_n > 1").withColumn(
        "reason", F.concat(F.lit("duplicate id (first at "), F.col("_first"), F.lit(")")))
    return ranked.where("_n = 1").drop("_n", "_first"), dupes.drop("_n", "_first")


NO_SPLIT = 1 << 62  # query files are read whole, one task each


def staged_queries(spark, job, setting: str, source, default_size: int, nothing: str) -> tuple[DataFrame, int]:
    """A table of vertex-list queries (``source``: a ``_VertexListInput``, configured as
    ``setting``) parsed by tasks, one per file, every file checked on the driver first
    (``input_columns``); persisted, with its row count. Logs a warning for a header read
    by position and for an empty table (``nothing``: what then does not happen).
    ``default_size``: a query's number where its row gives none."""
    warning = positional_header(setting, source)
    if warning:
        job.log(warning, logging.WARNING)
    files = [("queries", p, source.format) for p in list_files(source.path) if input_columns(p, source) is not None]
    staged = parse_parts(spark, files, NO_SPLIT, lambda _, path, *span: queries_from_file(path, source, default_size),
                         STAGED_QUERIES).persist(StorageLevel.MEMORY_AND_DISK)
    with task_input_errors():
        rows = staged.count()
    if not rows:
        job.log(f"no queries in {source.path}: {nothing}", logging.WARNING)
    return staged, rows
