"""nlsh-train job: fine-tune the record encoder as a neural LSH function (NLSHBlock).

Stages: labels (labelled pairs mapped to records, jobs/spark/labels.py: id tables by id,
serialised DeepMatcher-style lines by content; what does not map is quarantined; a seeded
sample of ``max_pairs`` matches with their anchors' non-matches, and of ``valid_pairs``
held-out matches) -> records (those of the kept pairs plus a seeded sample of
``mining_pool`` others, gathered on the driver up to ``max_records``) -> with a rule
instead of labels, the pairs it labels: every record's nearest neighbours under the
starting model and a random partner each -> training (transforms/nlsh.fine_tune: the (R, cR)
hinge, in-batch, mined hard and labelled negatives; the records encoded once, hard negatives
mined from a memory bank) -> the model saved. The cost of training is bounded by
``max_pairs``, ``mining_pool`` and ``valid_pool``, not by the size of the input.

Training runs on the driver, on its CPU cores (torch); everything it gathers is bounded by
configuration. Outputs under ``<output>/nlsh_train/``: ``model`` (a sentence-transformers
directory, weights as safetensors, with ``nlsh.json``: the encoder settings and training
configuration), ``report.json`` (loss per step and epoch, validation recall at each k per
epoch) and ``manifest.json``. nlsh-block loads ``model``; its path must be readable by the
Spark workers.

Run: ``sigil nlsh-train --conf FILE`` or ``spark-submit jobs/nlsh_train.py --conf FILE``.
"""

from __future__ import annotations

import json
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sigil.jobs.spark.io import read_input
from sigil.jobs.spark.labels import labelled_pairs
from sigil.jobs.spark.session import job_run
from sigil.run import Run
from sigil.schemas.config import SigilConfig
from sigil.transforms.encoder import load_model, serialized
from sigil.transforms.match_rules import rule_columns
from sigil.transforms.nlsh import TrainingData, TrainingSettings, fine_tune, rule_labelled_pairs, sample_pairs
from sigil.transforms.records import InputError, open_input

def training_records(records: DataFrame, ids: DataFrame, columns: list[str], pool: int, limit: int,
                     seed: int) -> pa.Table:
    """The records of ``ids`` (source, id) and a seeded sample of ``pool`` others, on the driver."""
    ranked = records.withColumn("_h", F.xxhash64("rid", F.lit(seed)))
    sample = ranked.orderBy("_h").limit(pool).select("source", "id")
    keys = ids.union(sample).distinct()
    chosen = records.join(keys, ["source", "id"]).select("rid", "source", "id", *columns)
    n = chosen.count()
    if n > limit:
        raise InputError(f"training needs {n} records on the driver, over nlsh_train.max_records={limit}: "
                         "lower mining_pool or raise max_records")
    return chosen.orderBy("rid").toArrow()  # driver-ok: bounded by nlsh_train.max_records


def bounded(rows: list[dict], limit: int, rng: np.random.Generator) -> list[dict]:
    """A seeded sample of at most ``limit`` of the matching rows, with the non-matching rows
    whose first record is one of the sample's (they are its anchors' labelled negatives)."""
    matches = np.flatnonzero([r["label"] == 1 for r in rows])
    kept = set(sample_pairs(matches, limit, rng).tolist())
    anchors = {(rows[i]["source_a"], rows[i]["id_a"]) for i in kept}
    return [r for i, r in enumerate(rows) if i in kept or (r["label"] == 0 and (r["source_a"], r["id_a"]) in anchors)]


def index_pairs(pairs: list[dict], position: dict) -> np.ndarray:
    """(anchor, other) positions of pairs whose records are both known."""
    out = [(position[(p["source_a"], p["id_a"])], position[(p["source_b"], p["id_b"])]) for p in pairs
           if (p["source_a"], p["id_a"]) in position and (p["source_b"], p["id_b"]) in position]
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def save(model, settings: dict, report: dict, job: Run) -> None:
    """The model (safetensors) with its settings, and the report, into the job's staging directory."""
    fs, root = open_input(job.path("model"))
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp, safe_serialization=True)
        with open(f"{tmp}/nlsh.json", "w") as f:
            json.dump(settings, f, indent=2)
        fs.create_dir(root, recursive=True)
        pafs.copy_files(tmp, root, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
    fs, report_path = open_input(job.path("report.json"))
    with fs.open_output_stream(report_path) as out:
        out.write(json.dumps(report, indent=2).encode())


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    nt, encoder = config.nlsh_train, config.encoder
    if nt is None or encoder is None:
        raise InputError("the configuration needs 'encoder' and 'nlsh_train' sections")
    mode = config.er_mode()
    rng = np.random.default_rng(nt.seed)
    with job_run("nlsh_train", spark, config, strict, quiet) as job:
        path = config.records_path()
        records = read_input(spark, path, "ingested records", "ingest")
        columns = list(dict.fromkeys([*encoder.columns, *(rule_columns(nt.rule) if nt.rule else [])]))
        missing = [c for c in columns if c not in records.columns]
        if missing:
            raise InputError(f"encoder.columns / rule columns {missing}: not columns of the records at {path}")
        sources = sorted(r[0] for r in records.select("source").distinct().collect())  # driver-ok: sources
        metrics = job.manifest["metrics"]
        with job.stage("labels"):
            labelled = {}
            for name, spec in (("train", nt.labels), ("valid", nt.valid)):
                if spec is None:
                    continue
                pairs = labelled_pairs(spark, spec, records, sources, mode, job, name)
                rows = pairs.toArrow().to_pylist()  # driver-ok: labels
                metrics.update({f"{name}_pairs": len(rows), f"{name}_matches": sum(r["label"] for r in rows)})
                labelled[name] = bounded(rows, nt.max_pairs if name == "train" else nt.valid_pairs, rng)
            ids = [(r["source_" + s], r["id_" + s]) for rows in labelled.values() for r in rows for s in "ab"]
            ids = spark.createDataFrame(sorted(set(ids)), "source string, id string")
        with job.stage("records"):
            table = training_records(records, ids, columns, nt.mining_pool, nt.max_records, nt.seed)
            position = {(s, i): n for n, (s, i) in enumerate(zip(table.column("source").to_pylist(),
                                                                  table.column("id").to_pylist()))}
            side = np.array([sources.index(s) for s in table.column("source").to_pylist()], np.int32)
            data = TrainingData(serialized(table, encoder.columns), side, np.zeros((0, 2), np.int64),
                                link=mode == "link")
            metrics["training_records"] = table.num_rows
        length = nt.max_seq_length or encoder.max_seq_length
        vectors = None
        precision = "bfloat16" if encoder.precision == "bfloat16" else "float32"  # of encodings; steps are float32
        model = load_model.__wrapped__(encoder.model, length)  # not the cached one: it is trained in place
        if nt.rule is not None:
            with job.stage("rule pairs"):
                positives, negatives, vectors = rule_labelled_pairs(model, data, table, nt.rule,
                                                                    nt.rule_neighbours, encoder.batch_size, rng,
                                                                    precision)
                if not len(positives):
                    raise InputError("the rule holds for none of the sampled pairs: nothing to train on")
                held = rng.permutation(len(positives))
                cut = int(round(len(positives) * nt.rule_valid_share))
                data.valid = sample_pairs(positives[np.sort(held[:cut])], nt.valid_pairs, rng)
                data.positives = sample_pairs(positives[np.sort(held[cut:])], nt.max_pairs, rng)
                data.negatives = negatives[np.isin(negatives[:, 0], data.positives[:, 0])]
                metrics.update({"rule_pairs": len(positives) + len(negatives), "rule_matches": len(positives)})
        else:
            for name, rows in labelled.items():
                pos = index_pairs([r for r in rows if r["label"] == 1], position)
                if name == "train":
                    data.positives = pos
                    data.negatives = index_pairs([r for r in rows if r["label"] == 0], position)
                else:
                    data.valid = pos
        if not len(data.positives):
            raise InputError("no matching pair to train on among the labels")
        settings = TrainingSettings(radius=nt.radius, c=nt.c, epochs=nt.epochs, batch_pairs=nt.batch_pairs,
                                    learning_rate=nt.learning_rate, train_layers=nt.train_layers,
                                    hard_negatives=nt.hard_negatives, labelled_negatives=nt.labelled_negatives,
                                    batch_size=encoder.batch_size, ks=tuple(nt.eval_k), valid_pool=nt.valid_pool,
                                    precision=precision,
                                    seed=nt.seed)
        with job.stage("train"):
            report = fine_tune(model, data, settings, job.log, vectors)
        report.update({"positives": len(data.positives), "negatives": len(data.negatives),
                       "valid": len(data.valid), "records": table.num_rows})
        with job.stage("save"):
            meta = {"encoder": encoder.model_dump(mode="json"),
                    "training": nt.model_dump(mode="json", by_alias=True), "sources": sources, "mode": mode,
                    "train_max_seq_length": length}
            save(model, meta, report, job)
        metrics.update({k: report[k] for k in ("positives", "negatives", "valid", "seconds", "trainable_parameters",
                                               "valid_candidates", "encoded")})
        metrics["epochs"] = report["epochs"]
        metrics["valid_recall_before"] = report["valid_recall_before"]
        job.manifest["outputs"]["model"] = job.final_path("model")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/nlsh_train.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["nlsh-train", *sys.argv[1:]]))
