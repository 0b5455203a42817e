"""The main job: generate -> ingest -> block on generated data, then a summary.

``sigil demo`` runs conf/demo.yaml; ``--conf`` and ``--set`` change it like any job.
"""

from __future__ import annotations

import time
from pathlib import Path

from sigil.jobs import block, generate, ingest
from sigil.jobs.session import spark_session
from sigil.schemas.config import load_config

DEFAULT_CONF = Path(__file__).resolve().parent.parent / "conf" / "demo.yaml"


def main(conf: str | None = None, overrides: list[str] = (), strict: bool = False, quiet: bool = False) -> dict:
    config = load_config(conf or DEFAULT_CONF, overrides)
    spark = spark_session(config.spark)
    manifests, t0 = {}, time.perf_counter()
    for name, job in (("generate", generate), ("ingest", ingest), ("block", block)):
        manifests[name] = job.run(spark, config, strict=strict, quiet=quiet)
    print(summary(manifests, time.perf_counter() - t0))
    return manifests


def summary(manifests: dict, seconds: float) -> str:
    g, i, b = (manifests[k] for k in ("generate", "ingest", "block"))
    m = b["metrics"]
    rows = [
        ("records generated", g["metrics"]["records"]),
        ("true matching pairs", g["metrics"]["truth_pairs"]),
        ("records ingested", i["outputs"]["records"]),
        ("rows quarantined", i["metrics"]["quarantined_rows"]),
        ("LSH bands x rows", f"{m['bands']} x {m['rows']}"),
        ("candidate pairs", m["candidate_pairs"]),
        ("pair completeness", f"{m['pair_completeness']:.4f}"),
        ("pair quality", f"{m['pair_quality']:.4f}"),
        ("reduction ratio", f"{m['reduction_ratio']:.6f}"),
        ("candidates per record", f"{m['candidates_per_record']:.3f}"),
    ]
    rows += [(f"time {job}", f"{manifests[job]['timings']['total']:.1f} s") for job in manifests]
    rows.append(("time total", f"{seconds:.1f} s"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(["", "sigil demo summary", *[f"  {k:<{width}}  {v}" for k, v in rows],
                      f"  outputs under {b['config']['output']}/"])
