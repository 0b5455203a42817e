"""The match job on FEBRL: unsupervised quality, saved models, supervised matching."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import FEBRL, FEBRL_ATTRIBUTES, ROOT, needs_data, run_notebook
from sigil.jobs import match
from sigil.schemas import datasets
from sigil.schemas.config import load_config, read_yaml
from sigil.transforms.fellegi_sunter import sample_level_counts
from sigil.transforms.records import InputError

PEOPLE = read_yaml(ROOT / "conf" / "people.yaml")


def match_config(febrl4_config, out, **match_overrides):
    """FEBRL 4's blocked records and candidates (the session fixture) matched into ``out``."""
    tree = febrl4_config.model_dump(mode="json", exclude_none=True)
    tree["output"] = str(out)
    tree["block"]["input"] = f"{febrl4_config.output}/ingest/records"
    tree["match"] = {**PEOPLE["match"], "input": f"{febrl4_config.output}/block/candidates", **match_overrides}
    return load_config(base=tree)


@pytest.fixture(scope="module")
def febrl4_matched(spark, febrl4, tmp_path_factory):
    config = match_config(febrl4[0], tmp_path_factory.mktemp("match"))
    return config, match.run(spark, config, quiet=True)


@needs_data(FEBRL)
def test_febrl4_unsupervised_f1(febrl4_matched):
    config, manifest = febrl4_matched
    m = manifest["metrics"]
    assert m["f1"] >= 0.999 and m["precision"] >= 0.999
    assert m["pairs_scored"] == m["truth_pairs"] + 1  # 5,001 candidates: all scored
    assert m["model"] == "fellegi_sunter" and m["threshold"] == 0.5
    assert manifest["expectations"]["match.pairs"] == {"success": True, "failed": []}
    assert manifest["expectations"]["match.pairs.full"] == {"success": True, "failed": []}
    pairs = pq.read_table(f"{config.output}/match/pairs")
    assert pairs.schema == datasets.scored([c.key for c in config.match.comparisons])



@needs_data(FEBRL)
def test_beam_scores_as_spark_with_the_saved_model(spark, febrl4, febrl4_matched, tmp_path):
    """pipelines/match.py with ``match.load_model``: the same pairs (levels with term
    frequencies, weights, probabilities, decisions), model.json and manifest as the Spark
    job; training and the mutual best match are refused on Beam, the key named."""
    from sigil.pipelines import match as beam_match

    config, _ = febrl4_matched
    saved = f"{config.output}/match/model.json"
    runs = []
    for engine in ("spark", "beam"):
        c = match_config(febrl4[0], tmp_path / engine, load_model=saved)
        manifest = match.run(spark, c, quiet=True) if engine == "spark" else beam_match.run(c, quiet=True)
        keys = [(k, "ascending") for k in ("source_a", "id_a", "source_b", "id_b")]
        pairs = pq.read_table(f"{c.output}/match/pairs", schema=datasets.scored(
            [x.key for x in c.match.comparisons])).sort_by(keys)
        runs.append((pairs, manifest, (tmp_path / engine / "match" / "model.json").read_text()))
    (s_pairs, s_manifest, s_model), (b_pairs, b_manifest, b_model) = runs
    assert b_pairs.equals(s_pairs) and b_model == s_model
    for key in ("inputs", "outputs", "metrics"):
        assert b_manifest[key] == s_manifest[key], key
    assert b_manifest["metrics"]["f1"] >= 0.999
    with pytest.raises(InputError, match=r"match\.load_model.*match\.one_to_one"):
        beam_match.run(match_config(febrl4[0], tmp_path / "no", one_to_one=True), quiet=True)

@needs_data(FEBRL)
def test_trained_model_is_readable_and_drives_the_weights(febrl4_matched):
    config, _ = febrl4_matched
    with open(f"{config.output}/match/model.json") as f:
        model = json.load(f)
    names = [c["name"] for c in model["comparisons"]]
    assert names == [c.key for c in config.match.comparisons]
    m, u = model["parameters"]["m"], model["parameters"]["u"]
    ssn = names.index("soc_sec_id")
    assert m[ssn][0] > 0.5 and u[ssn][0] < 1e-3  # agreeing on the id is strong evidence
    assert all(abs(sum(x) - 1) < 1e-9 for x in m + u)
    assert model["weights"][ssn][0] == pytest.approx(np.log2(m[ssn][0] / u[ssn][0]))


@needs_data(FEBRL)
def test_saved_model_scores_a_new_batch_without_training(spark, febrl4, febrl4_matched, tmp_path):
    config, first = febrl4_matched
    again = match_config(febrl4[0], tmp_path, load_model=f"{config.output}/match/model.json")
    manifest = match.run(spark, again, quiet=True)
    assert "em_iterations" not in manifest["metrics"]
    keys = [(k, "ascending") for k in ("source_a", "id_a", "source_b", "id_b")]
    a = pq.read_table(f"{config.output}/match/pairs").sort_by(keys)
    b = pq.read_table(f"{tmp_path}/match/pairs").sort_by(keys)
    assert a.equals(b)
    # records too large to look up in the tasks are joined to the pairs instead: same pairs
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        match.run(spark, match_config(febrl4[0], tmp_path / "joined", load_model=f"{config.output}/match/model.json"),
                  quiet=True)
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", f"{config.spark.broadcast_join_mb}m")
    assert pq.read_table(f"{tmp_path}/joined/match/pairs").sort_by(keys).equals(a)
    other = match_config(febrl4[0], tmp_path / "other", load_model=f"{config.output}/match/model.json",
                         comparisons=PEOPLE["match"]["comparisons"][:3])
    with pytest.raises(InputError, match="other comparisons"):
        match.run(spark, other, quiet=True)


@needs_data(FEBRL)
def test_logistic_on_labelled_matches_with_best_f1_threshold(spark, febrl4, febrl4_truth, tmp_path):
    """A file of matches only: the non-matches come from the candidates it does not list."""
    config = match_config(febrl4[0], tmp_path, model="logistic", threshold="best_f1",
                          labels={"path": str(febrl4_truth), "label_column": None})
    m = match.run(spark, config, quiet=True)["metrics"]
    assert m["model"] == "logistic" and m["labelled_matches"] == 5000
    # 5,000 matches + the 2 candidates not listed (4,999 of the 5,001 candidates are matches)
    assert m["labelled_pairs"] == 5002
    assert 0 < m["threshold"] < 1 and m["f1"] >= 0.999


@needs_data(FEBRL)
def test_febrl3_dedupe_f1(spark, tmp_path):
    from sigil.jobs import block, ingest

    tree = read_yaml(ROOT / "conf" / "febrl3.yaml")
    tree["output"] = str(tmp_path)
    tree["ingest"]["sources"][0]["path"] = str(FEBRL / "dataset3.csv")
    config = load_config(base=tree)
    from sigil.jobs import cluster

    for job in (ingest, block):
        job.run(spark, config, quiet=True)
    m = match.run(spark, config, quiet=True)["metrics"]
    assert m["truth_pairs"] == 6538
    assert m["f1"] >= 0.999, m
    c = cluster.run(spark, config, quiet=True)["metrics"]
    assert c["bcubed_f1"] >= 0.999 and c["cluster_f1"] >= 0.995, c
    assert c["entities"] == pytest.approx(2000, abs=10)


def test_match_needs_its_inputs(spark, tmp_path):
    config = load_config(base={"output": str(tmp_path), "match": {
        "comparisons": [{"column": "name", "levels": [{"kind": "exact"}]}]}})
    with pytest.raises(InputError, match="run 'sigil ingest' first"):
        match.run(spark, config, quiet=True)


@needs_data(FEBRL)
def test_matching_notebook_executes(spark, febrl4_matched, monkeypatch):
    from sigil.jobs import cluster

    config, _ = febrl4_matched
    cluster.run(spark, config, quiet=True)
    outputs, text = run_notebook("matching.ipynb", config.output, monkeypatch)
    assert "fellegi_sunter" in text and "bcubed_f1" in text and "entity " in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # weights, levels, waterfall


def test_one_to_one_keeps_mutual_best_pairs(spark):
    rows = [("a", "a1", "b", "b1", 10.0, 0.99), ("a", "a1", "b", "b2", 8.0, 0.98),
            ("a", "a2", "b", "b1", 9.0, 0.97), ("a", "a2", "b", "b2", 1.0, 0.6),
            ("a", "a3", "b", "b3", -5.0, 0.03)]
    pairs = spark.createDataFrame(rows, "source_a string, id_a string, source_b string, id_b string, "
                                        "match_weight double, match_probability double")
    got = {(r["id_a"], r["id_b"]): r["is_match"] for r in match.decided(pairs, 0.5, True).collect()}
    assert got == {("a1", "b1"): True, ("a1", "b2"): False, ("a2", "b1"): False, ("a2", "b2"): False,
                   ("a3", "b3"): False}
    plain = {(r["id_a"], r["id_b"]): r["is_match"] for r in match.decided(pairs, 0.5, False).collect()}
    assert sum(plain.values()) == 4


@needs_data(FEBRL)
def test_febrl4_one_to_one(spark, febrl4, tmp_path):
    m = match.run(spark, match_config(febrl4[0], tmp_path, one_to_one=True), quiet=True)["metrics"]
    assert m["f1"] >= 0.999


@needs_data(FEBRL)
@pytest.mark.parametrize("mode", ["link", "dedupe"])
def test_u_sample_drawn_in_tasks_equals_sparks_and_counts_every_pair(spark, febrl4, mode):
    """The tasks' sample (from their records index) is the records Spark draws, and its
    level counts, by pairs of values, are those of every pair of records."""
    from itertools import combinations

    from sigil.jobs.spark.lookup import dataset_version
    from sigil.transforms.compare import gamma_batch

    config = match_config(febrl4[0], febrl4[0].output)
    path, cols = f"{febrl4[0].output}/ingest/records", match.value_columns(config.match.comparisons)
    drawn, release = match.u_sample(spark, spark.read.parquet(path), None, cols, mode, 20_000, 11)
    held, _ = match.u_sample(spark, None, dataset_version(path), cols, mode, 20_000, 11)
    by_spark, in_task = drawn(), held()
    release()
    key = lambda t: sorted(zip(t.column("source").to_pylist(), t.column("id").to_pylist()))  # noqa: E731
    assert key(in_task) == key(by_spark) and in_task.num_rows > 100
    got = [sum(parts) for parts in zip(*(sample_level_counts(in_task, config.match.comparisons, mode, p, 3)
                                         for p in range(3)))]
    i, j = (np.array(x) for x in zip(*combinations(range(in_task.num_rows), 2)))
    src = np.array(in_task.column("source").to_pylist())
    if mode == "link":
        i, j = i[src[i] != src[j]], j[src[i] != src[j]]
    a, b = in_task.take(pa.array(i)), in_task.take(pa.array(j))
    sides = pa.table({**{f"{c}_a": a.column(c) for c in cols}, **{f"{c}_b": b.column(c) for c in cols}})
    for k, levels in enumerate(gamma_batch(sides, config.match.comparisons).values()):
        want = np.bincount(levels[levels >= 0], minlength=len(got[k]))
        assert got[k].tolist() == want.tolist()
    # the same counts from Spark tasks, each with a slice of the pairs
    spread = match.u_counts(spark, lambda: by_spark, config.match, mode, 2)
    assert [c.tolist() for c in spread] == [c.tolist() for c in got]


@needs_data(FEBRL)
def test_serialised_labels_train_the_logistic_model(spark, febrl4, tmp_path):
    """match.labels reads the serialised format nlsh-train reads: 300 matches and 300
    non-matches of FEBRL 4 as a pair file writes them, and two lines that cannot map."""
    from sigil.transforms.pair_text import serialize

    config = febrl4[0]
    records = {(r["source"], r["id"]): r for r in pq.read_table(f"{config.output}/ingest/records").to_pylist()}
    text = lambda source, rec: serialize(records[(source, rec)], FEBRL_ATTRIBUTES)  # noqa: E731
    lines = [f"{text('a', f'rec-{n}-org')}\t{text('b', f'rec-{n + k}-dup-0')}\t{1 - k}" for n in range(300)
             for k in (0, 1)]
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join([*lines, "COL given_name VAL nobody \tCOL given_name VAL noone \t1", "junk"]) + "\n")
    m = match.run(spark, match_config(config, tmp_path / "out", model="logistic", threshold="best_f1",
                                      labels={"path": str(path), "format": "serialized"}), quiet=True)
    assert (m["metrics"]["labels_read"], m["metrics"]["labels_mapped"]) == (602, 600)
    assert m["metrics"]["labelled_pairs"] == 600 and m["metrics"]["labelled_matches"] == 300
    assert m["metrics"]["f1"] >= 0.99
    reasons = pq.read_table(tmp_path / "out" / "match" / "labels_quarantine").column("reason").to_pylist()
    assert sorted(reasons) == ["malformed line: expected <record>\\t<record>\\t<0|1>", "no side found in either source"]
