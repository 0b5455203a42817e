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

Once trained, candidates are either the exact top-k by cosine (``top_k``: blocked matrix
products) or the collisions of random-hyperplane LSH over the embeddings
(``hyperplane_keys``; Charikar, STOC 2002: one bit collides with probability 1 - theta/pi),
optionally multi-probed (Lv et al., VLDB 2007) by also flipping the least certain bits.

Example
-------
>>> import numpy as np
>>> q = np.eye(3, dtype=np.float32); base = np.array([[1, 0, 0], [0.6, 0.8, 0]], np.float32)
>>> index, score = top_k(q, base, k=1)
>>> index.ravel().tolist(), score.ravel().round(2).tolist()
([0, 1, 1], [1.0, 0.8, 0.0])
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sigil.transforms.lsh import _mix64


# ---------------------------------------------------------------- candidates


def top_k(queries: np.ndarray, base: np.ndarray, k: int, query_ids: np.ndarray | None = None,
          base_ids: np.ndarray | None = None, block_rows: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``base`` with the highest dot product with each query row.

    Returns ``(index, score)``, both ``(len(queries), min(k, len(base)))``, best first and
    ties broken by the lower index. Queries are taken ``block_rows`` at a time, so memory
    is ``block_rows x len(base)`` scores. With ids given, a base row with the query's own id
    is never a candidate (its score is -inf and its index -1 when nothing else is left).
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
    """``(tables * bits, dim)`` Gaussian normals of the random hyperplanes, from the seed."""
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

    Returns ``(row, table, key, fine)`` int arrays, one entry per row, table and probe:
    ``key`` is a 64-bit hash of the table and code; ``fine`` extends it by the signs of
    the next table's planes, to split buckets that are too large.
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


def collision_probability(cosine: np.ndarray | float, tables: int, bits: int) -> np.ndarray | float:
    """Probability that two unit vectors with this cosine share a bucket in some table
    (without probes)."""
    p = 1 - np.arccos(np.clip(cosine, -1, 1)) / np.pi
    return 1 - (1 - p ** bits) ** tables


# ---------------------------------------------------------------- training


def hinge_loss(anchors, candidates, positive: np.ndarray, negative, radius: float, c: float):
    """The (R, cR) hinge of NLSHBlock for a batch (torch tensors of unit vectors).

    ``anchors`` (n, d); ``candidates`` (m, d); ``positive[i]`` the column of anchor i's
    match; ``negative`` a boolean (n, m) mask of the columns that are non-matches of i.
    Returns the mean over anchors of ``relu(d(p, q) - R) + mean_r relu(cR - d(p, r))``
    (the constant R - cR is left out: it carries no gradient).
    """
    import torch

    dist = 1 - anchors @ candidates.T
    rows = torch.arange(len(anchors))
    pull = torch.relu(dist[rows, torch.as_tensor(positive)] - radius)
    mask = negative.to(dist.dtype)
    push = (torch.relu(c * radius - dist) * mask).sum(1) / mask.sum(1).clamp(min=1)
    return (pull + push).mean()


def trainable_layers(model, top: int | None) -> list:
    """Freeze all but the top ``top`` transformer layers (``None``: train everything).
    Returns the parameters left trainable."""
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

    ``side`` is each record's source index: in link mode a record's candidates are the
    records of the other sources, in dedupe mode every other record. ``positives`` and
    ``negatives`` are (anchor, other) index pairs; ``valid`` are held-out matching pairs.
    """

    texts: list[str]
    side: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    valid: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    link: bool = True


@dataclass
class TrainingSettings:
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
    seed: int = 0


def recall_at_k(vectors: np.ndarray, data: TrainingData, pairs: np.ndarray, ks) -> dict[int, float]:
    """Share of ``pairs`` (a, b) whose b is among a's k nearest candidates, for each k."""
    if not len(pairs):
        return {}
    kmax = max(ks)
    found = nearest(vectors, data, pairs[:, 0], kmax)
    hit = found == pairs[:, 1:2]
    return {k: float(hit[:, :k].any(axis=1).mean()) for k in ks}


def nearest(vectors: np.ndarray, data: TrainingData, anchors: np.ndarray, k: int) -> np.ndarray:
    """Each anchor's k nearest candidate records (indexes into ``texts``), best first."""
    anchors = np.unique(anchors, return_inverse=True)
    out = np.full((len(anchors[0]), k), -1, np.int64)
    for s in np.unique(data.side[anchors[0]]):
        rows = np.flatnonzero(data.side[anchors[0]] == s)
        base = np.flatnonzero(data.side != s) if data.link else np.arange(len(data.texts))
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
              log: Callable[[str], None] = lambda _: None) -> dict:
    """Fine-tune ``model`` (a sentence-transformers model, in place) with the hinge loss.

    Every epoch: mine hard negatives with the current model, then one pass over the
    positive pairs in seeded random order. Returns the training report: loss per step and
    per epoch, validation recall at each k before training and after each epoch, seconds.
    Deterministic for a given seed on a given machine (torch's CPU kernels and dropout
    draw from the seeded generator).
    """
    import torch

    from sigil.transforms.encoder import encode

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    params = trainable_layers(model, settings.train_layers)
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate)
    known = {(int(a), int(b)) for a, b in data.positives} | {(int(b), int(a)) for a, b in data.positives}
    labelled = {}
    for a, b in data.negatives.tolist():
        labelled.setdefault(a, []).append(b)
    report = {"steps": [], "epochs": [], "trainable_parameters": int(sum(p.numel() for p in params))}
    start = time.perf_counter()

    def embed_all():
        model.eval()
        return encode(model, data.texts, settings.batch_size)

    vectors = embed_all() if settings.hard_negatives or len(data.valid) else None
    report["valid_recall_before"] = recall_at_k(vectors, data, data.valid, settings.ks) if len(data.valid) else {}
    for epoch in range(settings.epochs):
        hard = _hard_negatives(vectors, data, known) if settings.hard_negatives else {}
        order = rng.permutation(len(data.positives))
        model.train()
        losses = []
        for lo in range(0, len(order), settings.batch_pairs):
            batch = data.positives[order[lo:lo + settings.batch_pairs]]
            loss = _step(model, optimizer, data, batch, hard, labelled, known, settings, rng)
            losses.append(loss)
            report["steps"].append(round(loss, 6))
        vectors = embed_all() if settings.hard_negatives or len(data.valid) else None
        row = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else None,
               "seconds": round(time.perf_counter() - start, 1)}
        if len(data.valid):
            row["valid_recall"] = recall_at_k(vectors, data, data.valid, settings.ks)
        report["epochs"].append(row)
        log(f"epoch {epoch}: loss {row['loss']:.4f}" + (f", valid recall {row['valid_recall']}" if "valid_recall" in row
                                                         else ""))
    report["seconds"] = round(time.perf_counter() - start, 1)
    model.eval()
    return report


def _step(model, optimizer, data, batch, hard, labelled, known, settings, rng) -> float:
    """One optimiser step over a batch of positive pairs; returns the loss."""
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
    return float(loss.detach())


def _embed(model, texts: list[str]):
    """Differentiable unit embeddings of a list of texts."""
    import torch.nn.functional as F

    features = model.preprocess(texts)
    return F.normalize(model(features)["sentence_embedding"], p=2, dim=1)
