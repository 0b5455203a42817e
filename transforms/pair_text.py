"""Labelled pairs in the serialised-text format of the learned-matching literature, mapped
back to record ids.

DeepMatcher, Ditto and their successors publish training pairs as lines
``<left>\\t<right>\\t<label>``, each side a record serialised as
``COL <attribute> VAL <value> COL ... `` (lower-cased and re-tokenised: ``"24'"`` becomes
``"24 '"``, separators such as ``" - "`` are dropped) and without its id. To train or
evaluate on them by record id, each side is looked up by content: its canonical key, per
attribute the lower-cased value with only ``[a-z0-9]`` kept, absorbs both the
re-tokenisation and what the published tables lost (commas, non-ASCII characters). Which
side belongs to which source is decided per line from the keys found, never assumed.

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

import re
from collections.abc import Iterable, Mapping

_ALNUM = re.compile(r"[^a-z0-9]")


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


def canonical_key(record: Mapping, columns: list[str]) -> tuple[str, ...]:
    """A record's content key: per column, the lower-cased value with only ``[a-z0-9]`` kept.

    It absorbs the published pair files' re-tokenisation and lost characters, so a record
    and its serialised copy have equal keys.

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
    """
    return tuple(_ALNUM.sub("", str(record.get(c) or "").lower()) for c in columns)


def map_pairs(lines: Iterable[str], sources: Mapping[str, Iterable[Mapping]], columns: list[str],
              id_column: str = "id") -> tuple[list[tuple], list[tuple[int, str]]]:
    """Map serialised pair lines to ids of two sources.

    Each side of a line is looked up by its ``canonical_key`` in both sources; the
    orientation (which side is which source) is the one in which some side is found, and
    a line maps when exactly one orientation finds anything and it finds exactly one
    record on each side. Reasons otherwise: ``malformed line``, ``malformed record``,
    ``no side found in either source``, ``sides found in both orientations``,
    ``record not in <source>``, ``several <source> records have this text``.

    Parameters
    ----------
    lines : iterable of str
        Lines ``<left>\\t<right>\\t<label>`` (DeepMatcher/Ditto's pair files [1]_ [2]_),
        each side a ``serialize``d record, the label 0 or 1.
    sources : mapping
        Exactly two names -> collections of records (dicts with ``id_column`` and
        ``columns``), in order: first and second source.
    columns : list of str
        The serialised attributes.
    id_column : str, default "id"
        The records' id.

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
    """
    (first, rows_a), (second, rows_b) = sources.items()
    keys = {}
    for name, rows in ((first, rows_a), (second, rows_b)):
        index: dict[tuple, list[str]] = {}
        for row in rows:
            index.setdefault(canonical_key(row, columns), []).append(str(row[id_column]))
        keys[name] = index
    mapped, unmapped = [], []
    for number, line in enumerate(lines, start=1):
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 3 or fields[2].strip() not in ("0", "1"):
            unmapped.append((number, "malformed line: expected <record>\\t<record>\\t<0|1>"))
            continue
        try:
            left, right = (canonical_key(parse_record(f), columns) for f in fields[:2])
        except ValueError as err:
            unmapped.append((number, f"malformed record: {err}"))
            continue
        forward = (keys[first].get(left), keys[second].get(right))
        backward = (keys[first].get(right), keys[second].get(left))
        found = [pair for pair in (forward, backward) if any(pair)]
        if len(found) != 1:
            unmapped.append((number, "no side found in either source" if not found
                             else "sides found in both orientations"))
            continue
        ids_a, ids_b = found[0]
        missing = [name for name, ids in ((first, ids_a), (second, ids_b)) if not ids]
        ambiguous = [name for name, ids in ((first, ids_a), (second, ids_b)) if ids and len(ids) > 1]
        if missing or ambiguous:
            unmapped.append((number, "; ".join([f"record not in {m}" for m in missing]
                                               + [f"several {m} records have this text" for m in ambiguous])))
            continue
        mapped.append((number, ids_a[0], ids_b[0], int(fields[2])))
    return mapped, unmapped
