"""Match scoring with a saved model as an Apache Beam pipeline (DirectRunner by default): the
part a Beam user runs on every new batch of candidates once a model is trained.

The same comparisons (transforms/compare.py) and scores (transforms/fellegi_sunter.py) as
jobs/match.py with ``match.load_model``, so both engines write equal ``pairs`` datasets,
``model.json`` and manifests (tests/test_beam.py): candidates sharded by each side's rid
meet the records' compared columns in shards of ``pmod(xxhash64(rid), shuffle_partitions)``
(a pair with a record missing is dropped, as an inner join); term frequencies of the
adjusted comparisons are counted over the records and read as a side input; levels, match
weight, probability and ``is_match`` per Arrow table; with a truth, the matches are counted
against it.

Training (EM, logistic), the mutual best match (``match.one_to_one``), embeddings and the
expectation suites run on Spark: those settings fail at once on Beam, the key named.

Run: ``sigil match --engine beam --conf FILE`` (``BEAM_OPTIONS`` for other runners).
"""

from __future__ import annotations

import collections

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.parquetio import ReadFromParquetBatched, WriteToParquetBatched
from apache_beam.metrics.metric import Metrics

from sigil.pipelines.beam.engine import execute, refuse, unchecked
from sigil.pipelines.beam.pairs import concat, count_truth, shards
from sigil.run import Run
from sigil.schemas import datasets
from sigil.schemas.config import MatchConfig, SigilConfig
from sigil.transforms.compare import level_batch, value_column, value_columns
from sigil.transforms.fellegi_sunter import MatchModel, load_model, score_batch
from sigil.transforms.pairs import KEYS
from sigil.transforms.quality import precision_recall
from sigil.transforms.records import InputError, list_files
from sigil.transforms.xxhash import xxhash64

NAMESPACE = "sigil.match"


def unsupported(config: SigilConfig) -> list[str]:
    """The configuration keys the Beam engine cannot honour, with what they ask."""
    m, out = config.match, []
    if not m.load_model:
        out.append("match.load_model: unset (training runs on Spark; Beam scores with a saved model.json)")
    if m.one_to_one:
        out.append("match.one_to_one: true (the mutual best match ranks on Spark)")
    if m.embeddings:
        out.append("match.embeddings: set (cosine comparisons run on Spark)")
    return [f"{k} ; use --engine spark" for k in out]


def value_counts(records: pa.Table, columns: list[str]) -> dict:
    """Per column: how many records hold each nonblank value, and how many hold one."""
    out = {}
    for col in columns:
        values = records.column(col)
        values = values.filter(pc.fill_null(pc.not_equal(pc.utf8_trim_whitespace(values), ""), False))
        counts = collections.Counter({r["values"]: r["counts"] for r in pc.value_counts(values).to_pylist()})
        out[col] = counts
    return out


def merge_counts(parts) -> dict:
    out: dict = {}
    for part in parts:
        for col, counts in part.items():
            out.setdefault(col, collections.Counter()).update(counts)
    return out


def frequencies(counts: dict, columns: list[str]) -> dict:
    """Per column: its nonblank values and the share of the records holding each,
    ``tf(v) = n_v / n`` (transforms/compare.term_frequencies)."""
    out = {}
    for col in columns:
        seen = counts.get(col, {})
        total = sum(seen.values())
        out[col] = (pa.array(list(seen), pa.string()), np.array(list(seen.values()), np.float64) / max(total, 1))
    return out


def with_rids(candidates: pa.Table) -> pa.Table:
    for s in ("a", "b"):
        candidates = candidates.append_column(f"rid_{s}", pa.array(xxhash64(
            [candidates.column(f"source_{s}").combine_chunks(), candidates.column(f"id_{s}").combine_chunks()])))
    return candidates


def attach(item, side: str, columns: list[str]) -> pa.Table:
    """One shard's pairs with ``columns`` of their side-``side`` records, suffixed; pairs
    whose record is missing are dropped, as an inner join."""
    _, groups = item
    pairs, records = concat(groups["pairs"], pa.schema([])), concat(groups["records"], pa.schema([]))
    if pairs.num_rows == 0:
        return pairs
    rid = records.column("rid").to_numpy() if records.num_rows else np.zeros(0, np.int64)
    order = np.argsort(rid)
    want = pairs.column(f"rid_{side}").to_numpy()
    at = np.minimum(np.searchsorted(rid[order], want), max(len(rid) - 1, 0))
    found = (rid[order][at] == want) if len(rid) else np.zeros(len(want), bool)
    pairs, rows = pairs.filter(pa.array(found)), records.take(order[at[found]])
    for c in columns:
        pairs = pairs.append_column(f"{c}_{side}", rows.column(c))
    return pairs


def scored(pairs: pa.Table, match: MatchConfig, model: MatchModel, counts: dict) -> pa.Table:
    """Pairs with both records' values -> ``datasets.scored`` rows."""
    columns = {k: pairs.column(k) for k in KEYS}
    for c in match.comparisons:
        col = value_column(c)
        columns[f"{col}_a"], columns[f"{col}_b"] = pairs.column(f"{col}_a"), pairs.column(f"{col}_b")
        if c.term_frequency:  # the left value's frequency, 0 for one no record holds nonblank
            values, tf = counts[col]
            at = pc.fill_null(pc.index_in(pairs.column(f"{col}_a"), value_set=values), -1).to_numpy()
            columns[f"tf_{c.key}"] = np.where(at >= 0, tf[np.maximum(at, 0)] if len(tf) else 0.0, 0.0)
    schema = datasets.scored(model.names)
    if pairs.num_rows == 0:
        return schema.empty_table()
    batch = pa.table(columns).combine_chunks().to_batches()[0]
    out = score_batch(level_batch(batch, match.comparisons), model, model.threshold)
    Metrics.counter(NAMESPACE, "pairs_scored").inc(out.num_rows)
    Metrics.counter(NAMESPACE, "matches").inc(int(pc.sum(out.column("is_match")).as_py() or 0))
    return pa.Table.from_batches([out]).cast(schema)


def count_records(records: pa.Table) -> None:
    for c in pc.value_counts(records.column("source")).to_pylist():
        Metrics.counter(NAMESPACE, f"records:{c['values']}").inc(c["counts"])


def build(p, config: SigilConfig, records_path: str, cand_path: str, model: MatchModel, sources: list[str],
          job: Run) -> None:
    match, n = config.match, config.spark.shuffle_partitions
    cols = value_columns(match.comparisons)
    records = p | "read records" >> ReadFromParquetBatched(f"{records_path.rstrip('/')}/*.parquet",
                                                           columns=["rid", "source", "id", *cols])
    records | "count records" >> beam.Map(count_records)
    adjusted = sorted({value_column(c) for c in match.comparisons if c.term_frequency})
    counts = (records | "value counts" >> beam.Map(value_counts, adjusted)
              | "all counts" >> beam.CombineGlobally(merge_counts) | "frequencies" >> beam.Map(frequencies, adjusted))
    pairs = (p | "read candidates" >> ReadFromParquetBatched(f"{cand_path.rstrip('/')}/*.parquet", columns=KEYS)
             | "rids" >> beam.Map(with_rids))
    for side in ("a", "b"):
        pairs = ({"pairs": pairs | f"pairs by rid_{side}" >> beam.FlatMap(shards, [f"rid_{side}"], n),
                  "records": records | f"records by rid ({side})" >> beam.FlatMap(shards, ["rid"], n)}
                 | f"join {side}" >> beam.CoGroupByKey() | f"attach {side}" >> beam.Map(attach, side, cols))
    out = pairs | "score" >> beam.Map(scored, match, model, beam.pvalue.AsSingleton(counts))
    out | "write pairs" >> WriteToParquetBatched(f"{job.path('pairs')}/part", schema=datasets.scored(model.names),
                                                 file_name_suffix=".parquet")
    if config.truth is not None:
        matches = out | "matches" >> beam.Map(lambda t: t.filter(t.column("is_match")).select(KEYS))
        count_truth(p, config, records, matches, sources, NAMESPACE, "quality")


def run(config: SigilConfig, strict: bool = False, quiet: bool = False, pipeline_args: list[str] | None = None) -> dict:
    match = config.match
    if match is None:
        raise InputError("the configuration has no 'match' section")
    refuse(config, unsupported(config))
    with Run("match", config, strict=strict, quiet=quiet, check=unchecked) as job:
        path, cand_path = config.records_path(), match.input or config.stage_path("block", "candidates")
        for where, what, stage in ((path, "ingested records", "ingest"), (cand_path, "candidate pairs", "block")):
            try:
                list_files(where)
            except InputError as err:
                raise InputError(f"no {what} at {where}: run 'sigil {stage}' first ({err})") from None
        names = pq.ParquetDataset(path).schema.names
        missing = [c for c in value_columns(match.comparisons) if c not in names]
        if missing:
            raise InputError(f"match.comparisons read columns {missing} that the records at {path} lack")
        sources = sorted(pc.unique(pq.ParquetDataset(path).read(columns=["source"]).column("source")).to_pylist())
        model = load_model(match.load_model, match.comparisons)
        job.storage.write_text(job.path("model.json"), model.to_json())
        with job.stage("pipeline"):
            count = execute(lambda p: build(p, config, path, cand_path, model, sources, job), NAMESPACE,
                            pipeline_args)
        n_records = sum(count.get(f"records:{s}", 0) for s in sources)
        n_pairs, n_matches = count.get("pairs_scored", 0), count.get("matches", 0)
        metrics = job.manifest["metrics"]
        metrics.update({"records": n_records, "pairs_scored": n_pairs, "matches": n_matches,
                        "threshold": model.threshold, "model": model.kind})
        if config.truth is not None:
            tp, n_truth = count.get("true_pairs", 0), count.get("truth_pairs", 0)
            metrics.update({"true_positives": tp, "truth_pairs": n_truth,
                            **precision_recall(tp, n_matches, n_truth)})
        job.manifest["inputs"].update({"records": n_records, "candidates": n_pairs})
        job.manifest["outputs"]["pairs"] = n_pairs
        job.log_metrics("pairs_scored", "matches", "threshold", "precision", "recall", "f1")
        return job.commit()
