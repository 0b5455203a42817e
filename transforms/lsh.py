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

import numba
import numpy as np
from scipy.integrate import quad

OVERSIZED_POLICIES = ("skip", "split")


def _false_positive_area(threshold: float, b: int, r: int) -> float:
    return quad(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)[0]


def _false_negative_area(threshold: float, b: int, r: int) -> float:
    return quad(lambda s: (1 - s ** float(r)) ** float(b), threshold, 1.0)[0]


def optimal_params(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                   false_negative_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with ``bands * rows <= num_perm`` minimising
    ``fp_weight * FP-area + fn_weight * FN-area`` (datasketch's ``_optimal_param``)."""
    best, best_error = (0, 0), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            error = (false_positive_weight * _false_positive_area(threshold, b, r)
                     + false_negative_weight * _false_negative_area(threshold, b, r))
            if error < best_error:
                best, best_error = (b, r), error
    return best


def collision_probability(similarity: np.ndarray | float, bands: int, rows: int):
    """P[two sets of Jaccard ``similarity`` share at least one band] = 1 - (1 - s^r)^b."""
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
    """int64 bucket keys (n, bands) of every band, and finer keys used to split oversized
    buckets. A key is a 64-bit hash of the band index and its ``rows`` values."""
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
    """
    if oversized not in OVERSIZED_POLICIES:
        raise ValueError(f"oversized must be one of {OVERSIZED_POLICIES}, got {oversized!r}")
    return _bucket_pairs(offsets.astype(np.int64), rids, sources.astype(np.int32), fine,
                         max_size, oversized == "split", cross_only)


def buckets(band: np.ndarray, key: np.ndarray, ids: np.ndarray, max_size: int, samples: int = 5) -> dict:
    """Group band-key rows into buckets (whole buckets per call, in any order).

    Returns ``order`` (the rows sorted by band, key), ``offsets`` of each bucket in that
    order, ``sizes``; ``histogram`` (band, size, buckets): how many buckets of each size;
    and ``oversized`` (band, key, size, sample ids) for buckets over ``max_size``.
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
                      [ids[offsets[g]:min(offsets[g] + samples, offsets[g + 1])] for g in big]),
    }


def partition_buckets(band: np.ndarray, key: np.ndarray, fine: np.ndarray, rids: np.ndarray,
                      sources: np.ndarray, max_size: int, oversized: str = "split", cross_only: bool = False,
                      samples: int = 5) -> dict:
    """``buckets`` of one partition of band-key rows (the engine hash-partitions by
    ``(band, key)``), and ``pairs`` (rid_a, rid_b) of them from ``bucket_pairs``."""
    out = buckets(band, key, rids, max_size, samples)
    order, sizes = out["order"], out["sizes"]
    multi = sizes > 1  # singletons give no pairs: leave them out of the kernel's input
    take = order[np.flatnonzero(np.repeat(multi, sizes))]
    sub = np.r_[0, np.cumsum(sizes[multi])].astype(np.int64)
    out["pairs"] = bucket_pairs(sub, rids[take], sources[take], fine[take], max_size, oversized, cross_only)
    return out


def bucket_members(band: np.ndarray, key: np.ndarray, ids: np.ndarray, max_size: int, samples: int = 5) -> dict:
    """``buckets`` of one partition, and ``members`` (band, key, id) of every bucket of 2 to
    ``max_size`` rows: the buckets that can pair anything without being oversized."""
    out = buckets(band, key, ids, max_size, samples)
    sizes = out["sizes"]
    keep = out["order"][np.repeat((sizes > 1) & (sizes <= max_size), sizes)]
    out["members"] = (band[keep], key[keep], ids[keep])
    return out


def jaccard_estimates(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Share of equal signature values per row pair: an unbiased estimate of Jaccard."""
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
    """|A ∩ B| / |A ∪ B| for row pairs of sorted distinct token hashes (0 when both empty)."""
    return _exact_jaccard(values_a, offsets_a, values_b, offsets_b)


def exact_scores(batch):
    """Exact Jaccard of joined pairs: ``tokens_a``, ``tokens_b`` (packed sorted token
    hashes) -> a float32 array."""
    from sigil.transforms.packing import unpack_ragged

    return exact_jaccard(*unpack_ragged(batch.column("tokens_a"), np.uint64),
                         *unpack_ragged(batch.column("tokens_b"), np.uint64))


def score_pairs(batch, num_perm: int):
    """Candidate rows from joined pairs: ``source_x, id_x, signature_x`` for x in a, b
    (signatures packed, see transforms/packing.py) and ``jaccard`` (exact, or null) ->
    the CANDIDATES columns, oriented so that ``(source_a, id_a) < (source_b, id_b)``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from sigil.transforms.packing import unpack_rows

    est = jaccard_estimates(unpack_rows(batch.column("signature_a"), np.uint32, num_perm),
                            unpack_rows(batch.column("signature_b"), np.uint32, num_perm))
    sa, sb, ia, ib = (batch.column(c) for c in ("source_a", "source_b", "id_a", "id_b"))
    swap = pc.or_(pc.greater(sa, sb), pc.and_(pc.equal(sa, sb), pc.greater(ia, ib)))
    return pa.RecordBatch.from_pydict({
        "source_a": pc.if_else(swap, sb, sa), "id_a": pc.if_else(swap, ib, ia),
        "source_b": pc.if_else(swap, sa, sb), "id_b": pc.if_else(swap, ia, ib),
        "jaccard_estimate": pa.array(est), "jaccard": batch.column("jaccard").cast(pa.float32()),
    })


def lsh_shape(lsh, num_perm: int) -> tuple[int, int]:
    """(bands, rows) of an LSH configuration (``threshold``, weights, optional
    ``bands``/``rows``): the configured pair, or the optimum for the threshold."""
    if lsh.bands is not None:
        return lsh.bands, lsh.rows
    return optimal_params(lsh.threshold, num_perm, lsh.false_positive_weight, lsh.false_negative_weight)
