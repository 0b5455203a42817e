"""PowerWalk PPR kernels (transforms/ppr.py) on a networkx scale-free graph, in one process.

Measured, to size the ``ppr-index`` and ``ppr-query`` jobs:

* fingerprints of every vertex for each R (``--walks``): seconds, rows, visits per second;
* exact PPR of ``--sources`` random sources by scipy power iteration (L1 tolerance 1e-10):
  seconds per query in one batch and one query at a time, and networkx ``pagerank`` with a
  personalization vector for ``--nx-queries`` of them;
* for each R and T (``--steps``): the batch query (``query``: decomposition + fingerprints)
  of all sources, its seconds per query, one query at a time through ``PPRIndex.top``,
  and the quality against exact PPR: mean L1 error, precision@k and NDCG@k
  (transforms/ppr.py's definitions, the ones the jobs' manifests report).

The graph is ``networkx.scale_free_graph(n, seed)`` made a simple directed graph (parallel
edges merged, self-loops removed); its vertices without out-edges are dangling (their walks
continue at the source). Timings are medians of ``--repeat`` runs after a warm-up (numba
compilation), with the 1-minute load average after each measurement: on a shared 2-core
machine a load well above 2 means the row's timings are not to be trusted.

    .venv/bin/python benchmarks/ppr_kernels.py                          # 100k vertices, under a minute on 2 cores
    .venv/bin/python benchmarks/ppr_kernels.py --n 20000 --sources 20 --repeat 1   # quick check
    .venv/bin/python benchmarks/ppr_kernels.py --json ppr.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import networkx as nx
import numpy as np
import scipy.sparse as sp

from sigil.transforms.ppr import (Graph, PPRIndex, exact_ppr, fingerprint_matrix, fingerprints, l1_error,
                                  ndcg_at_k, precision_at_k, query)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def timed(fn, repeat: int):
    """(result of the last run, median seconds, load average after)."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return out, statistics.median(runs), os.getloadavg()[0]


def scale_free(n: int, seed: int) -> tuple[nx.DiGraph, np.ndarray]:
    g = nx.DiGraph(nx.scale_free_graph(n, seed=seed))
    g.remove_edges_from(list(nx.selfloop_edges(g)))
    return g, np.array(list(g.edges()), dtype=np.int64).reshape(-1, 2)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="vertices of the scale-free graph")
    ap.add_argument("--graph-seed", type=int, default=1)
    ap.add_argument("--sources", type=int, default=100, help="random query sources")
    ap.add_argument("--walks", default="10,30,100", help="R values")
    ap.add_argument("--steps", default="0,2,4,8", help="T values")
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--alpha", type=float, default=0.15)
    ap.add_argument("--prune", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=1, help="walk seed")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--single", type=int, default=5, help="sources timed one exact query at a time")
    ap.add_argument("--nx-queries", type=int, default=3, help="sources timed with networkx pagerank")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    walks = [int(x) for x in args.walks.split(",")]
    steps = [int(x) for x in args.steps.split(",")]
    alpha, k = args.alpha, args.k

    t0 = time.perf_counter()
    g, edges = scale_free(args.n, args.graph_seed)
    log(f"scale_free_graph({args.n}) in {time.perf_counter() - t0:.1f} s")
    graph, csr_s, _ = timed(lambda: Graph.from_edges(edges[:, 0], edges[:, 1], n=args.n), args.repeat)
    deg = graph.out_degree
    info = {"vertices": graph.n, "edges": int(len(graph.targets)), "dangling": int((deg == 0).sum()),
            "max_out_degree": int(deg.max()), "max_in_degree": int(np.bincount(graph.targets).max()),
            "csr_seconds": csr_s, "cores": os.cpu_count()}
    log(f"graph: {info}")
    sources = np.random.default_rng(0).choice(graph.n, args.sources, replace=False)
    # once per graph, then cached on it: the transition matrix and the dangling weights m
    _, info["query_setup_seconds"], _ = timed(lambda: PPRIndex(graph, sp.csr_array((graph.n, graph.n)), alpha=alpha), 1)

    fingerprints(graph, sources[:10], 3, alpha=alpha, seed=args.seed)  # numba compilation
    exact_ppr(graph, sources[:1], alpha=alpha)
    exact, batch_s, load = timed(lambda: exact_ppr(graph, sources, alpha=alpha), 1)
    single = [timed(lambda: exact_ppr(graph, [s], alpha=alpha), 1)[1] for s in sources[:args.single]]
    # networkx stops when the L1 change is below n * tol: the same stopping rule as exact_ppr's
    nx_tol = 1e-10 * alpha / (1 - alpha) / graph.n
    nx_s = [timed(lambda: nx.pagerank(g, 1 - alpha, personalization={int(s): 1}, tol=nx_tol, max_iter=10_000), 1)[1]
            for s in sources[:args.nx_queries]]
    reach = np.count_nonzero(exact, axis=1)
    info["exact"] = {"batch_seconds_per_query": batch_s / len(sources),
                     "single_seconds_per_query": statistics.median(single) if single else None,
                     "networkx_seconds_per_query": statistics.median(nx_s) if nx_s else None,
                     "load_average_after": load, "reachable_mean": float(reach.mean()),
                     "reachable_median": float(np.median(reach))}
    log(f"exact: {info['exact']}")

    rows = []
    for r in walks:
        fp, fp_s, load = timed(lambda: fingerprints(graph, np.arange(graph.n), r, alpha=alpha, seed=args.seed),
                               args.repeat)
        f = fingerprint_matrix(fp.source, fp.target, fp.value, graph.n)
        visits = r / alpha * graph.n
        fprow = {"walks": r, "seconds": fp_s, "rows": int(len(fp.value)), "rows_per_vertex": len(fp.value) / graph.n,
                 "megabytes": (fp.source.nbytes + fp.target.nbytes + fp.value.nbytes) / 2 ** 20,
                 "visits_per_second": visits / fp_s, "load_average_after": load}
        log(f"fingerprints: {fprow}")
        for t in steps:
            scores, q_s, load = timed(lambda: query(graph, f, sources, t, alpha=alpha, prune=args.prune), args.repeat)
            index = PPRIndex(graph, f, alpha=alpha, steps=t, prune=args.prune)
            one = [timed(lambda: index.top(int(s), k), 1)[1] for s in sources]
            row = {"walks": r, "steps": t, "fingerprint_seconds": fp_s, "fingerprint_rows": fprow["rows"],
                   "batch_ms_per_query": 1e3 * q_s / len(sources), "index_ms_per_query": 1e3 * statistics.median(one),
                   "l1": float(l1_error(scores, exact).mean()),
                   "precision": float(precision_at_k(scores, exact, k).mean()),
                   "ndcg": float(ndcg_at_k(scores, exact, k).mean()),
                   "score_rows_per_query": scores.nnz / len(sources), "load_average_after": load}
            log(f"R={r} T={t}: L1 {row['l1']:.4f} P@{k} {row['precision']:.3f} NDCG@{k} {row['ndcg']:.4f} "
                f"batch {row['batch_ms_per_query']:.2f} ms/q index {row['index_ms_per_query']:.2f} ms/q")
            rows.append(row)
        rows[-1]["fingerprints"] = fprow

    print(f"\nscale_free_graph({args.n}, seed={args.graph_seed}) as a simple digraph: {info['vertices']:,} vertices, "
          f"{info['edges']:,} edges, {info['dangling']:,} dangling, max out/in degree "
          f"{info['max_out_degree']}/{info['max_in_degree']}; alpha {alpha}, prune {args.prune}, "
          f"{len(sources)} sources, k = {k}, {info['cores']} cores; CSR built in {info['csr_seconds']:.3f} s, "
          f"query set-up (transition matrix, dangling weights) {info['query_setup_seconds']:.2f} s once per graph")
    ex = info["exact"]
    print(f"exact PPR (scipy power iteration, L1 1e-10): {1e3 * ex['batch_seconds_per_query']:.1f} ms/query in a batch "
          f"of {len(sources)}, {1e3 * (ex['single_seconds_per_query'] or float('nan')):.1f} ms/query alone; networkx "
          f"pagerank {1e3 * (ex['networkx_seconds_per_query'] or float('nan')):.0f} ms/query; reachable vertices per "
          f"source: mean {ex['reachable_mean']:.0f}, median {ex['reachable_median']:.0f}")
    print("\n| R | fingerprints s | rows | visits/s | load |\n|---|---|---|---|---|")
    for row in rows:
        if "fingerprints" in row:
            fprow = row["fingerprints"]
            print(f"| {fprow['walks']} | {fprow['seconds']:.2f} | {fprow['rows']:,} ({fprow['megabytes']:.0f} MiB) "
                  f"| {fprow['visits_per_second'] / 1e6:.1f} M | {fprow['load_average_after']:.1f} |")
    print(f"\n| R | T | L1 | P@{k} | NDCG@{k} | batch ms/query | index ms/query | score rows/query | load |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['walks']} | {row['steps']} | {row['l1']:.4f} | {row['precision']:.3f} | {row['ndcg']:.4f} | "
              f"{row['batch_ms_per_query']:.2f} | {row['index_ms_per_query']:.2f} | {row['score_rows_per_query']:,.0f} "
              f"| {row['load_average_after']:.1f} |")
    result = {"graph": info, "args": vars(args), "rows": rows}
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return result


if __name__ == "__main__":
    main()
