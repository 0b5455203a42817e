"""Locality-sensitive hashing over MinHash signatures: banding, buckets, candidate pairs.

A signature of ``b * r`` values is cut into ``b`` bands of ``r`` rows; two records become
candidates when all rows of at least one band agree, which for Jaccard similarity ``s``
happens with probability ``1 - (1 - s^r)^b`` (Leskovec, Rajaraman, Ullman, *Mining of
Massive Datasets*, ch. 3.4). ``b`` and ``r`` are chosen as datasketch's ``MinHashLSH``
chooses them: minimising the weighted false-positive and false-negative areas under
that S-curve around the threshold.

Everything here works on numpy arrays of one batch; the engines do the grouping.

Example
-------
>>> optimal_params(0.5, 128)
(25, 5)
"""

from __future__ import annotations

from collections.abc import Mapping

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.integrate import quad

from sigil.schemas import datasets
from sigil.transforms.packing import unpack_ragged, unpack_rows
from sigil.transforms.pairs import oriented

OVERSIZED_POLICIES = ("skip", "split")

#: The statistics of one partition's buckets (``bucket_statistics``), written by each task
#: beside its pairs: kind 1 = a histogram row (band a, size b, buckets c); kind 2 = an
#: oversized bucket (band a, key b, size c), one row per sample id d.
BUCKET_STATS = pa.schema([("kind", pa.int32()), ("a", pa.int64()), ("b", pa.int64()), ("c", pa.int64()),
                          ("d", pa.int64())])
HISTOGRAM, OVERSIZED = 1, 2


def _false_positive_area(threshold: float, b: int, r: int) -> float:
    return quad(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)[0]


def _false_negative_area(threshold: float, b: int, r: int) -> float:
    return quad(lambda s: (1 - s ** float(r)) ** float(b), threshold, 1.0)[0]


def optimal_params(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                   false_negative_weight: float = 0.5) -> tuple[int, int]:
    """The banding (bands, rows) for a Jaccard threshold, as datasketch's ``MinHashLSH`` picks it.

    With ``P(s) = 1 - (1 - s^r)^b`` the chance that two sets of Jaccard similarity s
    share a band (``collision_probability``) [1]_, the false-positive area is
    ``FP = ∫_0^t P(s) ds`` and the false-negative area ``FN = ∫_t^1 (1 - P(s)) ds``. The
    result minimises ``false_positive_weight FP + false_negative_weight FN`` over all
    ``b r <= num_perm``, exactly as datasketch's ``_optimal_param`` [2]_.

    Parameters
    ----------
    threshold : float
        The Jaccard similarity t, in (0, 1), the banding is tuned for.
    num_perm : int
        The signature length: the most values the bands may use.
    false_positive_weight, false_negative_weight : float, default 0.5
        The weights of the two areas.

    Returns
    -------
    tuple of int
        ``(bands, rows)``.

    References
    ----------
    .. [1] J. Leskovec, A. Rajaraman, J. D. Ullman, *Mining of Massive Datasets*, ch. 3
       "Finding Similar Items", sec. 3.4. http://www.mmds.org/
    .. [2] datasketch, ``MinHashLSH`` and its ``_optimal_param``.
       https://ekzhu.com/datasketch/lsh.html

    Examples
    --------
    >>> from datasketch.lsh import _optimal_param
    >>> optimal_params(0.8, 64), _optimal_param(0.8, 64, 0.5, 0.5)
    ((5, 11), (5, 11))
    """
    best, best_error = (0, 0), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            error = (false_positive_weight * _false_positive_area(threshold, b, r)
                     + false_negative_weight * _false_negative_area(threshold, b, r))
            if error < best_error:
                best, best_error = (b, r), error
    return best


def collision_probability(similarity: np.ndarray | float, bands: int, rows: int):
    """The probability that two sets of Jaccard similarity s share at least one band.

    A MinHash value agrees with probability s [1]_, a band of r values with ``s^r``, and
    at least one of b bands with ``1 - (1 - s^r)^b`` [2]_: an S-curve that rises most
    steeply near ``s = (1/b)^(1/r)``.

    Parameters
    ----------
    similarity : float or array_like
        Jaccard similarities, in [0, 1].
    bands, rows : int
        The banding.

    Returns
    -------
    numpy.ndarray
        float64, the shape of ``similarity`` (0-d for a float).

    References
    ----------
    .. [1] A. Z. Broder, "On the resemblance and containment of documents", Compression and
       Complexity of Sequences 1997. doi:10.1109/SEQUEN.1997.666900
    .. [2] J. Leskovec, A. Rajaraman, J. D. Ullman, *Mining of Massive Datasets*, ch. 3
       "Finding Similar Items", sec. 3.4. http://www.mmds.org/

    Examples
    --------
    >>> collision_probability([0.2, 0.5, 0.8], bands=20, rows=5).round(3).tolist()
    [0.006, 0.47, 1.0]
    """
    return 1.0 - (1.0 - np.asarray(similarity, dtype=float) ** rows) ** bands


@numba.njit(cache=True, inline="always")
def _mix64(h):
    # splitmix64 finaliser: a bijection on 64-bit words with full avalanche
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


@numba.njit(cache=True, parallel=True)
def _band_keys(sig, bands, rows):
    n, k = sig.shape
    keys = np.empty((n, bands), dtype=np.uint64)
    fine = np.empty((n, bands), dtype=np.uint64)
    for i in numba.prange(n):
        for j in range(bands):
            h = _mix64(np.uint64(j + 1))
            for t in range(j * rows, (j + 1) * rows):
                h = _mix64(h ^ np.uint64(sig[i, t]))
            keys[i, j] = h
            # the finer key extends the band by the next band's rows (wrapping around)
            for t in range((j + 1) * rows, (j + 2) * rows):
                h = _mix64(h ^ np.uint64(sig[i, t % (bands * rows)]))
            fine[i, j] = h
    return keys.view(np.int64), fine.view(np.int64)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The LSH bucket key of every band of every signature, and a finer key per band.

    Band j covers signature values ``j r .. (j + 1) r - 1`` [1]_. Its key is a 64-bit hash
    of the band index and those values (the splitmix64 finaliser [2]_ chained over them),
    so two signatures get equal keys where the band agrees (and, but for 64-bit
    collisions, only there). The finer key chains on over the next band's values (band 0
    after the last), to split buckets too large (``bucket_pairs``).

    Parameters
    ----------
    signatures : numpy.ndarray
        Unsigned integers, shape ``(n, num_perm)``.
    bands, rows : int
        The banding; ``bands * rows <= num_perm``.

    Returns
    -------
    keys, fine : numpy.ndarray
        int64, shape ``(n, bands)``.

    Raises
    ------
    ValueError
        When ``bands * rows`` exceeds the signature length.

    References
    ----------
    .. [1] J. Leskovec, A. Rajaraman, J. D. Ullman, *Mining of Massive Datasets*, ch. 3
       "Finding Similar Items", sec. 3.4. http://www.mmds.org/
    .. [2] S. Vigna, splitmix64 (its finaliser). https://prng.di.unimi.it/splitmix64.c

    Examples
    --------
    >>> import numpy as np
    >>> sig = np.array([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9, 4]], np.uint32)
    >>> keys, fine = band_keys(sig, bands=2, rows=2)
    >>> keys.shape, (keys[:, 0] == keys[0, 0]).tolist(), (keys[:, 1] == keys[0, 1]).tolist()
    ((3, 2), [True, True, True], [True, False, False])
    >>> (fine[:, 0] == fine[0, 0]).tolist()
    [True, False, False]
    """
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"bands * rows = {bands * rows} exceeds the signature length {signatures.shape[1]}")
    return _band_keys(np.ascontiguousarray(signatures), bands, rows)


@numba.njit(cache=True)
def _emit_pairs(rids, srcs, lo, hi, cross_only, out_a, out_b, m):
    for x in range(lo, hi):
        for y in range(x + 1, hi):
            if cross_only and srcs[x] == srcs[y]:
                continue
            a, b = rids[x], rids[y]
            if a == b:
                continue
            out_a[m], out_b[m] = min(a, b), max(a, b)
            m += 1
    return m


@numba.njit(cache=True)
def _bucket_pairs(offsets, rids, srcs, fine, max_size, split, cross_only):
    total = 0  # an upper bound of the pairs, so the output is allocated once
    for g in range(len(offsets) - 1):
        s = offsets[g + 1] - offsets[g]
        if s <= max_size:
            total += s * (s - 1) // 2
        elif split:
            f = np.sort(fine[offsets[g]:offsets[g + 1]])
            start = 0
            for e in range(1, s + 1):
                if e == s or f[e] != f[start]:
                    if e - start <= max_size:
                        total += (e - start) * (e - start - 1) // 2
                    start = e
    out_a = np.empty(total, dtype=np.int64)
    out_b = np.empty(total, dtype=np.int64)
    m = 0
    for g in range(len(offsets) - 1):
        lo, hi = offsets[g], offsets[g + 1]
        if hi - lo <= max_size:
            m = _emit_pairs(rids, srcs, lo, hi, cross_only, out_a, out_b, m)
        elif split:
            order = np.argsort(fine[lo:hi], kind="mergesort") + lo
            r, s, f = rids[order], srcs[order], fine[order]
            start = 0
            for e in range(1, hi - lo + 1):
                if e == hi - lo or f[e] != f[start]:
                    if e - start <= max_size:
                        m = _emit_pairs(r, s, start, e, cross_only, out_a, out_b, m)
                    start = e
    return out_a[:m], out_b[:m]


def bucket_pairs(offsets: np.ndarray, rids: np.ndarray, sources: np.ndarray, fine: np.ndarray,
                 max_size: int, oversized: str = "split", cross_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (rid_a < rid_b) of every bucket in a batch of buckets.

    Bucket g holds members ``offsets[g]:offsets[g+1]`` of ``rids``/``sources``/``fine``.
    A bucket of at most ``max_size`` members gives all its pairs; a larger one is skipped,
    or (``"split"``) divided by the members' finer keys, each part of at most ``max_size``
    giving its pairs. ``cross_only`` keeps pairs across sources (link mode). A pair found
    in several bands appears once per band here; the engine removes repeats.

    Parameters
    ----------
    offsets : numpy.ndarray
        ``buckets + 1`` positions into the member arrays.
    rids : numpy.ndarray
        int64 record id of each member.
    sources : numpy.ndarray
        Integer source code of each member.
    fine : numpy.ndarray
        int64 finer key of each member (``band_keys``).
    max_size : int
        Most members of a bucket (or part) that gives its pairs.
    oversized : {"split", "skip"}, default "split"
        What becomes of a bucket over ``max_size``.
    cross_only : bool, default False
        Keep only pairs of members from different sources.

    Returns
    -------
    rid_a, rid_b : numpy.ndarray
        int64, ``rid_a < rid_b``: one candidate pair per position.

    Raises
    ------
    ValueError
        On an unknown ``oversized`` policy.

    Examples
    --------
    >>> import numpy as np
    >>> offsets, rids = np.array([0, 3, 5]), np.array([4, 2, 7, 1, 9])
    >>> sources, fine = np.array([0, 0, 1, 0, 1]), np.array([0, 0, 1, 0, 0])
    >>> [x.tolist() for x in bucket_pairs(offsets, rids, sources, fine, max_size=3)]
    [[2, 4, 2, 1], [4, 7, 7, 9]]
    >>> [x.tolist() for x in bucket_pairs(offsets, rids, sources, fine, max_size=2)]  # bucket 0 split
    [[2, 1], [4, 9]]
    >>> [x.tolist() for x in bucket_pairs(offsets, rids, sources, fine, max_size=3, cross_only=True)]
    [[4, 2, 1], [7, 7, 9]]
    """
    if oversized not in OVERSIZED_POLICIES:
        raise ValueError(f"oversized must be one of {OVERSIZED_POLICIES}, got {oversized!r}")
    return _bucket_pairs(offsets.astype(np.int64), rids, sources.astype(np.int32), fine,
                         max_size, oversized == "split", cross_only)


def buckets(band: np.ndarray, key: np.ndarray, ids: np.ndarray, max_size: int, samples: int = 5) -> dict:
    """Group band-key rows into buckets (whole buckets per call, in any order).

    Parameters
    ----------
    band : numpy.ndarray
        Integer band index of each row.
    key : numpy.ndarray
        int64 bucket key of each row (``band_keys``).
    ids : numpy.ndarray
        An integer id of each row, sampled from oversized buckets.
    max_size : int
        Buckets of more rows are oversized.
    samples : int, default 5
        Ids kept per oversized bucket.

    Returns
    -------
    dict
        ``order``: the rows sorted by band, key; ``offsets``: ``buckets + 1`` positions of
        the buckets in that order; ``sizes``: their sizes; ``histogram``: arrays (band,
        size, buckets), how many buckets of each size each band has; ``oversized``:
        (band, key, size, sample ids) of the buckets over ``max_size``, the sample ids a
        list of arrays (each bucket's ``samples`` smallest ids: the same whatever order the
        engine delivered the rows in).

    Examples
    --------
    >>> import numpy as np
    >>> grouped = buckets(np.array([0, 0, 1, 0]), np.array([7, 7, 7, 9]), np.array([10, 11, 12, 13]), max_size=1)
    >>> grouped["order"].tolist(), grouped["offsets"].tolist(), grouped["sizes"].tolist()
    ([0, 1, 3, 2], [0, 2, 3, 4], [2, 1, 1])
    >>> [x.tolist() for x in grouped["histogram"]]
    [[0, 0, 1], [1, 2, 1], [1, 1, 1]]
    >>> band, key, size, sample = grouped["oversized"]
    >>> band.tolist(), key.tolist(), size.tolist(), [s.tolist() for s in sample]
    ([0], [7], [2], [[10, 11]])
    """
    order = np.lexsort((key, band))
    band, key = band[order], key[order]
    starts = np.flatnonzero(np.r_[True, (band[1:] != band[:-1]) | (key[1:] != key[:-1])]) if len(band) else \
        np.zeros(0, np.int64)
    offsets = np.r_[starts, len(band)].astype(np.int64)
    sizes = np.diff(offsets)
    # (band, size) packed in one int64: a 1-d unique is many times faster than unique(axis=1)
    packed, counts = np.unique(band[starts].astype(np.int64) << 40 | sizes, return_counts=True)
    hist = (packed >> 40, packed & ((1 << 40) - 1))
    big = np.flatnonzero(sizes > max_size)
    ids = ids[order]
    return {
        "order": order, "offsets": offsets, "sizes": sizes,
        "histogram": (hist[0], hist[1], counts),
        "oversized": (band[starts[big]], key[starts[big]], sizes[big],
                      [np.sort(ids[offsets[g]:offsets[g + 1]])[:samples] for g in big]),
    }


def partition_buckets(band: np.ndarray, key: np.ndarray, fine: np.ndarray, rids: np.ndarray,
                      sources: np.ndarray, max_size: int, oversized: str = "split", cross_only: bool = False,
                      samples: int = 5) -> dict:
    """``buckets`` of one partition of band-key rows, and the candidate pairs they give.

    The engine hash-partitions the rows by ``(band, key)``, so a partition holds whole
    buckets; single-row buckets are left out of the pair kernel.

    Parameters
    ----------
    band, key, fine : numpy.ndarray
        Band index, bucket key and finer key (``band_keys``) of each row.
    rids : numpy.ndarray
        int64 record id of each row (also the ids sampled from oversized buckets).
    sources : numpy.ndarray
        Integer source code of each row.
    max_size : int
        Most members of a bucket (or part) that gives its pairs.
    oversized : {"split", "skip"}, default "split"
        What becomes of a bucket over ``max_size`` (``bucket_pairs``).
    cross_only : bool, default False
        Keep only pairs across sources.
    samples : int, default 5
        Ids kept per oversized bucket.

    Returns
    -------
    dict
        What ``buckets`` returns, and ``pairs``: (rid_a, rid_b) from ``bucket_pairs``.

    Examples
    --------
    >>> import numpy as np
    >>> out = partition_buckets(np.array([0, 0, 1, 0]), np.array([7, 7, 7, 9]), np.zeros(4, np.int64),
    ...                         np.array([10, 11, 12, 13]), np.zeros(4, np.int32), max_size=5)
    >>> [x.tolist() for x in out["pairs"]]
    [[10], [11]]
    """
    out = buckets(band, key, rids, max_size, samples)
    order, sizes = out["order"], out["sizes"]
    multi = sizes > 1  # singletons give no pairs: leave them out of the kernel's input
    take = order[np.flatnonzero(np.repeat(multi, sizes))]
    sub = np.r_[0, np.cumsum(sizes[multi])].astype(np.int64)
    out["pairs"] = bucket_pairs(sub, rids[take], sources[take], fine[take], max_size, oversized, cross_only)
    return out


def bucket_members(band: np.ndarray, key: np.ndarray, ids: np.ndarray, max_size: int, samples: int = 5) -> dict:
    """``buckets`` of one partition, and the members of the buckets that give pairs.

    Parameters
    ----------
    band, key, ids : numpy.ndarray
        Band index, bucket key and integer id of each row.
    max_size : int
        Buckets of more rows are oversized.
    samples : int, default 5
        Ids kept per oversized bucket.

    Returns
    -------
    dict
        What ``buckets`` returns, and ``members``: arrays (band, key, id) of the rows of
        every bucket of 2 to ``max_size`` rows, the buckets that can pair anything
        without being oversized.

    Examples
    --------
    >>> import numpy as np
    >>> out = bucket_members(np.array([0, 0, 1, 0]), np.array([7, 7, 7, 9]), np.array([10, 11, 12, 13]), 5)
    >>> [x.tolist() for x in out["members"]]
    [[0, 0], [7, 7], [10, 11]]
    """
    out = buckets(band, key, ids, max_size, samples)
    sizes = out["sizes"]
    keep = out["order"][np.repeat((sizes > 1) & (sizes <= max_size), sizes)]
    out["members"] = (band[keep], key[keep], ids[keep])
    return out


def bucket_statistics(grouped: dict) -> pa.Table:
    """BUCKET_STATS rows of one partition's buckets.

    Parameters
    ----------
    grouped : dict
        The result of ``buckets`` (or ``partition_buckets``, ``bucket_members``).

    Returns
    -------
    pyarrow.Table
        Its size histogram (kind 1) and its oversized buckets with their sample ids
        (kind 2), so that partitions' statistics concatenate and ``size_histogram`` and
        ``oversized_buckets`` summarise them.

    Examples
    --------
    >>> grouped = buckets(np.array([0, 0, 0]), np.array([7, 7, 9]), np.array([10, 11, 12]), max_size=1)
    >>> bucket_statistics(grouped).to_pydict()["kind"]
    [1, 1, 2, 2]
    """
    (hb, hs, hc), (ob, ok, osz, samples) = grouped["histogram"], grouped["oversized"]
    reps = [len(x) for x in samples]
    parts = [(HISTOGRAM, hb, hs, hc, 0),
             (OVERSIZED, np.repeat(ob, reps), np.repeat(ok, reps), np.repeat(osz, reps),
              np.concatenate(samples) if samples else np.zeros(0, np.int64))]
    return pa.concat_tables([pa.table({"kind": np.full(len(cols[0]), kind, np.int32), **{
        name: np.broadcast_to(np.asarray(col, np.int64), len(cols[0])) for name, col in zip("abcd", cols)}},
        schema=BUCKET_STATS) for kind, *cols in parts])


def size_histogram(stats: pa.Table) -> pa.Table:
    """The bucket-size distribution (schemas.datasets.BUCKET_SIZES) of many partitions'
    ``bucket_statistics``: bucket counts summed per band and size.

    Parameters
    ----------
    stats : pyarrow.Table
        ``BUCKET_STATS`` rows of any number of partitions.

    Returns
    -------
    pyarrow.Table
        ``band``, ``size``, ``buckets``, sorted by band and size.

    Examples
    --------
    >>> one = bucket_statistics(buckets(np.array([0, 0]), np.array([7, 7]), np.array([1, 2]), 5))
    >>> size_histogram(pa.concat_tables([one, one])).to_pylist()
    [{'band': 0, 'size': 2, 'buckets': 2}]
    """
    rows = stats.filter(pc.equal(stats.column("kind"), HISTOGRAM)).group_by(["a", "b"]).aggregate([("c", "sum")])
    table = pa.table({"band": rows.column("a").cast(pa.int32()), "size": rows.column("b"),
                      "buckets": rows.column("c_sum")}, schema=datasets.BUCKET_SIZES)
    return table.sort_by([("band", "ascending"), ("size", "ascending")])


def oversized_buckets(stats: pa.Table, names: Mapping[int, str]) -> pa.Table:
    """The oversized buckets (schemas.datasets.OVERSIZED) of many partitions'
    ``bucket_statistics``, each with its sample ids named.

    Parameters
    ----------
    stats : pyarrow.Table
        ``BUCKET_STATS`` rows of any number of partitions.
    names : Mapping of int to str
        Each sample id's name, the one users know (see ``oversized_samples``).

    Returns
    -------
    pyarrow.Table
        ``band``, ``key``, ``size`` and the sorted ``sample_ids`` of each oversized
        bucket, sorted by band, key and size.

    Examples
    --------
    >>> import numpy as np
    >>> stats = bucket_statistics(buckets(np.array([0, 0, 0]), np.array([7, 7, 9]), np.array([10, 11, 12]), 1))
    >>> oversized_buckets(stats, {10: "rec-b", 11: "rec-a"}).to_pylist()
    [{'band': 0, 'key': 7, 'size': 2, 'sample_ids': ['rec-a', 'rec-b']}]
    """
    found: dict = {}
    for r in stats.filter(pc.equal(stats.column("kind"), OVERSIZED)).to_pylist():
        found.setdefault((r["a"], r["b"], r["c"]), []).append(names[r["d"]])
    return pa.Table.from_pylist([{"band": band, "key": key, "size": size, "sample_ids": sorted(sample)}
                                 for (band, key, size), sample in sorted(found.items())], datasets.OVERSIZED)


def oversized_samples(stats: pa.Table) -> list[int]:
    """The distinct sample ids of the oversized buckets in ``stats``, to be named.

    Parameters
    ----------
    stats : pyarrow.Table
        ``BUCKET_STATS`` rows of any number of partitions.

    Returns
    -------
    list of int
        The ids, ascending.

    Examples
    --------
    >>> import numpy as np
    >>> stats = bucket_statistics(buckets(np.array([0, 0, 0]), np.array([7, 7, 9]), np.array([11, 10, 12]), 1))
    >>> oversized_samples(stats)
    [10, 11]
    """
    return sorted(set(stats.filter(pc.equal(stats.column("kind"), OVERSIZED)).column("d").to_pylist()))


def jaccard_estimates(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """The share of equal signature values of each row pair: an unbiased estimate of Jaccard.

    Each of the k MinHash values agrees with probability J(A, B) [1]_, so the share
    ``(1/k) sum_j [sig_j(A) = sig_j(B)]`` has mean J and standard error
    ``sqrt(J (1 - J) / k)``.

    Parameters
    ----------
    sig_a, sig_b : numpy.ndarray
        Signatures, shape ``(n, k)`` each.

    Returns
    -------
    numpy.ndarray
        float32, one estimate per row.

    References
    ----------
    .. [1] A. Z. Broder, "On the resemblance and containment of documents", Compression and
       Complexity of Sequences 1997. doi:10.1109/SEQUEN.1997.666900

    Examples
    --------
    >>> import numpy as np
    >>> jaccard_estimates(np.array([[1, 2, 3, 4]]), np.array([[1, 2, 3, 9]])).tolist()
    [0.75]
    """
    return (sig_a == sig_b).mean(axis=1, dtype=np.float64).astype(np.float32)


@numba.njit(cache=True, parallel=True)
def _exact_jaccard(va, oa, vb, ob):
    n = len(oa) - 1
    out = np.zeros(n, dtype=np.float32)
    for i in numba.prange(n):
        x, xe, y, ye = oa[i], oa[i + 1], ob[i], ob[i + 1]
        union = (xe - x) + (ye - y)
        inter = 0
        while x < xe and y < ye:  # both sides sorted and distinct: a merge counts the overlap
            if va[x] == vb[y]:
                inter += 1
                x += 1
                y += 1
            elif va[x] < vb[y]:
                x += 1
            else:
                y += 1
        union -= inter
        out[i] = inter / union if union > 0 else 0.0
    return out


def exact_jaccard(values_a, offsets_a, values_b, offsets_b) -> np.ndarray:
    """The exact Jaccard similarity ``|A ∩ B| / |A ∪ B|`` of each row pair of token sets.

    Both sides sorted and distinct, a merge counts ``|A ∩ B|`` in ``O(|A| + |B|)``; 0 when
    both sets are empty.

    Parameters
    ----------
    values_a, offsets_a, values_b, offsets_b : numpy.ndarray
        Each side's token sets as ``token_sets`` returns them (transforms/minhash.py):
        row i's sorted distinct hashes are ``values[offsets[i]:offsets[i+1]]``.

    Returns
    -------
    numpy.ndarray
        float32, one similarity per row.

    Examples
    --------
    >>> import numpy as np
    >>> exact_jaccard(np.array([1, 2, 3, 5], np.uint64), np.array([0, 3, 4]),
    ...               np.array([2, 3, 4], np.uint64), np.array([0, 3, 3])).tolist()
    [0.5, 0.0]
    """
    return _exact_jaccard(values_a, offsets_a, values_b, offsets_b)


def exact_scores(batch):
    """The exact Jaccard similarity of joined pairs (``exact_jaccard``).

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        ``tokens_a`` and ``tokens_b``: each record's sorted distinct uint64 token hashes,
        packed (transforms/packing.py).

    Returns
    -------
    numpy.ndarray
        float32, one similarity per pair.

    Examples
    --------
    >>> import numpy as np
    >>> import pyarrow as pa
    >>> from sigil.transforms.packing import pack_ragged
    >>> batch = pa.RecordBatch.from_pydict({
    ...     "tokens_a": pack_ragged(np.array([1, 2, 3, 4], np.uint64), np.array([0, 4])),
    ...     "tokens_b": pack_ragged(np.array([2, 3], np.uint64), np.array([0, 2]))})
    >>> exact_scores(batch).tolist()
    [0.5]
    """
    return exact_jaccard(*unpack_ragged(batch.column("tokens_a"), np.uint64),
                         *unpack_ragged(batch.column("tokens_b"), np.uint64))


def score_pairs(batch, num_perm: int):
    """Candidate rows of joined pairs, with their MinHash estimate of Jaccard.

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        ``source_x``, ``id_x``, ``signature_x`` for x in a, b (signatures packed, see
        transforms/packing.py) and ``jaccard`` (exact, or null).
    num_perm : int
        The signature length.

    Returns
    -------
    pyarrow.RecordBatch
        The CANDIDATES columns but ``cosine`` (schemas/datasets.py): the pair oriented so
        that ``(source_a, id_a) < (source_b, id_b)``, ``jaccard_estimate``
        (``jaccard_estimates``) and ``jaccard``, both float32.

    Examples
    --------
    >>> import numpy as np
    >>> import pyarrow as pa
    >>> from sigil.transforms.packing import pack_rows
    >>> batch = pa.RecordBatch.from_pydict({
    ...     "source_a": ["b"], "id_a": ["1"], "signature_a": pack_rows(np.array([[1, 2, 3, 4]], np.uint32)),
    ...     "source_b": ["a"], "id_b": ["2"], "signature_b": pack_rows(np.array([[1, 2, 3, 9]], np.uint32)),
    ...     "jaccard": pa.array([None], pa.float64())})
    >>> score_pairs(batch, num_perm=4).to_pylist()
    [{'source_a': 'a', 'id_a': '2', 'source_b': 'b', 'id_b': '1', 'jaccard_estimate': 0.75, 'jaccard': None}]
    """
    est = jaccard_estimates(unpack_rows(batch.column("signature_a"), np.uint32, num_perm),
                            unpack_rows(batch.column("signature_b"), np.uint32, num_perm))
    keys = oriented(*(batch.column(c) for c in ("source_a", "id_a", "source_b", "id_b")))
    return pa.RecordBatch.from_pydict({**keys, "jaccard_estimate": pa.array(est),
                                       "jaccard": batch.column("jaccard").cast(pa.float32())})


def lsh_shape(lsh, num_perm: int) -> tuple[int, int]:
    """The banding of an LSH configuration: the configured one, or the optimum for its threshold.

    Parameters
    ----------
    lsh : schemas.config.LshConfig
        ``threshold``, the false-positive and false-negative weights, and optionally
        ``bands`` and ``rows``.
    num_perm : int
        The signature length.

    Returns
    -------
    tuple of int
        ``(bands, rows)``: as configured, else ``optimal_params``.

    Examples
    --------
    >>> from sigil.schemas.config import LshConfig
    >>> lsh_shape(LshConfig(bands=16, rows=8), 128), lsh_shape(LshConfig(threshold=0.5), 128)
    ((16, 8), (25, 5))
    """
    if lsh.bands is not None:
        return lsh.bands, lsh.rows
    return optimal_params(lsh.threshold, num_perm, lsh.false_positive_weight, lsh.false_negative_weight)
