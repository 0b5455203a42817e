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
Community Detection in Full Social Networks on a Laptop", PLOS ONE 13(1), 2018,
doi:10.1371/journal.pone.0188702.

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
    """MinHash signatures of integer sets, e.g. every vertex's neighbour set N(v).

    The signature of N(v) makes the share of equal entries of two vertices' signatures an
    estimate of the Jaccard similarity ``|N(u) ∩ N(v)| / |N(u) ∪ N(v)|`` of their
    neighbourhoods [1]_. Integer ids are hashed directly, by the splitmix64 finaliser [2]_
    followed by the hasher's permutations (``MinHasher``), never converted to strings.

    Parameters
    ----------
    owners : numpy.ndarray
        int64 owner of each row (the vertex), rows sorted by owner.
    members : numpy.ndarray
        int64 member of each row (a neighbour, >= 0); a member < 0 marks an owner without
        members, whose set is empty. A member repeated within an owner counts once.
    hasher : MinHasher
        The hash functions.

    Returns
    -------
    owners : numpy.ndarray
        Each distinct owner once, in input order.
    sizes : numpy.ndarray
        int64 size of each owner's set.
    signatures : numpy.ndarray
        uint32, shape ``(len(owners), hasher.num_perm)``; an empty set's is all ``EMPTY``.

    References
    ----------
    .. [1] B. P. Chamberlain, J. Levy-Kramer, C. Humby, M. P. Deisenroth, "Real-time
       community detection in full social networks on a laptop", PLOS ONE 13(1):
       e0188702, 2018. doi:10.1371/journal.pone.0188702
    .. [2] S. Vigna, splitmix64 (its finaliser). https://prng.di.unimi.it/splitmix64.c

    Examples
    --------
    >>> import numpy as np
    >>> from sigil.transforms.minhash import MinHasher
    >>> vid, size, sig = neighbourhood_signatures(np.array([0, 0, 1, 1, 2]), np.array([5, 6, 6, 5, -1]),
    ...                                           MinHasher(num_perm=4))
    >>> vid.tolist(), size.tolist(), bool((sig[0] == sig[1]).all())
    ([0, 1, 2], [2, 2, 0], True)
    """
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
    """Grow one community from seed vertices over its candidates, greedily.

    With Ĵ(u, v) the share of equal entries of two signatures (an estimate of their
    neighbourhoods' Jaccard similarity) and S the seeds [1]_:

    * ``ranking="streaming"`` (the paper's growth): the community C starts as S; the
      candidate c maximising ``sum_{v in C} Ĵ(c, v)`` joins with score
      ``mean_{v in C} Ĵ(c, v)``, and C grows by c, until ``|C| = max(size, |S|)``;
    * ``ranking="seeds"``: every candidate is scored once,
      ``s(c) = mean_{v in S} Ĵ(c, v)``, and joins in decreasing score.

    Ties go to the lower index; a candidate with no similarity to the community never
    joins, so a community can end below ``size``.

    Parameters
    ----------
    signatures : numpy.ndarray
        uint32, shape ``(m, num_perm)``: the candidates' signatures, seeds included.
    is_seed : numpy.ndarray
        bool, shape ``(m,)``: which candidates are seeds.
    size : int
        Target community size, seeds included.
    ranking : {"streaming", "seeds"}, default "streaming"
        The growth rule above.

    Returns
    -------
    order : numpy.ndarray
        int64 indices into the candidates in rank order, the seeds first (by index).
    score : numpy.ndarray
        float32 score of each, 1 for a seed.

    Raises
    ------
    ValueError
        On an unknown ``ranking``.

    References
    ----------
    .. [1] B. P. Chamberlain, J. Levy-Kramer, C. Humby, M. P. Deisenroth, "Real-time
       community detection in full social networks on a laptop", PLOS ONE 13(1):
       e0188702, 2018. doi:10.1371/journal.pone.0188702

    Examples
    --------
    >>> import numpy as np
    >>> sig = np.array([[1, 2, 3, 4], [1, 2, 3, 9], [1, 2, 8, 9], [7, 7, 7, 7]], np.uint32)
    >>> seed = np.array([True, False, False, False])
    >>> order, score = grow(sig, seed, size=4)
    >>> order.tolist(), score.tolist()  # row 3 shares nothing: the community stops at 3
    ([0, 1, 2], [1.0, 0.75, 0.625])
    >>> grow(sig, seed, size=3, ranking="seeds")[1].tolist()
    [1.0, 0.75, 0.5]
    """
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
    """Many seed queries at once, each grown as ``grow`` grows it, in parallel over queries.

    Parameters
    ----------
    signatures : numpy.ndarray
        uint32, shape ``(rows, num_perm)``: every query's candidates, query by query.
    is_seed : numpy.ndarray
        bool, shape ``(rows,)``: which candidates are their query's seeds.
    offsets : numpy.ndarray
        int64, ``queries + 1`` positions: query q's candidates are rows
        ``offsets[q]:offsets[q+1]``.
    sizes : numpy.ndarray
        Target community size of each query.
    ranking : {"streaming", "seeds"}, default "streaming"
        The growth rule (see ``grow``).

    Returns
    -------
    query : numpy.ndarray
        int64 query of each result row; queries in order.
    row : numpy.ndarray
        int64 row of each result in ``signatures``; each query's rows in rank order.
    score : numpy.ndarray
        float32 score of each result row (1 for a seed).

    Raises
    ------
    ValueError
        On an unknown ``ranking``.

    References
    ----------
    .. [1] B. P. Chamberlain, J. Levy-Kramer, C. Humby, M. P. Deisenroth, "Real-time
       community detection in full social networks on a laptop", PLOS ONE 13(1):
       e0188702, 2018. doi:10.1371/journal.pone.0188702

    Examples
    --------
    >>> import numpy as np
    >>> sig = np.array([[1, 2, 3, 4], [1, 2, 3, 9], [1, 2, 8, 9], [7, 7, 7, 7]], np.uint32)
    >>> is_seed = np.array([True, False, False, False, False, False, False, True])
    >>> query, row, score = grow_batch(np.r_[sig, sig], is_seed, np.array([0, 4, 8]), np.array([3, 2]))
    >>> query.tolist(), row.tolist(), score.tolist()
    ([0, 0, 0, 1], [0, 1, 2, 7], [1.0, 0.75, 0.625, 1.0])
    """
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
    """Which candidate rows a query keeps: its seeds, and the others sharing most buckets.

    Parameters
    ----------
    query : numpy.ndarray
        Integer label of each row's query.
    is_seed : numpy.ndarray
        bool, whether a row is a seed of its query (always kept).
    hits : numpy.ndarray
        Number of LSH buckets each row shares with its query's seeds.
    vid : numpy.ndarray
        Vertex id of each row, the tie-breaker (the smaller wins).
    max_candidates : int
        Rows kept per query besides its seeds.

    Returns
    -------
    numpy.ndarray
        bool, one per row: kept.

    Examples
    --------
    >>> import numpy as np
    >>> query = np.array([0, 0, 0, 0, 1, 1, 1])
    >>> is_seed = np.array([1, 0, 0, 0, 0, 0, 1], bool)
    >>> hits, vid = np.array([0, 2, 5, 2, 1, 1, 0]), np.array([9, 4, 7, 3, 8, 2, 5])
    >>> top_candidates(query, is_seed, hits, vid, 1).astype(int).tolist()
    [1, 0, 1, 0, 0, 1, 1]
    """
    keep = np.asarray(is_seed, bool).copy()
    mates = np.flatnonzero(~keep)
    order = mates[np.lexsort((vid[mates], -hits[mates], query[mates]))]
    q = query[order]
    first = np.flatnonzero(np.r_[True, q[1:] != q[:-1]]) if len(q) else np.zeros(0, np.int64)
    rank = np.arange(len(q)) - np.repeat(first, np.diff(np.r_[first, len(q)]))
    keep[order[rank < max_candidates]] = True
    return keep


def signature_matrix(path: str) -> np.ndarray:
    """The graph-index job's vertex signatures as one matrix, row v the signature of vertex v.

    Parameters
    ----------
    path : str
        A Parquet dataset with ``vid`` (dense vertex ids 0..n-1, each once) and
        ``signature`` (a fixed-size list of uint32); a local path or any URI pyarrow reads.

    Returns
    -------
    numpy.ndarray
        uint32, shape ``(n, num_perm)``.

    Examples
    --------
    >>> import os, tempfile
    >>> import pyarrow as pa
    >>> import pyarrow.parquet as pq
    >>> sigs = pa.FixedSizeListArray.from_arrays(pa.array([5, 6, 1, 2], pa.uint32()), 2)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     pq.write_table(pa.table({"vid": [1, 0], "signature": sigs}), os.path.join(d, "part-0.parquet"))
    ...     signature_matrix(d).tolist()
    [[1, 2], [5, 6]]
    """
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
    """Seed queries in memory, on one machine: the paper's real-time mode [1]_.

    Holds every vertex's signature and the LSH index (band, key, vid rows of the buckets
    the graph-index job kept); a query takes the seeds' bucket mates that share most
    buckets with them (at most ``max_candidates``, ties to the smaller vid), orders the
    candidates as the batch job does (seeds first, then by vid) and grows the community
    with ``grow``, so it returns what the ``communities`` job returns for the same query.

    Parameters
    ----------
    signatures : numpy.ndarray
        uint32, shape ``(n, num_perm)``: row v the signature of vertex v (dense ids 0..n-1).
    band, key, vid : numpy.ndarray
        The LSH index rows: vertex ``vid[i]`` is in bucket ``key[i]`` of band ``band[i]``.
    max_candidates : int, default 5000
        Bucket mates kept per query besides the seeds.

    References
    ----------
    .. [1] B. P. Chamberlain, J. Levy-Kramer, C. Humby, M. P. Deisenroth, "Real-time
       community detection in full social networks on a laptop", PLOS ONE 13(1):
       e0188702, 2018. doi:10.1371/journal.pone.0188702

    Examples
    --------
    >>> import numpy as np
    >>> sig = np.array([[1, 2, 3, 4], [1, 2, 3, 9], [1, 2, 8, 9], [7, 7, 7, 7], [7, 7, 7, 6]], np.uint32)
    >>> band = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> key = np.array([10, 10, 10, 11, 20, 20, 21, 21])
    >>> vid = np.array([0, 1, 2, 3, 0, 1, 3, 4])
    >>> index = CommunityIndex(sig, band, key, vid)
    >>> index.candidates([0]).tolist()
    [0, 1, 2]
    >>> members, score = index.query([0], size=3)
    >>> members.tolist(), score.tolist()
    ([0, 1, 2], [1.0, 0.75, 0.625])
    >>> members, score, candidates = index.answer([3], size=2)
    >>> members.tolist(), score.tolist(), candidates
    ([3, 4], [1.0, 0.75], 2)
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
        """Load the graph-index job's outputs.

        Parameters
        ----------
        path : str
            The graph-index output directory (``<output>/graph_index``), holding the
            Parquet datasets ``signatures`` (``vid, signature``) and ``lsh``
            (``band, key, vid``); a local path or any URI pyarrow reads.
        max_candidates : int, default 5000
            As in ``CommunityIndex``.

        Returns
        -------
        CommunityIndex

        Examples
        --------
        >>> import os, tempfile
        >>> import pyarrow as pa
        >>> import pyarrow.parquet as pq
        >>> sig = pa.FixedSizeListArray.from_arrays(pa.array([1, 2, 1, 3], pa.uint32()), 2)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     for name, table in (("signatures", pa.table({"vid": [0, 1], "signature": sig})),
        ...                         ("lsh", pa.table({"band": [0, 0], "key": [5, 5], "vid": [0, 1]}))):
        ...         os.mkdir(os.path.join(d, name))
        ...         pq.write_table(table, os.path.join(d, name, "part-0.parquet"))
        ...     index = CommunityIndex.from_parquet(d)
        >>> index.query([0], size=2)[0].tolist()
        [0, 1]
        """
        import pyarrow.parquet as pq

        from sigil.transforms.records import open_input

        fs, root = open_input(f"{path}/lsh")
        index = pq.read_table(root, filesystem=fs)
        return cls(signature_matrix(f"{path}/signatures"), *(index[c].to_numpy() for c in ("band", "key", "vid")),
                   max_candidates=max_candidates)

    def candidates(self, seeds: np.ndarray) -> np.ndarray:
        """The vertices a query's community is grown from.

        Parameters
        ----------
        seeds : array_like
            Seed vertex ids.

        Returns
        -------
        numpy.ndarray
            The distinct seeds (sorted), then the at most ``max_candidates`` bucket mates
            sharing most buckets with them (ties to the smaller vid), sorted by vid.

        Examples
        --------
        >>> import numpy as np
        >>> index = CommunityIndex(np.array([[1, 2], [1, 3], [7, 7]], np.uint32), band=np.zeros(3, int),
        ...                        key=np.array([5, 5, 6]), vid=np.arange(3))
        >>> index.candidates([0]).tolist()  # vertex 2 shares no bucket with vertex 0
        [0, 1]
        """
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
        """The community grown from ``seeds``.

        Parameters
        ----------
        seeds : array_like
            Seed vertex ids.
        size : int
            Target community size, seeds included.
        ranking : {"streaming", "seeds"}, default "streaming"
            The growth rule (see ``grow``).

        Returns
        -------
        members : numpy.ndarray
            The community's vertex ids in rank order, seeds first.
        score : numpy.ndarray
            float32 score of each (see ``grow``).

        Examples
        --------
        >>> import numpy as np
        >>> index = CommunityIndex(np.array([[1, 2], [1, 3], [7, 7]], np.uint32), band=np.zeros(3, int),
        ...                        key=np.array([5, 5, 6]), vid=np.arange(3))
        >>> members, score = index.query([0], size=3)
        >>> members.tolist(), score.tolist()
        ([0, 1], [1.0, 0.5])
        """
        members, score, _ = self.answer(seeds, size, ranking)
        return members, score

    def answer(self, seeds, size: int, ranking: str = "streaming") -> tuple[np.ndarray, np.ndarray, int]:
        """``query``, and how many candidates the community was grown from.

        Parameters
        ----------
        seeds, size, ranking
            As in ``query``.

        Returns
        -------
        members, score : numpy.ndarray
            As in ``query``.
        candidates : int
            Number of candidate vertices, seeds included (see ``candidates``).

        Examples
        --------
        >>> import numpy as np
        >>> index = CommunityIndex(np.array([[1, 2], [1, 3], [7, 7]], np.uint32), band=np.zeros(3, int),
        ...                        key=np.array([5, 5, 6]), vid=np.arange(3))
        >>> members, score, candidates = index.answer([1, 1], size=2)
        >>> members.tolist(), candidates
        ([1, 0], 2)
        """
        cands = self.candidates(seeds)
        is_seed = np.zeros(len(cands), bool)
        is_seed[:len(np.unique(seeds))] = True
        order, score = grow(self.signatures[cands], is_seed, size, ranking)
        return cands[order], score, len(cands)

    def nbytes(self) -> int:
        """Memory held by the index's arrays, in bytes.

        Returns
        -------
        int

        Examples
        --------
        >>> import numpy as np
        >>> index = CommunityIndex(np.array([[1, 2], [1, 3], [7, 7]], np.uint32), band=np.zeros(3, int),
        ...                        key=np.array([5, 5, 6]), vid=np.arange(3))
        >>> index.nbytes() >= index.signatures.nbytes
        True
        """
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
    """Estimated Jaccard similarity of every pair of rows.

    ``Ĵ(i, j) = (1/k) sum_t [sig_i[t] = sig_j[t]]``, the share of equal entries of two
    MinHash signatures of length k, an unbiased estimate of the sets' Jaccard similarity.

    Parameters
    ----------
    signatures : numpy.ndarray
        Shape ``(m, k)``, one signature per row.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(m, m)``, symmetric, 1 on the diagonal.

    References
    ----------
    .. [1] A. Z. Broder, "On the resemblance and containment of documents", Compression and
       Complexity of Sequences 1997. doi:10.1109/SEQUEN.1997.666900

    Examples
    --------
    >>> import numpy as np
    >>> jaccard_matrix(np.array([[1, 2, 3, 4], [1, 2, 3, 9]], np.uint32)).tolist()
    [[1.0, 0.75], [0.75, 1.0]]
    """
    return _jaccard_matrix(np.ascontiguousarray(signatures))


def cluster_graph(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, algorithm: str = "leiden",
                  resolution: float = 1.0, seed: int = 0, iterations: int = 2) -> np.ndarray:
    """Community of each vertex of a weighted undirected graph, by modularity.

    Both algorithms, igraph's [3]_, look for the partition c maximising the modularity

    ``Q = 1/(2m) sum_ij (A_ij - gamma k_i k_j / (2m)) [c_i = c_j]``,

    with A the weight matrix, k_i the weighted degree of i, m the total edge weight and
    gamma the resolution: Louvain [1]_ by local moves and aggregation, Leiden [2]_ adding a
    refinement step that keeps every community connected. Runs on one machine. The random
    choices come from a generator seeded with ``seed`` and private to the call (igraph's
    process-wide generator is set to it and back to igraph's default, the ``random``
    module, afterwards); Python's global random state is not touched.

    Parameters
    ----------
    n : int
        Number of vertices, ids 0..n-1 (vertices without edges get communities of their own).
    src, dst : numpy.ndarray
        Integer end points of each edge.
    weight : numpy.ndarray
        Non-negative weight of each edge.
    algorithm : {"leiden", "louvain"}, default "leiden"
    resolution : float, default 1.0
        gamma above: above 1 favours smaller communities, below 1 larger ones.
    seed : int, default 0
        Seed of the random choices; equal input and seed give equal labels.
    iterations : int, default 2
        Leiden passes (-1: until stable; igraph's default 2 is as good on LFR graphs and far
        faster on millions of edges); not used by Louvain.

    Returns
    -------
    numpy.ndarray
        int64 community of each vertex, renumbered 0.. in order of each community's
        smallest vertex.

    Raises
    ------
    ValueError
        On an unknown ``algorithm``.

    References
    ----------
    .. [1] V. D. Blondel, J.-L. Guillaume, R. Lambiotte, E. Lefebvre, "Fast unfolding of
       communities in large networks", J. Stat. Mech. P10008, 2008.
       doi:10.1088/1742-5468/2008/10/P10008
    .. [2] V. A. Traag, L. Waltman, N. J. van Eck, "From Louvain to Leiden: guaranteeing
       well-connected communities", Sci. Rep. 9, 5233, 2019. doi:10.1038/s41598-019-41695-z
    .. [3] igraph, ``Graph.community_leiden`` and ``Graph.community_multilevel``.
       https://python.igraph.org

    Examples
    --------
    Two triangles joined by one edge:

    >>> import numpy as np
    >>> src, dst = np.array([0, 0, 1, 3, 3, 4, 2]), np.array([1, 2, 2, 4, 5, 5, 3])
    >>> cluster_graph(6, src, dst, np.ones(7), "leiden", seed=1).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    import random

    import igraph

    # tuples of Python ints are igraph's fastest input (a 2-d array is read element by element)
    g = igraph.Graph(n=n, edges=list(zip(np.asarray(src).tolist(), np.asarray(dst).tolist())), directed=False)
    g.es["weight"] = np.asarray(weight, float).tolist()
    if algorithm not in ("leiden", "louvain"):
        raise ValueError(f"algorithm must be leiden or louvain, got {algorithm!r}")
    # igraph draws from one process-wide generator: lend it a private one for this call (the
    # stream random.seed(seed) gave), then restore igraph's default, the random module
    igraph.set_random_number_generator(random.Random(seed))
    try:
        if algorithm == "leiden":
            labels = g.community_leiden(objective_function="modularity", weights="weight", resolution=resolution,
                                        n_iterations=iterations).membership
        else:
            labels = g.community_multilevel(weights="weight", resolution=resolution).membership
    finally:
        igraph.set_random_number_generator(random)
    _, first, inverse = np.unique(np.asarray(labels), return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse].astype(np.int64)


def subcommunities(signatures: np.ndarray, threshold: float, seed: int = 0) -> np.ndarray:
    """Sub-communities of a found community, for display.

    Leiden (``cluster_graph``) on the members' similarity graph: an edge joins two members
    whose estimated Jaccard similarity (``jaccard_matrix``) is at least ``threshold``,
    weighted by it.

    Parameters
    ----------
    signatures : numpy.ndarray
        Shape ``(m, num_perm)``: the members' signatures, in rank order.
    threshold : float
        Least estimated Jaccard similarity of an edge, in (0, 1].
    seed : int, default 0
        Seed of Leiden's random choices.

    Returns
    -------
    numpy.ndarray
        int32 sub-community of each member, 0.. in rank order of each one's first member.

    References
    ----------
    .. [1] V. A. Traag, L. Waltman, N. J. van Eck, "From Louvain to Leiden: guaranteeing
       well-connected communities", Sci. Rep. 9, 5233, 2019. doi:10.1038/s41598-019-41695-z

    Examples
    --------
    >>> import numpy as np
    >>> sig = np.array([[1, 2, 3, 4], [1, 2, 3, 5], [7, 8, 9, 9], [7, 8, 9, 6]], np.uint32)
    >>> subcommunities(sig, 0.5).tolist()
    [0, 0, 1, 1]
    """
    sim = jaccard_matrix(signatures)
    i, j = np.nonzero(np.triu(sim >= threshold, k=1))
    return cluster_graph(len(signatures), i, j, sim[i, j], "leiden", seed=seed).astype(np.int32)


def recall_area(found: np.ndarray, community_size: int) -> float:
    """Area under the recall curve of a ranked list against a true community C.

    ``found[k-1]`` says whether the member at rank k is in C (seeds included, ranks past
    the list's end add nothing). With r(0) = 0 and r(k) = |C ∩ first k| / |C|, the area is
    the trapezoid rule over k = 0..|C| with step 1/|C|; a perfect ranking scores 0.5.

    Parameters
    ----------
    found : numpy.ndarray
        bool, whether the member at each rank (from 1) is in C.
    community_size : int
        |C|, the true community's size.

    Returns
    -------
    float
        The area, in [0, 0.5].

    Examples
    --------
    >>> import numpy as np
    >>> recall_area(np.array([True, True]), 2)
    0.5
    >>> recall_area(np.array([True, False, True]), 2)  # r = 0, 1/2, 1/2: (1/4 + 1/2) / 2
    0.375
    """
    size = int(community_size)
    hits = np.zeros(size + 1)
    k = min(len(found), size)
    hits[1:k + 1] = np.cumsum(np.asarray(found[:k], dtype=float))
    hits[k + 1:] = hits[k]
    recall = hits / size
    return float(((recall[1:] + recall[:-1]) / 2).sum() / size)


def count_sums(counts) -> tuple[float, float]:
    """The two sums of counts that ``agreement`` needs of each partition.

    Parameters
    ----------
    counts : array_like
        Positive counts x: block sizes, or nonzero cells of a contingency table.

    Returns
    -------
    tuple of float
        ``(sum x log x, sum C(x, 2))``, natural logarithm.

    Examples
    --------
    >>> xlogx, pairs = count_sums([2, 2])
    >>> round(xlogx, 4), pairs
    (2.7726, 2.0)
    """
    x = np.asarray(counts, dtype=float)
    return float(np.sum(x * np.log(x))), float(np.sum(x * (x - 1) / 2))


def agreement(n: int, cells: tuple[float, float], found: tuple[float, float], true: tuple[float, float]) -> dict:
    """NMI and adjusted Rand index of two partitions of n items, from ``count_sums`` of the
    nonzero contingency counts n_ij (``cells``), of the found communities' sizes a_i and of
    the true ones' sizes b_j.

    With h(x) = Σ x log x: H(U) = log n - h(a)/n, H(V) = log n - h(b)/n and
    I(U; V) = log n + (h(n_ij) - h(a) - h(b)) / n; NMI = I / mean(H(U), H(V)) (arithmetic,
    scikit-learn's default, as in [2]_; 1 when both partitions are one block).
    ARI [1]_ = (Σ C(n_ij,2) - E) / (½(Σ C(a_i,2) + Σ C(b_j,2)) - E), with
    E = Σ C(a_i,2) Σ C(b_j,2) / C(n,2). Only sums are needed, so an engine aggregates them
    without gathering the partitions.

    Parameters
    ----------
    n : int
        Number of items.
    cells : tuple of float
        ``count_sums`` of the nonzero contingency counts n_ij.
    found : tuple of float
        ``count_sums`` of the found blocks' sizes a_i.
    true : tuple of float
        ``count_sums`` of the true blocks' sizes b_j.

    Returns
    -------
    dict
        ``{"nmi": float, "ari": float}``; NMI clipped to at most 1.

    References
    ----------
    .. [1] L. Hubert, P. Arabie, "Comparing partitions", Journal of Classification 2,
       193-218, 1985. doi:10.1007/BF01908075
    .. [2] L. Danon, A. Díaz-Guilera, J. Duch, A. Arenas, "Comparing community structure
       identification", J. Stat. Mech. P09008, 2005. doi:10.1088/1742-5468/2005/09/P09008

    Examples
    --------
    Found ``[0, 0, 1, 1]`` against true ``[0, 0, 1, 2]``: contingency cells 2, 1, 1.

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
