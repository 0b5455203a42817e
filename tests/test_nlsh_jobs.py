"""nlsh-train and nlsh-block on Abt-Buy: the trained hash's pair completeness, the contracts,
hyperplane LSH and the MinHash union, rule-labelled training, semi-supervised matching."""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DATA, NO_CHECKS, needs_data
from sigil.schemas import datasets
from sigil.schemas.config import load_config
from sigil.transforms.pair_text import map_pairs

ABT_BUY = DATA / "er" / "abt_buy"
pytestmark = needs_data(ABT_BUY)
COLUMNS = ["name", "description", "price"]
NORMALIZE = ["nfkc", "casefold", "strip_punctuation", "whitespace"]


def abt_buy_conf(output, **sections) -> dict:
    return {
        "output": str(output), "spark": {"shuffle_partitions": 4}, "quality": NO_CHECKS,
        "ingest": {"sources": [{"name": "a", "path": str(ABT_BUY / "tableA.csv"), "id_column": "id"},
                               {"name": "b", "path": str(ABT_BUY / "tableB.csv"), "id_column": "id"}],
                   "attributes": [{"name": c, "normalize": NORMALIZE} for c in COLUMNS]},
        "block": {"mode": "link", "tokenizer": {"kind": "qgram", "q": 3, "columns": ["name"]},
                  "lsh": {"threshold": 0.2}, "exact_jaccard": True, "min_jaccard": 0.2},
        "truth": {"path": str(ABT_BUY / "matches.csv"), "id_columns": ["tableA_id", "tableB_id"]},
        "encoder": {"columns": COLUMNS, "max_seq_length": 64, "precision": "bfloat16"},
        "nlsh_train": {"labels": {"path": str(ABT_BUY / "pairs" / "train.txt"), "format": "serialized"},
                       "valid": {"path": str(ABT_BUY / "pairs" / "valid.txt"), "format": "serialized"},
                       "epochs": 2},
        "nlsh_block": {"k": 10},
        **sections,
    }


def run(spark, job: str, conf: dict) -> dict:
    import importlib

    return importlib.import_module(f"sigil.jobs.{job}").run(spark, load_config(base=conf), quiet=True)


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    """Abt-Buy ingested, MinHash-blocked, the hash trained (2 epochs) and top-10 blocked."""
    out = tmp_path_factory.mktemp("abt_buy_nlsh")
    conf = abt_buy_conf(out)
    for job in ("ingest", "block", "nlsh_train", "nlsh_block"):
        run(spark, job, conf)
    return out, conf


def manifest(out, job):
    return json.loads((out / job / "manifest.json").read_text())


def test_the_trained_hash_reaches_the_pair_completeness_target(trained):
    out, _ = trained
    train = manifest(out, "nlsh_train")["metrics"]
    assert train["positives"] > 550 and train["valid"] > 180  # the serialised pairs were mapped to ids
    at_k = manifest(out, "nlsh_block")["metrics"]["pair_completeness_at_k"]
    assert at_k["3"] >= 0.93 and at_k["10"] >= 0.97, at_k
    before = train["valid_recall_before"]
    after = train["epochs"][-1]["valid_recall"]
    assert after["3"] > before["3"] + 0.05
    report = json.loads((out / "nlsh_train" / "report.json").read_text())
    assert len(report["epochs"]) == 2 and report["steps"] and report["steps"][-1] < report["steps"][0]
    model = out / "nlsh_train" / "model"
    assert (model / "model.safetensors").is_file()
    assert json.loads((model / "nlsh.json").read_text())["encoder"]["columns"] == COLUMNS


def test_candidates_and_embeddings_follow_the_contracts(trained):
    out, _ = trained
    cands = pq.read_table(out / "nlsh_block" / "candidates")
    assert cands.schema == datasets.CANDIDATES
    emb = pq.read_table(out / "nlsh_block" / "embeddings")
    assert emb.schema == datasets.embeddings(384) and emb.num_rows == 1076 + 1064
    per_a = cands.group_by("id_a").aggregate([("id_b", "count")]).column("id_b_count").to_pylist()
    assert len(per_a) == 1076 and set(per_a) == {10}  # k Buy records for every Abt record
    vectors = {(s, i): np.asarray(v, np.float32) for s, i, v in zip(*(emb.column(c).to_pylist()
                                                                       for c in ("source", "id", "vector")))}
    sample = cands.slice(0, 200).to_pylist()
    got = [r["cosine"] for r in sample]
    want = [float(vectors[(r["source_a"], r["id_a"])] @ vectors[(r["source_b"], r["id_b"])]) for r in sample]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_the_notebook_reads_the_run(trained, monkeypatch):
    from conftest import run_notebook

    _, text = run_notebook("nlsh.ipynb", str(trained[0]), monkeypatch)
    assert "pair completeness" in text and "epoch 1" in text and "sony a" in text


def test_hyperplane_lsh_with_the_minhash_union_over_reused_embeddings(spark, trained, tmp_path):
    out, conf = trained
    stored = tmp_path / "embeddings"
    shutil.copytree(out / "nlsh_block" / "embeddings", stored)
    conf = {**conf, "nlsh_block": {"method": "lsh", "union_minhash": True, "embeddings": str(stored),
                                   "lsh": {"tables": 64, "bits": 12}}}
    metrics = run(spark, "nlsh_block", conf)["metrics"]
    assert metrics["model"] == f"embeddings reused from {stored}"
    written, before = (pq.read_table(p).sort_by("rid") for p in (out / "nlsh_block" / "embeddings", stored))
    assert written.equals(before.cast(written.schema))
    cands = pq.read_table(out / "nlsh_block" / "candidates")
    minhash = pq.read_table(out / "block" / "candidates")
    keys = lambda t: set(zip(*(t.column(c).to_pylist() for c in ("id_a", "id_b"))))  # noqa: E731
    assert keys(minhash) <= keys(cands)
    neural = cands.filter(pa.compute.is_valid(cands.column("cosine")))
    assert neural.num_rows > 0 and metrics["pair_completeness"] >= 0.95
    assert (out / "nlsh_block" / "bucket_sizes").exists()


def test_ivf_with_every_cell_probed_is_exact_top_k_and_close_with_fewer(spark, trained, tmp_path):
    out, conf = trained
    stored = tmp_path / "embeddings"
    shutil.copytree(out / "nlsh_block" / "embeddings", stored)

    def block(name, **nb):
        conf_ = {**conf, "output": str(tmp_path / name), "block": {**conf["block"], "input": str(out / "ingest" / "records")},
                 "nlsh_block": {"k": 10, "embeddings": str(stored), **nb}}
        metrics = run(spark, "nlsh_block", conf_)["metrics"]
        cands = pq.read_table(tmp_path / name / "nlsh_block" / "candidates").sort_by([("id_a", "ascending"),
                                                                                      ("id_b", "ascending")])
        return metrics, cands.select(["id_a", "id_b", "cosine"])

    exact, want = block("topk")
    every, got = block("every", method="ivf", ivf={"cell_size": 200, "probes": 5})  # 1,064 Buy records: 5 cells
    assert every["cells"] == 5 and got.select(["id_a", "id_b"]).equals(want.select(["id_a", "id_b"]))
    np.testing.assert_allclose(got.column("cosine").to_numpy(), want.column("cosine").to_numpy(), atol=1e-5)
    few, got = block("few", method="ivf", ivf={"cell_size": 100, "probes": 3})
    assert few["cells"] == 11 and got.num_rows == want.num_rows  # still k per Abt record
    pc, pc_exact = few["pair_completeness_at_k"], exact["pair_completeness_at_k"]
    assert pc["10"] >= pc_exact["10"] - 0.03 and pc["1"] >= pc_exact["1"] - 0.02, (pc, pc_exact)


def test_a_match_rule_labels_the_training_pairs(spark, trained, tmp_path):
    _, conf = trained
    rule = {"all": [{"column": "name", "extract": "first_word", "kind": "exact"},
                    {"column": "name", "extract": "codes", "kind": "levenshtein", "max": 1}]}
    conf = {**conf, "output": str(tmp_path), "block": {**conf["block"], "input": str(trained[0] / "ingest" / "records")},
            "nlsh_train": {"rule": rule, "epochs": 0, "rule_neighbours": 5, "max_pairs": 200, "valid_pairs": 50}}
    metrics = run(spark, "nlsh_train", conf)["metrics"]
    assert 300 < metrics["rule_matches"] < metrics["rule_pairs"]
    assert metrics["positives"] == 200 and metrics["valid"] == 50  # seeded samples of the rule's matches
    assert 0 < metrics["negatives"] < metrics["rule_pairs"] - metrics["rule_matches"]  # the sample's anchors' only
    assert metrics["encoded"] == 0  # the rule's encoding of the records starts the memory bank


def test_few_labels_matching_gains_from_the_trained_hash(spark, trained, tmp_path):
    """10 % of the training labels: logistic matching with and without the embeddings (here of
    the hash trained on all training labels; benchmarks/nlsh.py trains it on the 10 % alone)."""
    out, conf = trained
    tables = {s: list(csv.DictReader(open(ABT_BUY / f"table{t}.csv", encoding="utf-8")))
              for s, t in (("a", "A"), ("b", "B"))}
    mapped, _ = map_pairs(open(ABT_BUY / "pairs" / "train.txt", encoding="utf-8"), tables, COLUMNS)
    rows = [mapped[i] for i in np.random.default_rng(0).permutation(len(mapped))[: len(mapped) // 10]]
    labels = tmp_path / "labels.csv"
    labels.write_text("id_a,id_b,label\n" + "".join(f"{a},{b},{y}\n" for _, a, b, y in rows))
    base = [{"column": "name", "levels": [{"kind": "jaccard", "min": 0.6}, {"kind": "jaccard", "min": 0.4},
                                          {"kind": "jaccard", "min": 0.25}]},
            {"column": "name", "name": "name_codes", "extract": "codes",
             "levels": [{"kind": "exact"}, {"kind": "jaccard", "min": 0.5}, {"kind": "jaccard", "min": 0.01}]},
            {"column": "price", "levels": [{"kind": "numeric_diff", "max": 0.05}, {"kind": "numeric_diff", "max": 0.25}]}]
    match = {"input": str(out / "nlsh_block" / "candidates"), "model": "logistic", "threshold": "best_f1",
             "one_to_one": True, "labels": {"path": str(labels)}, "comparisons": base}
    conf = {**conf, "block": {**conf["block"], "input": str(out / "ingest" / "records")}}
    without = run(spark, "match", {**conf, "output": str(tmp_path / "without"), "match": match})["metrics"]
    cosine = {"column": "embedding", "levels": [{"kind": "cosine", "min": m} for m in (0.9, 0.8, 0.7, 0.6)]}
    helped = {**match, "comparisons": [*base, cosine], "embeddings": str(out / "nlsh_block" / "embeddings"),
              "pseudo_labels": {"min_cosine": 0.8}}
    with_nlsh = run(spark, "match", {**conf, "output": str(tmp_path / "with"), "match": helped})["metrics"]
    assert with_nlsh["pseudo_matches"] > 100
    assert with_nlsh["f1"] > without["f1"] + 0.02, (with_nlsh["f1"], without["f1"])


def test_nlsh_block_errors_name_the_fix(spark, trained, tmp_path):
    from sigil.transforms.records import InputError

    _, conf = trained
    ingested = str(trained[0] / "ingest" / "records")
    with pytest.raises(InputError, match="run 'sigil nlsh-train' first"):
        run(spark, "nlsh_block", {**conf, "output": str(tmp_path), "nlsh_block": {"input": ingested}})
    partial = tmp_path / "partial"
    partial.mkdir()
    pq.write_table(pq.read_table(trained[0] / "nlsh_block" / "embeddings").slice(0, 100), partial / "part.parquet")
    with pytest.raises(InputError, match=re.escape(f"embeddings at {partial} cover 100 of the")):
        run(spark, "nlsh_block", {**conf, "output": str(tmp_path), "nlsh_block": {"input": ingested,
                                                                                   "embeddings": str(partial)}})
    # a failure after encoding keeps the embeddings for the rerun
    full = tmp_path / "full"
    shutil.copytree(trained[0] / "nlsh_block" / "embeddings", full)
    with pytest.raises(InputError, match="run 'sigil block' first"):
        run(spark, "nlsh_block", {**conf, "output": str(tmp_path / "failed"), "nlsh_block": {
            "input": ingested, "embeddings": str(full), "union_minhash": True}})
    kept = pq.read_table(tmp_path / "failed" / "nlsh_block.kept" / "embeddings")
    assert kept.num_rows == pq.read_table(full).num_rows and not (tmp_path / "failed" / "nlsh_block").exists()
    with pytest.raises(InputError, match="nlsh_block.method: lsh"):
        run(spark, "nlsh_block", {**conf, "output": str(tmp_path),
                                  "nlsh_block": {"input": ingested, "model": "pretrained", "broadcast_mb": 0}})


def test_fine_tuning_is_deterministic_for_a_seed():
    from sigil.transforms.encoder import load_model
    from sigil.transforms.nlsh import TrainingData, TrainingSettings, fine_tune

    texts = [f"COL name VAL {w} model {n}" for n, w in enumerate(["sony tv", "lg fridge", "canon camera", "hp ink"])]
    texts += [t.replace("model", "no.") for t in texts]
    data = TrainingData(texts, np.array([0] * 4 + [1] * 4), np.array([[i, i + 4] for i in range(4)]),
                        valid=np.array([[0, 4], [1, 5]]))
    settings = TrainingSettings(epochs=1, batch_pairs=2, train_layers=1, ks=(1, 2), seed=7)
    said = []
    reports = [fine_tune(load_model.__wrapped__(None, 16), data, settings, said.append) for _ in range(2)]
    assert said[0] == "encoding 8 records for hard negatives and validation"  # before any step
    assert said[1].startswith("encoded 8 records in ") and said[-1].startswith("epoch 0: loss ")
    assert said[2] == "encoding 8 records for validation"  # the bank serves mining: only validation re-encodes
    assert reports[0]["encoded"] == 16 and reports[0]["valid_candidates"] == 8
    data.valid = np.zeros((0, 2), np.int64)
    report = fine_tune(load_model.__wrapped__(None, 16), data, TrainingSettings(epochs=2, batch_pairs=2,
                                                                                 train_layers=1, seed=7))
    assert report["encoded"] == 8 and len(report["steps"]) == 4  # two epochs of mining from one encoding
    assert reports[0]["steps"] == reports[1]["steps"] and len(reports[0]["steps"]) == 2
    assert reports[0]["epochs"][0]["valid_recall"] == reports[1]["epochs"][0]["valid_recall"]
