"""Declarative match rules: a custom notion of "match" stated over attributes.

A rule is a tree of ``all`` / ``any`` / ``not`` over conditions; a condition applies one
comparison level (the predicates of transforms/compare.py: exact, Jaro-Winkler,
Levenshtein, token Jaccard, numeric relative difference, date distance) to one attribute
of both records, optionally after extracting a part of the value: its first word (often
the brand) or its codes (model and part numbers). A condition with a value missing on
either side does not hold. Rules arrive as configuration (schemas.config.MatchRule) and
are interpreted here; nothing in them is ever evaluated as code.

Example: same brand and model numbers within one edit, or prices within 10 %::

    any:
      - all:
          - {column: name, extract: first_word, kind: exact}
          - {column: name, extract: codes, kind: levenshtein, max: 1}
      - {column: price, kind: numeric_diff, max: 0.1}
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sigil.transforms.compare import _strings, codes, level_holds, level_scores, missing


def rule_columns(rule) -> list[str]:
    """The record columns a rule reads (``<attribute>`` or ``<attribute>_norm``), sorted.

    Parameters
    ----------
    rule : schemas.config.MatchRule
        A condition, or ``all`` / ``any`` / ``not`` of rules.

    Returns
    -------
    list of str
        Distinct column names (a single condition's one column).

    Examples
    --------
    >>> from sigil.schemas.config import MatchRule
    >>> rule = MatchRule.model_validate({"any": [
    ...     {"all": [{"column": "name", "extract": "first_word", "kind": "exact"},
    ...              {"column": "name", "extract": "codes", "kind": "levenshtein", "max": 1}]},
    ...     {"column": "price", "kind": "numeric_diff", "max": 0.1}]})
    >>> rule_columns(rule)
    ['name_norm', 'price_norm']
    """
    if rule.condition is not None:
        return [rule.condition.value_column()]
    return sorted({c for child in rule.children() for c in rule_columns(child)})


def extract(values: pa.Array, how: str) -> pa.Array:
    """The part of each value a condition compares: all of it, its first word, or its codes.

    Parameters
    ----------
    values : pyarrow.Array
        Strings.
    how : {"value", "first_word", "codes"}
        ``first_word``: the first space-separated word after trimming (often the brand);
        ``codes``: the code-like words, model and part numbers (``compare.codes``: words
        of 4+ characters with a digit, joined by a space); anything else: the values.

    Returns
    -------
    pyarrow.Array
        Strings; null where the part is missing or empty.

    Examples
    --------
    >>> import pyarrow as pa
    >>> names = pa.array(["sony kdl40v4100 tv", "lg tv", None])
    >>> extract(names, "first_word").to_pylist(), extract(names, "codes").to_pylist()
    (['sony', 'lg', None], ['kdl40v4100', None, None])
    """
    if how == "codes":
        return codes(values)
    if how == "first_word":
        first = pc.list_element(pc.split_pattern(pc.utf8_trim_whitespace(pc.cast(values, pa.string())), " "), 0)
        return pc.if_else(pc.equal(first, ""), pa.scalar(None, pa.string()), first)
    return values


def condition_holds(condition, a: pa.Array, b: pa.Array) -> np.ndarray:
    """Where a condition holds for the pairs ``(a[i], b[i])``.

    The condition's ``extract`` is applied to both sides, then its comparison level
    (transforms/compare.py) decides; a pair with a value missing (null or blank) on either
    side does not hold.

    Parameters
    ----------
    condition : schemas.config.RuleCondition
        A comparison level (``kind`` with ``min`` or ``max``) and ``extract``.
    a, b : pyarrow.Array or pyarrow.ChunkedArray
        The two records' values, one pair per row.

    Returns
    -------
    numpy.ndarray
        bool per pair.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from sigil.schemas.config import RuleCondition
    >>> within_10_percent = RuleCondition(column="price", kind="numeric_diff", max=0.1)
    >>> condition_holds(within_10_percent, pa.array(["100", "100", None]), pa.array(["109", "112", "5"])).tolist()
    [True, False, False]
    """
    a, b = (x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x for x in (a, b))
    a, b = extract(a, condition.extract), extract(b, condition.extract)
    out = np.zeros(len(a), dtype=bool)
    rows = np.flatnonzero(~(missing(a) | missing(b)))
    if len(rows):
        a, b = a.take(pa.array(rows)), b.take(pa.array(rows))
        out[rows] = level_holds(condition, level_scores(condition.kind, [condition], a, b, _strings(a), _strings(b)))
    return out


def rule_holds(rule, batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """Where a rule holds for each pair of a batch.

    ``all`` holds where every child holds (everywhere when it has none), ``any`` where
    some child holds (nowhere when it has none), ``not`` where its child does not.

    Parameters
    ----------
    rule : schemas.config.MatchRule
        A condition, or ``all`` / ``any`` / ``not`` of rules.
    batch : pyarrow.RecordBatch or pyarrow.Table
        Pairs, with ``<column>_a`` and ``<column>_b`` for every column in
        ``rule_columns(rule)``.

    Returns
    -------
    numpy.ndarray
        bool per pair.

    Examples
    --------
    Same brand and model numbers within one edit, or prices within 10 %:

    >>> import pyarrow as pa
    >>> from sigil.schemas.config import MatchRule
    >>> rule = MatchRule.model_validate({"any": [
    ...     {"all": [{"column": "name", "extract": "first_word", "kind": "exact"},
    ...              {"column": "name", "extract": "codes", "kind": "levenshtein", "max": 1}]},
    ...     {"column": "price", "kind": "numeric_diff", "max": 0.1}]})
    >>> pairs = pa.table({"name_norm_a": ["sony kdl40v4100 tv", "lg ab1234"],
    ...                   "name_norm_b": ["sony kdl40v4101", "lg ab1299"],
    ...                   "price_norm_a": [None, "100"], "price_norm_b": ["1", "200"]})
    >>> rule_holds(rule, pairs).tolist()
    [True, False]
    """
    if rule.condition is not None:
        col = rule.condition.value_column()
        return condition_holds(rule.condition, batch.column(f"{col}_a"), batch.column(f"{col}_b"))
    if rule.all is not None:
        return np.logical_and.reduce([rule_holds(r, batch) for r in rule.all] or [np.ones(batch.num_rows, bool)])
    if rule.any is not None:
        return np.logical_or.reduce([rule_holds(r, batch) for r in rule.any] or [np.zeros(batch.num_rows, bool)])
    return ~rule_holds(rule.not_, batch)
