"""A graph's random-walk transitions as Spark DataFrames, for graphs too large for a task to
hold: the arcs a walk may follow, their probabilities, and the stop mass of every vertex.

These are the distributed forms of ``transforms.ppr.Graph`` (its arcs, ``_edge_probability``
and ``_stop_mass``): graph-ingest's ``edges`` (schemas.datasets.EDGES, by vid, undirected
edges stored once) walked both ways when undirected, an edge of weight 0 never taken.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

CHECK_EVERY = 10  # stop-mass rounds between convergence checks (one Spark action each)
MAX_ROUNDS = 100_000


def arcs(edges: DataFrame, directed: bool) -> DataFrame:
    """``src, dst, weight`` of every arc: the edges, and undirected ones also reversed (a
    self-loop once, as ``Graph.from_edges`` walks it)."""
    out = edges.select("src", "dst", "weight")
    if directed:
        return out
    back = edges.where("src != dst").select(F.col("dst").alias("src"), F.col("src").alias("dst"), "weight")
    return out.unionByName(back)


def transition(edges: DataFrame, directed: bool, weighted: bool) -> DataFrame:
    """``src, dst, p``: the probability p of a step from src to dst, in proportion to the
    weights (``weighted``) or uniform over src's arcs; arcs of weight 0 are left out."""
    a = arcs(edges, directed)
    a = a.where("weight > 0") if weighted else a.withColumn("weight", F.lit(1.0))
    total = a.groupBy("src").agg(F.sum("weight").alias("total"))
    return a.join(total, "src").select("src", "dst", (F.col("weight") / F.col("total")).alias("p"))


def stop_mass(vertices: DataFrame, steps: DataFrame, alpha: float, tolerance: float = 1e-13) -> DataFrame:
    """``vid, m`` of every vertex: the probability that a walk from it stops before it jumps
    back from a dangling vertex, the fixed point of ``m = alpha + (1 - alpha) Q m`` (Q:
    ``steps``' probabilities), iterated from m = 1 until the sup-norm change bounds the
    error by ``tolerance`` (the map contracts by 1 - alpha), as ``transforms.ppr`` does in
    memory. One join per round; the change is checked every ``CHECK_EVERY`` rounds."""
    m = vertices.select("vid", F.lit(1.0).alias("m")).localCheckpoint()
    for done in range(0, MAX_ROUNDS, CHECK_EVERY):
        before = m
        for _ in range(CHECK_EVERY):
            spread = steps.join(m.withColumnRenamed("vid", "dst"), "dst").groupBy("src").agg(
                F.sum(F.col("p") * F.col("m")).alias("s"))
            m = vertices.select("vid").join(spread.withColumnRenamed("src", "vid"), "vid", "left").select(
                "vid", (alpha + (1 - alpha) * F.coalesce("s", F.lit(0.0))).alias("m"))
        m = m.localCheckpoint()
        change = m.join(before.withColumnRenamed("m", "was"), "vid").agg(F.max(F.col("was") - F.col("m"))).first()[0]
        # m falls from 1 monotonically: the change over the rounds bounds the last round's
        if (change or 0.0) * (1 - alpha) <= tolerance * alpha:
            return m
    return m
