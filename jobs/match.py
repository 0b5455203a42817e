"""Match job: comparison levels for every candidate pair, a match model, scored pairs.

Stages: candidates joined with both records' compared values (and, for term-frequency
adjusted comparisons, the frequency of the left value) -> comparison levels per Arrow
batch (``mapInArrow``, transforms/compare.py) -> the model: loaded from a saved
``model.json``, or trained (Fellegi-Sunter: u from random record pairs, m and the prior by
EM over the distinct level patterns; logistic: on labelled pairs) -> match weight and
probability per pair (``mapInArrow``) -> Parquet.

Outputs under ``<output>/match/``: ``pairs`` (schemas.datasets.scored), ``model.json``
(readable parameters; ``match.load_model`` scores a new batch with it) and
``manifest.json``; with ground truth, pairwise precision, recall and F1 in the manifest.

Run: ``sigil match --conf FILE`` or ``spark-submit jobs/match.py --conf FILE``.
"""

from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from sigil.jobs.spark.io import map_parquet, read_input, spark_schema, write_parquet
from sigil.jobs.spark.lookup import dataset_version, fits_in_tasks, found_pairs, record_index
from sigil.jobs.spark.labels import labelled_pairs
from sigil.jobs.spark.pairs import pair_quality, read_truth, with_record_columns
from sigil.jobs.spark.session import job_run
from sigil.run import Run
from sigil.schemas import datasets
from sigil.schemas.config import EMBEDDING, MatchConfig, PairLabels, PseudoLabels, SigilConfig
from sigil.transforms.compare import Vocabulary, coded_levels, level_batch, levels_schema, term_frequencies, \
    value_column, value_columns
from sigil.transforms.fellegi_sunter import (MatchModel, best_threshold, fellegi_sunter, fit_em, load_model,
                                            sample_level_counts, score_batch, u_from_counts, u_sample_rows,
                                            u_sample_size)
from sigil.transforms.pairs import KEYS
from sigil.transforms.records import InputError
from sigil.transforms.supervised import fit_logistic
from sigil.transforms.xxhash import xxhash64

MAX_PATTERNS = 2_000_000  # distinct level patterns EM may bring to the driver


def nonblank(column: str):
    return F.col(column).isNotNull() & (F.trim(F.col(column)) != "")


def _with_term_frequencies(pairs: DataFrame, records: DataFrame, match: MatchConfig) -> DataFrame:
    """``tf_<name>``: the relative frequency, among the records' values, of the left value
    of each term-frequency adjusted comparison (0 when missing), as
    transforms/compare.term_frequencies defines it, by one aggregation for every such
    comparison: the joined path's counterpart of the frequencies a held index computes."""
    adjusted = [c for c in match.comparisons if c.term_frequency]
    if not adjusted:
        return pairs
    values = records.select(F.explode(F.array(*[
        F.struct(F.lit(c.key).alias("name"), F.col(value_column(c)).alias("value")) for c in adjusted])).alias("v"))
    counts = values.select("v.*").where(nonblank("value")).groupBy("name", "value").count()
    tf = counts.select("name", "value", (F.col("count") / F.sum("count").over(Window.partitionBy("name"))).alias("tf"))
    tf = tf.persist(StorageLevel.MEMORY_AND_DISK)
    for c in adjusted:
        col = value_column(c)
        pairs = pairs.join(tf.where(F.col("name") == c.key).select(F.col("value").alias(f"{col}_a"),
                                                                    F.col("tf").alias(f"tf_{c.key}")),
                           f"{col}_a", "left").fillna(0.0, [f"tf_{c.key}"])
    return pairs


def _held_level_batch(batch: pa.RecordBatch, version: tuple, match: MatchConfig) -> pa.RecordBatch:
    """Pairs (KEYS) -> ``levels_schema`` columns, both records found in the worker's index
    of the records (jobs/spark/lookup.py): each compared column is encoded once per worker
    (transforms/compare.Vocabulary), so a pair's values are two integer codes."""
    index = record_index(version)
    batch, rows = found_pairs(index, batch)
    gammas, tf = {}, {}
    for c in match.comparisons:
        col = value_column(c)
        vocab, (codes,) = index.cached(("vocabulary", col), lambda: Vocabulary.encode(index.column(col)))
        gammas[f"gamma_{c.key}"] = coded_levels(c, vocab, codes[rows["a"]], codes[rows["b"]])
        if c.term_frequency:
            freq = index.cached(("tf", col), lambda: term_frequencies(index.column(col)))
            tf[f"tf_{c.key}"] = freq[rows["a"]]
    return level_batch(pa.RecordBatch.from_pydict({**{k: batch.column(k) for k in KEYS}, **tf}), match.comparisons,
                       gammas=gammas)


def levels(pairs: DataFrame, match: MatchConfig, keep: tuple[str, ...] = ()) -> DataFrame:
    """Pairs with their comparison levels: KEYS, gamma_<name>..., tf_<name>..., ``keep``."""

    def compare(batches):
        for batch in batches:
            yield level_batch(batch, match.comparisons, keep)

    return pairs.mapInArrow(compare, spark_schema(levels_schema(match.comparisons, keep)))


def write_levels(spark, path: str, cand_path: str, records: DataFrame, candidates: DataFrame, match: MatchConfig,
                 out_path: str, batch_rows: int) -> tuple[int, tuple | None]:
    """Write the comparison levels of every candidate pair to ``out_path``: written by the
    tasks that compute them, then read for the model and the scores (cheaper than caching
    millions of rows in the JVM). Returns the pairs written, and the version of the records
    when the tasks held them.

    When Spark would broadcast the compared columns anyway, each task reads its candidates
    and finds both records in its worker's index (jobs/spark/lookup.py): no joins.
    Otherwise the candidates are joined with both records' values (and term frequencies)
    by rid. Both give the same levels."""
    cols = value_columns(match.comparisons)
    schema = levels_schema(match.comparisons)
    if not match.embeddings and fits_in_tasks(spark, records.select("rid", "source", "id", *cols)):
        version = dataset_version(path)
        return map_parquet(spark, cand_path, out_path, schema, lambda batch: _held_level_batch(batch, version, match),
                           KEYS, batch_rows), version
    pairs = _with_term_frequencies(with_record_columns(candidates.select(*KEYS), records, cols, by_rid=True),
                                   records, match)
    return write_parquet(pairs, out_path, schema, transform=lambda batch: level_batch(batch, match.comparisons)), None


def u_sample(spark, records: DataFrame, version: tuple | None, columns: list[str], mode: str, n_pairs: int,
             seed: int):
    """The records of the random pairs u is counted on: about ``n_pairs`` pairs, chosen by
    a seeded hash of the record key, xxhash64(rid, seed), so that every run draws the same
    (transforms/fellegi_sunter.u_sample_rows). Returns ``(sample_of, release)``:
    ``sample_of()`` gives the sample as an Arrow table inside a task, ``release()`` frees
    what was shared once the counts are in.

    With ``version`` (the records held by the tasks, jobs/spark/lookup.py) each worker
    draws the sample from its index (``_held_sample``); otherwise Spark draws it and it is
    broadcast (``_drawn_sample``). Both give the same records."""
    if version is not None:
        def sample_of():
            index = record_index(version)
            return index.cached(("u sample", tuple(columns), mode, n_pairs, seed),
                                lambda: _held_sample(index, columns, mode, n_pairs, seed))
        return sample_of, lambda: None
    shared = spark.sparkContext.broadcast(_drawn_sample(records, columns, mode, n_pairs, seed).to_batches())
    return (lambda: pa.Table.from_batches(shared.value)), shared.unpersist


def _drawn_sample(records: DataFrame, columns: list[str], mode: str, n_pairs: int, seed: int) -> pa.Table:
    """``u_sample`` drawn by Spark: the first records in hash order (per source when
    linking). Small by construction, so it is brought to the driver."""
    keyed = records.select("source", "id", *columns, F.xxhash64("rid", F.lit(seed)).alias("h"))
    size = u_sample_size(mode, n_pairs)
    if mode == "dedupe":
        sample = keyed.orderBy("h", "source", "id").limit(size)
    else:
        rank = F.row_number().over(Window.partitionBy("source").orderBy("h", "id"))
        sample = keyed.withColumn("r", rank).where(F.col("r") <= size).drop("r")
    return sample.orderBy("source", "h").toArrow()  # driver-ok: u_sample_size rows per source at most


def _held_sample(index, columns: list[str], mode: str, n_pairs: int, seed: int) -> pa.Table:
    """``u_sample`` of the records of a worker's index, by the same hash as Spark's
    xxhash64(rid, seed) (transforms/xxhash.py)."""
    seeds = np.full(len(index.rids), seed, np.int32 if -2**31 <= seed < 2**31 else np.int64)  # as F.lit types it
    h = xxhash64([pa.array(index.rids), pa.array(seeds)])
    sources = pc.dictionary_encode(index.column("source")).indices.to_numpy()
    return index.table(["source", "id", *columns]).take(pa.array(u_sample_rows(h, sources, mode, n_pairs)))


def u_counts(spark, sample_of, match: MatchConfig, mode: str, partitions: int) -> list[np.ndarray]:
    """Level counts of each comparison over all pairs of the sample, ``sample_of()`` in a
    task, one slice of the pairs per task."""
    def count(batches):
        sample = sample_of()
        for batch in batches:
            for part in batch.column("id").to_numpy():
                for k, n in enumerate(sample_level_counts(sample, match.comparisons, mode, int(part), partitions)):
                    yield pa.RecordBatch.from_pydict({"k": np.full(len(n), k, np.int32),
                                                      "level": np.arange(len(n), dtype=np.int32), "n": n})

    rows = spark.range(partitions, numPartitions=partitions).mapInArrow(count, "k int, level int, n double").groupBy(
        "k", "level").agg(F.sum("n").alias("n")).collect()  # driver-ok: one row per comparison level
    out = [np.zeros(len(c.levels) + 1) for c in match.comparisons]
    for r in rows:
        out[r["k"]][r["level"]] = r["n"]
    return out


def comparison_meta(match: MatchConfig) -> list[dict]:
    return [{"name": c.key, "column": c.column, "labels": c.labels(), "term_frequency": c.term_frequency}
            for c in match.comparisons]


def train_fellegi_sunter(spark, gam: DataFrame, records: DataFrame, config: SigilConfig, version: tuple | None,
                         job: Run) -> MatchModel:
    """Fellegi-Sunter: u from random record pairs, m and the prior by EM. With ``version``
    (the records held by the tasks, jobs/spark/lookup.py) the tasks draw the sample themselves."""
    match, em, mode = config.match, config.match.em, config.er_mode()
    with job.stage("u from random pairs"):
        sample_of, release = u_sample(spark, records, version, value_columns(match.comparisons), mode, em.u_pairs, em.seed)
        # one slice of the pairs per core: the work is all CPU, more tasks only cost scheduling
        u = u_from_counts(u_counts(spark, sample_of, match, mode, spark.sparkContext.defaultParallelism))
        release()
    with job.stage("em"):
        names = [c.key for c in match.comparisons]
        grouped = gam.groupBy(*[f"gamma_{n}" for n in names]).count()
        rows = grouped.limit(MAX_PATTERNS + 1).collect()  # driver-ok: distinct level patterns, bounded above
        if len(rows) > MAX_PATTERNS:
            raise InputError(f"more than {MAX_PATTERNS} distinct comparison patterns: use fewer levels")
        patterns = np.array([[r[f"gamma_{n}"] for n in names] for r in rows], dtype=np.int8).reshape(-1, len(names))
        counts = np.array([r["count"] for r in rows], dtype=np.float64)
        m, u, prior, history = fit_em(patterns, counts, u, prior=em.prior, max_iterations=em.max_iterations,
                                      tolerance=em.tolerance, update_u=em.update_u,
                                      u_prior_pairs=em.u_prior_pairs)
    job.manifest["metrics"].update({"em_iterations": len(history), "prior": prior, "patterns": len(rows)})
    return fellegi_sunter(comparison_meta(match), m, u, prior, [c.term_frequency for c in match.comparisons],
                          history=history)


def pseudo_labelled(candidates: DataFrame, pseudo: PseudoLabels, seed: int) -> DataFrame:
    """(KEYS, label) from the candidates' cosines: each record's mutual nearest at or above
    ``min_cosine`` is a match; a seeded sample of the pairs under ``max_negative_cosine``
    are non-matches."""
    if "cosine" not in candidates.columns:
        raise InputError("match.pseudo_labels need candidates with a cosine: run nlsh-block and set match.input")
    scored_pairs = candidates.where(F.col("cosine").isNotNull())
    best = {}
    for side, other in (("a", "b"), ("b", "a")):
        order = Window.partitionBy(f"source_{side}", f"id_{side}", f"source_{other}").orderBy(
            F.desc("cosine"), f"id_{other}")
        best[side] = F.row_number().over(order) == 1
    ranked = scored_pairs.select(*KEYS, "cosine", best["a"].alias("best_a"), best["b"].alias("best_b"))
    positives = ranked.where(F.col("best_a") & F.col("best_b") & (F.col("cosine") >= pseudo.min_cosine))
    negatives = (scored_pairs.where(F.col("cosine") < pseudo.max_negative_cosine)
                 .orderBy(F.xxhash64(*KEYS, F.lit(seed))).limit(pseudo.max_negatives))
    return positives.select(*KEYS, F.lit(1).alias("label")).unionByName(negatives.select(*KEYS, F.lit(0).alias("label")))


def labelled(spark, gam: DataFrame, records: DataFrame, candidates: DataFrame, config: SigilConfig,
             sources: list[str], job: Run):
    """(gammas, labels) of the labelled pairs, on the driver. A file of matches only gets
    its non-matches from the candidate pairs it does not list (as many as allowed); pseudo
    labels add pairs the given labels do not cover."""
    match, lab = config.match, config.match.labels
    names = [f"gamma_{c.key}" for c in match.comparisons]
    pairs = None
    if lab is not None:
        pairs = labelled_pairs(spark, lab, records, sources, config.er_mode(), job)
    if match.pseudo_labels is not None:
        pseudo = pseudo_labelled(candidates, match.pseudo_labels, match.em.seed)
        if pairs is not None:
            pseudo = pseudo.join(pairs.select(*KEYS), KEYS, "left_anti")
        pseudo = pseudo.persist(StorageLevel.MEMORY_AND_DISK)
        counts = dict(pseudo.groupBy("label").count().collect())  # driver-ok: two rows
        job.manifest["metrics"].update({"pseudo_matches": counts.get(1, 0), "pseudo_non_matches": counts.get(0, 0)})
        pairs = pseudo if pairs is None else pairs.unionByName(pseudo)
    max_pairs = lab.max_pairs if lab is not None else PairLabels.model_fields["max_pairs"].default
    n = pairs.count()
    if n > max_pairs:
        raise InputError(f"{n} labelled pairs exceed match.labels.max_pairs={max_pairs} (they are fitted "
                         "on the driver)")
    cols = value_columns(match.comparisons)
    values = with_record_columns(pairs, records, cols)
    given = levels(_with_term_frequencies(values, records, match), match, keep=("label",))
    if lab is not None and lab.label_column is None:
        negatives = (gam.join(pairs.select(*KEYS), KEYS, "left_anti")
                     .orderBy(F.xxhash64(*KEYS, F.lit(match.em.seed))).limit(max(max_pairs - n, 0))
                     .select(*names, F.lit(0).alias("label")))
        given = given.select(*names, "label").unionByName(negatives)
    rows = given.select(*names, "label").collect()  # driver-ok: labelled pairs, bounded by labels.max_pairs
    gammas = np.array([[r[c] for c in names] for r in rows], dtype=np.int8).reshape(-1, len(names))
    return gammas, np.array([r["label"] for r in rows], dtype=np.int8)


def scored(gam: DataFrame, model: MatchModel) -> DataFrame:
    def score(batches):
        for batch in batches:
            yield score_batch(batch, model)

    schema = datasets.scored(model.names)
    return gam.mapInArrow(score, spark_schema(datasets.select(schema, *schema.names[:-1])))  # is_match decided after


def decided(pairs: DataFrame, threshold: float, one_to_one: bool) -> DataFrame:
    """``is_match``: probability at or above ``threshold`` and, one to one, the pair is the
    best of both its records (highest weight; ties go to the smaller other key), so every
    record matches at most one record of the other source (mutual best match)."""
    above = F.col("match_probability") >= threshold
    if not one_to_one:
        return pairs.withColumn("is_match", above)
    best = {}
    for side, other in (("a", "b"), ("b", "a")):
        order = Window.partitionBy(f"source_{side}", f"id_{side}", f"source_{other}").orderBy(
            F.desc("match_weight"), f"id_{other}")
        best[side] = F.row_number().over(order) == 1
    ranked = pairs.where(above).select(*KEYS, best["a"].alias("best_a"), best["b"].alias("best_b"))
    mutual = ranked.where("best_a and best_b").select(*KEYS, F.lit(True).alias("is_match"))
    return pairs.join(mutual, KEYS, "left").fillna(False, ["is_match"])


def choose_model(spark, gam, records, candidates, config: SigilConfig, sources: list[str], version: tuple | None,
                 job: Run) -> MatchModel:
    match = config.match
    if match.load_model:
        return load_model(match.load_model, match.comparisons)
    data = None
    if match.labels is not None or match.pseudo_labels is not None:
        with job.stage("labelled pairs"):
            data = labelled(spark, gam, records, candidates, config, sources, job)
        job.manifest["metrics"].update({"labelled_pairs": len(data[1]), "labelled_matches": int(data[1].sum())})
    if match.model == "logistic":
        with job.stage("fit logistic"):
            model = fit_logistic(*data, comparison_meta(match), seed=match.em.seed)
    else:
        model = train_fellegi_sunter(spark, gam, records, config, version, job)
    if match.threshold == "best_f1":
        model.threshold, f1 = best_threshold(model.probability(model.match_weight(data[0])), data[1])
        job.manifest["metrics"]["labelled_f1"] = f1
    else:
        model.threshold = match.threshold
    return model


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    match = config.match
    if match is None:
        raise InputError("the configuration has no 'match' section")
    with job_run("match", spark, config, strict, quiet) as job:
        path, cand_path = config.records_path(), match.input or config.stage_path("block", "candidates")
        records = read_input(spark, path, "ingested records", "ingest")
        candidates = read_input(spark, cand_path, "candidate pairs", "block")
        if match.embeddings:
            emb = read_input(spark, match.embeddings, "record embeddings", "nlsh-block")
            records = records.join(emb.select("rid", F.col("vector").alias(EMBEDDING)), "rid", "left")
        cols = value_columns(match.comparisons)
        missing = [c for c in cols if c not in records.columns]
        if missing:
            raise InputError(f"match.comparisons read columns {missing} that the records at {path} lack")
        counts = dict(records.groupBy("source").count().collect())  # driver-ok: one row per source
        sources = sorted(counts)
        batch_rows = config.spark.arrow_batch_rows
        with job.stage("levels"):
            n_pairs, version = write_levels(spark, path, cand_path, records, candidates, match, job.path("levels"),
                                            batch_rows)
            gam = spark.read.parquet(job.path("levels"))
        model = choose_model(spark, gam, records, candidates, config, sources, version, job)
        job.storage.write_text(job.path("model.json"), model.to_json())
        with job.stage("score"):
            schema = datasets.scored(model.names)
            if match.one_to_one:
                write_parquet(decided(scored(gam, model), model.threshold, True), job.path("pairs"), schema)
            else:  # scored and decided by the tasks that read the levels
                map_parquet(spark, job.path("levels"), job.path("pairs"), schema,
                            lambda batch: score_batch(batch, model, model.threshold), gam.columns, batch_rows)
        job.storage.delete(job.path("levels"))
        out = spark.read.parquet(job.path("pairs"))
        matches = out.where(F.col("is_match"))
        n_matches = matches.count()
        metrics = job.manifest["metrics"]
        metrics.update({"records": sum(counts.values()), "pairs_scored": n_pairs, "matches": n_matches,
                        "threshold": model.threshold, "model": model.kind})
        if config.truth is not None:
            with job.stage("quality"):
                metrics.update(pair_quality(matches, n_matches, read_truth(spark, config, sources, records)))
        job.manifest["inputs"].update({"records": sum(counts.values()), "candidates": n_pairs})
        job.manifest["outputs"]["pairs"] = n_pairs
        job.log_metrics("pairs_scored", "matches", "threshold", "precision", "recall", "f1")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/match.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["match", *sys.argv[1:]]))
