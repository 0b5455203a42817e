"""The entity-resolution chain: ingest -> block -> match -> cluster, in one Spark session.

``sigil er --conf FILE`` runs it on a user's data; ``sigil demo`` runs it after generating
person records (conf/demo.yaml). Each stage is also a job of its own (``sigil match``...)
reading the previous stage's outputs, so a chain can be resumed from any stage
(``--from match``). A summary with the counts, the time per stage and, with ground truth,
the quality of every stage is printed at the end.
"""

from __future__ import annotations

import importlib
import time

from sigil.jobs.session import spark_session
from sigil.schemas.config import ConfigError, SigilConfig, load_config

STAGES = ("ingest", "block", "match", "cluster")


SECTIONS = {"graph_ingest": "graph"}  # a stage's configuration section, where the names differ


def run(config: SigilConfig, stages=STAGES, strict: bool = False, quiet: bool = False, spark=None) -> dict:
    """Run ``stages`` (job modules) in order; returns their manifests by stage name."""
    missing = [s for s in stages if s != "generate" and getattr(config, SECTIONS.get(s, s)) is None]
    if missing:
        raise ConfigError(f"the configuration has no section for stage(s) {missing}")
    spark = spark or spark_session(config.spark)
    manifests, t0 = {}, time.perf_counter()
    for stage in stages:
        job = importlib.import_module(f"sigil.jobs.{stage}")
        manifests[stage] = job.run(spark, config, strict=strict, quiet=quiet)
    manifests["seconds"] = time.perf_counter() - t0
    return manifests


def main(conf, overrides=(), strict: bool = False, quiet: bool = False, start: str = "ingest",
         generate: bool = False) -> dict:
    config = load_config(conf, overrides)
    stages = (("generate",) if generate else ()) + STAGES[STAGES.index(start):]
    manifests = run(config, stages, strict, quiet)
    print(summary(manifests))
    return manifests


def _fmt(value, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def summary(manifests: dict) -> str:
    """Counts, quality where ground truth was given, and time per stage."""
    rows = []
    metric = lambda stage, key: manifests.get(stage, {}).get("metrics", {}).get(key)  # noqa: E731
    if "generate" in manifests:
        rows += [("records generated", metric("generate", "records")),
                 ("true matching pairs", metric("generate", "truth_pairs"))]
    if "ingest" in manifests:
        rows += [("records ingested", manifests["ingest"]["outputs"]["records"]),
                 ("rows quarantined", metric("ingest", "quarantined_rows"))]
    if "block" in manifests:
        rows += [("candidate pairs", metric("block", "candidate_pairs")),
                 ("pair completeness", metric("block", "pair_completeness")),
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
    rows = [(k, _fmt(v, 6 if k == "reduction ratio" else 4)) for k, v in rows if v is not None]
    rows += [(f"time {stage}", f"{m['timings']['total']:.1f} s") for stage, m in manifests.items() if stage != "seconds"]
    rows.append(("time total", f"{manifests['seconds']:.1f} s"))
    width = max(len(k) for k, _ in rows)
    output = next(m for k, m in manifests.items() if k != "seconds")["config"]["output"]
    return "\n".join(["", "sigil summary", *[f"  {k:<{width}}  {v}" for k, v in rows], f"  outputs under {output}/"])


if __name__ == "__main__":  # spark-submit jobs/er.py --conf FILE
    import sys

    from sigil.cli import main as cli
    sys.exit(cli(["er", *sys.argv[1:]]))
