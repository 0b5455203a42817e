"""Entity resolution end to end: sigil (Spark) and Splink 5 (DuckDB), side by side in one run.

For each data set of ``--datasets`` (febrl3: dedupe, 5,000 records; febrl4: link 5,000 +
5,000; abt_buy: link 1,076 + 1,064 products) both systems resolve the same records and are
scored against the same ground truth:

- sigil: the chain ingest -> block -> match -> cluster of ``conf/<data set>.yaml``
  (``sigil.chains.run``) in one Spark session shared by the whole script, its outputs in a
  scratch folder, the sources read from ``--data``. One warm-up run, then ``--repeat`` timed
  runs; time = the whole chain (each job also writes its Parquet outputs and computes its
  own quality metrics: their ``quality`` stages are reported apart). Metrics from the last
  run's manifests.
- Splink: ``benchmarks/splink_reference.py`` (its ``febrl3()``, ``febrl4()``, ``abt_buy()``)
  with the same ``--repeat``; time = train, predict and cluster on a fresh DuckDB connection,
  after the CSVs were read into Arrow once (not timed).

The metrics (pairwise precision / recall / F1 of the predicted matches against all true
pairs, cluster pairwise F1 over the pairs a clustering implies, cross-source only in link
mode, B-cubed against the true entities) are the manifest's for sigil; they are recomputed
from sigil's Parquet outputs with splink_reference's helpers and the script says whether the
two agree (they use the same definitions; where they differ the helpers' values are shown).

``--generated N`` (scale mode): ``sigil generate`` writes N people as CSV (conf/demo.yaml's
generator), then ``sigil er`` (conf/demo.yaml, plus ``--sigil-set`` overrides) and Splink's
``generated()`` run once each as separate processes on the same files and truth; the peak
memory of each is the summed resident memory of its process tree (driver, JVM, Python
workers), sampled every 0.5 s.

Run from the repository root, one benchmark at a time::

    .venv/bin/python benchmarks/er_benchmark.py [--datasets febrl3,febrl4,abt_buy] [--repeat 3] [--json FILE]
    .venv/bin/python benchmarks/er_benchmark.py --generated 20000 [--sigil-set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import pandas as pd
import pyarrow.dataset as pads

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
import splink_reference as ref  # noqa: E402  (the reference side and the metric helpers)

DEFAULT_DATA = Path(os.path.normpath(ROOT / ".." / "shared" / "data" / "er"))
DATASETS = {"febrl3": "conf/febrl3.yaml", "febrl4": "conf/febrl4.yaml", "abt_buy": "conf/abt_buy.yaml"}
STAGES = ("ingest", "block", "match", "cluster")
KEYS = ["source_a", "id_a", "source_b", "id_b"]
# the metrics both sides report, under splink_reference's keys
METRICS = ("precision", "recall", "f1", "cluster_precision", "cluster_recall", "cluster_f1",
           "bcubed_precision", "bcubed_recall", "bcubed_f1", "blocking_recall")
AGREE = 1e-9
POLL_SECONDS = 0.5


def log(msg: str) -> None:
    print(f"[er-bench] {msg}", file=sys.stderr, flush=True)


# ================================================================ sigil's configuration

def resolve(path: str, data: Path) -> str:
    """A conf path (relative to the repository root) with the shared data folder replaced by
    ``data``; absolute paths and URIs stay."""
    if "://" in path or os.path.isabs(path):
        return path
    full = Path(os.path.normpath(ROOT / path))
    try:
        return str(data / full.relative_to(DEFAULT_DATA))
    except ValueError:
        return str(full)


def sigil_overrides(conf: Path, data: Path, output: Path) -> list[str]:
    """``--set`` overrides: output into ``output``, sources and truth file read from ``data``."""
    from sigil.schemas.config import read_yaml

    tree = read_yaml(conf)
    sources = [{**s, "path": resolve(s["path"], data)} for s in tree["ingest"]["sources"]]
    sets = [f"output={json.dumps(str(output))}", f"ingest.sources={json.dumps(sources)}",
            "spark.conf.spark.ui.showConsoleProgress=false"]
    if (tree.get("truth") or {}).get("path"):
        sets.append(f"truth.path={json.dumps(resolve(tree['truth']['path'], data))}")
    return sets


# ================================================================ the same truth, sigil's record names

def node_ids(frame: pd.DataFrame, source: str, ident: str, link: bool) -> pd.Series:
    """Record names as splink_reference uses them: ``<source>:<id>`` in link mode, else ``<id>``."""
    ids = frame[ident].astype(str)
    return (frame[source].astype(str) + ":" + ids) if link else ids


def reference_truth(dataset: str, data: Path, sources: list[str]):
    """(true pairs, true entity per record, source per record or None) of a data set, built
    as splink_reference builds them, with sigil's source names (the conf's)."""
    if dataset == "febrl3":
        ids = ref.read_febrl(data / "febrl" / "dataset3.csv").column("rec_id").to_pylist()
        entity = ref.febrl_entity(ids)
        return ref.all_pairs_within(entity), entity, None
    if dataset == "febrl4":
        files = {sources[0]: "dataset4a.csv", sources[1]: "dataset4b.csv"}
        ids = {s: ref.read_febrl(data / "febrl" / f).column("rec_id").to_pylist() for s, f in files.items()}
        nodes = [f"{s}:{i}" for s in ids for i in ids[s]]
        entity = pd.Series(ref.febrl_entity([i for s in ids for i in ids[s]]).to_numpy(), index=nodes)
        src = pd.Series([s for s in ids for _ in ids[s]], index=nodes)
        frame = pd.DataFrame({"id": nodes, "e": entity.to_numpy(), "s": src.to_numpy()})
        truth = frame[frame.s == sources[0]].merge(frame[frame.s == sources[1]], on="e")[["id_x", "id_y"]]
        return truth, entity, src
    if dataset == "abt_buy":
        folder = data / "abt_buy"
        nodes = [f"{s}:{i}" for s, f in zip(sources, ("tableA.csv", "tableB.csv"))
                 for i in pd.read_csv(folder / f, dtype=str)["id"].str.strip()]
        m = pd.read_csv(folder / "matches.csv", dtype=str)
        truth = pd.DataFrame({"l": f"{sources[0]}:" + m["tableA_id"].str.strip(),
                              "r": f"{sources[1]}:" + m["tableB_id"].str.strip()})
        src = pd.Series([n.split(":", 1)[0] for n in nodes], index=nodes)
        return truth, ref.clusters_from_pairs(nodes, truth), src
    raise ValueError(dataset)


def generated_truth(records_glob: str, truth_path: Path):
    """Truth of ``sigil generate``'s people (dedupe): pairs from its Parquet, entities from the CSVs."""
    files = sorted(glob.glob(records_glob))
    recs = pads.dataset(files, format="csv").to_table(columns=["rec_id", "entity_id"]).to_pandas()
    entity = pd.Series(recs["entity_id"].astype(str).to_numpy(), index=recs["rec_id"].astype(str).str.strip())
    truth = pads.dataset(str(truth_path), format="parquet").to_table(columns=["id_a", "id_b"]).to_pandas()
    return truth, entity, None


def reference_metrics(output: Path, threshold: float, link: bool, truth, labels, sources) -> dict:
    """splink_reference's metrics computed on sigil's Parquet outputs (not timed)."""
    def read(path, columns):
        return pads.dataset(str(path), format="parquet").to_table(columns=columns).to_pandas()

    cands = read(output / "block" / "candidates", KEYS)
    pairs = read(output / "match" / "pairs", [*KEYS, "match_probability", "is_match"])
    # the match job's decision: at or above the threshold and, linking one to one, mutual best
    pairs = pairs[pairs["is_match"] & (pairs["match_probability"] >= threshold)]
    ents = read(output / "cluster" / "entities", ["source", "id", "entity_id"])

    def as_pairs(df):
        return pd.DataFrame({"l": node_ids(df, "source_a", "id_a", link), "r": node_ids(df, "source_b", "id_b", link)})

    entity = pd.Series(ents["entity_id"].to_numpy(), index=node_ids(ents, "source", "id", link).to_numpy())
    pw = ref.pairwise_metrics(as_pairs(pairs), truth)
    cp = ref.cluster_pairwise_metrics(entity, truth, sources)
    b3 = ref.bcubed(entity, labels)
    return {"precision": pw["precision"], "recall": pw["recall"], "f1": pw["f1"],
            "cluster_precision": cp["precision"], "cluster_recall": cp["recall"], "cluster_f1": cp["f1"],
            "bcubed_precision": b3["precision"], "bcubed_recall": b3["recall"], "bcubed_f1": b3["f1"],
            "blocking_recall": ref.pairwise_metrics(as_pairs(cands), truth)["recall"],
            "true_pairs": pw["true_pairs"], "predicted_matches": pw["predicted_pairs"],
            "cluster_implied_pairs": cp["predicted_pairs"]}


def manifest_metrics(manifests: dict) -> dict:
    """The quality metrics of one chain run, from its manifests, under splink_reference's keys."""
    block, match, cluster = (manifests[s]["metrics"] for s in ("block", "match", "cluster"))
    return {
        "records": manifests["ingest"]["outputs"]["records"],
        "comparisons_scored": block["candidate_pairs"], "blocking_recall": block["pair_completeness"],
        "predicted_matches": match["matches"], "true_pairs": match.get("truth_pairs"),
        **{k: match[k] for k in ("precision", "recall", "f1")},
        **{k: cluster[k] for k in ("cluster_precision", "cluster_recall", "cluster_f1",
                                    "bcubed_precision", "bcubed_recall", "bcubed_f1")},
        "cluster_implied_pairs": cluster.get("predicted_pairs"), "clusters": cluster["entities"],
        "largest_cluster": cluster.get("largest"),
        "match_threshold": match["threshold"],
    }


def checked(result: dict, output: Path, link: bool, truth, labels, sources) -> dict:
    """Recompute the metrics with the reference helpers; where the manifest differs, the
    helpers' value replaces it (the manifest's is kept under ``manifest_metrics``)."""
    refm = reference_metrics(output, result["match_threshold"], link, truth, labels, sources)
    diffs = {k: (result[k], refm[k]) for k in METRICS
             if result[k] is None or abs(result[k] - refm[k]) > AGREE}
    result["reference_metrics"] = refm
    result["metric_check"] = {"agree": not diffs, "tolerance": AGREE,
                              "max_abs_diff": max((abs(result[k] - refm[k]) for k in METRICS
                                                   if result[k] is not None), default=0.0),
                              "differences": {k: {"manifest": a, "reference": b} for k, (a, b) in diffs.items()}}
    if diffs:
        result["manifest_metrics"] = {k: result[k] for k in diffs}
        result.update({k: refm[k] for k in diffs})
    return result


# ================================================================ sigil, in process

def sigil_dataset(spark, dataset: str, args, work: Path) -> dict:
    from sigil import chains
    from sigil.schemas.config import load_config

    conf = ROOT / DATASETS[dataset]
    output = work / dataset
    config = load_config(conf, sigil_overrides(conf, args.data, output))
    # one session for all data sets: apply this conf's runtime SQL settings to it
    spark.conf.set("spark.sql.shuffle.partitions", str(config.spark.shuffle_partitions))
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.spark.arrow_batch_rows))
    log(f"sigil {dataset}: warm-up run ...")
    t0 = time.perf_counter()
    chains.run(config, STAGES, quiet=True, spark=spark)
    log(f"sigil {dataset}: warm-up {time.perf_counter() - t0:.1f} s")
    runs = []
    for i in range(args.repeat):
        m = chains.run(config, STAGES, quiet=True, spark=spark)
        runs.append(m)
        log(f"sigil {dataset} run {i + 1}/{args.repeat}: {m['seconds']:.1f} s ("
            + ", ".join(f"{s} {m[s]['timings']['total']:.1f}" for s in STAGES) + ")")
    load = os.getloadavg()[0]
    quality = [sum(m[s]["timings"].get("quality", 0.0) for s in STAGES) for m in runs]
    stage_parts = {s: {k: statistics.median(m[s]["timings"].get(k, 0.0) for m in runs)
                       for k in runs[-1][s]["timings"] if k != "total"} for s in STAGES}
    result = {
        "system": "sigil", "dataset": dataset, "mode": config.er_mode(),
        **manifest_metrics(runs[-1]),
        "seconds": statistics.median(m["seconds"] for m in runs),
        "seconds_all": [m["seconds"] for m in runs],
        "stage_seconds": {s: statistics.median(m[s]["timings"]["total"] for m in runs) for s in STAGES},
        "stage_parts_seconds": stage_parts,
        "quality_seconds": statistics.median(quality),
        "seconds_without_quality": statistics.median(m["seconds"] - q for m, q in zip(runs, quality)),
        "repeat": args.repeat, "load_average_after": load, "conf": str(conf.relative_to(ROOT)),
    }
    truth, labels, sources = reference_truth(dataset, args.data, [s.name for s in config.ingest.sources])
    return checked(result, output, config.er_mode() == "link", truth, labels, sources)


def splink_dataset(dataset: str, args) -> dict:
    folder = args.data / ("abt_buy" if dataset == "abt_buy" else "febrl")
    log(f"splink {dataset} ...")
    return getattr(ref, dataset)(folder, args.repeat)


# ================================================================ report

COLUMNS = [("system", "{}", "system"), ("comparisons_scored", "{:,}", "scored pairs"),
           ("blocking_recall", "{:.4f}", "block R"), ("predicted_matches", "{:,}", "pred"),
           ("precision", "{:.4f}", "P"), ("recall", "{:.4f}", "R"), ("f1", "{:.4f}", "F1"),
           ("cluster_f1", "{:.4f}", "cluster F1"), ("bcubed_f1", "{:.4f}", "B3 F1"),
           ("seconds", "{:.2f}", "seconds")]


table = ref.table


def stages_text(stages: dict) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in stages.items())


def ratios(sigil: dict, splink: dict) -> dict:
    out = {"seconds_sigil_over_splink": sigil["seconds"] / splink["seconds"]}
    if sigil.get("seconds_without_quality") is not None:
        out["seconds_without_quality_sigil_over_splink"] = sigil["seconds_without_quality"] / splink["seconds"]
    out.update({f"{k}_sigil_minus_splink": sigil[k] - splink[k]
                for k in ("f1", "cluster_f1", "bcubed_f1", "blocking_recall")})
    return out


def check_text(r: dict) -> str:
    c = r["metric_check"]
    if c["agree"]:
        return (f"check: sigil's manifest metrics = splink_reference's helpers on sigil's outputs "
                f"(max |diff| {c['max_abs_diff']:.1e})")
    return ("check: sigil's manifest differs from splink_reference's helpers (the table shows the helpers'): "
            + "; ".join(f"{k} manifest {v['manifest']} vs {v['reference']:.6f}" for k, v in c["differences"].items()))


def print_dataset(name: str, sigil: dict, splink: dict, rat: dict) -> None:
    print(f"\n{name} ({sigil['mode']}, {sigil['records']:,} records, {splink['true_pairs']:,} true pairs, "
          f"--repeat {sigil['repeat']}, medians)")
    print(table([sigil, splink], COLUMNS + [("load_average_after", "{:.1f}", "load")]))
    print(f"ratio: seconds sigil / Splink {rat['seconds_sigil_over_splink']:.2f}x "
          f"(sigil without its quality stages {rat['seconds_without_quality_sigil_over_splink']:.2f}x); "
          f"sigil - Splink: F1 {rat['f1_sigil_minus_splink']:+.4f}, cluster F1 {rat['cluster_f1_sigil_minus_splink']:+.4f}, "
          f"B3 F1 {rat['bcubed_f1_sigil_minus_splink']:+.4f}, block R {rat['blocking_recall_sigil_minus_splink']:+.4f}")
    print(f"sigil stages (s): {stages_text(sigil['stage_seconds'])}; of these its quality metrics "
          f"{sigil['quality_seconds']:.2f}; runs {', '.join(f'{s:.1f}' for s in sigil['seconds_all'])}")
    print(f"Splink stages (s): {stages_text(splink['stage_seconds'])}; CSV read once (not timed) "
          f"{splink['read_seconds']:.2f}; runs {', '.join(f'{s:.1f}' for s in splink['seconds_all'])}")
    print(check_text(sigil))


# ================================================================ scale mode: separate processes

def measured(cmd: list[str], log_path: Path) -> dict:
    """Run ``cmd``; wall seconds and peak summed resident memory of its process tree."""
    import psutil

    peak, done = [0], threading.Event()
    with open(log_path, "wb") as out:
        t0 = time.perf_counter()
        proc = psutil.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

        def sample():
            while not done.is_set():
                try:
                    tree = [proc, *proc.children(recursive=True)]
                    total = 0
                    for p in tree:
                        try:
                            total += p.memory_info().rss
                        except psutil.Error:
                            pass
                    peak[0] = max(peak[0], total)
                except psutil.Error:
                    pass
                done.wait(POLL_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
    if rc:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {rc}); log {log_path}:\n{tail}")
    return {"process_seconds": seconds, "peak_rss_bytes": peak[0], "log": str(log_path)}


def scale(args, work: Path) -> dict:
    people = args.generated
    out = work / f"generated_{people}"
    gen_dir = out / "generate"
    records_glob = str(gen_dir / "records" / "source=people" / "*.csv")
    demo = args.sigil_conf
    sigil = [sys.executable, "-m", "sigil"]
    common = [f"output={out}", f"generate.entities={people}", "generate.format=csv",
              "spark.conf.spark.ui.showConsoleProgress=false"]
    sets = [*common,
            "ingest.sources=" + json.dumps([{"name": "people", "path": str(gen_dir / "records" / "source=people"),
                                             "format": "csv", "id_column": "rec_id"}]),
            f"truth.path={gen_dir / 'truth'}", "truth.format=parquet",
            # as benchmarks/scale_block.py: no Great Expectations suites (Splink validates nothing)
            "ingest.validate_output=false", "block.validate_output=false", *args.sigil_set]

    def with_sets(cmd, items):
        return cmd + [a for s in items for a in ("--set", s)]

    log(f"generate {people} people (CSV) into {gen_dir} ...")
    gen = measured(with_sets([*sigil, "generate", "--conf", str(demo), "--quiet"], common), work / "generate.log")
    log(f"generated in {gen['process_seconds']:.1f} s")

    log("sigil er (separate process) ...")
    cmd = with_sets([*sigil, "er", "--conf", str(demo), "--quiet"], sets)
    run = measured(cmd, work / "sigil_er.log")
    manifests = {s: json.loads((out / s / "manifest.json").read_text()) for s in STAGES}
    load = os.getloadavg()[0]
    quality = sum(manifests[s]["timings"].get("quality", 0.0) for s in STAGES)
    stages = {s: manifests[s]["timings"]["total"] for s in STAGES}
    s_res = {"system": "sigil", "dataset": f"generated_{people}", "mode": manifests["block"]["config"]["block"]["mode"],
             **manifest_metrics(manifests), "seconds": sum(stages.values()), "stage_seconds": stages,
             "stage_parts_seconds": {s: {k: v for k, v in manifests[s]["timings"].items() if k != "total"}
                                     for s in STAGES},
             "quality_seconds": quality, "seconds_without_quality": sum(stages.values()) - quality,
             **run, "load_average_after": load, "command": cmd, "repeat": 1}
    log(f"sigil: {s_res['process_seconds']:.1f} s, peak {s_res['peak_rss_bytes'] / 2**30:.2f} GiB")
    truth, labels, _ = generated_truth(records_glob, gen_dir / "truth")
    checked(s_res, out, False, truth, labels, None)

    log("Splink generated() (separate process) ...")
    sp_json = work / "splink_generated.json"
    cmd = [sys.executable, str(BENCH / "splink_reference.py"), "--datasets", "generated", "--repeat", "1",
           "--generated-records", records_glob, "--generated-truth", str(gen_dir / "truth"), "--json", str(sp_json)]
    run = measured(cmd, work / "splink.log")
    sp_res = {**json.loads(sp_json.read_text())["results"][0], **run, "command": cmd,
              "load_average_after": os.getloadavg()[0]}
    log(f"Splink: {sp_res['process_seconds']:.1f} s, peak {sp_res['peak_rss_bytes'] / 2**30:.2f} GiB")
    return {"people": people, "generate_seconds": gen["process_seconds"], "records_glob": records_glob,
            "sigil": s_res, "splink": sp_res, "ratios": {
                **ratios(s_res, sp_res),
                "process_seconds_sigil_over_splink": s_res["process_seconds"] / sp_res["process_seconds"],
                "peak_rss_sigil_over_splink": s_res["peak_rss_bytes"] / sp_res["peak_rss_bytes"]}}


def print_scale(res: dict) -> None:
    s, sp, rat = res["sigil"], res["splink"], res["ratios"]
    for r in (s, sp):
        r["peak_gib"] = r["peak_rss_bytes"] / 2**30
    print(f"\ngenerated: {res['people']:,} people, {s['records']:,} records, {sp['true_pairs']:,} true pairs "
          f"(sigil generate {res['generate_seconds']:.1f} s, not counted); one run each, separate processes")
    print(table([s, sp], COLUMNS + [("process_seconds", "{:.1f}", "process s"),
                                    ("peak_gib", "{:.2f}", "peak GiB"),
                                    ("load_average_after", "{:.1f}", "load")]))
    print(f"ratio: seconds sigil / Splink {rat['seconds_sigil_over_splink']:.2f}x "
          f"(without sigil's quality stages {rat['seconds_without_quality_sigil_over_splink']:.2f}x; whole processes "
          f"{rat['process_seconds_sigil_over_splink']:.2f}x); peak memory {rat['peak_rss_sigil_over_splink']:.1f}x; "
          f"sigil - Splink: F1 {rat['f1_sigil_minus_splink']:+.4f}, cluster F1 {rat['cluster_f1_sigil_minus_splink']:+.4f}, "
          f"B3 F1 {rat['bcubed_f1_sigil_minus_splink']:+.4f}, block R {rat['blocking_recall_sigil_minus_splink']:+.4f}")
    print(f"sigil stages (s): {stages_text(s['stage_seconds'])}; of these its quality metrics {s['quality_seconds']:.2f}")
    print(f"Splink stages (s): {stages_text(sp['stage_seconds'])}; CSV read (not in 'seconds') {sp['read_seconds']:.2f}")
    print(check_text(s))


# ================================================================ main

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", help=f"comma-separated, of {', '.join(DATASETS)} "
                                      "(default all three; none with --generated)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per data set after one warm-up (median)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with febrl/ and abt_buy/")
    p.add_argument("--generated", type=int, metavar="N", help="scale mode: N generated people, one run each")
    p.add_argument("--sigil-conf", type=Path, default=ROOT / "conf" / "demo.yaml",
                   help="scale mode: sigil's configuration (its generator writes the data); "
                        "conf/demo_rules.yaml blocks by rules as Splink does")
    p.add_argument("--sigil-set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra override for sigil's run in scale mode (repeatable)")
    p.add_argument("--workdir", type=Path, help="keep sigil's outputs and the generated data here "
                                                "(default: a temporary folder, removed)")
    p.add_argument("--json", type=Path, help="write all results as JSON here")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.generated is not None and args.generated < 1:
        p.error("--generated must be >= 1")
    if args.sigil_set and args.generated is None:
        p.error("--sigil-set applies to scale mode (--generated N) only")
    if args.datasets is None:
        args.datasets = "" if args.generated else ",".join(DATASETS)
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in names if d not in DATASETS]
    if unknown:
        p.error(f"unknown data set(s) {unknown}; choose from {', '.join(DATASETS)}")
    args.data = args.data.resolve()

    work = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="sigil-er-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results, generated, session_seconds = [], None, None
    try:
        if names:
            from sigil.jobs.spark.session import spark_session
            from sigil.schemas.config import load_config

            first = ROOT / DATASETS[names[0]]
            t0 = time.perf_counter()
            spark = spark_session(load_config(first, sigil_overrides(first, args.data, work / names[0])).spark)
            session_seconds = time.perf_counter() - t0
            log(f"spark session {session_seconds:.1f} s")
            for name in names:
                s = sigil_dataset(spark, name, args, work)
                r = splink_dataset(name, args)
                r["mode"] = s["mode"]
                results.append({"dataset": name, "sigil": s, "splink": r, "ratios": ratios(s, r)})
                print_dataset(name, s, r, results[-1]["ratios"])
                sys.stdout.flush()
            spark.stop()
        if args.generated:
            generated = scale(args, work)
            print_scale(generated)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    if args.json:
        out = {"benchmark": "er_benchmark", "argv": sys.argv, "repeat": args.repeat,
               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version()},
               "versions": {k: metadata.version(k) for k in ("sigil", "pyspark", "splink", "duckdb", "pandas",
                                                               "pyarrow")},
               "spark_session_seconds": session_seconds, "datasets": results, "generated": generated}
        args.json.write_text(json.dumps(out, indent=2, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
