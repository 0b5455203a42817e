"""The graph chain: [graph-generate ->] graph-ingest -> graph-index -> communities.

``sigil graph --conf FILE`` runs it in one Spark session (starting with graph-generate
when the configuration has a ``graph_generate`` section, as conf/graph_demo.yaml does) and
prints a summary: the graph, the index, the seed queries' quality and latency, and the
whole-graph communities' agreement with the ground truth where there is one.
"""

from __future__ import annotations

from sigil.jobs import er
from sigil.schemas.config import load_config

STAGES = ("graph_generate", "graph_ingest", "graph_index", "communities")


def main(conf, overrides=(), strict: bool = False, quiet: bool = False, start: str = "graph_generate") -> dict:
    config = load_config(conf, overrides)
    stages = STAGES[STAGES.index(start):]
    if config.graph_generate is None and stages[0] == "graph_generate":
        stages = stages[1:]
    manifests = er.run(config, stages, strict, quiet)
    print(summary(manifests))
    return manifests


def summary(manifests: dict) -> str:
    rows = []
    metric = lambda stage, *keys: _dig(manifests.get(stage, {}).get("metrics", {}), keys)  # noqa: E731
    rows += [("vertices", metric("graph_ingest", "vertices")), ("edges", metric("graph_ingest", "edges")),
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
             ("whole-graph NMI", metric("communities", "whole_graph", "nmi")),
             ("whole-graph adjusted Rand", metric("communities", "whole_graph", "ari"))]
    rows = [(k, f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in rows if v is not None]
    rows += [(f"time {stage}", f"{m['timings']['total']:.1f} s") for stage, m in manifests.items() if stage != "seconds"]
    rows.append(("time total", f"{manifests['seconds']:.1f} s"))
    width = max(len(k) for k, _ in rows)
    output = next(m for k, m in manifests.items() if k != "seconds")["config"]["output"]
    return "\n".join(["", "sigil graph summary", *[f"  {k:<{width}}  {v}" for k, v in rows],
                      f"  outputs under {output}/"])


def _dig(tree: dict, keys: tuple):
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


if __name__ == "__main__":  # spark-submit jobs/graph.py --conf FILE
    import sys

    from sigil.cli import main as cli
    sys.exit(cli(["graph", *sys.argv[1:]]))
