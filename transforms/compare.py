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
from sigil.transforms.pairs import KEYS
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
    """True where a value is null or blank (empty or only whitespace).

    Parameters
    ----------
    values : pyarrow.Array
        Any values; cast to strings to find the blank ones.

    Returns
    -------
    numpy.ndarray
        bool, one per value.

    Examples
    --------
    >>> import pyarrow as pa
    >>> missing(pa.array(["ann", " ", None, ""])).tolist()
    [False, True, True, True]
    """
    blank = pc.equal(pc.utf8_trim_whitespace(pc.cast(values, pa.string())), "")
    return pc.fill_null(pc.or_kleene(pc.is_null(values), blank), True).to_numpy(zero_copy_only=False)


def _strings(values: pa.Array) -> np.ndarray:
    return pc.fill_null(pc.cast(values, pa.string()), "").to_numpy(zero_copy_only=False)


def word_jaccard(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Jaccard similarity of the word sets of each pair of strings.

    With A and B the sets of whitespace-separated words of ``a[i]`` and ``b[i]``,
    ``J(A, B) = |A ∩ B| / |A ∪ B|`` [1]_, 0 when both are empty.

    Parameters
    ----------
    a, b : pyarrow.Array
        Strings, of equal length.

    Returns
    -------
    numpy.ndarray
        float32, one similarity per pair.

    References
    ----------
    .. [1] J. Leskovec, A. Rajaraman, J. D. Ullman, *Mining of Massive Datasets*, ch. 3
       "Finding Similar Items", sec. 3.1. http://www.mmds.org/

    Examples
    --------
    >>> import pyarrow as pa
    >>> word_jaccard(pa.array(["anna lee", "bob", ""]), pa.array(["lee anna bob kay", "bob", ""])).tolist()
    [0.5, 1.0, 0.0]
    """
    tok_a, off_a = tokenize(a, "word")
    tok_b, off_b = tokenize(b, "word")
    # one dictionary over both sides: equal words get equal integer ids, no hashing needed
    ids = pc.dictionary_encode(pa.concat_arrays([tok_a, tok_b])).indices.to_numpy(zero_copy_only=False)
    ids = ids.astype(np.uint64)
    set_a = token_sets(ids[: len(tok_a)], off_a)
    set_b = token_sets(ids[len(tok_a):], off_b)
    return exact_jaccard(*set_a, *set_b)


def codes(values: pa.Array, min_length: int = 4) -> pa.Array:
    """The code-like words of each value: model and part numbers.

    A word (the value split on spaces) is code-like when it has at least ``min_length``
    characters and a digit among them. A comparison with ``extract="codes"`` compares
    these instead of the whole value.

    Parameters
    ----------
    values : pyarrow.Array
        Strings.
    min_length : int, default 4
        Fewest characters of a code-like word.

    Returns
    -------
    pyarrow.Array
        string, one per value: its code-like words in order, joined by a space; null where
        it has none.

    Examples
    --------
    >>> import pyarrow as pa
    >>> codes(pa.array(["sony dsc-w830 20mp", "nikon d3100 kit", "canon eos", None])).to_pylist()
    ['dsc-w830 20mp', 'd3100', None, None]
    """
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
    """Relative difference of numbers written as strings.

    ``d(x, y) = |x - y| / max(|x|, |y|)``, in [0, 2]; 0 when x = y = 0.

    Parameters
    ----------
    a, b : numpy.ndarray
        str, of equal length.

    Returns
    -------
    numpy.ndarray
        float64, one difference per pair; NaN where either value is not a number.

    Examples
    --------
    >>> import numpy as np
    >>> numeric_difference(np.array(["10", "0", "x"]), np.array(["8", "0", "1"])).tolist()
    [0.2, 0.0, nan]
    """
    x = pd.to_numeric(pd.Series(a), errors="coerce").to_numpy(float)
    y = pd.to_numeric(pd.Series(b), errors="coerce").to_numpy(float)
    scale = np.maximum(np.abs(x), np.abs(y))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale == 0, 0.0, np.abs(x - y) / scale)


def date_days(a: np.ndarray, b: np.ndarray, date_format: str) -> np.ndarray:
    """Absolute difference in days of dates written as strings.

    Parameters
    ----------
    a, b : numpy.ndarray
        str, of equal length.
    date_format : str
        Their ``strptime`` format, e.g. ``"%Y%m%d"``.

    Returns
    -------
    numpy.ndarray
        float64, ``|a - b|`` in whole days per pair; NaN where either value is not a date
        in ``date_format``.

    Examples
    --------
    >>> import numpy as np
    >>> date_days(np.array(["20240101", "2024"]), np.array(["20240131", "20240101"]), "%Y%m%d").tolist()
    [30.0, nan]
    """
    x = pd.to_datetime(pd.Series(a), format=date_format, errors="coerce")
    y = pd.to_datetime(pd.Series(b), format=date_format, errors="coerce")
    return (x - y).dt.days.abs().to_numpy(float, na_value=np.nan)


def level_scores(kind: str, levels: list, a: pa.Array, b: pa.Array, sa: np.ndarray, sb: np.ndarray) -> np.ndarray:
    """The similarity or distance of ``kind`` for the pairs (a[i], b[i]).

    Computed once for all of a comparison's ``levels`` of that kind:

    * ``exact``: whether a = b;
    * ``jaro``: the Jaro similarity ``sim_j``; ``jaro_winkler``: ``sim_j + l p (1 - sim_j)``
      where ``sim_j > 0.7``, with l the common prefix (at most 4 characters) and p = 0.1;
    * ``levenshtein_ratio``: ``1 - d / max(|a|, |b|)``, d the Levenshtein distance;
    * ``levenshtein``, ``damerau_levenshtein``: the fewest insertions, deletions and
      substitutions (and, for Damerau-Levenshtein, transpositions of adjacent
      characters) that turn a into b;
    * ``jaccard``: ``word_jaccard``; ``numeric_diff``: ``numeric_difference``;
      ``date_days``: ``date_days`` in the levels' ``date_format``.

    The string measures are rapidfuzz's [1]_, over whole columns (``process.cpdist``).
    They stop early past the loosest bound of ``levels`` (rapidfuzz's ``score_cutoff``):
    a similarity below it reads 0, a distance above it reads the bound + 1; either holds
    for no level anyway.

    Parameters
    ----------
    kind : str
        A level kind (schemas.config.Level), other than ``cosine``.
    levels : list of schemas.config.Level
        The comparison's levels of this kind.
    a, b : pyarrow.Array or None
        The values as Arrow strings; read by ``jaccard`` only.
    sa, sb : numpy.ndarray
        The same values as str ('' for null).

    Returns
    -------
    numpy.ndarray
        One score per pair: bool (``exact``), float64 similarities, integer edit counts,
        float32 (``jaccard``) or float64 differences (NaN where not a number or date).

    Raises
    ------
    ValueError
        On an unknown ``kind``.

    References
    ----------
    .. [1] RapidFuzz, ``rapidfuzz.distance`` (Jaro, JaroWinkler, Levenshtein,
       DamerauLevenshtein) and ``rapidfuzz.process.cpdist``.
       https://github.com/rapidfuzz/RapidFuzz

    Examples
    --------
    >>> import numpy as np
    >>> from sigil.schemas.config import Level
    >>> levels = [Level(kind="levenshtein", max=1), Level(kind="levenshtein", max=2)]
    >>> sa, sb = np.array(["martha", "dwayne", "abcde"]), np.array(["marhta", "duane", "vwxyz"])
    >>> level_scores("levenshtein", levels, None, None, sa, sb).tolist()  # 5 edits read 3
    [2, 2, 3]
    >>> level_scores("damerau_levenshtein", levels, None, None, sa, sb).tolist()
    [1, 2, 3]
    """
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
    """Where a level's predicate holds, given the scores of its kind.

    ``exact``: the scores themselves; a similarity level: ``score >= min``; a distance
    level: ``score <= max``. NaN (a value that is not a number or date) holds for no bound.

    Parameters
    ----------
    level : schemas.config.Level
        The level.
    scores : numpy.ndarray
        ``level_scores`` of the level's kind.

    Returns
    -------
    numpy.ndarray
        bool, one per score.

    Examples
    --------
    >>> import numpy as np
    >>> from sigil.schemas.config import Level
    >>> level_holds(Level(kind="numeric_diff", max=0.1), np.array([0.05, 0.2, np.nan])).tolist()
    [True, False, False]
    """
    if level.kind == "exact":
        return scores
    return scores >= level.min if level.min is not None else scores <= level.max


def _score_kind(level) -> str:
    return f"date_days {level.date_format}" if level.kind == "date_days" else level.kind


def cosines(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Row-wise dot products of two arrays of float vectors: for unit embeddings, cosines.

    ``cos(x, y) = sum_j x_j y_j`` when ``|x| = |y| = 1``, as the encoder writes its
    embeddings; accumulated in float64.

    Parameters
    ----------
    a, b : pyarrow.Array
        Lists (or fixed-size lists) of floats, all of one length; of equal length.

    Returns
    -------
    numpy.ndarray
        float64, one per pair; NaN where either vector is null.

    Examples
    --------
    >>> import pyarrow as pa
    >>> cosines(pa.array([[1.0, 0.0], [0.6, 0.8], None]), pa.array([[0.0, 1.0], [0.6, 0.8], [1.0, 0.0]])).tolist()
    [0.0, 1.0, nan]
    """
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

    Parameters
    ----------
    values : pyarrow.Array
        The distinct values (``encode`` builds them from columns).

    Attributes
    ----------
    arrow : pyarrow.Array
        The values, null among them when any is.
    strings : numpy.ndarray
        The same as str, '' for null.
    missing : numpy.ndarray
        bool: which are null or blank (``missing``).

    Examples
    --------
    >>> import pyarrow as pa
    >>> vocab, (ca, cb) = Vocabulary.encode(pa.array(["ann", "bob", None]), pa.array(["bob", "ann", "ann"]))
    >>> len(vocab), vocab.strings.tolist(), vocab.missing.tolist()
    (3, ['ann', 'bob', ''], [False, False, True])
    >>> ca.tolist(), cb.tolist()
    ([0, 1, 2], [1, 0, 0])
    """

    def __init__(self, values: pa.Array):
        self.arrow = values
        self.strings = _strings(values)
        self.missing = missing(values)
        self._code_words = None

    def __len__(self) -> int:
        return len(self.arrow)

    @classmethod
    def encode(cls, *arrays: pa.Array) -> tuple[Vocabulary, list[np.ndarray]]:
        """One vocabulary of the values of ``arrays``, and each array's codes into it.

        Parameters
        ----------
        *arrays : pyarrow.Array or pyarrow.ChunkedArray
            Values, cast to strings.

        Returns
        -------
        vocab : Vocabulary
            Their distinct values (null among them when any value is null).
        codes : list of numpy.ndarray
            int32, per array: each value's index in ``vocab``.

        Examples
        --------
        >>> import pyarrow as pa
        >>> vocab, (codes,) = Vocabulary.encode(pa.array(["x", "y", "x"]))
        >>> vocab.strings.tolist(), codes.tolist()
        (['x', 'y'], [0, 1, 0])
        """
        arrays = [pc.cast(x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x, pa.string()) for x in arrays]
        encoded = pc.dictionary_encode(pa.concat_arrays(arrays), null_encoding="encode")
        return cls(encoded.dictionary), np.split(encoded.indices.to_numpy(), np.cumsum([len(x) for x in arrays])[:-1])

    def code_words(self) -> tuple[Vocabulary, np.ndarray]:
        """The vocabulary of the values' code-like words (``codes``); computed once.

        Returns
        -------
        vocab : Vocabulary
            The distinct code-like words of the values, joined per value as ``codes``
            joins them (null for a value without any).
        remap : numpy.ndarray
            int32: ``remap[c]`` is the code in ``vocab`` of value c's words.

        Examples
        --------
        >>> import pyarrow as pa
        >>> words, remap = Vocabulary(pa.array(["canon eos", "nikon d3100", "d3100 body"])).code_words()
        >>> words.arrow.to_pylist(), remap.tolist()
        ([None, 'd3100'], [0, 1, 1])
        """
        if self._code_words is None:
            vocab, (remap,) = Vocabulary.encode(codes(self.arrow))
            self._code_words = vocab, remap
        return self._code_words


def comparison_levels(comparison, a: pa.Array, b: pa.Array) -> np.ndarray:
    """The comparison level of every pair of values (a[i], b[i]).

    The levels are tried in order, most similar first, as in Fellegi-Sunter [1]_ and
    Splink [2]_: a pair's level is the index of the first whose predicate holds
    (``level_holds``), ``len(levels)`` (the ``else`` level) when none does, and
    ``NULL_LEVEL`` when either value is missing. Cosine levels compare embeddings row by
    row (``cosines``); the other kinds score each distinct pair of values once
    (``coded_levels``).

    Parameters
    ----------
    comparison : schemas.config.Comparison
        The levels.
    a, b : pyarrow.Array or pyarrow.ChunkedArray
        The two records' values, of equal length.

    Returns
    -------
    numpy.ndarray
        int8, one level per pair.

    References
    ----------
    .. [1] I. P. Fellegi, A. B. Sunter, "A Theory for Record Linkage", JASA 64(328),
       1183-1210, 1969. doi:10.1080/01621459.1969.10501049
    .. [2] Splink, comparisons and comparison levels.
       https://moj-analytical-services.github.io/splink/

    Examples
    --------
    >>> import pyarrow as pa
    >>> from sigil.schemas.config import Comparison
    >>> c = Comparison.model_validate({"column": "name", "levels": [
    ...     {"kind": "exact"}, {"kind": "levenshtein", "max": 1}]})
    >>> comparison_levels(c, pa.array(["ann", "ann", "ann", None]), pa.array(["ann", "anne", "bob", "ann"])).tolist()
    [0, 1, 2, -1]
    """
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
    """``comparison_levels`` of the pairs of values (vocab[ca[i]], vocab[cb[i]]).

    A pair of codes (x, y) is keyed ``x |vocab| + y``; each distinct key is scored once
    (``pair_levels``) and its level copied to every pair holding it.

    Parameters
    ----------
    comparison : schemas.config.Comparison
        The levels.
    vocab : Vocabulary
        The values.
    ca, cb : numpy.ndarray
        Integer codes into ``vocab`` of each pair's two values.

    Returns
    -------
    numpy.ndarray
        int8, one level per pair.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from sigil.schemas.config import Comparison
    >>> c = Comparison.model_validate({"column": "name", "levels": [{"kind": "jaro_winkler", "min": 0.9}]})
    >>> a, b = pa.array(["martha", "martha", "ann"]), pa.array(["marhta", "marhta", "bob"])
    >>> vocab, (ca, cb) = Vocabulary.encode(a, b)
    >>> coded_levels(c, vocab, ca, cb).tolist()
    [0, 0, 1]
    """
    distinct, inverse = np.unique(ca.astype(np.int64) * len(vocab) + cb, return_inverse=True)
    return pair_levels(comparison, vocab, distinct // len(vocab), distinct % len(vocab))[inverse]


def pair_levels(comparison, vocab: Vocabulary, ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """``coded_levels`` of pairs taken as they come, each scored however often it repeats.

    With ``comparison.extract == "codes"`` the values' code-like words
    (``Vocabulary.code_words``) are compared instead of the values.

    Parameters
    ----------
    comparison : schemas.config.Comparison
        The levels.
    vocab : Vocabulary
        The values.
    ca, cb : numpy.ndarray
        Integer codes into ``vocab`` of each pair's two values.

    Returns
    -------
    numpy.ndarray
        int8, one level per pair; ``NULL_LEVEL`` where either value (or its code words)
        is missing.

    Examples
    --------
    >>> import numpy as np
    >>> import pyarrow as pa
    >>> from sigil.schemas.config import Comparison
    >>> c = Comparison.model_validate({"column": "title", "extract": "codes", "levels": [{"kind": "exact"}]})
    >>> vocab = Vocabulary(pa.array(["canon eos", "nikon d3100", "d3100 body"]))
    >>> pair_levels(c, vocab, np.array([1, 0]), np.array([2, 1])).tolist()
    [0, -1]
    """
    if comparison.extract == "codes":
        vocab, remap = vocab.code_words()
        ca, cb = remap[ca], remap[cb]
    gamma = np.full(len(ca), NULL_LEVEL, dtype=np.int8)
    rows = np.flatnonzero(~(vocab.missing[ca] | vocab.missing[cb]))
    gamma[rows] = distinct_levels(comparison, vocab, ca[rows], cb[rows])
    return gamma


def distinct_levels(comparison, vocab: Vocabulary, ua: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """Levels of pairs of present values (neither missing).

    Each level is tried only on the pairs no earlier level has claimed; the scores of a
    kind (``level_scores``) are computed once, on the pairs left when its first level is
    reached, for all its levels.

    Parameters
    ----------
    comparison : schemas.config.Comparison
        The levels.
    vocab : Vocabulary
        The values.
    ua, ub : numpy.ndarray
        Integer codes into ``vocab`` of each pair's two values.

    Returns
    -------
    numpy.ndarray
        int8, one level per pair, ``len(levels)`` (else) where no level holds.

    Examples
    --------
    >>> import numpy as np
    >>> import pyarrow as pa
    >>> from sigil.schemas.config import Comparison
    >>> c = Comparison.model_validate({"column": "name", "levels": [
    ...     {"kind": "exact"}, {"kind": "levenshtein", "max": 1}]})
    >>> vocab = Vocabulary(pa.array(["ann", "anne", "bob"]))
    >>> distinct_levels(c, vocab, np.array([0, 0, 0]), np.array([0, 1, 2])).tolist()
    [0, 1, 2]
    """
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
    """The records' column a comparison reads.

    Parameters
    ----------
    comparison : schemas.config.Comparison
        The comparison.

    Returns
    -------
    str
        ``<column>_norm``, the normalised values; ``<column>`` when the comparison reads
        the raw values (``normalized=False``) or embeddings (which have no normalised form).

    Examples
    --------
    >>> from sigil.schemas.config import Comparison
    >>> value_column(Comparison.model_validate({"column": "surname", "levels": [{"kind": "exact"}]}))
    'surname_norm'
    """
    if comparison.levels[0].kind == "cosine":
        return comparison.column
    return comparison.column + ("_norm" if comparison.normalized else "")


def gamma_batch(batch: pa.RecordBatch, comparisons) -> dict[str, np.ndarray]:
    """The levels of each comparison for a batch of pairs.

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        Pairs with both records' values: ``<value column>_a`` and ``<value column>_b``
        (``value_column``) for each comparison.
    comparisons : list of schemas.config.Comparison
        The comparisons.

    Returns
    -------
    dict of str to numpy.ndarray
        ``gamma_<name>``: the int8 levels (``comparison_levels``) of each comparison.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from sigil.schemas.config import Comparison
    >>> c = Comparison.model_validate({"column": "name", "levels": [{"kind": "exact"}]})
    >>> batch = pa.RecordBatch.from_pydict({"name_norm_a": ["ann", "ann"], "name_norm_b": ["ann", "bob"]})
    >>> {k: v.tolist() for k, v in gamma_batch(batch, [c]).items()}
    {'gamma_name': [0, 1]}
    """
    out = {}
    for c in comparisons:
        col = value_column(c)
        out[f"gamma_{c.key}"] = comparison_levels(c, batch.column(f"{col}_a"), batch.column(f"{col}_b"))
    return out


def value_columns(comparisons) -> list[str]:
    """The records' columns a list of comparisons reads (``value_column``), sorted."""
    return sorted({value_column(c) for c in comparisons})


def term_frequencies(values: pa.Array) -> np.ndarray:
    """Per record: the relative frequency of its value among the records' nonblank values.

    The term-frequency adjustment of a comparison (transforms/fellegi_sunter.py) weighs
    an exact agreement on value v by ``tf(v) = n_v / n``, with ``n_v`` the records holding
    v and ``n`` those holding any nonblank value [1]_ [2]_.

    Parameters
    ----------
    values : pyarrow.Array or pyarrow.ChunkedArray
        One column of every record (strings).

    Returns
    -------
    numpy.ndarray
        float64 per record: ``tf`` of its value, 0 for a blank or missing one.

    References
    ----------
    .. [1] W. E. Winkler, "Frequency-based matching in the Fellegi-Sunter model of record
       linkage", Proc. Section on Survey Research Methods, American Statistical
       Association, 1989; reissued as U.S. Census Bureau Research Report RR2000/06.
       https://www.census.gov/library/working-papers/2000/adrm/rr2000-06.html
    .. [2] Splink, term-frequency adjustments.
       https://moj-analytical-services.github.io/splink/

    Examples
    --------
    >>> import pyarrow as pa
    >>> term_frequencies(pa.array(["smith", "smith", "jones", None, " "])).tolist()
    [0.6666666666666666, 0.6666666666666666, 0.3333333333333333, 0.0, 0.0]
    """
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    blank = pc.fill_null(pc.equal(pc.utf8_trim(values, " "), ""), True).to_numpy(zero_copy_only=False)
    codes = pc.fill_null(pc.dictionary_encode(values).indices, 0).to_numpy()
    counts = np.bincount(codes[~blank], minlength=int(codes.max(initial=-1)) + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(blank, 0.0, counts[np.where(blank, 0, codes)] / max(int((~blank).sum()), 1))


def levels_schema(comparisons, keep: tuple[str, ...] = ()) -> pa.Schema:
    """The schema of pairs with their comparison levels (``level_batch``).

    Parameters
    ----------
    comparisons : list of schemas.config.Comparison
        The comparisons.
    keep : tuple of str, default ()
        Further int32 columns carried along (e.g. labels).

    Returns
    -------
    pyarrow.Schema
        ``KEYS`` (string), ``gamma_<name>`` (int8) per comparison, ``tf_<name>``
        (float64) per term-frequency adjusted one, then the ``keep`` columns (int32).

    Examples
    --------
    >>> from sigil.schemas.config import Comparison
    >>> c = Comparison.model_validate({"column": "surname", "term_frequency": True, "levels": [{"kind": "exact"}]})
    >>> levels_schema([c], keep=("label",)).names
    ['source_a', 'id_a', 'source_b', 'id_b', 'gamma_surname', 'tf_surname', 'label']
    """
    return pa.schema([pa.field(k, pa.string()) for k in KEYS]
                     + [pa.field(f"gamma_{c.key}", pa.int8()) for c in comparisons]
                     + [pa.field(f"tf_{c.key}", pa.float64()) for c in comparisons if c.term_frequency]
                     + [pa.field(k, pa.int32()) for k in keep])


def level_batch(batch: pa.RecordBatch, comparisons, keep: tuple[str, ...] = (),
                gammas: dict[str, np.ndarray] | None = None) -> pa.RecordBatch:
    """A batch of pairs with their comparison levels, in ``levels_schema``.

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        Pairs: ``KEYS``; both records' values (``<value column>_a``, ``_b``) unless
        ``gammas`` are given; ``tf_<name>`` per term-frequency adjusted comparison; and
        the ``keep`` columns.
    comparisons : list of schemas.config.Comparison
        The comparisons.
    keep : tuple of str, default ()
        Further int32 columns carried along.
    gammas : dict of str to numpy.ndarray, optional
        The levels, when computed already (as ``gamma_batch`` returns them).

    Returns
    -------
    pyarrow.RecordBatch
        ``levels_schema(comparisons, keep)``.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from sigil.schemas.config import Comparison
    >>> c = Comparison.model_validate({"column": "name", "levels": [
    ...     {"kind": "exact"}, {"kind": "levenshtein", "max": 1}]})
    >>> batch = pa.RecordBatch.from_pydict({"source_a": ["a", "a"], "id_a": ["1", "1"], "source_b": ["a", "a"],
    ...                                     "id_b": ["2", "3"], "name_norm_a": ["ann", "ann"],
    ...                                     "name_norm_b": ["anne", "bob"]})
    >>> level_batch(batch, [c]).column("gamma_name").to_pylist()
    [1, 2]
    """
    gammas = gamma_batch(batch, comparisons) if gammas is None else gammas
    cols = {k: batch.column(k) for k in KEYS}
    cols.update({k: pa.array(v, pa.int8()) for k, v in gammas.items()})
    cols.update({k: batch.column(k) for k in (*(f"tf_{c.key}" for c in comparisons if c.term_frequency), *keep)})
    return pa.RecordBatch.from_pydict(cols, schema=levels_schema(comparisons, keep))


def gamma_matrix(batch, names: list[str]) -> np.ndarray:
    """The levels of a batch of pairs as one matrix, the form the match models take.

    Parameters
    ----------
    batch : pyarrow.RecordBatch or pyarrow.Table
        Pairs with a ``gamma_<name>`` column per name.
    names : list of str
        The comparisons' names, in the model's order.

    Returns
    -------
    numpy.ndarray
        Shape ``(pairs, len(names))``, column k the levels of comparison ``names[k]``;
        shape ``(0, 0)`` without names.

    Examples
    --------
    >>> import pyarrow as pa
    >>> batch = pa.RecordBatch.from_pydict({"gamma_name": pa.array([0, 2], pa.int8()),
    ...                                     "gamma_dob": pa.array([-1, 1], pa.int8())})
    >>> gamma_matrix(batch, ["name", "dob"]).tolist()
    [[0, -1], [2, 1]]
    """
    return np.column_stack([batch.column(f"gamma_{n}").to_numpy() for n in names]) if names else np.zeros((0, 0))
