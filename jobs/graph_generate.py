"""Graph-generate job: a graph with planted communities, its ground truth and seed queries.

Each Spark task generates the edges started by one chunk of vertices
(transforms/graphgen.py), so graphs of many millions of edges stream to disk.

Outputs under ``<output>/graph_generate/``: ``edges`` (Parquet ``src, dst``: external
ids), ``vertices`` (``id, community``: every vertex with its planted community),
``queries`` (``query_id, seeds, size, community``: seeds from one community, its size as
the target) and ``manifest.json``. ``graph-ingest`` reads them with ``edges.format:
parquet`` and a vertex table whose ``community_column`` is ``community``.

Run: ``sigil graph-generate --conf FILE`` or ``spark-submit jobs/graph_generate.py --conf FILE``.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from sigil.jobs.spark.io import write_table
from sigil.jobs.spark.session import job_run
from sigil.schemas.config import SigilConfig
from sigil.transforms.graphgen import Plan, seed_queries
from sigil.transforms.records import InputError


def plan_of(config: SigilConfig) -> Plan:
    g = config.graph_generate
    return Plan.make(g.vertices, g.average_degree, g.max_degree, g.min_community, g.max_community, g.mixing,
                     g.degree_exponent, g.community_exponent, g.seed)


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    gen = config.graph_generate
    if gen is None:
        raise InputError("the configuration has no 'graph_generate' section")
    plan = plan_of(config)
    chunks = math.ceil(gen.vertices / gen.chunk_vertices)
    with job_run("graph_generate", spark, config, strict, quiet) as job:
        def edges(batches):
            for batch in batches:
                for chunk in batch.column("id").to_pylist():
                    first, last = chunk * gen.chunk_vertices, min((chunk + 1) * gen.chunk_vertices, gen.vertices)
                    src, dst = plan.edges(chunk, first, last)
                    yield pa.RecordBatch.from_pydict({"src": plan.external_ids(src), "dst": plan.external_ids(dst)})

        def vertices(batches):
            for batch in batches:
                for chunk in batch.column("id").to_pylist():
                    v = np.arange(chunk * gen.chunk_vertices, min((chunk + 1) * gen.chunk_vertices, gen.vertices))
                    yield pa.RecordBatch.from_pydict({"id": plan.external_ids(v), "community": plan.community_of(v)})

        tasks = spark.range(0, chunks, 1, chunks)
        with job.stage("edges"):
            tasks.mapInArrow(edges, "src long, dst long").write.parquet(job.path("edges"))
            n_edges = spark.read.parquet(job.path("edges")).count()
        with job.stage("vertices"):
            tasks.mapInArrow(vertices, "id long, community long").write.parquet(job.path("vertices"))
        with job.stage("queries"):
            write_table(pa.table(seed_queries(plan, gen.queries, gen.seeds_per_query, gen.seed)), job.path("queries"))
        job.manifest["outputs"] = {"edges": n_edges, "vertices": gen.vertices, "queries": gen.queries}
        job.manifest["metrics"] = {"communities": len(plan.community_starts) - 1,
                                   "mean_degree": 2 * n_edges / gen.vertices}
        job.log(f"{gen.vertices} vertices, {n_edges} edges, {len(plan.community_starts) - 1} communities, "
                f"{gen.queries} queries")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/graph_generate.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["graph-generate", *sys.argv[1:]]))
