"""MinHash-LSH blocking on FEBRL dataset 4: sigil vs datasketch vs Spark ML, side by side.

Links ``dataset4a.csv`` (5,000 originals) with ``dataset4b.csv`` (5,000 duplicates);
``rec-<n>-org`` matches ``rec-<n>-dup-0`` (5,000 true links). Every system sees the same
records: the attributes of a row (all columns but ``rec_id``), stripped, empty values
dropped, joined by one space; tokens are the character 3-grams of that string; 128
permutations. Measured, in one process and one run:

1. datasketch (in memory): ``MinHashLSH(threshold=0.4)``; and ``threshold=0.3`` followed by
   an exact 3-gram Jaccard >= 0.3 filter. Timed: tokens + ``MinHash.bulk`` + index + query
   (+ filter).
2. Spark ML: 3-grams (Spark SQL) -> ``HashingTF(binary)`` -> ``MinHashLSH(numHashTables=L)``
   -> ``approxSimilarityJoin(a, b, 0.7)`` (Jaccard distance < 0.7), timed until the pairs
   are collected.
3. sigil: the ``block`` job (``lsh.threshold 0.3``, exact Jaccard >= 0.3) on the output of
   the ``ingest`` job, in the same SparkSession. Timed: the whole job (it also writes its
   outputs and computes its quality metrics).
4. Signatures alone: ``MinHasher.signatures`` vs ``datasketch.MinHash.bulk`` on the same
   token lists (bit-identical, asserted).

Each measurement is warmed up once, then repeated ``--repeat`` times; the median is
reported. Run from the repository root::

    python benchmarks/blocking_febrl.py [--repeat 3] [--json results.json] [--skip-sparkml]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasketch import MinHash, MinHashLSH

NUM_PERM = 128
SEED = 1
Q = 3
SIGNATURE_REPEAT = 10  # the least number of repetitions of the signatures-alone measurement
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "er" / "febrl"


# ---------------------------------------------------------------- data

def read_febrl(path: Path) -> tuple[list[str], list[str], list[list[str | None]]]:
    """(ids, attribute names, attribute columns): values stripped, empty values as None."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = [h.strip() for h in rows[0]]
    body = [[v.strip() for v in r] for r in rows[1:] if r]
    ids = [r[0] for r in body]
    columns = [[r[j] or None for r in body] for j in range(1, len(header))]
    return ids, header[1:], columns


def joined_text(columns: list[list[str | None]]) -> list[str]:
    return [" ".join(v for v in values if v is not None) for values in zip(*columns)]


def qgrams(text: str, q: int = Q) -> set[str]:
    """sigil's convention: code-point q-grams; a non-empty string shorter than q is one token."""
    if not text:
        return set()
    if len(text) < q:
        return {text}
    return {text[i:i + q] for i in range(len(text) - q + 1)}


def truth_pairs(ids_a: list[str], ids_b: list[str]) -> set[tuple[str, str]]:
    b = set(ids_b)
    pairs = {(i, i.replace("-org", "-dup-0")) for i in ids_a if i.endswith("-org")}
    return {p for p in pairs if p[1] in b}


def completeness(pairs, truth: set) -> float:
    return len(truth.intersection(pairs)) / len(truth)


def timed(fn, repeat: int):
    """Warm up once, then run ``repeat`` times: (median seconds, all seconds, last result)."""
    fn()
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- datasketch

def datasketch_block(text_a, ids_a, text_b, ids_b, threshold: float, min_jaccard: float | None):
    sets_a = [qgrams(t) for t in text_a]
    sets_b = [qgrams(t) for t in text_b]
    mh_a = MinHash.bulk([[t.encode() for t in s] for s in sets_a], num_perm=NUM_PERM, seed=SEED)
    mh_b = MinHash.bulk([[t.encode() for t in s] for s in sets_b], num_perm=NUM_PERM, seed=SEED)
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    with lsh.insertion_session() as session:
        for i, m in enumerate(mh_a):
            session.insert(i, m, check_duplication=False)
    pairs = set()
    for j, m in enumerate(mh_b):
        for i in lsh.query(m):
            if min_jaccard is None or len(sets_a[i] & sets_b[j]) / len(sets_a[i] | sets_b[j]) >= min_jaccard:
                pairs.add((ids_a[i], ids_b[j]))
    return pairs, (lsh.b, lsh.r)


# ---------------------------------------------------------------- signatures alone

def signature_benchmark(columns: list[list[str | None]], repeat: int) -> dict:
    from sigil.transforms.minhash import MinHasher
    from sigil.transforms.tokens import tokenize_columns

    arrays = [pa.array(c, pa.string()) for c in columns]
    tokens, offsets = tokenize_columns(arrays, kind="qgram", q=Q)
    flat = tokens.to_pylist()
    token_lists = [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    hasher = MinHasher(NUM_PERM, seed=SEED)

    t_sigil, all_sigil, sig = timed(lambda: hasher.signatures(tokens, offsets), repeat)
    t_ds, all_ds, mhs = timed(lambda: MinHash.bulk(token_lists, num_perm=NUM_PERM, seed=SEED), repeat)
    reference = np.stack([m.hashvalues for m in mhs])
    assert sig.shape == reference.shape and np.array_equal(sig.astype(np.uint64), reference.astype(np.uint64)), \
        "sigil signatures differ from datasketch's"
    return {"records": len(token_lists), "tokens": len(flat),
            "sigil_seconds": t_sigil, "sigil_all": all_sigil,
            "datasketch_seconds": t_ds, "datasketch_all": all_ds,
            "ratio": t_ds / t_sigil, "identical": True, "repeat": repeat,
            "token_lists": token_lists}


# ---------------------------------------------------------------- Spark ML

def sparkml_block(spark, df_a, df_b, tables: int):
    from pyspark.ml.feature import HashingTF, MinHashLSH as SparkMinHashLSH
    from pyspark.sql import functions as F

    grams = F.expr(f"transform(sequence(1, greatest(char_length(text) - {Q - 1}, 1)), "
                   f"i -> substring(text, i, {Q}))")
    tf = HashingTF(inputCol="tokens", outputCol="features", numFeatures=1 << 20, binary=True)
    fa = tf.transform(df_a.select("id", grams.alias("tokens")))
    fb = tf.transform(df_b.select("id", grams.alias("tokens")))
    model = SparkMinHashLSH(inputCol="features", outputCol="hashes", numHashTables=tables, seed=SEED).fit(fa)
    joined = model.approxSimilarityJoin(fa, fb, 0.7, distCol="distance")
    rows = joined.select(F.col("datasetA.id").alias("a"), F.col("datasetB.id").alias("b")).collect()
    return {(r["a"], r["b"]) for r in rows}


# ---------------------------------------------------------------- sigil

def sigil_config(data: Path, workdir: Path, truth: Path, shuffle_partitions: int):
    from sigil.schemas.config import load_config

    attributes = ["given_name", "surname", "street_number", "address_1", "address_2", "suburb",
                  "postcode", "state", "date_of_birth", "soc_sec_id"]
    return load_config(base={
        "output": str(workdir / "out"),
        "spark": {"shuffle_partitions": shuffle_partitions,
                  "conf": {"spark.ui.showConsoleProgress": "false"}},
        "ingest": {
            "sources": [{"name": "a", "path": str(data / "dataset4a.csv"), "id_column": "rec_id"},
                        {"name": "b", "path": str(data / "dataset4b.csv"), "id_column": "rec_id"}],
            "attributes": [{"name": a} for a in attributes],
        },
        "block": {"mode": "link", "lsh": {"threshold": 0.3}, "exact_jaccard": True, "min_jaccard": 0.3},
        "truth": {"path": str(truth)},
    })


# ---------------------------------------------------------------- report

def row(system, setting, pairs, pc, seconds, runs, **extra):
    """One result; the 1-minute load average shows whether something else shared the CPUs."""
    return {"system": system, "setting": setting, "candidate_pairs": pairs, "pair_completeness": pc,
            "median_seconds": seconds, "seconds": runs, "load_average_after": os.getloadavg()[0], **extra}


def print_table(results: list[dict], sigil_seconds: float | None, sig: dict) -> None:
    head = (f"{'system':<11} {'setting':<52} {'pairs':>7} {'PC':>7} {'median s':>9} {'/ sigil':>8} "
            f"{'load':>5}")
    print(head)
    print("-" * len(head))
    for r in results:
        ratio = f"{r['median_seconds'] / sigil_seconds:.1f}x" if sigil_seconds else "-"
        print(f"{r['system']:<11} {r['setting']:<52} {r['candidate_pairs']:>7} "
              f"{r['pair_completeness']:>7.4f} {r['median_seconds']:>9.2f} {ratio:>8} {r['load_average_after']:>5.1f}")
    print()
    for r in results:
        if r["system"] == "sigil":
            print(f"sigil block stages, median s: {r['stage_seconds_median']}; "
                  f"sigil ingest (once, not part of blocking): {r['ingest_seconds']:.1f} s")
    print(f"signatures alone ({sig['records']} records, {sig['tokens']} tokens, 128 perms, identical values): "
          f"datasketch MinHash.bulk {sig['datasketch_seconds']:.3f} s, sigil MinHasher.signatures "
          f"{sig['sigil_seconds']:.4f} s -> {sig['ratio']:.1f}x")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions after one warm-up (median reported)")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--skip-sparkml", action="store_true", help="leave out Spark ML (the slowest part)")
    p.add_argument("--sparkml-tables", default="5,10,20",
                   help="comma-separated numHashTables settings for Spark ML MinHashLSH (default 5,10)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with dataset4a.csv and dataset4b.csv")
    p.add_argument("--workdir", type=Path, help="scratch folder for sigil's outputs (default: a temp dir, removed)")
    p.add_argument("--shuffle-partitions", type=int, default=4)
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    tables = [int(t) for t in args.sparkml_tables.split(",") if t.strip()]

    ids_a, names, cols_a = read_febrl(args.data / "dataset4a.csv")
    ids_b, names_b, cols_b = read_febrl(args.data / "dataset4b.csv")
    assert names == names_b, (names, names_b)
    text_a, text_b = joined_text(cols_a), joined_text(cols_b)
    truth = truth_pairs(ids_a, ids_b)
    log(f"{len(ids_a)} + {len(ids_b)} records, {len(truth)} true links, attributes {names}")

    results: list[dict] = []

    # 4. signatures alone (first: it also checks that sigil and this script tokenise alike)
    log("signatures: sigil MinHasher vs datasketch MinHash.bulk ...")
    # sigil's side takes a few hundredths of a second: more repetitions keep its median stable
    sig = signature_benchmark([a + b for a, b in zip(cols_a, cols_b)], max(args.repeat, SIGNATURE_REPEAT))
    token_lists = sig.pop("token_lists")
    assert all(set(t.decode() for t in toks) == qgrams(text)
               for toks, text in zip(token_lists, text_a + text_b)), "sigil's 3-grams differ from this script's"
    log(f"signatures: datasketch {sig['datasketch_seconds']:.3f} s, sigil {sig['sigil_seconds']:.4f} s, "
        f"{sig['ratio']:.1f}x")

    # 1. datasketch
    for threshold, min_jaccard in ((0.4, None), (0.3, 0.3)):
        log(f"datasketch threshold {threshold} ...")
        med, runs, (pairs, (b, r)) = timed(
            lambda: datasketch_block(text_a, ids_a, text_b, ids_b, threshold, min_jaccard), args.repeat)
        setting = f"MinHashLSH t={threshold} (b={b}, r={r})" + (
            f" + exact J>={min_jaccard}" if min_jaccard is not None else "")
        results.append(row("datasketch", setting, len(pairs), completeness(pairs, truth), med, runs))
        log(f"  {len(pairs)} pairs, PC {results[-1]['pair_completeness']:.4f}, {med:.2f} s")

    # 3. sigil (then Spark ML in the same session)
    from sigil.jobs import block, ingest
    from sigil.jobs.spark.session import spark_session

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sigil-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    truth_csv = workdir / "truth.csv"
    with open(truth_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id_a", "id_b"])
        w.writerows(sorted(truth))
    cfg = sigil_config(args.data, workdir, truth_csv, args.shuffle_partitions)
    try:
        t0 = time.perf_counter()
        spark = spark_session(cfg.spark)
        session_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        ingest.run(spark, cfg, quiet=True)
        ingest_seconds = time.perf_counter() - t0
        log(f"spark session {session_seconds:.1f} s, sigil ingest {ingest_seconds:.1f} s (not part of blocking)")

        manifests = []

        def sigil_run():
            m = block.run(spark, cfg, quiet=True)
            manifests.append(m)
            return m

        log("sigil block ...")
        med, runs, m = timed(sigil_run, args.repeat)
        timed_manifests = manifests[1:]
        metrics = m["metrics"]
        stages = {k: statistics.median(x["timings"].get(k, 0.0) for x in timed_manifests)
                  for k in m["timings"]}
        results.append(row("sigil", f"block t=0.3 (b={metrics['bands']}, r={metrics['rows']}) + exact J>=0.3",
                           metrics["candidate_pairs"], metrics["pair_completeness"], med, runs,
                           stage_seconds_median=stages, ingest_seconds=ingest_seconds))
        sigil_seconds = med
        log(f"  {metrics['candidate_pairs']} pairs, PC {metrics['pair_completeness']:.4f}, {med:.2f} s; "
            f"stages {stages}")

        # 2. Spark ML
        if not args.skip_sparkml:
            df_a = spark.createDataFrame(list(zip(ids_a, text_a)), "id string, text string").cache()
            df_b = spark.createDataFrame(list(zip(ids_b, text_b)), "id string, text string").cache()
            df_a.count(), df_b.count()
            log(f"Spark ML warm-up (numHashTables={tables[0]}) ...")
            sparkml_block(spark, df_a, df_b, tables[0])
            for L in tables:
                log(f"Spark ML numHashTables={L} ...")
                runs, pairs = [], set()
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    pairs = sparkml_block(spark, df_a, df_b, L)
                    runs.append(time.perf_counter() - t0)
                med = statistics.median(runs)
                results.append(row("Spark ML", f"MinHashLSH numHashTables={L}, join dist<0.7 (J>0.3)",
                                   len(pairs), completeness(pairs, truth), med, runs))
                log(f"  {len(pairs)} pairs, PC {results[-1]['pair_completeness']:.4f}, {med:.2f} s")
            df_a.unpersist(), df_b.unpersist()
        spark.stop()
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print_table(results, sigil_seconds, sig)
    ratios = {f"{r['system']} | {r['setting']}": r["median_seconds"] / sigil_seconds
              for r in results if r["system"] != "sigil"}
    ratios["signatures: datasketch / sigil"] = sig["ratio"]
    sigil_pc = next((r["pair_completeness"] for r in results if r["system"] == "sigil"), None)
    at_par = [r for r in results if r["system"] == "Spark ML" and sigil_pc is not None
              and r["pair_completeness"] >= sigil_pc]
    if at_par:  # the fastest Spark ML setting whose pair completeness is at least sigil's
        best = min(at_par, key=lambda r: r["median_seconds"])
        ratios["Spark ML at equal or better PC / sigil"] = best["median_seconds"] / sigil_seconds
        print(f"Spark ML at equal or better pair completeness ({best['setting']}, PC {best['pair_completeness']:.4f}):"
              f" {best['median_seconds'] / sigil_seconds:.1f}x sigil's time")
    elif sigil_pc is not None and any(r["system"] == "Spark ML" for r in results):
        print(f"no Spark ML setting reached sigil's pair completeness {sigil_pc:.4f}; try more --sparkml-tables")
    if args.json:
        out = {"benchmark": "blocking_febrl", "repeat": args.repeat,
               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version()},
               "versions": {k: metadata.version(k) for k in ("pyspark", "datasketch", "numpy", "numba", "pyarrow")},
               "records": [len(ids_a), len(ids_b)], "true_links": len(truth),
               "spark_session_seconds": session_seconds, "sigil_ingest_seconds": ingest_seconds,
               "results": results, "signatures": sig, "time_ratio_vs_sigil": ratios}
        args.json.write_text(json.dumps(out, indent=2))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
