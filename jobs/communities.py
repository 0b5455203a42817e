"""Communities job: batch seed queries over the LSH index, and whole-graph communities.

Seed queries (``communities.queries``): each query's seeds (external ids) -> their vids ->
their LSH buckets -> the bucket mates, counted by shared buckets in one aggregation with the
seeds -> joined with the signatures -> hash-partitioned by query -> per partition
(``mapInArrow``): the ``max_candidates`` mates sharing most buckets kept, and every query's
community grown in one parallel numba pass (transforms/communities.py), optionally split
into sub-communities on the members' Jaccard graph.

Whole graph (``communities.whole_graph``): the graph's edges and/or the pairs of every
indexed bucket, weighted by the estimated Jaccard of the two neighbourhoods, form a
similarity graph; Leiden or Louvain (igraph, on the driver, up to ``max_local_edges``
edges) or connected components (distributed, any size) give every vertex a community.

Outputs under ``<output>/communities/``: ``members`` (schemas.datasets.COMMUNITY_MEMBERS),
``assignments`` (VERTEX_ASSIGNMENTS), ``quarantine`` and ``manifest.json``; where
graph-ingest found ground-truth communities, the seed queries' recall area and the whole
graph's NMI and adjusted Rand index.

A query row is answered or quarantined, never both: ``inputs.query_rows`` =
``metrics.seed_queries.queries`` + ``quarantined.queries``, each quarantined query one row
(source ``queries``) with one reason: those of reading the file, ``duplicate id``, or ``no
known seed vertex``. Each seed that is not a vertex of the graph is a row of its own
(source ``seeds``, ``unknown seed vertex: <seed>``, the query's id), counted in
``quarantined.seeds``; a query with some known seeds is answered with those. Query files
with no rows give no communities and a warning.

Run: ``sigil communities --conf FILE`` or ``spark-submit jobs/communities.py --conf FILE``.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sigil.jobs.spark.components import connected_components
from sigil.jobs.spark.io import quarantine_examples, read_input, spark_schema, write_parquet, write_table
from sigil.jobs.spark.parse import split_duplicates, staged_queries
from sigil.jobs.spark.session import job_run
from sigil.run import Run, previous_manifest
from sigil.schemas import datasets
from sigil.schemas.config import CommunitiesConfig, SigilConfig, WholeGraphConfig
from sigil.transforms.blockmodel import description_length
from sigil.transforms.communities import (CommunityIndex, agreement, cluster_graph, grow_batch, recall_area,
                                          subcommunities, top_candidates)
from sigil.transforms.graph import STAGED_QUERIES, input_columns, positional_header, queries_from_file
from sigil.transforms.lsh import bucket_pairs, buckets, jaccard_estimates, lsh_shape
from sigil.transforms.packing import from_list_array, unpack_rows
from sigil.transforms.records import InputError, list_files, open_input



def packed_signatures(sigs: DataFrame, num_perm: int) -> DataFrame:
    """``(vid, signature binary)``: the fixed-size lists packed for shuffles and numba."""

    def pack(batches):
        for b in batches:
            yield pa.RecordBatch.from_pydict({"vid": b.column("vid"),
                                              "signature": from_list_array(b.column("signature"), np.uint32)})

    schema = datasets.select(datasets.neighbourhood_signatures(num_perm), "vid", "signature")
    return sigs.select("vid", "signature").mapInArrow(pack, spark_schema(schema, packed=True))


def seed_rows(queries: DataFrame, vertices: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``(query_id, size, vid)`` of every known seed, and the quarantine rows: duplicate
    query ids and queries left without a known seed (source ``queries``), unknown seed
    vertices (source ``seeds``, one row per seed)."""
    kept, dupes = split_duplicates(queries, ["query_id"])
    row = F.to_json(F.struct("query_id", "seeds", "size")).alias("raw")
    seeds = kept.select("file", "line", "query_id", "size", F.explode("seeds").alias("vertex")).join(
        vertices.select("vertex", "vid"), "vertex", "left").persist(StorageLevel.MEMORY_AND_DISK)
    unknown = seeds.where("vid is null").select(F.lit("seeds").alias("source"), "file", "line", "query_id", F.concat(
        F.lit("unknown seed vertex: "), F.col("vertex")).alias("reason"), F.col("vertex").alias("raw"))
    known = seeds.where("vid is not null")
    empty = kept.join(known.select("query_id").distinct(), "query_id", "left_anti").select(
        "file", "line", "query_id", F.lit("no known seed vertex").alias("reason"), row)
    bad = dupes.select("file", "line", "query_id", "reason", row).unionByName(empty)
    quarantine = bad.select(F.lit("queries").alias("source"), "*").unionByName(unknown).select(
        "source", "file", "line", F.col("query_id").alias("id"), "reason", "raw")
    return known.select("query_id", "size", "vid").distinct(), quarantine


BROADCAST_ROWS = 5_000_000  # seed-bucket rows up to this are broadcast to the index, not shuffled with it


def candidates(seeds: DataFrame, index: DataFrame, bands: int) -> DataFrame:
    """``(query_id, vid, hits, size, is_seed)``: the seeds (``size`` set) and every bucket
    mate of them with the number of buckets it shares with the seeds, in one aggregation.
    A batch's seeds are few beside the index, so they travel to it (broadcast joins) unless
    the batch is very large."""
    seeds = seeds.persist(StorageLevel.MEMORY_AND_DISK)
    small = seeds.count() * bands <= BROADCAST_ROWS
    near = F.broadcast if small else (lambda frame: frame)
    buckets = index.join(near(seeds), "vid").select("query_id", "band", "key")
    mates = index.join(near(buckets), ["band", "key"]).select(
        "query_id", "vid", F.lit(1).alias("hits"), F.lit(None).cast("long").alias("size"), F.lit(False).alias("is_seed"))
    rows = seeds.select("query_id", "vid", F.lit(0).alias("hits"), "size", F.lit(True).alias("is_seed")).unionByName(mates)
    return rows.groupBy("query_id", "vid").agg(F.sum("hits").alias("hits"), F.max("size").alias("size"),
                                              F.max("is_seed").alias("is_seed"))


def by_query(frame: DataFrame, fn, schema: str, order: list, partitions: int | None = None) -> DataFrame:
    """``fn(table, query ids)`` over partitions that hold whole queries, each query's rows
    together and sorted by ``order``."""

    def run(batches):
        batches = list(batches)
        if batches:
            t = pa.Table.from_batches(batches)
            yield from fn(t, t.column("query_id").to_numpy(zero_copy_only=False))

    parts = frame.repartition(partitions, "query_id") if partitions else frame.repartition("query_id")
    return parts.sortWithinPartitions("query_id", *order).mapInArrow(run, schema)


#: Members as the tasks find them: before their names are joined, with the candidates their
#: query weighed.
MEMBERS = pa.schema([*(f for f in datasets.COMMUNITY_MEMBERS if f.name != "vertex"), pa.field("candidates", pa.int64())])


def grown(cands: DataFrame, signatures: DataFrame, com: CommunitiesConfig, num_perm: int,
          partitions: int) -> DataFrame:
    """Every query's community (MEMBERS rows), all queries of a partition in one pass."""
    ranking, threshold = com.ranking, com.subcommunities

    def grow(t: pa.Table, qid: np.ndarray):
        group = np.cumsum(np.r_[True, qid[1:] != qid[:-1]])
        keep = top_candidates(group, t.column("is_seed").to_numpy(zero_copy_only=False), t.column("hits").to_numpy(),
                              t.column("vid").to_numpy(), com.max_candidates)
        t, qid = t.filter(pa.array(keep)), qid[keep]
        starts = np.flatnonzero(np.r_[True, qid[1:] != qid[:-1]])
        offsets = np.r_[starts, len(qid)]
        sig = unpack_rows(t.column("signature").combine_chunks(), np.uint32, num_perm)
        sizes = t.column("size").to_numpy()[starts]  # a query's seeds sort first and carry its size
        q, row, score = grow_batch(sig, t.column("is_seed").to_numpy(zero_copy_only=False), offsets, sizes, ranking)
        rank = np.arange(len(q)) - np.searchsorted(q, q) + 1
        sub = np.full(len(q), -1, np.int32)
        if threshold is not None:
            bounds = np.r_[np.flatnonzero(np.r_[True, q[1:] != q[:-1]]), len(q)]
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                sub[lo:hi] = subcommunities(sig[row[lo:hi]], threshold)
        yield pa.RecordBatch.from_pydict({
            "query_id": pa.array(qid[starts][q], pa.string()), "rank": rank.astype(np.int32),
            "vid": t.column("vid").to_numpy()[row], "score": score, "is_seed": t.column("is_seed").to_numpy(
                zero_copy_only=False)[row],
            "subcommunity": pa.array(sub, mask=sub < 0) if threshold is not None else pa.nulls(len(q), pa.int32()),
            "candidates": np.diff(offsets)[q]})

    return by_query(cands.join(signatures, "vid"), grow, spark_schema(MEMBERS), [F.desc("is_seed"), "vid"], partitions)


#: MEMBERS with the members' names, as the in-memory index answers.
NAMED_MEMBERS = pa.schema([*MEMBERS, datasets.COMMUNITY_MEMBERS.field("vertex")])


def answer_queries(local: CommunityIndex, names: np.ndarray, com: CommunitiesConfig, qid: np.ndarray,
                   vid: np.ndarray, size: np.ndarray) -> pa.RecordBatch:
    """NAMED_MEMBERS rows of queries answered by the in-memory index: ``qid`` the query of
    each seed row, a query's rows together and sorted by vid, ``size`` its target size."""
    bounds = np.r_[np.flatnonzero(np.r_[True, qid[1:] != qid[:-1]]), len(qid)] if len(qid) else np.zeros(1, int)
    cols: dict = {k: [np.empty(0, t)] for k, t in (("query", np.int64), ("rank", np.int32), ("vid", np.int64),
                                                    ("score", np.float32), ("seed", bool), ("sub", np.int32),
                                                    ("candidates", np.int64))}
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        members, score, n = local.answer(vid[lo:hi], int(size[lo]), com.ranking)
        k = len(members)
        for key, value in (("query", np.full(k, lo)), ("rank", np.arange(1, k + 1, dtype=np.int32)),
                           ("vid", members), ("score", score), ("seed", np.arange(k) < hi - lo),
                           ("candidates", np.full(k, n, np.int64)),
                           ("sub", subcommunities(local.signatures[members], com.subcommunities)
                            if com.subcommunities is not None else np.full(k, -1, np.int32))):
            cols[key].append(value)
    flat = {key: np.concatenate(value) for key, value in cols.items()}
    return pa.RecordBatch.from_pydict({
        "query_id": pa.array(qid[flat["query"]], pa.string()), "rank": flat["rank"], "vid": flat["vid"],
        "score": flat["score"].astype(np.float32), "is_seed": flat["seed"],
        "subcommunity": pa.array(flat["sub"], pa.int32(), mask=flat["sub"] < 0),
        "candidates": flat["candidates"], "vertex": pa.array(names[flat["vid"]], pa.string())}, schema=NAMED_MEMBERS)


def answered(seeds: DataFrame, index, com: CommunitiesConfig, partitions: int) -> DataFrame:
    """Every query's community (NAMED_MEMBERS rows) from a broadcast ``(CommunityIndex,
    vertex names by vid)``: each task answers its queries in memory, and only the seeds
    travel (small graphs)."""

    def answer(t: pa.Table, qid: np.ndarray):
        local, names = index.value
        yield answer_queries(local, names, com, qid, t.column("vid").to_numpy(), t.column("size").to_numpy())

    return by_query(seeds, answer, spark_schema(NAMED_MEMBERS), ["vid"], partitions)


def seed_quality(members: DataFrame, truth: DataFrame) -> dict:
    """Mean recall area over the queries whose seeds' most common true community C is
    known: the members in rank order against C (transforms/communities.recall_area)."""
    sizes = truth.groupBy("community").agg(F.count("*").alias("community_size"))
    labelled = members.join(truth.select("vid", "community"), "vid", "left")
    by_seed = labelled.where("is_seed and community is not null").groupBy("query_id", "community").count()
    pick = Window.partitionBy("query_id").orderBy(F.desc("count"), "community")
    target = (by_seed.withColumn("_r", F.row_number().over(pick)).where("_r = 1")
              .select("query_id", F.col("community").alias("target")).join(
                  sizes.withColumnRenamed("community", "target"), "target"))
    rows = labelled.join(target, "query_id").select(
        "query_id", "rank", "community_size", (F.col("community") == F.col("target")).alias("hit"))

    def areas(t: pa.Table, qid: np.ndarray):
        hit = t.column("hit").fill_null(False).to_numpy(zero_copy_only=False)
        size = t.column("community_size").to_numpy()
        bounds = np.r_[np.flatnonzero(np.r_[True, qid[1:] != qid[:-1]]), len(qid)]
        yield pa.RecordBatch.from_pydict({"area": [recall_area(hit[a:b], size[a]) for a, b in zip(bounds[:-1], bounds[1:])]})

    per_query = by_query(rows, areas, "area double", ["rank"])
    row = per_query.agg(F.count("*"), F.mean("area")).first()  # driver-ok: one row
    return {"queries_with_truth": row[0], "recall_area": row[1]}


def vertex_names(path: str) -> np.ndarray:
    """The external ids by vid, read on the driver (small graphs only)."""
    import pyarrow.parquet as pq

    fs, root = open_input(path)
    t = pq.read_table(root, columns=["vid", "vertex"], filesystem=fs)
    names = np.empty(t.num_rows, dtype=object)
    names[t["vid"].to_numpy()] = t["vertex"].to_numpy(zero_copy_only=False)
    return names


def driver_queries(job: Run, com: CommunitiesConfig) -> pa.Table | None:
    """The query files parsed on the driver (``STAGED_QUERIES``), as ``staged_queries``
    parses them in tasks; None as soon as queries x ``max_candidates`` exceeds
    ``driver_batch`` (the batch goes to Spark)."""
    source, parts, rows = com.queries, [], 0
    for path in list_files(source.path):
        if input_columns(path, source) is None:
            continue
        for batch in queries_from_file(path, source, com.size):
            parts.append(batch)
            rows += batch.num_rows
            if rows * com.max_candidates > com.driver_batch:
                return None
    warning = positional_header("communities.queries", source)
    if warning:
        job.log(warning, logging.WARNING)
    if not rows:
        job.log(f"no queries in {source.path}: no communities grown", logging.WARNING)
    return pa.Table.from_batches(parts, STAGED_QUERIES)


def _query_json(query_id, seeds, size) -> str:
    """A query row as Spark's ``to_json(struct(query_id, seeds, size))`` writes it."""
    return json.dumps({"query_id": query_id, "seeds": seeds, "size": size}, ensure_ascii=False, separators=(",", ":"))


def driver_seeds(staged: pa.Table, names: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """``seed_rows`` on the driver (``names``: the external ids by vid): ``(query_id, vid,
    size)`` of every known seed, each query's rows together and sorted by vid, and the
    quarantine rows (QUARANTINE) with the same reasons: those of parsing, duplicate ids,
    queries with no known seed, unknown seeds."""
    bad = staged.filter(pc.is_valid(staged["reason"]))
    out = [pa.table({"source": pa.array(["queries"] * bad.num_rows, pa.string()), "file": bad["file"],
                     "line": bad["line"], "id": bad["query_id"], "reason": bad["reason"], "raw": bad["raw"]})]
    rows = sorted(staged.filter(pc.is_null(staged["reason"])).to_pylist(), key=lambda r: (r["file"], r["line"]))
    first, kept, rejected = {}, [], []
    for r in rows:  # the first of each id by (file, line) is kept
        here = f"{r['file']}:{r['line']}"
        at = first.setdefault(r["query_id"], here)
        if at == here:
            kept.append(r)
        else:
            rejected.append({**r, "source": "queries", "reason": f"duplicate id (first at {at})"})
    kept = pa.Table.from_pylist(kept, STAGED_QUERIES)
    row = np.repeat(np.arange(kept.num_rows), pc.list_value_length(kept["seeds"]).to_numpy())
    seeds = pc.list_flatten(kept["seeds"])
    vid = pc.index_in(seeds, value_set=pa.array(names, pa.string()))
    known = vid.is_valid().to_numpy(zero_copy_only=False)
    lost = kept.take(row[~known])
    out.append(pa.table({"source": pa.array(["seeds"] * len(lost), pa.string()), "file": lost["file"],
                         "line": lost["line"], "id": lost["query_id"],
                         "reason": pc.binary_join_element_wise("unknown seed vertex: ", seeds.filter(~known), ""),
                         "raw": seeds.filter(~known)}))
    hopeless = np.bincount(row[known], minlength=kept.num_rows) == 0
    rejected += [{**r, "source": "queries", "reason": "no known seed vertex"}
                 for r in kept.filter(pa.array(hopeless)).to_pylist()]
    out.append(pa.Table.from_pylist([{"source": r["source"], "file": r["file"], "line": r["line"],
                                      "id": r["query_id"], "reason": r["reason"],
                                      "raw": _query_json(r["query_id"], r["seeds"], r["size"])} for r in rejected],
                                    datasets.QUARANTINE))
    found = pa.table({"query_id": kept["query_id"].take(row[known]), "vid": vid.filter(known).cast(pa.int64()),
                      "size": kept["size"].take(row[known])})
    return (found.sort_by([("query_id", "ascending"), ("vid", "ascending")]),
            pa.concat_tables([t.cast(datasets.QUARANTINE) for t in out]))


def seed_queries(spark, config: SigilConfig, job: Run, vertices: DataFrame, signatures: DataFrame,
                 truth: DataFrame | None) -> tuple[DataFrame | pa.Table, dict]:
    """Run every query; returns the quarantine rows and the metrics (``query_rows`` read,
    ``engine``: ``driver`` for a small batch on a small graph, answered by the in-memory
    index with no Spark stage, else ``spark``)."""
    com, partitions = config.communities, config.spark.shuffle_partitions
    num_perm = config.graph_index.minhash.num_perm
    rows = previous_manifest(config, "graph_index")["metrics"]["index_rows"]
    n = previous_manifest(config, "graph", "graph-ingest")["metrics"]["vertices"]
    small = (n * num_perm * 4 + rows * 16) <= com.broadcast_index_mb << 20
    staged = driver_queries(job, com) if small and com.driver_batch else None
    index = names = None
    if small:  # driver-ok: bounded by broadcast_index_mb
        index = CommunityIndex.from_parquet(config.stage_path("graph_index", ""), com.max_candidates)
        names = vertex_names(config.stage_path("graph", "vertices"))
    if staged is not None:
        seeds, quarantine = driver_seeds(staged, names)
        qid = seeds["query_id"].to_numpy(zero_copy_only=False)
        found = answer_queries(index, names, com, qid, seeds["vid"].to_numpy(), seeds["size"].to_numpy())
        n_members = write_table(pa.Table.from_batches([found]).select(datasets.COMMUNITY_MEMBERS.names)
                                .cast(datasets.COMMUNITY_MEMBERS), job.path("members"))
        first = found.filter(pc.equal(found["rank"], 1))
        n_queries = first.num_rows
        return quarantine, {"engine": "driver", "query_rows": staged.num_rows, "queries": n_queries,
                            "member_rows": n_members,
                            "mean_candidates": float(np.mean(first["candidates"].to_numpy())) if n_queries else None,
                            "mean_community_size": n_members / n_queries if n_queries else None}
    index_rows = read_input(spark, config.stage_path("graph_index", "lsh"), "LSH index", "graph-index")
    queries, n_rows = staged_queries(spark, job, "communities.queries", com.queries, com.size,
                                     "no communities grown")
    seeds, quarantine = seed_rows(queries.where("reason is null"), vertices)
    quarantine = quarantine.unionByName(queries.where("reason is not null").select(
        F.lit("queries").alias("source"), "file", "line", F.col("query_id").alias("id"), "reason", "raw"))
    bands, _ = lsh_shape(config.graph_index.lsh, num_perm)
    local = None
    if small:  # ship the index once
        local = spark.sparkContext.broadcast((index, names))
        found = answered(seeds, local, com, partitions)
    else:
        found = grown(candidates(seeds, index_rows, bands), signatures, com, num_perm, partitions).join(
            vertices.select("vid", "vertex"), "vid")
    found = found.persist(StorageLevel.MEMORY_AND_DISK)
    n_members = write_parquet(found.select(*datasets.COMMUNITY_MEMBERS.names), job.path("members"),
                              datasets.COMMUNITY_MEMBERS)
    row = found.where("rank = 1").agg(F.count("*"), F.mean("candidates")).first()  # driver-ok: one row
    found.unpersist()
    if local is not None:
        local.destroy()
    return quarantine, {"engine": "spark", "query_rows": n_rows, "queries": row[0], "member_rows": n_members,
                        "mean_candidates": row[1], "mean_community_size": n_members / row[0] if row[0] else None}


def lsh_pairs(index: DataFrame, max_bucket: int, partitions: int) -> DataFrame:
    """``(a, b)``, a < b: the vertex pairs of every indexed bucket."""

    def pairs(batches):
        batches = list(batches)
        if not batches:
            return
        t = pa.Table.from_batches(batches)
        band, key, vid = (t.column(c).to_numpy() for c in ("band", "key", "vid"))
        grouped = buckets(band, key, vid, max_bucket)
        vid = vid[grouped["order"]]
        a, b = bucket_pairs(grouped["offsets"], vid, np.zeros(len(vid), np.int32), vid, max_bucket, "skip")
        yield pa.RecordBatch.from_pydict({"a": a, "b": b})

    return index.repartition(partitions, "band", "key").mapInArrow(pairs, "a long, b long")


def similarity_edges(spark, config: SigilConfig, signatures: DataFrame) -> DataFrame:
    """``(src, dst, weight, similar, edge)``, src < dst, weight = the estimated Jaccard of the
    two neighbourhoods. ``similar``: in the similarity graph, the graph's edges and/or the LSH
    bucket pairs (``whole_graph.similarity``), LSH pairs from ``threshold`` up and the graph's
    edges all, unless the clustering is connected components, which cannot weigh them.
    ``edge``: a graph edge, all of which come when ``weights: auto`` compares with them."""
    whole, index_cfg = config.communities.whole_graph, config.graph_index
    num_perm, parts = index_cfg.minhash.num_perm, config.spark.shuffle_partitions
    weigh_all = whole.algorithm != "components"
    with_edges = whole.similarity in ("graph", "both") or (weigh_all and whole.weights == "auto")
    sources = []
    if with_edges:
        edges = read_input(spark, config.stage_path("graph", "edges"), "edges", "graph-ingest").where("src != dst")
        sources.append(edges.select(F.least("src", "dst").alias("a"), F.greatest("src", "dst").alias("b"),
                                    F.lit(True).alias("edge"), F.lit(False).alias("pair")))
    if whole.similarity in ("lsh", "both"):
        index = read_input(spark, config.stage_path("graph_index", "lsh"), "LSH index", "graph-index")
        sources.append(lsh_pairs(index, index_cfg.lsh.max_bucket_size, parts).select(
            "a", "b", F.lit(False).alias("edge"), F.lit(True).alias("pair")))
    ids = sources[0] if len(sources) == 1 else sources[0].unionByName(sources[1])
    ids = ids.groupBy("a", "b").agg(F.max("edge").alias("edge"), F.max("pair").alias("pair"))
    edges_similar = whole.similarity in ("graph", "both")

    def score(batches):
        for batch in batches:
            est = jaccard_estimates(unpack_rows(batch.column("sig_a"), np.uint32, num_perm),
                                    unpack_rows(batch.column("sig_b"), np.uint32, num_perm))
            edge, pair = (batch.column(c).to_numpy(zero_copy_only=False) for c in ("edge", "pair"))
            reach = est >= whole.threshold
            similar = (pair & reach) | (edge & edges_similar & (reach | weigh_all))
            keep = similar | (edge & weigh_all)  # edges come only with_edges
            yield pa.RecordBatch.from_pydict({"src": batch.column("a").to_numpy()[keep],
                                              "dst": batch.column("b").to_numpy()[keep], "weight": est[keep],
                                              "similar": similar[keep], "edge": edge[keep]})

    for side in ("a", "b"):
        ids = ids.join(signatures.select(F.col("vid").alias(side), F.col("signature").alias(f"sig_{side}")), side)
    return ids.mapInArrow(score, "src long, dst long, weight float, similar boolean, edge boolean")


def whole_graph(spark, config: SigilConfig, job: Run, vertices: DataFrame, signatures: DataFrame,
                truth: DataFrame | None) -> dict:
    """Every vertex's community from the LSH similarity graph; returns the metrics."""
    whole = config.communities.whole_graph
    edges = similarity_edges(spark, config, signatures).persist(StorageLevel.MEMORY_AND_DISK)
    rows, n_similar = edges.agg(F.count("*"), F.sum(F.col("similar").cast("long"))).first()  # driver-ok: one row
    choice = {}
    if whole.algorithm == "components":
        components = connected_components(edges.where("similar").select("src", "dst"),
                                          config.graph.max_iterations if config.graph else 64)
        labels = vertices.select("vid").join(components.select(F.col("vertex").alias("vid"), "component"), "vid",
                                             "left").select("vid", F.coalesce("component", "vid").alias("community"))
    else:
        labels, choice = local_communities(spark, vertices, edges, rows, whole)
    sized = labels.withColumn("community_size", F.count("*").over(Window.partitionBy("community")))
    named = sized.join(vertices.select("vid", "vertex"), "vid").select(*datasets.VERTEX_ASSIGNMENTS.names)
    n = write_parquet(named, job.path("assignments"), datasets.VERTEX_ASSIGNMENTS)
    assigned = spark.read.parquet(job.path("assignments"))
    row = assigned.select("community", "community_size").distinct().agg(
        F.count("*"), F.max("community_size"), F.sum(F.when(F.col("community_size") == 1, 1).otherwise(0))).first()  # driver-ok: one row
    edges.unpersist()
    metrics = {"vertices": n, "similarity_edges": int(n_similar or 0), "communities": row[0],
               "largest_community": row[1], "singleton_communities": row[2], **choice}
    if truth is not None:
        metrics.update(assignment_quality(assigned, truth))
    return metrics


def local_communities(spark, vertices: DataFrame, edges: DataFrame, n_edges: int,
                      whole: WholeGraphConfig) -> tuple[DataFrame, dict]:
    """Leiden or Louvain on the driver (igraph): the similarity graph is gathered there, so
    its size is checked against ``whole_graph.max_local_edges`` first. Returns the labels and
    the weights used (with ``auto``, each candidate's description length)."""
    if n_edges > whole.max_local_edges:
        raise InputError(f"the similarity graph has {n_edges} edges, more than communities.whole_graph."
                         f"max_local_edges={whole.max_local_edges}; {whole.algorithm} runs on one machine: raise "
                         "the limit if the driver has the memory, raise whole_graph.threshold, or use "
                         "algorithm: components")
    n = vertices.agg(F.max("vid")).first()[0] + 1  # driver-ok: one row
    labels, choice = weighted_partition(n, edges.toArrow(), whole)  # driver-ok: bounded by max_local_edges
    first = np.full(labels.max() + 1 if n else 0, n, np.int64)
    np.minimum.at(first, labels, np.arange(n))  # label each community by its smallest vid
    table = pa.table({"vid": np.arange(n, dtype=np.int64), "community": first[labels]})
    return spark.createDataFrame(table).join(vertices.select("vid"), "vid"), choice


def weighted_partition(n: int, edges: pa.Table, whole: WholeGraphConfig) -> tuple[np.ndarray, dict]:
    """Leiden/Louvain labels of vertices 0..n-1 under ``whole.weights``. With ``auto`` the
    Jaccard-weighted similarity graph and the graph's own edges unweighted are both clustered;
    the labels under which the graph has the shorter description length (nested DC-SBM,
    ``transforms/blockmodel``) are kept: model selection with no tuned constant."""
    src, dst, weight, similar, edge = (edges[c].to_numpy(zero_copy_only=False)
                                       for c in ("src", "dst", "weight", "similar", "edge"))

    def cluster(keep: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        return cluster_graph(n, src[keep], dst[keep], np.ones(keep.sum()) if w is None else w[keep],
                             whole.algorithm, whole.resolution, whole.seed, whole.iterations)

    if whole.weights != "auto" or n == 0 or not edge.any():
        used = "none" if whole.weights == "none" else "jaccard"
        return cluster(similar, None if used == "none" else weight), {"weights": used}
    candidates = {"jaccard": cluster(similar, weight), "none": cluster(edge, None)}
    lengths = {k: round(description_length(n, src[edge], dst[edge], labels), 1) for k, labels in candidates.items()}
    chosen = min(lengths, key=lengths.get)
    return candidates[chosen], {"weights": chosen, "description_length": lengths}


def assignment_quality(assigned: DataFrame, truth: DataFrame) -> dict:
    """NMI and adjusted Rand index of the communities against the true ones, over the
    vertices that have a true community; aggregated in Spark (transforms ``agreement``)."""
    both = assigned.select("vid", F.col("community").alias("found")).join(
        truth.select("vid", F.col("community").alias("true")), "vid")

    def sums(counts: DataFrame) -> tuple[float, float]:
        x = F.col("count").cast("double")
        row = counts.agg(F.sum(x * F.log(x)), F.sum(x * (x - 1) / 2)).first()  # driver-ok: one row
        return float(row[0] or 0.0), float(row[1] or 0.0)

    n = both.count()
    if n == 0:
        return {}
    scores = agreement(n, sums(both.groupBy("found", "true").count()), sums(both.groupBy("found").count()),
                       sums(both.groupBy("true").count()))
    return {**scores, "vertices_with_truth": n}


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    com = config.communities
    if com is None:
        raise InputError("the configuration has no 'communities' section")
    if config.graph_index is None:
        raise InputError("the communities job reads the signatures made with the 'graph_index' section; add it")
    with job_run("communities", spark, config, strict, quiet) as job:
        vertices = read_input(spark, config.stage_path("graph", "vertices"), "vertex dictionary", "graph-ingest")
        raw = read_input(spark, config.stage_path("graph_index", "signatures"), "signatures", "graph-index")
        signatures = packed_signatures(raw, config.graph_index.minhash.num_perm).persist(StorageLevel.MEMORY_AND_DISK)
        truth_path = config.stage_path("graph", "communities")
        truth = spark.read.parquet(truth_path) if _exists(truth_path) else None
        if truth is not None and truth.limit(1).count() == 0:
            truth = None
        metrics = job.manifest["metrics"]
        if com.queries is not None:
            with job.stage("seed queries"):
                quarantine, seed_metrics = seed_queries(spark, config, job, vertices, signatures, truth)
                job.manifest["inputs"]["query_rows"] = seed_metrics.pop("query_rows")
                if isinstance(quarantine, DataFrame):
                    n_bad = write_parquet(quarantine, job.path("quarantine"), datasets.QUARANTINE)
                    written = spark.read.parquet(job.path("quarantine"))
                    by_source = dict(written.groupBy("source").count().collect())  # driver-ok: two rows
                else:
                    n_bad = write_table(quarantine, job.path("quarantine"))
                    by_source = dict(zip(*quarantine.group_by("source").aggregate([("source", "count")])
                                         .to_pydict().values()))
            seconds = job.manifest["timings"]["seed queries"]
            metrics["seed_queries"] = {**seed_metrics, "seconds_per_query": seconds / max(seed_metrics["queries"], 1)}
            if truth is not None:
                with job.stage("seed quality"):
                    metrics["seed_queries"].update(seed_quality(spark.read.parquet(job.path("members")), truth))
            job.manifest["quarantined"].update(queries=by_source.get("queries", 0), seeds=by_source.get("seeds", 0))
            job.manifest["outputs"]["members"] = seed_metrics["member_rows"]
            job.refuse_quarantined(n_bad, lambda: quarantine_examples(spark.read.parquet(job.path("quarantine"))),
                                   "query row(s) and unknown seed(s)")
        if com.whole_graph is not None:
            with job.stage("whole graph"):
                metrics["whole_graph"] = whole_graph(spark, config, job, vertices, signatures, truth)
            job.manifest["outputs"]["assignments"] = metrics["whole_graph"]["vertices"]
        signatures.unpersist()
        job.log("; ".join(f"{k}: " + ", ".join(f"{m} {v:.4g}" if isinstance(v, float) else f"{m} {v}"
                                               for m, v in part.items()) for k, part in metrics.items()))
        return job.commit()


def _exists(path: str) -> bool:
    try:
        list_files(path)
        return True
    except InputError:
        return False


if __name__ == "__main__":  # spark-submit jobs/communities.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["communities", *sys.argv[1:]]))
