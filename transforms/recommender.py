"""Matrix-factorisation recommendation over hashed embedding tables, trained with BPR and
scored by full-ranking Recall@K and NDCG@K.

Embedding-table compression (GraphHash, Wu et al., WWW 2025) maps each of ``n`` user (or
item) ids to a row of a table of ``num_rows < n`` rows: ``bucket[id]``. The double variants
map an id to two rows, ``bucket[id]`` and ``bucket2[id]`` (-1: none), and the id's vector
is their sum::

    e(id) = W[bucket[id]] + W[bucket2[id]]          (the second term only where bucket2[id] >= 0)

``RowMap`` holds one such mapping, ``rows_of`` looks the rows of ids up in numpy and
``HashedEmbedding`` is the torch module that sums them. Users and items have a table each,
or share one table (``shared``): then both mappings index that table.

``train_bpr`` fits the scores ``s(u, i) = <e_u, e_i>`` to implicit feedback with the BPR
loss (Rendle et al., UAI 2009), ``evaluate`` ranks every item for every test user and
``popularity_factors`` is the most-popular-items baseline, scored the same way.

``HashedEmbedding`` subclasses ``torch.nn.Module``: it is defined on first use (PEP 562), so
that importing this module, for the mappings and the metrics, does not import torch.

References
----------
.. [1] X. Wu, D. Loveland, R. Chen, Y. Liu, X. Chen, L. Neves, A. Jadbabaie, C. M. Ju,
   N. Shah, T. Zhao, "GraphHash: Graph Clustering Enables Parameter Efficiency in
   Recommender Systems", WWW 2025. arXiv:2412.17245
.. [2] S. Rendle, C. Freudenthaler, Z. Gantner, L. Schmidt-Thieme, "BPR: Bayesian
   Personalized Ranking from Implicit Feedback", UAI 2009. arXiv:1205.2618
.. [3] X. He, K. Deng, X. Wang, Y. Li, Y. Zhang, M. Wang, "LightGCN: Simplifying and
   Powering Graph Convolution Network for Recommendation", SIGIR 2020. arXiv:2002.02126

Example
-------
>>> from sigil.transforms.recommender import HashedEmbedding
>>> import torch
>>> table = HashedEmbedding(2, 3, bucket=np.array([0, 1, 1]), bucket2=np.array([1, -1, 0]))
>>> with torch.no_grad():
...     _ = table.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
...     table(torch.tensor([0, 1, 2])).tolist()
[[1.0, 2.0, 0.0], [0.0, 2.0, 0.0], [1.0, 2.0, 0.0]]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from sigil.transforms.nlsh import _best_columns


# ---------------------------------------------------------------- mappings


@dataclass(frozen=True, eq=False)
class RowMap:
    """Each id's row(s) of an embedding table of ``num_rows`` rows.

    Parameters
    ----------
    num_rows : int
        Rows of the table.
    bucket : numpy.ndarray
        int, one row in ``[0, num_rows)`` per id (dense ids ``0..len(bucket)-1``).
    bucket2 : numpy.ndarray, optional
        int, the second row of each id in a double mapping, or -1 where the id has one row.

    Examples
    --------
    >>> m = RowMap(3, np.array([0, 2, 2]), np.array([1, -1, 0]))
    >>> m.num_ids, m.bucket.dtype
    (3, dtype('int64'))
    >>> RowMap(2, np.array([0, 2]))
    Traceback (most recent call last):
    ...
    ValueError: bucket must lie in [0, 2), got 0..2
    """

    num_rows: int
    bucket: np.ndarray
    bucket2: np.ndarray | None = None

    def __post_init__(self):
        if self.num_rows < 1:
            raise ValueError(f"num_rows must be >= 1, got {self.num_rows}")
        object.__setattr__(self, "bucket", _ids(self.bucket, "bucket", 0, self.num_rows))
        if self.bucket2 is not None:
            object.__setattr__(self, "bucket2", _ids(self.bucket2, "bucket2", -1, self.num_rows))
            if self.bucket2.shape != self.bucket.shape:
                raise ValueError(f"bucket2 must have one entry per id ({len(self.bucket)}), got {len(self.bucket2)}")

    @property
    def num_ids(self) -> int:
        """Number of ids mapped."""
        return len(self.bucket)


def _ids(values, name: str, low: int, high: int) -> np.ndarray:
    """``values`` as a 1-d int64 array, checked to lie in ``[low, high)``."""
    values = np.asarray(values)
    if values.ndim != 1 or not (np.issubdtype(values.dtype, np.integer) or values.size == 0):
        raise ValueError(f"{name} must be a 1-d integer array, got shape {values.shape} of {values.dtype}")
    values = values.astype(np.int64, copy=False)
    if values.size and (values.min() < low or values.max() >= high):
        raise ValueError(f"{name} must lie in [{low}, {high}), got {values.min()}..{values.max()}")
    return values


def rows_of(row_map: RowMap, ids) -> np.ndarray:
    """The table rows of dense ids: ``bucket[id]`` and, for a double mapping, ``bucket2[id]``.

    Parameters
    ----------
    row_map : RowMap
        The mapping.
    ids : array_like
        int, 1-d, in ``[0, row_map.num_ids)``.

    Returns
    -------
    numpy.ndarray
        int64, shape ``(len(ids), 1)``, or ``(len(ids), 2)`` for a double mapping with -1
        where an id has no second row.

    Examples
    --------
    >>> m = RowMap(3, np.array([0, 2, 2]), np.array([1, -1, 0]))
    >>> rows_of(m, [2, 1]).tolist()
    [[2, 0], [2, -1]]
    >>> rows_of(RowMap(3, m.bucket), [2, 1]).tolist()
    [[2], [2]]
    """
    ids = _ids(ids, "ids", 0, row_map.num_ids)
    if row_map.bucket2 is None:
        return row_map.bucket[ids][:, None]
    return np.stack([row_map.bucket[ids], row_map.bucket2[ids]], axis=1)


def __getattr__(name: str):
    if name == "HashedEmbedding":
        globals()[name] = _hashed_embedding_class()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _hashed_embedding_class():
    import torch
    import torch.nn.functional as F

    class HashedEmbedding(torch.nn.Module):
        """An embedding of ids through a smaller table: ``e(id) = W[bucket[id]] + W[bucket2[id]]``.

        With ``bucket`` None the table has a row per id (``e(id) = W[id]``), a plain
        ``torch.nn.Embedding``. The rows start as N(0, std^2) draws from ``generator``.

        Parameters
        ----------
        num_rows : int
            Rows of the table ``W``.
        dim : int
            Embedding dimension.
        bucket, bucket2 : numpy.ndarray, optional
            The mapping (``RowMap``); None: one row per id.
        std : float, default 0.1
            Standard deviation of the initial rows (LightGCN's [1]_).
        generator : torch.Generator, optional
            Source of the initial rows; None: torch's global generator.

        References
        ----------
        .. [1] X. He et al., "LightGCN", SIGIR 2020. arXiv:2002.02126

        Examples
        --------
        >>> import torch
        >>> table = HashedEmbedding(2, 4, bucket=np.array([1, 1, 0]), generator=torch.Generator().manual_seed(0))
        >>> bool(torch.equal(table(torch.tensor([0, 1])), table.weight[[1, 1]]))
        True
        """

        def __init__(self, num_rows: int, dim: int, bucket=None, bucket2=None, *, std: float = 0.1,
                     generator=None):
            super().__init__()
            if bucket is None and bucket2 is not None:
                raise ValueError("bucket2 needs bucket")
            rows = None
            if bucket is not None:
                row_map = RowMap(num_rows, bucket, bucket2)
                rows = torch.from_numpy(rows_of(row_map, np.arange(row_map.num_ids)))
            self.weight = torch.nn.Parameter(torch.empty(num_rows, dim))
            torch.nn.init.normal_(self.weight, std=std, generator=generator)
            self.register_buffer("rows", rows)

        def forward(self, ids):
            ids = torch.as_tensor(ids, dtype=torch.long)
            if self.rows is None:
                return F.embedding(ids, self.weight)
            rows = self.rows[ids]
            if rows.shape[-1] == 1:
                return F.embedding(rows[..., 0], self.weight)
            vectors = F.embedding(rows.clamp(min=0), self.weight)
            return (vectors * (rows >= 0).unsqueeze(-1).to(vectors.dtype)).sum(-2)

    HashedEmbedding.__qualname__ = "HashedEmbedding"  # pickles as this module's attribute
    return HashedEmbedding


# ---------------------------------------------------------------- training


class Factors(NamedTuple):
    """A factorisation's vectors: ``s(u, i) = <user_vectors[u], item_vectors[i]>``."""

    user_vectors: np.ndarray  #: float32, ``(n_users, dim)``
    item_vectors: np.ndarray  #: float32, ``(n_items, dim)``
    losses: list  #: mean training loss of each epoch (empty for the popularity baseline)


def train_bpr(users, items, n_users: int, n_items: int, *, user_map: RowMap | None = None,
              item_map: RowMap | None = None, shared: bool = False, dim: int = 64, epochs: int = 20,
              batch_size: int = 2048, lr: float = 1e-3, reg: float = 1e-4, seed: int = 0,
              threads: int = 1) -> Factors:
    """Matrix factorisation ``s(u, i) = <e_u, e_i>`` fitted by BPR [1]_ on implicit feedback.

    For a training pair (u, i) and an item j drawn uniformly among those u has not
    interacted with, BPR maximises ``log sigmoid(s(u, i) - s(u, j))``; each mini-batch ``B``
    minimises, with Adam [3]_ at learning rate ``lr``::

        L = mean_B -log sigmoid(<e_u, e_i> - <e_u, e_j>) + reg / 2 * mean_B (|e_u|^2 + |e_i|^2 + |e_j|^2)

    (the L2 term on the batch's embeddings as in LightGCN [2]_). ``e`` are ``HashedEmbedding``
    vectors, the sums of their mapped rows (GraphHash [4]_), or full tables where a mapping
    is None. Every epoch is one pass over the training pairs in a seeded random order,
    ``batch_size`` at a time; each pair's negative j is drawn uniformly among the items its
    user has no training interaction with (any item, for a user who has them all).

    Deterministic: the initial rows come from a ``torch.Generator`` and the order and
    negatives from a numpy ``Generator``, both seeded by ``seed``; torch's global generator
    is not used. torch runs ``threads`` intra-op threads (process-wide, restored on return);
    the same seed and ``threads`` give bit-identical vectors on one machine.

    Parameters
    ----------
    users, items : array_like
        int, the training interactions: pair ``k`` is ``(users[k], items[k])``, dense ids.
    n_users, n_items : int
        Numbers of users and items.
    user_map, item_map : RowMap, optional
        Each side's mapping into its table (``num_ids`` must be ``n_users`` / ``n_items``);
        None: a full table (one row per id).
    shared : bool, default False
        Users and items share one table: both mappings are required and index the same
        ``num_rows`` rows.
    dim : int, default 64
    epochs : int, default 20
    batch_size : int, default 2048
    lr : float, default 1e-3
        Adam's learning rate.
    reg : float, default 1e-4
        L2 weight ``reg`` above.
    seed : int, default 0
    threads : int, default 1
        torch's intra-op threads while training.

    Returns
    -------
    Factors
        The vectors of every user and item, and the mean loss of each epoch.

    References
    ----------
    .. [1] S. Rendle, C. Freudenthaler, Z. Gantner, L. Schmidt-Thieme, "BPR: Bayesian
       Personalized Ranking from Implicit Feedback", UAI 2009. arXiv:1205.2618
    .. [2] X. He, K. Deng, X. Wang, Y. Li, Y. Zhang, M. Wang, "LightGCN: Simplifying and
       Powering Graph Convolution Network for Recommendation", SIGIR 2020. arXiv:2002.02126
    .. [3] D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
       arXiv:1412.6980
    .. [4] X. Wu et al., "GraphHash: Graph Clustering Enables Parameter Efficiency in
       Recommender Systems", WWW 2025. arXiv:2412.17245

    Examples
    --------
    Two groups of four users and four items; user u has trained on its group's items but
    ``u % 4`` and is tested on that one (items ``0..3`` for users ``0..3``, ``4..7`` for ``4..7``):

    >>> users = np.repeat(np.arange(8), 3)
    >>> items = np.array([1, 2, 3, 0, 2, 3, 0, 1, 3, 0, 1, 2, 5, 6, 7, 4, 6, 7, 4, 5, 7, 4, 5, 6])
    >>> f = train_bpr(users, items, 8, 8, dim=4, epochs=20, batch_size=8, lr=0.05, reg=0.01)
    >>> f.user_vectors.shape, bool(f.losses[-1] < f.losses[0] / 2)
    ((8, 4), True)
    >>> evaluate(f, users, items, np.arange(8), np.arange(8), k=1)
    {'k': 1, 'users': 8, 'recall': 1.0, 'ndcg': 1.0}
    """
    import torch
    import torch.nn.functional as F

    users, items = _pairs(users, items, n_users, n_items, "train")
    if not len(users):
        raise ValueError("train_bpr needs at least one training interaction")
    for name, value in (("dim", dim), ("epochs", epochs), ("batch_size", batch_size), ("threads", threads)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if lr <= 0 or reg < 0:
        raise ValueError(f"lr must be > 0 and reg >= 0, got lr={lr}, reg={reg}")
    negatives = _negative_sampler(users, items, n_users, n_items)
    rng = np.random.default_rng(seed)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        embed_user, embed_item, parameters = _tables(n_users, n_items, user_map, item_map, shared, dim,
                                                     torch.Generator().manual_seed(seed))
        optimizer = torch.optim.Adam(parameters, lr=lr)
        losses = []
        for _ in range(epochs):
            order = rng.permutation(len(users))
            total = 0.0
            for lo in range(0, len(order), batch_size):
                batch = order[lo:lo + batch_size]
                u, i = users[batch], items[batch]
                j = negatives(rng, u)
                eu, ei, ej = embed_user(u), embed_item(i), embed_item(j)
                loss = (F.softplus(-(eu * (ei - ej)).sum(1)).mean()
                        + reg / 2 * (eu.square().sum() + ei.square().sum() + ej.square().sum()) / len(batch))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(batch)
            losses.append(total / len(order))
        with torch.no_grad():
            vectors = [embed(np.arange(n)).numpy().astype(np.float32)
                       for embed, n in ((embed_user, n_users), (embed_item, n_items))]
    finally:
        torch.set_num_threads(previous)
    return Factors(vectors[0], vectors[1], losses)


def _tables(n_users, n_items, user_map, item_map, shared, dim, generator):
    """The user and item embedding functions over dense ids, and the parameters they train."""
    HashedEmbedding = _hashed_embedding_class()
    for side, row_map, n in (("user", user_map, n_users), ("item", item_map, n_items)):
        if row_map is not None and row_map.num_ids != n:
            raise ValueError(f"{side}_map maps {row_map.num_ids} ids, expected {n} (n_{side}s)")
    if not shared:
        tables = [HashedEmbedding(n, dim, generator=generator) if m is None
                  else HashedEmbedding(m.num_rows, dim, m.bucket, m.bucket2, generator=generator)
                  for m, n in ((user_map, n_users), (item_map, n_items))]
        return tables[0], tables[1], [t.weight for t in tables]
    if user_map is None or item_map is None or user_map.num_rows != item_map.num_rows:
        raise ValueError("shared=True needs user_map and item_map with the same num_rows")
    second = (None if user_map.bucket2 is None and item_map.bucket2 is None
              else np.concatenate([np.full(m.num_ids, -1) if m.bucket2 is None else m.bucket2
                                   for m in (user_map, item_map)]))
    table = HashedEmbedding(user_map.num_rows, dim, np.concatenate([user_map.bucket, item_map.bucket]), second,
                            generator=generator)
    return table, lambda i: table(i + n_users), [table.weight]  # items follow the users in the table's ids


def _negative_sampler(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int):
    """``draw(rng, u)``: per user of ``u``, an item drawn uniformly among those it has no
    interaction with in ``users``/``items`` (uniformly among all items for a user who has
    them all).

    No rejection: with ``s_0 < s_1 < ...`` a user's items, its r-th missing item (from 0) is
    ``r + #{t : s_t - t <= r}``, ``s_t - t`` being nondecreasing; one binary search counts
    it for every user at once, the users' ``s_t - t`` offset by ``user * n_items`` so that
    they sort as one array.
    """
    seen = np.unique(users * n_items + items)
    owner = seen // n_items
    count = np.bincount(owner, minlength=n_users)
    start = np.cumsum(count) - count
    shifted = seen - (np.arange(len(seen)) - start[owner])  # owner * n_items + s_t - t

    def draw(rng: np.random.Generator, u: np.ndarray) -> np.ndarray:
        missing = n_items - count[u]
        r = rng.integers(np.maximum(missing, 1))
        j = r + np.searchsorted(shifted, u * n_items + r, side="right") - start[u]
        full = np.flatnonzero(missing == 0)
        j[full] = rng.integers(n_items, size=len(full))
        return j

    return draw


def popularity_factors(items, n_users: int, n_items: int) -> Factors:
    """The most-popular-items baseline as a rank-1 factorisation: ``s(u, i) = count(i)``.

    Every user ranks the items by their number of training interactions (ties to the lower
    item id, as in ``evaluate``), so ``evaluate`` scores it like a trained model.

    Parameters
    ----------
    items : array_like
        int, the items of the training interactions.
    n_users, n_items : int

    Returns
    -------
    Factors
        ``user_vectors`` all ones, ``item_vectors`` the counts, both of dimension 1.

    Examples
    --------
    >>> f = popularity_factors([2, 2, 0, 2], n_users=2, n_items=3)
    >>> (f.user_vectors @ f.item_vectors.T).tolist()
    [[1.0, 0.0, 3.0], [1.0, 0.0, 3.0]]
    """
    counts = np.bincount(_ids(items, "items", 0, n_items), minlength=n_items)
    return Factors(np.ones((n_users, 1), np.float32), counts.astype(np.float32)[:, None], [])


# ---------------------------------------------------------------- evaluation


def evaluate(factors: Factors, train_users, train_items, test_users, test_items, k: int = 20,
             block_users: int = 512) -> dict:
    """Mean Recall@K and NDCG@K over the test users, every item ranked (no sampling).

    Each user with at least one test item ranks all items by ``<e_u, e_i>`` except its
    training items (ties to the lower item id). With ``T_u`` its test items and ``hit_r``
    whether the item at rank r (1-based) is in ``T_u``, as in LightGCN's and GraphHash's
    evaluation [1]_ [2]_::

        Recall@K = sum_{r<=K} hit_r / |T_u|
        NDCG@K   = (sum_{r<=K} hit_r / log2(r + 1)) / (sum_{r<=min(K, |T_u|)} 1 / log2(r + 1))

    (``ranking_metrics``), averaged over those users. Recall is divided by ``|T_u|``, not
    ``min(K, |T_u|)``: a user with more than K test items cannot reach 1. Users are scored
    ``block_users`` at a time: memory is a few ``block_users x n_items`` arrays.

    Parameters
    ----------
    factors : Factors
        ``train_bpr``'s or ``popularity_factors``' vectors.
    train_users, train_items : array_like
        int, the training interactions (excluded from each user's ranking).
    test_users, test_items : array_like
        int, the test interactions.
    k : int, default 20
    block_users : int, default 512

    Returns
    -------
    dict
        ``k``, ``users`` (users with a test item), ``recall`` and ``ndcg`` (None without
        test users).

    References
    ----------
    .. [1] X. He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
       Recommendation", SIGIR 2020. arXiv:2002.02126
    .. [2] X. Wu et al., "GraphHash: Graph Clustering Enables Parameter Efficiency in
       Recommender Systems", WWW 2025. arXiv:2412.17245
    .. [3] K. Järvelin, J. Kekäläinen, "Cumulated gain-based evaluation of IR techniques",
       ACM TOIS 20(4), 2002.

    Examples
    --------
    One user, items scored 4 > 3 > 2 > 1; item 0 was trained on, items 2 and 3 are tested:
    the top 2 of the rest are items 1 and 2, one hit at rank 2.

    >>> f = Factors(np.ones((1, 1), np.float32), np.array([[4], [3], [2], [1]], np.float32), [])
    >>> m = evaluate(f, [0], [0], [0, 0], [2, 3], k=2)
    >>> m["recall"], round(m["ndcg"], 4)
    (0.5, 0.3869)
    """
    user_vectors = np.asarray(factors.user_vectors, np.float32)
    item_vectors = np.asarray(factors.item_vectors, np.float32)
    if user_vectors.ndim != 2 or item_vectors.ndim != 2 or user_vectors.shape[1] != item_vectors.shape[1]:
        raise ValueError(f"user and item vectors must be 2-d of one dimension, got {user_vectors.shape} and "
                         f"{item_vectors.shape}")
    if k < 1 or block_users < 1:
        raise ValueError(f"k and block_users must be >= 1, got {k} and {block_users}")
    n_users, n_items = len(user_vectors), len(item_vectors)
    train = _matrix(train_users, train_items, n_users, n_items, "train")
    test = _matrix(test_users, test_items, n_users, n_items, "test")
    relevant = np.diff(test.indptr)
    tested = np.flatnonzero(relevant)
    if not len(tested):
        return {"k": k, "users": 0, "recall": None, "ndcg": None}
    recall, ndcg = np.empty(len(tested)), np.empty(len(tested))
    for lo in range(0, len(tested), block_users):
        block = tested[lo:lo + block_users]
        scores = user_vectors[block] @ item_vectors.T
        scores[train[block].nonzero()] = -np.inf
        top = _ranked(scores, k)
        hits = np.take_along_axis(test[block].toarray() > 0, top.clip(min=0), axis=1) & (top >= 0)
        recall[lo:lo + len(block)], ndcg[lo:lo + len(block)] = ranking_metrics(hits, relevant[block])
    return {"k": k, "users": len(tested), "recall": float(recall.mean()), "ndcg": float(ndcg.mean())}


def ranking_metrics(hits, relevant) -> tuple[np.ndarray, np.ndarray]:
    """Per user, Recall@K and NDCG@K (binary relevance) of a ranking's hits.

    ``Recall@K = sum_r hit_r / R`` and ``NDCG@K = sum_r hit_r / log2(r + 1)`` divided by its
    ideal ``sum_{r <= min(K, R)} 1 / log2(r + 1)``, with K the number of ranks, r from 1
    and R the user's number of relevant items [1]_.

    Parameters
    ----------
    hits : array_like
        bool, ``(users, K)``: whether the item at each rank is relevant.
    relevant : array_like
        int, ``(users,)``: relevant items per user, each >= 1 and >= its hits.

    Returns
    -------
    recall, ndcg : numpy.ndarray
        float64, one per user.

    References
    ----------
    .. [1] K. Järvelin, J. Kekäläinen, "Cumulated gain-based evaluation of IR techniques",
       ACM TOIS 20(4), 2002.

    Examples
    --------
    Hits at ranks 1 and 3 of 3, two relevant items; one hit at rank 2, four relevant items:

    >>> recall, ndcg = ranking_metrics([[True, False, True], [False, True, False]], [2, 4])
    >>> recall.tolist(), ndcg.round(4).tolist()
    ([1.0, 0.25], [0.9197, 0.2961])
    """
    hits = np.asarray(hits, dtype=bool)
    relevant = np.asarray(relevant, dtype=np.int64)
    if hits.ndim != 2 or relevant.shape != hits.shape[:1]:
        raise ValueError(f"hits must be (users, K) and relevant (users,), got {hits.shape} and {relevant.shape}")
    if len(relevant) and (relevant < np.maximum(hits.sum(1), 1)).any():
        raise ValueError("every user needs at least one relevant item, and no more hits than relevant items")
    discount = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2))
    ideal = np.cumsum(discount)[np.minimum(relevant, hits.shape[1]) - 1] if hits.shape[1] else np.ones(len(hits))
    return hits.sum(1) / relevant, (hits @ discount) / ideal


def _ranked(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's k best columns, best first, ties to the lower column; -1 for -inf scores."""
    part = _best_columns(scores, k)
    values = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -values), axis=1)
    top = np.take_along_axis(part, order, axis=1)
    top[np.take_along_axis(values, order, axis=1) == -np.inf] = -1
    return top


def _pairs(users, items, n_users: int, n_items: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Interactions as two int64 arrays, the ids checked."""
    users = _ids(users, f"{what} users", 0, n_users)
    items = _ids(items, f"{what} items", 0, n_items)
    if len(users) != len(items):
        raise ValueError(f"{what} users and items must have one entry per interaction, got {len(users)} and "
                         f"{len(items)}")
    return users, items


def _matrix(users, items, n_users: int, n_items: int, what: str) -> sp.csr_array:
    """Interactions as a ``n_users x n_items`` CSR matrix of counts, the ids checked."""
    users, items = _pairs(users, items, n_users, n_items, what)
    return sp.csr_array((np.ones(len(users), np.int32), (users, items)), shape=(n_users, n_items))
