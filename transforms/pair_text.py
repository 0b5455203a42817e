"""Labelled pairs in the serialised-text format of the learned-matching literature, mapped
back to record ids.

DeepMatcher, Ditto and their successors publish training pairs as lines
``<left>\\t<right>\\t<label>``, each side a record serialised as
``COL <attribute> VAL <value> COL ... `` (lower-cased and re-tokenised: ``"24'"`` becomes
``"24 '"``, separators such as ``" - "`` are dropped) and without its id. To train or
evaluate on them by record id, each side is looked up by content: its canonical key, per
attribute the value with HTML entities decoded, accents folded, decimals in their shortest
form (``1999.0`` -> ``1999``), lower-cased, only ``[a-z0-9]`` kept, absorbs the
re-tokenisation and what real exports change (commas, entities, non-ASCII characters). A
side whose key no record has may map to the one record of its source most similar to it
(``nearest_matches``, above a floor). Which side belongs to which source is decided per
line from the keys found, never assumed.

On Abt-Buy (../shared/data/er/abt_buy) the key is unique in both tables and never
shared between them; 97.8-98.4 % of the lines of train/valid/test map, and every line that
does not names a record missing from the tables.

Example
-------
>>> serialize({"name": "Sony DVD-R", "price": None}, ["name", "price"])
'COL name VAL Sony DVD-R COL price VAL  '
>>> canonical_key(parse_record("COL name VAL sony dvd-r COL price VAL  "), ["name", "price"])
('sonydvdr', '')
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping

import numpy as np

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_DECIMAL = re.compile(r"\d+\.\d+")


def serialize(record: Mapping, columns: list[str]) -> str:
    """A record as Ditto's serialised text [1]_: ``COL <c> VAL <value> `` for every column.

    Parameters
    ----------
    record : mapping
        Attribute name -> value (a missing or None value is empty).
    columns : list of str
        Columns serialised, in order.

    Returns
    -------
    str
        Each column's ``COL <c> VAL <value> ``, concatenated (note the trailing space).

    References
    ----------
    .. [1] Y. Li, J. Li, Y. Suhara, A. Doan, W.-C. Tan, "Deep Entity Matching with Pre-Trained
       Language Models", PVLDB 14(1), 2020. arXiv:2004.00584

    Examples
    --------
    >>> serialize({"name": "Sony DVD-R", "price": None}, ["name", "price"])
    'COL name VAL Sony DVD-R COL price VAL  '
    """
    return "".join(f"COL {c} VAL {'' if record.get(c) is None else record[c]} " for c in columns)


def parse_record(text: str) -> dict[str, str]:
    """A serialised record (``serialize``'s format) back to ``{attribute: value}``.

    Parameters
    ----------
    text : str
        ``COL <attribute> VAL <value> ...``; attribute names have no white space.

    Returns
    -------
    dict
        Attribute -> value, values stripped of surrounding white space.

    Raises
    ------
    ValueError
        When ``text`` does not start with ``COL <attribute> VAL``.

    References
    ----------
    .. [1] Y. Li, J. Li, Y. Suhara, A. Doan, W.-C. Tan, "Deep Entity Matching with Pre-Trained
       Language Models", PVLDB 14(1), 2020. arXiv:2004.00584

    Examples
    --------
    >>> parse_record("COL name VAL sony dvd-r COL price VAL 24 ' ")
    {'name': 'sony dvd-r', 'price': "24 '"}
    """
    parts = re.split(r"(?:^|\s)COL (\S+) VAL ", " " + text.rstrip("\n"))
    if len(parts) < 3 or parts[0].strip():
        raise ValueError(f"not a serialised record ('COL <attribute> VAL <value> ...'): {text[:60]!r}")
    return {name: value.strip() for name, value in zip(parts[1::2], parts[2::2])}


def normal_text(value) -> str:
    """A value as the keys compare it: HTML entities decoded, accents folded to ASCII,
    decimals in their shortest form, lower-cased, runs of other characters one space.

    Examples
    --------
    >>> normal_text("Caf&eacute; &mdash; 1,999.00 USD")
    'cafe 1 999 usd'
    """
    text = unicodedata.normalize("NFKD", html.unescape(str(value))).encode("ascii", "ignore").decode()
    text = _DECIMAL.sub(lambda m: m.group().rstrip("0").rstrip("."), text)
    return _NOT_ALNUM.sub(" ", text.lower()).strip()


def canonical_key(record: Mapping, columns: list[str]) -> tuple[str, ...]:
    """A record's content key: per column, its ``normal_text`` without spaces.

    It absorbs the published pair files' re-tokenisation and lost characters, and the
    forms real exports differ in (``1999.0`` and ``1999``, ``&mdash;`` and ``—``), so a
    record and its serialised copy have equal keys.

    Parameters
    ----------
    record : mapping
        Attribute name -> value (None is empty).
    columns : list of str
        Columns of the key, in order.

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> canonical_key({"name": "Sony DVD-R, 24'", "price": None}, ["name", "price"])
    ('sonydvdr24', '')
    >>> canonical_key({"year": "1999.0", "title": "A &amp; B"}, ["year", "title"])
    ('1999', 'ab')
    """
    return tuple(normal_text(record.get(c) or "").replace(" ", "") for c in columns)


def record_text(record: Mapping, columns: list[str]) -> str:
    """The text ``nearest_matches`` compares: the columns' ``normal_text``, joined."""
    return " ".join(normal_text(record.get(c) or "") for c in columns)


def nearest_matches(queries: list[str], texts: list[str], floor: float) -> tuple[np.ndarray, np.ndarray]:
    """For each query, its two most similar texts at or above ``floor``.

    Similarity is rapidfuzz's token-sort ratio / 100 (the Indel similarity of the sorted
    tokens), so word order and a few changed characters cost little. Called on batches of
    a source's records, the best two per batch combine into the best two overall: a query
    maps when its best is unique.

    Parameters
    ----------
    queries, texts : list of str
        ``record_text``s of the sides to place and of candidate records.
    floor : float
        The least similarity kept, in [0, 1].

    Returns
    -------
    index : ndarray of int64, shape (len(queries), 2)
        Positions in ``texts`` of the best and second best; -1 where none reaches the floor.
    score : ndarray of float64, shape (len(queries), 2)
        Their similarities (0 where none).

    Examples
    --------
    >>> index, score = nearest_matches(["sony tv 40"], ["sony 40 tv", "lg tv", "sony tv 42"], 0.8)
    >>> index.tolist(), score.round(2).tolist()
    ([[0, 2]], [[1.0, 0.9]])
    """
    from rapidfuzz import fuzz, process

    index = np.full((len(queries), 2), -1, dtype=np.int64)
    score = np.zeros((len(queries), 2))
    if not queries or not texts:
        return index, score
    sims = process.cdist(queries, texts, scorer=fuzz.token_sort_ratio, score_cutoff=floor * 100, dtype=np.float32)
    top = np.argsort(-sims, axis=1, kind="stable")[:, :2]
    best = np.take_along_axis(sims, top, axis=1) / 100
    keep = best >= floor
    index[:, :top.shape[1]] = np.where(keep, top, -1)
    score[:, :top.shape[1]] = np.where(keep, best, 0)
    return index, score


def map_pairs(lines: Iterable[str], sources: Mapping[str, Iterable[Mapping]], columns: list[str],
              id_column: str = "id", nearest: Mapping[tuple[str, str], str] | None = None,
              ) -> tuple[list[tuple], list[tuple[int, str]]]:
    """Map serialised pair lines to ids of two sources.

    Each side of a line is looked up by its ``canonical_key`` in both sources; the
    orientation (which side is which source) is the one in which some side is found, and
    a line maps when exactly one orientation finds anything and it finds exactly one
    record on each side. A side no record's key matches is then looked up in ``nearest``
    (its source and ``record_text`` -> the one record most similar to it), in the
    orientation its other side found or, when neither side has a key match, in the one
    orientation where both sides have a nearest record. Where both orientations find a
    side (a record with the same text in both sources), the one that finds both sides
    decides, or both when they give the same ids. Reasons otherwise: ``malformed
    line``, ``malformed record``, ``no side found in either source``, ``sides found in both
    orientations``, ``record not in <source>``, ``several <source> records have this text``.

    Parameters
    ----------
    lines : iterable of str
        Lines ``<left>\\t<right>\\t<label>`` (DeepMatcher/Ditto's pair files [1]_ [2]_),
        each side a ``serialize``d record, the label 0 or 1.
    sources : mapping
        Exactly two names -> collections of records (dicts with ``id_column`` and
        ``columns``), in order: first and second source.
    columns : list of str
        The serialised attributes the sides are matched on (others are ignored).
    id_column : str, default "id"
        The records' id.
    nearest : mapping, optional
        ``(source name, record_text of a side)`` -> id of its nearest record
        (``nearest_matches``); by default key matches only.

    Returns
    -------
    mapped : list of tuple
        ``(line, id in the first source, id in the second, label)``; ids as strings.
    unmapped : list of tuple
        ``(line, reason)``. Lines are 1-based.

    References
    ----------
    .. [1] Y. Li, J. Li, Y. Suhara, A. Doan, W.-C. Tan, "Deep Entity Matching with Pre-Trained
       Language Models", PVLDB 14(1), 2020. arXiv:2004.00584
    .. [2] S. Mudgal, H. Li, T. Rekatsinas, A. Doan, Y. Park, G. Krishnan, R. Deep,
       E. Arcaute, V. Raghavendra, "Deep Learning for Entity Matching: A Design Space
       Exploration", SIGMOD 2018. doi:10.1145/3183713.3196926

    Examples
    --------
    >>> sources = {"abt": [{"id": 1, "name": "Sony A-1 TV"}], "buy": [{"id": "b7", "name": "sony a1"}]}
    >>> lines = ["COL name VAL sony a1 \\tCOL name VAL sony a-1 tv \\t1",
    ...          "COL name VAL lg \\tCOL name VAL sony a1 \\t0"]
    >>> map_pairs(lines, sources, ["name"])
    ([(1, '1', 'b7', 1)], [(2, 'record not in abt')])
    >>> map_pairs(lines, sources, ["name"], nearest={("abt", "lg"): "1"})[0]
    [(1, '1', 'b7', 1), (2, '1', 'b7', 0)]
    """
    (first, rows_a), (second, rows_b) = sources.items()
    keys = {}
    for name, rows in ((first, rows_a), (second, rows_b)):
        index: dict[tuple, list[str]] = {}
        for row in rows:
            index.setdefault(canonical_key(row, columns), []).append(str(row[id_column]))
        keys[name] = index
    nearest = nearest or {}
    mapped, unmapped = [], []
    for number, line in enumerate(lines, start=1):
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 3 or fields[2].strip() not in ("0", "1"):
            unmapped.append((number, "malformed line: expected <record>\\t<record>\\t<0|1>"))
            continue
        try:
            left, right = (parse_record(f) for f in fields[:2])
        except ValueError as err:
            unmapped.append((number, f"malformed record: {err}"))
            continue
        ids, reason = _side_ids(keys, nearest, first, second, left, right, columns)
        if reason:
            unmapped.append((number, reason))
        else:
            mapped.append((number, ids[0], ids[1], int(fields[2])))
    return mapped, unmapped


def _side_ids(keys, nearest, first, second, left, right, columns) -> tuple[tuple | None, str | None]:
    """The ids of one line's sides (first source's, second's), or why there are none."""
    exact = {(s, side): keys[s].get(canonical_key(record, columns))
             for s in (first, second) for side, record in (("l", left), ("r", right))}
    close = {(s, side): nearest.get((s, record_text(record, columns)))
             for s in (first, second) for side, record in (("l", left), ("r", right))}
    orientations = (((first, "l"), (second, "r")), ((first, "r"), (second, "l")))
    found = [o for o in orientations if exact[o[0]] or exact[o[1]]]
    if len(found) > 1:  # records with the same text in both sources: decided where both sides are found
        complete = [o for o in found if exact[o[0]] and exact[o[1]]]
        if len({tuple(map(tuple, (exact[o[0]], exact[o[1]]))) for o in complete}) != 1:
            return None, "sides found in both orientations"
        found = complete[:1]
    if not found:  # no key match: the orientation where both sides have a nearest record
        found = [o for o in orientations if close[o[0]] and close[o[1]]]
        if len(found) != 1:
            return None, "no side found in either source"
    sides = found[0]
    ids = [exact[k] or ([close[k]] if close[k] else None) for k in sides]
    missing = [k[0] for k, i in zip(sides, ids) if not i]
    ambiguous = [k[0] for k, i in zip(sides, ids) if i and len(i) > 1]
    if missing or ambiguous:
        return None, "; ".join([f"record not in {m}" for m in missing]
                               + [f"several {m} records have this text" for m in ambiguous])
    return (ids[0][0], ids[1][0]), None
