"""Community detection: sigil's MinHash-LSH seed queries and whole-graph communities beside
networkx personalized PageRank, networkx Louvain and igraph multilevel/Leiden, in one run.

Seed queries: per query, 3 random seeds of a random true community C and the target |C|;
quality is the area under the recall curve over ranks 1..|C| (seeds included; a perfect
detector scores 0.5; transforms/communities.recall_area), the same function for every
method. Speed is the time per query: sigil's batch job (the ``seed queries`` stage of
``sigil communities``, all queries in one Spark job, median of ``--repeat`` runs in a warm
session), sigil's in-memory index (CommunityIndex, the same answers) and networkx PPR.

Whole graph: NMI and adjusted Rand index against the planted communities (scikit-learn).

    .venv/bin/python benchmarks/communities.py                       # football + LFR 10k, mu .1/.3/.5
    .venv/bin/python benchmarks/communities.py --datasets football --queries 50 --repeat 1
    .venv/bin/python benchmarks/communities.py --datasets none --scale 1000000   # 1M vertices, ~10M edges

The scale run is one fresh ``sigil graph`` process on a generated planted-partition graph:
time per stage, peak memory of the whole process tree, and the latency of 1,000 queries.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import networkx as nx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from er_benchmark import measured  # noqa: E402 - benchmarks/ is the script's directory
from sigil.transforms.communities import CommunityIndex, recall_area

ROOT = Path(__file__).resolve().parent.parent
FOOTBALL = ROOT.parent / "shared" / "data" / "graph" / "football.gml"
DATASETS = ("football", "lfr0.1", "lfr0.3", "lfr0.5", "sparse-lfr0.2", "sparse-lfr0.4", "dcsbm2", "dcsbm8",
            "dcsbm2-sparse")
# degree-corrected block-model graphs, sparse and heavy-tailed like real social graphs:
# (vertices, blocks, average degree, inside/outside edge-rate ratio); dcsbm2 is shaped like
# the political-blog network (1,224 vertices, 2 sides, mean degree 27)
BLOCK_GRAPHS = {"dcsbm2": (1200, 2, 27, 12), "dcsbm8": (5000, 8, 8, 25), "dcsbm2-sparse": (3000, 2, 6, 15)}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def load(name: str, n: int) -> tuple[nx.Graph, dict]:
    """A graph and its true community per vertex (string ids): football, LFR graphs (mean
    degree 15; ``sparse-lfr``: mean degree 5, degree exponent 2.5, half the vertices of
    ``n``) or a degree-corrected block-model graph (``BLOCK_GRAPHS``, isolated vertices
    dropped)."""
    if name == "football":
        g = nx.read_gml(str(FOOTBALL))
        return g, {v: str(d["value"]) for v, d in g.nodes(data=True)}
    if name in BLOCK_GRAPHS:
        from sigil.transforms.graphgen import degree_corrected_blocks

        src, dst, block = degree_corrected_blocks(*BLOCK_GRAPHS[name], seed=1)
        g = nx.Graph(zip(map(str, src.tolist()), map(str, dst.tolist())))
        return g, {v: str(block[int(v)]) for v in g}
    sparse = name.startswith("sparse-")
    mu = float(name.removeprefix("sparse-")[3:])
    shape = (dict(tau1=2.5, average_degree=5, max_degree=60, max_community=200) if sparse else
             dict(tau1=3, average_degree=15, max_degree=50, max_community=100))
    for seed in range(1, 60):  # the LFR generator fails for some seeds
        try:
            g = nx.LFR_benchmark_graph(n // 2 if sparse else n, tau2=1.5, mu=mu, min_community=20, seed=seed, **shape)
            break
        except nx.ExceededMaxIterations:
            continue
    g.remove_edges_from(nx.selfloop_edges(g))
    truth = {}
    for v in g:
        truth.setdefault(str(v), str(min(g.nodes[v]["community"])))
    return nx.relabel_nodes(g, str), truth


def queries(truth: dict, count: int, seed: int = 0) -> list[dict]:
    groups: dict = {}
    for v, c in sorted(truth.items()):
        groups.setdefault(c, []).append(v)
    rng = random.Random(seed)
    names = sorted(groups)
    out = []
    for q in range(count):
        c = rng.choice(names)
        out.append({"query_id": f"q{q}", "seeds": rng.sample(groups[c], min(3, len(groups[c]))),
                    "size": len(groups[c]), "community": c})
    return out


def write_inputs(work: Path, g: nx.Graph, truth: dict, qs: list[dict]) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    src, dst = zip(*g.edges())
    pq.write_table(pa.table({"src": list(src), "dst": list(dst)}), work / "edges.parquet")
    pq.write_table(pa.table({"id": list(truth), "community": list(truth.values())}), work / "vertices.parquet")
    pq.write_table(pa.table({k: [q[k] for q in qs] for k in ("query_id", "seeds", "size")}), work / "queries.parquet")
    return {
        "output": str(work / "out"), "spark": {"shuffle_partitions": 8},
        "graph": {"edges": {"path": str(work / "edges.parquet"), "format": "parquet"},
                  "vertices": {"path": str(work / "vertices.parquet"), "format": "parquet", "id_column": "id",
                               "community_column": "community"}},
        "graph_index": {},
        "communities": {"queries": {"path": str(work / "queries.parquet"), "format": "parquet"},
                        "whole_graph": {}},
    }


def areas(ranked: dict, qs: list[dict], truth: dict) -> float:
    """Mean recall area: ``ranked[query_id]`` the external ids in rank order."""
    out = []
    for q in qs:
        members = {v for v, c in truth.items() if c == q["community"]}
        out.append(recall_area(np.array([v in members for v in ranked.get(q["query_id"], [])]), q["size"]))
    return float(np.mean(out))


def sigil_run(spark, conf: dict, qs: list[dict], truth: dict, repeat: int) -> dict:
    from sigil.jobs import communities, graph_index, graph_ingest
    from sigil.schemas.config import load_config

    config = load_config(base=conf)
    t0 = time.perf_counter()
    graph_ingest.run(spark, config, quiet=True)
    graph_index.run(spark, config, quiet=True)
    prep = time.perf_counter() - t0
    runs = [communities.run(spark, config, quiet=True) for _ in range(repeat)]
    out = Path(conf["output"])
    members = pq.read_table(out / "communities" / "members").to_pandas().sort_values(["query_id", "rank"])
    ranked = {q: grp.vertex.tolist() for q, grp in members.groupby("query_id")}
    assigned = pq.read_table(out / "communities" / "assignments").to_pandas()
    found = dict(zip(assigned.vertex, assigned.community))
    keys = sorted(truth)
    batch = statistics.median(r["timings"]["seed queries"] for r in runs) / len(qs)
    whole = statistics.median(r["timings"]["whole graph"] for r in runs)
    # the same queries in memory, on one machine
    index = CommunityIndex.from_parquet(str(out / "graph_index"))
    vids = dict(zip(*(pq.read_table(out / "graph" / "vertices")[c].to_pylist() for c in ("vertex", "vid"))))
    names = {v: k for k, v in vids.items()}
    seeds = [np.array([vids[s] for s in q["seeds"]]) for q in qs]
    index.query(seeds[0], qs[0]["size"])  # compile
    times = []
    for _ in range(max(repeat, 1)):
        t = time.perf_counter()
        answers = [index.query(s, q["size"])[0] for s, q in zip(seeds, qs)]
        times.append((time.perf_counter() - t) / len(qs))
    same = all([names[v] for v in a] == ranked.get(q["query_id"]) for a, q in zip(answers, qs))
    index.query(seeds[0], qs[0]["size"], "seeds")  # compile
    t = time.perf_counter()
    by_seeds = [index.query(s, q["size"], "seeds")[0] for s, q in zip(seeds, qs)]
    seeds_ms = 1000 * (time.perf_counter() - t) / len(qs)
    by_seeds = {q["query_id"]: [names[v] for v in a] for a, q in zip(by_seeds, qs)}
    m = runs[-1]["metrics"]
    return {
        "area": areas(ranked, qs, truth), "area_manifest": m["seed_queries"].get("recall_area"),
        "batch_ms": 1000 * batch, "memory_ms": 1000 * statistics.median(times), "memory_equals_batch": same,
        "mean_candidates": m["seed_queries"]["mean_candidates"], "index_seconds": prep,
        "nmi": normalized_mutual_info_score([truth[k] for k in keys], [found[k] for k in keys]),
        "ari": adjusted_rand_score([truth[k] for k in keys], [found[k] for k in keys]),
        "nmi_manifest": m["whole_graph"].get("nmi"), "communities": m["whole_graph"]["communities"],
        "whole_seconds": whole, "area_seeds": areas(by_seeds, qs, truth),
        "memory_ms_seeds": seeds_ms, "weights": m["whole_graph"]["weights"],
        "description_length": m["whole_graph"].get("description_length"),
        "fixed_weights": fixed_weights(spark, conf),
    }


def fixed_weights(spark, conf: dict) -> dict:
    """Whole-graph NMI and communities with each fixed ``weights`` (what ``auto`` chose among)."""
    from sigil.jobs import communities
    from sigil.schemas.config import load_config

    out = {}
    for weights in ("jaccard", "none"):
        com = {**conf["communities"], "queries": None, "whole_graph": {**conf["communities"]["whole_graph"],
                                                                        "weights": weights}}
        config = load_config(base={**conf, "communities": com, "quality": {"validate_output": "off"}})
        whole = communities.run(spark, config, quiet=True)["metrics"]["whole_graph"]
        out[weights] = {"nmi": whole.get("nmi"), "ari": whole.get("ari"), "communities": whole["communities"]}
    return out


def batch_sizes(spark, conf: dict, truth: dict, sizes: list[int], repeat: int) -> list[dict]:
    """Per-query cost of the ``seed queries`` stage against the batch's size, on the graph
    ``sigil_run`` indexed: each batch by the default route (the driver while queries x
    max_candidates <= ``communities.driver_batch``), always on the driver, and always in
    Spark's tasks (``driver_batch: 0``); median (min-max) of ``repeat`` runs in the warm
    session."""
    from sigil.jobs import communities
    from sigil.schemas.config import load_config

    out = []
    for n in sizes:
        path = Path(conf["output"]).parent / f"queries_{n}.parquet"
        qs = queries(truth, n, seed=1)
        pq.write_table(pa.table({k: [q[k] for q in qs] for k in ("query_id", "seeds", "size")}), path)
        for route, driver_batch in (("default", None), ("driver", 10**15), ("spark", 0)):
            com = {**conf["communities"], "queries": {"path": str(path), "format": "parquet"}, "whole_graph": None,
                   **({"driver_batch": driver_batch} if driver_batch is not None else {})}
            config = load_config(base={**conf, "communities": com, "quality": {"validate_output": "off"}})
            runs = [communities.run(spark, config, quiet=True) for _ in range(repeat)]
            ms = [1000 * r["timings"]["seed queries"] / n for r in runs]
            out.append({"queries": n, "route": route, "engine": runs[0]["metrics"]["seed_queries"]["engine"],
                        "ms_per_query": statistics.median(ms), "min": min(ms), "max": max(ms)})
            log(f"batch of {n}: {out[-1]}")
    return out


def ppr_run(g: nx.Graph, qs: list[dict], truth: dict, limit: int) -> dict:
    ranked, times = {}, []
    for q in qs[:limit]:
        t = time.perf_counter()
        score = nx.pagerank(g, alpha=0.85, personalization={s: 1 for s in q["seeds"]})
        order = list(q["seeds"]) + sorted((v for v in g if v not in q["seeds"]), key=lambda v: -score[v])
        times.append(time.perf_counter() - t)
        ranked[q["query_id"]] = order[:q["size"]]
    return {"area": areas(ranked, qs[:limit], truth), "ms": 1000 * statistics.median(times), "queries": len(times)}


def whole_references(g: nx.Graph, truth: dict, repeat: int) -> list[dict]:
    import igraph

    keys = sorted(truth)
    index = {v: i for i, v in enumerate(keys)}
    ig = igraph.Graph(n=len(keys), edges=[(index[u], index[v]) for u, v in g.edges()])
    methods = {
        "networkx Louvain": lambda: {v: i for i, c in enumerate(nx.community.louvain_communities(g, seed=0)) for v in c},
        "igraph multilevel": lambda: dict(zip(keys, ig.community_multilevel().membership)),
        "igraph Leiden": lambda: dict(zip(keys, ig.community_leiden(objective_function="modularity").membership)),
    }
    out = []
    for name, fn in methods.items():
        times = []
        for _ in range(repeat):
            random.seed(0)
            t = time.perf_counter()
            found = fn()
            times.append(time.perf_counter() - t)
        labels = [found[k] for k in keys]
        out.append({"method": name, "nmi": normalized_mutual_info_score([truth[k] for k in keys], labels),
                    "ari": adjusted_rand_score([truth[k] for k in keys], labels), "communities": len(set(labels)),
                    "seconds": statistics.median(times)})
    return out


def scale_ppr(out: Path, count: int) -> dict:
    """networkx PPR on the scale graph for the first ``count`` queries (the graph is built
    once, not timed per query)."""
    log("building the networkx graph of the scale run")
    edges = pq.read_table(out / "graph_generate" / "edges")
    t = time.perf_counter()
    g = nx.Graph()
    g.add_edges_from(zip(*(edges[c].to_numpy().tolist() for c in ("src", "dst"))))
    build = time.perf_counter() - t
    qs = pq.read_table(out / "graph_generate" / "queries").to_pylist()[:count]
    times = []
    for q in qs:
        t = time.perf_counter()
        nx.pagerank(g, alpha=0.85, personalization={int(s): 1 for s in q["seeds"]})
        times.append(time.perf_counter() - t)
    return {"queries": len(qs), "ms": 1000 * statistics.median(times), "build_seconds": build}


def scale(vertices: int, work: Path, ppr_queries: int = 0) -> dict:
    conf = yaml.safe_load((ROOT / "conf" / "graph_demo.yaml").read_text())
    conf = json.loads(json.dumps(conf).replace("out/graph_demo", str(work / "out")))
    conf["graph_generate"].update({"vertices": vertices, "average_degree": 24, "max_degree": 100,
                                   "queries": 1000, "chunk_vertices": 250_000})
    conf["spark"] = {"shuffle_partitions": 16, "driver_memory": "10g"}
    work.mkdir(parents=True, exist_ok=True)
    path = work / "scale.yaml"
    path.write_text(yaml.safe_dump(conf))
    log(f"generating {vertices} vertices")
    gen = measured([sys.executable, "-m", "sigil", "graph-generate", "--conf", str(path)], work / "generate.log")
    log(f"graph chain on {vertices} vertices")
    chain = measured([sys.executable, "-m", "sigil", "graph", "--conf", str(path), "--from", "graph_ingest"],
                     work / "graph.log")
    run = {"seconds": chain["process_seconds"], "peak_gib": chain["peak_rss_bytes"] / 2**30}
    manifests = {s: json.loads((work / "out" / d / "manifest.json").read_text())
                 for s, d in (("graph-ingest", "graph"), ("graph-index", "graph_index"), ("communities", "communities"))}
    ppr = scale_ppr(work / "out", ppr_queries) if ppr_queries else None
    return {"vertices": vertices, "generate_seconds": gen["process_seconds"], **run, "ppr": ppr,
            "edges": manifests["graph-ingest"]["metrics"]["edges"],
            "stages": {s: m["timings"] for s, m in manifests.items()},
            "seed_queries": manifests["communities"]["metrics"]["seed_queries"],
            "whole_graph": manifests["communities"]["metrics"]["whole_graph"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated of {DATASETS}, or none")
    p.add_argument("--lfr-n", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=1_000)
    p.add_argument("--ppr-queries", type=int, default=200, help="PPR is timed on the first queries only")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--scale", type=int, default=0, help="vertices of the scale run (0: none)")
    p.add_argument("--scale-ppr", type=int, default=0, help="time networkx PPR on this many queries of the scale graph")
    p.add_argument("--batch-sizes", default="10,100,1000,10000", help="seed-query batches timed on the first "
                   "dataset, by the default route and on Spark's tasks; empty: none")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    results: dict = {"datasets": {}, "scale": None}
    names = [d for d in args.datasets.split(",") if d and d != "none"]
    with tempfile.TemporaryDirectory(prefix="sigil-communities-") as tmp:
        work = Path(tmp)
        if names:
            from sigil.jobs.spark.session import spark_session
            from sigil.schemas.config import SparkConfig
            spark = spark_session(SparkConfig(shuffle_partitions=8, conf={"spark.ui.showConsoleProgress": False}))
        for name in names:
            log(f"{name}: building")
            g, truth = load(name, args.lfr_n)
            qs = queries(truth, args.queries)
            conf = write_inputs(work / name, g, truth, qs)
            log(f"{name}: sigil ({g.number_of_nodes()} vertices, {g.number_of_edges()} edges, {len(qs)} queries)")
            ours = sigil_run(spark, conf, qs, truth, args.repeat)
            log(f"{name}: personalized PageRank")
            ppr = ppr_run(g, qs, truth, args.ppr_queries)
            log(f"{name}: whole-graph references")
            results["datasets"][name] = {"vertices": g.number_of_nodes(), "edges": g.number_of_edges(),
                                         "queries": len(qs), "sigil": ours, "ppr": ppr,
                                         "whole": whole_references(g, truth, args.repeat)}
            if name == names[0] and args.batch_sizes:
                results["batches"] = {"data": name, "ppr_ms": ppr["ms"], "runs": batch_sizes(
                    spark, conf, truth, [int(x) for x in args.batch_sizes.split(",")], args.repeat)}
        if args.scale:
            results["scale"] = scale(args.scale, work / "scale", args.scale_ppr)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


def report(results: dict) -> None:
    rows = ["| data | vertices | edges | PPR area | sigil area | PPR ms/query | sigil batch ms/query | speed-up | "
            "sigil in-memory ms/query | speed-up | candidates/query |", "|" + "---|" * 11]
    for name, r in results["datasets"].items():
        s, ppr = r["sigil"], r["ppr"]
        rows.append(f"| {name} | {r['vertices']:,} | {r['edges']:,} | {ppr['area']:.3f} | {s['area']:.3f} | "
                    f"{ppr['ms']:.1f} | {s['batch_ms']:.2f} | {ppr['ms'] / s['batch_ms']:.0f}x | "
                    f"{s['memory_ms']:.3f} | {ppr['ms'] / s['memory_ms']:.0f}x | {s['mean_candidates']:.0f} |")
    rows += ["", "| data | method | NMI | ARI | communities | s |", "|---|---|---|---|---|---|"]
    for name, r in results["datasets"].items():
        s = r["sigil"]
        for w in r["whole"]:
            rows.append(f"| {name} | {w['method']} | {w['nmi']:.3f} | {w['ari']:.3f} | {w['communities']} | "
                        f"{w['seconds']:.2f} |")
        for weights, f in s["fixed_weights"].items():
            rows.append(f"| {name} | sigil, weights: {weights} | {f['nmi']:.3f} | {f['ari']:.3f} | {f['communities']} | |")
        rows.append(f"| {name} | **sigil, weights: auto** (chose {s['weights']}) | {s['nmi']:.3f} | {s['ari']:.3f} | "
                    f"{s['communities']} | {s['whole_seconds']:.2f} |")
    rows += ["", "| data | best unweighted reference (NMI) | sigil auto NMI | difference | chose | "
                 "description length jaccard / none | seed queries: area streaming | area seeds | "
                 "in-memory ms/query streaming / seeds |", "|" + "---|" * 9]
    for name, r in results["datasets"].items():
        s, best = r["sigil"], max(r["whole"], key=lambda w: w["nmi"])
        dl = s["description_length"] or {}
        rows.append(f"| {name} | {best['method']} ({best['nmi']:.3f}) | {s['nmi']:.3f} | {s['nmi'] - best['nmi']:+.3f} | "
                    f"{s['weights']} | {dl.get('jaccard', float('nan')):,.0f} / {dl.get('none', float('nan')):,.0f} | "
                    f"{s['area']:.3f} | {s['area_seeds']:.3f} | {s['memory_ms']:.3f} / {s['memory_ms_seeds']:.3f} |")
    if results["datasets"]:
        rows.append("")
        rows.append("checks: " + ", ".join(
            f"{n}: area from manifest {r['sigil']['area_manifest']:.4f} vs recomputed {r['sigil']['area']:.4f}, "
            f"in-memory answers {'equal' if r['sigil']['memory_equals_batch'] else 'DIFFER'}"
            for n, r in results["datasets"].items()))
    if results.get("batches"):
        b = results["batches"]
        rows += ["", f"seed-query batches on {b['data']} (ms per query, median (min-max); networkx PPR "
                     f"{b['ppr_ms']:.1f} ms per query):", "| queries | route | engine | ms/query | PPR / sigil |",
                 "|---|---|---|---|---|"]
        rows += [f"| {r['queries']:,} | {r['route']} | {r['engine']} | {r['ms_per_query']:.2f} ({r['min']:.2f}-"
                 f"{r['max']:.2f}) | {b['ppr_ms'] / r['ms_per_query']:.1f}x |" for r in b["runs"]]
    sc = results["scale"]
    if sc:
        q = sc["seed_queries"]
        rows += ["", f"scale: {sc['vertices']:,} vertices, {sc['edges']:,} edges (generated in "
                     f"{sc['generate_seconds']:.0f} s); graph chain {sc['seconds']:.0f} s, peak {sc['peak_gib']:.2f} GiB",
                 "stages: " + "; ".join(f"{s} " + ", ".join(f"{k} {v:.1f}s" for k, v in t.items())
                                        for s, t in sc["stages"].items()),
                 f"1,000 seed queries: {1000 * q['seconds_per_query']:.1f} ms per query in the batch; recall area "
                 f"{q.get('recall_area', float('nan')):.3f}; whole graph NMI {sc['whole_graph'].get('nmi', float('nan')):.3f}"]
        if sc.get("ppr"):
            ppr = sc["ppr"]
            rows.append(f"networkx PPR on the same graph: {ppr['ms']:.0f} ms per query (median of {ppr['queries']}; "
                        f"graph built once in {ppr['build_seconds']:.0f} s): "
                        f"{ppr['ms'] / (1000 * q['seconds_per_query']):.0f}x the batch's time per query")
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
