"""Rule blocking over records held in memory: each rule's key as integer codes, and the
candidate pairs of a slice of the keys.

A rule pairs two records when every part of its key is present and equal on both (a
part is an attribute or a slice of one, ``date_of_birth[0:4]``); a cross rule pairs x
and y when x's left key equals y's right key. A key shared by more than ``max_size``
records would emit the square of that many pairs, so it is skipped and reported.

Every pair is emitted by the first rule that finds it only, as Splink's blocking rules
do: a later rule drops the pairs an earlier rule already paired (``earlier_rules``), so
the rules' pairs need no distinct over all of them. The work splits by key: slice t of T
holds the keys whose code is t modulo T, so T tasks can each take one slice.

Example
-------
>>> import pyarrow as pa
>>> table = pa.table({"name_norm": ["ann", "ann", "bob", None], "city_norm": ["x", "x", "x", "x"]})
>>> keys = RuleKeys(table, [["name"], ["city"]], max_size=10)
>>> x, y, skipped = keys.pairs(0, 1, np.zeros(4, np.int32))
>>> sorted(zip(x.tolist(), y.tolist()))  # (0, 1) by the name rule only
[(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sigil.schemas.datasets import NORM_SUFFIX
from sigil.transforms.lsh import partition_buckets
from sigil.transforms.xxhash import xxhash64

MISSING = -1  # the code of a key with a part missing


def part_values(table: pa.Table, part: str) -> pa.Array:
    """A rule part's normalised value per record.

    Parameters
    ----------
    table : pyarrow.Table
        Records with ``<column>_norm`` for the part's column.
    part : str
        ``column`` or ``column[start:stop]``, a slice of code units (either end optional).

    Returns
    -------
    pyarrow.Array
        Strings; null where missing or blank (after slicing).

    Examples
    --------
    >>> import pyarrow as pa
    >>> table = pa.table({"dob_norm": ["19800102", "1980", ""]})
    >>> part_values(table, "dob[0:4]").to_pylist()
    ['1980', '1980', None]
    """
    name, _, cut = part.partition("[")
    col = table.column(name + NORM_SUFFIX).combine_chunks()
    if cut:
        start, stop = (int(x) if x else None for x in cut.rstrip("]").split(":"))
        col = pc.utf8_slice_codeunits(col, start or 0, stop if stop is not None else 1 << 30)
    return pc.if_else(pc.equal(pc.utf8_trim(col, " "), ""), pa.scalar(None, pa.string()), col)


def key_strings(table: pa.Table, parts: list[str]) -> pa.Array:
    """A rule's key per record, as a string: its parts' values joined by ``\\x1f``.

    Parameters
    ----------
    table : pyarrow.Table
        Records with ``<column>_norm`` for every part's column.
    parts : list of str
        The rule's parts (see ``part_values``).

    Returns
    -------
    pyarrow.Array
        Strings; null where a part is missing.

    Examples
    --------
    >>> import pyarrow as pa
    >>> table = pa.table({"name_norm": ["ann", None], "dob_norm": ["19800102", "19800102"]})
    >>> key_strings(table, ["name", "dob[0:4]"]).to_pylist()
    ['ann\\x1f1980', None]
    """
    values = [part_values(table, part) for part in parts]
    return values[0] if len(values) == 1 else pc.binary_join_element_wise(*values, "\x1f")


def encode(*arrays: pa.Array) -> list[np.ndarray]:
    """Integer codes of the values of several arrays, from one shared dictionary.

    Parameters
    ----------
    *arrays : pyarrow.Array
        Arrays of one type.

    Returns
    -------
    list of numpy.ndarray
        int64 codes, one array per input: equal values get equal codes across all the
        arrays (0.. in order of first appearance), null gets ``MISSING``.

    Examples
    --------
    >>> import pyarrow as pa
    >>> [c.tolist() for c in encode(pa.array(["a", "b", None]), pa.array(["b", "c"]))]
    [[0, 1, -1], [1, 2]]
    """
    encoded = pc.dictionary_encode(pa.concat_arrays(arrays))
    codes = pc.fill_null(encoded.indices, MISSING).to_numpy().astype(np.int64)
    return np.split(codes, np.cumsum([len(x) for x in arrays])[:-1])


def combined(positions: list[np.ndarray]) -> np.ndarray:
    """Dense codes of multi-part keys, from the codes of their parts; no key strings built.

    Parts are combined as mixed-radix numbers, ``code * width + part``, renumbered densely
    whenever the product could overflow int64.

    Parameters
    ----------
    positions : list of numpy.ndarray
        int64 codes (>= 0, or ``MISSING``) of the part at each position of the key, one
        array per position, all of one length.

    Returns
    -------
    numpy.ndarray
        int64 key codes: equal exactly where every part is equal, ``MISSING`` where a part
        is missing; 0..k-1 for k distinct keys when there are several positions (a single
        position's codes are returned as they are).

    Examples
    --------
    >>> import numpy as np
    >>> combined([np.array([0, 0, 1, -1]), np.array([5, 6, 5, 5])]).tolist()
    [0, 1, 2, -1]
    """
    codes, size = positions[0], int(positions[0].max(initial=0)) + 1
    for part in positions[1:]:
        width = int(part.max(initial=0)) + 1
        if size * width >= 1 << 62:  # dense again so the product stays in an int64
            codes, size = _dense(codes)
        codes = np.where((codes == MISSING) | (part == MISSING), MISSING, codes * width + part)
        size *= width
    return _dense(codes)[0] if len(positions) > 1 else codes


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes renumbered 0..k-1 (``MISSING`` kept), and k."""
    present = codes != MISSING
    dense, uniques = pd.factorize(codes[present])
    out = np.full(len(codes), MISSING, np.int64)
    out[present] = dense
    return out, max(len(uniques), 1)


class RuleKeys:
    """Every rule's key codes for the records of ``table``, and the pairs they block.

    Holds ``left`` and ``right`` key codes per rule (the same array for a plain rule) and
    the number of records per key (of the left side). A part's values and codes are
    computed once for all the rules. A pair is emitted by the first rule that finds it
    only, as Splink's blocking rules [1]_ are applied.

    Parameters
    ----------
    table : pyarrow.Table
        The records (rows 0..n-1) with ``<column>_norm`` for every part's column.
    rules : list
        Each a list of parts (records pair when every part is present and equal on both)
        or a ``schemas.config.CrossRule`` (x and y pair when x's ``left`` key equals y's
        ``right`` key; the two keys' parts share dictionaries position by position).
    max_size : int
        Largest key (records on its left side) whose pairs are emitted; larger ones are
        skipped and reported by ``pairs``.

    References
    ----------
    .. [1] Splink, blocking rules. https://moj-analytical-services.github.io/splink/

    Examples
    --------
    >>> import numpy as np
    >>> import pyarrow as pa
    >>> from sigil.schemas.config import CrossRule
    >>> table = pa.table({"given_norm": ["ann", "lee", "bo"], "surname_norm": ["lee", "ann", "bo"]})
    >>> swapped = CrossRule(left=["given", "surname"], right=["surname", "given"])
    >>> x, y, skipped = RuleKeys(table, [swapped], max_size=10).pairs(0, 1, np.zeros(3, np.int32))
    >>> x.tolist(), y.tolist()  # names swapped; "bo bo" equals its own swap but pairs with no one
    ([0], [1])
    """

    def __init__(self, table: pa.Table, rules: list, max_size: int):
        self.table, self.max_size, self.rules = table, max_size, []
        values, codes = {}, {}
        for rule in rules:
            for part in {*rule} if isinstance(rule, list) else {*rule.left, *rule.right}:
                if part not in values:
                    values[part] = part_values(table, part)
            if isinstance(rule, list):
                for part in rule:
                    if part not in codes:
                        (codes[part],) = encode(values[part])
                left = right = combined([codes[part] for part in rule])
            else:  # a part of the left key and its counterpart on the right share one dictionary
                both = combined([np.concatenate(encode(values[x], values[y])) for x, y in zip(rule.left, rule.right)])
                left, right = np.split(both, [table.num_rows])
            self.rules.append((left, right, np.bincount(left[left != MISSING]),
                               rule if isinstance(rule, list) else rule.left))

    def generated(self, r: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether rule ``r`` pairs records ``x[i]`` and ``y[i]`` (either way round).

        Parameters
        ----------
        r : int
            Index of the rule.
        x, y : numpy.ndarray
            Row indices of the pairs.

        Returns
        -------
        numpy.ndarray
            bool per pair; False where the key is larger than ``max_size``.

        Examples
        --------
        >>> import numpy as np
        >>> import pyarrow as pa
        >>> keys = RuleKeys(pa.table({"name_norm": ["ann", "ann", "bob"]}), [["name"]], max_size=10)
        >>> keys.generated(0, np.array([0, 0]), np.array([1, 2])).tolist()
        [True, False]
        """
        left, right, sizes, _ = self.rules[r]
        out = np.zeros(len(x), bool)
        for a, b in ((x, y), (y, x)) if left is not right else ((x, y),):
            k = left[a]
            out |= (k != MISSING) & (k == right[b]) & (sizes[np.maximum(k, 0)] <= self.max_size)
        return out

    def pairs(self, t: int, slices: int, sources: np.ndarray, cross_only: bool = False):
        """The pairs of the keys of one slice, each from the first rule that finds it.

        Slice t of T holds the keys whose code is t modulo T, so T tasks can each take one.

        Parameters
        ----------
        t : int
            The slice, ``0 <= t < slices``.
        slices : int
            Number of slices.
        sources : numpy.ndarray
            Source index of each record.
        cross_only : bool, default False
            Only pairs of records of different sources (link mode).

        Returns
        -------
        x, y : numpy.ndarray
            int64 row indices of the pairs, ``x < y``, rule by rule.
        skipped : list of tuple
            ``(rule, key hash, size)`` of each key of the slice skipped for its size; the
            hash is Spark's ``xxhash64`` of the key string (``key_strings``).

        Examples
        --------
        >>> import numpy as np
        >>> import pyarrow as pa
        >>> table = pa.table({"name_norm": ["ann", "ann", "bob", None], "city_norm": ["x", "x", "x", "x"]})
        >>> x, y, skipped = RuleKeys(table, [["name"], ["city"]], max_size=3).pairs(0, 1, np.zeros(4, np.int32))
        >>> x.tolist(), y.tolist(), [(rule, size) for rule, _, size in skipped]  # city "x" has 4 records
        ([0], [1], [(1, 4)])
        """
        xs, ys, skipped = [], [], []
        for r, (left, right, sizes, parts) in enumerate(self.rules):
            x, y = (self._equal_pairs if left is right else self._cross_pairs)(left, right, sizes, t, slices,
                                                                              sources, cross_only)
            keep = np.ones(len(x), bool)
            for earlier in range(r):
                keep &= ~self.generated(earlier, x, y)
            xs.append(x[keep])
            ys.append(y[keep])
            big = np.flatnonzero((sizes > self.max_size) & (np.arange(len(sizes)) % slices == t))
            if len(big):  # the key strings of a record of each, hashed as Spark hashes them
                rows = pa.array([np.flatnonzero(left == code)[0] for code in big])
                hashes = xxhash64([key_strings(self.table.take(rows), parts)])
                skipped += [(r, int(h), int(s)) for h, s in zip(hashes, sizes[big])]
        return np.concatenate(xs), np.concatenate(ys), skipped

    def _equal_pairs(self, codes, _, sizes, t, slices, sources, cross_only):
        rows = np.flatnonzero((codes != MISSING) & (codes % slices == t))
        out = partition_buckets(np.zeros(len(rows), np.int32), codes[rows], np.zeros(len(rows), np.int64),
                                rows.astype(np.int64), sources[rows], self.max_size, "skip", cross_only)
        return out["pairs"]

    def _cross_pairs(self, left, right, sizes, t, slices, sources, cross_only):
        """x's left key equals y's right key: for each left row, the right rows of its key."""
        lrows = np.flatnonzero((left != MISSING) & (left % slices == t) & (sizes[np.maximum(left, 0)] <= self.max_size))
        rrows = np.flatnonzero((right != MISSING) & (right % slices == t))
        rrows = rrows[np.argsort(right[rrows], kind="stable")]
        rkeys = right[rrows]
        lo = np.searchsorted(rkeys, left[lrows], "left")
        counts = np.searchsorted(rkeys, left[lrows], "right") - lo
        x = np.repeat(lrows, counts)
        y = rrows[np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())]
        # a pair found both ways comes from the smaller of its two keys: once, in one slice
        back = left[y]
        twice = (back != MISSING) & (back == right[x]) & (sizes[np.maximum(back, 0)] <= self.max_size)
        keep = (x != y) & ~(twice & (back < left[x])) & ((sources[x] != sources[y]) if cross_only else True)
        pairs = np.unique(np.minimum(x, y)[keep] << 32 | np.maximum(x, y)[keep])
        return pairs >> 32, pairs & 0xFFFFFFFF
