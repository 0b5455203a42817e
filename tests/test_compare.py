"""Comparison levels against a slow, obviously correct per-pair reference."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import DamerauLevenshtein, Jaro, JaroWinkler, Levenshtein

from sigil.schemas.config import Comparison
from sigil.transforms.compare import NULL_LEVEL, comparison_levels, word_jaccard

LEVELS = [
    {"kind": "exact"},
    {"kind": "jaro_winkler", "min": 0.9},
    {"kind": "jaro", "min": 0.8},
    {"kind": "levenshtein", "max": 1},
    {"kind": "damerau_levenshtein", "max": 2},
    {"kind": "levenshtein_ratio", "min": 0.5},
    {"kind": "jaccard", "min": 0.3},
    {"kind": "numeric_diff", "max": 0.1},
    {"kind": "date_days", "max": 40},
]


def _date(s):
    try:
        return datetime.strptime(s, "%Y%m%d")
    except ValueError:
        return None


def _number(s):
    try:
        return float(s)
    except ValueError:
        return None


def holds(level: dict, a: str, b: str) -> bool:
    kind = level["kind"]
    if kind == "exact":
        return a == b
    if kind == "jaro_winkler":
        return JaroWinkler.normalized_similarity(a, b) >= level["min"]
    if kind == "jaro":
        return Jaro.normalized_similarity(a, b) >= level["min"]
    if kind == "levenshtein":
        return Levenshtein.distance(a, b) <= level["max"]
    if kind == "damerau_levenshtein":
        return DamerauLevenshtein.distance(a, b) <= level["max"]
    if kind == "levenshtein_ratio":
        return Levenshtein.normalized_similarity(a, b) >= level["min"]
    if kind == "jaccard":
        x, y = set(a.split()), set(b.split())
        return (len(x & y) / len(x | y) if x | y else 0.0) >= level["min"]
    if kind == "numeric_diff":
        x, y = _number(a), _number(b)
        if x is None or y is None:
            return False
        scale = max(abs(x), abs(y))
        return (0.0 if scale == 0 else abs(x - y) / scale) <= level["max"]
    x, y = _date(a), _date(b)
    return x is not None and y is not None and abs((x - y).days) <= level["max"]


def reference(levels: list[dict], a, b) -> int:
    if a is None or b is None or not a.strip() or not b.strip():
        return NULL_LEVEL
    return next((i for i, level in enumerate(levels) if holds(level, a, b)), len(levels))


words = st.sampled_from(["anna", "ana", "anne", "smith", "smyth", "st", "12", "13", "120", "19870101",
                         "19870115", "19880101", "0", "", " ", "main road", "road main", "1e3"])
values = st.one_of(st.none(), words, st.lists(words, max_size=3).map(" ".join))


@settings(max_examples=150)
@given(pairs=st.lists(st.tuples(values, values), min_size=1, max_size=40),
       order=st.permutations(range(len(LEVELS))), n_levels=st.integers(1, len(LEVELS)))
def test_levels_match_reference(pairs, order, n_levels):
    levels = [LEVELS[i] for i in order[:n_levels]]
    comparison = Comparison.model_validate({"column": "x", "levels": levels})
    a, b = (pa.array([p[i] for p in pairs], pa.string()) for i in (0, 1))
    got = comparison_levels(comparison, a, b).tolist()
    assert got == [reference(levels, x, y) for x, y in pairs]


def test_levels_by_hand():
    c = Comparison.model_validate({"column": "dob", "levels": [
        {"kind": "exact"}, {"kind": "damerau_levenshtein", "max": 1}, {"kind": "date_days", "max": 366}]})
    a = pa.array(["19870101", "19870101", "19870101", "19870101", None, "19870101"])
    b = pa.array(["19870101", "19870110", "19871231", "19900101", "19870101", "  "])
    assert comparison_levels(c, a, b).tolist() == [0, 1, 2, 3, -1, -1]
    assert c.labels() == ["exact", "damerau_levenshtein<=1", "date_days<=366", "else"]


def test_a_similarity_at_the_bound_holds():
    # Jaro-Winkler of these is 0.8 (to float64 rounding): the shared score, cut off just
    # under the loosest bound, must still place them in the 0.8 level
    c = Comparison.model_validate({"column": "name", "levels": [
        {"kind": "exact"}, {"kind": "jaro_winkler", "min": 0.92}, {"kind": "jaro_winkler", "min": 0.8}]})
    a, b = pa.array(["joey", "ki", "anna", "x"]), pa.array(["joseph", "kimberly", "anna", "yz"])
    assert comparison_levels(c, a, b).tolist() == [2, 2, 0, 3]


def test_word_jaccard():
    got = word_jaccard(pa.array(["a b c", "x", "", None]), pa.array(["c b d", "x", "", "y"]))
    assert got.tolist() == pytest.approx([0.5, 1.0, 0.0, 0.0])


def test_bad_levels_are_rejected():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="takes min"):
        Comparison.model_validate({"column": "x", "levels": [{"kind": "jaro_winkler", "max": 2}]})
    with pytest.raises(ValidationError, match="term_frequency adjusts an exact first level"):
        Comparison.model_validate({"column": "x", "term_frequency": True,
                                   "levels": [{"kind": "jaro_winkler", "min": 0.9}]})


def test_codes_keep_model_numbers_only():
    from sigil.transforms.compare import codes

    got = codes(pa.array(["sony turntable pslx350h belt", "no codes here", None, "avr1709 x1 12345 ab12"]))
    assert got.to_pylist() == ["pslx350h", None, None, "avr1709 12345 ab12"]
    c = Comparison.model_validate({"column": "name", "extract": "codes", "levels": [{"kind": "exact"}]})
    levels = comparison_levels(c, pa.array(["lg lds4821ww white", "lg dishwasher", "a 1234"]),
                               pa.array(["lds4821ww lg", "lg lds4821ww", "b 9999"]))
    assert levels.tolist() == [0, -1, 1]  # no code on one side is no evidence
