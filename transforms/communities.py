"""Communities from neighbourhood MinHash signatures (Chamberlain et al., 2018).

Each vertex v is summarised by the MinHash signature of its neighbour set N(v) (see
``neighbourhood_signatures``), so that the share of equal signature entries estimates the
Jaccard similarity |N(u) ∩ N(v)| / |N(u) ∪ N(v)|: vertices of one community share many
neighbours. A seed query grows a community from a few seed vertices S over the candidates
that share an LSH bucket with a seed:

* ``ranking="seeds"``: every candidate c is scored once, s(c) = mean_{v in S} Ĵ(c, v), and
  the community is S followed by the candidates in decreasing score;
* ``ranking="streaming"`` (the paper's growth): the community C starts as S; the candidate
  with the highest mean similarity to the current C joins, and every candidate's running
  sum of similarities is updated with the new member (a streaming mean), until |C| reaches
  the target size.

Reference: B. P. Chamberlain, J. Levy-Kramer, C. Humby, M. P. Deisenroth, "Real-Time
Community Detection in Full Social Networks on a Laptop", PLOS ONE 13(1), 2018.

Example
-------
>>> import numpy as np
>>> sig = np.array([[1, 2, 3, 4], [1, 2, 3, 9], [1, 2, 8, 9], [7, 7, 7, 7]], np.uint32)
>>> order, score = grow(sig, np.array([True, False, False, False]), size=3)
>>> order.tolist(), score.tolist()
([0, 1, 2], [1.0, 0.75, 0.625])
"""

from __future__ import annotations

import numba
import numpy as np

from sigil.transforms.minhash import MinHasher, token_sets

RANKINGS = ("streaming", "seeds")


@numba.njit(cache=True, parallel=True)
def _mix_ids(values):
    out = np.empty(len(values), dtype=np.int64)
    for i in numba.prange(len(values)):
        h = np.uint64(values[i])  # splitmix64 finaliser: distinct ids -> well-spread 64-bit hashes
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out[i] = np.int64(h ^ (h >> np.uint64(31)))
    return out.view(np.uint64)


def neighbourhood_signatures(owners: np.ndarray, members: np.ndarray, hasher: MinHasher):
    """MinHash signatures of integer sets given as (owner, member) rows sorted by owner.

    A member < 0 marks an owner without members (its signature is all-empty, its set size
    0). Integer ids are hashed directly (splitmix64, then the hasher's permutations), never
    converted to strings. Returns (owners, set sizes, uint32 signatures)."""
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if len(owners) else np.zeros(0, np.int64)
    keep = members >= 0
    kept_owner_offsets = np.searchsorted(np.flatnonzero(keep), starts)
    offsets = np.r_[kept_owner_offsets, keep.sum()].astype(np.int64)
    sets, set_offsets = token_sets(members[keep], offsets)
    signatures = hasher.signatures(None, set_offsets, _mix_ids(sets))
    return owners[starts], np.diff(set_offsets), signatures


@numba.njit(cache=True, inline="always")
def _similarity(sig, i, j):
    same = 0
    for t in range(sig.shape[1]):
        same += sig[i, t] == sig[j, t]
    return same / sig.shape[1]


@numba.njit(cache=True)
def _grow(sig, seeds, size, streaming):
    m = sig.shape[0]
    total = np.zeros(m)
    inside = np.zeros(m, dtype=np.bool_)
    order = np.empty(min(max(size, len(seeds)), m), dtype=np.int64)
    score = np.empty(len(order), dtype=np.float32)
    n = 0
    for s in seeds:
        if inside[s]:
            continue
        inside[s] = True
        order[n], score[n] = s, 1.0
        n += 1
        for c in range(m):
            total[c] += _similarity(sig, c, s)
    members = n
    while n < len(order):
        best, best_total = -1, 0.0
        for c in range(m):
            if not inside[c] and total[c] > best_total:
                best, best_total = c, total[c]
        if best < 0:  # no candidate left with any similarity: the evidence ends here
            break
        inside[best] = True
        order[n], score[n] = best, best_total / members
        n += 1
        if streaming:
            members += 1
            for c in range(m):
                if not inside[c]:
                    total[c] += _similarity(sig, c, best)
    return order[:n], score[:n]


def grow(signatures: np.ndarray, is_seed: np.ndarray, size: int, ranking: str = "streaming"):
    """One seed query over its candidates: (indices into the candidates in rank order, the
    seeds first; each one's score, the mean estimated Jaccard to the community it joined,
    1 for a seed). Ties go to the lower index; candidates without any similarity to the
    community never join, so a community can end below ``size``."""
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {RANKINGS}, got {ranking!r}")
    seeds = np.flatnonzero(is_seed)
    return _grow(np.ascontiguousarray(signatures), seeds, size, ranking == "streaming")


@numba.njit(cache=True, parallel=True)
def _grow_all(sig, is_seed, offsets, sizes, streaming, out_offsets, out_index, out_score, out_count):
    for q in numba.prange(len(offsets) - 1):
        lo, hi = offsets[q], offsets[q + 1]
        seeds = np.flatnonzero(is_seed[lo:hi])
        order, score = _grow(sig[lo:hi], seeds, sizes[q], streaming)
        k = len(order)
        out_index[out_offsets[q]:out_offsets[q] + k] = order + lo
        out_score[out_offsets[q]:out_offsets[q] + k] = score
        out_count[q] = k


def grow_batch(signatures: np.ndarray, is_seed: np.ndarray, offsets: np.ndarray, sizes: np.ndarray,
               ranking: str = "streaming"):
    """Many seed queries at once, in parallel: query q's candidates are rows
    ``offsets[q]:offsets[q+1]``. Returns (query of each result row, row index into the
    candidates, score), queries in order, each query's rows in rank order."""
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {RANKINGS}, got {ranking!r}")
    offsets = np.asarray(offsets, np.int64)
    counts = np.diff(offsets)
    n_seeds = np.add.reduceat(is_seed.astype(np.int64), offsets[:-1]) if len(counts) and counts.all() else \
        np.array([is_seed[a:b].sum() for a, b in zip(offsets[:-1], offsets[1:])], np.int64)
    cap = np.minimum(np.maximum(np.asarray(sizes, np.int64), n_seeds), counts)
    out_offsets = np.r_[0, np.cumsum(cap)].astype(np.int64)
    out_index = np.empty(out_offsets[-1], np.int64)
    out_score = np.empty(out_offsets[-1], np.float32)
    out_count = np.zeros(len(counts), np.int64)
    _grow_all(np.ascontiguousarray(signatures), is_seed, offsets, np.asarray(sizes, np.int64),
              ranking == "streaming", out_offsets, out_index, out_score, out_count)
    keep = np.arange(out_offsets[-1]) - np.repeat(out_offsets[:-1], cap) < np.repeat(out_count, cap)
    query = np.repeat(np.arange(len(counts)), cap)[keep]
    return query, out_index[keep], out_score[keep]


def top_candidates(query: np.ndarray, is_seed: np.ndarray, hits: np.ndarray, vid: np.ndarray,
                   max_candidates: int) -> np.ndarray:
    """Which rows to keep: every seed, and per query the ``max_candidates`` other rows that
    share most buckets with the seeds (ties to the smaller vid); ``query`` an integer label
    of each row's query."""
    keep = np.asarray(is_seed, bool).copy()
    mates = np.flatnonzero(~keep)
    order = mates[np.lexsort((vid[mates], -hits[mates], query[mates]))]
    q = query[order]
    first = np.flatnonzero(np.r_[True, q[1:] != q[:-1]]) if len(q) else np.zeros(0, np.int64)
    rank = np.arange(len(q)) - np.repeat(first, np.diff(np.r_[first, len(q)]))
    keep[order[rank < max_candidates]] = True
    return keep


def signature_matrix(path: str) -> np.ndarray:
    """The graph-index job's signatures (a Parquet dataset at ``path``, any filesystem
    pyarrow reads) as one (n, num_perm) uint32 matrix, row v the signature of vertex v."""
    import pyarrow.parquet as pq

    from sigil.transforms.records import open_input

    fs, root = open_input(path)
    sigs = pq.read_table(root, columns=["vid", "signature"], filesystem=fs)
    vid = sigs["vid"].to_numpy()
    flat = sigs["signature"].combine_chunks()
    matrix = np.empty((len(vid), flat.type.list_size), np.uint32)
    matrix[vid] = flat.flatten().to_numpy().reshape(len(vid), -1)
    return matrix


class CommunityIndex:
    """Seed queries in memory, on one machine: the paper's real-time mode.

    Holds every vertex's signature and the LSH index (band, key, vid rows of the buckets
    the graph-index job kept); a query takes the seeds' bucket mates that share most
    buckets with them (at most ``max_candidates``, ties to the smaller vid), orders the
    candidates as the batch job does (seeds first, then by vid) and grows the community
    with ``grow``, so it returns what the ``communities`` job returns for the same query.

    Parameters
    ----------
    signatures : (n, num_perm) uint32, row v the signature of vertex v (dense ids 0..n-1).
    band, key, vid : the LSH index rows.
    """

    def __init__(self, signatures: np.ndarray, band: np.ndarray, key: np.ndarray, vid: np.ndarray,
                 max_candidates: int = 5_000):
        self.signatures = np.ascontiguousarray(signatures)
        self.max_candidates = max_candidates
        order = np.lexsort((vid, key, band))
        band, key, members = band[order], key[order], vid[order]
        new = np.r_[True, (band[1:] != band[:-1]) | (key[1:] != key[:-1])] if len(band) else np.zeros(0, bool)
        bucket = np.cumsum(new) - 1
        self._bucket_members = members
        self._bucket_offsets = np.r_[np.flatnonzero(new), len(members)].astype(np.int64)
        by_vertex = np.argsort(members, kind="stable")
        self._vertex_buckets = bucket[by_vertex]
        self._vertex_offsets = np.searchsorted(members[by_vertex], np.arange(len(signatures) + 1))

    @classmethod
    def from_parquet(cls, path: str, max_candidates: int = 5_000) -> "CommunityIndex":
        """Load the graph-index job's outputs (``<output>/graph_index``)."""
        import pyarrow.parquet as pq

        from sigil.transforms.records import open_input

        fs, root = open_input(f"{path}/lsh")
        index = pq.read_table(root, filesystem=fs)
        return cls(signature_matrix(f"{path}/signatures"), *(index[c].to_numpy() for c in ("band", "key", "vid")),
                   max_candidates=max_candidates)

    def candidates(self, seeds: np.ndarray) -> np.ndarray:
        """The seeds (sorted) followed by their best bucket mates (sorted by vid)."""
        seeds = np.unique(np.asarray(seeds, np.int64))
        buckets = np.concatenate([self._vertex_buckets[self._vertex_offsets[s]:self._vertex_offsets[s + 1]]
                                  for s in seeds]) if len(seeds) else np.zeros(0, np.int64)
        starts, ends = self._bucket_offsets[buckets], self._bucket_offsets[buckets + 1]
        mates = self._bucket_members[np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)])] \
            if len(buckets) else np.zeros(0, np.int64)
        mates, hits = np.unique(mates, return_counts=True)
        keep = ~np.isin(mates, seeds)
        mates, hits = mates[keep], hits[keep]
        if len(mates) > self.max_candidates:
            best = np.lexsort((mates, -hits))[:self.max_candidates]
            mates = np.sort(mates[best])
        return np.r_[seeds, mates]

    def query(self, seeds, size: int, ranking: str = "streaming") -> tuple[np.ndarray, np.ndarray]:
        """The community grown from ``seeds`` (vids): its vids in rank order and scores."""
        members, score, _ = self.answer(seeds, size, ranking)
        return members, score

    def answer(self, seeds, size: int, ranking: str = "streaming") -> tuple[np.ndarray, np.ndarray, int]:
        """``query``, and how many candidates the community was grown from."""
        cands = self.candidates(seeds)
        is_seed = np.zeros(len(cands), bool)
        is_seed[:len(np.unique(seeds))] = True
        order, score = grow(self.signatures[cands], is_seed, size, ranking)
        return cands[order], score, len(cands)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.signatures, self._bucket_members, self._bucket_offsets,
                                      self._vertex_buckets, self._vertex_offsets))


@numba.njit(cache=True, parallel=True)
def _jaccard_matrix(sig):
    m = sig.shape[0]
    out = np.ones((m, m), dtype=np.float32)
    for i in numba.prange(m):
        for j in range(i + 1, m):
            v = _similarity(sig, i, j)
            out[i, j] = v
            out[j, i] = v
    return out


def jaccard_matrix(signatures: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of every pair of rows (1 on the diagonal)."""
    return _jaccard_matrix(np.ascontiguousarray(signatures))


def cluster_graph(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, algorithm: str = "leiden",
                  resolution: float = 1.0, seed: int = 0, iterations: int = 2) -> np.ndarray:
    """Community of each of n vertices of a weighted undirected graph, by modularity:
    Leiden (Traag, Waltman, van Eck, Sci. Rep. 2019) or Louvain (Blondel et al., J. Stat.
    Mech. 2008), both igraph's. Runs on one machine; labels are renumbered 0.. in order of
    each community's smallest vertex, so equal input gives equal labels. ``iterations``:
    Leiden passes (-1: until stable; igraph's default 2 is as good on LFR graphs and far
    faster on millions of edges)."""
    import random

    import igraph

    # tuples of Python ints are igraph's fastest input (a 2-d array is read element by element)
    g = igraph.Graph(n=n, edges=list(zip(np.asarray(src).tolist(), np.asarray(dst).tolist())), directed=False)
    g.es["weight"] = np.asarray(weight, float).tolist()
    random.seed(seed)  # igraph draws from Python's random module
    if algorithm == "leiden":
        labels = g.community_leiden(objective_function="modularity", weights="weight", resolution=resolution,
                                    n_iterations=iterations).membership
    elif algorithm == "louvain":
        labels = g.community_multilevel(weights="weight", resolution=resolution).membership
    else:
        raise ValueError(f"algorithm must be leiden or louvain, got {algorithm!r}")
    _, first, inverse = np.unique(np.asarray(labels), return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse].astype(np.int64)


def subcommunities(signatures: np.ndarray, threshold: float, seed: int = 0) -> np.ndarray:
    """Sub-communities of a found community, for display: Leiden on the members' Jaccard
    graph (pairs with estimated Jaccard >= threshold, weighted by it); labels 0.. in rank
    order of each sub-community's first member."""
    sim = jaccard_matrix(signatures)
    i, j = np.nonzero(np.triu(sim >= threshold, k=1))
    return cluster_graph(len(signatures), i, j, sim[i, j], "leiden", seed=seed).astype(np.int32)


def recall_area(found: np.ndarray, community_size: int) -> float:
    """Area under the recall curve of a ranked list against a true community C.

    ``found[k-1]`` says whether the member at rank k is in C (seeds included, ranks past
    the list's end add nothing). With r(0) = 0 and r(k) = |C ∩ first k| / |C|, the area is
    the trapezoid rule over k = 0..|C| with step 1/|C|; a perfect ranking scores 0.5."""
    size = int(community_size)
    hits = np.zeros(size + 1)
    k = min(len(found), size)
    hits[1:k + 1] = np.cumsum(np.asarray(found[:k], dtype=float))
    hits[k + 1:] = hits[k]
    recall = hits / size
    return float(((recall[1:] + recall[:-1]) / 2).sum() / size)


def count_sums(counts) -> tuple[float, float]:
    """(Σ x log x, Σ C(x, 2)) of counts x: what ``agreement`` needs of each partition."""
    x = np.asarray(counts, dtype=float)
    return float(np.sum(x * np.log(x))), float(np.sum(x * (x - 1) / 2))


def agreement(n: int, cells: tuple[float, float], found: tuple[float, float], true: tuple[float, float]) -> dict:
    """NMI and adjusted Rand index of two partitions of n items, from ``count_sums`` of the
    nonzero contingency counts n_ij (``cells``), of the found communities' sizes a_i and of
    the true ones' sizes b_j.

    With h(x) = Σ x log x: H(U) = log n - h(a)/n, H(V) = log n - h(b)/n and
    I(U; V) = log n + (h(n_ij) - h(a) - h(b)) / n; NMI = I / mean(H(U), H(V)) (arithmetic,
    scikit-learn's default; 1 when both partitions are one block). ARI (Hubert and Arabie,
    1985) = (Σ C(n_ij,2) - E) / (½(Σ C(a_i,2) + Σ C(b_j,2)) - E), E = Σ C(a_i,2) Σ C(b_j,2)
    / C(n,2). Only sums are needed, so an engine aggregates them without gathering the
    partitions.

    >>> a, b = [0, 0, 1, 1], [0, 0, 1, 2]
    >>> r = agreement(4, count_sums([2, 1, 1]), count_sums([2, 2]), count_sums([2, 1, 1]))
    >>> round(r["nmi"], 4), round(r["ari"], 4)
    (0.8, 0.5714)
    """
    log_n = np.log(n)
    hu, hv = log_n - found[0] / n, log_n - true[0] / n
    mi = max(log_n + (cells[0] - found[0] - true[0]) / n, 0.0)
    nmi = 1.0 if hu == hv == 0 else (mi / ((hu + hv) / 2) if hu + hv > 0 else 0.0)
    expected = found[1] * true[1] / (n * (n - 1) / 2) if n > 1 else 0.0
    top = (found[1] + true[1]) / 2
    ari = 1.0 if top == expected else (cells[1] - expected) / (top - expected)
    return {"nmi": float(min(nmi, 1.0)), "ari": float(ari)}
