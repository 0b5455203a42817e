"""PowerWalk personalized PageRank (ppr-index, ppr-query) against exact PPR and per-query
PPR libraries, measured in one run.

Parts (``--parts``, comma-separated):

* ``accuracy``: on each graph (a directed scale-free graph, an LFR benchmark graph, Newman's
  college football), fingerprints of every vertex for R = ``--walks``, then the batch
  answer of ``--sources`` random sources for T = ``--steps`` (``PPRIndex`` with the job's
  default prune and resolution), against exact PPR (scipy power iteration to L1 1e-10):
  mean L1 error, precision@k and NDCG@k (transforms/ppr.py's definitions, the ones
  ppr-query's manifest reports);
* ``knobs``: on the scale-free graph, the accuracy/cost trade-off of prune and resolution
  at one R;
* ``throughput``: a batch of ``--batch`` random single-source queries answered by
  ``PPRIndex.top_k`` (all cores), against per-query baselines timed in the same process on
  the same graph: scipy power iteration (``exact_ppr``, one query at a time), networkx
  ``pagerank(personalization=...)`` and igraph ``personalized_pagerank`` (PRPACK);
* ``jobs``: the same graph and batch through the command line as a user runs it:
  ``graph-ingest``, ``ppr-index``, ``ppr-query`` (held path, exactness check on a sample),
  seconds per stage from the manifests;
* ``scale``: ``graph-generate`` graphs (power-law degrees, planted communities) of
  ``--scale`` vertices at average degree 20 (~10 edges per vertex), then ``graph-ingest``
  and ``ppr-index``: seconds per stage and peak resident memory of each process tree, and
  t(largest) / t(smallest) of ppr-index.

The scale-free graph is ``networkx.scale_free_graph(n, alpha=0.05, beta=0.9, gamma=0.05,
delta_in=5, delta_out=5)`` made a simple directed graph (parallel edges merged, self-loops
removed): 100,000 vertices give ~950,000 edges, 12 % dangling vertices (their walks
continue at the source), maximum in/out degree ~10,000. Timings are medians of
``--repeat`` runs after a warm-up (numba compilation), with the 1-minute load average: on
a shared 2-core machine a load well above 2 means other work ran beside.

    .venv/bin/python benchmarks/ppr.py                                  # all parts, ~25 min on 2 cores
    .venv/bin/python benchmarks/ppr.py --parts accuracy --graphs football,lfr --n 20000   # quick
    .venv/bin/python benchmarks/ppr.py --parts scale --scale 100000,1000000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import igraph as ig
import networkx as nx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from er_benchmark import ROOT, measured  # noqa: E402 - benchmarks/ is the script's directory
from timing import timed  # noqa: E402 - benchmarks/ is the script's directory
from sigil.schemas.config import PprConfig
from sigil.transforms.ppr import (Graph, PPRIndex, exact_ppr, fingerprint_matrix, fingerprints, l1_error,
                                  ndcg_at_k, precision_at_k)

FOOTBALL = ROOT.parent / "shared" / "data" / "graph" / "football.gml"
GRAPHS = ("scale_free", "lfr", "football")
DEFAULTS = PprConfig()


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def scale_free(n: int, seed: int) -> nx.DiGraph:
    g = nx.DiGraph(nx.scale_free_graph(n, alpha=0.05, beta=0.9, gamma=0.05, delta_in=5, delta_out=5, seed=seed))
    g.remove_edges_from(list(nx.selfloop_edges(g)))
    return g


def lfr(seed: int) -> nx.Graph:
    g = nx.LFR_benchmark_graph(5000, 2.5, 1.5, 0.3, average_degree=10, max_degree=100, min_community=20,
                               max_community=200, seed=seed)
    g.remove_edges_from(list(nx.selfloop_edges(g)))
    return nx.Graph(g)


def load(name: str, args) -> nx.Graph:
    if name == "scale_free":
        return scale_free(args.n, args.graph_seed)
    if name == "lfr":
        return lfr(args.graph_seed)
    return nx.Graph(nx.read_gml(FOOTBALL, label="id"))


def csr(g: nx.Graph) -> Graph:
    """The graph on dense ids 0..n-1 in networkx's node order (an undirected graph walks both ways)."""
    ids = {v: i for i, v in enumerate(g)}
    edges = np.array([(ids[u], ids[v]) for u, v in g.edges()], np.int64).reshape(-1, 2)
    return Graph.from_edges(edges[:, 0], edges[:, 1], n=len(ids), directed=g.is_directed())


def index(graph: Graph, walks: int, seed: int, **knobs) -> tuple[PPRIndex, float]:
    fp, seconds, _, _ = timed(lambda: fingerprints(graph, np.arange(graph.n), walks, alpha=DEFAULTS.alpha, seed=seed))
    f = fingerprint_matrix(fp.source, fp.target, fp.value, graph.n)
    return PPRIndex(graph, f, alpha=DEFAULTS.alpha, seed=seed, **knobs), seconds


def quality(idx: PPRIndex, sources, exact, k: int) -> dict:
    s = idx.scores(sources)
    return {"l1": float(l1_error(s, exact).mean()), "precision": float(precision_at_k(s, exact, k).mean()),
            "ndcg": float(ndcg_at_k(s, exact, k).mean())}


def accuracy(name: str, args, rows: list) -> None:
    g = load(name, args)
    graph = csr(g)
    sources = np.random.default_rng(0).choice(graph.n, min(args.sources, graph.n), replace=False)
    exact = exact_ppr(graph, sources, alpha=DEFAULTS.alpha)
    log(f"{name}: {graph.n:,} vertices, {len(graph.targets):,} arcs; exact PPR of {len(sources)} sources")
    for walks in args.walks:
        idx, fp_s = index(graph, walks, args.seed, steps=0, prune=DEFAULTS.prune, resolution=DEFAULTS.resolution)
        for steps in args.steps:
            idx.steps = steps
            row = {"graph": name, "vertices": graph.n, "arcs": int(len(graph.targets)), "walks": walks, "steps": steps,
                   "fingerprint_seconds": fp_s, **quality(idx, sources, exact, args.k)}
            log(f"  R={walks} T={steps}: L1 {row['l1']:.4f} P@{args.k} {row['precision']:.3f} NDCG {row['ndcg']:.4f}")
            rows.append(row)


def knobs(args, rows: list) -> None:
    graph = csr(scale_free(args.n, args.graph_seed))
    sources = np.random.default_rng(0).choice(graph.n, args.sources, replace=False)
    batch = np.random.default_rng(1).integers(0, graph.n, args.batch)
    exact = exact_ppr(graph, sources, alpha=DEFAULTS.alpha)
    for walks in args.knob_walks:
        idx, _ = index(graph, walks, args.seed)
        for steps, prune, resolution in ((4, 1e-4, 0), (4, 1e-3, 0), (4, 1e-3, 1e-4), (4, 1e-3, 2e-4),
                                         (6, 1e-3, 2e-4), (8, 1e-3, 1e-4), (8, 1e-3, 2e-4), (8, 1e-3, 3e-4),
                                         (8, 1e-4, 2e-4)):
            idx.steps, idx.prune, idx.resolution = steps, prune, resolution
            idx.top_k(batch[:100], args.k)
            _, s, spread, load_ = timed(lambda: idx.top_k(batch, args.k), args.repeat)
            row = {"walks": walks, "steps": steps, "prune": prune, "resolution": resolution,
                   "ms_per_query": 1e3 * s / len(batch), "spread_ms": [1e3 * x / len(batch) for x in spread],
                   "load": load_, **quality(idx, sources, exact, args.k)}
            log(f"  knobs {row}")
            rows.append(row)


def baselines(g: nx.DiGraph, graph: Graph, batch, args) -> dict:
    """Per-query seconds (median) of scipy power iteration, networkx and igraph on ``batch``'s first queries."""
    alpha = DEFAULTS.alpha
    exact_ppr(graph, batch[:1], alpha=alpha)
    nodes = list(g)
    scipy_s = [timed(lambda: exact_ppr(graph, [int(s)], alpha=alpha))[1] for s in batch[:args.scipy_queries]]
    # networkx stops when the L1 change is below n * tol: exact_ppr's rule (L1 error 1e-10)
    tol = 1e-10 * alpha / (1 - alpha) / graph.n
    nx_s = [timed(lambda: nx.pagerank(g, 1 - alpha, personalization={nodes[s]: 1}, tol=tol, max_iter=10_000))[1]
            for s in batch[:args.nx_queries]]
    h = ig.Graph(n=graph.n, edges=np.c_[np.repeat(np.arange(graph.n), graph.out_degree), graph.targets].tolist(),
                 directed=True)
    ig_s = [timed(lambda: h.personalized_pagerank(damping=1 - alpha, reset_vertices=[int(s)]))[1]
            for s in batch[:args.igraph_queries]]
    return {name: {"queries": len(x), "ms_per_query": 1e3 * statistics.median(x),
                   "spread_ms": [1e3 * min(x), 1e3 * max(x)]}
            for name, x in (("scipy", scipy_s), ("networkx", nx_s), ("igraph", ig_s))}


def throughput(args, report: dict) -> None:
    g = scale_free(args.n, args.graph_seed)
    graph = csr(g)
    batch = np.random.default_rng(1).integers(0, graph.n, args.batch)
    sources = np.random.default_rng(0).choice(graph.n, args.sources, replace=False)
    exact = exact_ppr(graph, sources, alpha=DEFAULTS.alpha)
    out = {"vertices": graph.n, "arcs": int(len(graph.targets)), "queries": len(batch), "threads": os.cpu_count(),
           "baselines": baselines(g, graph, batch, args), "sigil": []}
    for walks in args.knob_walks:
        idx, fp_s = index(graph, walks, args.seed, steps=DEFAULTS.steps, prune=DEFAULTS.prune,
                          resolution=DEFAULTS.resolution)
        idx.top_k(batch[:100], args.k)
        _, s, spread, load_ = timed(lambda: idx.top_k(batch, args.k), args.repeat)
        row = {"walks": walks, "fingerprint_seconds": fp_s, "batch_seconds": s, "spread": spread, "load": load_,
               "ms_per_query": 1e3 * s / len(batch), **quality(idx, sources, exact, args.k)}
        row["speedup"] = {name: b["ms_per_query"] / row["ms_per_query"] for name, b in out["baselines"].items()}
        log(f"  throughput {row}")
        out["sigil"].append(row)
    report["throughput"] = out


def sigil(job: str, conf: Path, work: Path, *sets: str) -> dict:
    cmd = [sys.executable, "-m", "sigil", job, "--conf", str(conf), *(x for s in sets for x in ("--set", s))]
    return measured(cmd, work / f"{job}.log")


def manifest(out: Path, stage: str) -> dict:
    return json.loads((out / stage / "manifest.json").read_text())


def jobs(args, work: Path, report: dict) -> None:
    g = scale_free(args.n, args.graph_seed)
    src, dst = np.array(g.edges()).T
    pq.write_table(pa.table({"src": src, "dst": dst}), work / "edges.parquet")
    batch = np.random.default_rng(1).integers(0, args.n, args.batch)
    pq.write_table(pa.table({"query_id": [f"q{i}" for i in range(len(batch))],
                             "sources": [[str(s)] for s in batch]}), work / "queries.parquet")
    conf = {"output": str(work / "out"), "spark": {"shuffle_partitions": 8, "driver_memory": "6g"},
            "graph": {"edges": {"path": str(work / "edges.parquet"), "format": "parquet"}, "directed": True},
            "ppr": {"walks": args.job_walks, "seed": args.seed, "k": args.k, "exact_sample": 50,
                    "queries": {"path": str(work / "queries.parquet"), "format": "parquet"}}}
    path = work / "ppr.yaml"
    path.write_text(yaml.safe_dump(conf))
    runs = {j: sigil(j, path, work) for j in ("graph-ingest", "ppr-index")}
    queries = [sigil("ppr-query", path, work) for _ in range(args.repeat)]
    out = work / "out"
    stages = {s: manifest(out, s)["timings"] for s in ("graph", "ppr_index")}
    query_runs = [manifest(out, "ppr_query")] if queries else []
    m = query_runs[-1]
    report["jobs"] = {"process_seconds": {**{j: r["process_seconds"] for j, r in runs.items()},
                                          "ppr-query": statistics.median(q["process_seconds"] for q in queries)},
                      "peak_gib": max(r["peak_rss_bytes"] for r in (*runs.values(), *queries)) / 2 ** 30,
                      "stages": {**stages, "ppr_query": m["timings"]}, "exactness": m["metrics"]["exactness"],
                      "queries": m["metrics"]["queries"], "load": os.getloadavg()[0]}
    log(f"  jobs {report['jobs']}")


def scale(args, work: Path, report: dict) -> None:
    report["scale"] = []
    for vertices in args.scale:
        base = work / f"scale_{vertices}"
        base.mkdir(parents=True, exist_ok=True)
        conf = yaml.safe_load((ROOT / "conf" / "graph_demo.yaml").read_text())
        conf = json.loads(json.dumps(conf).replace("out/graph_demo", str(base / "out")))
        conf["graph_generate"].update({"vertices": vertices, "average_degree": 20, "max_degree": 100,
                                       "queries": 10, "chunk_vertices": 250_000})
        conf["spark"] = {"shuffle_partitions": 16, "driver_memory": "8g"}
        conf["ppr"] = {"walks": args.job_walks, "seed": args.seed}
        path = base / "scale.yaml"
        path.write_text(yaml.safe_dump(conf))
        runs = {j: sigil(j, path, base) for j in ("graph-generate", "graph-ingest", "ppr-index")}
        out = base / "out"
        index_ = manifest(out, "ppr_index")
        row = {"vertices": vertices, "edges": manifest(out, "graph")["metrics"]["edges"],
               "process_seconds": {j: r["process_seconds"] for j, r in runs.items()},
               "peak_gib": {j: r["peak_rss_bytes"] / 2 ** 30 for j, r in runs.items()},
               "ppr_index_stages": index_["timings"], "fingerprint_rows": index_["outputs"]["fingerprints"],
               "path": index_["metrics"].get("path"), "load": os.getloadavg()[0]}
        log(f"  scale {row}")
        report["scale"].append(row)
    first, last = report["scale"][0], report["scale"][-1]
    report["scale_ratio"] = {"ppr_index_process": last["process_seconds"]["ppr-index"] / first["process_seconds"]["ppr-index"],
                             "ppr_index_stages": last["ppr_index_stages"]["total"] / first["ppr_index_stages"]["total"]}


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="accuracy,knobs,throughput,jobs,scale")
    ap.add_argument("--graphs", default=",".join(GRAPHS))
    ap.add_argument("--n", type=int, default=100_000, help="vertices of the scale-free graph")
    ap.add_argument("--graph-seed", type=int, default=1)
    ap.add_argument("--sources", type=int, default=100, help="random sources checked against exact PPR")
    ap.add_argument("--walks", type=ints, default=[10, 30, 100], help="R values of the accuracy grid")
    ap.add_argument("--steps", type=ints, default=[0, 2, 4, 8], help="T values of the accuracy grid")
    ap.add_argument("--knob-walks", type=ints, default=[10, 30], help="R values of the knobs and throughput parts")
    ap.add_argument("--job-walks", type=int, default=DEFAULTS.walks, help="R of the jobs and scale parts")
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1, help="walk and sampling seed")
    ap.add_argument("--batch", type=int, default=10_000, help="queries of the throughput batch")
    ap.add_argument("--scipy-queries", type=int, default=10)
    ap.add_argument("--nx-queries", type=int, default=3)
    ap.add_argument("--igraph-queries", type=int, default=5)
    ap.add_argument("--scale", type=ints, default=[100_000, 1_000_000], help="vertices of the scale graphs")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, help="working directory (default: a temporary one)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    report = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "defaults": {"prune": DEFAULTS.prune, "resolution": DEFAULTS.resolution, "steps": DEFAULTS.steps,
                           "alpha": DEFAULTS.alpha}, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if "accuracy" in parts:
            report["accuracy"] = []
            for name in args.graphs.split(","):
                accuracy(name, args, report["accuracy"])
        if "knobs" in parts:
            report["knobs"] = []
            knobs(args, report["knobs"])
        if "throughput" in parts:
            throughput(args, report)
        if "jobs" in parts:
            jobs(args, work, report)
        if "scale" in parts:
            scale(args, work, report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
