"""graph-ingest, graph-index and communities on Spark: contracts, bad input, quality."""

from __future__ import annotations

import json
import random

import networkx as nx
import numpy as np
import pyarrow.parquet as pq
import pytest

import yaml

from conftest import DATA, NO_CHECKS, ROOT, needs_data
from sigil.schemas import datasets
from sigil.schemas.config import load_config
from sigil.transforms.communities import neighbourhood_signatures, recall_area
from sigil.transforms.minhash import MinHasher

FOOTBALL = DATA / "graph" / "football.gml"


def _conf(tmp_path, **sections) -> dict:
    return {"output": str(tmp_path / "out"), "spark": {"shuffle_partitions": 4}, "quality": NO_CHECKS, **sections}


def _read(path) -> list[dict]:
    return pq.read_table(str(path)).to_pylist()


def test_edge_list_ingest_merges_quarantines_and_numbers_vertices(spark, tmp_path):
    from sigil.jobs import graph_ingest

    edges = tmp_path / "edges.tsv"
    edges.write_text("# a comment\n10\t2\t1.5\n2\t10\t1\n2\t2\t1\n2\tb\t1\nmalformed\n3\t\t1\n3\ta\t-1\n"
                     "a\tb\t2\n10\tghost\t1\n")
    vertices = tmp_path / "vertices.csv"
    vertices.write_text("id,team\n10,x\n2,x\n3,y\na,y\nb,y\nlonely,z\nb,dup\n")
    config = load_config(base=_conf(tmp_path, graph={
        "edges": {"path": str(edges), "format": "tsv", "header": False, "src_column": "0", "dst_column": "1",
                  "weight_column": "2"},
        "vertices": {"path": str(vertices), "id_column": "id", "community_column": "team"}}))
    manifest = graph_ingest.run(spark, config, quiet=True)
    out = tmp_path / "out" / "graph"
    vs = {r["vertex"]: r for r in _read(out / "vertices")}
    # integer ids in numeric order first, then the others; isolated vertices kept
    assert [v for v, _ in sorted(vs.items(), key=lambda kv: kv[1]["vid"])] == ["2", "3", "10", "a", "b", "lonely"]
    es = sorted((r["src"], r["dst"], r["weight"], r["multiplicity"]) for r in _read(out / "edges"))
    v = {name: r["vid"] for name, r in vs.items()}
    assert es == sorted([(v["2"], v["10"], 2.5, 2), (v["2"], v["b"], 1.0, 1), (v["a"], v["b"], 2.0, 1)])
    assert vs["2"]["in_degree"] == vs["2"]["out_degree"] == 2 and vs["lonely"]["in_degree"] == 0
    reasons = sorted((r["source"], r["line"], r["reason"].split(":")[0].split(" (")[0])
                     for r in _read(out / "quarantine"))
    assert reasons == [("edges", 6, "malformed line"),
                       ("edges", 7, "missing target vertex"), ("edges", 8, "bad weight"),
                       ("edges", 10, "unknown vertex"), ("vertices", 8, "duplicate id")]
    assert manifest["inputs"] == {"edge_rows": 9, "comment_lines": 1}
    m = manifest["metrics"]
    assert m["self_loops_dropped"] == 1 and m["duplicate_edges_merged"] == 1
    assert m["edge_rows_used"] == 5 and m["vertices"] == 6 and m["edges"] == 3
    assert m["components"] == 3 and m["largest_component"] == 4 and m["degree"]["isolated"] == 2
    truth = {r["vertex"]: r["community"] for r in _read(out / "communities")}
    assert truth == {"10": "x", "2": "x", "3": "y", "a": "y", "b": "y", "lonely": "z"}


def test_directed_graph_degrees_and_in_neighbourhoods(spark, tmp_path):
    from sigil.jobs import graph_index, graph_ingest

    edges = tmp_path / "edges.csv"
    edges.write_text("src,dst\nu,v\nw,v\nv,u\nu,v\n")
    config = load_config(base=_conf(tmp_path, graph={"edges": {"path": str(edges)}, "directed": True},
                                    graph_index={"minhash": {"num_perm": 16}, "lsh": {"bands": 8, "rows": 2},
                                                 "include_self": False}))
    graph_ingest.run(spark, config, quiet=True)
    graph_index.run(spark, config, quiet=True)
    vs = {r["vertex"]: r for r in _read(tmp_path / "out" / "graph" / "vertices")}
    assert (vs["v"]["in_degree"], vs["v"]["out_degree"]) == (2, 1)
    sets = {r["vertex"]: r["set_size"] for r in _read(tmp_path / "out" / "graph_index" / "signatures")}
    assert sets == {"u": 1, "v": 2, "w": 0}  # in-neighbours (followers) by default


def _football_queries(path, n_seeds=3, seed=0):
    g = nx.read_gml(str(FOOTBALL))
    groups: dict = {}
    for v, d in g.nodes(data=True):
        groups.setdefault(str(d["value"]), []).append(v)
    rng = random.Random(seed)
    rows = [(f"q{c}", rng.sample(sorted(vs), n_seeds), c, len(vs)) for c, vs in sorted(groups.items())]
    path.write_text("query_id,seeds,size\n" + "".join(f"{q},{' '.join(s)},{n}\n" for q, s, _, n in rows)
                    + "q-bad,NoSuchTeam,5\nq0,Duplicate,3\n")
    return g, groups, rows


@pytest.fixture(scope="module")
def football(spark, tmp_path_factory):
    from sigil.jobs import communities, graph_index, graph_ingest

    tmp = tmp_path_factory.mktemp("football")
    g, groups, rows = _football_queries(tmp / "queries.csv")
    config = load_config(base=_conf(tmp, graph={"edges": {"path": str(FOOTBALL), "format": "gml",
                                                          "community_attribute": "value"}},
                                    graph_index={},
                                    communities={"queries": {"path": str(tmp / "queries.csv")},
                                                 "subcommunities": 0.3, "whole_graph": {}}))
    manifests = [job.run(spark, config, quiet=True) for job in (graph_ingest, graph_index, communities)]
    return config, tmp / "out", g, groups, rows, manifests


@needs_data(FOOTBALL)
def test_football_outputs_follow_the_contracts(football):
    config, out, g, *_ = football
    for path, schema in [("graph/vertices", datasets.VERTICES), ("graph/edges", datasets.EDGES),
                         ("graph/communities", datasets.VERTEX_COMMUNITIES),
                         ("graph_index/signatures", datasets.neighbourhood_signatures(128)),
                         ("graph_index/lsh", datasets.LSH_INDEX),
                         ("communities/members", datasets.COMMUNITY_MEMBERS),
                         ("communities/assignments", datasets.VERTEX_ASSIGNMENTS)]:
        assert pq.read_schema(next((out / path).glob("*.parquet"))) .equals(schema, check_metadata=False), path
    vs = _read(out / "graph" / "vertices")
    assert sorted(r["vid"] for r in vs) == list(range(115))
    assert len(_read(out / "graph" / "edges")) == g.number_of_edges() == 613
    manifest = json.loads((out / "graph" / "manifest.json").read_text())
    assert manifest["metrics"]["components"] == 1 and manifest["metrics"]["degree"]["max"] == 12


@needs_data(FOOTBALL)
def test_football_signatures_equal_the_transform_on_networkx_neighbourhoods(football):
    _, out, g, *_ = football
    vid = {r["vertex"]: r["vid"] for r in _read(out / "graph" / "vertices")}
    rows = sorted((vid[v], vid[u]) for v in g for u in [*g[v], v])
    owners, members = (np.array(x) for x in zip(*rows))
    ids, sizes, sig = neighbourhood_signatures(owners, members, MinHasher(128, 1))
    got = {r["vid"]: (r["set_size"], r["signature"]) for r in _read(out / "graph_index" / "signatures")}
    for i, n, s in zip(ids, sizes, sig):
        assert got[i] == (n, s.tolist())


@needs_data(FOOTBALL)
def test_football_seed_queries_beat_personalized_pagerank(football):
    _, out, g, groups, rows, manifests = football
    members = _read(out / "communities" / "members")
    quarantine = _read(out / "communities" / "quarantine")
    assert sorted((r["id"], r["reason"].split(" (")[0]) for r in quarantine) == [
        ("q-bad", "no known seed vertex"), ("q-bad", "unknown seed vertex: NoSuchTeam"), ("q0", "duplicate id")]
    ours, ppr = [], []
    for q, seeds, community, size in rows:
        found = sorted((r for r in members if r["query_id"] == q), key=lambda r: r["rank"])
        assert {r["vertex"] for r in found[:len(seeds)]} == set(seeds)
        assert len(found) <= size and all(r["is_seed"] == (r["vertex"] in seeds) for r in found)
        truth = set(groups[community])
        ours.append(recall_area(np.array([r["vertex"] in truth for r in found]), size))
        scores = nx.pagerank(g, personalization={s: 1 for s in seeds})
        ranked = list(seeds) + sorted((v for v in g if v not in seeds), key=lambda v: -scores[v])
        ppr.append(recall_area(np.array([v in truth for v in ranked[:size]]), size))
    metrics = manifests[2]["metrics"]["seed_queries"]
    assert metrics["recall_area"] == pytest.approx(np.mean(ours))
    assert np.mean(ours) > np.mean(ppr) > 0.3
    assert any(r["subcommunity"] is not None for r in members)


@needs_data(FOOTBALL)
def test_football_whole_graph_recovers_the_conferences(football):
    _, out, g, groups, _, manifests = football
    metrics = manifests[2]["metrics"]["whole_graph"]
    assert metrics["nmi"] > 0.85 and metrics["vertices"] == 115
    lengths = metrics["description_length"]  # weights: auto, the shorter description kept
    assert set(lengths) == {"jaccard", "none"} and metrics["weights"] == min(lengths, key=lengths.get)
    assigned = _read(out / "communities" / "assignments")
    by_vid = {r["vid"]: r["community"] for r in assigned}
    assert all(by_vid[r["community"]] == r["community"] for r in assigned)  # labelled by its smallest vid
    assert all(r["community"] <= r["vid"] for r in assigned)


def test_communities_config_errors_name_the_key(tmp_path):
    from sigil.schemas.config import ConfigError

    with pytest.raises(ConfigError, match="communities needs queries, whole_graph"):
        load_config(base=_conf(tmp_path, communities={}))
    with pytest.raises(ConfigError, match="graph_index.neighbourhood"):
        load_config(base=_conf(tmp_path, graph_index={"neighbourhood": "sideways"}))


@needs_data(FOOTBALL)
def test_in_memory_index_answers_as_the_batch_job(football):
    from sigil.transforms.communities import CommunityIndex

    _, out, _, _, rows, _ = football
    index = CommunityIndex.from_parquet(str(out / "graph_index"))
    vid = {r["vertex"]: r["vid"] for r in _read(out / "graph" / "vertices")}
    members = _read(out / "communities" / "members")
    for q, seeds, _, size in rows:
        found, score = index.query(np.array([vid[s] for s in seeds]), size)
        batch = sorted((r for r in members if r["query_id"] == q), key=lambda r: r["rank"])
        assert found.tolist() == [r["vid"] for r in batch]
        np.testing.assert_allclose(score, [r["score"] for r in batch], rtol=1e-6)


def test_graph_chain_on_generated_communities(spark, tmp_path, capsys):
    """graph-generate -> graph-ingest -> graph-index -> communities, with the summary."""
    from sigil import chains

    conf = tmp_path / "graph.yaml"
    tree = yaml.safe_load((ROOT / "conf" / "graph_demo.yaml").read_text())
    tree = json.loads(json.dumps(tree).replace("out/graph_demo", str(tmp_path / "out")))
    tree["graph_generate"].update({"vertices": 3000, "queries": 100})
    tree["spark"] = {"shuffle_partitions": 4}
    conf.write_text(yaml.safe_dump(tree))
    manifests = chains.graph(str(conf))
    text = capsys.readouterr().out
    assert "sigil graph summary" in text and "seed-query recall area" in text
    seeds = manifests["communities"]["metrics"]["seed_queries"]
    whole = manifests["communities"]["metrics"]["whole_graph"]
    assert seeds["queries"] == 100 and seeds["recall_area"] > 0.45
    assert whole["nmi"] > 0.9 and whole["ari"] > 0.7
    assert manifests["graph_ingest"]["metrics"]["vertices"] == 3000


def test_graphml_with_weights_and_a_limit(spark, tmp_path):
    from sigil.jobs import graph_ingest
    from sigil.transforms.records import InputError

    g = nx.Graph()
    g.add_edge("x", "y", w=2.5)
    g.add_edge("y", "z", w=1.0)
    g.add_node("alone", club="c")
    nx.write_graphml(g, tmp_path / "g.graphml")
    config = load_config(base=_conf(tmp_path, graph={"edges": {"path": str(tmp_path / "g.graphml"),
                                                               "format": "graphml", "weight_column": "w"}}))
    manifest = graph_ingest.run(spark, config, quiet=True)
    assert manifest["metrics"]["vertices"] == 4 and manifest["metrics"]["components"] == 2
    names = {r["vid"]: r["vertex"] for r in _read(tmp_path / "out" / "graph" / "vertices")}
    edges = sorted((names[r["src"]], names[r["dst"]], r["weight"]) for r in _read(tmp_path / "out" / "graph" / "edges"))
    assert edges == [("x", "y", 2.5), ("y", "z", 1.0)]  # vids in string order: alone, x, y, z
    small = config.model_copy(update={"graph": config.graph.model_copy(update={"max_local_edges": 1})})
    with pytest.raises(InputError, match="max_local_edges"):
        graph_ingest.run(spark, small, quiet=True)


@needs_data(FOOTBALL)
def test_community_notebook_executes(football, monkeypatch):
    from conftest import run_notebook

    _, out, *_ = football
    outputs, text = run_notebook("communities.ipynb", str(out), monkeypatch)
    assert "recall area" in text and "nmi" in text.lower()
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # degrees, the community, recall curves


@needs_data(FOOTBALL)
def test_join_path_for_large_graphs_answers_as_the_in_memory_path(spark, football):
    """Graphs above communities.broadcast_index_mb join the index and signatures in Spark."""
    from sigil.jobs import communities

    config, out, *_ = football
    joined = config.model_copy(update={"communities": config.communities.model_copy(
        update={"broadcast_index_mb": 0, "whole_graph": None}), "output": str(out.parent / "joined")})
    for stage in ("graph", "graph_index"):  # the earlier stages' outputs, shared
        (out.parent / "joined").mkdir(exist_ok=True)
        target = out.parent / "joined" / stage
        if not target.exists():
            target.symlink_to(out / stage)
    communities.run(spark, joined, quiet=True)
    key = lambda r: (r["query_id"], r["rank"])  # noqa: E731
    a = sorted(_read(out / "communities" / "members"), key=key)
    b = sorted(_read(out.parent / "joined" / "communities" / "members"), key=key)
    assert [(r["query_id"], r["vid"], r["is_seed"], r["subcommunity"]) for r in a] == \
        [(r["query_id"], r["vid"], r["is_seed"], r["subcommunity"]) for r in b]
    np.testing.assert_allclose([r["score"] for r in a], [r["score"] for r in b], rtol=1e-6)


@needs_data(FOOTBALL)
def test_a_small_batch_on_the_driver_writes_what_spark_writes(spark, football):
    """The fixture's batch is answered on the driver (communities.driver_batch); the same
    batch sent to Spark's tasks gives the same members, quarantine rows and metrics."""
    from sigil.jobs import communities

    config, out, *_, manifests = football
    assert manifests[2]["metrics"]["seed_queries"]["engine"] == "driver"
    tasks = config.model_copy(update={"communities": config.communities.model_copy(
        update={"driver_batch": 0, "whole_graph": None}), "output": str(out.parent / "tasks")})
    for stage in ("graph", "graph_index"):
        (out.parent / "tasks").mkdir(exist_ok=True)
        if not (out.parent / "tasks" / stage).exists():
            (out.parent / "tasks" / stage).symlink_to(out / stage)
    ran = communities.run(spark, tasks, quiet=True)
    assert ran["metrics"]["seed_queries"]["engine"] == "spark"
    for name, keys in (("members", ["query_id", "rank"]), ("quarantine", ["source", "id", "reason"])):
        a, b = (pq.read_table(str(root / "communities" / name)).sort_by([(k, "ascending") for k in keys])
                for root in (out, out.parent / "tasks"))
        assert a.num_rows > 0 and a.equals(b), name
    drop = ("engine", "seconds_per_query")
    same = [{k: v for k, v in m["metrics"]["seed_queries"].items() if k not in drop} for m in (manifests[2], ran)]
    assert same[0] == same[1]
    assert manifests[2]["quarantined"] == ran["quarantined"] and manifests[2]["inputs"] == ran["inputs"]
