"""Neural locality-sensitive hashing: a sentence encoder fine-tuned so that matches hash together.

NLSHBlock (Wang et al., "Neural Locality Sensitive Hashing for Entity Blocking", SDM 2024)
trains the encoder itself to be an (R, cR)-sensitive hash family for the task's own notion
of a match: with d the cosine distance ``1 - <f(p), f(q)>`` of unit embeddings, matching
pairs should lie within radius R and non-matching pairs beyond cR. For an anchor p, a match
q and a non-match r the loss is the hinge pair

    L(p, q, r) = max(R, d(p, q)) - min(cR, d(p, r))
               = relu(d(p, q) - R) + relu(cR - d(p, r)) + (R - cR),

zero exactly when the hash's guarantee holds for the triple. Each anchor's negatives are
the other anchors' matches in the batch (in-batch negatives), its hard negatives (the
nearest non-matches under the current model, mined once per epoch) and labelled
non-matches; the negative term is averaged over them.

Once trained, candidates are the exact top-k by cosine (``top_k``: blocked matrix
products), the top-k within an inverted file of k-means cells (``probe_cells``: each record
searched in its nearest cells; Jégou et al., TPAMI 2011), or the collisions of
random-hyperplane LSH over the embeddings (``hyperplane_keys``; Charikar, STOC 2002: one bit
collides with probability 1 - theta/pi), optionally multi-probed (Lv et al., VLDB 2007) by
also flipping the least certain bits.

References
----------
.. [1] R. Wang, L. Kong, Y. Tao, A. Borthwick, D. Golac, H. Johnson, S. Hijazi, D. Deng,
   Y. Zhang, "Neural Locality Sensitive Hashing for Entity Blocking", SDM 2024, pp. 887-895.
   doi:10.1137/1.9781611978032.101, arXiv:2401.18064
.. [2] M. S. Charikar, "Similarity estimation techniques from rounding algorithms", STOC
   2002, pp. 380-388. doi:10.1145/509907.509965
.. [3] Q. Lv, W. Josephson, Z. Wang, M. Charikar, K. Li, "Multi-probe LSH: efficient indexing
   for high-dimensional similarity search", VLDB 2007, pp. 950-961.

Example
-------
>>> import numpy as np
>>> q = np.eye(3, dtype=np.float32); base = np.array([[1, 0, 0], [0.6, 0.8, 0]], np.float32)
>>> index, score = top_k(q, base, k=1)
>>> index.ravel().tolist(), [round(float(s), 2) for s in score.ravel()]  # a tie goes to the lower index
([0, 1, 0], [1.0, 0.8, 0.0])
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from sigil.transforms.encoder import encode
from sigil.transforms.lsh import _mix64
from sigil.transforms.match_rules import rule_columns, rule_holds


# ---------------------------------------------------------------- candidates

_PROGRESS_SECONDS = 30.0  # fine_tune: a progress line this often within an epoch


def top_k(queries: np.ndarray, base: np.ndarray, k: int, query_ids: np.ndarray | None = None,
          base_ids: np.ndarray | None = None, block_rows: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``base`` with the highest dot product with each query row.

    Exact search: for unit vectors the dot product is the cosine, so these are the k
    nearest rows by cosine distance. Queries are taken ``block_rows`` at a time, so memory
    is ``block_rows x len(base)`` scores.

    Parameters
    ----------
    queries : numpy.ndarray
        Shape ``(nq, d)``.
    base : numpy.ndarray
        Shape ``(nb, d)``.
    k : int
        Neighbours per query.
    query_ids, base_ids : numpy.ndarray, optional
        Ids of the rows; when given, a base row with the query's own id is never a
        candidate (both or neither).
    block_rows : int, default 2048
        Queries per matrix product.

    Returns
    -------
    index : numpy.ndarray
        int64, shape ``(nq, min(k, nb))``: rows of ``base``, best first, ties broken by
        the lower index; -1 where no candidate is left.
    score : numpy.ndarray
        float32, same shape: the dot products (-inf where the index is -1).

    Examples
    --------
    >>> import numpy as np
    >>> base = np.array([[1, 0, 0], [0.6, 0.8, 0]], np.float32)
    >>> index, score = top_k(base, base, k=2, query_ids=np.array([0, 1]), base_ids=np.array([0, 1]))
    >>> index.tolist(), [round(float(s), 2) for s in score[:, 0]]
    ([[1, -1], [0, -1]], [0.6, 0.6])
    """
    k = min(k, len(base))
    index = np.full((len(queries), k), -1, dtype=np.int64)
    score = np.full((len(queries), k), -np.inf, dtype=np.float32)
    if k == 0:
        return index, score
    for lo in range(0, len(queries), block_rows):
        s = queries[lo:lo + block_rows] @ base.T
        if query_ids is not None:
            s[query_ids[lo:lo + block_rows, None] == base_ids[None, :]] = -np.inf
        part = _best_columns(s, k)
        vals = np.take_along_axis(s, part, axis=1)
        order = np.lexsort((part, -vals), axis=1)
        index[lo:lo + block_rows] = np.take_along_axis(part, order, axis=1)
        score[lo:lo + block_rows] = np.take_along_axis(vals, order, axis=1)
    index[~np.isfinite(score)] = -1
    return index, score


def _best_columns(s: np.ndarray, k: int) -> np.ndarray:
    """The columns of each row's k highest values, ties at the k-th value going to the lower
    columns (in column order; argpartition alone would pick among ties arbitrarily)."""
    if k >= s.shape[1]:
        return np.tile(np.arange(s.shape[1]), (len(s), 1))
    kth = -np.partition(-s, k - 1, axis=1)[:, k - 1:k]
    above = s > kth
    tied = s == kth
    keep = above | (tied & (np.cumsum(tied, axis=1) <= k - above.sum(axis=1, keepdims=True)))
    return np.nonzero(keep)[1].reshape(len(s), k)


def hyperplanes(dim: int, tables: int, bits: int, seed: int) -> np.ndarray:
    """Normals of the random hyperplanes of ``hyperplane_keys``, drawn from the seed.

    Each entry is standard normal, so each normal's direction is uniform on the sphere, as
    random-hyperplane LSH needs [1]_. The generator is seeded by ``(seed, dim, tables,
    bits)``, so equal arguments give equal planes on every machine.

    Parameters
    ----------
    dim : int
        Dimension of the vectors.
    tables : int
        Number of hash tables.
    bits : int
        Hyperplanes (code bits) per table, at most 64.
    seed : int
        Seed of the draw.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(tables * bits, dim)``; rows ``t * bits:(t + 1) * bits`` are table
        t's planes.

    References
    ----------
    .. [1] M. S. Charikar, "Similarity estimation techniques from rounding algorithms", STOC
       2002, pp. 380-388. doi:10.1145/509907.509965

    Examples
    --------
    >>> planes = hyperplanes(3, tables=2, bits=4, seed=0)
    >>> planes.shape, planes.dtype, bool((planes == hyperplanes(3, 2, 4, 0)).all())
    ((8, 3), dtype('float32'), True)
    """
    return np.random.default_rng([seed, dim, tables, bits]).standard_normal((tables * bits, dim)).astype(np.float32)


def hyperplane_keys(vectors: np.ndarray, planes: np.ndarray, tables: int, bits: int,
                    probes: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bucket keys of random-hyperplane LSH for each row of ``vectors``.

    Table t's code is the sign pattern of the ``bits`` projections of its hyperplanes; two
    unit vectors at angle theta share it with probability ``(1 - theta/pi) ** bits``, and
    share at least one of ``tables`` codes with ``1 - (1 - (1 - theta/pi) ** bits) ** tables``.
    With ``probes = m`` a row also enters the m buckets whose codes differ from its own in
    one of its m least certain bits (the smallest projections), so two rows collide when
    their codes agree after flipping at most one such bit each.

    Parameters
    ----------
    vectors : numpy.ndarray
        Shape ``(n, dim)``, usually unit embeddings.
    planes : numpy.ndarray
        Shape ``(tables * bits, dim)``, from ``hyperplanes``.
    tables : int
        Number of hash tables.
    bits : int
        Code bits per table, at most 64.
    probes : int, default 0
        Extra buckets per row and table (multi-probe [2]_), at most ``bits``.

    Returns
    -------
    row : numpy.ndarray
        int64 row of each entry; entries ordered by row, then table, then probe (the
        row's own code first).
    table : numpy.ndarray
        int32 table of each entry.
    key : numpy.ndarray
        int64 bucket key: a 64-bit hash of the table and the (probed) code.
    fine : numpy.ndarray
        int64 finer key: ``key`` hashed with the code of the next table (the last table
        with the first's), to split buckets that are too large.

    Raises
    ------
    ValueError
        When ``probes > bits``.

    References
    ----------
    .. [1] M. S. Charikar, "Similarity estimation techniques from rounding algorithms", STOC
       2002, pp. 380-388. doi:10.1145/509907.509965
    .. [2] Q. Lv, W. Josephson, Z. Wang, M. Charikar, K. Li, "Multi-probe LSH: efficient
       indexing for high-dimensional similarity search", VLDB 2007, pp. 950-961.

    Examples
    --------
    >>> import numpy as np
    >>> planes = hyperplanes(3, tables=2, bits=4, seed=0)
    >>> v = np.array([[1, 0, 0], [2, 0, 0], [0, 0, 1]], np.float32)
    >>> row, table, key, fine = hyperplane_keys(v, planes, tables=2, bits=4)
    >>> row.tolist(), table.tolist()
    ([0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1])
    >>> bool((key[0:2] == key[2:4]).all())  # same direction: same bucket in every table
    True
    >>> len(hyperplane_keys(v, planes, tables=2, bits=4, probes=1)[0])  # 3 rows x 2 tables x 2 codes
    12
    """
    if probes > bits:
        raise ValueError(f"probes ({probes}) cannot exceed bits ({bits})")
    n = len(vectors)
    proj = (vectors @ planes.T).reshape(n, tables, bits)
    signs = proj > 0
    weights = np.uint64(1) << np.arange(bits, dtype=np.uint64)
    codes = (signs * weights).sum(axis=2, dtype=np.uint64)                       # (n, tables)
    variants = [codes]
    if probes:
        least = np.argsort(np.abs(proj), axis=2, kind="stable")[:, :, :probes]  # (n, tables, probes)
        variants += [codes ^ (np.uint64(1) << least[:, :, p].astype(np.uint64)) for p in range(probes)]
    code = np.stack(variants, axis=2)                                            # (n, tables, 1 + probes)
    table = np.broadcast_to(np.arange(tables, dtype=np.uint64)[None, :, None], code.shape)
    key = _mix64(_mix64(table + np.uint64(1)) ^ code)
    nxt = np.roll(codes, -1, axis=1)[:, :, None]
    fine = _mix64(key ^ _mix64(nxt + np.uint64(0x9E3779B97F4A7C15)))
    row = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None, None], code.shape)
    return (row.ravel(), table.astype(np.int32).ravel(), key.view(np.int64).ravel(), fine.view(np.int64).ravel())


def probe_cells(vectors: np.ndarray, centroids: np.ndarray, probes: int) -> np.ndarray:
    """Each row's ``probes`` nearest centroids by squared L2, nearest first (IVF probing [1]_).

    Distances are summed in float64, ties go to the lower centroid, so a row's cells do not
    depend on the rows batched with it (a Spark task's Arrow batches, a retried task).

    Parameters
    ----------
    vectors : numpy.ndarray
        Shape ``(n, d)``.
    centroids : numpy.ndarray
        Shape ``(c, d)``, the cells' k-means centroids.
    probes : int
        Cells per row (at most c).

    Returns
    -------
    numpy.ndarray
        int64, shape ``(n, min(probes, c))``.

    References
    ----------
    .. [1] H. Jégou, M. Douze, C. Schmid, "Product Quantization for Nearest Neighbor
       Search", IEEE TPAMI 33(1), 2011 (the inverted file with multiple probes).
       doi:10.1109/TPAMI.2010.57

    Examples
    --------
    >>> import numpy as np
    >>> probe_cells(np.array([[0.9, 0.1], [0.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]]), 2).tolist()
    [[0, 2], [1, 2]]
    """
    c = np.asarray(centroids, np.float64)
    d = (c * c).sum(1) - 2 * (np.asarray(vectors, np.float64) @ c.T)  # ||x||^2 is the same for every cell
    probes = min(probes, len(c))
    part = _best_columns(-d, probes)
    order = np.lexsort((part, np.take_along_axis(d, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


def collision_probability(cosine: np.ndarray | float, tables: int, bits: int) -> np.ndarray | float:
    """Probability that two unit vectors with this cosine share a bucket in some table.

    One random hyperplane separates two vectors at angle theta with probability
    theta / pi [1]_, so with ``p = 1 - arccos(cosine) / pi`` they share a table's code of
    ``bits`` bits with probability ``p ** bits`` and some table's with
    ``1 - (1 - p ** bits) ** tables`` (without probes).

    Parameters
    ----------
    cosine : float or numpy.ndarray
        Cosine similarity, clipped to [-1, 1].
    tables : int
        Number of hash tables.
    bits : int
        Code bits per table.

    Returns
    -------
    float or numpy.ndarray
        The probability, shaped like ``cosine``.

    References
    ----------
    .. [1] M. S. Charikar, "Similarity estimation techniques from rounding algorithms", STOC
       2002, pp. 380-388. doi:10.1145/509907.509965

    Examples
    --------
    >>> float(collision_probability(1.0, tables=4, bits=8)), float(collision_probability(0.0, 1, 1))
    (1.0, 0.5)
    """
    p = 1 - np.arccos(np.clip(cosine, -1, 1)) / np.pi
    return 1 - (1 - p ** bits) ** tables


# ---------------------------------------------------------------- training


def hinge_loss(anchors, candidates, positive: np.ndarray, negative, radius: float, c: float):
    """The (R, cR) hinge loss of NLSHBlock for a batch [1]_.

    With the cosine distance ``d(x, y) = 1 - <x, y>`` of unit vectors, anchor p, its match
    q and its non-matches r, the loss is the mean over anchors of

    ``relu(d(p, q) - R) + mean_r relu(cR - d(p, r))``,

    zero exactly when matches lie within R and non-matches beyond cR (the paper's constant
    ``R - cR`` is left out: it carries no gradient).

    Parameters
    ----------
    anchors : torch.Tensor
        Shape ``(n, d)``, unit vectors.
    candidates : torch.Tensor
        Shape ``(m, d)``, unit vectors.
    positive : numpy.ndarray
        int, shape ``(n,)``: the column of each anchor's match in ``candidates``.
    negative : torch.Tensor
        bool, shape ``(n, m)``: the columns that are non-matches of each anchor (an anchor
        without any has no negative term).
    radius : float
        R.
    c : float
        The approximation factor, > 1.

    Returns
    -------
    torch.Tensor
        The scalar loss, differentiable.

    References
    ----------
    .. [1] R. Wang, L. Kong, Y. Tao, A. Borthwick, D. Golac, H. Johnson, S. Hijazi, D. Deng,
       Y. Zhang, "Neural Locality Sensitive Hashing for Entity Blocking", SDM 2024,
       pp. 887-895. doi:10.1137/1.9781611978032.101, arXiv:2401.18064

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> p = torch.tensor([[1.0, 0.0]])
    >>> near, far = [1.0, 0.0], [0.0, 1.0]  # d = 0 and 1
    >>> float(hinge_loss(p, torch.tensor([near, far]), np.array([0]), torch.tensor([[False, True]]), 0.1, 3.0))
    0.0
    >>> round(float(hinge_loss(p, torch.tensor([far, near]), np.array([0]), torch.tensor([[False, True]]),
    ...                        0.1, 3.0)), 4)  # 0.9 too far + 0.3 too near
    1.2
    """
    import torch

    dist = 1 - anchors @ candidates.T
    rows = torch.arange(len(anchors))
    pull = torch.relu(dist[rows, torch.as_tensor(positive)] - radius)
    mask = negative.to(dist.dtype)
    push = (torch.relu(c * radius - dist) * mask).sum(1) / mask.sum(1).clamp(min=1)
    return (pull + push).mean()


def trainable_layers(model, top: int | None) -> list:
    """Freeze all but the top ``top`` transformer layers of a model, in place.

    The layers are the first module's BERT-style ``encoder.layer`` (of its ``auto_model``
    when it has one), else its longest ``torch.nn.ModuleList``. Everything else (embeddings,
    pooling) is frozen too.

    Parameters
    ----------
    model : torch.nn.Module
        A sentence-transformers model (indexable: ``model[0]`` is the transformer).
    top : int or None
        Layers left trainable, counted from the top; ``None`` trains everything, 0 nothing.

    Returns
    -------
    list of torch.nn.Parameter
        The parameters left trainable.

    Raises
    ------
    ValueError
        When the model has no recognisable transformer layers.

    Examples
    --------
    A stand-in for a transformer: three linear "layers" in ``encoder.layer``.

    >>> import torch
    >>> body = torch.nn.Module()
    >>> body.encoder = torch.nn.Module()
    >>> body.encoder.layer = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)])
    >>> model = torch.nn.Sequential(body)
    >>> len(trainable_layers(model, 1))  # the top layer's weight and bias
    2
    >>> body.encoder.layer[0].weight.requires_grad
    False
    """
    params = list(model.parameters())
    if top is None:
        return params
    layers = _transformer_layers(model)
    for p in params:
        p.requires_grad = False
    for layer in layers[len(layers) - top:] if top else []:
        for p in layer.parameters():
            p.requires_grad = True
    return [p for p in params if p.requires_grad]


def _transformer_layers(model) -> list:
    """The stacked transformer blocks of a sentence-transformers model (BERT-style
    ``encoder.layer``, or the longest ``ModuleList`` of its first module)."""
    import torch

    inner = getattr(model[0], "auto_model", model[0])
    encoder = getattr(inner, "encoder", None)
    if encoder is not None and hasattr(encoder, "layer"):
        return list(encoder.layer)
    lists = [m for m in inner.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise ValueError("cannot find the transformer layers of this model; train all layers (train_layers: null)")
    return list(max(lists, key=len))


@dataclass
class TrainingData:
    """Records and labels of a training run, by position in ``texts``.

    Parameters
    ----------
    texts : list of str
        The serialised records.
    side : numpy.ndarray
        int, each record's source index.
    positives : numpy.ndarray
        int, shape ``(p, 2)``: labelled matching (anchor, other) pairs.
    negatives : numpy.ndarray, optional
        int, shape ``(q, 2)``: labelled non-matching (anchor, other) pairs.
    valid : numpy.ndarray, optional
        int, shape ``(v, 2)``: held-out matching pairs, for validation recall.
    link : bool, default True
        True: a record's candidates are the records of the other sources (link mode);
        False: every other record (dedupe mode).

    Examples
    --------
    >>> import numpy as np
    >>> data = TrainingData(["COL name VAL ann ", "COL name VAL anne "], side=np.array([0, 1]),
    ...                     positives=np.array([[0, 1]]))
    >>> data.negatives.shape, data.link
    ((0, 2), True)
    """

    texts: list[str]
    side: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    valid: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    link: bool = True


@dataclass
class TrainingSettings:
    """Hyper-parameters of ``fine_tune``.

    Parameters
    ----------
    radius : float, default 0.1
        R of the hinge loss, a cosine distance.
    c : float, default 3.0
        Approximation factor: non-matches are pushed beyond ``c * radius``.
    epochs : int, default 2
        Passes over the positive pairs.
    batch_pairs : int, default 32
        Positive pairs per optimiser step.
    learning_rate : float, default 3e-5
        AdamW's learning rate.
    train_layers : int or None, default None
        Top transformer layers trained (``trainable_layers``); ``None``: all.
    hard_negatives : bool, default True
        Mine each anchor's nearest non-match once per epoch.
    labelled_negatives : bool, default True
        Add one of each anchor's labelled non-matches to its batch.
    batch_size : int, default 64
        Texts per batch when embedding all records.
    ks : tuple of int, default (1, 3, 5, 10, 20)
        The k of validation recall at k.
    valid_pool : int, default 5000
        Validation ranks each held-out anchor among the held-out pairs' records and a
        seeded sample of this many other records, re-encoded at each validation; with at
        least as many records as this, among all of them.
    precision : {"float32", "bfloat16"}, default "float32"
        Of the encodings for mining and validation (``encode``); the steps are float32.
    seed : int, default 0
        Seed of torch and of the pair order.

    Examples
    --------
    >>> settings = TrainingSettings(epochs=1)
    >>> settings.epochs, round(settings.c * settings.radius, 2)
    (1, 0.3)
    """

    radius: float = 0.1
    c: float = 3.0
    epochs: int = 2
    batch_pairs: int = 32
    learning_rate: float = 3e-5
    train_layers: int | None = None
    hard_negatives: bool = True
    labelled_negatives: bool = True
    batch_size: int = 64
    ks: tuple[int, ...] = (1, 3, 5, 10, 20)
    valid_pool: int = 5000
    precision: str = "float32"
    seed: int = 0


def recall_at_k(vectors: np.ndarray, data: TrainingData, pairs: np.ndarray, ks,
                among: np.ndarray | None = None) -> dict[int, float]:
    """Share of matching pairs (a, b) whose b is among a's k nearest candidates, for each k.

    Parameters
    ----------
    vectors : numpy.ndarray
        Shape ``(len(data.texts), d)``, unit embeddings of the records.
    data : TrainingData
        Records and sources (which records are candidates of which).
    pairs : numpy.ndarray
        int, shape ``(p, 2)``: matching (a, b) pairs.
    ks : iterable of int
        The values of k.
    among : numpy.ndarray, optional
        The records that are candidates at all (positions); default every record.

    Returns
    -------
    dict
        ``{k: recall}``; empty when there are no pairs.

    Examples
    --------
    >>> import numpy as np
    >>> data = TrainingData(list("abcd"), side=np.array([0, 0, 1, 1]), positives=np.array([[0, 2], [1, 3]]))
    >>> vectors = np.array([[1, 0], [0, 1], [0.6, 0.8], [0.8, 0.6]], np.float32)
    >>> recall_at_k(vectors, data, data.positives, (1, 2))
    {1: 0.0, 2: 1.0}
    """
    if not len(pairs):
        return {}
    kmax = max(ks)
    found = nearest(vectors, data, pairs[:, 0], kmax, among)
    hit = found == pairs[:, 1:2]
    return {k: float(hit[:, :k].any(axis=1).mean()) for k in ks}


def nearest(vectors: np.ndarray, data: TrainingData, anchors: np.ndarray, k: int,
            among: np.ndarray | None = None) -> np.ndarray:
    """Each anchor's k nearest candidate records by dot product (``top_k``), best first.

    A record's candidates are the records of the other sources (``data.link``), or every
    other record; only those in ``among`` when it is given.

    Parameters
    ----------
    vectors : numpy.ndarray
        Shape ``(len(data.texts), d)``, unit embeddings of the records.
    data : TrainingData
        Records and sources.
    anchors : numpy.ndarray
        int, positions in ``data.texts`` (repeats allowed).
    k : int
        Neighbours per anchor.
    among : numpy.ndarray, optional
        Positions of the records that may be candidates; default all.

    Returns
    -------
    numpy.ndarray
        int64, shape ``(len(anchors), k)``: positions in ``data.texts``, -1 past the last
        candidate.

    Examples
    --------
    >>> import numpy as np
    >>> data = TrainingData(list("abcd"), side=np.array([0, 0, 1, 1]), positives=np.zeros((0, 2), int))
    >>> vectors = np.array([[1, 0], [0, 1], [0.6, 0.8], [0.8, 0.6]], np.float32)
    >>> nearest(vectors, data, np.array([0, 2]), 2).tolist()
    [[3, 2], [1, 0]]
    """
    anchors = np.unique(anchors, return_inverse=True)
    out = np.full((len(anchors[0]), k), -1, np.int64)
    pool = np.arange(len(data.texts)) if among is None else np.unique(among)
    for s in np.unique(data.side[anchors[0]]):
        rows = np.flatnonzero(data.side[anchors[0]] == s)
        base = pool[data.side[pool] != s] if data.link else pool
        index, _ = top_k(vectors[anchors[0][rows]], vectors[base], k, anchors[0][rows], base)
        out[rows, :index.shape[1]] = np.where(index >= 0, base[index.clip(0)], -1)
    return out[anchors[1]]


def _hard_negatives(vectors: np.ndarray, data: TrainingData, known: set) -> dict[int, int]:
    """Each anchor's nearest candidate that is not one of its labelled matches."""
    anchors = np.unique(data.positives[:, 0])
    near = nearest(vectors, data, anchors, 8)
    out = {}
    for a, row in zip(anchors.tolist(), near.tolist()):
        hard = [j for j in row if j >= 0 and (a, j) not in known]
        if hard:
            out[a] = hard[0]
    return out


def fine_tune(model, data: TrainingData, settings: TrainingSettings,
              log: Callable[[str], None] = lambda _: None, vectors: np.ndarray | None = None) -> dict:
    """Fine-tune a sentence-transformers model, in place, with the (R, cR) hinge loss [1]_.

    Every epoch: mine hard negatives (each anchor's nearest non-match), then one pass over
    the positive pairs in seeded random order, ``batch_pairs`` at a time. An anchor's
    negatives (``hinge_loss``) are the other anchors' matches in the batch (in-batch
    negatives) and, as ``settings`` enable them, its hard negative and one of its labelled
    non-matches; known matches (and, in link mode, records of the anchor's own source)
    never count as negatives.

    The records are encoded once, before training. Mining reads a memory bank of those
    vectors that every step refreshes with the embeddings it computed anyway (Wu et al.,
    CVPR 2018), so an epoch costs its steps and one matrix product, not an encoding of every
    record; validation re-encodes only the held-out pairs' records and a sample of
    ``valid_pool`` others. Deterministic for a given seed on a given machine (torch's CPU
    kernels and dropout draw from the seeded generator).

    Parameters
    ----------
    model : sentence_transformers.SentenceTransformer
        The encoder, trained in place (left in eval mode).
    data : TrainingData
        Records and labelled pairs.
    settings : TrainingSettings
        Hyper-parameters.
    log : callable, optional
        Called with one line per epoch, before and after each encoding, and every 30 s
        within an epoch (its step, mean loss, pairs per second and the time left in the
        training steps).
    vectors : numpy.ndarray, optional
        The records' embeddings under ``model`` as it is, when the caller has them; they
        start the memory bank instead of a first encoding.

    Returns
    -------
    dict
        The training report: ``steps`` (loss per step), ``epochs`` (per epoch: ``loss``,
        ``seconds`` and, with validation pairs, ``valid_recall``), ``valid_recall_before``,
        ``valid_candidates`` (records validation ranks among), ``encoded`` (records encoded
        in all), ``trainable_parameters`` and ``seconds``.

    References
    ----------
    .. [1] R. Wang, L. Kong, Y. Tao, A. Borthwick, D. Golac, H. Johnson, S. Hijazi, D. Deng,
       Y. Zhang, "Neural Locality Sensitive Hashing for Entity Blocking", SDM 2024,
       pp. 887-895. doi:10.1137/1.9781611978032.101, arXiv:2401.18064
    .. [2] Z. Wu, Y. Xiong, S. X. Yu, D. Lin, "Unsupervised Feature Learning via
       Non-Parametric Instance Discrimination", CVPR 2018 (the memory bank).
       arXiv:1805.01978

    Examples
    --------
    Loading the encoder takes seconds, so this example is not run by the doctests:

    >>> import numpy as np
    >>> from sigil.transforms.encoder import load_model
    >>> texts = ["COL name VAL ann lee ", "COL name VAL anne lee ", "COL name VAL bob ray ", "COL name VAL rob ray "]
    >>> data = TrainingData(texts, side=np.array([0, 1, 0, 1]), positives=np.array([[0, 1], [2, 3]]))
    >>> model = load_model(None, max_seq_length=32)  # doctest: +SKIP
    >>> report = fine_tune(model, data, TrainingSettings(epochs=1, batch_pairs=2))  # doctest: +SKIP
    >>> len(report["steps"]), len(report["epochs"])  # doctest: +SKIP
    (1, 1)
    """
    import torch

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    params = trainable_layers(model, settings.train_layers)
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate)
    known = {(int(a), int(b)) for a, b in data.positives} | {(int(b), int(a)) for a, b in data.positives}
    labelled = {}
    for a, b in data.negatives.tolist():
        labelled.setdefault(a, []).append(b)
    pool = validation_records(data, settings.valid_pool, rng)
    report = {"steps": [], "epochs": [], "trainable_parameters": int(sum(p.numel() for p in params)),
              "valid_candidates": len(pool), "encoded": 0}
    start = time.perf_counter()

    def embed(rows: np.ndarray, why: str) -> np.ndarray:
        model.eval()
        t0 = time.perf_counter()
        log(f"encoding {len(rows):,} records for {why}")
        out = encode(model, [data.texts[i] for i in rows], settings.batch_size, settings.precision)
        log(f"encoded {len(rows):,} records in {time.perf_counter() - t0:.1f} s")
        report["encoded"] += len(rows)
        return out

    def validate() -> dict:
        bank[pool] = embed(pool, "validation")  # fresh vectors for every candidate it ranks
        return recall_at_k(bank, data, data.valid, settings.ks, among=pool)

    everything = np.arange(len(data.texts))
    if vectors is not None:
        bank = np.array(vectors, dtype=np.float32)
    elif settings.hard_negatives:
        bank = embed(everything, "hard negatives and validation")
    else:
        bank = np.zeros((len(data.texts), model.get_embedding_dimension()), np.float32)
    fresh = vectors is not None or settings.hard_negatives  # the bank is the model as it is now
    report["valid_recall_before"] = ((recall_at_k(bank, data, data.valid, settings.ks, among=pool) if fresh
                                      else validate()) if len(data.valid) else {})
    for epoch in range(settings.epochs):
        hard = _hard_negatives(bank, data, known) if settings.hard_negatives else {}
        order = rng.permutation(len(data.positives))
        model.train()
        losses, steps = [], -(-len(order) // settings.batch_pairs)
        began = said = time.perf_counter()
        for lo in range(0, len(order), settings.batch_pairs):
            batch = data.positives[order[lo:lo + settings.batch_pairs]]
            loss, rows, seen = _step(model, optimizer, data, batch, hard, labelled, known, settings, rng)
            bank[rows] = seen
            losses.append(loss)
            report["steps"].append(round(loss, 6))
            if time.perf_counter() - said >= _PROGRESS_SECONDS:  # a long epoch says how far it is
                said = time.perf_counter()
                log(_progress(epoch, settings.epochs, len(losses), steps, float(np.mean(losses)),
                              (said - began) / len(losses), settings.batch_pairs))
        row = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else None}
        if len(data.valid):
            row["valid_recall"] = validate()
        row["seconds"] = round(time.perf_counter() - start, 1)
        report["epochs"].append(row)
        log(f"epoch {epoch}: loss {row['loss']:.4f}" + (f", valid recall {row['valid_recall']}" if "valid_recall" in row
                                                         else ""))
    report["seconds"] = round(time.perf_counter() - start, 1)
    model.eval()
    return report


def validation_records(data: TrainingData, pool: int, rng: np.random.Generator) -> np.ndarray:
    """The records validation ranks among: those of the held-out pairs and a seeded sample of
    ``pool`` others (all records when there are no more than that), sorted positions.

    Examples
    --------
    >>> import numpy as np
    >>> data = TrainingData(list("abcdef"), side=np.array([0, 1] * 3), positives=np.zeros((0, 2), int),
    ...                     valid=np.array([[0, 1]]))
    >>> validation_records(data, 2, np.random.default_rng(0)).size, validation_records(data, 9, None).tolist()
    (4, [0, 1, 2, 3, 4, 5])
    """
    held = np.unique(data.valid)
    others = np.setdiff1d(np.arange(len(data.texts)), held)
    if len(others) <= pool:
        return np.arange(len(data.texts))
    return np.union1d(held, rng.choice(others, pool, replace=False))


def sample_pairs(pairs: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``limit`` of the rows of ``pairs``, a seeded sample in their original order.

    Examples
    --------
    >>> import numpy as np
    >>> sample_pairs(np.arange(10).reshape(5, 2), 2, np.random.default_rng(0)).shape
    (2, 2)
    """
    if limit is None or len(pairs) <= limit:
        return pairs
    return pairs[np.sort(rng.choice(len(pairs), limit, replace=False))]


def _progress(epoch: int, epochs: int, done: int, steps: int, loss: float, per_step: float, pairs: int) -> str:
    """A progress line: the step, the mean loss, pairs per second and the time left in the
    training steps (the remaining encodings of the records come on top)."""
    left = (steps - done + (epochs - epoch - 1) * steps) * per_step
    return (f"epoch {epoch}: step {done}/{steps}, loss {loss:.4f}, {pairs / per_step:.1f} pairs/s, "
            f"about {left / 60:.1f} min of steps left")


def _step(model, optimizer, data, batch, hard, labelled, known, settings, rng):
    """One optimiser step over a batch of positive pairs; returns the loss, and the records it
    embedded with their (detached) vectors for the memory bank."""
    import torch

    anchors, matches = batch[:, 0].tolist(), batch[:, 1].tolist()
    extra = [hard[a] for a in anchors if a in hard]
    if settings.labelled_negatives:
        extra += [labelled[a][rng.integers(len(labelled[a]))] for a in anchors if a in labelled]
    columns = matches + extra
    negative = torch.tensor([[j != a and (a, j) not in known and (not data.link or data.side[j] != data.side[a])
                              for j in columns] for a in anchors])
    left = _embed(model, [data.texts[i] for i in anchors])
    right = _embed(model, [data.texts[j] for j in columns])
    loss = hinge_loss(left, right, np.arange(len(anchors)), negative, settings.radius, settings.c)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    seen = torch.cat([left, right]).detach().numpy()
    return float(loss.detach()), np.array(anchors + columns, dtype=np.int64), seen


def _embed(model, texts: list[str]):
    """Differentiable unit embeddings of a list of texts."""
    import torch.nn.functional as F

    features = model.preprocess(texts)
    return F.normalize(model(features)["sentence_embedding"], p=2, dim=1)


def rule_labelled_pairs(model, data: TrainingData, table: pa.Table, rule, neighbours: int, batch_size: int,
                        rng: np.random.Generator, precision: str = "float32") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training pairs labelled by a match rule instead of by hand: every anchor's
    ``neighbours`` nearest records under ``model`` (the hard cases) and one random record
    each, labelled by whether ``rule`` (transforms/match_rules.py) holds for them.

    Parameters
    ----------
    model : sentence_transformers.SentenceTransformer
        The encoder before training.
    data : TrainingData
        The records' texts and sides.
    table : pyarrow.Table
        The same records' columns, read by the rule.
    rule : schemas.config.MatchRule
    neighbours : int
    batch_size : int
        Texts per encoding batch.
    rng : numpy.random.Generator
        Draws the random partners.
    precision : {"float32", "bfloat16"}, default "float32"
        Of the encoding (``encode``).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        The (anchor, other) record positions the rule matches, those it does not, and the
        records' embeddings under ``model`` (they start ``fine_tune``'s memory bank).
    """
    anchors = np.flatnonzero(data.side == 0) if data.link else np.arange(len(data.texts))
    vectors = encode(model, data.texts, batch_size, precision)
    near = nearest(vectors, data, anchors, neighbours)
    others = np.flatnonzero(data.side != 0) if data.link else np.arange(len(data.texts))
    pairs = np.concatenate([np.column_stack([np.repeat(anchors, near.shape[1]), near.ravel()]),
                            np.column_stack([anchors, rng.choice(others, len(anchors))])])
    pairs = np.unique(pairs[(pairs[:, 1] >= 0) & (pairs[:, 0] != pairs[:, 1])], axis=0)
    cols = rule_columns(rule)
    sides = {f"{c}_{s}": table.column(c).take(pa.array(pairs[:, i])) for c in cols for i, s in enumerate("ab")}
    holds = rule_holds(rule, pa.table(sides))
    return pairs[holds], pairs[~holds], vectors
