"""Record pairs on Beam: Arrow tables sharded as Spark partitions them, pairs made distinct,
named by rid, and counted against the ground truth (a pairs file or an id pattern), the
counterpart of jobs/spark/pairs.py for the Beam pipelines.
"""

from __future__ import annotations

import itertools

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics.metric import Metrics

from sigil.schemas.config import SigilConfig
from sigil.transforms.pairs import entity_of, entity_pairs, read_pairs
from sigil.transforms.xxhash import xxhash64

PAIRS = pa.schema([("rid_a", pa.int64()), ("rid_b", pa.int64())])


def shards(table: pa.Table, columns: list[str], n: int):
    """``(shard, rows)`` of ``table`` for every shard its rows fall in:
    ``pmod(xxhash64(columns), n)``, Spark's hash of the same columns."""
    if table.num_rows == 0:
        return
    shard = np.mod(xxhash64([table.column(c).combine_chunks() for c in columns]), n)
    order = np.argsort(shard, kind="stable")
    shard, table = shard[order], table.take(order)
    cuts = np.r_[0, np.flatnonzero(np.diff(shard)) + 1, len(shard)]
    for lo, hi in itertools.pairwise(cuts):
        yield int(shard[lo]), table.slice(lo, hi - lo)


def concat(tables, schema: pa.Schema) -> pa.Table:
    """One table of ``tables`` (empty ones left out), or ``schema``'s empty table."""
    tables = [t for t in tables if t.num_rows]
    return pa.concat_tables(tables).combine_chunks() if tables else schema.empty_table()


def distinct(tables) -> pa.Table:
    """(rid_a, rid_b) pairs of ``tables`` (one shard's), each once."""
    return concat(tables, PAIRS).group_by(["rid_a", "rid_b"]).aggregate([]).select(["rid_a", "rid_b"])


def rid_pairs(pairs: pa.Table) -> pa.Table:
    """(rid_a, rid_b) of pairs named by KEYS: ``rid = xxhash64(source, id)`` as ingest writes it."""
    return pa.table({f"rid_{s}": xxhash64([pairs.column(f"source_{s}").combine_chunks(),
                                           pairs.column(f"id_{s}").combine_chunks()]) for s in ("a", "b")},
                    schema=PAIRS)


def entities(records: pa.Table, pattern: str, n: int):
    """The records' (source, id, entity) sharded by entity, those without one left out."""
    t = records.select(["source", "id"]).append_column("entity", entity_of(records.column("id"), pattern))
    yield from shards(t.filter(pc.invert(pc.fill_null(pc.equal(t.column("entity"), ""), True))), ["entity"], n)


def entity_truth(item, mode: str) -> pa.Table:
    """One shard of records (source, id, entity) -> the pairs sharing an entity."""
    _, tables = item
    return rid_pairs(entity_pairs(concat(tables, pa.schema([])), mode))


def count_found(item, namespace: str) -> None:
    """One shard of truth and predicted pairs: the truth pairs, and those predicted."""
    _, groups = item
    truth = distinct(groups["truth"])
    found = truth.join(concat(groups["predicted"], PAIRS), ["rid_a", "rid_b"], join_type="inner")
    Metrics.counter(namespace, "truth_pairs").inc(truth.num_rows)
    Metrics.counter(namespace, "true_pairs").inc(found.num_rows)


def count_truth(p, config: SigilConfig, records, predicted, sources: list[str], namespace: str, label: str):
    """Count, as Beam metrics ``truth_pairs`` and ``true_pairs``, the truth pairs and those
    among ``predicted`` (tables with KEYS, oriented): the truth from the configured pairs
    file (read once, bounded by the file) or id pattern (over ``records``: tables with
    source and id). Returns the truth, tables of (rid_a, rid_b)."""
    n, mode, t = config.spark.shuffle_partitions, config.er_mode(), config.truth
    if t.id_regex is not None:
        truth = (records | f"{label}: entities" >> beam.FlatMap(entities, t.id_regex, n)
                 | f"{label}: group entities" >> beam.GroupByKey()
                 | f"{label}: entity pairs" >> beam.Map(entity_truth, mode))
    else:
        truth = p | f"{label}: truth" >> beam.Create([rid_pairs(read_pairs(t.path, t.format, mode, sources,
                                                                           tuple(t.id_columns)))])
    ({"truth": truth | f"{label}: truth shards" >> beam.FlatMap(shards, ["rid_a", "rid_b"], n),
      "predicted": predicted | f"{label}: keys" >> beam.Map(rid_pairs)
      | f"{label}: shards" >> beam.FlatMap(shards, ["rid_a", "rid_b"], n)}
     | f"{label}: meet" >> beam.CoGroupByKey() | f"{label}: count" >> beam.Map(count_found, namespace))
    return truth
