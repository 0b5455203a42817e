"""Arrow schemas of every dataset sigil reads or writes.

Jobs write Parquet with exactly these schemas. Record datasets depend on the configured
attributes, so they are built by functions; the rest are constants.
"""

from __future__ import annotations

import pyarrow as pa

NORM_SUFFIX = "_norm"


def select(schema: pa.Schema, *names: str) -> pa.Schema:
    """The fields ``names`` of ``schema``, in that order (a dataset's columns as one step
    of a job handles them)."""
    return pa.schema([schema.field(name) for name in names])

#: Rows that could not be used, with the reason (see transforms/records.py for reasons).
QUARANTINE = pa.schema([
    pa.field("source", pa.string(), nullable=False),
    pa.field("file", pa.string()),
    pa.field("line", pa.int64()),
    pa.field("id", pa.string()),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("raw", pa.string()),
])

#: Candidate record pairs from blocking (MinHash, rules or neural LSH); (source_a, id_a) < (source_b, id_b).
CANDIDATES = pa.schema([
    pa.field("source_a", pa.string(), nullable=False),
    pa.field("id_a", pa.string(), nullable=False),
    pa.field("source_b", pa.string(), nullable=False),
    pa.field("id_b", pa.string(), nullable=False),
    pa.field("jaccard_estimate", pa.float32()),  # MinHash estimate; null from rule blocking
    pa.field("jaccard", pa.float32()),  # exact token-set Jaccard, when configured
    pa.field("cosine", pa.float32()),  # cosine of the records' embeddings; null from MinHash or rule blocking
])

#: Scored pairs from the match job: one comparison level per comparison (-1 = a value is
#: missing; 0 = the first, most similar level), the match weight (log2 Bayes factor with the
#: prior) and probability, and whether the pair is a match (at or above the threshold and,
#: with one-to-one linking, each side's best). Built by a function because the level columns follow the config.
def scored(comparisons: list[str]) -> pa.Schema:
    return pa.schema(
        [pa.field(k, pa.string(), nullable=False) for k in ("source_a", "id_a", "source_b", "id_b")]
        + [pa.field(f"gamma_{c}", pa.int8(), nullable=False) for c in comparisons]
        + [pa.field("match_weight", pa.float64(), nullable=False),
           pa.field("match_probability", pa.float64(), nullable=False),
           pa.field("is_match", pa.bool_(), nullable=False)])


#: Entities from the cluster job: every record with its entity; the entity id is the
#: smallest record key (rid) of its component, so the same input gives the same ids.
ENTITIES = pa.schema([
    pa.field("rid", pa.int64(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("id", pa.string(), nullable=False),
    pa.field("entity_id", pa.int64(), nullable=False),
    pa.field("cluster_size", pa.int64(), nullable=False),
])

#: Components over cluster.max_size, as first clustered (entity_id: their smallest rid), with
#: up to 10 of their ids (the smallest, sorted); split: re-clustered at cluster.split_threshold.
OVERSIZED_COMPONENTS = pa.schema([
    pa.field("entity_id", pa.int64(), nullable=False),
    pa.field("size", pa.int64(), nullable=False),
    pa.field("sample_ids", pa.list_(pa.string()), nullable=False),
    pa.field("split", pa.bool_(), nullable=False),
])

#: Generated person records (transforms/people.py): FEBRL's fields, and the true entity.
PEOPLE = pa.schema(
    [("source", pa.string()), ("rec_id", pa.string()), ("entity_id", pa.int64())]
    + [(f, pa.string()) for f in ("given_name", "surname", "street_number", "address_1", "address_2",
                                  "suburb", "postcode", "state", "date_of_birth", "soc_sec_id")])

#: Ground-truth matching pairs (unordered; any orientation is accepted on input).
TRUTH = pa.schema([
    pa.field("source_a", pa.string()),
    pa.field("id_a", pa.string(), nullable=False),
    pa.field("source_b", pa.string()),
    pa.field("id_b", pa.string(), nullable=False),
])

#: How many LSH buckets of each size there were, per band (for skew diagnostics).
BUCKET_SIZES = pa.schema([
    pa.field("band", pa.int32(), nullable=False),
    pa.field("size", pa.int64(), nullable=False),
    pa.field("buckets", pa.int64(), nullable=False),
])

#: Oversized buckets: reported, then skipped or split.
OVERSIZED = pa.schema([
    pa.field("band", pa.int32(), nullable=False),
    pa.field("key", pa.int64(), nullable=False),
    pa.field("size", pa.int64(), nullable=False),
    pa.field("sample_ids", pa.list_(pa.string()), nullable=False),
])


def records(attributes: list[str]) -> pa.Schema:
    """Ingested records: a stable key, where the row came from, raw and normalised values."""
    fields = [
        pa.field("rid", pa.int64(), nullable=False),  # xxhash64(source, id): stable record key
        pa.field("source", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
    ]
    for name in attributes:
        fields += [pa.field(name, pa.string()), pa.field(name + NORM_SUFFIX, pa.string())]
    return pa.schema(fields)


def signatures(num_perm: int, with_tokens: bool) -> pa.Schema:
    """MinHash signatures (datasketch-identical) and, optionally, the exact token sets."""
    fields = [
        pa.field("rid", pa.int64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("num_tokens", pa.int32(), nullable=False),
        pa.field("signature", pa.list_(pa.uint32(), num_perm), nullable=False),
    ]
    if with_tokens:
        fields.append(pa.field("tokens", pa.list_(pa.uint64()), nullable=False))
    return pa.schema(fields)


# --- graphs -------------------------------------------------------------------------------

#: The vertex dictionary: every vertex's external id and its dense index (0..n-1, integer
#: ids in numeric order first, then the others in string order), with its degrees (distinct
#: neighbours after merging duplicate edges; undirected: in = out = degree).
VERTICES = pa.schema([
    pa.field("vid", pa.int64(), nullable=False),
    pa.field("vertex", pa.string(), nullable=False),
    pa.field("in_degree", pa.int64(), nullable=False),
    pa.field("out_degree", pa.int64(), nullable=False),
])

#: Edges by dense index, duplicates merged (weights summed, ``multiplicity`` counted);
#: undirected edges are stored once, src <= dst.
EDGES = pa.schema([
    pa.field("src", pa.int64(), nullable=False),
    pa.field("dst", pa.int64(), nullable=False),
    pa.field("weight", pa.float64(), nullable=False),
    pa.field("multiplicity", pa.int64(), nullable=False),
])

#: A ground-truth community per vertex, where the input gives one.
VERTEX_COMMUNITIES = pa.schema([
    pa.field("vid", pa.int64(), nullable=False),
    pa.field("vertex", pa.string(), nullable=False),
    pa.field("community", pa.string(), nullable=False),
])


# --- interactions -------------------------------------------------------------------------

#: A dictionary of users (or items): external id, dense index (0..n-1, integer ids in
#: numeric order first, then the others in string order), distinct counterparts
#: (``degree``), summed weight, and the same in the train split.
def interaction_entities(entity: str, dense: str) -> pa.Schema:
    """``users`` (``entity="user", dense="uid"``) or ``items`` (``"item", "iid"``)."""
    return pa.schema([
        pa.field(dense, pa.int64(), nullable=False),
        pa.field(entity, pa.string(), nullable=False),
        pa.field("degree", pa.int64(), nullable=False),
        pa.field("weight", pa.float64(), nullable=False),
        pa.field("train_degree", pa.int64(), nullable=False),
    ])


USERS = interaction_entities("user", "uid")
ITEMS = interaction_entities("item", "iid")

#: Interactions by dense index, repeats of a (user, item) pair merged: their rows
#: (``count``), summed weight, first and last timestamp (null without timestamps). The
#: train and test splits have the same schema.
INTERACTIONS = pa.schema([
    pa.field("uid", pa.int64(), nullable=False),
    pa.field("iid", pa.int64(), nullable=False),
    pa.field("count", pa.int64(), nullable=False),
    pa.field("weight", pa.float64(), nullable=False),
    pa.field("first_timestamp", pa.int64()),
    pa.field("last_timestamp", pa.int64()),
])


#: An embedding-row mapping (graphhash job): every user and item of the dictionaries, its
#: dense id, its row (``bucket``) and, for double variants, its second row (``bucket2``,
#: summed by the model); ``table`` is 0 for a shared table or users, 1 for items;
#: ``cold`` marks entities without a train interaction (hashed into the fallback range).
GRAPHHASH_MAPPING = pa.schema([
    pa.field("entity_type", pa.string(), nullable=False),
    pa.field("id", pa.string(), nullable=False),
    pa.field("dense_id", pa.int64(), nullable=False),
    pa.field("table", pa.int32(), nullable=False),
    pa.field("bucket", pa.int64(), nullable=False),
    pa.field("bucket2", pa.int64()),
    pa.field("cold", pa.bool_(), nullable=False),
])

#: The baselines' mappings, one ``variant`` each.
GRAPHHASH_BASELINES = pa.schema([pa.field("variant", pa.string(), nullable=False), *GRAPHHASH_MAPPING])

#: Rows of each variant's tables with the users and items they hold (first rows only).
GRAPHHASH_BUCKET_SIZES = pa.schema([
    pa.field("variant", pa.string(), nullable=False),
    pa.field("table", pa.int32(), nullable=False),
    pa.field("bucket", pa.int64(), nullable=False),
    pa.field("users", pa.int64(), nullable=False),
    pa.field("items", pa.int64(), nullable=False),
])


def neighbourhood_signatures(num_perm: int) -> pa.Schema:
    """Each vertex's MinHash of its neighbour set, and the set's size."""
    return pa.schema([
        pa.field("vid", pa.int64(), nullable=False),
        pa.field("vertex", pa.string(), nullable=False),
        pa.field("set_size", pa.int64(), nullable=False),
        pa.field("signature", pa.list_(pa.uint32(), num_perm), nullable=False),
    ])


#: The LSH index: one row per vertex and band, the band's bucket key.
LSH_INDEX = pa.schema([
    pa.field("band", pa.int32(), nullable=False),
    pa.field("key", pa.int64(), nullable=False),
    pa.field("vid", pa.int64(), nullable=False),
])

#: Seed-query results: per query the community in rank order (the seeds first), each
#: member's score (mean estimated Jaccard to the community when it joined; 1 for a seed)
#: and, when configured, its sub-community within the found community.
COMMUNITY_MEMBERS = pa.schema([
    pa.field("query_id", pa.string(), nullable=False),
    pa.field("rank", pa.int32(), nullable=False),
    pa.field("vertex", pa.string(), nullable=False),
    pa.field("vid", pa.int64(), nullable=False),
    pa.field("score", pa.float32(), nullable=False),
    pa.field("is_seed", pa.bool_(), nullable=False),
    pa.field("subcommunity", pa.int32()),
])

#: Whole-graph mode: every vertex's community, labelled by its smallest vid.
VERTEX_ASSIGNMENTS = pa.schema([
    pa.field("vid", pa.int64(), nullable=False),
    pa.field("vertex", pa.string(), nullable=False),
    pa.field("community", pa.int64(), nullable=False),
    pa.field("community_size", pa.int64(), nullable=False),
])


#: PowerWalk fingerprints (ppr-index): per source vertex, ``alpha * visits / walks`` of every
#: vertex its random walks visited (rows below ``ppr.floor`` left out); ``fingerprint_matrix``
#: in transforms/ppr.py makes them a matrix.
FINGERPRINTS = pa.schema([
    pa.field("source", pa.int64(), nullable=False),
    pa.field("target", pa.int64(), nullable=False),
    pa.field("value", pa.float32(), nullable=False),
])

#: Personalized PageRank queries (ppr-query): each query's k best vertices, rank 1 the
#: highest estimated PPR score (ties to the smaller vid).
PPR_RANKINGS = pa.schema([
    pa.field("query_id", pa.string(), nullable=False),
    pa.field("rank", pa.int32(), nullable=False),
    pa.field("vertex", pa.string(), nullable=False),
    pa.field("vid", pa.int64(), nullable=False),
    pa.field("score", pa.float64(), nullable=False),
])


def embeddings(dim: int) -> pa.Schema:
    """Record embeddings of the nlsh-block job: unit float32 vectors."""
    return pa.schema([
        pa.field("rid", pa.int64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
    ])


# --- HQI batch hybrid queries ---------------------------------------------------------------

def hqi_data(dim: int, attributes=()) -> pa.Schema:
    """The data interface of HQI (hqi-generate writes it, hqi-index reads it): an entity's
    id, its vector and its attribute ``fields`` (strings are categorical, integers and
    floats numeric)."""
    return pa.schema([pa.field("id", pa.int64(), nullable=False),
                      pa.field("vector", pa.list_(pa.float32(), dim), nullable=False), *attributes])


def hqi_workload(dim: int) -> pa.Schema:
    """A batch of hybrid queries: the k rows nearest to ``vector`` (squared L2) among those
    whose attributes satisfy ``predicate`` (JSON, transforms/predicates.py). hqi-generate
    writes training and query workloads so; hqi-query reads vectors of any list type."""
    return pa.schema([
        pa.field("query_id", pa.int64(), nullable=False),
        pa.field("k", pa.int32(), nullable=False),
        pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        pa.field("predicate", pa.string(), nullable=False),
    ])


def hqi_layout(dim: int, attributes=()) -> pa.Schema:
    """The rows as hqi-index lays them out: each with its qd-tree leaf and its cluster
    (numbered over all leaves, so a leaf's clusters are consecutive), one leaf per file,
    sorted by leaf, cluster and id."""
    return pa.schema([
        pa.field("id", pa.int64(), nullable=False),
        pa.field("leaf", pa.int32(), nullable=False),
        pa.field("cluster", pa.int32(), nullable=False),
        pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        *attributes,
    ])


def hqi_centroids(dim: int) -> pa.Schema:
    """Every cluster of the layout: its leaf, its k-means centroid and its rows."""
    return pa.schema([
        pa.field("leaf", pa.int32(), nullable=False),
        pa.field("cluster", pa.int32(), nullable=False),
        pa.field("centroid", pa.list_(pa.float32(), dim), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
    ])


#: Hybrid-query answers (hqi-query, transforms/hqi.py): each query's min(k, satisfying rows)
#: nearest rows, rank 0 the nearest, in (distance, id) order; distance is squared L2.
HQI_RESULTS = pa.schema([
    pa.field("query_id", pa.int64(), nullable=False),
    pa.field("rank", pa.int32(), nullable=False),
    pa.field("id", pa.int64(), nullable=False),
    pa.field("distance", pa.float32(), nullable=False),
])

#: The work each hybrid query cost: rows of the leaves (exact) or clusters (nprobe) it
#: scanned, and the distances computed for it.
HQI_QUERY_STATS = pa.schema([
    pa.field("query_id", pa.int64(), nullable=False),
    pa.field("rows_scanned", pa.int64(), nullable=False),
    pa.field("distance_computations", pa.int64(), nullable=False),
])
