"""Spark's ``xxhash64`` of string, int and long columns, over whole Arrow arrays (numba).

XXH64 (Yann Collet, https://github.com/Cyan4973/xxHash, spec in ``doc/xxhash_spec.md``)
of each value's UTF-8 bytes, as Spark's ``XXH64.hashUnsafeBytes`` computes it. Spark's
``xxhash64(c1, c2, ...)`` chains the columns (strings by their UTF-8 bytes, ints and longs
by their 4 or 8 little-endian bytes): the hash of ``c1`` (seed 42) seeds the hash of
``c2``, and so on; a null value leaves the running hash as it is. So a Python task can
compute a record key, ``rid = xxhash64(source, id)``, exactly as Spark would, without
sending the rows through the JVM.

Example
-------
>>> import pyarrow as pa
>>> int(xxhash64([pa.array(["people"]), pa.array(["rec-1"])])[0])  # Spark: xxhash64('people', 'rec-1')
-7735768772219899583
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SPARK_SEED = 42

P1 = np.uint64(0x9E3779B185EBCA87)
P2 = np.uint64(0xC2B2AE3D27D4EB4F)
P3 = np.uint64(0x165667B19E3779F9)
P4 = np.uint64(0x85EBCA77C2B2AE63)
P5 = np.uint64(0x27D4EB2F165667C5)


@numba.njit(cache=True, inline="always")
def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@numba.njit(cache=True, inline="always")
def _u64(data, i):
    out = np.uint64(0)
    for k in range(8):
        out |= np.uint64(data[i + k]) << np.uint64(8 * k)
    return out


@numba.njit(cache=True, inline="always")
def _round(acc, lane):
    return _rotl(acc + lane * P2, 31) * P1


@numba.njit(cache=True, inline="always")
def _merge(h, v):
    return (h ^ _round(np.uint64(0), v)) * P1 + P4


@numba.njit(cache=True)
def _xxh64(data, start, end, seed):
    n = end - start
    i = start
    if n >= 32:
        v1, v2, v3, v4 = seed + P1 + P2, seed + P2, seed, seed - P1
        while i <= end - 32:
            v1 = _round(v1, _u64(data, i))
            v2 = _round(v2, _u64(data, i + 8))
            v3 = _round(v3, _u64(data, i + 16))
            v4 = _round(v4, _u64(data, i + 24))
            i += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge(_merge(_merge(_merge(h, v1), v2), v3), v4)
    else:
        h = seed + P5
    h += np.uint64(n)
    while i <= end - 8:
        h = _rotl(h ^ _round(np.uint64(0), _u64(data, i)), 27) * P1 + P4
        i += 8
    if i + 4 <= end:
        word = np.uint64(data[i]) | np.uint64(data[i + 1]) << np.uint64(8) | \
            np.uint64(data[i + 2]) << np.uint64(16) | np.uint64(data[i + 3]) << np.uint64(24)
        h = _rotl(h ^ (word * P1), 23) * P2 + P3
        i += 4
    while i < end:
        h = _rotl(h ^ (np.uint64(data[i]) * P5), 11) * P1
        i += 1
    h ^= h >> np.uint64(33)
    h *= P2
    h ^= h >> np.uint64(29)
    h *= P3
    return h ^ (h >> np.uint64(32))


@numba.njit(cache=True)
def _chain(data, offsets, valid, seeds):
    out = np.empty(len(seeds), np.uint64)
    for r in range(len(seeds)):
        out[r] = _xxh64(data, offsets[r], offsets[r + 1], seeds[r]) if valid[r] else seeds[r]
    return out


def _bytes(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The bytes Spark hashes for each value, as (data, offsets): a string's UTF-8, an int's
    or a long's little-endian 4 or 8 bytes."""
    if pa.types.is_integer(values.type):
        width = 4 if values.type.bit_width <= 32 else 8
        numbers = pc.fill_null(values, 0).to_numpy().astype(f"<i{width}")
        return numbers.view(np.uint8), np.arange(len(values) + 1, dtype=np.int64) * width
    values = pc.cast(values, pa.large_string())
    if values.offset:  # a slice: rebase so the buffers start at row 0
        values = pa.concat_arrays([values])
    offsets = np.frombuffer(values.buffers()[1], np.int64, len(values) + 1)
    return (np.frombuffer(values.buffers()[2], np.uint8) if values.buffers()[2] else np.zeros(0, np.uint8)), offsets


def xxhash64(columns: list[pa.Array], seed: int = SPARK_SEED) -> np.ndarray:
    """Spark's ``xxhash64(*columns)`` of string, int and long columns, per row.

    The columns are chained: with ``h_0 = seed``, ``h_i = XXH64(bytes(c_i), seed=h_{i-1})``
    for a non-null value and ``h_i = h_{i-1}`` for a null, where ``bytes`` is a string's
    UTF-8 and an int's or a long's 4 or 8 little-endian bytes; XXH64 is Collet's [1]_ as
    Spark's ``XXH64`` computes it [2]_.

    Parameters
    ----------
    columns : list of pyarrow.Array
        Columns of equal length: strings, or integers (up to 32 bits hashed as Spark's
        int, 64 bits as its long).
    seed : int, default 42
        Seed of the first column, Spark's.

    Returns
    -------
    numpy.ndarray
        int64 hash of each row (Spark's signed long).

    References
    ----------
    .. [1] Y. Collet, "xxHash fast digest algorithm", XXH64 specification.
       https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md
    .. [2] Apache Spark, ``xxhash64`` and ``org.apache.spark.sql.catalyst.expressions.XXH64``.
       https://spark.apache.org/docs/latest/api/sql/#xxhash64

    Examples
    --------
    >>> import numpy as np
    >>> import pyarrow as pa
    >>> hex(int(xxhash64([pa.array([""])], seed=0).view(np.uint64)[0]))  # the spec's XXH64("", 0)
    '0xef46db3751d8e999'
    >>> xxhash64([pa.array([None], pa.string())]).tolist()  # nulls leave the seed
    [42]
    """
    h = np.full(len(columns[0]), seed, np.uint64)
    for values in columns:
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        data, offsets = _bytes(values)
        h = _chain(data, offsets, values.is_valid().to_numpy(zero_copy_only=False), h)
    return h.view(np.int64)
