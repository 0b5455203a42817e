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
    """datasketch's ``sha1_hash64`` of every token: the first 8 bytes of its SHA-1 digest.

    The digest's bytes 0..7 read as a little-endian integer, so the low 32 bits are bytes
    0..3, datasketch's ``sha1_hash32``, the token hash MinHash permutes.

    Parameters
    ----------
    tokens : pyarrow.Array
        Binary or string values (strings as their UTF-8 bytes), without nulls.

    Returns
    -------
    numpy.ndarray
        uint64, one hash per token.

    References
    ----------
    .. [1] NIST, "Secure Hash Standard (SHS)", FIPS 180-4, 2015. doi:10.6028/NIST.FIPS.180-4
    .. [2] datasketch, ``datasketch.hashfunc.sha1_hash64``. https://github.com/ekzhu/datasketch

    Examples
    --------
    >>> import hashlib
    >>> import pyarrow as pa
    >>> h = sha1_prefix64(pa.array(["abc"]))
    >>> int(h[0]) == int.from_bytes(hashlib.sha1(b"abc").digest()[:8], "little")
    True
    """
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
    """MinHash signatures of batches of token sets, bit-exact with ``datasketch.MinHash``.

    With ``k = num_perm`` hash functions h_1..h_k of 32-bit values, the signature of a token
    set S is ``sig_j(S) = min_{t in S} h_j(t)``, and for two sets
    ``P[sig_j(A) = sig_j(B)] = |A ∩ B| / |A ∪ B|``, their Jaccard similarity [1]_: the share
    of equal entries estimates it with standard error ``sqrt(J (1 - J) / k)``. A token's
    hash x is its ``sha1_hash32`` (see ``sha1_prefix64``); then, as datasketch 2 does [2]_,

    * ``scheme="affine32"``: ``h_j(x) = (a_j fmix32(x) + b_j) mod 2^32``, odd ``a_j``;
    * ``scheme="legacy"``: ``h_j(x) = ((a_j x + b_j) mod 2^64 mod (2^61 - 1)) mod 2^32``,

    with ``a_j, b_j`` read from ``datasketch.MinHash(num_perm, seed, scheme).permutations``.

    Parameters
    ----------
    num_perm : int, default 128
        Number of hash functions, the signature length; at least 1.
    seed : int, default 1
        datasketch's ``seed``; the permutations ``a, b`` are drawn from it.
    scheme : {"affine32", "legacy"}, default "affine32"
        datasketch 2's default permutation family, or the one of datasketch < 2.

    Attributes
    ----------
    a, b : numpy.ndarray
        The permutations' coefficients (uint32 for ``affine32``, uint64 for ``legacy``).

    Raises
    ------
    ValueError
        On an unknown ``scheme`` or ``num_perm < 1``.

    References
    ----------
    .. [1] A. Z. Broder, "On the resemblance and containment of documents", Compression and
       Complexity of Sequences 1997. doi:10.1109/SEQUEN.1997.666900
    .. [2] datasketch, ``MinHash``. https://ekzhu.com/datasketch/minhash.html

    Examples
    --------
    >>> import datasketch
    >>> import pyarrow as pa
    >>> from sigil.transforms.tokens import tokenize
    >>> tokens, offsets = tokenize(pa.array(["jonathan", "jon"]), "qgram", 3)
    >>> sig = MinHasher(num_perm=4, seed=1).signatures(tokens, offsets)
    >>> reference = datasketch.MinHash(num_perm=4, seed=1)
    >>> reference.update_batch(tokens.to_pylist()[offsets[0]:offsets[1]])
    >>> bool((sig[0] == reference.hashvalues).all())
    True
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
        """``sha1_prefix64`` of every token, computing SHA-1 once per distinct token.

        Parameters
        ----------
        tokens : pyarrow.Array
            Binary or string tokens, as ``tokenize`` returns them.

        Returns
        -------
        numpy.ndarray
            uint64, one hash per token, in the order of ``tokens``.

        Examples
        --------
        >>> import pyarrow as pa
        >>> h = MinHasher(num_perm=2).token_hashes(pa.array([b"ab", b"cd", b"ab"]))
        >>> h.dtype, bool(h[0] == h[2])
        (dtype('uint64'), True)
        """
        encoded = pc.dictionary_encode(tokens)
        unique = sha1_prefix64(encoded.dictionary)
        return unique[encoded.indices.to_numpy(zero_copy_only=False)]

    def signatures(self, tokens: pa.Array, offsets: np.ndarray, hashes: np.ndarray | None = None) -> np.ndarray:
        """The signature of each row's token set.

        Parameters
        ----------
        tokens : pyarrow.Array or None
            Binary or string tokens of all rows, concatenated; row i's are
            ``tokens[offsets[i]:offsets[i+1]]``. Not read when ``hashes`` is given.
        offsets : numpy.ndarray
            int64, ``rows + 1`` non-decreasing positions into ``tokens``.
        hashes : numpy.ndarray, optional
            The tokens' ``token_hashes`` (only their low 32 bits are used), when known
            already; any uint64 hashes of other items (e.g. integer ids) work the same.

        Returns
        -------
        numpy.ndarray
            uint32, shape ``(rows, num_perm)``. A row without tokens gets the all-``EMPTY``
            signature, as an un-updated ``datasketch.MinHash`` has. A token repeated within
            a row counts once (the minimum ignores repeats).

        Examples
        --------
        >>> import numpy as np
        >>> import pyarrow as pa
        >>> hasher = MinHasher(num_perm=3)
        >>> sig = hasher.signatures(pa.array([b"a", b"b", b"b", b"a"]), np.array([0, 2, 4, 4]))
        >>> bool((sig[0] == sig[1]).all()), sig[2].tolist() == [EMPTY] * 3
        (True, True)
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
    """Each row's distinct token hashes, sorted: the exact token set, for exact Jaccard.

    Parameters
    ----------
    hashes : numpy.ndarray
        Token hashes of all rows, concatenated (any numeric dtype, usually uint64).
    offsets : numpy.ndarray
        int64, ``rows + 1`` positions: row i's hashes are ``hashes[offsets[i]:offsets[i+1]]``.

    Returns
    -------
    values : numpy.ndarray
        Each row's distinct hashes in ascending order, concatenated (dtype of ``hashes``).
    set_offsets : numpy.ndarray
        int64, ``rows + 1`` positions into ``values``; ``diff(set_offsets)`` are set sizes.

    Examples
    --------
    >>> import numpy as np
    >>> values, set_offsets = token_sets(np.array([3, 1, 3, 2], np.uint64), np.array([0, 3, 4]))
    >>> values.tolist(), set_offsets.tolist()
    ([1, 3, 2], [0, 2, 3])
    """
    return _sorted_unique_rows(hashes, offsets)


def signature_batch(batch: pa.RecordBatch, columns: list[str], hasher: MinHasher, *, kind: str = "qgram",
                    q: int = 3, join: bool = True, tag_columns: bool = False,
                    with_tokens: bool = False) -> pa.RecordBatch:
    """MinHash signatures of a batch of ingested records, ready for an engine to move.

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        Ingested records: ``rid``, ``source``, ``id`` and ``<column>_norm`` for each column.
    columns : list of str
        The attributes whose normalised values are tokenised (see ``tokenize_columns``).
    hasher : MinHasher
        The hash functions.
    kind : {"qgram", "word"}, default "qgram"
        Tokeniser (transforms/tokens.py).
    q : int, default 3
        q-gram length, for ``kind="qgram"``.
    join : bool, default True
        Tokenise the columns' values joined by a space, else each column alone.
    tag_columns : bool, default False
        With ``join=False``, prefix each token by its column, so that equal text in
        different columns gives different tokens.
    with_tokens : bool, default False
        Also return each record's exact token set.

    Returns
    -------
    pyarrow.RecordBatch
        ``rid, source, id`` as given; ``num_tokens`` (int32, distinct tokens);
        ``signature`` (binary: ``num_perm`` little-endian uint32, transforms/packing.py);
        with ``with_tokens``, ``tokens`` (binary: the sorted distinct uint64 token hashes,
        see ``token_sets``).

    Examples
    --------
    >>> import numpy as np
    >>> import pyarrow as pa
    >>> from sigil.transforms.packing import unpack_rows
    >>> batch = pa.RecordBatch.from_pydict({"rid": [7, 8], "source": ["a", "a"], "id": ["1", "2"],
    ...                                     "name_norm": ["ann lee", "ann leigh"]})
    >>> out = signature_batch(batch, ["name"], MinHasher(num_perm=8))
    >>> out.schema.names, out["num_tokens"].to_pylist()
    (['rid', 'source', 'id', 'num_tokens', 'signature'], [5, 7])
    >>> unpack_rows(out["signature"], np.uint32, 8).shape
    (2, 8)
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
