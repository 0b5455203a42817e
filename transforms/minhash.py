"""MinHash signatures of token sets, for a whole batch at once, bit-exact with datasketch.

For a set of tokens S and ``num_perm`` hash functions h_1..h_k, the MinHash signature is
``sig_j(S) = min_{t in S} h_j(t)`` and ``P[sig_j(A) = sig_j(B)] = J(A, B)``, the Jaccard
similarity (Broder, "On the resemblance and containment of documents", 1997).

The hash functions are datasketch's (``datasketch.MinHash``, version 2), so a signature
here equals, bit for bit, ``datasketch.MinHash(num_perm, seed, scheme)`` updated with the
same tokens (as UTF-8 bytes):

* every token is hashed once with SHA-1; its first 4 bytes, little-endian, give the
  32-bit token hash ``x`` (datasketch's ``sha1_hash32``);
* ``scheme="affine32"`` (datasketch's default): ``h_j(t) = a_j * fmix32(x) + b_j mod 2^32``
  with odd ``a_j``, a bijection on 32-bit values, ``fmix32`` the MurmurHash3 finaliser;
* ``scheme="legacy"`` (datasketch < 2): ``h_j(t) = ((a_j * x + b_j) mod 2^64 mod (2^61 - 1))
  mod 2^32``;
* ``a_j, b_j`` come from ``numpy.random.RandomState(seed)`` exactly as datasketch draws them
  (read from ``datasketch.MinHash(...).permutations``, so the two cannot drift apart).

Tokens are de-duplicated per batch before SHA-1 (q-grams repeat heavily across records),
and SHA-1, the permutations and the minimum run in numba kernels, in parallel over records.

Example
-------
>>> import pyarrow as pa
>>> from sigil.transforms.tokens import tokenize
>>> tokens, offsets = tokenize(pa.array(["jonathan smith"]), "qgram", 3)
>>> sig = MinHasher(num_perm=4, seed=1).signatures(tokens, offsets)
>>> sig.shape, sig.dtype
((1, 4), dtype('uint32'))
"""

from __future__ import annotations

import datasketch
import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SCHEMES = ("affine32", "legacy")
EMPTY = np.uint32(0xFFFFFFFF)  # the signature value of an empty set (datasketch's too)


@numba.njit(cache=True, inline="always")
def _rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


@numba.njit(cache=True)
def _sha1_prefix64(data, offsets):
    """First 8 bytes of SHA-1 of each byte string, as a little-endian uint64 (FIPS 180-4)."""
    n = len(offsets) - 1
    out = np.empty(n, dtype=np.int64)  # all arithmetic in int64: numba mixes signedness into floats
    w = np.empty(80, dtype=np.int64)
    for i in range(n):
        lo, ln = offsets[i], offsets[i + 1] - offsets[i]
        total = ((ln + 8) // 64 + 1) * 64  # message + 0x80 + 64-bit length, padded to 64 bytes
        h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
        for blk in range(0, total, 64):
            for j in range(16):
                word = 0
                for k in range(4):
                    p = blk + 4 * j + k
                    if p < ln:
                        byte = np.int64(data[lo + p])
                    elif p == ln:
                        byte = 0x80
                    elif p >= total - 8:
                        byte = ((ln * 8) >> (8 * (total - 1 - p))) & 0xFF
                    else:
                        byte = 0
                    word = (word << 8) | byte
                w[j] = word
            for j in range(16, 80):
                w[j] = _rotl(w[j - 3] ^ w[j - 8] ^ w[j - 14] ^ w[j - 16], 1)
            a, b, c, d, e = h0, h1, h2, h3, h4
            for j in range(80):
                if j < 20:
                    f = (b & c) | ((~b & 0xFFFFFFFF) & d)
                    k = 0x5A827999
                elif j < 40:
                    f = b ^ c ^ d
                    k = 0x6ED9EBA1
                elif j < 60:
                    f = (b & c) | (b & d) | (c & d)
                    k = 0x8F1BBCDC
                else:
                    f = b ^ c ^ d
                    k = 0xCA62C1D6
                t = (_rotl(a, 5) + f + e + k + w[j]) & 0xFFFFFFFF
                e, d, c, b, a = d, c, _rotl(b, 30), a, t
            h0 = (h0 + a) & 0xFFFFFFFF
            h1 = (h1 + b) & 0xFFFFFFFF
            h2 = (h2 + c) & 0xFFFFFFFF
            h3 = (h3 + d) & 0xFFFFFFFF
            h4 = (h4 + e) & 0xFFFFFFFF
        out[i] = _bswap32(h0) | (_bswap32(h1) << 32)
    return out.view(np.uint64)


@numba.njit(cache=True, inline="always")
def _bswap32(x):
    return ((x & 0xFF) << 24) | ((x & 0xFF00) << 8) | ((x >> 8) & 0xFF00) | (x >> 24)


def sha1_prefix64(tokens: pa.Array) -> np.ndarray:
    """datasketch's ``sha1_hash64`` of every token; the low 32 bits are its ``sha1_hash32``."""
    tokens = pc.cast(tokens, pa.large_binary()) if tokens.type != pa.large_binary() else tokens
    _, offs, data = tokens.buffers()
    offsets = np.frombuffer(offs, dtype=np.int64, count=len(tokens) + 1, offset=tokens.offset * 8)
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return _sha1_prefix64(data, offsets)


@numba.njit(cache=True)
def _fmix32(x):
    x = x ^ (x >> 16)
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x = x ^ (x >> 13)
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


@numba.njit(cache=True, parallel=True)
def _min_affine32(hv, offsets, a, b):
    n, k = len(offsets) - 1, len(a)
    out = np.full((n, k), 0xFFFFFFFF, dtype=np.uint32)
    for r in numba.prange(n):
        row = out[r]
        for t in range(offsets[r], offsets[r + 1]):
            x = np.uint32(_fmix32(hv[t]))
            for j in range(k):
                # numba widens uint32 products; truncating back is the wrap mod 2^32
                row[j] = min(row[j], np.uint32(a[j] * x + b[j]))
    return out


@numba.njit(cache=True, parallel=True)
def _min_legacy(hv, offsets, a, b):
    n, k = len(offsets) - 1, len(a)
    out = np.full((n, k), 0xFFFFFFFF, dtype=np.uint32)
    p = np.uint64((1 << 61) - 1)
    for r in numba.prange(n):
        row = out[r]
        for t in range(offsets[r], offsets[r + 1]):
            x = np.uint64(hv[t])
            for j in range(k):
                v = np.uint32(((a[j] * x + b[j]) % p) & np.uint64(0xFFFFFFFF))
                if v < row[j]:
                    row[j] = v
    return out


class MinHasher:
    """Computes datasketch-identical MinHash signatures for batches of token sets.

    Parameters
    ----------
    num_perm : number of hash functions (signature length).
    seed : datasketch's ``seed``; the permutations are drawn from it.
    scheme : ``"affine32"`` (datasketch 2 default) or ``"legacy"`` (datasketch < 2).
    """

    def __init__(self, num_perm: int = 128, seed: int = 1, scheme: str = "affine32"):
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        if num_perm < 1:
            raise ValueError(f"num_perm must be >= 1, got {num_perm}")
        self.num_perm, self.seed, self.scheme = num_perm, seed, scheme
        a, b = datasketch.MinHash(num_perm=num_perm, seed=seed, scheme=scheme).permutations
        dtype = np.uint32 if scheme == "affine32" else np.uint64
        self.a, self.b = np.ascontiguousarray(a, dtype=dtype), np.ascontiguousarray(b, dtype=dtype)

    def token_hashes(self, tokens: pa.Array) -> np.ndarray:
        """sha1_hash64 of every token, computing SHA-1 once per distinct token."""
        encoded = pc.dictionary_encode(tokens)
        unique = sha1_prefix64(encoded.dictionary)
        return unique[encoded.indices.to_numpy(zero_copy_only=False)]

    def signatures(self, tokens: pa.Array, offsets: np.ndarray, hashes: np.ndarray | None = None) -> np.ndarray:
        """uint32 array (rows, num_perm): the signature of each row's tokens.

        ``tokens[offsets[i]:offsets[i+1]]`` are row i's tokens. Rows without tokens get
        the all-``EMPTY`` signature, as an un-updated datasketch MinHash has.
        """
        if hashes is None:
            hashes = self.token_hashes(tokens)
        if self.scheme == "affine32":
            return _min_affine32((hashes & 0xFFFFFFFF).astype(np.int64), offsets, self.a, self.b)
        return _min_legacy(hashes & np.uint64(0xFFFFFFFF), offsets, self.a, self.b)


@numba.njit(cache=True, parallel=True)
def _sorted_unique_rows(values, offsets):
    n = len(offsets) - 1
    counts = np.zeros(n, dtype=np.int64)
    scratch = values.copy()
    for r in numba.prange(n):
        lo, hi = offsets[r], offsets[r + 1]
        if hi == lo:
            continue
        s = np.sort(values[lo:hi])
        scratch[lo] = s[0]
        m = 1
        for i in range(1, hi - lo):
            if s[i] != s[i - 1]:
                scratch[lo + m] = s[i]
                m += 1
        counts[r] = m
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    out_offsets[1:] = np.cumsum(counts)
    out = np.empty(out_offsets[n], dtype=values.dtype)
    for r in numba.prange(n):
        out[out_offsets[r]:out_offsets[r + 1]] = scratch[offsets[r]:offsets[r] + counts[r]]
    return out, out_offsets


def token_sets(hashes: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's distinct 64-bit token hashes, sorted: the exact token set, for exact Jaccard."""
    return _sorted_unique_rows(hashes, offsets)


def signature_batch(batch: pa.RecordBatch, columns: list[str], hasher: MinHasher, *, kind: str = "qgram",
                    q: int = 3, join: bool = True, tag_columns: bool = False,
                    with_tokens: bool = False) -> pa.RecordBatch:
    """Signatures of ingested records (``rid, source, id`` and ``<column>_norm`` columns).

    Returns ``rid, source, id, num_tokens, signature`` (and ``tokens``), the vectors as
    packed binary (transforms/packing.py), ready for an engine to move between tasks.
    """
    from sigil.transforms.packing import pack_ragged, pack_rows
    from sigil.transforms.tokens import tokenize_columns

    tokens, offsets = tokenize_columns([batch.column(c + "_norm") for c in columns], kind=kind, q=q,
                                       join=join, tags=list(columns) if tag_columns else None)
    hashes = hasher.token_hashes(tokens)
    sets, set_offsets = token_sets(hashes, offsets)
    out = {
        "rid": batch.column("rid"), "source": batch.column("source"), "id": batch.column("id"),
        "num_tokens": pa.array(np.diff(set_offsets).astype(np.int32)),
        "signature": pack_rows(hasher.signatures(tokens, offsets, hashes)),
    }
    if with_tokens:
        out["tokens"] = pack_ragged(sets, set_offsets)
    return pa.RecordBatch.from_pydict(out)
