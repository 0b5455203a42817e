"""hqi-index job: rows of vectors and attributes laid out for a training workload of hybrid
queries, as HQI partitions them (Mohoney et al., "High-Throughput Vector Similarity Search
in Knowledge Graphs", SIGMOD 2023, doi:10.1145/3589777; transforms/hqi.py).

A qd-tree cut for the training workload's predicates partitions the rows by their
attributes into leaves, so that a query scans only the leaves its predicate may match, and
k-means clusters each leaf's vectors, so that a query in approximate mode probes only its
nearest clusters. The steps:

1. check: a data row with a missing or repeated id (the first by file and row stays), a
   missing vector, one of another length than the data's d, or one with null, NaN or
   infinite values is quarantined (source ``data``), and so is a training row whose
   predicate does not parse against the attribute columns (source ``training``);
2. fit, on the driver (``fit_partitioning``): the qd-tree and each leaf's k-means, on every
   row when the data has at most ``hqi.sample_rows``, else on that many rows, those of
   smallest ``xxhash64(id, seed)``: the driver holds about sample_rows x (4 d + 8 per
   attribute) bytes. A sample's minimum leaf and clusters per leaf scale to the data, and
   its means are the centroids;
3. place every row in Spark tasks (``mapInArrow``, ``Partitioning.assign``: the leaf of its
   attributes, then the nearest centroid of that leaf, decided exactly whatever rows share
   its batch) and write the layout, hash-partitioned by leaf (each leaf in one file) and
   sorted by leaf, cluster and id;
4. count the rows of every cluster, and write the centroids and the tree with each node's
   rows in the data.

Outputs under ``<output>/hqi_index/``: ``layout`` (schemas.datasets.hqi_layout),
``centroids`` (hqi_centroids), ``tree.json`` (``QdTree.to_dict``), ``quarantine``
(QUARANTINE) and ``manifest.json``: the build seconds (fit and layout), leaves, clusters,
rows per leaf, the sample, and the training workload's scanned-rows share (the rows its
queries scan through the tree over the rows of the data, both summed over the queries).
``inputs.data_rows`` = ``outputs.layout`` + ``quarantined.data``. ``transforms.hqi.load_layout``
reads the outputs back as a ``Layout`` (a notebook, hqi-query's memory engine).

Run: ``sigil hqi-index --conf FILE`` or ``spark-submit jobs/hqi_index.py --conf FILE``.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_type

from sigil.jobs.spark.io import (quarantine_examples, read_files, spark_schema, write_parquet,
                                 write_parquet_unless_empty, write_table)
from sigil.jobs.spark.parse import split_duplicates
from sigil.jobs.spark.session import job_run
from sigil.schemas import datasets
from sigil.schemas.config import HqiConfig, HqiDataInput, SigilConfig
from sigil.transforms.hqi import Partitioning, fit_partitioning, vector_array
from sigil.transforms.predicates import CATEGORICAL, NUMERIC, Columns, parse_many
from sigil.transforms.records import InputError, list_files, open_input

ROWS_PER_FILE = 1_000_000  # the layout is written in at least rows / this files (tasks)
RESERVED = ("id", "leaf", "cluster", "vector")  # the layout's own columns


class Data(NamedTuple):
    """The data as Spark reads it, in the layout's column names (``id``, ``vector``, the
    attributes), with ``file`` and ``line`` of each row; and what the job knows of it."""

    rows: DataFrame
    dim: int
    types: dict  # attribute -> categorical | numeric
    fields: list  # the attributes' Arrow fields


def _kind(name: str, t: T.DataType) -> str:
    if isinstance(t, T.StringType):
        return CATEGORICAL
    if isinstance(t, (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType)):
        return NUMERIC
    raise InputError(f"hqi.data: attribute column {name!r} has type {t.simpleString()}: only strings (categorical), "
                     "integers and floats (numeric) are supported; list the attributes to use in "
                     "hqi.data.attribute_columns")


def _dimension(path: str, column: str) -> int | None:
    """d when every file stores the vectors as fixed-size lists of one size, else None."""
    fs, _ = open_input(path)
    sizes = set()
    for file in list_files(path):
        with fs.open_input_file(open_input(file)[1]) as f:
            schema = pq.read_schema(f)
        t = schema.field(column).type if column in schema.names else None
        sizes.add(t.list_size if t is not None and pa.types.is_fixed_size_list(t) else None)
    return sizes.pop() if len(sizes) == 1 else None


def read_data(spark, data: HqiDataInput) -> Data:
    """The data with its columns checked on the driver: an integer id, a vector column of
    numbers, attributes of supported types (else InputError naming the column). The
    dimension is the vectors' fixed size, or else their most common length."""
    df = read_files(spark, data.path, "parquet")
    schema = {f.name: f.dataType for f in df.schema.fields}
    attributes = data.attribute_columns
    if attributes is None:
        attributes = [c for c in schema if c not in (data.id_column, data.vector_column)]
    missing = [c for c in (data.id_column, data.vector_column, *attributes) if c not in schema]
    if missing:
        raise InputError(f"hqi.data: {data.path} has no column(s) {missing}; it has {sorted(schema)}")
    if not isinstance(schema[data.id_column], (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        raise InputError(f"hqi.data.id_column {data.id_column!r} has type {schema[data.id_column].simpleString()}, "
                         "not integers")
    vector = schema[data.vector_column]
    if not isinstance(vector, T.ArrayType) or not isinstance(vector.elementType, T.NumericType):
        raise InputError(f"hqi.data.vector_column {data.vector_column!r} has type {vector.simpleString()}, not "
                         "lists of numbers")
    clash = [c for c in attributes if c in RESERVED]
    if clash:
        raise InputError(f"hqi.data: attribute column(s) {clash} clash with the layout's columns {list(RESERVED)}; "
                         "rename them or leave them out of hqi.data.attribute_columns")
    types = {c: _kind(c, schema[c]) for c in attributes}
    rows = df.select(F.col(data.id_column).cast("long").alias("id"),
                     F.col(data.vector_column).cast("array<float>").alias("vector"), *attributes,
                     F.regexp_replace("_metadata.file_path", "^file:(//)?", "").alias("file"),
                     (F.col("_metadata.row_index") + 1).alias("line"))
    dim = _dimension(data.path, data.vector_column)
    if dim is None:
        common = rows.where("vector is not null").groupBy(F.size("vector").alias("d")).count().orderBy(
            F.desc("count"), "d").first()  # driver-ok: one row
        dim = common["d"] if common is not None else 0
    fields = [pa.field(c, to_arrow_type(schema[c])) for c in attributes]
    return Data(rows, dim, types, fields)


def checked(data: Data) -> tuple[DataFrame, DataFrame]:
    """The usable rows (``id, vector``, the attributes), and the QUARANTINE rows of the
    others: missing id, missing vector, another length, null, NaN or infinite values,
    then duplicate ids (the first by file and line stays)."""
    rows, d = data.rows, data.dim
    reason = (F.when(F.col("id").isNull(), F.lit("missing id"))
              .when(F.col("vector").isNull(), F.lit("missing vector"))
              .when(F.size("vector") != d, F.format_string(f"vector has %d values, expected {d}", F.size("vector")))
              .when(F.expr("exists(vector, x -> x is null or isnan(x) or abs(x) = double('infinity'))"),
                    F.lit("vector has null, NaN or infinite values")))
    raw = F.to_json(F.struct("id", *data.types)).alias("raw")
    staged = rows.withColumn("reason", reason)
    bad = staged.where("reason is not null").select("file", "line", F.col("id").cast("string").alias("id"), "reason",
                                                    raw)
    good = staged.where("reason is null")
    repeated = good.groupBy("id").count().where("count > 1").select("id")  # only ids, shuffled
    _, dupes = split_duplicates(good.join(repeated, "id", "left_semi").select("id", "file", "line", raw), ["id"])
    dupes = dupes.select("file", "line", F.col("id").cast("string").alias("id"), "reason", "raw")
    usable = good.join(dupes.select("file", "line"), ["file", "line"], "left_anti").select("id", "vector",
                                                                                           *data.types)
    quarantine = bad.unionByName(dupes).select(F.lit("data").alias("source"), "file", "line", "id", "reason", "raw")
    return usable, quarantine


def training_predicates(hqi: HqiConfig, types: dict) -> tuple[list, list[dict]]:
    """The training workload's predicates that parse, and QUARANTINE rows (source
    ``training``) of those that do not; read on the driver (a workload is small)."""
    if hqi.training is None:
        return [], []
    good, bad = [], []
    fs, _ = open_input(hqi.training.path)
    for file in list_files(hqi.training.path):
        with fs.open_input_file(open_input(file)[1]) as f:
            names = pq.read_schema(f).names
            if "predicate" not in names:
                raise InputError(f"hqi.training: {file} has no column 'predicate'; it has {names}")
            table = pq.read_table(f, columns=["predicate"] + (["query_id"] if "query_id" in names else []))
        if not pa.types.is_string(table.schema.field("predicate").type):
            raise InputError(f"hqi.training: column 'predicate' of {file} has type "
                             f"{table.schema.field('predicate').type}, not JSON text")
        texts = table.column("predicate").to_pylist()
        ids = table.column("query_id").to_pylist() if "query_id" in names else [None] * len(texts)
        parsed, reasons = parse_many(texts, types)
        good += [p for p in parsed if p is not None]
        bad += [{"source": "training", "file": file, "line": i + 1, "id": None if ids[i] is None else str(ids[i]),
                 "reason": f"predicate: {why}", "raw": texts[i]} for i, why in enumerate(reasons) if why is not None]
    return good, bad


def sample(rows: DataFrame, n: int, hqi: HqiConfig) -> pa.Table:
    """Every usable row when there are at most ``hqi.sample_rows``, else the sample rows of
    smallest seeded hash; ordered by id."""
    if n > hqi.sample_rows:
        rows = rows.orderBy(F.xxhash64("id", F.lit(hqi.seed)), "id").limit(hqi.sample_rows)
    return rows.toArrow().sort_by("id")  # driver-ok: at most hqi.sample_rows rows


def fit(table: pa.Table, n: int, predicates: list, hqi: HqiConfig, types: dict) -> Partitioning:
    """The qd-tree and each leaf's centroids, fitted on the sampled ``table`` of ``n`` rows."""
    per_leaf = {"clusters_per_leaf": hqi.clusters_per_leaf} if hqi.clusters_per_leaf else \
        {"rows_per_cluster": hqi.rows_per_cluster}
    return fit_partitioning(Columns.from_table(table.select(list(types)), types), table.column("vector"), predicates,
                            min_leaf_rows=hqi.min_leaf_rows, seed=hqi.seed, iterations=hqi.iterations,
                            share=table.num_rows / n, **per_leaf)


def write_layout(spark, rows: DataFrame, partitioning: Partitioning, path: str, schema: pa.Schema, n: int,
                 partitions: int) -> int:
    """Place every row (``Partitioning.assign`` in the tasks) and write the layout, a leaf
    per file, sorted by leaf, cluster and id; returns the rows written."""
    shared = spark.sparkContext.broadcast(partitioning)
    names = [f.name for f in schema if f.name not in RESERVED]
    travel = pa.schema([pa.field(f.name, pa.list_(pa.float32())) if f.name == "vector" else f for f in schema])

    def place(batches):
        for batch in batches:
            p = shared.value
            cluster = p.assign(pa.Table.from_batches([batch]).select(names), batch.column("vector"))
            columns = {"leaf": pa.array(p.leaf_of(cluster), pa.int32()), "cluster": pa.array(cluster, pa.int32())}
            yield pa.RecordBatch.from_pydict({name: columns[name] if name in columns else batch.column(name)
                                              for name in travel.names})

    placed = rows.mapInArrow(place, spark_schema(travel))
    files = max(1, min(partitioning.tree.num_leaves, max(partitions, -(-n // ROWS_PER_FILE))))
    return write_parquet(placed.repartition(files, "leaf").sortWithinPartitions("leaf", "cluster", "id"), path,
                         schema)


def cluster_rows(spark, path: str, clusters: int) -> np.ndarray:
    """Rows of every cluster of the written layout (Spark reads only the cluster column)."""
    rows = np.zeros(clusters, dtype=np.int64)
    for r in spark.read.parquet(path).groupBy("cluster").count().collect():  # driver-ok: one row per cluster
        rows[r["cluster"]] = r["count"]
    return rows


def centroid_table(partitioning: Partitioning, rows: np.ndarray) -> pa.Table:
    """The centroids dataset: every cluster's leaf, centroid and ``rows`` in the layout."""
    clusters = np.arange(len(rows))
    return pa.table({"leaf": pa.array(partitioning.leaf_of(clusters), pa.int32()),
                     "cluster": pa.array(clusters, pa.int32()), "centroid": vector_array(partitioning.centroids),
                     "rows": pa.array(rows, pa.int64())}).cast(datasets.hqi_centroids(partitioning.centroids.shape[1]))


def _spread(values: np.ndarray) -> dict:
    if not len(values):
        return {"min": None, "mean": None, "median": None, "max": None}
    return {"min": int(values.min()), "mean": float(values.mean()), "median": float(np.median(values)),
            "max": int(values.max())}


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    hqi = config.hqi
    if hqi is None:
        raise InputError("the configuration has no 'hqi' section")
    with job_run("hqi_index", spark, config, strict, quiet) as job:
        data = read_data(spark, hqi.data)
        with job.stage("check"):
            predicates, bad_training = training_predicates(hqi, data.types)
            usable, quarantine = checked(data)
            if bad_training:
                quarantine = quarantine.unionByName(spark.createDataFrame(bad_training,
                                                                          spark_schema(datasets.QUARANTINE)))
            n_bad = write_parquet_unless_empty(quarantine, job.path("quarantine"), datasets.QUARANTINE)
            n_rows = data.rows.count()
            n_bad_training = len(bad_training)
            n = n_rows - (n_bad - n_bad_training)
        examples = lambda: quarantine_examples(spark.read.parquet(job.path("quarantine")))  # noqa: E731
        job.refuse_quarantined(n_bad, examples)
        if not n:
            raise InputError(f"hqi.data: no usable row in {hqi.data.path} ({n_rows} rows, all quarantined; first: "
                             + "; ".join(examples()) + ")")
        with job.stage("fit"):
            sampled = sample(usable, n, hqi)
            partitioning = fit(sampled, n, predicates, hqi, data.types)
        with job.stage("layout"):
            schema = datasets.hqi_layout(data.dim, data.fields)
            n_layout = write_layout(spark, usable, partitioning, job.path("layout"), schema, n,
                                    config.spark.shuffle_partitions)
            rows = cluster_rows(spark, job.path("layout"), len(partitioning.centroids))
            leaf_rows = np.diff(np.r_[0, np.cumsum(rows)][partitioning.leaf_clusters])
            tree = partitioning.tree.with_leaf_rows(leaf_rows, hqi.min_leaf_rows)
            write_table(centroid_table(partitioning, rows), job.path("centroids"))
            job.storage.write_text(job.path("tree.json"), json.dumps(tree.to_dict()))
        scanned = tree.scanned_rows(predicates) / (len(predicates) * n) if predicates else None
        timings = job.manifest["timings"]
        job.manifest["inputs"] = {"data_rows": n_rows, "training_rows": len(predicates) + n_bad_training}
        job.manifest["quarantined"] = {"data": n_bad - n_bad_training, "training": n_bad_training}
        job.manifest["outputs"] = {"layout": n_layout, "centroids": len(rows)}
        job.manifest["metrics"] = {
            "build_seconds": round(timings["fit"] + timings["layout"], 3), "rows": n_layout, "dim": data.dim,
            "attributes": data.types, "leaves": tree.num_leaves, "clusters": len(rows), "rows_per_leaf":
            _spread(leaf_rows), "rows_per_cluster": _spread(rows), "sample_rows": sampled.num_rows,
            "sampled": sampled.num_rows < n, "training_predicates": len(predicates),
            "distinct_training_predicates": len(set(predicates)), "training_scanned_share": scanned,
            "min_leaf_rows": hqi.min_leaf_rows, "seed": hqi.seed}
        job.log_metrics("build_seconds", "rows", "leaves", "clusters", "training_scanned_share")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/hqi_index.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["hqi-index", *sys.argv[1:]]))
