"""``sigil <job> --conf FILE [--set key=value ...] [--strict]``: run a job on embedded Spark.

The same job modules run on a cluster with ``spark-submit jobs/<job>.py --conf FILE``, and
the chains with ``spark-submit sigil/cli.py er --conf FILE``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

BEAM_JOBS = ("ingest", "block", "match")  # jobs with a Beam pipeline too (pipelines/): --engine beam

JOBS = {
    "generate": "generate sample person records with duplicates and ground truth",
    "ingest": "read record sources, validate, normalise, quarantine bad rows (--engine spark|beam)",
    "block": "MinHash-LSH blocking: candidate record pairs (--engine spark|beam)",
    "cluster": "connected components of the matches: entity ids",
    "match": "compare candidate pairs, train or load a match model, score every pair (--engine spark|beam: scoring)",
    "graph-generate": "generate a graph with planted communities, ground truth and seed queries",
    "graph-ingest": "edge list (+ vertex table) -> vertex dictionary, merged edges, graph statistics",
    "graph-index": "neighbourhood MinHash signatures of every vertex and their LSH index",
    "communities": "batch seed queries over the LSH index, and whole-graph communities",
    "ppr-index": "personalized PageRank: random-walk fingerprints of every vertex (PowerWalk)",
    "ppr-query": "personalized PageRank: a batch of queries answered from the fingerprints, top k each",
    "interactions-generate": "generate a synthetic interaction log with latent communities and power-law activity",
    "interactions-ingest": "interaction log -> user and item dictionaries, merged interactions, train/test split",
    "graphhash": "GraphHash: embedding rows shared by the clusters of the user-item graph, and hashing baselines",
    "hqi-generate": "HQI: generate entities with vectors and attributes, and workloads of hybrid queries",
    "hqi-index": "HQI: lay the vectors out for a training workload (qd-tree leaves, k-means clusters)",
    "hqi-query": "HQI: a batch of hybrid (vector + predicate) queries, k nearest each (--set hqi.engine=spark)",
    "nlsh-train": "fine-tune the record encoder as a neural LSH function from labelled pairs or a match rule",
    "nlsh-block": "neural-LSH blocking: record embeddings -> top-k or hyperplane-LSH candidate pairs",
    "er": "the whole chain: ingest -> block -> match -> cluster, with a summary (--from STAGE)",
    "graph": "the graph chain: [graph-generate ->] graph-ingest -> graph-index -> communities [-> ppr-index -> "
             "ppr-query], with a summary",
    "demo": "generate -> ingest -> block -> match -> cluster on generated data, with a summary",
    "docs": "build the Data Docs site of the outputs' data-quality project: every suite, each one's latest results",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sigil", description="Entity resolution and graph analytics on Spark and Beam.")
    sub = p.add_subparsers(dest="job", metavar="<job>", required=True)
    for name, help_text in JOBS.items():
        j = sub.add_parser(name, help=help_text, description=help_text)
        j.add_argument("--conf", required=name != "demo", help="YAML configuration file")
        j.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a configuration value, e.g. --set block.lsh.threshold=0.4")
        j.add_argument("--strict", action="store_true", help="fail on any quarantined row, naming file, line, reason")
        j.add_argument("--quiet", action="store_true", help="no progress messages")
        if name in BEAM_JOBS:
            j.add_argument("--engine", choices=("spark", "beam"), default="spark")
        if name == "graph":
            j.add_argument("--from", dest="start", choices=("graph_generate", "graph_ingest", "graph_index",
                                                            "communities", "ppr_index", "ppr_query"),
                           default="graph_generate",
                           help="resume the chain at this stage, reading the earlier stages' outputs")
        if name == "er":
            j.add_argument("--from", dest="start", choices=("ingest", "block", "match", "cluster"), default="ingest",
                           help="resume the chain at this stage, reading the earlier stages' outputs")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from sigil.run import StrictError, configure_logging
    from sigil.schemas.config import ConfigError, load_config
    from sigil.transforms.records import InputError

    configure_logging(args.quiet)
    try:
        if args.job in ("demo", "er", "graph"):
            from sigil import chains

            start = {"start": args.start} if args.job != "demo" else {}
            getattr(chains, args.job)(args.conf, args.set, args.strict, args.quiet, **start)
            return 0
        config = load_config(args.conf, args.set)
        if args.job == "docs":
            from sigil.quality import docs
            print(docs(config))
            return 0
        if getattr(args, "engine", "spark") == "beam":
            pipeline = importlib.import_module(f"sigil.pipelines.{args.job}")
            manifest = pipeline.run(config, strict=args.strict, quiet=args.quiet)
        else:
            from sigil.jobs.spark.session import spark_session
            module = importlib.import_module(f"sigil.jobs.{args.job.replace('-', '_')}")
            manifest = module.run(spark_session(config.spark), config, strict=args.strict, quiet=args.quiet)
        print(json.dumps({"outputs": manifest["outputs"], "metrics": manifest["metrics"]}, indent=2))
        return 0
    except (ConfigError, InputError, StrictError) as err:
        print(f"sigil {args.job}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
