"""Neural-LSH blocking (NLSHBlock) on Abt-Buy, beside MinHash-LSH and the pre-trained encoder.

One run measures, each through the ``sigil`` command line as a user runs it:

1. blocking: pair completeness (PC) at k = 1, 3, 5, 10, 20 Buy candidates per Abt record and
   the candidate-set sizes, for MinHash-LSH over 3-grams (the block job), the pre-trained
   all-MiniLM-L6-v2 and the hash fine-tuned on pairs/train.txt (selected on valid.txt);
   PC against all of matches.csv and against the matches outside the training pairs;
2. hyperplane LSH over the trained embeddings (candidates, PC, seconds);
3. a custom rule instead of labels (same brand, model numbers within one edit): how many of
   the rule's pairs over the whole cross product each hash finds at k;
4. semi-supervised matching with 10 % of the training labels: logistic matching with and
   without the hash trained on those labels (cosine levels and pseudo-labels);
5. throughput: records encoded per second (median of ``--repeat`` runs), training time,
   and hyperplane LSH on ``--scale`` generated person records with a hash trained from the
   rule of conf/people_nlsh.yaml on ``--train-scale`` others (time, candidates, peak memory).

    .venv/bin/python benchmarks/nlsh.py [--epochs 2] [--repeat 3] [--scale 20000] [--work DIR]
    .venv/bin/python benchmarks/nlsh.py --parts throughput,scale --scale 100000   # parts alone
    .venv/bin/python benchmarks/nlsh.py --parts scale --scale 1000000 --candidates ivf:2000x4,lsh:128x24 [--model DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from er_benchmark import measured  # noqa: E402

from sigil.schemas.config import MatchRule  # noqa: E402
from sigil.transforms.match_rules import rule_holds  # noqa: E402
from sigil.transforms.nlsh import top_k  # noqa: E402
from sigil.transforms.pair_text import map_pairs  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "er" / "abt_buy"
CONF = ROOT / "conf" / "abt_buy_nlsh.yaml"
KS = (1, 3, 5, 10, 20)
RULE = {"all": [{"column": "name", "extract": "first_word", "kind": "exact"},
                {"column": "name", "extract": "codes", "kind": "levenshtein", "max": 1}]}
MATCH = [{"column": "name", "levels": [{"kind": "jaccard", "min": 0.6}, {"kind": "jaccard", "min": 0.4},
                                       {"kind": "jaccard", "min": 0.25}]},
         {"column": "name", "name": "name_codes", "extract": "codes",
          "levels": [{"kind": "exact"}, {"kind": "jaccard", "min": 0.5}, {"kind": "jaccard", "min": 0.01}]},
         {"column": "description", "levels": [{"kind": "jaccard", "min": 0.4}, {"kind": "jaccard", "min": 0.2}]},
         {"column": "price", "levels": [{"kind": "numeric_diff", "max": 0.05}, {"kind": "numeric_diff", "max": 0.25}]}]
COSINE = {"column": "embedding", "levels": [{"kind": "cosine", "min": m} for m in (0.9, 0.8, 0.7, 0.6)]}


def log(msg: str) -> None:
    print(f"[nlsh benchmark] {msg}", file=sys.stderr, flush=True)


def sigil(job: str, out: Path, *sets: str, conf: Path = CONF, name: str | None = None) -> dict:
    """Run ``sigil <job>`` with output ``out``; its manifest plus process seconds and peak memory."""
    cmd = [sys.executable, "-m", "sigil", job, "--conf", str(conf), "--quiet", "--set", f"output={out}"]
    for s in sets:
        cmd += ["--set", s]
    run = measured(cmd, out.parent / f"{name or out.name}_{job}.log")
    manifest = json.loads((out / job.replace("-", "_") / "manifest.json").read_text())
    return {**manifest, "process_seconds": run["process_seconds"], "peak_rss_bytes": run["peak_rss_bytes"]}


def ranked(candidates: Path) -> pd.DataFrame:
    """The candidates with each Abt record's rank by cosine (1 = nearest)."""
    df = pq.read_table(candidates, columns=["id_a", "id_b", "cosine"]).to_pandas()
    df = df.sort_values(["id_a", "cosine", "id_b"], ascending=[True, False, True])
    df["rank"] = df.groupby("id_a").cumcount() + 1
    return df


def found_at_k(df: pd.DataFrame, pairs: set) -> dict[int, float]:
    """Share of ``pairs`` (id_a, id_b) among the top-k of their Abt record, per k."""
    hits = df[[p in pairs for p in zip(df.id_a, df.id_b)]]
    return {k: round(int((hits["rank"] <= k).sum()) / len(pairs), 4) for k in KS}


def abt_buy_pairs(split: str) -> list[tuple]:
    tables = {s: list(csv.DictReader(open(DATA / f"table{t}.csv", encoding="utf-8"))) for s, t in (("a", "A"), ("b", "B"))}
    mapped, _ = map_pairs(open(DATA / "pairs" / f"{split}.txt", encoding="utf-8"), tables, ["name", "description", "price"])
    return [(a, b, y) for _, a, b, y in mapped]


def rule_truth(records: Path) -> set:
    """Every (Abt, Buy) pair of the cross product for which the rule holds."""
    t = pq.read_table(records, columns=["source", "id", "name_norm"])
    a = t.filter(pa.compute.equal(t.column("source"), "a"))
    b = t.filter(pa.compute.equal(t.column("source"), "b"))
    i, j = np.meshgrid(np.arange(a.num_rows), np.arange(b.num_rows), indexing="ij")
    i, j = i.ravel(), j.ravel()
    pairs = pa.table({"name_norm_a": a.column("name_norm").take(pa.array(i)),
                      "name_norm_b": b.column("name_norm").take(pa.array(j))})
    holds = rule_holds(MatchRule.model_validate(RULE), pairs)
    ids_a, ids_b = np.array(a.column("id").to_pylist()), np.array(b.column("id").to_pylist())
    return set(zip(ids_a[i[holds]], ids_b[j[holds]]))


def blocking(work: Path, args, report: dict) -> None:
    out = work / "abt_buy"
    sigil("ingest", out)
    minhash = sigil("block", out)["metrics"]
    report["minhash"] = {k: minhash[k] for k in ("candidate_pairs", "pair_completeness", "reduction_ratio")}
    log(f"MinHash: {report['minhash']}")
    pre = sigil("nlsh-block", out, "nlsh_block.model=pretrained", "nlsh_block.k=20", name="pretrained")["metrics"]
    train = {(a, b) for a, b, y in abt_buy_pairs("train") if y == 1}
    truth = {(r["tableA_id"], r["tableB_id"]) for r in csv.DictReader(open(DATA / "matches.csv"))}
    unseen = truth - train
    df = ranked(out / "nlsh_block" / "candidates")
    report["pretrained"] = {"pc": pre["pair_completeness_at_k"], "pc_unseen": found_at_k(df, unseen)}
    log(f"pre-trained: {report['pretrained']}")
    trained = sigil("nlsh-train", out, f"nlsh_train.epochs={args.epochs}")
    report["training"] = {"seconds": trained["timings"]["train"], "process_seconds": trained["process_seconds"],
                          "peak_rss_bytes": trained["peak_rss_bytes"], "positives": trained["metrics"]["positives"],
                          "valid_recall_before": trained["metrics"]["valid_recall_before"],
                          "epochs": trained["metrics"]["epochs"]}
    blocked = sigil("nlsh-block", out, "nlsh_block.k=20", name="trained")
    df = ranked(out / "nlsh_block" / "candidates")
    report["trained"] = {"pc": blocked["metrics"]["pair_completeness_at_k"], "pc_unseen": found_at_k(df, unseen),
                         "candidates_at_k": {k: 1076 * k for k in KS}, "unseen_matches": len(unseen)}
    log(f"trained: {report['trained']}; training {report['training']['seconds']} s")


def lsh(work: Path, args, report: dict) -> None:
    """Hyperplane LSH over the trained hash's embeddings (after ``blocking``)."""
    out = work / "abt_buy"
    report["lsh"] = []
    for tables, bits, probes in ((128, 16, 0), (64, 12, 0)):
        run = sigil("nlsh-block", out, "nlsh_block.method=lsh", f"nlsh_block.lsh.tables={tables}",
                    f"nlsh_block.lsh.bits={bits}", f"nlsh_block.lsh.probes={probes}", name=f"lsh{tables}_{bits}")
        m = run["metrics"]
        report["lsh"].append({"tables": tables, "bits": bits, "probes": probes, "candidates": m["candidate_pairs"],
                              "pair_completeness": m["pair_completeness"], "seconds": run["timings"]["candidates"]})
        log(f"LSH: {report['lsh'][-1]}")


def rule_run(work: Path, args, report: dict) -> None:
    out = work / "abt_buy"
    truth = rule_truth(out / "ingest" / "records")
    rule = json.dumps(RULE)
    trained = sigil("nlsh-train", work / "rule", f"block.input={out}/ingest/records", "nlsh_train.labels=null",
                    "nlsh_train.valid=null", f"nlsh_train.rule={rule}", f"nlsh_train.epochs={args.epochs}")
    pre = ranked_for(work, out, "pretrained", "pretrained")
    post = ranked_for(work, out, f"{work}/rule/nlsh_train/model", "rule")
    report["rule"] = {"rule_pairs_in_cross_product": len(truth), "training_matches": trained["metrics"]["rule_matches"],
                      "training_seconds": trained["timings"]["train"],
                      "pretrained_recall": found_at_k(pre, truth), "rule_trained_recall": found_at_k(post, truth)}
    log(f"rule: {report['rule']}")


def ranked_for(work: Path, out: Path, model: str, name: str) -> pd.DataFrame:
    dest = work / f"rule_{name}"
    sigil("nlsh-block", dest, f"block.input={out}/ingest/records", f"nlsh_block.model={model}", "nlsh_block.k=20")
    return ranked(dest / "nlsh_block" / "candidates")


def semi_supervised(work: Path, args, report: dict) -> None:
    out = work / "abt_buy"
    train = abt_buy_pairs("train")
    few = [train[i] for i in np.random.default_rng(0).permutation(len(train))[: len(train) // 10]]
    labels = work / "labels_10pct.csv"
    labels.write_text("id_a,id_b,label\n" + "".join(f"{a},{b},{y}\n" for a, b, y in few))
    semi = work / "semi"
    records = f"block.input={out}/ingest/records"
    sigil("nlsh-train", semi, records, f"nlsh_train.labels={{path: {labels}, format: csv}}", "nlsh_train.valid=null",
          f"nlsh_train.epochs={args.epochs + 1}")
    sigil("nlsh-block", semi, records, "nlsh_block.k=10")
    match = {"input": f"{semi}/nlsh_block/candidates", "model": "logistic", "threshold": "best_f1",
             "one_to_one": True, "labels": {"path": str(labels)}, "comparisons": MATCH}
    helped = {**match, "comparisons": [*MATCH, COSINE], "embeddings": f"{semi}/nlsh_block/embeddings",
              "pseudo_labels": {"min_cosine": 0.8}}
    rows = {}
    for name, spec in (("without", match), ("with", helped)):
        m = sigil("match", work / f"match_{name}", records, f"match={json.dumps(spec)}")["metrics"]
        rows[name] = {k: m.get(k) for k in ("labelled_pairs", "labelled_matches", "pseudo_matches", "precision",
                                             "recall", "f1")}
    report["semi_supervised"] = {"labelled_pairs": len(few), "labelled_matches": sum(y for *_, y in few), **rows}
    log(f"semi-supervised: {report['semi_supervised']}")


def throughput(work: Path, args, report: dict) -> None:
    """Records encoded per second by nlsh-block's embeddings stage (the whole Spark stage:
    serialising, encoding on every core, writing; median and range of ``--repeat`` runs) on
    ``--throughput-scale`` generated person records, at each ``--precisions`` x ``--lengths``
    setting with the pre-trained model; and what each setting costs in pair completeness at
    k on Abt-Buy (one run each: its 2,140 records are too few to time, the worker start-up
    dominates)."""
    abt_buy = work / "abt_buy"
    if not (abt_buy / "ingest").is_dir():
        sigil("ingest", abt_buy)
    people, conf = people_conf(work, "people_throughput", args.throughput_scale)
    rows = []
    for precision in args.precisions.split(","):
        for length in (int(x) for x in args.lengths.split(",")):
            sets = ["nlsh_block.model=pretrained", f"encoder.precision={precision}", f"encoder.max_seq_length={length}"]
            quality = sigil("nlsh-block", abt_buy, *sets, name=f"throughput_{precision}_{length}")
            runs = [sigil("nlsh-block", people, *sets, "nlsh_block.method=topk", conf=conf,
                          name=f"throughput_people_{precision}_{length}_{r}")
                    for r in range(args.repeat)]
            seconds = [r["timings"]["embeddings"] for r in runs]
            records = runs[0]["metrics"]["records"]
            rows.append({"precision": precision, "max_seq_length": length, "records": records, "seconds": seconds,
                         "records_per_second": round(records / statistics.median(seconds), 1),
                         "records_per_second_range": [round(records / max(seconds), 1),
                                                      round(records / min(seconds), 1)],
                         "abt_buy_pair_completeness_at_k": quality["metrics"]["pair_completeness_at_k"],
                         "people_pair_completeness_at_k": runs[0]["metrics"]["pair_completeness_at_k"]})
            log(f"encoding: {rows[-1]}")
    report["encoding"] = rows


def people_conf(work: Path, name: str, records: int, seed: int | None = None) -> tuple[Path, Path]:
    """``records`` generated person records ingested under ``work/name`` by conf/people_nlsh.yaml
    (the generator's seed replaced by ``seed`` when given: data kept apart from training)."""
    people = (ROOT / "conf" / "people_nlsh.yaml").read_text().replace(
        "extends: demo.yaml", f"extends: {ROOT / 'conf' / 'demo.yaml'}")
    out = work / name
    conf = work / f"{name}.yaml"
    conf.write_text(people.replace("out/people_nlsh", str(out)))
    entities = max(records * 2 // 3, 100)  # the generator adds about 0.5 duplicates per entity
    sigil("generate", out, f"generate.entities={entities}", *([f"generate.seed={seed}"] if seed is not None else []),
          conf=conf)
    sigil("ingest", out, conf=conf)
    return out, conf


def training(work: Path, args, report: dict) -> None:
    """nlsh-train's cost against the size of its input: generated person records at each of
    ``--train-scales``, trained from the rule of conf/people_nlsh.yaml and from the
    generator's truth as labels (matches only); seconds per stage, records encoded,
    validation recall (rule mode: the held-out rule matches)."""
    rows = []
    for n in (int(x) for x in args.train_scales.split(",")):
        out, conf = people_conf(work, f"train_{n}", n)
        labels = [f"nlsh_train.labels.path={out / 'generate' / 'truth'}", "nlsh_train.labels.format=parquet",
                  "nlsh_train.labels.id_columns=[id_a, id_b]", "nlsh_train.labels.label_column=null",
                  "nlsh_train.rule=null"]
        for mode, sets in (("rule", []), ("labels", labels)):
            run = sigil("nlsh-train", out, *sets, conf=conf, name=f"train_{n}_{mode}")
            m = run["metrics"]
            records = pq.read_table(out / "ingest" / "records", columns=["rid"]).num_rows
            rows.append({"records": records, "mode": mode, "training_records": m["training_records"],
                         "positives": m["positives"], "encoded": m["encoded"], "timings": run["timings"],
                         "process_seconds": run["process_seconds"], "valid_candidates": m["valid_candidates"],
                         "valid_recall_before": m["valid_recall_before"],
                         "valid_recall": m["epochs"][-1].get("valid_recall") if m["epochs"] else None})
            log(f"training: {rows[-1]}")
    report["training"] = rows


def truth_sample(out: Path, n: int, seed: int) -> pd.DataFrame:
    """A seeded sample of ``n`` true pairs (``id_a``, ``id_b``) of the generated records."""
    truth = pq.read_table(out / "generate" / "truth", columns=["id_a", "id_b"]).to_pandas()
    return truth.sample(n=min(n, len(truth)), random_state=seed, ignore_index=True)


def found_in(candidates: Path, pairs: pd.DataFrame) -> float:
    """Share of ``pairs`` among the candidate pairs (either order); None without pairs."""
    if pairs.empty:
        return None
    cand = pq.read_table(candidates, columns=["id_a", "id_b"])
    ends = pa.array(np.unique(np.r_[pairs.id_a, pairs.id_b]))
    cand = cand.filter(pa.compute.is_in(cand.column("id_a"), value_set=ends))
    keys = set(zip(cand.column("id_a").to_pylist(), cand.column("id_b").to_pylist()))
    return round(sum((a, b) in keys or (b, a) in keys for a, b in zip(pairs.id_a, pairs.id_b)) / len(pairs), 4)


def exact_found(embeddings: Path, pairs: pd.DataFrame, k: int) -> dict:
    """Exact top-k over all records for both ends of each sampled pair (numpy, blocked):
    the share of pairs in which one end is among the other's k nearest, i.e. what
    ``method: topk`` finds of them, where it is too costly to run whole."""
    t = pq.read_table(embeddings, columns=["id", "vector"])
    ids = np.asarray(t.column("id").to_pylist())
    vectors = t.column("vector").combine_chunks().flatten().to_numpy().reshape(len(ids), -1)
    del t
    row = pd.Series(np.arange(len(ids)), index=ids)
    a, b = row[pairs.id_a].to_numpy(), row[pairs.id_b].to_numpy()
    ends = np.unique(np.r_[a, b])
    t0 = time.perf_counter()
    index, _ = top_k(vectors[ends], vectors, k, ends, np.arange(len(ids)), block_rows=256)
    seconds = round(time.perf_counter() - t0, 1)
    near = {int(e): set(index[i].tolist()) for i, e in enumerate(ends)}
    found = sum(int(y) in near[int(x)] or int(x) in near[int(y)] for x, y in zip(a, b))
    return {"pairs": len(pairs), "queries": len(ends), "found": round(found / len(pairs), 4), "seconds": seconds}


def scale(work: Path, args, report: dict) -> None:
    """Candidates on ``--scale`` generated person records (generated with another seed than
    the training set): the hash trained from the rule on ``--train-scale`` records (or
    ``--model``), the embeddings computed once and reused by every further ``--candidates``
    setting: ``lsh:TABLESxBITS`` (hyperplanes), ``ivf:CELL_SIZExPROBES`` (top-``--k`` in
    the nearest k-means cells), ``topk`` (exact top-``--k``)."""
    model = args.model
    if model is None:
        out, conf = people_conf(work, "people_train", args.train_scale)
        trained = sigil("nlsh-train", out, conf=conf)  # the hash, from the configuration's rule
        report["scale_training"] = {"records": trained["metrics"]["training_records"],
                                    "seconds": trained["timings"]["train"],
                                    "rule_matches": trained["metrics"]["rule_matches"]}
        model = out / "nlsh_train" / "model"
    out, conf = people_conf(work, "people", args.scale, seed=args.scale_seed)
    sample = truth_sample(out, args.truth_sample, args.scale_seed)
    runs: list[dict] = []
    for n, setting in enumerate(args.candidates.split(",")):
        method, _, shape = setting.partition(":")
        sets = [f"nlsh_block.model={model}", f"encoder.precision={args.precision}",
                f"spark.driver_memory={args.driver_memory}", f"nlsh_block.method={method}", f"nlsh_block.k={args.k}"]
        if method == "lsh":
            tables, bits = shape.split("x")
            sets += [f"nlsh_block.lsh.tables={tables}", f"nlsh_block.lsh.bits={bits}"]
        elif method == "ivf":
            cell, probes = shape.split("x")
            sets += [f"nlsh_block.ivf.cell_size={cell}", f"nlsh_block.ivf.probes={probes}"]
        if n:
            sets.append(f"nlsh_block.embeddings={work / 'people_embeddings'}")
        run = sigil("nlsh-block", out, *sets, conf=conf, name=f"people_{setting.replace(':', '_')}")
        m = run["metrics"]
        runs.append({"candidates_setting": setting, "records": m["records"], "candidates": m["candidate_pairs"],
                     "per_record": round(m["candidate_pairs"] / m["records"], 2),
                     "pair_completeness": m.get("pair_completeness"),
                     "pair_completeness_at_k": m.get("pair_completeness_at_k"),
                     "sample_found": found_in(out / "nlsh_block" / "candidates", sample), "timings": run["timings"],
                     "process_seconds": run["process_seconds"], "peak_rss_gib": run["peak_rss_bytes"] / 2 ** 30})
        if not n:
            runs[0]["records_per_second"] = round(m["records"] / run["timings"]["embeddings"], 1)
            shutil.copytree(out / "nlsh_block" / "embeddings", work / "people_embeddings", dirs_exist_ok=True)
            if args.truth_sample:
                report["scale_exact_sample"] = {"k": args.k, **exact_found(work / "people_embeddings", sample, args.k)}
                log(f"scale, exact top-k on the sample: {report['scale_exact_sample']}")
        log(f"scale: {runs[-1]}")
        report["scale"] = runs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3, help="runs of the pre-trained encoding (median reported)")
    p.add_argument("--scale", type=int, default=20_000, help="generated person records for the LSH run; 0 skips")
    p.add_argument("--train-scale", type=int, default=20_000, help="generated person records the hash trains on")
    p.add_argument("--train-scales", default="5000,25000,100000", help="generated person records of the "
                                                                      "training part")
    p.add_argument("--model", type=Path, default=None, help="a trained people model instead of training one")
    p.add_argument("--candidates", default="ivf:2000x4,lsh:32x16", help="the scale part's candidate settings "
                   "(lsh:TABLESxBITS, ivf:CELL_SIZExPROBES, topk); the first encodes, the others reuse its embeddings")
    p.add_argument("--k", type=int, default=10, help="the scale part's k (ivf, topk)")
    p.add_argument("--truth-sample", type=int, default=5000, help="true pairs of the scale part on which every "
                   "setting and exact top-k (numpy, over all records) are compared; 0 skips exact top-k")
    p.add_argument("--scale-seed", type=int, default=7, help="generator seed of the scale part's records")
    p.add_argument("--precision", default="bfloat16", choices=["float32", "bfloat16", "int8"],
                   help="the scale part's encoding")
    p.add_argument("--precisions", default="float32,bfloat16,int8", help="the throughput part's encodings")
    p.add_argument("--lengths", default="64,32", help="the throughput part's encoder.max_seq_length settings")
    p.add_argument("--throughput-scale", type=int, default=10_000, help="generated person records the throughput "
                                                                       "part times")
    p.add_argument("--driver-memory", default="8g", help="Spark driver memory of the LSH run")
    p.add_argument("--parts", default="blocking,lsh,rule,semi,throughput,scale")
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = p.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="sigil-nlsh-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"epochs": args.epochs}
    parts = {"blocking": blocking, "lsh": lsh, "rule": rule_run, "semi": semi_supervised, "throughput": throughput,
             "training": training, "scale": scale}
    for name in args.parts.split(","):
        if name == "scale" and not args.scale:
            continue
        parts[name](work, args, report)
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
