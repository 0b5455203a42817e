"""Comparison levels: how similar the two values of each attribute of a record pair are.

A comparison maps a pair's two values to a level index, as in Fellegi & Sunter (1969) and
Splink: the levels are predicates tried in order (most similar first); the first that
holds gives the level, none gives the final ``else`` level, and a value missing on either
side gives ``NULL_LEVEL`` (-1), which the match models treat as no evidence.

Every predicate runs over whole columns: string similarities through rapidfuzz's
``process.cpdist`` (element-wise, in C++), numbers and dates through numpy/pandas, token
Jaccard through the numba kernels of transforms/lsh.py. Each level is evaluated only on
the rows no earlier level has claimed.

Example
-------
>>> import pyarrow as pa
>>> from sigil.schemas.config import Comparison
>>> c = Comparison.model_validate({"column": "name", "levels": [
...     {"kind": "exact"}, {"kind": "jaro_winkler", "min": 0.9}]})
>>> comparison_levels(c, pa.array(["anna", "anna", None]), pa.array(["anna", "ana", "x"])).tolist()
[0, 1, -1]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import distance, process

from sigil.transforms.lsh import exact_jaccard
from sigil.transforms.minhash import token_sets
from sigil.transforms.tokens import tokenize

NULL_LEVEL = -1

_SIMILARITY = {
    "jaro_winkler": distance.JaroWinkler.normalized_similarity,
    "jaro": distance.Jaro.normalized_similarity,
    "levenshtein_ratio": distance.Levenshtein.normalized_similarity,
}
_EDITS = {
    "levenshtein": distance.Levenshtein.distance,
    "damerau_levenshtein": distance.DamerauLevenshtein.distance,
}


def missing(values: pa.Array) -> np.ndarray:
    """True where a value is null or blank."""
    blank = pc.equal(pc.utf8_trim_whitespace(pc.cast(values, pa.string())), "")
    return pc.fill_null(pc.or_kleene(pc.is_null(values), blank), True).to_numpy(zero_copy_only=False)


def _strings(values: pa.Array) -> np.ndarray:
    return pc.fill_null(pc.cast(values, pa.string()), "").to_numpy(zero_copy_only=False)


def word_jaccard(a: pa.Array, b: pa.Array) -> np.ndarray:
    """|A ∩ B| / |A ∪ B| of the whitespace-separated word sets of each pair of strings."""
    tok_a, off_a = tokenize(a, "word")
    tok_b, off_b = tokenize(b, "word")
    # one dictionary over both sides: equal words get equal integer ids, no hashing needed
    ids = pc.dictionary_encode(pa.concat_arrays([tok_a, tok_b])).indices.to_numpy(zero_copy_only=False)
    ids = ids.astype(np.uint64)
    set_a = token_sets(ids[: len(tok_a)], off_a)
    set_b = token_sets(ids[len(tok_a):], off_b)
    return exact_jaccard(*set_a, *set_b)


def codes(values: pa.Array, min_length: int = 4) -> pa.Array:
    """The code-like words of each value (model and part numbers: at least ``min_length``
    characters, one a digit), joined by a space; null when a value has none."""
    words = pc.split_pattern(pc.cast(values, pa.string()), " ")
    flat = pc.list_flatten(words)
    keep = pc.and_(pc.match_substring_regex(flat, r"\d"), pc.greater_equal(pc.utf8_length(flat), min_length))
    rows = pc.list_parent_indices(words).to_numpy()
    kept = keep.to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(np.bincount(rows[kept], minlength=len(values)))
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), flat.filter(keep)), " ")
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)


def numeric_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| / max(|a|, |b|) (0 when both are 0) of string arrays; NaN where either is
    not a number."""
    x = pd.to_numeric(pd.Series(a), errors="coerce").to_numpy(float)
    y = pd.to_numeric(pd.Series(b), errors="coerce").to_numpy(float)
    scale = np.maximum(np.abs(x), np.abs(y))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale == 0, 0.0, np.abs(x - y) / scale)


def date_days(a: np.ndarray, b: np.ndarray, date_format: str) -> np.ndarray:
    """Absolute difference in days of string arrays; NaN where either is not a date in
    ``date_format``."""
    x = pd.to_datetime(pd.Series(a), format=date_format, errors="coerce")
    y = pd.to_datetime(pd.Series(b), format=date_format, errors="coerce")
    return (x - y).dt.days.abs().to_numpy(float, na_value=np.nan)


def level_scores(kind: str, levels: list, a: pa.Array, b: pa.Array, sa: np.ndarray, sb: np.ndarray) -> np.ndarray:
    """The similarity or distance of ``kind`` for the pairs (a[i], b[i]), once for all of a
    comparison's ``levels`` of that kind; ``sa``, ``sb`` are the same values as numpy string
    arrays. String measures stop early past the loosest bound of those levels (rapidfuzz's
    ``score_cutoff``): a score beyond it holds for no level anyway."""
    if kind == "exact":
        return sa == sb
    if kind in _SIMILARITY:
        # float64: the float32 default would round a similarity of 0.79999 up to 0.8
        # the cutoff a hair below the bound: rapidfuzz rounds at the cutoff, the levels decide
        return process.cpdist(sa, sb, scorer=_SIMILARITY[kind], workers=1, dtype=np.float64,
                              score_cutoff=max(min(level.min for level in levels) - 1e-6, 0.0))
    if kind in _EDITS:
        return process.cpdist(sa, sb, scorer=_EDITS[kind], workers=1,
                              score_cutoff=int(max(level.max for level in levels)))
    if kind == "jaccard":
        return word_jaccard(a, b)
    if kind == "numeric_diff":
        return numeric_difference(sa, sb)
    if kind == "date_days":
        return date_days(sa, sb, levels[0].date_format)
    raise ValueError(f"unknown comparison level kind {kind!r}")


def level_holds(level, scores: np.ndarray) -> np.ndarray:
    """Boolean mask: where ``level``'s predicate holds, given its kind's ``scores`` (NaN,
    for values that are not numbers or dates, holds for no bound)."""
    if level.kind == "exact":
        return scores
    return scores >= level.min if level.min is not None else scores <= level.max


def _score_kind(level) -> str:
    return f"date_days {level.date_format}" if level.kind == "date_days" else level.kind


def cosines(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Row-wise dot products of two arrays of equal-length float vectors (unit embeddings:
    their cosines); NaN where either is null."""
    out = np.full(len(a), np.nan)
    valid = np.flatnonzero(pc.and_(pc.is_valid(a), pc.is_valid(b)).to_numpy(zero_copy_only=False))
    if len(valid):
        va, vb = (pc.list_flatten(x.take(pa.array(valid))).to_numpy(zero_copy_only=False).reshape(len(valid), -1)
                  for x in (a, b))
        out[valid] = np.einsum("ij,ij->i", va.astype(np.float64), vb.astype(np.float64))
    return out


class Vocabulary:
    """The distinct values of a column, so that a comparison tests equality and missing
    values on integer codes and scores each distinct pair of values once: a column of
    first names holds far fewer distinct pairs than pairs of records.

    ``arrow`` holds the values (null among them, when any is), ``strings`` the same as a
    numpy array of str ('' for null), ``missing`` which are null or blank."""

    def __init__(self, values: pa.Array):
        self.arrow = values
        self.strings = _strings(values)
        self.missing = missing(values)
        self._code_words = None

    def __len__(self) -> int:
        return len(self.arrow)

    @classmethod
    def encode(cls, *arrays: pa.Array) -> tuple[Vocabulary, list[np.ndarray]]:
        """One vocabulary of the values of ``arrays`` and each array's int32 codes into it."""
        arrays = [pc.cast(x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x, pa.string()) for x in arrays]
        encoded = pc.dictionary_encode(pa.concat_arrays(arrays), null_encoding="encode")
        return cls(encoded.dictionary), np.split(encoded.indices.to_numpy(), np.cumsum([len(x) for x in arrays])[:-1])

    def code_words(self) -> tuple[Vocabulary, np.ndarray]:
        """The vocabulary of the values' code-like words (``codes``) and every value's code
        into it; computed once."""
        if self._code_words is None:
            vocab, (remap,) = Vocabulary.encode(codes(self.arrow))
            self._code_words = vocab, remap
        return self._code_words


def comparison_levels(comparison, a: pa.Array, b: pa.Array) -> np.ndarray:
    """int8 level of every pair: the first level whose predicate holds, ``len(levels)``
    (else) when none does, ``NULL_LEVEL`` where a value is missing."""
    a, b = (x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x for x in (a, b))
    if comparison.levels[0].kind == "cosine":  # embeddings: the levels are cosine bounds, best first
        cos = cosines(a, b)
        gamma = np.full(len(a), len(comparison.levels), dtype=np.int8)
        for index in reversed(range(len(comparison.levels))):
            gamma[cos >= comparison.levels[index].min] = index
        gamma[np.isnan(cos)] = NULL_LEVEL
        return gamma
    vocab, (ca, cb) = Vocabulary.encode(a, b)
    return coded_levels(comparison, vocab, ca, cb)


def coded_levels(comparison, vocab: Vocabulary, ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """``comparison_levels`` of the pairs of values (vocab[ca[i]], vocab[cb[i]]): each
    distinct pair of values is scored once."""
    distinct, inverse = np.unique(ca.astype(np.int64) * len(vocab) + cb, return_inverse=True)
    return pair_levels(comparison, vocab, distinct // len(vocab), distinct % len(vocab))[inverse]


def pair_levels(comparison, vocab: Vocabulary, ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """``coded_levels`` of pairs taken as they come, each scored however often it repeats."""
    if comparison.extract == "codes":
        vocab, remap = vocab.code_words()
        ca, cb = remap[ca], remap[cb]
    gamma = np.full(len(ca), NULL_LEVEL, dtype=np.int8)
    rows = np.flatnonzero(~(vocab.missing[ca] | vocab.missing[cb]))
    gamma[rows] = distinct_levels(comparison, vocab, ca[rows], cb[rows])
    return gamma


def distinct_levels(comparison, vocab: Vocabulary, ua: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """Levels of present value pairs (codes ``ua``, ``ub``); each level is tried only on
    the pairs no earlier level has claimed."""
    gamma = np.full(len(ua), len(comparison.levels), dtype=np.int8)
    kinds = [_score_kind(level) for level in comparison.levels]
    rows = np.arange(len(ua))
    scores: dict[str, np.ndarray] = {"exact": ua == ub}  # each kind's scores, once, over the pairs left
    for index, level in enumerate(comparison.levels):
        if not len(rows):
            break
        kind = kinds[index]
        if kind not in scores:
            a = b = None
            if kind == "jaccard":  # the only measure that reads Arrow arrays
                a, b = vocab.arrow.take(pa.array(ua[rows])), vocab.arrow.take(pa.array(ub[rows]))
            scores[kind] = level_scores(level.kind, [x for x, k in zip(comparison.levels, kinds) if k == kind],
                                        a, b, vocab.strings[ua[rows]], vocab.strings[ub[rows]])
        holds = level_holds(level, scores[kind])
        gamma[rows[holds]] = index
        rows = rows[~holds]
        scores = {k: v[~holds] for k, v in scores.items()}
    return gamma


def value_column(comparison) -> str:
    """The records' column a comparison reads: the normalised value unless told otherwise
    (embeddings have no normalised form)."""
    if comparison.levels[0].kind == "cosine":
        return comparison.column
    return comparison.column + ("_norm" if comparison.normalized else "")


def gamma_batch(batch: pa.RecordBatch, comparisons) -> dict[str, np.ndarray]:
    """``gamma_<name>`` level arrays for a batch holding ``<value column>_a`` and ``_b``."""
    out = {}
    for c in comparisons:
        col = value_column(c)
        out[f"gamma_{c.key}"] = comparison_levels(c, batch.column(f"{col}_a"), batch.column(f"{col}_b"))
    return out
