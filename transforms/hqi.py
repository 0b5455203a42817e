"""HQI: batches of hybrid vector queries over a workload-aware layout (Mohoney et al.,
SIGMOD 2023).

A hybrid query ``(q, k, p)`` asks for the k rows nearest to the vector q in squared
Euclidean distance ``||x - q||^2`` among the rows whose attributes satisfy the predicate p
(transforms/predicates.py), ties in distance broken by id. HQI answers whole batches of
them quickly by laying the data out for the workload and sharing work across a batch.

Layout (``build``). A qd-tree (transforms/qdtree.py) grown from a training workload's
predicates partitions the rows by their attributes into leaves, so that a query scans only
the leaves its predicate may match; inside each leaf k-means clusters the vectors. The
rows are stored sorted by (leaf, cluster), so that every leaf and every cluster is a
contiguous slice, with their squared norms. The tree and the centroids (a
``Partitioning``) may also be fitted on a sample (``fit_partitioning``) and every row then
placed by them (``Partitioning.assign``, ``arrange``), as the hqi-index job does in Spark
tasks; ``save_layout`` and ``load_layout`` write and read a layout as that job does.

Batch execution (``search``), multi-query optimisation:

* the queries are grouped by predicate (normal forms are equal values): each distinct
  predicate is routed through the tree once, and evaluated once per leaf it reaches as a
  mask over the leaf's rows;
* exact mode (``nprobe=None``): every query of a group probes all rows of each leaf its
  predicate reaches, so one matrix product per (leaf, predicate) gives the distances of all
  the group's queries to the leaf's satisfying rows, ``||x||^2 - 2 x.q + ||q||^2`` in
  float32 from the stored norms;
* approximate mode: a query probes the ``nprobe`` clusters nearest to it (by centroid
  distance) among the clusters of its reached leaves that hold a satisfying row, then
  further clusters in the same order until the probed ones hold k satisfying rows (or none
  is left; ``choose_clusters``); all the queries that probe a cluster, whatever their
  predicates, share one product over its rows (over the rows some of them keep, when
  those are few), each query keeping the rows its predicate's mask keeps; a query whose
  mask keeps under a fifth of the cluster's rows gets those few distances alone instead
  (a shared product would compute five times as many for it);
* each product keeps, per query, the rows whose float32 distance may be among its k
  smallest: with ``u = 2^-24`` the float32 value differs from the exact one by at most
  ``e = (2d + 16) u (max ||x||^2 + ||q||^2)`` (dot products and norms err by at most
  ``d u`` times their magnitude, Higham 2002, section 3.1). Each query keeps its k
  smallest upper bounds (value + e) met so far, and a row is a candidate while its lower
  bound (value - e) is at most the k-th of them (one numba pass per product, ``_scan``);
  at the end the candidates are checked once more against the final k-th upper bound, and
  the survivors' distances recomputed exactly (float64 sums, rounded to float32) and
  merged per query in (distance, id) order.

Guarantees. Routing never misses a leaf holding a satisfying row (``may_match`` is
conservative) and the error bound never drops a row of the top k, so exact mode returns
exactly ``exact_search``'s rows and distances. Approximate mode returns exactly
``min(k, satisfying rows)`` rows, all satisfying, since it probes until it has them. A
query's answer does not depend on the other queries of its batch: its distances are exact,
and the set of clusters it probes is drawn by exact centroid distances wherever the float32
products' error bound leaves it in doubt (``choose_clusters``; ``nearest`` likewise places
a row). So a batch answered in parts, or a layout searched in slices with the probes
chosen on the whole (``search(..., probes=...)``), gives the same answers.

Reference: J. Mohoney, A. Pacaci, S. R. Chowdhury, A. Mousavi, I. F. Ilyas, U. F. Minhas,
J. Pound, T. Rekatsinas, "High-Throughput Vector Similarity Search in Knowledge Graphs",
SIGMOD 2023, doi:10.1145/3589777, arXiv:2304.01926.

Example
-------
>>> from sigil.transforms.hqi_workload import generate_data, generate_workload
>>> data = generate_data(2000, 8, seed=1)
>>> ids, vectors, attributes = data_arrays(data)
>>> train = generate_workload(data, 200, seed=2).column("predicate").to_pylist()
>>> layout = build(ids, vectors, attributes, train, min_leaf_rows=200, rows_per_cluster=50, seed=0)
>>> queries, quarantined = parse_workload(generate_workload(data, 50, seed=3), layout.columns.types, 8)
>>> exact = search(layout, queries)
>>> truth = exact_search(ids, vectors, attributes, queries)
>>> bool((exact.id == truth.id).all()), round(recall_at_k(search(layout, queries, nprobe=8), truth, 10), 2)
(True, 0.88)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import scipy.sparse as sp

from sigil.schemas.datasets import HQI_RESULTS, hqi_centroids, hqi_layout
from sigil.transforms.predicates import CATEGORICAL, Columns, Predicate, parse_many
from sigil.transforms.qdtree import QdTree
from sigil.transforms.records import open_input

_U = 2.0**-24  # float32 unit roundoff
_BLOCK = 1 << 22  # entries of one distance matrix (16 MiB of float32)
_NO_ROWS = np.zeros(0, np.int64)  # _scan's "rows lo:hi"
_DENSE = 0.7  # a slice whose mask keeps this share of rows is multiplied whole, masked after
_ALONE = 0.2  # a query whose mask keeps less of a cluster's rows gets their distances alone, not by the product
RESULT_SCHEMA = HQI_RESULTS


# ---------------------------------------------------------------------------- inputs


def vectors_of(column) -> np.ndarray:
    """A column of vectors as a C-contiguous float32 matrix.

    Parameters
    ----------
    column : pyarrow (Chunked)Array of fixed_size_list or list, or array_like (n, d)
        Without nulls.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n, d)``.

    Examples
    --------
    >>> import pyarrow as pa
    >>> vectors_of(pa.array([[1, 2], [3, 4]], pa.list_(pa.float32(), 2))).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if col.null_count:
            raise ValueError(f"{col.null_count} vectors are null")
        if pa.types.is_fixed_size_list(col.type):
            d = col.type.list_size
        else:
            lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
            d = int(lengths[0]) if len(lengths) else 0
            if (lengths != d).any():
                raise ValueError("vectors have different lengths")
        flat = col.flatten().to_numpy(zero_copy_only=False)
        return np.ascontiguousarray(flat.reshape(len(col), d), dtype=np.float32)
    x = np.ascontiguousarray(column, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"vectors must form an (n, d) matrix, got shape {x.shape}")
    return x


def vector_array(x: np.ndarray) -> pa.FixedSizeListArray:
    """An ``(n, d)`` matrix as a column of fixed-size float32 vectors.

    Examples
    --------
    >>> vector_array(np.float32([[1, 2], [3, 4]])).type
    FixedSizeListType(fixed_size_list<item: float>[2])
    """
    x = np.asarray(x, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])


def data_arrays(table: pa.Table) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """Split a table of the data interface into ids, vectors and attribute columns.

    Parameters
    ----------
    table : pyarrow.Table
        ``id`` (int64), ``vector`` (fixed_size_list<float32>[d]) and attribute columns.

    Returns
    -------
    ids : numpy.ndarray
        int64.
    vectors : numpy.ndarray
        float32 ``(n, d)``.
    attributes : pyarrow.Table
        The other columns.
    """
    ids = table.column("id").to_numpy().astype(np.int64, copy=False)
    return ids, vectors_of(table.column("vector")), table.drop_columns(["id", "vector"])


def _squared_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _slack(d: int) -> float:
    """Bound, relative to ``||x||^2 + ||q||^2``, on the error of a float32 distance
    ``||x||^2 - 2 x.q`` (see the module docstring)."""
    return (2 * d + 16) * _U


class Queries(NamedTuple):
    """A batch of hybrid queries, one entry per query."""

    query_id: np.ndarray  # int64
    k: np.ndarray  # int64, >= 0
    vectors: np.ndarray  # float32 (m, d)
    predicates: list  # Predicate


def check_workload(table: pa.Table, types, dim: int, *, duplicates: bool = True) -> tuple[Queries, np.ndarray]:
    """Every row of a workload table as a query, and the reason each cannot be used.

    Parameters
    ----------
    table : pyarrow.Table
        ``query_id`` (int64), ``k`` (int), ``vector`` (list of d numbers) and ``predicate``
        (JSON text), as the workload interface has them.
    types : mapping of str to str
        The attribute columns predicates may read (``Layout.columns.types``).
    dim : int
        The vectors' dimension.
    duplicates : bool, default True
        Give a query id that an earlier row has the reason ``duplicate query_id`` (a reader
        of several files checks them across its files instead).

    Returns
    -------
    queries : Queries
        One entry per row; a row with a reason has placeholders (k 0, a zero vector, no
        predicate).
    reasons : numpy.ndarray
        object, per row: None where it is usable, else why not: a missing or repeated query
        id, k not a positive integer, a missing vector, one of another dimension or with NaN
        or infinite values, or an invalid predicate (``predicate: `` and the parser's reason).

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"query_id": [1, 2], "k": [5, 5], "vector": [[0.0], [1.0, 2.0]], "predicate": ["[]", "[]"]})
    >>> queries, reasons = check_workload(t, {}, 1)
    >>> queries.k.tolist(), reasons.tolist()
    ([5, 0], [None, 'vector has 2 values, expected 1'])
    """
    m = table.num_rows
    reasons = np.full(m, None, dtype=object)

    def flag(bad, reason):
        for i in np.flatnonzero(bad):
            reasons[i] = reasons[i] or (reason(i) if callable(reason) else reason)

    qid = table.column("query_id").combine_chunks()
    flag(~qid.is_valid().to_numpy(zero_copy_only=False), "missing query_id")
    ids = qid.fill_null(0).to_numpy().astype(np.int64)
    if duplicates:
        first = np.zeros(m, dtype=bool)
        first[np.unique(ids, return_index=True)[1]] = True
        flag(~first, "duplicate query_id")
    k = table.column("k").combine_chunks()
    kv = k.fill_null(0).to_numpy().astype(np.int64)
    flag(~k.is_valid().to_numpy(zero_copy_only=False) | (kv < 1),
         lambda i: f"k must be a positive integer, got {k[i].as_py()}")
    vec = table.column("vector").combine_chunks()
    lengths = pc.list_value_length(vec).fill_null(-1).to_numpy(zero_copy_only=False)
    flag(lengths == -1, "missing vector")
    flag(lengths != dim, lambda i: f"vector has {lengths[i]} values, expected {dim}")
    ok_vec = lengths == dim
    vectors = np.zeros((m, dim), dtype=np.float32)
    vectors[ok_vec] = vec.filter(pa.array(ok_vec)).flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    flag(~np.isfinite(vectors).all(axis=1), "vector has NaN or infinite values")
    predicates, why = parse_many(table.column("predicate").to_pylist(), types)
    flag(np.array([w is not None for w in why], dtype=bool), lambda i: f"predicate: {why[i]}")
    bad = reasons != None  # noqa: E711 - elementwise
    vectors[bad] = 0
    predicates = [None if b else p for p, b in zip(predicates, bad, strict=True)]
    return Queries(ids, np.where(bad, 0, kv), vectors, predicates), reasons


def parse_workload(table: pa.Table, types, dim: int) -> tuple[Queries, pa.Table]:
    """The usable queries of a workload table, and the others with the reason each is not.

    Parameters
    ----------
    table : pyarrow.Table
        ``query_id`` (int64), ``k`` (int), ``vector`` (list of d numbers) and ``predicate``
        (JSON text), as the workload interface has them.
    types : mapping of str to str
        The attribute columns predicates may read (``Layout.columns.types``).
    dim : int
        The vectors' dimension.

    Returns
    -------
    queries : Queries
        The usable queries, in table order.
    quarantined : pyarrow.Table
        ``query_id`` and ``reason`` of the others (``check_workload``'s reasons).

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"query_id": [1, 2, 2], "k": [5, 0, 5], "vector": [[0.0], [1.0], [2.0]],
    ...               "predicate": ["[]", "[]", '[{"col": "x"}]']})
    >>> queries, bad = parse_workload(t, {}, 1)
    >>> queries.query_id.tolist(), bad.column("reason").to_pylist()
    ([1], ['k must be a positive integer, got 0', 'duplicate query_id'])
    """
    every, reasons = check_workload(table, types, dim)
    good = np.array([r is None for r in reasons], dtype=bool)
    queries = Queries(every.query_id[good], every.k[good], every.vectors[good],
                      [p for p, g in zip(every.predicates, good, strict=True) if g])
    qid = table.column("query_id").combine_chunks()
    bad = np.flatnonzero(~good)
    quarantined = pa.table({"query_id": pa.array([qid[i].as_py() for i in bad], pa.int64()),
                            "reason": pa.array(reasons[bad].tolist(), pa.string())})
    return queries, quarantined


def _check_queries(queries: Queries, dim: int, types) -> Queries:
    query_id = np.asarray(queries.query_id, dtype=np.int64)
    k = np.asarray(queries.k, dtype=np.int64)
    vectors = np.ascontiguousarray(queries.vectors, dtype=np.float32).reshape(len(query_id), -1) \
        if len(query_id) else np.zeros((0, dim), np.float32)
    predicates = list(queries.predicates)
    if not len(k) == len(vectors) == len(predicates) == len(query_id):
        raise ValueError("queries need one query_id, k, vector and predicate each")
    if vectors.shape[1] != dim:
        raise ValueError(f"query vectors have dimension {vectors.shape[1]}, the data {dim}")
    if (k < 0).any() or not np.isfinite(vectors).all():
        raise ValueError("queries need k >= 0 and finite vectors (parse_workload quarantines the others)")
    for p in predicates:
        if not isinstance(p, Predicate):
            raise TypeError(f"predicates must be parsed Predicate values, got {type(p).__name__}")
        if not p.columns <= set(types):
            raise ValueError(f"a predicate reads columns {sorted(p.columns - set(types))} the data does not have")
    return Queries(query_id, k, vectors, predicates)


# ---------------------------------------------------------------------------- layout


@dataclass(frozen=True, eq=False)
class Layout:
    """Rows partitioned by a qd-tree into leaves and by k-means into clusters per leaf,
    stored sorted by (leaf, cluster).

    Attributes
    ----------
    tree : QdTree
    ids : numpy.ndarray
        int64 id of each stored row.
    vectors : numpy.ndarray
        float32 ``(n, d)``, C-contiguous.
    norms : numpy.ndarray
        float32 squared norm of each vector.
    columns : Columns
        The attributes, in the same order.
    leaf_offsets : numpy.ndarray
        int64, ``leaves + 1``: leaf l holds rows ``leaf_offsets[l]:leaf_offsets[l+1]``.
    cluster_offsets : numpy.ndarray
        int64, ``clusters + 1``: cluster c holds rows ``cluster_offsets[c]:cluster_offsets[c+1]``.
    leaf_clusters : numpy.ndarray
        int64, ``leaves + 1``: leaf l's clusters are ``leaf_clusters[l]:leaf_clusters[l+1]``.
    centroids : numpy.ndarray
        float32 ``(clusters, d)``: ``build``'s are the means of their rows; those fitted on a
        sample (``fit_partitioning``), the means of its rows.
    order : numpy.ndarray
        int64 input position of each stored row (of a loaded layout: its stored position).
    """

    tree: QdTree
    ids: np.ndarray
    vectors: np.ndarray
    norms: np.ndarray
    columns: Columns
    leaf_offsets: np.ndarray
    cluster_offsets: np.ndarray
    leaf_clusters: np.ndarray
    centroids: np.ndarray
    order: np.ndarray

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def leaf(self) -> np.ndarray:
        """int64 leaf of each stored row."""
        return np.repeat(np.arange(len(self.leaf_offsets) - 1), np.diff(self.leaf_offsets))

    @property
    def cluster(self) -> np.ndarray:
        """int64 cluster (numbered over all leaves) of each stored row."""
        return np.repeat(np.arange(len(self.cluster_offsets) - 1), np.diff(self.cluster_offsets))


def _nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid of each row (BLAS products, in blocks of rows)."""
    cn = _squared_norms(centroids)
    out = np.empty(len(x), dtype=np.int64)
    step = max(1, _BLOCK // max(1, len(centroids)))
    for lo in range(0, len(x), step):
        d = x[lo:lo + step] @ centroids.T
        d *= -2
        d += cn
        out[lo:lo + step] = d.argmin(axis=1)
    return out


def kmeans(x: np.ndarray, k: int, *, seed=0, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means from k distinct rows drawn at random; empty clusters are dropped.

    Parameters
    ----------
    x : numpy.ndarray
        float32 ``(n, d)``.
    k : int
        Clusters wanted (at most n are made).
    seed : int or sequence of int, default 0
        Seeds ``numpy.random.default_rng``.
    iterations : int, default 10
        Assignment and update rounds.

    Returns
    -------
    centroids : numpy.ndarray
        float32 ``(k', d)``, ``k' <= k``, each the mean of its rows.
    labels : numpy.ndarray
        int64 cluster of each row, 0..k'-1.

    References
    ----------
    .. [1] S. Lloyd, "Least squares quantization in PCM", IEEE Trans. Inf. Theory 28(2), 1982.

    Examples
    --------
    >>> x = np.float32([[0, 0], [0, 1], [10, 10], [10, 11]])
    >>> centroids, labels = kmeans(x, 2, seed=1)
    >>> sorted(centroids.tolist()), bool(labels[0] == labels[1] != labels[2] == labels[3])
    ([[0.0, 0.5], [10.0, 10.5]], True)
    """
    n = len(x)
    k = min(k, n)
    if k < 1:
        return np.zeros((0, x.shape[1]), np.float32), np.zeros(n, np.int64)
    rng = np.random.default_rng(seed)
    centroids = x[np.sort(rng.choice(n, k, replace=False))]
    for _ in range(max(1, iterations)):
        labels = _nearest(x, centroids)
        counts = np.bincount(labels, minlength=k)
        sums = sp.csr_array((np.ones(n, np.float32), (labels, np.arange(n))), shape=(k, n)) @ x
        centroids = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centroids).astype(np.float32)
    used = np.flatnonzero(counts)
    renumber = np.cumsum(counts > 0) - 1
    return np.ascontiguousarray(centroids[used]), renumber[labels]


@numba.njit(cache=True, nogil=True)
def _square_distances(x, c):
    """Squared L2 of every (row, centroid) pair, summed in float64 in dimension order: the
    reference that decides where float32 products cannot."""
    out = np.empty((x.shape[0], c.shape[0]))
    for i in range(x.shape[0]):
        for j in range(c.shape[0]):
            s = 0.0
            for t in range(x.shape[1]):
                diff = np.float64(x[i, t]) - np.float64(c[j, t])
                s += diff * diff
            out[i, j] = s
    return out


def nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the centroid nearest to each row (squared L2, ties to the lower index),
    whatever other rows come with it.

    Float32 products (BLAS, in blocks of rows) decide where their error bound allows; a row
    whose two best distances lie within twice the bound is decided by exact float64 sums.
    So a row's centroid does not depend on how the rows are batched (a Spark task's Arrow
    batches, a retried task).

    Parameters
    ----------
    x : numpy.ndarray
        float32 ``(n, d)``.
    centroids : numpy.ndarray
        float32 ``(c, d)``, ``c >= 1``.

    Returns
    -------
    numpy.ndarray
        int64, ``n``.

    Examples
    --------
    >>> nearest(np.float32([[0, 0], [4, 4], [1, 1]]), np.float32([[0, 0], [2, 2], [5, 5]])).tolist()
    [0, 2, 0]
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    if not len(centroids):
        raise ValueError("nearest needs at least one centroid")
    out = np.zeros(len(x), dtype=np.int64)
    if len(centroids) == 1:
        return out
    cn = _squared_norms(centroids)
    slack, top = _slack(x.shape[1]), np.float64(cn.max())
    step = max(1, _BLOCK // len(centroids))
    for lo in range(0, len(x), step):
        xb = x[lo:lo + step]
        d = xb @ centroids.T
        d *= -2
        d += cn
        best = d.argmin(axis=1)
        two = np.partition(d, 1, axis=1)[:, :2].astype(np.float64)
        doubt = two[:, 1] - two[:, 0] <= 2 * slack * (top + _squared_norms(xb))
        if doubt.any():
            best[doubt] = _square_distances(xb[doubt], centroids).argmin(axis=1)
        out[lo:lo + step] = best
    return out


@dataclass(frozen=True, eq=False)
class Partitioning:
    """Where a row goes: the qd-tree leaf its attributes fall in, then the nearest of that
    leaf's k-means centroids (``nearest``).

    Attributes
    ----------
    tree : QdTree
    centroids : numpy.ndarray
        float32 ``(clusters, d)``, the clusters numbered over all leaves, leaf by leaf.
    leaf_clusters : numpy.ndarray
        int64, ``leaves + 1``: leaf l's clusters are ``leaf_clusters[l]:leaf_clusters[l+1]``.
    """

    tree: QdTree
    centroids: np.ndarray
    leaf_clusters: np.ndarray

    def leaf_of(self, cluster) -> np.ndarray:
        """int64 leaf of each cluster number."""
        return np.searchsorted(self.leaf_clusters, cluster, "right") - 1

    def assign(self, attributes, vectors) -> np.ndarray:
        """The cluster (numbered over all leaves) of every row.

        Parameters
        ----------
        attributes : pyarrow.Table, mapping of str to array_like, or Columns
            Rows with (at least) the tree's attribute columns.
        vectors : array_like or pyarrow array
            ``(n, d)`` (see ``vectors_of``).

        Returns
        -------
        numpy.ndarray
            int64; ``leaf_of`` gives the leaves.

        Raises
        ------
        ValueError
            For a row in a leaf without clusters (one that no fitted row reached).
        """
        columns = attributes if isinstance(attributes, Columns) else Columns.from_table(attributes, self.tree.types)
        x = vectors_of(vectors)
        leaf = self.tree.assign(columns)
        order = np.argsort(leaf, kind="stable")
        bounds = np.searchsorted(leaf[order], np.arange(self.tree.num_leaves + 1))
        out = np.empty(len(x), dtype=np.int64)
        for lf in np.flatnonzero(np.diff(bounds)):
            rows = order[bounds[lf]:bounds[lf + 1]]
            c0, c1 = self.leaf_clusters[lf:lf + 2]
            if c0 == c1:
                raise ValueError(f"leaf {lf} has no clusters for its {len(rows)} rows")
            out[rows] = c0 + nearest(x[rows], self.centroids[c0:c1])
        return out


def _fit(columns: Columns, x: np.ndarray, training_predicates, *, min_leaf_rows: int, rows_per_cluster: int | None,
         clusters_per_leaf: int | None, seed, iterations: int, share: float) -> tuple[Partitioning, np.ndarray]:
    """The partitioning fitted on the rows (a ``share`` of all), and k-means' cluster of each."""
    if rows_per_cluster is not None and clusters_per_leaf is not None:
        raise ValueError("give rows_per_cluster or clusters_per_leaf, not both")
    if (rows_per_cluster is not None and rows_per_cluster < 1) or (clusters_per_leaf is not None
                                                                   and clusters_per_leaf < 1):
        raise ValueError("rows_per_cluster and clusters_per_leaf must be >= 1")
    if not 0 < share <= 1:
        raise ValueError(f"share must lie in (0, 1], got {share}")
    rows_per_cluster = 256 if rows_per_cluster is None and clusters_per_leaf is None else rows_per_cluster
    tree = QdTree.build(columns, training_predicates, min_leaf_rows=max(1, round(min_leaf_rows * share)))
    leaf = tree.assign(columns)
    by_leaf = np.argsort(leaf, kind="stable")
    leaf_offsets = np.r_[0, np.cumsum(np.bincount(leaf, minlength=tree.num_leaves))].astype(np.int64)
    labels, centroids, leaf_clusters = np.empty(len(x), dtype=np.int64), [], [0]
    for lf in range(tree.num_leaves):
        rows = by_leaf[leaf_offsets[lf]:leaf_offsets[lf + 1]]
        if rows_per_cluster is None:
            k = clusters_per_leaf
        else:  # as many clusters as the leaf's rows in the data need
            k = -(-len(rows) // rows_per_cluster) if share == 1 else math.ceil(len(rows) / share / rows_per_cluster)
        c, local = kmeans(x[rows], k, seed=(seed, lf), iterations=iterations)
        labels[rows] = leaf_clusters[-1] + local
        centroids.append(c)
        leaf_clusters.append(leaf_clusters[-1] + len(c))
    leaf_clusters = np.array(leaf_clusters, dtype=np.int64)
    centroids = np.concatenate(centroids) if centroids else np.zeros((0, x.shape[1]), np.float32)
    return Partitioning(tree, centroids, leaf_clusters), labels


def fit_partitioning(attributes, vectors, training_predicates, *, min_leaf_rows: int = 4096,
                     rows_per_cluster: int | None = None, clusters_per_leaf: int | None = None, seed: int = 0,
                     iterations: int = 10, share: float = 1.0, types=None) -> Partitioning:
    """Fit the qd-tree and each leaf's k-means on rows that are a sample of the data (a
    ``share`` of it): the tree's minimum leaf and each leaf's clusters scale to the data.

    Parameters
    ----------
    attributes : pyarrow.Table, mapping of str to array_like, or Columns
        The sampled rows' attribute columns.
    vectors : array_like or pyarrow array
        Their ``(n, d)`` finite vectors.
    training_predicates : iterable of str or Predicate
        The training workload's predicates, repeats included.
    min_leaf_rows, rows_per_cluster, clusters_per_leaf, seed, iterations
        As for ``build``, counted in rows of the data.
    share : float, default 1.0
        The sampled rows' share of the data: the tree keeps ``min_leaf_rows * share``
        sampled rows per leaf, and a leaf of s sampled rows gets ``ceil(s / share /
        rows_per_cluster)`` clusters (at most s).
    types : mapping, optional
        Column kinds; by default inferred from ``attributes``.

    Returns
    -------
    Partitioning

    References
    ----------
    .. [1] J. Mohoney et al., "High-Throughput Vector Similarity Search in Knowledge
       Graphs", SIGMOD 2023, doi:10.1145/3589777 (section 4, the workload-aware layout).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = fit_partitioning({"year": np.arange(100) % 10}, rng.normal(size=(100, 4)),
    ...                      ['[{"col": "year", "op": "<", "value": 3}]'], min_leaf_rows=100, rows_per_cluster=200,
    ...                      share=0.1)
    >>> p.tree.num_leaves, np.diff(p.leaf_clusters).tolist()
    (2, [2, 4])
    """
    x = vectors_of(vectors)
    columns = attributes if isinstance(attributes, Columns) else Columns.from_table(attributes, types)
    if columns.num_rows != len(x) or not np.isfinite(x).all():
        raise ValueError(f"need one finite vector per row: {len(x)} vectors for {columns.num_rows} rows")
    return _fit(columns, x, training_predicates, min_leaf_rows=min_leaf_rows, rows_per_cluster=rows_per_cluster,
                clusters_per_leaf=clusters_per_leaf, seed=seed, iterations=iterations, share=share)[0]


def build(ids, vectors, attributes, training_predicates, *, min_leaf_rows: int = 4096,
          rows_per_cluster: int | None = None, clusters_per_leaf: int | None = None, seed: int = 0,
          iterations: int = 10, types=None) -> Layout:
    """Lay rows out for a workload: a qd-tree over the attributes, k-means per leaf.

    Parameters
    ----------
    ids : array_like
        Distinct integer id of each row.
    vectors : array_like or pyarrow array
        ``(n, d)`` finite vectors (see ``vectors_of``).
    attributes : pyarrow.Table, mapping of str to array_like, or Columns
        The attribute columns (strings categorical, numbers numeric).
    training_predicates : iterable of str or Predicate
        The training workload's predicates, repeats included.
    min_leaf_rows : int, default 4096
        The qd-tree's minimum leaf size. Leaves of at least 16 clusters keep probing
        selective: on the benchmark's 200,000 rows a 4096-row minimum reached recall@10
        0.95 with about a third of the work of a 1024-row one (benchmarks/hqi.py).
    rows_per_cluster : int, optional
        Each leaf gets ``ceil(rows / rows_per_cluster)`` clusters (default 256 rows each).
    clusters_per_leaf : int, optional
        Instead, this many clusters per leaf (fewer in a leaf with fewer rows).
    seed : int, default 0
        k-means of leaf l draws from ``default_rng((seed, l))``.
    iterations : int, default 10
        Lloyd iterations per leaf.
    types : mapping, optional
        Column kinds; by default inferred from ``attributes``.

    Returns
    -------
    Layout

    Raises
    ------
    ValueError
        On repeated ids, non-finite vectors, inputs of different lengths, or both
        ``rows_per_cluster`` and ``clusters_per_leaf``.

    References
    ----------
    .. [1] J. Mohoney et al., "High-Throughput Vector Similarity Search in Knowledge
       Graphs", SIGMOD 2023, doi:10.1145/3589777 (section 4, the workload-aware layout).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> layout = build(np.arange(100), rng.normal(size=(100, 4)), {"year": np.arange(100) % 10},
    ...                ['[{"col": "year", "op": "<", "value": 3}]'], min_leaf_rows=10, rows_per_cluster=20)
    >>> layout.leaf_offsets.tolist(), np.diff(layout.leaf_clusters).tolist()
    ([0, 30, 100], [2, 4])
    """
    ids, x, columns = _check_data(ids, vectors, attributes, types)
    partitioning, labels = _fit(columns, x, training_predicates, min_leaf_rows=min_leaf_rows,
                                rows_per_cluster=rows_per_cluster, clusters_per_leaf=clusters_per_leaf, seed=seed,
                                iterations=iterations, share=1.0)
    return _arrange(partitioning, ids, x, columns, labels)


def arrange(partitioning: Partitioning, ids, vectors, attributes, cluster, *, types=None) -> Layout:
    """Rows placed in their clusters, as a layout: stored sorted by cluster (hence by
    leaf), rows of one cluster in input order.

    Parameters
    ----------
    partitioning : Partitioning
    ids, vectors, attributes
        As for ``build``.
    cluster : array_like
        int, each row's cluster (``partitioning.assign``).
    types : mapping, optional
        Column kinds; by default the tree's.

    Returns
    -------
    Layout

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, attrs = rng.normal(size=(100, 4)), {"year": np.arange(100) % 10}
    >>> p = fit_partitioning({"year": attrs["year"][::2]}, x[::2], ['[{"col": "year", "op": "<", "value": 3}]'],
    ...                      min_leaf_rows=10, rows_per_cluster=20, share=0.5)
    >>> layout = arrange(p, np.arange(100), x, attrs, p.assign(attrs, x))
    >>> layout.leaf_offsets.tolist(), len(layout.centroids)
    ([0, 30, 100], 5)
    """
    ids, x, columns = _check_data(ids, vectors, attributes, partitioning.tree.types if types is None else types)
    cluster = np.asarray(cluster, dtype=np.int64)
    if cluster.shape != ids.shape or (len(cluster) and not 0 <= cluster.min() <= cluster.max()
                                      < len(partitioning.centroids)):
        raise ValueError(f"need a cluster in 0..{len(partitioning.centroids) - 1} for each of the {len(ids)} rows")
    return _arrange(partitioning, ids, x, columns, cluster)


def _arrange(partitioning: Partitioning, ids, x, columns: Columns, cluster: np.ndarray) -> Layout:
    order = np.argsort(cluster, kind="stable")
    sizes = np.bincount(cluster, minlength=len(partitioning.centroids))
    cluster_offsets = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    vectors = x[order]
    return Layout(partitioning.tree, ids[order], vectors, _squared_norms(vectors), columns.take(order),
                  cluster_offsets[partitioning.leaf_clusters], cluster_offsets,
                  partitioning.leaf_clusters.astype(np.int64), partitioning.centroids, order)


def slice_layout(ids, vectors, attributes, cluster, centroids, *, types) -> Layout:
    """Rows of some clusters of a layout as a layout of one leaf: how a task that holds
    one slice of a stored layout searches it, exactly or with the probes chosen on the
    whole layout (``search(..., probes=...)``).

    Parameters
    ----------
    ids, vectors, attributes
        The slice's rows, as for ``build``.
    cluster : array_like
        int, each row's position in ``centroids``.
    centroids : numpy.ndarray
        float32 ``(c, d)``: the slice's clusters' centroids.
    types : mapping
        The layout's column kinds (``Layout.columns.types``).

    Returns
    -------
    Layout

    Examples
    --------
    >>> s = slice_layout([5, 6, 7], np.float32([[0, 0], [9, 9], [1, 0]]), {"year": [1, 2, 3]}, [0, 1, 0],
    ...                  np.float32([[0.5, 0], [9, 9]]), types={"year": "numeric"})
    >>> s.ids.tolist(), s.cluster_offsets.tolist(), s.tree.num_leaves
    ([5, 7, 6], [0, 2, 3], 1)
    """
    ids, x, columns = _check_data(ids, vectors, attributes, types)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32).reshape(-1, x.shape[1])
    one_leaf = Partitioning(QdTree.build(columns, [], min_leaf_rows=1), centroids,
                            np.array([0, len(centroids)], dtype=np.int64))
    return arrange(one_leaf, ids, x, columns, cluster)


# ---------------------------------------------------------------------------- storage


def _attribute_arrays(columns: Columns) -> dict:
    """The attribute values a ``Columns`` holds, as Arrow arrays (NaN read as null)."""
    out = {}
    for name, kind in columns.types.items():
        values = columns.data[name]
        if kind == CATEGORICAL:
            codes = pa.array(values, pa.int32(), mask=values < 0)
            out[name] = pa.DictionaryArray.from_arrays(codes, pa.array(list(columns.categories[name]),
                                                                       pa.string())).dictionary_decode()
        else:
            ok = columns.valid[name]
            out[name] = pa.array(values, mask=None if ok is None else ~ok)
    return out


def layout_tables(layout: Layout) -> tuple[pa.Table, pa.Table]:
    """A layout's rows and clusters as the hqi-index job stores them.

    Parameters
    ----------
    layout : Layout

    Returns
    -------
    rows : pyarrow.Table
        ``schemas.datasets.hqi_layout``: id, leaf, cluster, vector and the attributes, in
        stored order.
    centroids : pyarrow.Table
        ``schemas.datasets.hqi_centroids``: leaf, cluster, centroid, rows.
    """
    attrs = _attribute_arrays(layout.columns)
    rows = pa.table({"id": layout.ids, "leaf": layout.leaf.astype(np.int32),
                     "cluster": layout.cluster.astype(np.int32), "vector": vector_array(layout.vectors), **attrs})
    schema = hqi_layout(layout.dim, [pa.field(name, a.type) for name, a in attrs.items()])
    clusters = np.arange(len(layout.centroids))
    centroids = pa.table({"leaf": (np.searchsorted(layout.leaf_clusters, clusters, "right") - 1).astype(np.int32),
                          "cluster": clusters.astype(np.int32), "centroid": vector_array(layout.centroids),
                          "rows": np.diff(layout.cluster_offsets)})
    return rows.cast(schema), centroids.cast(hqi_centroids(layout.dim))


def save_layout(layout: Layout, path: str) -> None:
    """Write a layout as the hqi-index job does, under directory ``path``: ``layout/`` and
    ``centroids/`` (``layout_tables``, one Parquet file each) and ``tree.json``.

    Parameters
    ----------
    layout : Layout
    path : str
        A local directory or any URI pyarrow writes to.

    Examples
    --------
    >>> import tempfile
    >>> rng = np.random.default_rng(0)
    >>> layout = build(np.arange(100), rng.normal(size=(100, 4)), {"genre": ["a", "b", None, "c"] * 25},
    ...                ['[{"col": "genre", "op": "=", "value": "a"}]'], min_leaf_rows=10, rows_per_cluster=20)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_layout(layout, d)
    ...     again = load_layout(d)
    >>> np.array_equal(again.ids, layout.ids), np.array_equal(again.cluster_offsets, layout.cluster_offsets)
    (True, True)
    """
    import pyarrow.parquet as pq

    fs, root = open_input(path)
    rows, centroids = layout_tables(layout)
    for name, table in (("layout", rows), ("centroids", centroids)):
        fs.create_dir(f"{root}/{name}", recursive=True)
        pq.write_table(table, f"{root}/{name}/part-00000.parquet", filesystem=fs, compression="zstd")
    with fs.open_output_stream(f"{root}/tree.json") as out:
        out.write(json.dumps(layout.tree.to_dict()).encode())


def load_layout(path: str) -> Layout:
    """Read a layout that the hqi-index job (or ``save_layout``) wrote under ``path``.

    Parameters
    ----------
    path : str
        The directory holding ``layout/``, ``centroids/`` and ``tree.json`` (a local path or
        any URI pyarrow reads).

    Returns
    -------
    Layout
        Rows of one cluster in stored order.

    Raises
    ------
    ValueError
        When the files do not describe one layout (clusters not numbered 0.. leaf by leaf,
        a row's leaf not its cluster's).
    """
    fs, root = open_input(path)
    with fs.open_input_stream(f"{root}/tree.json") as f:
        tree = QdTree.from_dict(json.loads(f.read()))
    read = lambda name: pads.dataset(f"{root}/{name}", filesystem=fs, format="parquet").to_table()  # noqa: E731
    centroids = read("centroids").sort_by("cluster")
    rows = read("layout")
    cluster, leaf = centroids["cluster"].to_numpy(), centroids["leaf"].to_numpy()
    if not np.array_equal(cluster, np.arange(len(cluster))) or (np.diff(leaf) < 0).any() or \
            (len(leaf) and not 0 <= leaf.min() <= leaf.max() < tree.num_leaves):
        raise ValueError(f"{path}: centroids/ must number the clusters 0.. leaf by leaf")
    leaf_clusters = np.r_[0, np.cumsum(np.bincount(leaf, minlength=tree.num_leaves))].astype(np.int64)
    partitioning = Partitioning(tree, vectors_of(centroids["centroid"]), leaf_clusters)
    row_cluster = rows["cluster"].to_numpy().astype(np.int64)
    if len(rows) and (row_cluster.max() >= len(cluster) or
                      not np.array_equal(partitioning.leaf_of(row_cluster), rows["leaf"].to_numpy())):
        raise ValueError(f"{path}: a row of layout/ names a cluster that centroids/ lacks or another leaf")
    return arrange(partitioning, rows["id"].to_numpy(), rows["vector"], rows.select(list(tree.types)), row_cluster)


def _check_data(ids, vectors, attributes, types):
    ids = np.asarray(ids)
    if ids.ndim != 1 or (len(ids) and not np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(f"ids must be a 1-D integer array, got {ids.dtype} of shape {ids.shape}")
    ids = ids.astype(np.int64)
    if len(np.unique(ids)) != len(ids):
        raise ValueError("ids must be distinct")
    x = vectors_of(vectors)
    if len(x) != len(ids) or not np.isfinite(x).all():
        raise ValueError(f"need one finite vector per id: {len(x)} vectors for {len(ids)} ids")
    columns = attributes if isinstance(attributes, Columns) else Columns.from_table(attributes, types)
    if columns.num_rows != len(ids):
        raise ValueError(f"attributes have {columns.num_rows} rows for {len(ids)} ids")
    return ids, x, columns


# ---------------------------------------------------------------------------- execution


class SearchStats(NamedTuple):
    """Work done for a batch, per query in input order where an array."""

    rows_scanned: np.ndarray  # int64: rows of the leaves (exact) or clusters (approximate) probed
    distance_computations: np.ndarray  # int64: distances computed by the products
    predicate_evaluations: int  # (slice, distinct predicate) masks evaluated
    predicate_rows: int  # rows those masks covered


class SearchResult(NamedTuple):
    """Each query's results in rank order, queries in input order."""

    query_id: np.ndarray  # int64
    rank: np.ndarray  # int32, 0-based
    id: np.ndarray  # int64
    distance: np.ndarray  # float32, squared L2, ascending per query (ties by id)
    stats: SearchStats

    def to_arrow(self) -> pa.Table:
        """The results with ``RESULT_SCHEMA``."""
        return pa.Table.from_arrays([pa.array(self.query_id, pa.int64()), pa.array(self.rank, pa.int32()),
                                     pa.array(self.id, pa.int64()), pa.array(self.distance, pa.float32())],
                                    schema=RESULT_SCHEMA)


@numba.njit(cache=True, nogil=True)
def _exact_distances(x, rows, q, qpos):
    """Squared L2 of each (row, query) pair, summed in float64 in dimension order (no
    reassociation: the same value whichever batch asks), rounded to float32."""
    out = np.empty(len(rows), dtype=np.float32)
    for i in range(len(rows)):
        r, j = rows[i], qpos[i]
        s = 0.0
        for t in range(x.shape[1]):
            diff = np.float64(x[r, t]) - np.float64(q[j, t])
            s += diff * diff
        out[i] = s
    return out


@numba.njit(cache=True, nogil=True)
def _kept_columns(masks, r):
    """Each mask row's true columns, in order, then a last row of every column: (columns,
    counts)."""
    listed = np.empty((len(masks) + 1, r), np.int64)
    count = np.empty(len(masks) + 1, np.int64)
    for w in range(len(masks)):
        c = 0
        for j in range(r):
            listed[w, c] = j  # written always, kept when the mask says: no branch on the mask
            c += masks[w, j]
        count[w] = c
    listed[-1] = np.arange(r)
    count[-1] = r
    return listed, count


@numba.njit(cache=True, nogil=True, inline="always")
def _insert(top, a, b, u):
    """``u`` into the ascending ``top[a:b]`` when below its last, dropping the last."""
    if u < top[b - 1]:
        s = b - 1
        while s > a and top[s - 1] > u:
            top[s] = top[s - 1]
            s -= 1
        top[s] = u


@numba.njit(cache=True, nogil=True)
def _grown(out_q, out_r, out_v):
    """The candidate buffers at twice their size: they start small, since a product's
    candidates are few (an allocation of the product's size costs page faults, and with
    threads the kernel's locks)."""
    n = len(out_q)
    q, r, v = np.empty(2 * n, np.int64), np.empty(2 * n, np.int64), np.empty(2 * n, np.float32)
    q[:n], r[:n], v[:n] = out_q, out_r, out_v
    return q, r, v


@numba.njit(cache=True, nogil=True, inline="always")
def _candidate(top, a, b, e, q, row, value, out_q, out_r, out_v, n):
    """``row`` a candidate of query q: its upper bound ``value + e`` offered to the query's
    k smallest ``top[a:b]``, and (q, row, value) appended to the buffers (n used). Returns
    the query's new limit (``top[b - 1] + e``), the buffers and n."""
    _insert(top, a, b, np.float64(value) + e)
    if n == len(out_q):
        out_q, out_r, out_v = _grown(out_q, out_r, out_v)
    out_q[n], out_r[n], out_v[n] = q, row, value
    return top[b - 1] + e, out_q, out_r, out_v, n + 1


@numba.njit(cache=True, nogil=True)
def _merge_top(top, other, starts):
    """Each query's k smallest of ``top`` and ``other`` (both ascending per query) into ``top``."""
    for q in range(len(starts) - 1):
        a, b = starts[q], starts[q + 1]
        for t in range(a, b):
            if other[t] >= top[b - 1]:
                break
            _insert(top, a, b, other[t])


@numba.njit(cache=True, nogil=True)
def _scan(d, xn, qs, masks, which, rows, lo, err_base, qn, slack, top, starts):
    """One product's candidates: the entries of ``d + xn`` (``-2 x.q`` plus ``||x||^2``,
    float32; rows ``rows`` or ``lo + column``; for query i those ``masks[which[i]]``
    keeps, all where ``which[i] < 0``) whose lower bound ``v - e`` is at most the k-th
    smallest upper bound ``v + e`` its query has met so far, ``e`` the product's error
    bound. ``top[starts[q]:starts[q+1]]`` holds query q's k smallest upper bounds,
    ascending, and is updated; the last of them, plus ``||q||^2``, is at least the query's
    k-th distance. Returns (query position, row, value) of the candidates."""
    nq, r = d.shape
    listed, count = _kept_columns(masks, r)  # a query reads only the entries its predicate keeps
    size = 64 * nq + 1024
    out_q, out_r, out_v = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.float32)
    n = 0
    for i in range(nq):
        q = qs[i]
        a, b = starts[q], starts[q + 1]
        if a == b:
            continue
        e = slack * (err_base + qn[q])
        w = which[i]  # -1: the last row, every column
        limit = top[b - 1] + e  # a row is a candidate while its value is at most this
        for t in range(count[w]):
            j = listed[w, t]
            f = d[i, j] + xn[j]
            if f <= limit:
                limit, out_q, out_r, out_v, n = _candidate(top, a, b, e, q, rows[j] if len(rows) else lo + j, f,
                                                           out_q, out_r, out_v, n)
    return out_q[:n].copy(), out_r[:n].copy(), out_v[:n].copy()


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _dot(x, i, y):
    """``x[i] . y`` in float32, summed in any order (vectorised): within the same error
    bound as a product's."""
    s = np.float32(0)
    for t in range(len(y)):
        s += x[i, t] * y[t]
    return s


@numba.njit(cache=True, nogil=True)
def _scan_rows(vectors, norms, q2, lo, masks, which, qs, err_base, qn, slack, top, starts):
    """``_scan`` for queries whose masks keep few of the rows ``lo + column``: each kept
    row's value ``||x||^2 + x.(-2q)`` computed alone rather than by a shared product."""
    listed, count = _kept_columns(masks, masks.shape[1])
    size = 64 * len(qs) + 1024
    out_q, out_r, out_v = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.float32)
    n = 0
    for i in range(len(qs)):
        q = qs[i]
        a, b = starts[q], starts[q + 1]
        if a == b:
            continue
        e = slack * (err_base + qn[q])
        w = which[i]
        limit = top[b - 1] + e
        for t in range(count[w]):
            row = lo + listed[w, t]
            f = norms[row] + _dot(vectors, row, q2[q])
            if f <= limit:
                limit, out_q, out_r, out_v, n = _candidate(top, a, b, e, q, row, f, out_q, out_r, out_v, n)
    return out_q[:n].copy(), out_r[:n].copy(), out_v[:n].copy()


class _Batch:
    """The candidates of a batch: per product, each query's rows that may be in its top k."""

    def __init__(self, queries: Queries):
        self.q = queries
        self.q2 = -2 * queries.vectors  # exact: a power of two
        self.qn = _squared_norms(queries.vectors).astype(np.float64)
        m = len(queries.k)
        self.starts = np.r_[0, np.cumsum(queries.k)].astype(np.int64)
        self.top = np.full(self.starts[-1], np.inf)  # per query its k smallest upper bounds (_scan)
        self.rows_scanned = np.zeros(m, np.int64)
        self.computed = np.zeros(m, np.int64)
        self.evaluations = self.evaluated_rows = 0
        self.qpos, self.rows, self.approx = [], [], []
        self.slack = _slack(queries.vectors.shape[1])
        self.top_norm = 0.0  # the largest ||x||^2 of the rows multiplied
        self.buffer = None  # _scratch's

    def fork(self) -> _Batch:
        """A batch for a thread: the same queries, its own bounds and candidates, for work
        on (query, row) pairs that no other fork meets; ``join`` merges it back."""
        other = object.__new__(_Batch)
        other.__dict__.update(self.__dict__)
        other.top = np.full(len(self.top), np.inf)
        other.rows_scanned, other.computed = np.zeros_like(self.rows_scanned), np.zeros_like(self.computed)
        other.evaluations = other.evaluated_rows = 0
        other.qpos, other.rows, other.approx = [], [], []
        other.buffer = None
        return other

    def join(self, forks) -> None:
        """Add the forks' work: their counts and candidates, and each query's k smallest
        upper bounds among its own and theirs (bounds of distinct rows)."""
        for f in forks:
            _merge_top(self.top, f.top, self.starts)
            self.rows_scanned += f.rows_scanned
            self.computed += f.computed
            self.evaluations += f.evaluations
            self.evaluated_rows += f.evaluated_rows
            self.qpos += f.qpos
            self.rows += f.rows
            self.approx += f.approx
            self.top_norm = max(self.top_norm, f.top_norm)

    def mask(self, predicate: Predicate, columns: Columns, lo: int, hi: int):
        """The predicate over rows lo:hi (None when TRUE)."""
        if predicate.is_true:
            return None
        self.evaluations += 1
        self.evaluated_rows += hi - lo
        return predicate.mask(columns, slice(lo, hi))

    def probe(self, vectors, norms, lo: int, hi: int, mask, qs: np.ndarray, *, masks=None, which=None):
        """Queries ``qs`` against the rows lo:hi that ``mask`` keeps (all when None); or,
        with ``masks`` (a 2-D boolean array over rows lo:hi, each row some query's) and
        ``which``, query i against those ``masks[which[i]]`` keeps."""
        self.rows_scanned[qs] += hi - lo
        if masks is None:
            masks = np.ones((1, hi - lo), bool) if mask is None else mask[None, :]
            which = np.full(len(qs), -1 if mask is None else 0, np.int64)
            union = masks[0]
        else:
            kept = np.count_nonzero(masks, axis=1)
            alone = kept[which] < _ALONE * (hi - lo)
            if alone.any():
                self._rows_alone(vectors, norms, lo, hi, masks, which[alone], qs[alone], kept[which[alone]])
                qs, which = qs[~alone], which[~alone]
                if not len(qs):
                    return
            used = np.zeros(len(masks), bool)
            used[which] = True
            union = masks[used].any(axis=0)
        valid = int(np.count_nonzero(union))
        if not valid:
            return
        rows = _NO_ROWS
        if valid < _DENSE * (hi - lo):  # sparse: gather the rows some query wants
            keep = np.flatnonzero(union)
            rows, masks = lo + keep, masks[:, keep]
        x = vectors[lo:hi] if not len(rows) else vectors[rows]
        xn = norms[lo:hi] if not len(rows) else norms[rows]
        self.computed[qs] += len(x)
        top_norm = float(xn.max())
        self.top_norm = max(self.top_norm, top_norm)
        step = max(1, _BLOCK // len(x))
        for s in range(0, len(qs), step):
            b = slice(s, s + step)
            d = np.matmul(self.q2[qs[b]], x.T, out=self._scratch(len(qs[b]), len(x)))  # -2 x.q; _scan adds ||x||^2
            g, r, v = _scan(d, xn, qs[b], masks, which[b], rows, lo, top_norm, self.qn, self.slack, self.top,
                            self.starts)
            self.qpos.append(g)
            self.rows.append(r)
            self.approx.append(v)

    def _scratch(self, m: int, n: int) -> np.ndarray:
        """An (m, n) float32 array for a product, reused (a fresh one per product costs page
        faults, and with threads the kernel's locks)."""
        if self.buffer is None or len(self.buffer) < m * n:
            self.buffer = np.empty(max(m * n, 1 << 16), np.float32)
        return self.buffer[:m * n].reshape(m, n)

    def _rows_alone(self, vectors, norms, lo: int, hi: int, masks, which, qs, kept):
        """Queries ``qs`` against the few rows lo:hi that ``masks[which]`` keep, one
        distance at a time (``_scan_rows``)."""
        top_norm = float(norms[lo:hi].max())
        self.top_norm = max(self.top_norm, top_norm)
        self.computed[qs] += kept  # each query's rows kept by its mask
        g, r, v = _scan_rows(vectors, norms, self.q2, lo, masks, which, qs, top_norm, self.qn, self.slack, self.top,
                             self.starts)
        self.qpos.append(g)
        self.rows.append(r)
        self.approx.append(v)

    def _candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """(query position, row) of the candidates still within the error bound of their
        query's final k-th bound: a candidate kept early, before later products tightened
        the bound, is dropped here (the bound only falls, so the test stays conservative)."""
        if not self.qpos:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        qpos, rows, approx = np.concatenate(self.qpos), np.concatenate(self.rows), np.concatenate(self.approx)
        kth = np.where(self.q.k > 0, self.top[np.maximum(self.starts[1:] - 1, 0)], -np.inf)
        keep = approx.astype(np.float64) - self.slack * (self.top_norm + self.qn[qpos]) <= kth[qpos]
        return qpos[keep], rows[keep]

    def ranked(self, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, ...]:
        """Exact distances of the candidates; each query's k best in (distance, id) order:
        (query position, rank, id, distance), and the batch's ``SearchStats``."""
        qpos, rows = self._candidates()
        dist = _exact_distances(vectors, rows.astype(np.int64), self.q.vectors, qpos.astype(np.int64))
        rid = ids[rows]
        order = np.lexsort((rid, dist, qpos))
        qpos, rid, dist = qpos[order], rid[order], dist[order]
        rank = np.arange(len(qpos)) - np.searchsorted(qpos, qpos, "left")
        keep = rank < self.q.k[qpos]
        stats = SearchStats(self.rows_scanned, self.computed, self.evaluations, self.evaluated_rows)
        return qpos[keep], rank[keep].astype(np.int32), rid[keep], dist[keep], stats

    def result(self, ids: np.ndarray, vectors: np.ndarray) -> SearchResult:
        """``ranked`` as a SearchResult."""
        qpos, rank, rid, dist, stats = self.ranked(ids, vectors)
        return SearchResult(self.q.query_id[qpos], rank, rid, dist, stats)


def _by_predicate(predicates: list) -> list[tuple[Predicate, np.ndarray]]:
    """The distinct predicates, each with the positions of its queries."""
    index: dict = {}
    owner = np.array([index.setdefault(p, len(index)) for p in predicates], dtype=np.int64)
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(len(index) + 1))
    return [(p, order[bounds[i]:bounds[i + 1]]) for p, i in index.items()]


def search(layout: Layout, queries: Queries, *, nprobe: int | None = None, probes=None,
           threads: int = 1) -> SearchResult:
    """Answer a batch of hybrid queries on a layout (see the module docstring).

    Parameters
    ----------
    layout : Layout
    queries : Queries
        Parsed queries (``parse_workload``); k may be 0 (no results).
    nprobe : int, optional
        None: exact, every cluster of every reached leaf. Else the number of nearest
        clusters (holding a satisfying row) each query probes before it probes further
        ones only to reach k results (``choose_clusters``).
    probes : tuple of two int arrays, optional
        Instead of ``nprobe``: (query positions, cluster numbers), the clusters each query
        probes, as ``choose_clusters`` chose them on a whole layout of which ``layout`` is
        a slice (``slice_layout``); probed in the order given.
    threads : int, default 1
        Threads at once, each with one BLAS thread (BLAS and the numba kernels release the
        GIL): the distinct predicates are routed and their clusters chosen in parts of
        about as many queries, then the clusters are probed in parts, each cluster by one
        thread for all its queries (the products stay shared). The results are the same.

    Returns
    -------
    SearchResult
        ``min(k, satisfying rows)`` results per query in (distance, id) order (with
        ``probes``: among the probed clusters' rows); in exact mode exactly
        ``exact_search``'s.

    References
    ----------
    .. [1] J. Mohoney et al., "High-Throughput Vector Similarity Search in Knowledge
       Graphs", SIGMOD 2023, doi:10.1145/3589777 (section 5, batch execution).

    Examples
    --------
    >>> from sigil.transforms.predicates import parse
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 4)).astype(np.float32)
    >>> attrs = {"year": np.arange(100) % 10}
    >>> layout = build(np.arange(100) * 10, x, attrs, ['[{"col": "year", "op": "<", "value": 3}]'],
    ...                min_leaf_rows=10, rows_per_cluster=20)
    >>> p = parse('[{"col": "year", "op": "=", "value": 4}]', layout.columns.types)
    >>> r = search(layout, Queries(np.array([7]), np.array([3]), x[[4]], [p]))
    >>> r.id.tolist(), r.rank.tolist(), float(r.distance[0]), r.stats.rows_scanned.tolist()
    ([40, 740, 940], [0, 1, 2], 0.0, [70])
    """
    if nprobe is not None and (nprobe < 1 or probes is not None):
        raise ValueError(f"nprobe must be None (exact) or >= 1, without probes; got {nprobe}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1; got {threads}")
    queries = _check_queries(queries, layout.dim, layout.columns.types)
    qpos, rank, rid, dist, stats = _ranked(layout, queries, nprobe, probes, threads)
    return SearchResult(queries.query_id[qpos], rank, rid, dist, stats)


def _ranked(layout: Layout, queries: Queries, nprobe: int | None, probes, threads: int = 1) -> tuple[np.ndarray, ...]:
    """The work of ``search`` on checked queries: ``_Batch.ranked``'s arrays."""
    batch = _Batch(queries)
    listed = None if probes is None else _listed(probes, len(queries.k), len(layout.centroids))
    groups = [(slot, p, qs[queries.k[qs] > 0]) for slot, (p, qs) in enumerate(_by_predicate(queries.predicates))]
    groups = [g for g in groups if len(g[2]) and not g[1].is_false]

    def route(part):  # masks, then exact probes or the clusters to probe, per predicate
        fork = batch.fork()
        masks, pairs = {}, []  # approximate mode: (slot, leaf) -> mask; per predicate its (slot, query, cluster, rank)
        for slot, predicate, qs in part:
            if listed is not None:
                mine = listed[np.isin(listed[:, 0], qs)]
                leaves = np.unique(np.searchsorted(layout.leaf_clusters, mine[:, 1], "right") - 1)
            else:
                leaves = layout.tree.route(predicate)
            leaf_masks = {lf: fork.mask(predicate, layout.columns, *layout.leaf_offsets[lf:lf + 2]) for lf in leaves}
            if nprobe is None and listed is None:
                for lf in leaves:
                    fork.probe(layout.vectors, layout.norms, *layout.leaf_offsets[lf:lf + 2], leaf_masks[lf], qs)
                continue
            masks.update({(slot, lf): m for lf, m in leaf_masks.items()})
            chosen = (mine[:, 0], mine[:, 1], np.arange(len(mine))) if listed is not None else \
                _choose(layout, leaves, leaf_masks, queries, qs, nprobe)
            pairs.append((np.full(len(chosen[0]), slot), *chosen))
        return fork, masks, pairs

    sizes = np.zeros(threads, np.int64)
    parts = [[] for _ in range(threads)]
    for g in sorted(groups, key=lambda g: -len(g[2])):  # whole predicates, the largest first, to the least loaded
        t = int(sizes.argmin())
        parts[t].append(g)
        sizes[t] += len(g[2])
    done = _in_threads(route, parts)
    batch.join([fork for fork, _, _ in done])
    masks = {key: m for _, part, _ in done for key, m in part.items()}
    pairs = [p for *_, part in done for p in part]
    if pairs:
        _probe_listed(layout, batch, masks, *(np.concatenate(p) for p in zip(*pairs, strict=True)), threads=threads)
    return batch.ranked(layout.ids, layout.vectors)


def _in_threads(fn, parts: list) -> list:
    """``fn`` of each part, in a thread each when there are several, with one BLAS thread
    each (the parts are the parallelism: nested BLAS threads would oversubscribe the
    cores; BLAS and the numba kernels release the GIL)."""
    if len(parts) == 1:
        return [fn(parts[0])]
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(len(parts)) as pool:
        return list(pool.map(fn, parts))


def _listed(probes, m: int, clusters: int) -> np.ndarray:
    """``probes`` as an (n, 2) array of (query position, cluster), checked."""
    qpos, cluster = (np.asarray(a, dtype=np.int64).ravel() for a in probes)
    if len(qpos) != len(cluster) or (len(qpos) and not (0 <= qpos.min() and qpos.max() < m and 0 <= cluster.min()
                                                         and cluster.max() < clusters)):
        raise ValueError(f"probes must pair query positions in 0..{m - 1} with clusters in 0..{clusters - 1}")
    return np.stack([qpos, cluster], axis=1)


def _probe_counts(order: np.ndarray, satisfying: np.ndarray, k: np.ndarray, nprobe: int) -> np.ndarray:
    """Clusters each query probes, in its ``order``: nprobe, or more until they hold its k."""
    reach = np.cumsum(satisfying[order], axis=1)
    return np.minimum(np.maximum(nprobe, (reach < k[:, None]).sum(axis=1) + 1), order.shape[1])


def choose_clusters(vectors, k, centroids, satisfying, nprobe: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The clusters each query probes in approximate mode: its ``nprobe`` nearest by
    centroid (squared L2, ties to the lower position), then further ones in the same order
    until the probed ones hold its k satisfying rows.

    The order comes from float32 products. Wherever their error bound (the module
    docstring's) does not separate the distances on each side of the boundaries that
    decide the probed set (after the nprobe-th cluster, and each further one probed), the
    query is ordered by exact float64 sums instead. So the clusters a query probes do not
    depend on the other queries it comes with; their order, which only schedules the
    probes, may.

    Parameters
    ----------
    vectors : numpy.ndarray
        float32 ``(m, d)``, the queries'.
    k : numpy.ndarray
        int, the queries'.
    centroids : numpy.ndarray
        float32 ``(c, d)``: the candidate clusters', e.g. those of the leaves the queries'
        predicate reaches that hold a row satisfying it.
    satisfying : numpy.ndarray
        int, per candidate its rows that satisfy the predicate (> 0).
    nprobe : int
        At least 1.

    Returns
    -------
    query : numpy.ndarray
        int64 position of the query of each probe.
    cluster : numpy.ndarray
        int64 position of the candidate it probes.
    rank : numpy.ndarray
        int64 rank of the candidate in the query's order (0: nearest, by the float32
        products unless they were in doubt).
        Probes come by query, then rank.

    References
    ----------
    .. [1] J. Mohoney et al., "High-Throughput Vector Similarity Search in Knowledge
       Graphs", SIGMOD 2023, doi:10.1145/3589777 (section 5.2, cluster probing).

    Examples
    --------
    >>> c = np.float32([[0, 0], [1, 0], [5, 5]])
    >>> q, cluster, rank = choose_clusters(np.float32([[0.9, 0]]), np.array([3]), c, np.array([2, 2, 9]), 1)
    >>> q.tolist(), cluster.tolist(), rank.tolist()
    ([0, 0], [1, 0], [0, 1])
    """
    q = np.ascontiguousarray(vectors, dtype=np.float32)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    k, satisfying, n = np.asarray(k, dtype=np.int64), np.asarray(satisfying, dtype=np.int64), len(centroids)
    cn = _squared_norms(centroids)
    d = q @ centroids.T
    d *= -2
    d += cn
    lead = 2 * nprobe + 16
    if n <= 2 * lead:
        order = np.argsort(d, axis=1, kind="stable")
        probes, _ = _probes_in(order, d, q, k, centroids, cn, satisfying, nprobe)
        g, j = np.nonzero(np.arange(n) < probes[:, None])
        return g, order[g, j], j
    # only the nearest `lead` clusters sorted (ties to the lower position): enough for most queries
    part = np.argpartition(d, lead - 1, axis=1)[:, :lead]
    vals = np.take_along_axis(d, part, axis=1)
    order = np.take_along_axis(part, np.lexsort((part, vals)), axis=1)
    sure = (vals < vals.max(axis=1, keepdims=True)).sum(axis=1)  # leading positions surely in place
    probes, doubt = _probes_in(order, d, q, k, centroids, cn, satisfying, nprobe)
    whole = probes + 1 > np.where(doubt, lead, sure)  # the rest of the order is needed: sort it all
    g, j = np.nonzero((np.arange(lead) < probes[:, None]) & ~whole[:, None])
    out = [(g, order[g, j], j)]
    if whole.any():
        rows = np.flatnonzero(whole)
        full = np.argsort(d[rows], axis=1, kind="stable")
        p, _ = _probes_in(full, d[rows], q[rows], k[rows], centroids, cn, satisfying, nprobe)
        gw, jw = np.nonzero(np.arange(n) < p[:, None])
        out.append((rows[gw], full[gw, jw], jw))
    g, c, j = (np.concatenate(a) for a in zip(*out, strict=True))
    by = np.lexsort((j, g))
    return g[by], c[by], j[by]


def _probes_in(order, d, q, k, centroids, cn, satisfying, nprobe):
    """Probe counts over the clusters of ``order`` (each row's nearest first, possibly only
    the leading ones), and which rows the float32 error bound left in doubt: those are
    reordered in place by exact float64 sums."""
    n = order.shape[1]
    probes = _probe_counts(order, satisfying, k, nprobe)
    # The probed set is order[:probes], and the count depends only on the sets order[:j] for j = nprobe..probes.
    # Where the distances on each side of those boundaries are more than twice the bound apart, exact sums would
    # draw the same sets; the order inside a set only schedules the probes.
    gaps = np.diff(np.take_along_axis(d, order, axis=1).astype(np.float64), axis=1)
    err = _slack(q.shape[1]) * (np.float64(cn.max(initial=0)) + _squared_norms(q))
    boundary = (np.arange(n - 1) >= nprobe - 1) & (np.arange(n - 1) < probes[:, None])
    doubt = ((gaps <= 2 * err[:, None]) & boundary).any(axis=1) if n > 1 else np.zeros(len(q), dtype=bool)
    if doubt.any():
        order[doubt] = np.argsort(_square_distances(q[doubt], centroids), axis=1, kind="stable")[:, :n]
        probes[doubt] = _probe_counts(order[doubt], satisfying, k[doubt], nprobe)
    return probes, doubt


@numba.njit(cache=True, nogil=True)
def _segment_counts(mask, bounds):
    """The true entries of ``mask[bounds[i]:bounds[i + 1]]`` for each i."""
    out = np.zeros(len(bounds) - 1, np.int64)
    for i in range(len(out)):
        for j in range(bounds[i], bounds[i + 1]):
            out[i] += mask[j]
    return out


def _choose(layout: Layout, leaves, masks: dict, queries: Queries, qs: np.ndarray, nprobe: int):
    """Approximate mode for the queries ``qs`` of one predicate: (query, cluster, rank) of
    the clusters ``choose_clusters`` picks among those of its leaves holding a satisfying
    row."""
    clusters, valid = [], []
    for lf in leaves:
        c0, c1 = layout.leaf_clusters[lf:lf + 2]
        bounds = layout.cluster_offsets[c0:c1 + 1] - layout.leaf_offsets[lf]
        m = masks[lf]
        clusters.append(np.arange(c0, c1))
        valid.append(np.diff(bounds) if m is None else _segment_counts(m, bounds))
    clusters = np.concatenate(clusters) if clusters else np.zeros(0, np.int64)
    valid = np.concatenate(valid) if len(clusters) else np.zeros(0, np.int64)
    clusters, valid = clusters[valid > 0], valid[valid > 0]
    if not len(clusters):
        return _NO_ROWS, _NO_ROWS, _NO_ROWS
    centroids, out = layout.centroids[clusters], []
    step = max(1, _BLOCK // len(clusters))
    for s in range(0, len(qs), step):
        sub = qs[s:s + step]
        g, picked, rank = choose_clusters(queries.vectors[sub], queries.k[sub], centroids, valid, nprobe)
        out.append((sub[g], clusters[picked], rank))
    return tuple(np.concatenate(a) for a in zip(*out, strict=True))


def _probe_listed(layout: Layout, batch: _Batch, masks: dict, slot: np.ndarray, qpos: np.ndarray,
                  cluster: np.ndarray, rank: np.ndarray, *, threads: int = 1):
    """Probe every (query, cluster) pair, cluster by cluster: all the queries that probe a
    cluster, whatever their predicates, share one product over its rows, each query
    keeping the rows its predicate's mask (``masks[(slot, leaf)]``, None for TRUE) keeps;
    the clusters some query ranks first go first (early k-th bounds prune later ones).
    With threads, each takes every threads-th cluster in that order."""
    by_cluster = np.lexsort((qpos, slot, cluster))
    slot, qpos, cluster, rank = slot[by_cluster], qpos[by_cluster], cluster[by_cluster], rank[by_cluster]
    starts = np.flatnonzero(np.r_[True, cluster[1:] != cluster[:-1]]) if len(cluster) else cluster
    ends = np.r_[starts[1:], len(cluster)].astype(np.int64)
    first = np.argsort(np.minimum.reduceat(rank, starts), kind="stable") if len(starts) else starts
    new_slot = np.r_[True, (slot[1:] != slot[:-1]) | (cluster[1:] != cluster[:-1])] if len(slot) else slot
    which = np.cumsum(new_slot) - 1  # per probe, its predicate's row among its cluster's (offset below)
    stacked = _masks_by_leaf(layout, masks)

    def run(part):
        fork = batch.fork()
        for a, b in part:
            c = cluster[a]
            lf = np.searchsorted(layout.leaf_clusters, c, "right") - 1
            lo, hi = layout.cluster_offsets[c:c + 2]
            off = layout.leaf_offsets[lf]
            slots, matrix = stacked[lf]
            used = slot[a:b][new_slot[a:b]]
            block = matrix[np.searchsorted(slots, used), lo - off:hi - off]
            fork.probe(layout.vectors, layout.norms, lo, hi, None, qpos[a:b], masks=block,
                       which=which[a:b] - which[a])
        return fork

    spans = list(zip(starts[first], ends[first], strict=True))
    batch.join(_in_threads(run, [spans[t::threads] for t in range(threads)]))


def _masks_by_leaf(layout: Layout, masks: dict) -> dict:
    """Per leaf, (its predicates' slots ascending, their masks stacked, TRUE as all rows),
    so that a cluster's masks are one slice of one array."""
    grouped: dict = {}
    for (slot, lf), m in sorted(masks.items()):
        grouped.setdefault(lf, []).append((slot, m))
    out = {}
    for lf, pairs in grouped.items():
        rows = layout.leaf_offsets[lf + 1] - layout.leaf_offsets[lf]
        out[lf] = (np.array([t for t, _ in pairs], np.int64),
                   np.stack([np.ones(rows, bool) if m is None else m for _, m in pairs]))
    return out


def exact_search(ids, vectors, attributes, queries: Queries, *, types=None) -> SearchResult:
    """Brute force, one query at a time: the predicate's mask over all rows, float32
    distances to the satisfying rows, the exact top k in (distance, id) order.

    Parameters
    ----------
    ids, vectors, attributes
        As for ``build``.
    queries : Queries
    types : mapping, optional
        Column kinds; by default inferred from ``attributes``.

    Returns
    -------
    SearchResult

    Examples
    --------
    >>> from sigil.transforms.predicates import parse
    >>> x = np.float32([[0, 0], [1, 0], [0, 1], [3, 3]])
    >>> attrs = {"genre": ["a", "b", "b", "b"]}
    >>> p = parse('[{"col": "genre", "op": "=", "value": "b"}]', {"genre": "categorical"})
    >>> r = exact_search([10, 11, 12, 13], x, attrs, Queries(np.array([0]), np.array([2]), x[[0]], [p]))
    >>> r.id.tolist(), r.distance.tolist()
    ([11, 12], [1.0, 1.0])
    """
    ids, x, columns = _check_data(ids, vectors, attributes, types)
    queries = _check_queries(queries, x.shape[1], columns.types)
    batch = _Batch(queries)
    norms = _squared_norms(x)
    for i, predicate in enumerate(queries.predicates):
        if queries.k[i] > 0 and not predicate.is_false:
            batch.probe(x, norms, 0, len(x), batch.mask(predicate, columns, 0, len(x)), np.array([i]))
    return batch.result(ids, x)


def recall_at_k(result: SearchResult, truth: SearchResult, k: int, *, rtol: float = 1e-5) -> float:
    """Mean recall@k, tie-aware: a returned row among a query's first k counts when its
    distance is at most the true k-th distance (relative tolerance ``rtol``).

    Parameters
    ----------
    result : SearchResult
        The answers to judge.
    truth : SearchResult
        Exact answers of the same queries with at least k results each where the data has
        them (e.g. ``exact_search`` with the same k), each query's rows together in rank
        order, as ``search`` and ``exact_search`` return them.
    k : int
    rtol : float, default 1e-5

    Returns
    -------
    float
        The mean over queries with a true result of ``correct / min(k, true results)``;
        1.0 when no query has one. Whether a row satisfies the predicate is not checked.

    Examples
    --------
    >>> stats = SearchStats(np.zeros(1, np.int64), np.zeros(1, np.int64), 0, 0)
    >>> truth = SearchResult(np.array([1, 1]), np.int32([0, 1]), np.array([5, 6]), np.float32([1, 2]), stats)
    >>> found = SearchResult(np.array([1, 1]), np.int32([0, 1]), np.array([5, 9]), np.float32([1, 2]), stats)
    >>> recall_at_k(found, truth, 2), recall_at_k(found._replace(distance=np.float32([1, 3])), truth, 2)
    (1.0, 0.5)
    """
    top = truth.rank < k
    qids, first, expected = np.unique(truth.query_id[top], return_index=True, return_counts=True)
    if not len(qids):
        return 1.0
    kth = truth.distance[top][first + expected - 1]
    mine = result.rank < k
    at = np.searchsorted(qids, result.query_id[mine])
    known = (at < len(qids)) & (qids[np.minimum(at, len(qids) - 1)] == result.query_id[mine])
    at, dist = at[known], result.distance[mine][known]
    correct = np.bincount(at[dist <= kth[at] + rtol * np.maximum(1.0, np.abs(kth[at]))], minlength=len(qids))
    return float(np.mean(np.minimum(correct, expected) / expected))
