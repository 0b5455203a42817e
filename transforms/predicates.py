"""Predicates of hybrid vector queries: parsed, normalised, evaluated, and reasoned about
over boxes, as HQI's partitioning and batch execution need them (Mohoney et al., SIGMOD 2023).

A hybrid query asks for the k nearest rows *that satisfy a predicate* over relational
attributes. Its JSON form is a conjunction, a list of clauses ``{"col", "op", "value"}``:

* ``=`` and ``in`` (a list of values), on categorical (string) and numeric columns;
* ``between`` (inclusive ``[lo, hi]``), ``>``, ``>=``, ``<``, ``<=``, on numeric columns;

or a disjunction of conjunctions ``{"op": "or", "value": [conjunction, ...]}``. ``[]`` is
TRUE, the empty disjunction FALSE. A null attribute value satisfies no clause. The text is
parsed as JSON and checked against the column types, never evaluated as code: anything else
raises ``PredicateError`` whose message is the reason a job writes to its quarantine.

Normal form. Every clause restricts one column to a *constraint*: an ``Interval`` of numbers
or a finite set ``OneOf``. The clauses of a conjunction on one column are intersected into
one constraint, so a conjunction is a tuple of ``(column, constraint)`` sorted by column,
and a predicate is its disjunctive normal form: a sorted tuple of distinct satisfiable
conjunctions (none: FALSE; the empty one absorbs the others: TRUE). ``year = 3``,
``year in [3]`` and ``year between [3, 3]`` have one normal form, so equal predicates are
equal, hashable values and a batch evaluates each distinct predicate once.

Boxes. A qd-tree node describes its rows by a box, a mapping from columns to constraints
(``Interval``, ``OneOf``, or ``NoneOf``: every value but a finite set) that holds every
non-null value of the node's rows. ``Predicate.may_match(box)`` is False only when each
conjunction misses the box on one of its columns; a row matching the predicate has
non-null values inside both, so a box holding a matching row is never ruled out.

Columns. ``Columns`` prepares a table once: numeric columns as numpy arrays with a
validity mask, categorical ones dictionary-encoded as int32 codes (-1 for null), so a
categorical clause costs one table lookup per row and no string comparison.

Example
-------
>>> types = {"genre": CATEGORICAL, "year": NUMERIC}
>>> p = parse('[{"col": "year", "op": ">=", "value": 2000}, {"col": "year", "op": "<", "value": 2010},'
...           ' {"col": "genre", "op": "in", "value": ["jazz", "rock"]}]', types)
>>> p.terms
((('genre', OneOf(values=('jazz', 'rock'))), ('year', Interval(lo=2000, hi=2010, lo_closed=True, hi_closed=False))),)
>>> columns = Columns.from_table({"genre": ["jazz", "pop", None], "year": [2005, 2005, 2005]})
>>> p.mask(columns).tolist()
[True, False, False]
>>> p.may_match({"year": Interval(2010, float("inf"))}), p.may_match({"genre": NoneOf(("jazz",))})
(False, True)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CATEGORICAL = "categorical"
NUMERIC = "numeric"
OPS = ("=", "in", "between", ">", ">=", "<", "<=")
_INF = math.inf


class PredicateError(ValueError):
    """A predicate that cannot be used; the message is the reason."""


# ---------------------------------------------------------------------------- constraints


@dataclass(frozen=True, slots=True)
class Interval:
    """The numbers between ``lo`` and ``hi``, each end included when its flag says so;
    an infinite end is never included."""

    lo: float = -_INF
    hi: float = _INF
    lo_closed: bool = True
    hi_closed: bool = True

    def __post_init__(self):
        if self.lo == -_INF and self.lo_closed:
            object.__setattr__(self, "lo_closed", False)
        if self.hi == _INF and self.hi_closed:
            object.__setattr__(self, "hi_closed", False)

    def contains(self, v) -> bool:
        return (v > self.lo or (self.lo_closed and v == self.lo)) and (v < self.hi or (self.hi_closed and v == self.hi))


@dataclass(frozen=True, slots=True)
class OneOf:
    """A finite set of values (numbers or strings), sorted and distinct."""

    values: tuple


@dataclass(frozen=True, slots=True)
class NoneOf:
    """Every value but a finite set: the categorical side of a qd-tree cut ``col in S``."""

    values: tuple


Constraint = Interval | OneOf | NoneOf


def _sorted_set(values) -> tuple:
    return tuple(sorted(set(values)))


def intersect(a: Constraint | None, b: Constraint | None) -> Constraint | None:
    """The values allowed by both constraints (None: no constraint).

    Parameters
    ----------
    a, b : Interval, OneOf, NoneOf or None
        Constraints of one column: numeric ones are ``Interval`` or ``OneOf``, categorical
        ones ``OneOf`` or ``NoneOf``.

    Returns
    -------
    Interval, OneOf, NoneOf or None
        Possibly empty (see ``is_empty``).

    Examples
    --------
    >>> intersect(Interval(0, 10), Interval(5, 20, lo_closed=False))
    Interval(lo=5, hi=10, lo_closed=False, hi_closed=True)
    >>> intersect(OneOf((1, 5, 9)), Interval(2, 9, hi_closed=False)), intersect(OneOf(("a", "b")), NoneOf(("a",)))
    (OneOf(values=(5,)), OneOf(values=('b',)))
    """
    if a is None or b is None:
        return b if a is None else a
    if isinstance(b, OneOf) and not isinstance(a, OneOf):
        a, b = b, a
    if isinstance(a, OneOf):
        if isinstance(b, OneOf):
            return OneOf(_sorted_set(set(a.values) & set(b.values)))
        if isinstance(b, NoneOf):
            return OneOf(tuple(v for v in a.values if v not in set(b.values)))
        return OneOf(tuple(v for v in a.values if b.contains(v)))
    if isinstance(a, NoneOf) and isinstance(b, NoneOf):
        return NoneOf(_sorted_set(a.values + b.values))
    if isinstance(a, Interval) and isinstance(b, Interval):
        lo, lo_closed = max((a.lo, a.lo_closed), (b.lo, b.lo_closed), key=lambda e: (e[0], not e[1]))
        hi, hi_closed = min((a.hi, a.hi_closed), (b.hi, b.hi_closed), key=lambda e: (e[0], e[1]))
        return Interval(lo, hi, lo_closed, hi_closed)
    raise TypeError(f"cannot intersect a numeric and a categorical constraint: {a} and {b}")


def is_empty(c: Constraint | None) -> bool:
    """Whether no value satisfies the constraint (``NoneOf`` never is: the values are unbounded).

    Examples
    --------
    >>> is_empty(Interval(3, 3, hi_closed=False)), is_empty(OneOf(())), is_empty(NoneOf(("a",)))
    (True, True, False)
    """
    if isinstance(c, Interval):
        return c.lo > c.hi or (c.lo == c.hi and not (c.lo_closed and c.hi_closed))
    return isinstance(c, OneOf) and not c.values


def complement(c: Interval | OneOf) -> Interval | NoneOf:
    """The other side of a qd-tree cut: of a half-line ``Interval(-inf, v)`` or of a
    categorical ``OneOf`` set.

    Examples
    --------
    >>> complement(Interval(hi=5, hi_closed=False)), complement(OneOf(("a",)))
    (Interval(lo=5, hi=inf, lo_closed=True, hi_closed=False), NoneOf(values=('a',)))
    """
    if isinstance(c, OneOf):
        return NoneOf(c.values)
    if isinstance(c, Interval) and c.lo == -_INF:
        return Interval(c.hi, _INF, not c.hi_closed)
    raise ValueError(f"only a half-line (-inf, v) or a OneOf set has a cut's complement, got {c}")


def _canonical(c: Constraint) -> Constraint:
    """A single point as ``OneOf``, so that ``=``, ``in [v]`` and ``between [v, v]`` agree."""
    if isinstance(c, Interval) and c.lo == c.hi and c.lo_closed and c.hi_closed:
        return OneOf((c.lo,))
    return c


# ---------------------------------------------------------------------------- columns


def column_types(table) -> dict[str, str]:
    """Each column's kind: strings (and dictionaries of strings) are categorical, integers
    and floats numeric.

    Parameters
    ----------
    table : pyarrow.Table or mapping of str to array_like

    Returns
    -------
    dict
        Column name to ``"categorical"`` or ``"numeric"``.

    Raises
    ------
    ValueError
        For a column of any other type (booleans, dates, lists, ...).

    Examples
    --------
    >>> column_types({"genre": ["jazz"], "year": [1999], "price": [9.5]})
    {'genre': 'categorical', 'year': 'numeric', 'price': 'numeric'}
    """
    out = {}
    for name, col in _arrow_columns(table).items():
        t = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            out[name] = CATEGORICAL
        elif pa.types.is_integer(t) or pa.types.is_floating(t):
            out[name] = NUMERIC
        else:
            raise ValueError(f"attribute column {name!r} has type {col.type}: only strings (categorical), "
                             "integers and floats (numeric) are supported")
    return out


def _arrow_columns(table) -> dict[str, pa.ChunkedArray | pa.Array]:
    if isinstance(table, pa.Table):
        return {name: table.column(name) for name in table.column_names}
    if isinstance(table, Mapping):
        return {name: col if isinstance(col, (pa.Array, pa.ChunkedArray)) else pa.array(_as_list_or_array(col))
                for name, col in table.items()}
    raise TypeError(f"expected a pyarrow Table or a mapping of columns, got {type(table).__name__}")


def _as_list_or_array(col):
    col = np.asarray(col) if not isinstance(col, (list, tuple)) else col
    # numpy strings and objects go through lists so that None becomes a null
    return col.tolist() if isinstance(col, np.ndarray) and col.dtype.kind in "OUS" else col


@dataclass(frozen=True, eq=False)
class Columns:
    """Attribute columns prepared for predicate evaluation.

    Attributes
    ----------
    types : dict
        Column name to ``"categorical"`` or ``"numeric"``.
    data : dict
        Numeric columns: their values (nulls replaced by 0); categorical columns: int32
        codes into ``categories`` (-1 for null).
    valid : dict
        Numeric columns: boolean validity (False for null and NaN), or None without nulls.
    categories : dict
        Categorical columns: value to code.
    num_rows : int
    """

    types: dict
    data: dict
    valid: dict
    categories: dict
    num_rows: int
    _luts: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_table(cls, table, types: Mapping[str, str] | None = None) -> Columns:
        """Prepare a table's columns.

        Parameters
        ----------
        table : pyarrow.Table or mapping of str to array_like
            The attribute columns, of equal length (strings may be dictionary-encoded).
        types : mapping, optional
            The column kinds to use; by default ``column_types(table)``. Only these columns
            are kept.

        Returns
        -------
        Columns

        Examples
        --------
        >>> c = Columns.from_table({"genre": ["jazz", None, "jazz"], "price": [1.0, float("nan"), None]})
        >>> c.data["genre"].tolist(), c.valid["price"].tolist(), c.num_rows
        ([0, -1, 0], [True, False, False], 3)
        """
        arrow = _arrow_columns(table)
        types = dict(column_types(table) if types is None else types)
        missing = sorted(set(types) - set(arrow))
        if missing:
            raise ValueError(f"attribute columns {missing} are missing from the table")
        lengths = {len(arrow[name]) for name in types}
        if len(lengths) > 1:
            raise ValueError(f"attribute columns have different lengths: {sorted(lengths)}")
        data, valid, categories = {}, {}, {}
        for name, kind in types.items():
            col = arrow[name]
            col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            if kind == CATEGORICAL:
                enc = pc.dictionary_encode(col)
                categories[name] = {v: i for i, v in enumerate(enc.dictionary.to_pylist())}
                data[name] = enc.indices.fill_null(-1).to_numpy().astype(np.int32)
            elif kind == NUMERIC:
                values = col.to_numpy(zero_copy_only=False) if col.null_count == 0 else col.fill_null(0).to_numpy()
                ok = col.is_valid().to_numpy(zero_copy_only=False)
                if values.dtype.kind == "f":
                    ok &= ~np.isnan(values)
                    values = np.where(ok, values, 0.0)
                data[name], valid[name] = values, (None if ok.all() else ok)
            else:
                raise ValueError(f"column type must be {CATEGORICAL!r} or {NUMERIC!r}, got {kind!r} for {name!r}")
        return cls(types, data, valid, categories, lengths.pop() if lengths else 0)

    def take(self, rows) -> Columns:
        """The given rows (an index array or a slice), in that order; the same categories."""
        data = {name: values[rows] for name, values in self.data.items()}
        valid = {name: None if ok is None else ok[rows] for name, ok in self.valid.items()}
        return Columns(self.types, data, valid, self.categories, _selected(self.num_rows, rows))

    def _lookup(self, name: str, c: OneOf | NoneOf) -> np.ndarray:
        """A boolean table over the codes of ``name`` (its last entry, code -1, False)."""
        key = (name, c)
        lut = self._luts.get(key)
        if lut is None:
            codes = self.categories[name]
            lut = np.zeros(len(codes) + 1, dtype=bool)
            hit = [codes[v] for v in c.values if v in codes]
            if isinstance(c, NoneOf):
                lut[:-1] = True
                lut[hit] = False
            else:
                lut[hit] = True
            if len(self._luts) > 4096:  # a memo for repeated clauses, not a store of every predicate
                self._luts.clear()
            self._luts[key] = lut
        return lut


def _selected(num_rows: int, rows) -> int:
    if rows is None:
        return num_rows
    return len(range(num_rows)[rows]) if isinstance(rows, slice) else len(rows)


def constraint_mask(columns: Columns, name: str, c: Constraint, rows=None) -> np.ndarray:
    """Which rows have a non-null value of column ``name`` allowed by ``c``.

    Parameters
    ----------
    columns : Columns
    name : str
        The column.
    c : Interval, OneOf or NoneOf
        The constraint.
    rows : slice or numpy.ndarray, optional
        Only these rows (by default all).

    Returns
    -------
    numpy.ndarray
        Boolean, one value per row of ``rows``.

    Examples
    --------
    >>> columns = Columns.from_table({"year": [1990, 2000, None]})
    >>> constraint_mask(columns, "year", Interval(hi=2000)).tolist()
    [True, True, False]
    """
    kind = columns.types.get(name)
    x = columns.data[name] if rows is None else columns.data[name][rows]
    if kind == CATEGORICAL:
        if isinstance(c, Interval) or any(not isinstance(v, str) for v in c.values):
            raise TypeError(f"column {name!r} is categorical: it takes sets of strings, got {c}")
        return columns._lookup(name, c)[x]
    if kind != NUMERIC:
        raise KeyError(f"unknown column {name!r}")
    if isinstance(c, OneOf):
        m = np.isin(x, np.array(c.values, dtype=np.float64 if x.dtype.kind == "f" else None))
    elif isinstance(c, Interval):
        m = np.ones(len(x), dtype=bool)
        if c.lo != -_INF:
            m &= (x >= c.lo) if c.lo_closed else (x > c.lo)
        if c.hi != _INF:
            m &= (x <= c.hi) if c.hi_closed else (x < c.hi)
    else:
        raise TypeError(f"column {name!r} is numeric: NoneOf does not apply")
    ok = columns.valid.get(name)
    if ok is not None:
        m &= ok if rows is None else ok[rows]
    return m


# ---------------------------------------------------------------------------- predicates


@dataclass(frozen=True)
class Predicate:
    """A predicate in disjunctive normal form (see the module docstring); build it with
    ``parse``.

    Attributes
    ----------
    terms : tuple
        The conjunctions, each a tuple of ``(column, constraint)`` sorted by column. ``()``
        is FALSE, ``((),)`` TRUE.

    Examples
    --------
    >>> types = {"genre": CATEGORICAL}
    >>> parse('[{"col": "genre", "op": "=", "value": "jazz"}]', types) == parse(
    ...     '{"op": "or", "value": [[{"col": "genre", "op": "in", "value": ["jazz"]}]]}', types)
    True
    >>> parse("[]", types).is_true, parse('{"op": "or", "value": []}', types).is_false
    (True, True)
    """

    terms: tuple

    @classmethod
    def from_conjunctions(cls, conjunctions) -> Predicate:
        """The normal form of the disjunction of ``conjunctions``, each a mapping from
        columns to merged constraints (or None for an unsatisfiable one)."""
        terms = {}
        for conj in conjunctions:
            if conj is None or any(is_empty(c) for c in conj.values()):
                continue
            term = tuple(sorted((name, _canonical(c)) for name, c in conj.items()))
            if not term:
                return cls(((),))  # TRUE absorbs every other conjunction
            terms[term] = None
        return cls(tuple(sorted(terms, key=lambda t: json.dumps(_conjunction_json(t)))))

    @property
    def is_true(self) -> bool:
        return self.terms == ((),)

    @property
    def is_false(self) -> bool:
        return self.terms == ()

    @property
    def columns(self) -> frozenset:
        """The columns the predicate reads."""
        return frozenset(name for term in self.terms for name, _ in term)

    def mask(self, columns: Columns, rows=None) -> np.ndarray:
        """Which rows satisfy the predicate.

        Parameters
        ----------
        columns : Columns
        rows : slice or numpy.ndarray, optional
            Only these rows (by default all).

        Returns
        -------
        numpy.ndarray
            Boolean, one value per row of ``rows``.

        Examples
        --------
        >>> columns = Columns.from_table({"genre": ["jazz", "pop", "rock"], "year": [1990, 2000, 2010]})
        >>> p = parse('{"op": "or", "value": [[{"col": "genre", "op": "=", "value": "pop"}],'
        ...           ' [{"col": "year", "op": ">", "value": 2005}]]}', columns.types)
        >>> p.mask(columns).tolist(), p.mask(columns, slice(0, 2)).tolist()
        ([False, True, True], [False, True])
        """
        n = _selected(columns.num_rows, rows)
        out = np.zeros(n, dtype=bool)
        for term in self.terms:
            m = np.ones(n, dtype=bool)
            for name, c in term:
                m &= constraint_mask(columns, name, c, rows)
            out |= m
        return out

    def may_match(self, box: Mapping[str, Constraint]) -> bool:
        """Whether a row inside ``box`` may satisfy the predicate: False only when every
        conjunction misses the box on one of its columns, so never False for a box that
        holds a satisfying row.

        Parameters
        ----------
        box : mapping of str to Interval, OneOf or NoneOf
            The non-null values of each column the box restricts (absent: unrestricted).

        Returns
        -------
        bool

        References
        ----------
        .. [1] Z. Yang et al., "Qd-tree: Learning Data Layouts for Big Data Analytics",
           SIGMOD 2020, doi:10.1145/3318464.3389770 (a node's description, and skipping it).

        Examples
        --------
        >>> p = parse('[{"col": "year", "op": "between", "value": [1990, 1999]}]', {"year": NUMERIC})
        >>> p.may_match({"year": Interval(hi=1990, hi_closed=False)}), p.may_match({"year": Interval(hi=1990)})
        (False, True)
        """
        return any(all(name not in box or not is_empty(intersect(c, box[name])) for name, c in term)
                   for term in self.terms)

    def to_json(self) -> str:
        """The normal form as predicate JSON (compact); ``parse`` gives back an equal predicate."""
        if len(self.terms) == 1:
            return json.dumps(_conjunction_json(self.terms[0]), separators=(",", ":"))
        return json.dumps({"op": "or", "value": [_conjunction_json(t) for t in self.terms]}, separators=(",", ":"))

    def __str__(self) -> str:
        return self.to_json()


def clause_json(name: str, c: Interval | OneOf) -> list[dict]:
    """The clauses (one or two) that restrict column ``name`` to ``c``.

    Examples
    --------
    >>> clause_json("year", Interval(1990, 2000, lo_closed=False))
    [{'col': 'year', 'op': '>', 'value': 1990}, {'col': 'year', 'op': '<=', 'value': 2000}]
    """
    if isinstance(c, OneOf):
        if len(c.values) == 1:
            return [{"col": name, "op": "=", "value": c.values[0]}]
        return [{"col": name, "op": "in", "value": list(c.values)}]
    if not isinstance(c, Interval):
        raise TypeError(f"{c} has no clause form")
    if c.lo != -_INF and c.hi != _INF and c.lo_closed and c.hi_closed:
        return [{"col": name, "op": "between", "value": [c.lo, c.hi]}]
    out = []
    if c.lo != -_INF:
        out.append({"col": name, "op": ">=" if c.lo_closed else ">", "value": c.lo})
    if c.hi != _INF:
        out.append({"col": name, "op": "<=" if c.hi_closed else "<", "value": c.hi})
    return out


def _conjunction_json(term) -> list[dict]:
    return [clause for name, c in term for clause in clause_json(name, c)]


# ---------------------------------------------------------------------------- parsing


def _json_type(v) -> str:
    for t, name in ((bool, "boolean"), (str, "string"), (list, "list"), (dict, "object"), (type(None), "null")):
        if isinstance(v, t):
            return name
    return "number" if isinstance(v, (int, float)) else type(v).__name__


def _no_constant(token: str):
    raise PredicateError(f"malformed JSON: {token} is not a JSON number")


def _decode(text) -> object:
    if text is None:
        raise PredicateError("predicate is missing (null)")
    if not isinstance(text, (str, bytes)):
        return text
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise PredicateError(f"malformed JSON: {e}") from None


def _number(v, name: str, where: str):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PredicateError(f"{where}column {name!r} is numeric: its values must be numbers, got "
                             f"{_json_type(v)} {json.dumps(v)}")
    if isinstance(v, float) and not math.isfinite(v):
        raise PredicateError(f"{where}column {name!r}: values must be finite numbers, got {v}")
    return v


def _string(v, name: str, where: str) -> str:
    if not isinstance(v, str):
        raise PredicateError(f"{where}column {name!r} is categorical: its values must be strings, got "
                             f"{_json_type(v)} {json.dumps(v)}")
    return v


def parse_clause(clause, types: Mapping[str, str], where: str = "") -> tuple[str, Interval | OneOf]:
    """One clause ``{"col", "op", "value"}``, validated, as ``(column, constraint)``.

    Parameters
    ----------
    clause : dict
        The decoded clause.
    types : mapping of str to str
        The columns a predicate may read, each ``"categorical"`` or ``"numeric"``.
    where : str, optional
        Prefix of error messages (the clause's position).

    Returns
    -------
    tuple of (str, Interval or OneOf)

    Raises
    ------
    PredicateError
        On anything but a valid clause, saying why.

    Examples
    --------
    >>> parse_clause({"col": "year", "op": "<", "value": 2000}, {"year": NUMERIC})
    ('year', Interval(lo=-inf, hi=2000, lo_closed=False, hi_closed=False))
    """
    if not isinstance(clause, dict):
        raise PredicateError(f"{where}a clause must be an object with keys col, op, value, "
                             f"got {_json_type(clause)} {json.dumps(clause)}")
    for key in ("col", "op", "value"):
        if key not in clause:
            raise PredicateError(f"{where}clause is missing {key!r}")
    extra = sorted(set(clause) - {"col", "op", "value"})
    if extra:
        raise PredicateError(f"{where}clause has unknown keys {extra} (allowed: col, op, value)")
    name, op, value = clause["col"], clause["op"], clause["value"]
    if not isinstance(name, str) or name not in types:
        raise PredicateError(f"{where}unknown column {json.dumps(name)} (known: {', '.join(sorted(types))})")
    if not isinstance(op, str) or op not in OPS:
        raise PredicateError(f"{where}op must be one of {', '.join(OPS)}, got {json.dumps(op)}")
    kind = types[name]
    if kind == CATEGORICAL and op not in ("=", "in"):
        raise PredicateError(f"{where}column {name!r} is categorical: only '=' and 'in' apply, got {op!r}")
    check = _string if kind == CATEGORICAL else _number
    if op in ("in", "between") and not isinstance(value, list):
        raise PredicateError(f"{where}{op!r} needs a list of values, got {_json_type(value)} {json.dumps(value)}")
    if op == "in":
        return name, OneOf(_sorted_set(check(v, name, where) for v in value))
    if op == "=":
        return name, OneOf((check(value, name, where),))
    if op == "between":
        if len(value) != 2:
            raise PredicateError(f"{where}'between' needs [lo, hi], got {len(value)} values")
        lo, hi = (check(v, name, where) for v in value)
        if lo > hi:
            raise PredicateError(f"{where}'between' needs lo <= hi, got [{lo}, {hi}]")
        return name, Interval(lo, hi)
    v = check(value, name, where)
    return name, {">": Interval(v, _INF, False), ">=": Interval(v, _INF, True),
                  "<": Interval(-_INF, v, hi_closed=False), "<=": Interval(-_INF, v, hi_closed=True)}[op]


def _conjunction(items, types, where: str) -> dict | None:
    if isinstance(items, dict) and "col" in items:
        raise PredicateError(f"{where}a single clause must be wrapped in a list (a conjunction)")
    if not isinstance(items, list):
        raise PredicateError(f"{where}a conjunction must be a list of clauses, got {_json_type(items)}")
    clauses = [parse_clause(c, types, f"{where}clause {i}: ") for i, c in enumerate(items)]
    merged = {}
    for name, c in clauses:
        merged[name] = intersect(merged.get(name), c)
    return merged


def parse(predicate, types: Mapping[str, str]) -> Predicate:
    """Parse and validate predicate JSON into its normal form.

    Parameters
    ----------
    predicate : str, bytes, list or dict
        The JSON text (or its decoded value): a list of clauses (a conjunction), or
        ``{"op": "or", "value": [conjunction, ...]}``.
    types : mapping of str to str
        The columns a predicate may read, each ``"categorical"`` or ``"numeric"``.

    Returns
    -------
    Predicate

    Raises
    ------
    PredicateError
        On malformed JSON, an unknown column, key or op, an op that does not apply to the
        column, or a value of the wrong type or shape; the message says which and where.

    References
    ----------
    .. [1] J. Mohoney et al., "High-Throughput Vector Similarity Search in Knowledge Graphs",
       SIGMOD 2023, doi:10.1145/3589777, arXiv:2304.01926.

    Examples
    --------
    >>> types = {"genre": CATEGORICAL, "year": NUMERIC}
    >>> parse('[{"col": "year", "op": ">", "value": 2000}, {"col": "year", "op": "<", "value": 1990}]', types).is_false
    True
    >>> parse('[{"col": "genre", "op": "<", "value": "jazz"}]', types)
    Traceback (most recent call last):
    ...
    sigil.transforms.predicates.PredicateError: clause 0: column 'genre' is categorical: only '=' and 'in' apply, ...
    """
    obj = _decode(predicate)
    if isinstance(obj, dict) and "col" not in obj:
        extra = sorted(set(obj) - {"op", "value"})
        if obj.get("op") != "or" or extra or "value" not in obj:
            raise PredicateError('a disjunction must be {"op": "or", "value": [conjunction, ...]}, '
                                 f"got keys {sorted(obj)} and op {json.dumps(obj.get('op'))}")
        terms = obj["value"]
        if not isinstance(terms, list):
            raise PredicateError(f"'or' needs a list of conjunctions, got {_json_type(terms)}")
        # every term is validated, even after a TRUE one
        return Predicate.from_conjunctions([_conjunction(t, types, f"or term {i}: ") for i, t in enumerate(terms)])
    if not isinstance(obj, (list, dict)):
        raise PredicateError(f"a predicate must be a list of clauses or an 'or' object, got {_json_type(obj)}")
    return Predicate.from_conjunctions([_conjunction(obj, types, "")])


def parse_many(predicates: Sequence, types: Mapping[str, str]) -> tuple[list, list]:
    """``parse`` every predicate of a batch, each distinct text once.

    Parameters
    ----------
    predicates : sequence of str
        Predicate JSON texts (None for a missing one).
    types : mapping of str to str

    Returns
    -------
    parsed : list
        The ``Predicate`` of each text, None where it failed.
    reasons : list
        None where it parsed, else the reason it did not.

    Examples
    --------
    >>> parsed, reasons = parse_many(["[]", "[{", "[]"], {})
    >>> [p is not None for p in parsed], reasons[1][:14]
    ([True, False, True], 'malformed JSON')
    """
    memo = {}
    parsed, reasons = [], []
    for text in predicates:
        key = text if isinstance(text, (str, bytes)) or text is None else json.dumps(text)
        if key not in memo:
            try:
                memo[key] = (parse(text, types), None)
            except PredicateError as e:
                memo[key] = (None, str(e))
        parsed.append(memo[key][0])
        reasons.append(memo[key][1])
    return parsed, reasons
