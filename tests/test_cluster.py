"""The cluster job: large-star/small-star components against networkx, entities end to end."""

import json
import random

import networkx as nx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sigil.jobs import cluster
from sigil.jobs.spark import components
from sigil.run import StrictError
from sigil.schemas import datasets
from sigil.schemas.config import load_config
from sigil.transforms.records import InputError
from sigil.transforms.xxhash import xxhash64


def random_graph(seed: int) -> nx.Graph:
    """Disjoint long paths, stars, cycles, a clique, sparse random graphs and isolated
    vertices, labelled by random int64s (extremes included), so the minimum sits anywhere."""
    rng = random.Random(seed)
    parts = [nx.path_graph(250), nx.path_graph(60), nx.star_graph(50), nx.cycle_graph(30), nx.complete_graph(8),
             nx.empty_graph(5)] + [nx.gnp_random_graph(40, 0.04, seed=seed + i) for i in range(3)]
    g = nx.disjoint_union_all(parts)
    labels = {-2**63, 2**63 - 1}
    while len(labels) < g.number_of_nodes():
        labels.add(rng.randrange(-2**62, 2**62))
    labels = rng.sample(sorted(labels), len(labels))
    return nx.relabel_nodes(g, dict(enumerate(labels)))


def edge_rows(g: nx.Graph, seed: int) -> list[tuple[int, int]]:
    """Each edge in a random direction, some twice; isolated vertices as self-loops."""
    rng = random.Random(seed)
    rows = [(u, v) if rng.random() < 0.5 else (v, u) for u, v in g.edges]
    rows += rng.sample(rows, 20) + [(v, u) for u, v in rng.sample(rows, 20)]
    rows += [(v, v) for v in g.nodes if g.degree(v) == 0]
    rng.shuffle(rows)
    return rows


def test_components_equal_networkx(spark):
    g = random_graph(7)
    edges = spark.createDataFrame(edge_rows(g, 7), "src long, dst long")
    comps, rounds = components.connected_components(edges, 64, return_n_iter=True)
    got = {r["vertex"]: r["component"] for r in comps.collect()}
    want = {v: min(c) for c in nx.connected_components(g) for v in c}
    assert got == want
    assert 3 <= rounds <= 20  # the 250-vertex path needs several rounds


def test_components_fail_clearly_without_convergence(spark):
    edges = spark.createDataFrame([(i, i + 1) for i in range(64)], "src long, dst long")
    with pytest.raises(components.ConvergenceError, match="max_iterations"):
        components.connected_components(edges, 1)


def test_pairwise_quality_counts_cross_source_pairs_in_link_mode(spark):
    entities = spark.createDataFrame(
        [(1, "a", "1", 1, 3), (2, "a", "2", 1, 3), (3, "b", "1", 1, 3), (4, "b", "2", 4, 1)],
        "rid long, source string, id string, entity_id long, cluster_size long")
    truth = spark.createDataFrame([(1, 3), (2, 4)], "rid_a long, rid_b long")  # (a 1, b 1), (a 2, b 2)
    q = cluster.pairwise_quality(entities, truth, "link")
    # entity 1 has two records of a and one of b: (3² - 2² - 1²) / 2 = 2 cross-source pairs
    assert (q["predicted_pairs"], q["true_pairs"], q["truth_pairs"]) == (2, 1, 2)
    assert q["cluster_precision"] == q["cluster_recall"] == q["cluster_f1"] == 0.5


# Twelve records of one source, keyed as ingest keys them: rid = xxhash64(source, id).
IDS = [f"r{i}" for i in range(1, 13)]
RIDS = dict(zip(IDS, xxhash64([pa.array(["s"] * len(IDS)), pa.array(IDS)]).tolist()))


def smallest(*ids: str) -> int:
    """The entity id of a component: its smallest rid."""
    return min(RIDS[i] for i in ids)

PAIRS = [("r1", "r2", 0.9), ("r2", "r3", 0.8),  # {r1, r2, r3}
         ("r4", "r5", 0.95), ("r5", "r6", 0.6), ("r6", "r7", 0.97), ("r7", "r8", 0.55),  # 5 records: oversized
         ("r10", "r9", 0.3),  # below the threshold
         ("r11", "r12", 0.5),  # at the threshold: an edge
         ("r1", "ghost", 0.99)]  # names no record: quarantined
TRUTH = "id_a,id_b\nr1,r2\nr3,r1\nr4,r5\nr5,r6\nr10,r9\n"


def write_inputs(root, pairs) -> None:
    records = pa.table({"rid": pa.array(list(RIDS.values()), pa.int64()), "source": ["s"] * len(RIDS),
                        "id": list(RIDS), "file": ["f"] * len(RIDS), "line": pa.array(range(len(RIDS)), pa.int64())})
    (root / "ingest" / "records").mkdir(parents=True)
    pq.write_table(records, root / "ingest" / "records" / "part-0.parquet")
    (root / "match" / "pairs").mkdir(parents=True)
    n = len(pairs)
    table = pa.Table.from_pylist(
        [{"source_a": "s", "id_a": a, "source_b": "s", "id_b": b, "gamma_name": 0, "match_weight": 1.0,
          "match_probability": p, "is_match": p >= 0.5} for a, b, p in pairs],
        datasets.scored(["name"]))
    pq.write_table(table.slice(0, n // 2), root / "match" / "pairs" / "part-0.parquet")
    pq.write_table(table.slice(n // 2), root / "match" / "pairs" / "part-1.parquet")


def entity_ids(out) -> dict:
    return {r["id"]: (r["entity_id"], r["cluster_size"]) for r in pq.read_table(f"{out}/cluster/entities").to_pylist()}


def test_cluster_job_end_to_end(spark, tmp_path):
    root = tmp_path / "one"
    write_inputs(root, PAIRS)
    (tmp_path / "truth.csv").write_text(TRUTH)
    config = load_config(base={"output": str(root), "truth": {"path": str(tmp_path / "truth.csv")},
                               "cluster": {"threshold": 0.5, "max_size": 3, "split_threshold": 0.9}})
    manifest = cluster.run(spark, config, quiet=True)
    m = manifest["metrics"]
    assert (manifest["inputs"], manifest["quarantined"]) == ({"records": 12, "pairs": 9}, {"edges": 1})

    entities = pq.read_table(root / "cluster" / "entities")
    assert entities.schema == datasets.ENTITIES
    big = smallest("r4", "r5", "r6", "r7", "r8")
    assert entity_ids(root) == {
        **{r: (smallest("r1", "r2", "r3"), 3) for r in ("r1", "r2", "r3")},
        **{r: (smallest("r4", "r5"), 2) for r in ("r4", "r5")},  # split at 0.9
        **{r: (smallest("r6", "r7"), 2) for r in ("r6", "r7")}, "r8": (RIDS["r8"], 1),
        "r9": (RIDS["r9"], 1), "r10": (RIDS["r10"], 1), **{r: (smallest("r11", "r12"), 2) for r in ("r11", "r12")}}
    oversized = pq.read_table(root / "cluster" / "oversized")
    assert oversized.schema == datasets.OVERSIZED_COMPONENTS
    assert oversized.to_pylist() == [{"entity_id": big, "size": 5, "sample_ids": ["r4", "r5", "r6", "r7", "r8"],
                                      "split": True}]
    quarantine = pq.read_table(root / "cluster" / "quarantine").to_pylist()
    assert [(q["source"], q["id"], q["raw"]) for q in quarantine] == [("s", "ghost", "s,r1,s,ghost")]

    assert (m["records"], m["edges"], m["threshold"], m["oversized_components"]) == (12, 7, 0.5, 1)
    assert (m["entities"], m["singletons"], m["largest"]) == (7, 3, 3)
    assert m["size_histogram"] == {"1": 3, "2": 3, "3": 1}
    assert m["iterations"] >= 1 and m["split_iterations"] >= 1
    assert m["oversized_top"][0]["entity_id"] == big
    # pairwise: 6 predicted pairs, 5 truth pairs, 3 shared (r1-r2, r1-r3, r4-r5)
    assert (m["predicted_pairs"], m["truth_pairs"], m["true_pairs"]) == (6, 5, 3)
    assert m["cluster_precision"] == pytest.approx(0.5) and m["cluster_recall"] == pytest.approx(0.6)
    assert m["cluster_f1"] == pytest.approx(6 / 11)
    # B-cubed over 12 records; true clusters {1,2,3}, {4,5,6}, {9,10}, the rest alone:
    # precision (3 + 2 + 1/2 + 1/2 + 1 + 1 + 1 + 1/2 + 1/2) / 12 = 10/12,
    # recall (3 + 2/3 + 2/3 + 1/3 + 1 + 1 + 1/2 + 1/2 + 1 + 1) / 12 = 29/36
    assert m["bcubed_precision"] == pytest.approx(10 / 12)
    assert m["bcubed_recall"] == pytest.approx(29 / 36)
    assert m["bcubed_f1"] == pytest.approx(145 / 177)

    # Again from the pairs reordered and reversed, the threshold from the match manifest, no
    # split: the same ids, except that the oversized component stays whole.
    second = tmp_path / "two"
    reordered = [(b, a, p) for a, b, p in PAIRS]
    random.Random(1).shuffle(reordered)
    write_inputs(second, reordered)
    (second / "match" / "manifest.json").write_text(json.dumps({"metrics": {"threshold": 0.5}}))
    again = cluster.run(spark, load_config(base={"output": str(second), "cluster": {"max_size": 3}}), quiet=True)
    whole = {r: (big, 5) for r in ("r4", "r5", "r6", "r7", "r8")}
    assert entity_ids(second) == {**entity_ids(root), **whole}
    assert pq.read_table(second / "cluster" / "oversized").column("split").to_pylist() == [False]
    assert (again["metrics"]["threshold"], again["metrics"]["largest"]) == (0.5, 5)


def test_cluster_job_input_errors(spark, tmp_path):
    write_inputs(tmp_path, PAIRS)
    with pytest.raises(InputError, match="cluster.threshold"):  # no threshold anywhere
        cluster.run(spark, load_config(base={"output": str(tmp_path)}), quiet=True)
    with pytest.raises(InputError, match="split_threshold"):
        cluster.run(spark, load_config(base={"output": str(tmp_path), "cluster": {
            "threshold": 0.8, "split_threshold": 0.6}}), quiet=True)
    with pytest.raises(InputError, match="no scored pairs"):
        cluster.run(spark, load_config(base={"output": str(tmp_path), "cluster": {
            "threshold": 0.5, "input": str(tmp_path / "missing")}}), quiet=True)
    with pytest.raises(StrictError, match="ghost"):
        cluster.run(spark, load_config(base={"output": str(tmp_path), "cluster": {"threshold": 0.5}}),
                    strict=True, quiet=True)
    assert not (tmp_path / "cluster").exists()  # a failed run leaves no output
