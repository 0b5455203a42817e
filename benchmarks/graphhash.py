"""GraphHash (transforms/graphhash.py) against random, double and frequency hashing, the full
embedding table and the most-popular baseline, measured in one run on one generated data set;
and the clustering of a 10M-interaction graph, per stage, with its peak memory.

Data: ``interactions.generate_interactions(--users, --items, --interactions,
communities=--communities, in_community=--in-community, seed=--data-seed)`` (latent
communities, Zipf activity and popularity; the generator's defaults for the rest), split per
user by time (``split(by="time", test_fraction=--test-fraction, seed=--data-seed)``). The
vertex dictionaries (``dense_ids``) and the graph (``biadjacency``, interaction counts) come
from the train split alone: U and I are the users and items with a training interaction.

Parts (``--parts``, comma-separated):

* ``quality``: for each compression ratio r of ``--ratios`` the budget is
  ``Budget(ratio=r)``, one table of ``R = ceil((U + I) / r)`` rows that users and items
  share; each variant of ``graphhash.VARIANTS`` maps the train graph's ids into it (timed),
  the budget is checked (``tables == (R,)`` for every variant; for the graph variants every
  row of the clusters' range used: ``[0, R)``, for DoubleGraphHash ``[0, R1)``, its hash rows
  being as random as random hashing's), and BPR matrix factorisation (``recommender.train_bpr``, torch on the CPU,
  ``shared=True``) is trained on the train split with that mapping, then scored by
  ``recommender.evaluate`` (Recall@K and NDCG@K, K = ``--k``, every item ranked, the user's
  training items excluded) on the test split. The same for the full table (one row per id,
  no mapping) and the most-popular baseline (``popularity_factors``). Each of ``--seeds``
  seeds is one repetition on the same data: the seed of the mapping (hashes, clustering) and
  of the training (initial rows, order, negatives). Reported per (ratio, variant): rows,
  rows used, Recall@K and NDCG@K (median and min-max over the seeds), the median recall
  relative to random, double and the full table (``x / random - 1``), median mapping and
  training seconds, and the 1-minute load average after the last training.
* ``scale``: in a child process (``er_benchmark.measured``: wall seconds and the sampled
  peak memory of the process tree) a graph of ``--scale-interactions`` interactions over
  ``--users`` x ``--items``: generate, split, dense ids + biadjacency, then ``graphhash`` at
  ``Budget(ratio=--scale-ratio)``, its time split into the clusterings of the resolution
  search (``graphhash.cluster``, wrapped to time each call) and the rest (the landing on
  exactly R clusters, hashing, checks); seconds per stage and the process's peak resident
  memory after each (``VmHWM``).
* ``epochs`` (not in the default): the full table trained for each count of
  ``--epoch-grid`` on a validation split carved from the train split (each user's latest
  ``--test-fraction / (1 - --test-fraction)`` of train rows; the test split is not touched),
  with its last-epoch loss and validation Recall@K: how ``--epochs`` was chosen.

Evaluation protocol. The generator repeats popular pairs: with the time split most test rows
of a user are items the user already had in training (63 % at the defaults), which
``evaluate`` excludes from the ranking and so can never be hit; the test set is the distinct
(user, item) pairs of the test split that are not training pairs, as in the data sets of
LightGCN and GraphHash. Every test user has training rows (``split`` keeps one); a test item
without any (cold) is in the model's id space after the I training items, mapped by
``graphhash.cold_buckets`` (the full table gives it its own row); BPR, which draws negatives
among all ids, only ever sees it as a negative.

BPR settings: ``train_bpr``'s defaults (dim 64, Adam lr 1e-3, L2 1e-4 on the batch's
embeddings, batch 2048, initial rows N(0, 0.1^2)) and ``--epochs`` 30, chosen with
``--parts epochs`` on the default data (validation Recall@20 of the full table by epochs:
see benchmarks/README.md). torch runs ``--threads`` threads (1).

    .venv/bin/python benchmarks/graphhash.py --json graphhash.json      # quality + scale: ~40 min on 2 cores
    .venv/bin/python benchmarks/graphhash.py --parts epochs --epoch-grid 5,10,20,30,40,60
    .venv/bin/python benchmarks/graphhash.py --users 2000 --items 1000 --interactions 50000 \\
        --ratios 10,4 --seeds 1 --epochs 3 --scale-interactions 200000     # quick check, about 15 s
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from er_benchmark import measured  # noqa: E402 - benchmarks/ is the script's directory
from timing import timed  # noqa: E402
from sigil.transforms import graphhash as gh
from sigil.transforms.graphhash import VARIANTS, Budget, cold_buckets
from sigil.transforms.interactions import biadjacency, dense_ids, generate_interactions, split
from sigil.transforms.recommender import RowMap, evaluate, popularity_factors, train_bpr

GRAPH_VARIANTS = ("graphhash", "double_graphhash", "frequency_hybrid")
PAPER_GAIN = 1.015  # GraphHash's mean Recall@20 gain over the hashing baselines beyond 75 % reduction [Wu et al.]


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def peak_gib() -> float:
    """This process's peak resident memory: VmHWM, which an exec resets (``ru_maxrss`` keeps the
    peak of the process that spawned it), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 2**20  # KiB
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


# ------------------------------------------------------------------------------- data


@dataclass
class Data:
    user_ids: pa.Array  # U training users, dense id k = user_ids[k]
    item_ids: pa.Array  # I training items
    cold_ids: pa.Array  # C test items without a training row: dense ids I..I+C-1
    train_user: np.ndarray
    train_item: np.ndarray
    test_user: np.ndarray
    test_item: np.ndarray
    graph: sp.csr_array  # U x I interaction counts of the train split
    stats: dict

    @property
    def n_items(self) -> int:
        """Items of the model's id space: the training items, then the cold ones."""
        return len(self.item_ids) + len(self.cold_ids)


def index_of(values, ids: pa.Array) -> np.ndarray:
    """Dense id of each value in the sorted dictionary ``ids``, -1 where absent."""
    return np.asarray(pc.fill_null(pc.index_in(values, value_set=ids), -1), np.int64)


def prepare(train: pa.Table, test: pa.Table) -> Data:
    """Dictionaries and graph from ``train``; ``test`` as new (user, item) pairs in that id space."""
    user_ids, train_user = dense_ids(train.column("user"))
    item_ids, train_item = dense_ids(train.column("item"))
    graph = biadjacency(train_user, train_item, shape=(len(user_ids), len(item_ids)))
    test_user = index_of(test.column("user"), user_ids)
    if (test_user < 0).any():
        raise SystemExit("a test user has no training row: split should keep one")
    test_item = index_of(test.column("item"), item_ids)
    cold = test_item < 0
    cold_ids = dense_ids(test.column("item").filter(pa.array(cold)))[0] if cold.any() else pa.array([], pa.string())
    test_item[cold] = len(item_ids) + index_of(test.column("item").filter(pa.array(cold)), cold_ids)
    known = ~cold
    repeat = np.zeros(len(test_user), bool)
    repeat[known] = graph[test_user[known], test_item[known]] > 0
    n_items = len(item_ids) + len(cold_ids)
    pairs = np.unique(test_user[~repeat] * n_items + test_item[~repeat])
    stats = {"train_rows": train.num_rows, "test_rows": test.num_rows, "users": len(user_ids), "items": len(item_ids),
             "train_pairs": int(graph.nnz), "test_rows_repeating_a_train_pair": int(repeat.sum()),
             "test_pairs": len(pairs), "test_users": len(np.unique(pairs // n_items)),
             "cold_items": len(cold_ids), "cold_test_pairs": int((pairs % n_items >= len(item_ids)).sum())}
    return Data(user_ids, item_ids, cold_ids, train_user, train_item, pairs // n_items, pairs % n_items, graph, stats)


def generated(args, interactions: int) -> pa.Table:
    return generate_interactions(args.users, args.items, interactions, communities=args.communities,
                                 in_community=args.in_community, seed=args.data_seed)


# ------------------------------------------------------------------------------- quality


def row_maps(mapping: gh.Buckets, data: Data) -> tuple[RowMap, RowMap]:
    """The mapping's user and item rows, cold items appended by ``cold_buckets``."""
    cold, cold2 = cold_buckets(mapping, "item", data.cold_ids)
    item2 = None if mapping.item2 is None else np.r_[mapping.item2, cold2]
    rows = mapping.tables[0]
    return RowMap(rows, mapping.user, mapping.user2), RowMap(rows, np.r_[mapping.item, cold], item2)


def budget_met(mapping: gh.Buckets) -> bool:
    """Every row of the graph variants' cluster (and own) range used: ``[0, R)``, or ``[0, R1)``
    of DoubleGraphHash, whose hash rows ``[R1, R)`` may leave a row empty by chance, as random
    hashing may anywhere."""
    if mapping.variant not in GRAPH_VARIANTS:
        return True
    return len(np.unique(np.r_[mapping.user, mapping.item])) == mapping.fallback["user"][0][1]


def bpr(args, data: Data, seed: int, user_map=None, item_map=None):
    return train_bpr(data.train_user, data.train_item, len(data.user_ids), data.n_items, user_map=user_map,
                     item_map=item_map, shared=user_map is not None, dim=args.dim, epochs=args.epochs,
                     batch_size=args.batch_size, lr=args.lr, reg=args.reg, seed=seed, threads=args.threads)


def scored(args, data: Data, factors) -> dict:
    return evaluate(factors, data.train_user, data.train_item, data.test_user, data.test_item, k=args.k)


def warm_up_graph() -> None:
    """igraph's import and first clustering outside the timed runs."""
    b = sp.csr_array(np.kron(np.eye(3), np.ones((2, 2))))
    gh.graphhash(b, list("abcdef"), list("pqrstu"), Budget(rows=3))


def warm_up(args) -> None:
    """Imports and first calls (igraph, torch) outside the timed runs."""
    warm_up_graph()
    train_bpr(np.arange(6) % 3, np.arange(6) % 2, 3, 2, epochs=1, batch_size=2, threads=args.threads)


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def quality_data(args) -> Data:
    t0 = time.perf_counter()
    table = generated(args, args.interactions)
    train, test = split(table, test_fraction=args.test_fraction, by="time", seed=args.data_seed)
    data = prepare(train, test)
    log(f"data in {time.perf_counter() - t0:.1f} s: {data.stats}")
    warm_up(args)
    return data


def quality(args) -> dict:
    data = quality_data(args)
    n_users, n_items = data.graph.shape
    report = {"data": data.stats, "rows": []}
    runs = report["rows"]

    popular = scored(args, data, popularity_factors(data.train_item, n_users, data.n_items))
    runs.append({"ratio": None, "variant": "most popular", "rows": None, "recall": spread([popular["recall"]]),
                 "ndcg": spread([popular["ndcg"]]), "load": os.getloadavg()[0]})
    log(f"most popular: recall {popular['recall']:.4f}")

    full = {"recall": [], "ndcg": [], "train_seconds": [], "loss": []}
    for seed in args.seeds:
        f, seconds, _, load = timed(lambda: bpr(args, data, seed))
        m = scored(args, data, f)
        for key, value in (("recall", m["recall"]), ("ndcg", m["ndcg"]), ("train_seconds", seconds),
                           ("loss", f.losses[-1])):
            full[key].append(value)
        log(f"full table seed {seed}: recall {m['recall']:.4f} ndcg {m['ndcg']:.4f} in {seconds:.1f} s")
    runs.append({"ratio": 1.0, "variant": "full table", "rows": n_users + data.n_items, "used": None,
                 "recall": spread(full["recall"]), "ndcg": spread(full["ndcg"]),
                 "train_seconds": statistics.median(full["train_seconds"]), "last_loss": full["loss"], "load": load})

    for ratio in args.ratios:
        budget = Budget(ratio=ratio)
        expected = budget.tables(n_users, n_items)
        for variant in args.variants:
            out = {"recall": [], "ndcg": [], "map_seconds": [], "train_seconds": [], "loss": [], "used": [],
                   "met": [], "clustering": []}
            for seed in args.seeds:
                mapping, map_seconds, _, _ = timed(lambda: VARIANTS[variant](data.graph, data.user_ids, data.item_ids,
                                                                            budget, seed=seed))
                if mapping.tables != expected:
                    raise SystemExit(f"{variant} at ratio {ratio}: tables {mapping.tables}, budget {expected}")
                out["used"].append(mapping.report["used"][0])
                out["met"].append(budget_met(mapping))
                if variant in GRAPH_VARIANTS:
                    out["clustering"].append({key: mapping.report[key] for key in
                                              ("resolution", "modularity", "clusters", "clusterings")})
                user_map, item_map = row_maps(mapping, data)
                f, seconds, _, load = timed(lambda: bpr(args, data, seed, user_map, item_map))
                m = scored(args, data, f)
                for key, value in (("recall", m["recall"]), ("ndcg", m["ndcg"]), ("map_seconds", map_seconds),
                                   ("train_seconds", seconds), ("loss", f.losses[-1])):
                    out[key].append(value)
                log(f"ratio {ratio} {variant} seed {seed}: R {expected[0]} used {out['used'][-1]} "
                    f"recall {m['recall']:.4f} ndcg {m['ndcg']:.4f} map {map_seconds:.2f} s train {seconds:.1f} s")
            runs.append({"ratio": ratio, "variant": variant, "rows": expected[0], "used": out["used"],
                         "budget_met": all(out["met"]), "recall": spread(out["recall"]), "ndcg": spread(out["ndcg"]),
                         "map_seconds": statistics.median(out["map_seconds"]),
                         "train_seconds": statistics.median(out["train_seconds"]), "last_loss": out["loss"],
                         "clustering": out["clustering"], "load": load})
    relative(runs)
    report["summary"] = summary(runs, args.ratios)
    return report


def sampled(args) -> dict:
    """GraphHash clustered through an edge sample in Spark (``SampledGraph``, the job's path
    above ``graphhash.max_edges``) against the driver's clustering of the whole graph, on the
    quality part's data and budgets."""
    from sigil.jobs.spark.sampled_clustering import SampledGraph
    from sigil.jobs.spark.session import spark_session
    from sigil.schemas.config import SparkConfig

    data = quality_data(args)
    spark = spark_session(SparkConfig(shuffle_partitions=4, progress=False))
    coo = data.graph.tocoo()
    edges = spark.createDataFrame(pa.table({"uid": coo.row.astype(np.int64), "iid": coo.col.astype(np.int64),
                                            "w": coo.data}))
    report = {"data": data.stats, "rows": []}
    for fraction in [1.0, *args.sample_fractions]:
        graph = data.graph if fraction == 1 else SampledGraph(edges, data.graph.shape, round(fraction * coo.nnz),
                                                              rounds=args.refine_rounds)
        graph.degrees() if fraction < 1 else None  # once, outside the timed mappings
        for ratio in args.ratios:
            budget = Budget(ratio=ratio)
            out = {"recall": [], "ndcg": [], "map_seconds": [], "modularity": [], "met": []}
            for seed in args.seeds:
                mapping, map_seconds, _, _ = timed(lambda: gh.graphhash(graph, data.user_ids, data.item_ids, budget,
                                                                        seed=seed))
                out["met"].append(mapping.tables == budget.tables(*data.graph.shape) and budget_met(mapping))
                m = scored(args, data, bpr(args, data, seed, *row_maps(mapping, data)))
                for key, value in (("recall", m["recall"]), ("ndcg", m["ndcg"]), ("map_seconds", map_seconds),
                                   ("modularity", mapping.report["modularity"])):
                    out[key].append(value)
                log(f"sampled {fraction:g} ratio {ratio} seed {seed}: modularity {out['modularity'][-1]:.4f} "
                    f"recall {m['recall']:.4f} map {map_seconds:.1f} s")
            report["rows"].append({"fraction": fraction, "ratio": ratio, "budget_met": all(out["met"]),
                                   "recall": spread(out["recall"]), "ndcg": spread(out["ndcg"]),
                                   "modularity": spread(out["modularity"]),
                                   "map_seconds": spread(out["map_seconds"]), "load": os.getloadavg()[0]})
    driver = {r["ratio"]: r["recall"]["median"] for r in report["rows"] if r["fraction"] == 1}
    for r in report["rows"]:
        r["recall_vs_driver"] = r["recall"]["median"] / driver[r["ratio"]] - 1
    return report


def sampled_table(report: dict, k: int) -> str:
    lines = [f"| pairs clustered on the driver | ratio | modularity | Recall@{k} | vs whole graph | NDCG@{k} "
             "| mapping s | budget met |", "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        what = "all (driver)" if r["fraction"] == 1 else f"{r['fraction']:.0%} sample, refined in Spark"
        lines.append(f"| {what} | {r['ratio']:g} | {r['modularity']['median']:.4f} | {r['recall']['median']:.4f} "
                     f"({r['recall']['min']:.4f}-{r['recall']['max']:.4f}) | {pct(r['recall_vs_driver'])} | "
                     f"{r['ndcg']['median']:.4f} | {r['map_seconds']['median']:.1f} | {r['budget_met']} |")
    return "\n".join(lines)


def relative(runs: list[dict]) -> None:
    """Each row's median recall against random, double and the full table: ``x / y - 1``."""
    full = next(r for r in runs if r["variant"] == "full table")["recall"]["median"]
    for r in runs:
        r["vs_full"] = r["recall"]["median"] / full - 1
        for base in ("random", "double"):
            other = next((o for o in runs if o["variant"] == base and o["ratio"] == r["ratio"]), None)
            r[f"vs_{base}"] = None if other is None else r["recall"]["median"] / other["recall"]["median"] - 1


def summary(runs: list[dict], ratios: list[float]) -> dict:
    """The issue's targets: GraphHash above random and double at every ratio (medians; and every
    seed's above every seed's), the mean gain at >= 75 % reduction against the paper's, budgets."""
    gh_rows = {r["ratio"]: r for r in runs if r["variant"] == "graphhash"}
    out = {"beats_hashing_median": {}, "beats_hashing_every_seed": {}}
    gains = []
    for ratio, r in gh_rows.items():
        for base in ("random", "double"):
            other = next((o for o in runs if o["variant"] == base and o["ratio"] == ratio), None)
            if other is None:
                continue
            key = f"{ratio:g}x vs {base}"
            out["beats_hashing_median"][key] = r["recall"]["median"] > other["recall"]["median"]
            out["beats_hashing_every_seed"][key] = r["recall"]["min"] > other["recall"]["max"]
            if ratio >= 4:
                gains.append(r[f"vs_{base}"])
    out["mean_gain_at_75pct_reduction"] = statistics.mean(gains) if gains else None
    out["paper_gain"] = PAPER_GAIN
    out["budgets_met"] = all(r.get("budget_met", True) for r in runs)
    return out


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def pct(v) -> str:
    return "-" if v is None else f"{100 * v:+.1f}%"


def quality_table(report: dict, k: int) -> str:
    out = [f"| ratio | rows R | variant | rows used | budget met | Recall@{k} | min-max | NDCG@{k} | min-max "
           "| vs random | vs double | vs full | clusters found (tried) | mapping s | train s | load |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        rec, nd = r["recall"], r["ndcg"]
        used = "-" if not r.get("used") else "/".join(f"{u:,}" for u in sorted(set(r["used"])))
        found = "-" if not r.get("clustering") else ", ".join(
            f"{c['clusters'][0]:,} ({c['clusterings']})" for c in r["clustering"])
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:g}x"
        met = "-" if "budget_met" not in r else ("yes" if r["budget_met"] else "NO")
        out.append(f"| {ratio} | {fmt(r['rows'], ',')} | {r['variant']} | {used} | {met} | {rec['median']:.4f} "
                   f"| {rec['min']:.4f}-{rec['max']:.4f} | {nd['median']:.4f} | {nd['min']:.4f}-{nd['max']:.4f} "
                   f"| {pct(r.get('vs_random'))} | {pct(r.get('vs_double'))} | {pct(r.get('vs_full'))} | {found} "
                   f"| {fmt(r.get('map_seconds'), '.2f')} | {fmt(r.get('train_seconds'), '.1f')} | {r['load']:.2f} |")
    return "\n".join(out)


# ------------------------------------------------------------------------------- epochs


def epochs(args) -> dict:
    """Validation Recall@K of the full table by epochs, on a split of the train split."""
    table = generated(args, args.interactions)
    train, _ = split(table, test_fraction=args.test_fraction, by="time", seed=args.data_seed)
    fit, validation = split(train, test_fraction=args.test_fraction / (1 - args.test_fraction), by="time",
                            seed=args.data_seed)
    data = prepare(fit, validation)
    warm_up(args)
    rows = []
    for count in args.epoch_grid:
        f, seconds, _, load = timed(lambda: train_bpr(data.train_user, data.train_item, len(data.user_ids),
                                                      data.n_items, dim=args.dim, epochs=count,
                                                      batch_size=args.batch_size, lr=args.lr, reg=args.reg,
                                                      seed=args.seeds[0], threads=args.threads))
        m = scored(args, data, f)
        rows.append({"epochs": count, "recall": m["recall"], "ndcg": m["ndcg"], "last_loss": f.losses[-1],
                     "train_seconds": seconds, "load": load})
        log(f"epochs {count}: validation recall {m['recall']:.4f} ndcg {m['ndcg']:.4f} loss {f.losses[-1]:.4f} "
            f"in {seconds:.1f} s")
    return {"data": data.stats, "rows": rows}


def epochs_table(report: dict, k: int) -> str:
    out = [f"| epochs | validation Recall@{k} | NDCG@{k} | last-epoch loss | train s | load |",
           "|---|---|---|---|---|---|"]
    out += [f"| {r['epochs']} | {r['recall']:.4f} | {r['ndcg']:.4f} | {r['last_loss']:.4f} | {r['train_seconds']:.1f} "
            f"| {r['load']:.2f} |" for r in report["rows"]]
    return "\n".join(out)


# ------------------------------------------------------------------------------- scale


def scale_child(args) -> dict:
    """The stages of the scale part, in this process (the parent measures it)."""
    warm_up_graph()
    stages = [{"stage": "start (imports, warm-up)", "seconds": 0.0, "peak_gib": peak_gib()}]

    def stage(name, fn):
        t0 = time.perf_counter()
        out = fn()
        stages.append({"stage": name, "seconds": time.perf_counter() - t0, "peak_gib": peak_gib()})
        log(f"scale: {name} {stages[-1]['seconds']:.2f} s, peak {stages[-1]['peak_gib']:.2f} GiB")
        return out

    table = stage("generate", lambda: generated(args, args.scale_interactions))
    train, _ = stage("split", lambda t=table: split(t, test_fraction=args.test_fraction, by="time", seed=args.data_seed))
    del table

    def graph():
        users, u = dense_ids(train.column("user"))
        items, i = dense_ids(train.column("item"))
        return users, items, biadjacency(u, i, shape=(len(users), len(items)))
    users, items, b = stage("dense ids + biadjacency", graph)

    calls, cluster = [], gh.cluster

    def timed_cluster(*a, **kw):  # each clustering of the resolution search
        t0 = time.perf_counter()
        out = cluster(*a, **kw)
        calls.append({"resolution": a[1] if len(a) > 1 else kw.get("resolution", 1.0),
                      "seconds": time.perf_counter() - t0, "clusters": len(np.unique(np.r_[out[0], out[1]]))})
        return out

    budget = Budget(ratio=args.scale_ratio)
    gh.cluster = timed_cluster
    try:
        mapping = stage("graphhash", lambda: gh.graphhash(b, users, items, budget, seed=args.seeds[0]))
    finally:
        gh.cluster = cluster
    rows = budget.tables(*b.shape)[0]
    clustering = sum(c["seconds"] for c in calls)
    return {"interactions": args.scale_interactions, "train_rows": train.num_rows, "users": b.shape[0],
            "items": b.shape[1], "train_pairs": int(b.nnz), "ratio": args.scale_ratio, "rows": rows,
            "used": mapping.report["used"][0], "budget_met": budget_met(mapping),
            "report": {k: mapping.report[k] for k in ("resolution", "modularity", "clusters", "clusterings")},
            "stages": stages, "clusterings": calls, "clustering_seconds": clustering,
            "landing_seconds": stages[-1]["seconds"] - clustering, "peak_gib": peak_gib()}


def scale(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scale.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--parts", "scale-child", "--json", str(out),
               *(f"--{k}={v}" for k, v in (("users", args.users), ("items", args.items),
                                            ("communities", args.communities), ("in-community", args.in_community),
                                            ("data-seed", args.data_seed), ("test-fraction", args.test_fraction),
                                            ("scale-interactions", args.scale_interactions),
                                            ("scale-ratio", args.scale_ratio), ("seeds", args.seeds[0])))]
        process = measured(cmd, Path(tmp) / "scale.log")
        report = json.loads(out.read_text())["scale"]
    report["process_seconds"] = process["process_seconds"]
    report["process_tree_peak_gib"] = process["peak_rss_bytes"] / 2**30
    report["load"] = os.getloadavg()[0]
    return report


def scale_table(report: dict) -> str:
    out = ["| stage | seconds | peak resident memory after (GiB) |", "|---|---|---|"]
    for s in report["stages"]:
        out.append(f"| {s['stage']} | {s['seconds']:.2f} | {s['peak_gib']:.2f} |")
        if s["stage"] == "graphhash":
            out.append(f"| - of which {len(report['clusterings'])} clusterings (Leiden) | "
                       f"{report['clustering_seconds']:.2f} | |")
            out.append(f"| - of which landing on R and the rest | {report['landing_seconds']:.2f} | |")
    out.append(f"| whole process (start-up included) | {report['process_seconds']:.2f} | "
               f"{report['process_tree_peak_gib']:.2f} (sampled) |")
    return "\n".join(out)


# ------------------------------------------------------------------------------- main


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def words(text: str) -> list[str]:
    return [v for v in text.split(",") if v]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", type=words, default=["quality", "scale"], help="quality, sampled, scale, epochs")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=5_000)
    ap.add_argument("--interactions", type=int, default=500_000, help="of the quality and epochs parts")
    ap.add_argument("--communities", type=int, default=50)
    ap.add_argument("--in-community", type=float, default=0.8, help="generate_interactions' in_community")
    ap.add_argument("--data-seed", type=int, default=0, help="of the generator and the split")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--ratios", type=floats, default=[40, 7, 4, 2.7], help="compression ratios (U + I) / R")
    ap.add_argument("--variants", type=words, default=list(VARIANTS), help="of graphhash.VARIANTS")
    ap.add_argument("--seeds", type=ints, default=[0, 1, 2], help="one repetition per seed (mapping and training)")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--reg", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads while training")
    ap.add_argument("--epoch-grid", type=ints, default=[5, 10, 20, 30, 40, 60], help="of the epochs part")
    ap.add_argument("--scale-interactions", type=int, default=10_000_000)
    ap.add_argument("--scale-ratio", type=float, default=10)
    ap.add_argument("--sample-fractions", type=floats, default=[0.5, 0.25],
                    help="of the sampled part: the train pairs clustered on the driver")
    ap.add_argument("--refine-rounds", type=int, default=3, help="of the sampled part: half-rounds of local moves")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    unknown = set(args.parts) - {"quality", "sampled", "scale", "epochs", "scale-child"}
    if unknown or set(args.variants) - set(VARIANTS) or any(r < 1 for r in args.ratios):
        ap.error(f"--parts of quality, sampled, scale, epochs; --variants of {list(VARIANTS)}; --ratios >= 1")
    report = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "cores": os.cpu_count()}
    if args.parts == ["scale-child"]:
        report["scale"] = scale_child(args)
        args.json.write_text(json.dumps(report, indent=2))
        return report
    bpr_settings = (f"BPR: dim {args.dim}, batch {args.batch_size}, Adam lr {args.lr:g}, reg {args.reg:g}, "
                    f"{args.threads} torch thread(s)")
    settings = f"{bpr_settings}, {args.epochs} epochs; seeds {args.seeds}"
    data = (f"{args.users:,} users x {args.items:,} items, {args.communities} communities, in_community "
            f"{args.in_community:g}, data seed {args.data_seed}, time split, test fraction {args.test_fraction:g}")
    if "epochs" in args.parts:
        report["epochs"] = epochs(args)
        s = report["epochs"]["data"]
        print(f"Full table by epochs (validation = each user's latest train rows; {args.interactions:,} "
              f"interactions, {data}; {s['train_rows']:,} rows fitted, {s['test_pairs']:,} validation pairs)\n"
              f"{bpr_settings}; seed {args.seeds[0]}\n\n{epochs_table(report['epochs'], args.k)}\n")
    if "quality" in args.parts:
        report["quality"] = quality(args)
        s, q = report["quality"]["data"], report["quality"]["summary"]
        print(f"GraphHash quality: {args.interactions:,} interactions, {data}\n"
              f"train: {s['train_rows']:,} rows, {s['users']:,} users, {s['items']:,} items, {s['train_pairs']:,} "
              f"pairs; test: {s['test_rows']:,} rows, of which {s['test_rows_repeating_a_train_pair']:,} repeat a "
              f"train pair (dropped) -> {s['test_pairs']:,} new pairs of {s['test_users']:,} users, "
              f"{s['cold_items']} cold items ({s['cold_test_pairs']} pairs)\n{settings}; one shared table of "
              f"R = ceil((U + I) / ratio) rows\n\n{quality_table(report['quality'], args.k)}\n")
        gain = q["mean_gain_at_75pct_reduction"]
        print(f"GraphHash above random and double (median Recall@{args.k}) at every ratio: "
              f"{all(q['beats_hashing_median'].values())} {q['beats_hashing_median']}\n"
              f"... and every seed above every seed: {all(q['beats_hashing_every_seed'].values())}\n"
              f"mean gain over random and double at ratios >= 4 (>= 75 % reduction): {pct(gain)} "
              f"(paper: {pct(PAPER_GAIN)}); budgets met exactly: {q['budgets_met']}\n")
    if "sampled" in args.parts:
        report["sampled"] = sampled(args)
        print(f"GraphHash through an edge sample ({args.refine_rounds} half-rounds of local moves in Spark) against "
              f"the whole graph on the driver: {args.interactions:,} interactions, {data}\n{settings}\n\n"
              f"{sampled_table(report['sampled'], args.k)}\n")
    if "scale" in args.parts:
        report["scale"] = scale(args)
        s = report["scale"]
        r = s["report"]
        print(f"GraphHash scale: {s['interactions']:,} interactions over {args.users:,} x {args.items:,} "
              f"({s['train_rows']:,} train rows, {s['train_pairs']:,} pairs); ratio {s['ratio']:g}: R = {s['rows']:,}"
              f" rows, used {s['used']:,} (met: {s['budget_met']}); clustering chosen: gamma {r['resolution']:.3g}, "
              f"{r['clusters'][0]:,} clusters, modularity {r['modularity']:.4f}, {r['clusterings']} clusterings "
              f"tried; load {s['load']:.2f}\n\n{scale_table(s)}\n")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
