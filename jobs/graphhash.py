"""graphhash job: embedding rows shared by the clusters of the user-item graph (GraphHash,
Wu et al., "GraphHash: Graph Clustering Enables Parameter Efficiency in Recommender
Systems", WWW 2025, arXiv:2412.17245; transforms/graphhash.py).

Reads interactions-ingest's outputs (``<output>/interactions/``: the ``users`` and
``items`` dictionaries and the ``train`` split). The train pairs form the bipartite graph
(``graphhash.edge_weight``: 1 per pair, its count or its summed weight), clustered by
modularity (Leiden by default) at the resolution whose cluster count meets
``graphhash.budget``, then landed on it exactly by merges and splits. A train split of at
most ``graphhash.max_edges`` pairs is read and clustered on the driver; a larger one stays
in Spark and is clustered through an edge sample of about that size, extended and refined
over every pair (``graphhash.clustering``, jobs/spark/sampled_clustering.py).

``graphhash.variant`` is written to ``mapping/`` and each of ``graphhash.baselines`` to
``baselines/``, all under the same budget. Users and items without a train interaction
(cold) get the hash bucket of their variant's fallback range (``cold_buckets``): a
training loop maps any id it meets later the same way (``transforms.graphhash.hash_bucket``
over the ranges the manifest gives).

Outputs under ``<output>/graphhash/``: ``mapping`` (schemas.datasets.GRAPHHASH_MAPPING),
``baselines`` (GRAPHHASH_BASELINES), ``bucket_sizes`` (GRAPHHASH_BUCKET_SIZES: users and items per
row of every variant) and ``manifest.json``: per variant the tables' rows, the rows used,
the fallback ranges, the bucket-size spread and, for the graph variants, the resolution,
the modularity and the clusterings tried, with seconds per stage.

Run: ``sigil graphhash --conf FILE`` or ``spark-submit jobs/graphhash.py --conf FILE``.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from pyspark.sql import functions as F

from sigil.jobs.spark.io import write_table
from sigil.jobs.spark.sampled_clustering import SampledGraph
from sigil.jobs.spark.session import job_run
from sigil.run import previous_manifest
from sigil.schemas import datasets
from sigil.schemas.config import GraphHashConfig, SigilConfig
from sigil.transforms.graphhash import VARIANTS, Budget, Buckets
from sigil.transforms.interactions import biadjacency
from sigil.transforms.records import InputError, open_input


def _dataset(path: str):
    fs, root = open_input(path)
    return pads.dataset(root, filesystem=fs, format="parquet")


def dictionary(path: str, dense: str, name: str) -> tuple[pa.Array, np.ndarray]:
    """External ids in dense-id order, and each entity's train degree."""
    table = _dataset(path).to_table(columns=[dense, name, "train_degree"]).sort_by(dense)
    if not np.array_equal(table[dense].to_numpy(), np.arange(table.num_rows)):
        raise InputError(f"{path}: the dense ids are not 0..{table.num_rows - 1}; run interactions-ingest again")
    return table[name].combine_chunks(), table["train_degree"].to_numpy()


def train_graph(spark, path: str, shape: tuple[int, int], cfg: GraphHashConfig):
    """The train pairs as a (users x items) biadjacency read on the driver, or, above
    ``graphhash.max_edges`` pairs (or when asked), as a ``SampledGraph`` left in Spark; and
    the pairs."""
    data = _dataset(path)
    pairs = data.count_rows()
    column = {"binary": [], "count": ["count"], "weight": ["weight"]}[cfg.edge_weight]
    sampled = cfg.clustering == "sampled" or (cfg.clustering == "auto" and pairs > cfg.max_edges)
    if sampled:
        edges = spark.read.parquet(path).select("uid", "iid", (F.col(column[0]) if column else F.lit(1.0)).alias("w"))
        return SampledGraph(edges, shape, cfg.max_edges, seed=cfg.seed, rounds=cfg.refine_rounds), pairs
    if pairs > cfg.max_edges:
        raise InputError(f"{path} holds {pairs} train pairs, more than graphhash.max_edges={cfg.max_edges} with "
                         "graphhash.clustering=driver: raise the limit if the driver has about 100 bytes per pair, "
                         "or cluster through a sample (clustering: sampled or auto)")
    table = data.to_table(columns=["uid", "iid", *column])
    weight = table[column[0]].to_numpy().astype(np.float64) if column else None
    return biadjacency(table["uid"].to_numpy(), table["iid"].to_numpy(), weight, shape=shape), pairs


def mapping_table(m: Buckets, users: pa.Array, items: pa.Array, cold: dict) -> pa.Table:
    """GRAPHHASH_MAPPING rows of every user, then every item."""
    shared = len(m.tables) == 1
    parts = []
    for side, ids, bucket, bucket2 in (("user", users, m.user, m.user2), ("item", items, m.item, m.item2)):
        n = len(ids)
        parts.append(pa.table({
            "entity_type": pa.array([side] * n, pa.string()), "id": ids.cast(pa.string()),
            "dense_id": np.arange(n, dtype=np.int64),
            "table": np.full(n, 0 if shared or side == "user" else 1, np.int32), "bucket": bucket.astype(np.int64),
            "bucket2": pa.nulls(n, pa.int64()) if bucket2 is None else pa.array(bucket2, pa.int64()),
            "cold": cold[side]}, schema=datasets.GRAPHHASH_MAPPING))
    return pa.concat_tables(parts)


def bucket_sizes(m: Buckets) -> pa.Table:
    """GRAPHHASH_BUCKET_SIZES: the users and items of each row of each table (first rows)."""
    if len(m.tables) == 1:
        per_table = [(0, m.tables[0], m.user, m.item)]
    else:
        per_table = [(0, m.tables[0], m.user, None), (1, m.tables[1], None, m.item)]
    parts = []
    for table, rows, user, item in per_table:
        users, items = (np.zeros(rows, np.int64) if b is None else np.bincount(b, minlength=rows) for b in (user, item))
        parts.append(pa.table({"variant": pa.array([m.variant] * rows, pa.string()),
                               "table": np.full(rows, table, np.int32), "bucket": np.arange(rows, dtype=np.int64),
                               "users": users, "items": items}, schema=datasets.GRAPHHASH_BUCKET_SIZES))
    return pa.concat_tables(parts)


def summary(m: Buckets, sizes: pa.Table, seconds: float) -> dict:
    """A variant's manifest entry."""
    total = pc.add(sizes["users"], sizes["items"]).to_numpy()
    report = {k: (list(v) if isinstance(v, tuple) else v) for k, v in m.report.items()}
    return {**report, "tables": list(m.tables), "seconds": round(seconds, 3),
            "fallback": {side: [list(r) if r else None for r in ranges] for side, ranges in m.fallback.items()},
            "bucket_size": {"min": int(total.min()), "median": float(np.median(total)), "max": int(total.max()),
                            "empty_rows": int((total == 0).sum())}}


def options(variant: str, cfg: GraphHashConfig) -> dict:
    """The settings a variant takes."""
    out = {"seed": cfg.seed}
    if variant in ("graphhash", "double_graphhash", "frequency_hybrid"):
        out.update(algorithm=cfg.algorithm, max_clusterings=cfg.max_clusterings)
    if variant in ("double_graphhash", "double"):
        out["hash_share"] = cfg.hash_share
    if variant in ("frequency_hybrid", "frequency"):
        out["frequent_share"] = cfg.frequent_share
    return out


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    cfg = config.graphhash
    if cfg is None:
        raise InputError("the configuration has no 'graphhash' section")
    ingest = previous_manifest(config, "interactions", "interactions-ingest")
    root = f"{config.output.rstrip('/')}/interactions"
    budget = Budget(**{k: v for k, v in cfg.budget.model_dump().items() if v is not None})
    variants = list(dict.fromkeys([cfg.variant, *cfg.baselines]))
    with job_run("graphhash", spark, config, strict, quiet) as job:
        with job.stage("graph"):
            users, user_degree = dictionary(f"{root}/users", "uid", "user")
            items, item_degree = dictionary(f"{root}/items", "iid", "item")
            graph, pairs = train_graph(spark, f"{root}/train", (len(users), len(items)), cfg)
            cold = {"user": user_degree == 0, "item": item_degree == 0}
        try:
            asked = budget.tables(len(users), len(items))
        except ValueError as err:
            raise InputError(f"graphhash.budget: {err} ({len(users)} users, {len(items)} items)") from None
        metrics, baselines, sizes = {}, [], []
        try:
            for variant in variants:
                with job.stage(variant):
                    t0 = time.perf_counter()
                    m = VARIANTS[variant](graph, users, items, budget, **options(variant, cfg))
                    seconds = time.perf_counter() - t0
                    table = mapping_table(m, users, items, cold)
                    size = bucket_sizes(m)
                    sizes.append(size)
                    metrics[variant] = summary(m, size, seconds)
                    if variant == cfg.variant:
                        write_table(table, job.path("mapping"))
                    else:
                        variant_column = pa.array([variant] * table.num_rows, pa.string())
                        baselines.append(table.add_column(0, "variant", variant_column))
        finally:
            if isinstance(graph, SampledGraph):
                graph.close()
        with job.stage("write"):
            n_baselines = write_table(pa.concat_tables(baselines) if baselines else
                                      datasets.GRAPHHASH_BASELINES.empty_table(), job.path("baselines"))
            write_table(pa.concat_tables(sizes), job.path("bucket_sizes"))
        chosen = metrics[cfg.variant]
        job.manifest["inputs"] = {"users": len(users), "items": len(items), "train_pairs": pairs,
                                  "train": ingest["outputs"]["train"]}
        job.manifest["outputs"] = {"mapping": len(users) + len(items), "baselines": n_baselines,
                                   "bucket_sizes": sum(t.num_rows for t in sizes)}
        job.manifest["metrics"] = {
            "variant": cfg.variant, "budget": cfg.budget.model_dump(exclude_none=True),
            "rows": sum(chosen["tables"]), "rows_used": sum(chosen["used"]),
            "budget_met": tuple(chosen["tables"]) == asked,
            "cold": {"users": int(cold["user"].sum()), "items": int(cold["item"].sum())},
            "compression": (len(users) + len(items)) / sum(chosen["tables"]), "variants": metrics}
        job.log(f"{cfg.variant}: {len(users)} users and {len(items)} items in {sum(chosen['tables'])} rows "
                f"({job.manifest['metrics']['compression']:.1f}x fewer)"
                + (f", modularity {chosen['modularity']:.3f} at resolution {chosen['resolution']:.3g}"
                   if "modularity" in chosen else ""))
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/graphhash.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["graphhash", *sys.argv[1:]]))
