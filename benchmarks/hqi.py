"""HQI batch hybrid queries (transforms/hqi.py) against per-query brute force, a grouped numpy
batch and faiss IVF with filters, measured in one run on one generated data set.

Data and workloads come from transforms/hqi_workload.py: ``--rows`` entities of ``--dim``
dimensions (``generate_data``, seed ``--data-seed``), a training workload of ``--training``
queries (seed ``--train-seed``) that only ``hqi.build`` sees, and a measured batch of
``--queries`` queries (seed ``--query-seed``, every k = ``--k``). Every system answers the
same parsed queries (squared L2, the rows satisfying the query's predicate).

Systems:

* (a) per-query baseline: ``hqi.exact_search`` (one query at a time: the predicate's mask
  over all rows, float32 distances to the satisfying rows, exact top k), timed on the
  first ``--baseline-queries`` queries of the batch, reported as queries/s;
* (e) grouped batch: the queries grouped by identical predicate, one mask and one
  matrix product (numpy/BLAS) per group, then the exact top k (candidates within the
  float32 error bound of the k-th, recomputed in float64). Its answers are checked against
  (a) on (a)'s subset (tie-aware recall must be 1.0) and are the truth for the recall of
  every other system on the whole batch;
* faiss ``IndexIVFFlat`` (``--nlist`` lists, by default as many as sigil's layout has
  clusters, trained on all rows) with the filter as an ``IDSelectorBitmap`` passed in
  ``faiss.SearchParametersIVF(sel=..., nprobe=...)``: one bitmap per distinct predicate
  (the queries of a predicate share it and one search call);
* faiss IVF with post-filtering: the whole batch searched for k' = k x
  ``--postfilter-factor``, then each query's results filtered by its predicate and cut to
  k; queries left with fewer than min(k, satisfying rows) results are counted as short;
* sigil: ``hqi.build`` on the training workload (build seconds, timed once), then
  ``hqi.search`` of the whole batch, exact (``nprobe=None``) and for each ``--nprobe``.

Per measurement: queries/s (median of ``--repeat`` runs after one warm-up on a few
queries, with the min-max), the ratio to (a) and to (e), recall@k tie-aware against (e)'s
answers (distances of faiss's rows recomputed exactly first), rows scanned per query
(sigil: its ``SearchStats.rows_scanned``; (a), (e): all rows; faiss: distances computed
per query from ``faiss.cvar.indexIVF_stats.ndis``), short results (fewer than
min(k, satisfying rows)) and invalid results (a row not satisfying the predicate, or
repeated), and the 1-minute load average right after the measurement: on a shared 2-core
machine a load well above the thread count means other work ran beside.

``--jobs ROWS,...`` then runs the jobs on the embedded Spark for each data size:
``hqi-generate`` (same generator, ``--dim``, ``--training`` and ``--queries``, no truth),
``hqi-index``, and ``hqi-query`` with each engine (``memory``: every worker holds the
layout; ``spark``: leaves cogrouped with their queries) at ``--job-nprobe``; it reports the
manifests' build and query seconds, queries/s, each job's process seconds and peak memory,
and how the Spark engine's query seconds grow with the rows.

``--threads N`` sets OMP/OpenBLAS/MKL/numba thread counts before numpy is imported (and
``faiss.omp_set_num_threads``) and answers sigil's batches with ``hqi.search(threads=N)``;
``--threads all`` leaves the libraries' counts as they are and uses every core.

    .venv/bin/python benchmarks/hqi.py --threads 1 --json hqi.json          # defaults: 200,000 x 128
    .venv/bin/python benchmarks/hqi.py --parts jobs --jobs 100000,300000,1000000 --json hqi_jobs.json
    .venv/bin/python benchmarks/hqi.py --rows 20000 --dim 32 --queries 1000 --training 1000 \\
        --baseline-queries 100 --repeat 1                                      # quick check
"""

from __future__ import annotations

import os
import sys


def _threads_arg(argv: list[str]) -> str:
    """``--threads`` from the command line, read before numpy is imported."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "all"


THREADS = _threads_arg(sys.argv[1:])
if THREADS != "all":
    if not THREADS.isdigit() or int(THREADS) < 1:
        sys.exit(f"--threads must be a positive integer or 'all', got {THREADS!r}")
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[_var] = THREADS

SEARCH_THREADS = (os.cpu_count() or 1) if THREADS == "all" else int(THREADS)  # hqi.search(threads=)

import argparse  # noqa: E402 - after the thread variables
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from er_benchmark import measured  # noqa: E402 - benchmarks/ is the script's directory
from timing import timed  # noqa: E402
from sigil.transforms import hqi  # noqa: E402
from sigil.transforms.hqi_workload import generate_data, generate_workload  # noqa: E402
from sigil.transforms.predicates import Columns  # noqa: E402

try:
    import faiss  # noqa: E402
except ImportError:  # reported, not installed by this script
    faiss = None

_U = 2.0**-24
_BLOCK = 1 << 24  # entries of one distance matrix of (e)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def subset(queries: hqi.Queries, n: int) -> hqi.Queries:
    return hqi.Queries(queries.query_id[:n], queries.k[:n], queries.vectors[:n], queries.predicates[:n])


def groups(predicates: list) -> list[tuple[object, np.ndarray]]:
    """The distinct predicates, each with the positions of its queries."""
    index: dict = {}
    for i, p in enumerate(predicates):
        index.setdefault(p, []).append(i)
    return [(p, np.asarray(qs, dtype=np.int64)) for p, qs in index.items()]


def empty_stats(m: int, scanned: int = 0) -> hqi.SearchStats:
    return hqi.SearchStats(np.full(m, scanned, np.int64), np.zeros(m, np.int64), 0, 0)


def make_result(query_id, qpos, rows, ids, x, q, k, stats) -> hqi.SearchResult:
    """Candidates (query position, row) as a result: exact distances (float64, rounded to
    float32), each query's k best in (distance, id) order."""
    qpos = np.asarray(qpos, np.int64)
    rows = np.asarray(rows, np.int64)
    diff = x[rows].astype(np.float64) - q[qpos].astype(np.float64)
    dist = np.einsum("ij,ij->i", diff, diff).astype(np.float32)
    rid = ids[rows]
    order = np.lexsort((rid, dist, qpos))
    qpos, rid, dist = qpos[order], rid[order], dist[order]
    rank = np.arange(len(qpos)) - np.searchsorted(qpos, qpos, "left")
    keep = rank < k[qpos]
    return hqi.SearchResult(query_id[qpos[keep]], rank[keep].astype(np.int32), rid[keep], dist[keep], stats)


def grouped_batch(ids, x, norms, columns: Columns, queries: hqi.Queries) -> hqi.SearchResult:
    """(e): one mask and one matrix product per distinct predicate, exact top k."""
    q = queries.vectors
    qn = np.einsum("ij,ij->i", q, q).astype(np.float64)
    slack = (2 * x.shape[1] + 16) * _U
    qpos_all, rows_all = [], []
    for predicate, qs in groups(queries.predicates):
        qs = qs[queries.k[qs] > 0]
        if not len(qs) or predicate.is_false:
            continue
        rows = np.arange(len(x)) if predicate.is_true else np.flatnonzero(predicate.mask(columns))
        if not len(rows):
            continue
        xs, xn = x[rows], norms[rows]
        step = max(1, _BLOCK // len(rows))
        for s in range(0, len(qs), step):
            b = qs[s:s + step]
            d = q[b] @ xs.T
            d *= -2
            d += xn  # ||x||^2 - 2 x.q
            k = np.minimum(queries.k[b], len(rows))
            kth = np.partition(d, sorted(set((k - 1).tolist())), axis=1)[np.arange(len(b)), k - 1]
            err = slack * (float(xn.max()) + qn[b])
            limit = np.nextafter((kth + 2 * err).astype(np.float32), np.float32(np.inf))
            g, r = np.nonzero(d <= limit[:, None])
            qpos_all.append(b[g])
            rows_all.append(rows[r])
    qpos = np.concatenate(qpos_all) if qpos_all else np.zeros(0, np.int64)
    rows = np.concatenate(rows_all) if rows_all else np.zeros(0, np.int64)
    return make_result(queries.query_id, qpos, rows, ids, x, q, queries.k, empty_stats(len(q), len(x)))


def satisfying_counts(columns: Columns, queries: hqi.Queries) -> np.ndarray:
    out = np.zeros(len(queries.k), np.int64)
    for p, qs in groups(queries.predicates):
        out[qs] = columns.num_rows if p.is_true else int(np.count_nonzero(p.mask(columns)))
    return out


def check(result: hqi.SearchResult, queries: hqi.Queries, columns: Columns, positions: dict,
          satisfying: np.ndarray) -> tuple[int, int]:
    """(short, invalid): queries with fewer than min(k, satisfying) results; queries with a
    result row that does not satisfy the predicate or appears twice."""
    m = len(queries.k)
    pos_of = {int(qid): i for i, qid in enumerate(queries.query_id)}
    qpos = np.array([pos_of[int(v)] for v in result.query_id], np.int64)
    counts = np.bincount(qpos, minlength=m)
    short = int(np.count_nonzero(counts < np.minimum(queries.k, satisfying)))
    bad = np.zeros(m, bool)
    rows = np.array([positions[int(i)] for i in result.id], np.int64)
    for p, qs in groups(queries.predicates):
        sel = np.isin(qpos, qs)
        if not p.is_true and sel.any():
            ok = p.mask(columns, rows[sel])
            bad[qpos[sel][~ok]] = True
    pairs = qpos * (len(positions) + 1) + rows
    _, first, cnt = np.unique(pairs, return_index=True, return_counts=True)
    bad[qpos[first[cnt > 1]]] = True
    return short, int(np.count_nonzero(bad))


# ------------------------------------------------------------------------------- faiss


def faiss_index(x: np.ndarray, nlist: int, seed: int):
    quantizer = faiss.IndexFlatL2(x.shape[1])
    index = faiss.IndexIVFFlat(quantizer, x.shape[1], nlist, faiss.METRIC_L2)
    index.cp.seed = seed
    index.train(x)
    index.add_with_ids(x, np.arange(len(x), dtype=np.int64))  # faiss ids = row positions
    return index


def faiss_bitmap(index, columns: Columns, queries: hqi.Queries, nprobe: int, k: int):
    """Per distinct predicate: its bitmap as an IDSelectorBitmap, one search of its queries."""
    n = columns.num_rows
    labels = np.full((len(queries.k), k), -1, np.int64)
    for p, qs in groups(queries.predicates):
        mask = np.ones(n, bool) if p.is_true else p.mask(columns)
        bits = np.packbits(mask, bitorder="little")
        sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)
        _, labels[qs] = index.search(queries.vectors[qs], k, params=params)
    return labels


def faiss_postfilter(index, columns: Columns, queries: hqi.Queries, nprobe: int, k: int, factor: int):
    """The whole batch for k' = k * factor, then each query's rows filtered by its predicate."""
    params = faiss.SearchParametersIVF(nprobe=nprobe)
    _, found = index.search(queries.vectors, k * factor, params=params)
    labels = np.full((len(queries.k), k), -1, np.int64)
    for p, qs in groups(queries.predicates):
        f = found[qs]
        ok = f >= 0
        if not p.is_true:
            ok &= p.mask(columns)[np.maximum(f, 0)]
        for j, i in enumerate(qs):
            kept = f[j][ok[j]][:k]
            labels[i, :len(kept)] = kept
    return labels


def faiss_result(labels, ids, x, queries: hqi.Queries) -> hqi.SearchResult:
    g, c = np.nonzero(labels >= 0)
    return make_result(queries.query_id, g, labels[g, c], ids, x, queries.vectors, queries.k,
                       empty_stats(len(queries.k)))


def faiss_ndis_reset():
    try:
        faiss.cvar.indexIVF_stats.reset()
    except AttributeError:
        pass


def faiss_ndis() -> int | None:
    try:
        return int(faiss.cvar.indexIVF_stats.ndis)
    except AttributeError:
        return None


# ------------------------------------------------------------------------------- report


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def row(system: str, setting: str, m: int, seconds: float, spread, load: float, **extra) -> dict:
    qps = m / seconds if seconds > 0 else float("inf")
    return {"system": system, "setting": setting, "queries": m, "seconds": seconds, "spread": list(spread),
            "qps": qps, "qps_spread": [m / spread[1], m / spread[0]], "load": load, **extra}


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[dict], a_qps: float, e_qps: float) -> str:
    out = ["| system | setting | queries/s (median) | min-max | / (a) | / (e) | recall@k | rows scanned/q | short "
           "| invalid | load |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["qps_spread"]
        out.append(f"| {r['system']} | {r['setting']} | {r['qps']:,.0f} | {lo:,.0f}-{hi:,.0f} "
                   f"| {r['qps'] / a_qps:.1f}x | {r['qps'] / e_qps:.2f}x | {fmt(r.get('recall'), '.4f')} "
                   f"| {fmt(r.get('rows_scanned'), ',.0f')} | {fmt(r.get('short'), 'd')} "
                   f"| {fmt(r.get('invalid'), 'd')} | {r['load']:.2f} |")
    return "\n".join(out)


def jobs(args, work: Path) -> list[dict]:
    """The jobs on the embedded Spark at each size of ``--jobs`` (see the module docstring)."""
    out = []
    for n in args.jobs:
        base = work / f"rows_{n}"
        base.mkdir(parents=True, exist_ok=True)
        root = base / "out"
        conf = {"output": str(root), "spark": {"shuffle_partitions": 8, "driver_memory": "8g"},
                "hqi_generate": {"rows": n, "dim": args.dim, "training": args.training, "queries": args.queries,
                                 "k": [args.k], "truth": False, "seed": args.data_seed},
                "hqi": {"data": {"path": str(root / "hqi_generate" / "data")},
                        "training": {"path": str(root / "hqi_generate" / "training")},
                        "queries": {"path": str(root / "hqi_generate" / "queries")},
                        "min_leaf_rows": args.min_leaf_rows, "nprobe": args.job_nprobe}}
        path = base / "hqi.yaml"
        path.write_text(yaml.safe_dump(conf))

        def run(job, *sets):
            cmd = [sys.executable, "-m", "sigil", job, "--conf", str(path), *(x for v in sets for x in ("--set", v))]
            return measured(cmd, base / f"{job}.log")  # raises with the log's tail when the job fails

        runs = {job: run(job) for job in ("hqi-generate", "hqi-index")}
        index_ = json.loads((root / "hqi_index" / "manifest.json").read_text())
        row = {"rows": n, "build_seconds": index_["metrics"].get("build_seconds"),
               "leaves": index_["metrics"].get("leaves"), "clusters": index_["metrics"].get("clusters"),
               "process_seconds": {j: r["process_seconds"] for j, r in runs.items()},
               "peak_gib": {j: r["peak_rss_bytes"] / 2**30 for j, r in runs.items()}, "engines": {}}
        for engine in ("memory", "spark"):
            r = run("hqi-query", f"hqi.engine={engine}")
            m = json.loads((root / "hqi_query" / "manifest.json").read_text())["metrics"]
            row["engines"][engine] = {"query_seconds": m["query_seconds"], "queries_per_second": m["queries_per_second"],
                                      "rows_scanned_mean": m["rows_scanned"]["mean"],
                                      "process_seconds": r["process_seconds"], "peak_gib": r["peak_rss_bytes"] / 2**30,
                                      "load": os.getloadavg()[0]}
        log(f"jobs {row}")
        out.append(row)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="all", help="threads of BLAS/OpenMP/numba/faiss: N or 'all' "
                    "(read before numpy is imported)")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--training", type=int, default=10_000, help="queries of the training workload")
    ap.add_argument("--queries", type=int, default=10_000, help="queries of the measured batch")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--intrinsic-dim", type=int, default=None, help="generate_data's latent dimension")
    ap.add_argument("--data-seed", type=int, default=1)
    ap.add_argument("--train-seed", type=int, default=2)
    ap.add_argument("--query-seed", type=int, default=3)
    ap.add_argument("--baseline-queries", type=int, default=500, help="queries of the batch timed for (a)")
    ap.add_argument("--nprobe", type=ints, default=[4, 8, 16, 32, 64])
    ap.add_argument("--min-leaf-rows", type=int, default=4096, help="hqi.build's minimum qd-tree leaf")
    ap.add_argument("--rows-per-cluster", type=int, default=None, help="hqi.build's (default: its own)")
    ap.add_argument("--nlist", type=int, default=None, help="faiss IVF lists (default: sigil's cluster count)")
    ap.add_argument("--postfilter-factor", type=int, default=10, help="faiss post-filter searches k * this")
    ap.add_argument("--skip-faiss", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--parts", default="search", help="search, jobs or both (comma-separated)")
    ap.add_argument("--jobs", type=ints, default=[100_000, 300_000, 1_000_000], help="data rows of the jobs part")
    ap.add_argument("--job-nprobe", type=int, default=48, help="hqi.nprobe of the jobs part")
    ap.add_argument("--work", type=Path, help="directory of the jobs part's runs (default: a temporary one)")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    if "jobs" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            work = args.work or Path(tmp)
            report = {"args": {key: str(v) if isinstance(v, Path) else v for key, v in vars(args).items()},
                      "jobs": jobs(args, work)}
        first, last = report["jobs"][0], report["jobs"][-1]
        report["spark_query_growth"] = {"rows": last["rows"] / first["rows"],
                                        "query_seconds": last["engines"]["spark"]["query_seconds"]
                                        / first["engines"]["spark"]["query_seconds"]}
        print(json.dumps(report, indent=2))
        if args.json and "search" not in parts:
            args.json.write_text(json.dumps(report, indent=2))
        if "search" not in parts:
            return report
    k = args.k

    log(f"threads {THREADS}; generating {args.rows:,} x {args.dim} rows, {args.training:,} training and "
        f"{args.queries:,} measured queries")
    data = generate_data(args.rows, args.dim, intrinsic_dim=args.intrinsic_dim, seed=args.data_seed)
    train = generate_workload(data, args.training, seed=args.train_seed, k=k).column("predicate").to_pylist()
    ids, x, attributes = hqi.data_arrays(data)
    columns = Columns.from_table(attributes)
    queries, quarantined = hqi.parse_workload(generate_workload(data, args.queries, seed=args.query_seed, k=k),
                                              columns.types, args.dim)
    if quarantined.num_rows:
        raise SystemExit(f"{quarantined.num_rows} generated queries were quarantined: {quarantined.to_pylist()[:3]}")
    m = len(queries.k)
    norms = np.einsum("ij,ij->i", x, x)
    positions = {int(v): i for i, v in enumerate(ids)}
    satisfying = satisfying_counts(columns, queries)
    distinct = len(groups(queries.predicates))
    report = {"args": {key: str(v) if isinstance(v, Path) else v for key, v in vars(args).items()},
              "threads": THREADS, "cores": os.cpu_count(), "queries": m, "distinct_predicates": distinct,
              "selectivity": {"mean": float(satisfying.mean() / args.rows),
                              "median": float(np.median(satisfying) / args.rows),
                              "min": float(satisfying.min() / args.rows), "max": float(satisfying.max() / args.rows)},
              "faiss": None if faiss is None else faiss.__version__, "rows": []}
    log(f"{m:,} queries, {distinct} distinct predicates, mean selectivity {report['selectivity']['mean']:.4f}")
    rows = report["rows"]

    # (a) per-query baseline on a subset
    sub = subset(queries, min(args.baseline_queries, m))
    hqi.exact_search(ids, x, attributes, subset(sub, 5))  # warm-up (numba)
    truth_sub, s, spread, load = timed(lambda: hqi.exact_search(ids, x, attributes, sub), args.repeat)
    short, invalid = check(truth_sub, sub, columns, positions, satisfying[:len(sub.k)])
    rows.append(row("(a) per-query", f"exact_search, first {len(sub.k)} queries", len(sub.k), s, spread, load,
                    recall=1.0, rows_scanned=float(args.rows), short=short, invalid=invalid))
    log(f"(a) {rows[-1]['qps']:,.1f} q/s")

    # (e) grouped batch; checked against (a) on the subset, then the truth of the rest
    grouped_batch(ids, x, norms, columns, subset(queries, 20))
    truth, s, spread, load = timed(lambda: grouped_batch(ids, x, norms, columns, queries), args.repeat)
    in_sub = truth.query_id <= sub.query_id.max() if len(sub.k) else np.zeros(len(truth.id), bool)
    e_sub = hqi.SearchResult(truth.query_id[in_sub], truth.rank[in_sub], truth.id[in_sub], truth.distance[in_sub],
                             truth.stats)
    e_recall = hqi.recall_at_k(e_sub, truth_sub, k)
    e_same = bool(len(e_sub.id) == len(truth_sub.id) and (e_sub.id == truth_sub.id).all())
    short, invalid = check(truth, queries, columns, positions, satisfying)
    rows.append(row("(e) grouped numpy", "one mask + one product per predicate", m, s, spread, load,
                    recall=e_recall, rows_scanned=float(args.rows), short=short, invalid=invalid,
                    same_ids_as_a=e_same))
    report["e_check"] = {"recall_vs_a": e_recall, "identical_ids_vs_a": e_same, "subset": len(sub.k)}
    log(f"(e) {rows[-1]['qps']:,.1f} q/s; vs (a) on {len(sub.k)}: recall {e_recall}, identical ids {e_same}")
    if e_recall != 1.0:
        log("WARNING: (e) disagrees with exact_search: its recall against (a) is not 1.0")

    # sigil
    t0 = time.perf_counter()
    layout = hqi.build(ids, x, attributes, train, min_leaf_rows=args.min_leaf_rows,
                       rows_per_cluster=args.rows_per_cluster, seed=0)
    report["sigil_build_seconds"] = time.perf_counter() - t0
    report["sigil_layout"] = {"leaves": int(len(layout.leaf_offsets) - 1), "clusters": int(len(layout.centroids))}
    log(f"sigil build {report['sigil_build_seconds']:.2f} s: {report['sigil_layout']}")
    sigil_rows = []
    for nprobe in [None, *args.nprobe]:
        hqi.search(layout, subset(queries, 20), nprobe=nprobe, threads=SEARCH_THREADS)
        res, s, spread, load = timed(lambda: hqi.search(layout, queries, nprobe=nprobe, threads=SEARCH_THREADS),
                                     args.repeat)
        short, invalid = check(res, queries, columns, positions, satisfying)
        r = row("sigil", "exact" if nprobe is None else f"nprobe={nprobe}", m, s, spread, load,
                recall=hqi.recall_at_k(res, truth, k), rows_scanned=float(res.stats.rows_scanned.mean()),
                distances=float(res.stats.distance_computations.mean()), short=short, invalid=invalid)
        if nprobe is None:
            r["identical_ids_vs_e"] = bool(len(res.id) == len(truth.id) and (res.id == truth.id).all())
        sigil_rows.append(r)
        log(f"sigil {r['setting']}: {r['qps']:,.1f} q/s recall {r['recall']:.4f} short {short} invalid {invalid}")

    # faiss
    faiss_rows = []
    if faiss is None:
        report["faiss_note"] = "faiss is not installed in this interpreter (pip package faiss-cpu): faiss rows skipped"
        log(report["faiss_note"])
    elif not args.skip_faiss:
        if THREADS != "all":
            faiss.omp_set_num_threads(int(THREADS))
        nlist = args.nlist or int(len(layout.centroids))
        t0 = time.perf_counter()
        index = faiss_index(x, nlist, seed=0)
        report["faiss_build_seconds"] = time.perf_counter() - t0
        report["faiss_nlist"] = nlist
        log(f"faiss IVFFlat nlist={nlist} built in {report['faiss_build_seconds']:.2f} s")
        for nprobe in args.nprobe:
            for name, fn in (("bitmap", lambda: faiss_bitmap(index, columns, queries, nprobe, k)),
                             ("postfilter", lambda: faiss_postfilter(index, columns, queries, nprobe, k,
                                                                     args.postfilter_factor))):
                fn_small = (lambda: faiss_bitmap(index, columns, subset(queries, 20), nprobe, k)) \
                    if name == "bitmap" else (lambda: faiss_postfilter(index, columns, subset(queries, 20), nprobe,
                                                                        k, args.postfilter_factor))
                fn_small()
                faiss_ndis_reset()
                labels, s, spread, load = timed(fn, args.repeat)
                ndis = faiss_ndis()
                res = faiss_result(labels, ids, x, queries)
                short, invalid = check(res, queries, columns, positions, satisfying)
                setting = (f"IVF{nlist} IDSelectorBitmap nprobe={nprobe}" if name == "bitmap"
                           else f"IVF{nlist} post-filter k'={k * args.postfilter_factor} nprobe={nprobe}")
                r = row(f"faiss {name}", setting, m, s, spread, load, recall=hqi.recall_at_k(res, truth, k),
                        rows_scanned=None if ndis is None else ndis / (m * args.repeat), short=short,
                        invalid=invalid)
                faiss_rows.append(r)
                log(f"faiss {name} nprobe={nprobe}: {r['qps']:,.1f} q/s recall {r['recall']:.4f} short {short}")
    rows.extend(faiss_rows)
    rows.extend(sigil_rows)

    a_qps, e_qps = rows[0]["qps"], rows[1]["qps"]
    for r in rows:
        r["vs_a"], r["vs_e"] = r["qps"] / a_qps, r["qps"] / e_qps
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(f"HQI benchmark: {args.rows:,} rows x {args.dim}, {m:,} queries ({distinct} distinct predicates, mean "
          f"selectivity {report['selectivity']['mean']:.4f}), k={k}, threads {THREADS}, --repeat {args.repeat}")
    print(f"sigil build {report['sigil_build_seconds']:.2f} s ({report['sigil_layout']['leaves']} leaves, "
          f"{report['sigil_layout']['clusters']} clusters)"
          + (f"; faiss IVF build {report['faiss_build_seconds']:.2f} s" if "faiss_build_seconds" in report else "")
          + (f"; {report['faiss_note']}" if "faiss_note" in report else ""))
    print(f"(e) vs (a) on {len(sub.k)} queries: tie-aware recall {e_recall:.4f}, identical ids {e_same}\n")
    print(table(rows, a_qps, e_qps))
    return report


if __name__ == "__main__":
    main()
