"""Tokenisers: character q-grams and word tokens over whole Arrow string arrays.

A tokeniser turns the strings of a batch into one flat array of tokens (UTF-8 bytes)
plus offsets that say which tokens belong to which string. The work is done by numba
kernels over the Arrow buffers, so there is no Python loop per string or per token.

Conventions (shared by every caller, so Spark, Beam and notebooks agree):

* ``qgram``: the character q-grams of the string, ``s[i:i+q]`` for ``0 <= i <= len(s)-q``,
  counted in Unicode code points, not bytes. A non-empty string shorter than ``q`` is
  one token, itself. A null or empty string has no tokens.
* ``word``: maximal runs of non-whitespace (ASCII space, tab, CR, LF).

Example
-------
>>> import pyarrow as pa
>>> toks, offsets = tokenize(pa.array(["abcd", None, "xy"]), kind="qgram", q=3)
>>> toks.to_pylist(), offsets.tolist()
([b'abc', b'bcd', b'xy'], [0, 2, 2, 3])
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KINDS = ("qgram", "word")


@numba.njit(cache=True)
def _is_space(byte):
    return byte == 32 or byte == 9 or byte == 10 or byte == 13


@numba.njit(cache=True, parallel=True)
def _qgram_spans(data, offsets, valid, q):
    """Byte spans of the q-grams of every string (two passes: count, then fill)."""
    n = len(offsets) - 1
    counts = np.zeros(n, dtype=np.int64)
    for r in numba.prange(n):
        if valid[r] and offsets[r + 1] > offsets[r]:
            chars = 0
            for p in range(offsets[r], offsets[r + 1]):
                chars += (data[p] & 0xC0) != 0x80  # a code point starts at every non-continuation byte
            counts[r] = max(chars - q + 1, 1)
    tok_offsets = np.zeros(n + 1, dtype=np.int64)
    tok_offsets[1:] = np.cumsum(counts)
    starts = np.empty(tok_offsets[n], dtype=np.int64)
    ends = np.empty(tok_offsets[n], dtype=np.int64)
    for r in numba.prange(n):
        if counts[r] == 0:
            continue
        lo, hi, t = offsets[r], offsets[r + 1], tok_offsets[r]
        m = 0  # code points seen so far; q-gram i spans code points i .. i+q-1
        for p in range(lo, hi):
            if (data[p] & 0xC0) != 0x80:
                if m < counts[r]:
                    starts[t + m] = p
                if m >= q:
                    ends[t + m - q] = p
                m += 1
        if m < q:  # shorter than q: the whole string is the one token
            starts[t], ends[t] = lo, hi
        else:
            ends[t + m - q] = hi
    return starts, ends, tok_offsets


@numba.njit(cache=True)
def _word_spans(data, offsets, valid):
    n = len(offsets) - 1
    counts = np.zeros(n, dtype=np.int64)
    for r in range(n):
        if not valid[r]:
            continue
        inside = False
        for p in range(offsets[r], offsets[r + 1]):
            sp = _is_space(data[p])
            if not sp and not inside:
                counts[r] += 1
            inside = not sp
    tok_offsets = np.zeros(n + 1, dtype=np.int64)
    tok_offsets[1:] = np.cumsum(counts)
    starts = np.empty(tok_offsets[n], dtype=np.int64)
    ends = np.empty(tok_offsets[n], dtype=np.int64)
    for r in range(n):
        t = tok_offsets[r]
        inside = False
        for p in range(offsets[r], offsets[r + 1]):
            sp = _is_space(data[p])
            if not sp and not inside:
                starts[t] = p
            if sp and inside:
                ends[t] = p
                t += 1
            inside = not sp
        if inside:
            ends[t] = offsets[r + 1]
    return starts, ends, tok_offsets


@numba.njit(cache=True, parallel=True)
def _gather(data, starts, ends):
    out_offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    out_offsets[1:] = np.cumsum(ends - starts)
    out = np.empty(out_offsets[-1], dtype=np.uint8)
    for t in numba.prange(len(starts)):
        o = out_offsets[t] - starts[t]
        for p in range(starts[t], ends[t]):  # a plain loop: slice assignment costs more per token
            out[o + p] = data[p]
    return out, out_offsets


def string_buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The UTF-8 bytes, int64 offsets and validity of a string array, zero-copy where possible.

    Parameters
    ----------
    strings : pyarrow.Array or pyarrow.ChunkedArray
        Strings (any Arrow string type; cast to ``large_string`` when needed).

    Returns
    -------
    data : numpy.ndarray
        uint8, the values' bytes back to back.
    offsets : numpy.ndarray
        int64, ``len(strings) + 1`` positions: value i is ``data[offsets[i]:offsets[i+1]]``.
    valid : numpy.ndarray
        bool, False where a value is null.

    Examples
    --------
    >>> import pyarrow as pa
    >>> data, offsets, valid = string_buffers(pa.array(["ab", None, "é"]))
    >>> bytes(data), offsets.tolist(), valid.tolist()
    (b'ab\\xc3\\xa9', [0, 2, 2, 4], [True, False, True])
    """
    strings = pc.cast(strings, pa.large_string()) if strings.type != pa.large_string() else strings
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    n = len(strings)
    validity, offs, data = strings.buffers()
    offsets = np.frombuffer(offs, dtype=np.int64, count=n + 1, offset=strings.offset * 8)
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    valid = strings.is_valid().to_numpy(zero_copy_only=False)
    return data, offsets, valid


def tokenize(strings: pa.Array, kind: str = "qgram", q: int = 3) -> tuple[pa.LargeBinaryArray, np.ndarray]:
    """Tokens of every string, as one flat binary array and offsets.

    ``qgram``: the code-point q-grams ``s[i:i+q]``, ``0 <= i <= len(s) - q`` (a string
    shorter than q is one token, itself); ``word``: maximal runs of non-whitespace. Null
    and empty strings have no tokens. Repeated tokens are kept (MinHash ignores repeats).

    Parameters
    ----------
    strings : pyarrow.Array or pyarrow.ChunkedArray
        Strings to tokenise.
    kind : {"qgram", "word"}, default "qgram"
        Character q-grams or whitespace-separated words.
    q : int, default 3
        q-gram length in Unicode code points (at least 1); ignored for ``word``.

    Returns
    -------
    tokens : pyarrow.LargeBinaryArray
        Every string's tokens as UTF-8 bytes, in string order and, within a string, in
        order of position.
    offsets : numpy.ndarray
        int64, ``len(strings) + 1`` positions: string i's tokens are
        ``tokens[offsets[i]:offsets[i+1]]``.

    Raises
    ------
    ValueError
        On an unknown ``kind`` or ``q < 1``.

    Examples
    --------
    >>> import pyarrow as pa
    >>> tokens, offsets = tokenize(pa.array(["ab cd  e", None]), kind="word")
    >>> tokens.to_pylist(), offsets.tolist()
    ([b'ab', b'cd', b'e'], [0, 3, 3])
    >>> tokenize(pa.array(["héllo"]), "qgram", 4)[0].to_pylist()  # code points, not bytes
    [b'h\\xc3\\xa9ll', b'\\xc3\\xa9llo']
    """
    if kind not in KINDS:
        raise ValueError(f"tokenizer kind must be one of {KINDS}, got {kind!r}")
    if q < 1:
        raise ValueError(f"q must be >= 1, got {q}")
    data, offsets, valid = string_buffers(strings)
    if kind == "qgram":
        starts, ends, tok_offsets = _qgram_spans(data, offsets, valid, q)
    else:
        starts, ends, tok_offsets = _word_spans(data, offsets, valid)
    out, out_offsets = _gather(data, starts, ends)
    tokens = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(starts), [None, pa.py_buffer(out_offsets), pa.py_buffer(out)]
    )
    return tokens, tok_offsets


def tokenize_columns(columns: list[pa.Array], *, kind: str = "qgram", q: int = 3,
                     join: bool = True, tags: list[str] | None = None) -> tuple[pa.LargeBinaryArray, np.ndarray]:
    """Tokens of several columns of the same rows, as one token list per row.

    Parameters
    ----------
    columns : list of pyarrow.Array
        String columns of equal length.
    kind : {"qgram", "word"}, default "qgram"
        Tokeniser, as in ``tokenize``.
    q : int, default 3
        q-gram length, as in ``tokenize``.
    join : bool, default True
        True: tokenise the non-null values of each row joined by one space (q-grams then
        span column boundaries). False: tokenise each column alone and unite the tokens
        per row, in column order.
    tags : list of str, optional
        With ``join=False``, one tag per column: each token is prefixed by its column's
        tag and ``\\x1f``, so equal text in different columns gives different tokens.

    Returns
    -------
    tokens : pyarrow.LargeBinaryArray
        All rows' tokens.
    offsets : numpy.ndarray
        int64, ``rows + 1`` positions: row i's tokens are ``tokens[offsets[i]:offsets[i+1]]``.

    Examples
    --------
    >>> import pyarrow as pa
    >>> first, last = pa.array(["abc", "x"]), pa.array(["d", None])
    >>> tokens, offsets = tokenize_columns([first, last], kind="qgram", q=3)
    >>> tokens.to_pylist(), offsets.tolist()
    ([b'abc', b'bc ', b'c d', b'x'], [0, 3, 4])
    >>> tokens, offsets = tokenize_columns([first, last], kind="word", join=False, tags=["f", "l"])
    >>> tokens.to_pylist(), offsets.tolist()
    ([b'f\\x1fabc', b'l\\x1fd', b'f\\x1fx'], [0, 2, 3])
    """
    if join:
        strings = [pc.cast(c, pa.large_string()) for c in columns]
        # Arrow's join drops the rows whose values are all null (pyarrow 25): those rows get
        # an empty first value instead, which has no tokens either
        none = functools.reduce(pc.and_, [pc.is_null(s) for s in strings])
        strings[0] = pc.if_else(none, pa.scalar("", pa.large_string()), strings[0])
        joined = pc.binary_join_element_wise(*strings, pa.scalar(" ", pa.large_string()), null_handling="skip")
        return tokenize(joined, kind, q)
    n = len(columns[0])
    parts, rows = [], []
    for i, column in enumerate(columns):
        toks, offs = tokenize(column, kind, q)
        if tags is not None:
            prefix = pa.scalar((tags[i] + "\x1f").encode(), pa.large_binary())
            toks = pc.binary_join_element_wise(prefix, toks, pa.scalar(b"", pa.large_binary()))
        parts.append(toks)
        rows.append(np.repeat(np.arange(n), np.diff(offs)))
    row_ids = np.concatenate(rows)
    tokens = pa.concat_arrays(parts).take(pa.array(np.argsort(row_ids, kind="stable")))
    tok_offsets = np.zeros(n + 1, dtype=np.int64)
    tok_offsets[1:] = np.cumsum(np.bincount(row_ids, minlength=n))
    return tokens, tok_offsets
