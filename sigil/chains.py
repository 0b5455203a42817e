"""Chains of jobs in one Spark session, each with a summary: the entity-resolution chain
(``sigil er``: ingest -> block -> match -> cluster), the demo (``sigil demo``: generate
first, on conf/demo.yaml) and the graph chain (``sigil graph``: [graph-generate ->]
graph-ingest -> graph-index -> communities [-> ppr-index [-> ppr-query]]).

Each stage is also a job of its own (``sigil match``...) reading the previous stage's
outputs, so a chain can be resumed from any stage (``--from match``). The jobs are loaded
by name, ``sigil.jobs.<stage>``: a chain runs jobs, no job runs another.
"""

from __future__ import annotations

import importlib
import time
from importlib import resources
from pathlib import Path

from sigil.schemas.config import ConfigError, SigilConfig, load_config

ER_STAGES = ("ingest", "block", "match", "cluster")
GRAPH_STAGES = ("graph_generate", "graph_ingest", "graph_index", "communities", "ppr_index", "ppr_query")
# a stage's configuration section, where the names differ
SECTIONS = {"graph_ingest": "graph", "ppr_index": "ppr", "ppr_query": "ppr"}


def demo_conf() -> Path:
    """conf/demo.yaml as installed with the package (``sigil.conf``), or in the checkout."""
    return Path(str(resources.files("sigil.conf") / "demo.yaml"))


def run(config: SigilConfig, stages=ER_STAGES, strict: bool = False, quiet: bool = False, spark=None) -> dict:
    """Run ``stages`` (job modules) in order; returns their manifests by stage name."""
    missing = [s for s in stages if s != "generate" and getattr(config, SECTIONS.get(s, s)) is None]
    if missing:
        raise ConfigError(f"the configuration has no section for stage(s) {missing}")
    if spark is None:
        from sigil.jobs.spark.session import spark_session
        spark = spark_session(config.spark)
    manifests, t0 = {}, time.perf_counter()
    for stage in stages:
        job = importlib.import_module(f"sigil.jobs.{stage}")
        manifests[stage] = job.run(spark, config, strict=strict, quiet=quiet)
    manifests["seconds"] = time.perf_counter() - t0
    return manifests


def er(conf, overrides=(), strict: bool = False, quiet: bool = False, start: str = "ingest",
       generate: bool = False) -> dict:
    """The entity-resolution chain from ``start`` (after generating sample records with
    ``generate``); prints its summary."""
    config = load_config(conf, overrides)
    stages = (("generate",) if generate else ()) + ER_STAGES[ER_STAGES.index(start):]
    manifests = run(config, stages, strict, quiet)
    print(er_summary(manifests))
    return manifests


def demo(conf=None, overrides=(), strict: bool = False, quiet: bool = False) -> dict:
    """The main job: generate person records, then the whole chain, compared at every stage
    with the generator's ground truth (conf/demo.yaml unless ``conf``)."""
    return er(conf or demo_conf(), overrides, strict, quiet, generate=True)


def graph(conf, overrides=(), strict: bool = False, quiet: bool = False, start: str = "graph_generate") -> dict:
    """The graph chain from ``start`` (graph-generate only when the configuration has a
    ``graph_generate`` section, the personalized PageRank tail only with a ``ppr`` section,
    ppr-query only with its queries); prints its summary."""
    config = load_config(conf, overrides)
    stages = GRAPH_STAGES[GRAPH_STAGES.index(start):]
    if config.graph_generate is None and stages[0] == "graph_generate":
        stages = stages[1:]
    tail = {"ppr_index": config.ppr is not None, "ppr_query": config.ppr is not None and config.ppr.queries is not None}
    stages = stages[:1] + tuple(s for s in stages[1:] if tail.get(s, True))  # the first runs, or says what it lacks
    manifests = run(config, stages, strict, quiet)
    print(graph_summary(manifests))
    return manifests


def er_summary(manifests: dict) -> str:
    """Counts, quality where ground truth was given, and time per stage."""
    metric = lambda stage, key: manifests.get(stage, {}).get("metrics", {}).get(key)  # noqa: E731
    rows = []
    if "generate" in manifests:
        rows += [("records generated", metric("generate", "records")),
                 ("true matching pairs", metric("generate", "truth_pairs"))]
    if "ingest" in manifests:
        rows += [("records ingested", manifests["ingest"]["outputs"]["records"]),
                 ("rows quarantined", metric("ingest", "quarantined_rows"))]
    if "block" in manifests:
        rows += [("candidate pairs", metric("block", "candidate_pairs")),
                 ("pair completeness", metric("block", "pair_completeness")),
                 ("true pairs lost to the bucket cap", metric("block", "cap_lost_true_pairs")),
                 ("reduction ratio", metric("block", "reduction_ratio"))]
    if "match" in manifests:
        rows += [("matches", metric("match", "matches")),
                 ("match threshold", metric("match", "threshold")),
                 ("match precision", metric("match", "precision")),
                 ("match recall", metric("match", "recall")),
                 ("match F1", metric("match", "f1"))]
    if "cluster" in manifests:
        rows += [("entities", metric("cluster", "entities")),
                 ("largest entity", metric("cluster", "largest")),
                 ("cluster pairwise F1", metric("cluster", "cluster_f1")),
                 ("B-cubed F1", metric("cluster", "bcubed_f1"))]
    rows = [(k, f"{v:.{6 if k == 'reduction ratio' else 4}f}" if isinstance(v, float) else str(v))
            for k, v in rows if v is not None]
    return _table("sigil summary", rows, manifests)


def graph_summary(manifests: dict) -> str:
    """The graph, the index, the seed queries' quality and latency, the whole-graph
    communities' agreement with the ground truth where there is one, and the personalized
    PageRank fingerprints and queries (their error against exact PPR where checked)."""
    metric = lambda stage, *keys: _dig(manifests.get(stage, {}).get("metrics", {}), keys)  # noqa: E731
    rows = [("vertices", metric("graph_ingest", "vertices")), ("edges", metric("graph_ingest", "edges")),
            ("components", metric("graph_ingest", "components")),
            ("mean degree", metric("graph_ingest", "degree", "mean")),
            ("LSH bands x rows", None if "graph_index" not in manifests else
             f"{metric('graph_index', 'bands')} x {metric('graph_index', 'rows')}"),
            ("LSH index rows", metric("graph_index", "index_rows")),
            ("seed queries", metric("communities", "seed_queries", "queries")),
            ("mean candidates per query", metric("communities", "seed_queries", "mean_candidates")),
            ("seed-query recall area", metric("communities", "seed_queries", "recall_area")),
            ("seconds per query (batch)", metric("communities", "seed_queries", "seconds_per_query")),
            ("whole-graph communities", metric("communities", "whole_graph", "communities")),
            ("whole-graph weights", metric("communities", "whole_graph", "weights")),
            ("whole-graph NMI", metric("communities", "whole_graph", "nmi")),
            ("whole-graph adjusted Rand", metric("communities", "whole_graph", "ari")),
            ("PPR fingerprint rows", _dig(manifests, ("ppr_index", "outputs", "fingerprints"))),
            ("PPR mean walk length", metric("ppr_index", "mean_walk_length")),
            ("PPR queries", metric("ppr_query", "queries")),
            ("PPR seconds per query (batch)", metric("ppr_query", "seconds_per_query")),
            ("PPR mean L1 vs exact", metric("ppr_query", "exactness", "mean_l1")),
            ("PPR precision@k vs exact", metric("ppr_query", "exactness", "precision_at_k"))]
    rows = [(k, f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in rows if v is not None]
    return _table("sigil graph summary", rows, manifests)


def _table(title: str, rows: list[tuple[str, str]], manifests: dict) -> str:
    """``rows`` and the time of every stage, aligned, under ``title``."""
    rows = rows + [(f"time {stage}", f"{m['timings']['total']:.1f} s") for stage, m in manifests.items()
                   if stage != "seconds"]
    rows.append(("time total", f"{manifests['seconds']:.1f} s"))
    width = max(len(k) for k, _ in rows)
    output = next(m for k, m in manifests.items() if k != "seconds")["config"]["output"]
    return "\n".join(["", title, *[f"  {k:<{width}}  {v}" for k, v in rows], f"  outputs under {output}/"])


def _dig(tree: dict, keys: tuple):
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree
