"""interactions-generate -> interactions-ingest -> graphhash on Spark: the mapping's
contract, budgets met exactly, cold entities, baselines, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import NO_CHECKS
from sigil.cli import main
from sigil.schemas import datasets
from sigil.schemas.config import load_config
from sigil.transforms.graphhash import hash_bucket
from sigil.transforms.interactions import population


def _conf(root, **graphhash) -> dict:
    return {"output": str(root / "out"), "spark": {"shuffle_partitions": 4}, "quality": NO_CHECKS,
            "interactions_generate": {"users": 1200, "items": 600, "interactions": 20000, "communities": 12,
                                      "seed": 3},
            "interactions": {"log": {"path": str(root / "out" / "interactions_generate" / "log"),
                                     "format": "parquet", "timestamp_column": "timestamp",
                                     "weight_column": "rating"},
                             "split": {"method": "time", "test_fraction": 0.2}},
            "graphhash": {"budget": {"ratio": 8}, **graphhash}}


@pytest.fixture(scope="module")
def run(spark, tmp_path_factory):
    from sigil.jobs import graphhash, interactions_generate, interactions_ingest

    root = tmp_path_factory.mktemp("graphhash")
    config = load_config(base=_conf(root))
    for job in (interactions_generate, interactions_ingest, graphhash):
        job.run(spark, config, quiet=True)
    return root, config


def _manifest(root, stage: str) -> dict:
    return json.loads((root / "out" / stage / "manifest.json").read_text())


def test_mapping_meets_the_budget_and_covers_every_entity(run):
    root, _ = run
    out = root / "out" / "graphhash"
    mapping = pq.read_table(str(out / "mapping"))
    assert mapping.schema.equals(datasets.GRAPHHASH_MAPPING)
    ingest = _manifest(root, "interactions")["metrics"]
    users, items = ingest["users"], ingest["items"]
    rows = -(-(users + items) // 8)
    m = _manifest(root, "graphhash")["metrics"]
    assert (m["rows"], m["rows_used"], m["budget_met"]) == (rows, rows, True)
    assert m["variants"]["graphhash"]["modularity"] > 0.15  # at resolution 1; a random partition has about 0
    bucket = mapping["bucket"].to_numpy()
    assert len(bucket) == users + items and bucket.min() == 0 and bucket.max() == rows - 1
    assert len(np.unique(bucket)) == rows
    for side, n in (("user", users), ("item", items)):
        dense = mapping.filter(pc.equal(mapping["entity_type"], side))["dense_id"].to_numpy()
        assert np.array_equal(np.sort(dense), np.arange(n))
    sizes = pq.read_table(str(out / "bucket_sizes")).to_pandas()
    per_variant = sizes.groupby("variant")[["users", "items"]].sum()
    assert (per_variant["users"] == users).all() and (per_variant["items"] == items).all()
    assert set(per_variant.index) == {"graphhash", "random", "double", "frequency"}


def test_clusters_follow_the_planted_communities(run):
    root, config = run
    gen = config.interactions_generate
    pop = population(gen.users, gen.items, communities=gen.communities, seed=gen.seed)
    truth = dict(zip(pop.user_ids.to_pylist(), pop.user_community.tolist()))
    mapping = pq.read_table(str(root / "out" / "graphhash" / "mapping")).to_pandas()
    users = mapping[(mapping.entity_type == "user") & ~mapping.cold]
    # users sharing a row mostly share a community: purity of the rows holding 2 users or more
    users = users.assign(community=users["id"].map(truth))
    shared = users.groupby("bucket").filter(lambda g: len(g) > 1)
    purity = shared.groupby("bucket")["community"].agg(lambda c: c.value_counts().iloc[0] / len(c)).mean()
    baseline = pq.read_table(str(root / "out" / "graphhash" / "baselines")).to_pandas()
    random_users = baseline[(baseline.variant == "random") & (baseline.entity_type == "user")]
    random_users = random_users.assign(community=random_users["id"].map(truth))
    rshared = random_users.groupby("bucket").filter(lambda g: len(g) > 1)
    rpurity = rshared.groupby("bucket")["community"].agg(lambda c: c.value_counts().iloc[0] / len(c)).mean()
    assert purity > 0.8 and rpurity < 0.6, (purity, rpurity)


def test_cold_entities_get_the_fallback_hash(run):
    root, config = run
    mapping = pq.read_table(str(root / "out" / "graphhash" / "mapping")).to_pandas()
    items = pq.read_table(str(root / "out" / "interactions" / "items")).to_pandas()
    cold = mapping[(mapping.entity_type == "item") & mapping.cold]
    assert set(cold["id"]) == set(items.loc[items.train_degree == 0, "item"]) and len(cold)
    (lo, hi), _ = _manifest(root, "graphhash")["metrics"]["variants"]["graphhash"]["fallback"]["item"]
    expected = lo + hash_bucket("item", cold["id"].tolist(), hi - lo, seed=config.graphhash.seed)
    assert np.array_equal(cold["bucket"].to_numpy(), expected)


def test_separate_tables_double_variant_and_rerun(spark, run, tmp_path):
    from sigil.jobs import graphhash

    root, _ = run
    shutil.copytree(root / "out" / "interactions", tmp_path / "out" / "interactions")
    conf = _conf(tmp_path, budget={"users": 150, "items": 80}, variant="double_graphhash", baselines=["double"])
    manifest = graphhash.run(spark, load_config(base=conf), quiet=True)
    mapping = pq.read_table(str(tmp_path / "out" / "graphhash" / "mapping")).to_pandas()
    assert manifest["metrics"]["variants"]["double_graphhash"]["tables"] == [150, 80]
    for side, table, rows in (("user", 0, 150), ("item", 1, 80)):
        mine = mapping[mapping.entity_type == side]
        assert (mine.table == table).all() and mine.bucket.max() < mine.bucket2.min() and mine.bucket2.max() < rows
    again = graphhash.run(spark, load_config(base=conf), quiet=True)
    assert pq.read_table(str(tmp_path / "out" / "graphhash" / "mapping")).to_pandas().equals(mapping)
    assert again["metrics"]["variants"]["double_graphhash"]["resolution"] == \
        manifest["metrics"]["variants"]["double_graphhash"]["resolution"]



def test_sampled_clustering_stays_close_to_the_driver(spark, run, tmp_path):
    """A graph clustered through a sample of half its pairs (jobs/spark/sampled_clustering.py):
    the budget met exactly, the modularity within 15 % of the driver's clustering, rows as
    pure in planted communities, the same mapping on a rerun; a frequency hybrid on separate
    tables (a subset of the entities clustered) lands on its budget too."""
    from sigil.jobs import graphhash

    root, _ = run
    shutil.copytree(root / "out" / "interactions", tmp_path / "out" / "interactions")
    pairs = _manifest(root, "graphhash")["inputs"]["train_pairs"]
    conf = _conf(tmp_path, max_edges=pairs // 2, baselines=[])  # auto: above max_edges, sampled
    manifest = graphhash.run(spark, load_config(base=conf), quiet=True)
    driver, sampled = (m["metrics"]["variants"]["graphhash"] for m in (_manifest(root, "graphhash"), manifest))
    assert sampled["sample"]["of"] == pairs and 0.4 * pairs < sampled["sample"]["edges"] < 0.6 * pairs
    assert manifest["metrics"]["budget_met"] and sampled["used"] == driver["used"]
    assert sampled["modularity"] > 0.85 * driver["modularity"], (sampled["modularity"], driver["modularity"])
    mapping = pq.read_table(str(tmp_path / "out" / "graphhash" / "mapping")).to_pandas()
    users = mapping[(mapping.entity_type == "user") & ~mapping.cold]
    assert users.groupby("bucket").size().max() < len(users) / 20  # no giant row
    graphhash.run(spark, load_config(base=conf), quiet=True)
    assert pq.read_table(str(tmp_path / "out" / "graphhash" / "mapping")).to_pandas().equals(mapping)
    conf = _conf(tmp_path, max_edges=pairs // 2, clustering="sampled", budget={"users": 150, "items": 80},
                 variant="frequency_hybrid", baselines=[], refine_rounds=2)
    hybrid = graphhash.run(spark, load_config(base=conf), quiet=True)["metrics"]["variants"]["frequency_hybrid"]
    assert hybrid["tables"] == [150, 80] and hybrid["used"] == [150, 80] and hybrid["sample"]["rounds"] == 2

def test_errors_are_one_message(spark, run, tmp_path, capsys):
    root, _ = run
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump(_conf(tmp_path)))
    assert main(["graphhash", "--conf", str(conf)]) == 2
    assert "interactions-ingest" in capsys.readouterr().err
    shutil.copytree(root / "out" / "interactions", tmp_path / "out" / "interactions")
    assert main(["graphhash", "--conf", str(conf), "--set", "graphhash.max_edges=10",
                 "--set", "graphhash.clustering=driver"]) == 2
    assert "graphhash.max_edges=10" in capsys.readouterr().err
    assert main(["graphhash", "--conf", str(conf), "--set", "graphhash.budget.ratio=null",
                 "--set", "graphhash.budget.rows=100000000"]) == 2
    assert "graphhash.budget" in capsys.readouterr().err
    assert main(["graphhash", "--conf", str(conf), "--set", "graphhash.budget.rows=5"]) == 2  # two forms
    assert "budget" in capsys.readouterr().err


def test_the_notebook_reads_the_run(run, monkeypatch):
    """notebooks/graphhash.ipynb on the run: it draws the bucket sizes, a cluster's latent
    communities and recall against compression, and computes the job's mapping again in
    memory, the same."""
    from conftest import run_notebook

    root, _ = run
    ingest, hashed = _manifest(root, "interactions")["metrics"], _manifest(root, "graphhash")["metrics"]
    outputs, text = run_notebook("graphhash.ipynb", str(root / "out"), monkeypatch)
    entities = ingest["users"] + ingest["items"]
    assert f"the job's mapping: the same ({entities:,} entities, {hashed['rows']} rows)" in text
    assert "the baselines: random the same, double the same, frequency the same" in text
    assert "their rows from cold_buckets: the same as the mapping gave" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # bucket sizes, communities, recall
