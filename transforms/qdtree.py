"""A workload-aware partitioning of rows by their attributes: the qd-tree (Yang et al.,
SIGMOD 2020), as HQI lays out vectors for hybrid queries (Mohoney et al., SIGMOD 2023).

A qd-tree is a binary tree whose inner nodes cut the rows by one attribute, ``col < v``,
``col <= v`` (numeric) or ``col in S`` (categorical): the rows that satisfy the cut go left,
the others (and rows whose value is null) right. The leaves partition the rows. Each node
holds its *box*, the intersection of the cut sides on its path, which contains every
non-null value of its rows; a query whose predicate cannot match a box
(``Predicate.may_match``) skips the subtree, so it scans only the rows of the leaves it
reaches.

Construction is greedy and top-down, from a training workload W of predicates. The
candidate cuts are the workload's own clause boundaries: for a numeric constraint
``lo <(=) col <(=) hi`` the cuts that separate its ends (``col < lo`` when ``lo`` is
included, ``col <= lo`` when not; ``col <= hi`` or ``col < hi``), for a numeric set both
cuts at each value, for a categorical set S the cut ``col in S`` and ``col = s`` for each
s in S. A node of n rows reached by the workload's predicates P costs
``sum_{p in P} n``; a cut into L and R costs ``sum_p |L| [p reaches L] + |R| [p reaches R]``.
Every node takes the cheapest cut whose sides both keep at least ``min_leaf_rows`` rows,
when it costs less than the node; otherwise the node is a leaf. The total cost is the
number of rows the training workload scans (each predicate weighted by its frequency).

For one column the costs of all candidate cuts come out of a few array operations: the
row counts of each side by binary search in the node's sorted values (numeric) or by
counting values (categorical), and, per conjunction still reaching the node, which side it
reaches from the bounds of its constraint (numeric: does its infimum lie left of the
threshold, its supremum right) or from a set intersection done as a 0/1 matrix product
over the values the workload names (categorical).

Example
-------
>>> from sigil.transforms.predicates import Columns, parse
>>> columns = Columns.from_table({"year": list(range(1000))})
>>> tree = QdTree.build(columns, ['[{"col": "year", "op": "<", "value": 100}]'] * 3, min_leaf_rows=50)
>>> tree.num_leaves, tree.leaf_rows.tolist(), tree.to_dict()["nodes"][0]["cut"]
(2, [100, 900], {'col': 'year', 'op': '<', 'value': 100})
>>> tree.route(parse('[{"col": "year", "op": ">=", "value": 500}]', columns.types)).tolist()
[1]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from sigil.transforms.predicates import (
    CATEGORICAL,
    Columns,
    Interval,
    OneOf,
    Predicate,
    clause_json,
    complement,
    constraint_mask,
    intersect,
    is_empty,
    parse,
    parse_clause,
)

FORMAT = "sigil.qdtree/1"


@dataclass(frozen=True, eq=False)
class QdTree:
    """A qd-tree: cuts, children and boxes of its nodes, numbered in pre-order (the root
    is 0, a left child follows its parent); leaves are numbered 0.. in the same order.

    Attributes
    ----------
    types : dict
        The attribute columns, ``"categorical"`` or ``"numeric"``.
    cuts : tuple
        Per node, ``(column, constraint)`` (the left side: an ``Interval(-inf, v)`` or a
        ``OneOf`` set), None for a leaf.
    left, right : numpy.ndarray
        int64 children of each node, -1 for a leaf.
    leaf : numpy.ndarray
        int64 leaf number of each node, -1 for an inner node.
    rows : numpy.ndarray
        int64 rows of each node when the tree was built.
    min_leaf_rows : int
    boxes : tuple
        Per node, its box: a dict from column to constraint.

    References
    ----------
    .. [1] Z. Yang, B. Chandramouli, C. Wang, J. Gehrke, Y. Li, U. F. Minhas, P.-A. Larson,
       D. Kossmann, R. Acharya, "Qd-tree: Learning Data Layouts for Big Data Analytics",
       SIGMOD 2020, doi:10.1145/3318464.3389770.
    .. [2] J. Mohoney, A. Pacaci, S. R. Chowdhury, A. Mousavi, I. F. Ilyas, U. F. Minhas,
       J. Pound, T. Rekatsinas, "High-Throughput Vector Similarity Search in Knowledge
       Graphs", SIGMOD 2023, doi:10.1145/3589777, arXiv:2304.01926.
    """

    types: dict
    cuts: tuple
    left: np.ndarray
    right: np.ndarray
    leaf: np.ndarray
    rows: np.ndarray
    min_leaf_rows: int
    boxes: tuple = field(init=False, repr=False)

    def __post_init__(self):
        boxes = [{}] * len(self.cuts)
        for node, cut in enumerate(self.cuts):  # pre-order: a parent comes before its children
            if cut is not None:
                name, side = cut
                box = boxes[node]
                boxes[self.left[node]] = {**box, name: intersect(box.get(name), side)}
                boxes[self.right[node]] = {**box, name: intersect(box.get(name), complement(side))}
        object.__setattr__(self, "boxes", tuple(boxes))

    @property
    def num_leaves(self) -> int:
        return int((self.leaf >= 0).sum())

    @property
    def leaf_rows(self) -> np.ndarray:
        """int64 build rows of each leaf, in leaf order."""
        return self.rows[np.flatnonzero(self.leaf >= 0)]

    @classmethod
    def build(cls, columns, predicates, *, min_leaf_rows: int, types=None) -> QdTree:
        """Grow the tree greedily for a training workload (see the module docstring).

        Parameters
        ----------
        columns : Columns, pyarrow.Table or mapping of str to array_like
            The rows' attributes.
        predicates : iterable of Predicate or str
            The training workload's predicates (JSON texts are parsed); repeats weigh more.
        min_leaf_rows : int
            No cut leaves a side with fewer rows. At least 1.
        types : mapping, optional
            Column kinds, when ``columns`` is a table; by default inferred.

        Returns
        -------
        QdTree

        Raises
        ------
        ValueError
            When ``min_leaf_rows < 1``; ``PredicateError`` for an invalid predicate.

        Examples
        --------
        >>> from sigil.transforms.predicates import Columns
        >>> columns = Columns.from_table({"genre": ["a", "b", "c", "d"] * 25})
        >>> tree = QdTree.build(columns, ['[{"col": "genre", "op": "in", "value": ["a", "b"]}]'], min_leaf_rows=10)
        >>> tree.leaf_rows.tolist(), tree.scanned_rows(['[{"col": "genre", "op": "=", "value": "c"}]'])
        ([50, 50], 50)
        """
        if min_leaf_rows < 1:
            raise ValueError(f"min_leaf_rows must be >= 1, got {min_leaf_rows}")
        if not isinstance(columns, Columns):
            columns = Columns.from_table(columns, types)
        counts = Counter(p if isinstance(p, Predicate) else parse(p, columns.types) for p in predicates)
        distinct = list(counts)
        weights = np.array([counts[p] for p in distinct], dtype=np.int64)
        candidates = _candidates(distinct, columns)
        alive = [(i, dict(term)) for i, p in enumerate(distinct) for term in p.terms]
        cuts, left, right, rows = [], [], [], []
        stack = [(-1, None, np.arange(columns.num_rows), alive)]
        while stack:
            parent, side, at, alive = stack.pop()
            node = len(cuts)
            if parent >= 0:
                (left if side == 0 else right)[parent] = node
            cut = _best_cut(columns, at, alive, weights, candidates, min_leaf_rows)
            cuts.append(cut)
            left.append(-1)
            right.append(-1)
            rows.append(len(at))
            if cut is not None:
                name, c = cut
                m = constraint_mask(columns, name, c, at)
                stack.append((node, 1, at[~m], _restrict(alive, name, complement(c))))
                stack.append((node, 0, at[m], _restrict(alive, name, c)))
        leaf = np.full(len(cuts), -1, dtype=np.int64)
        is_leaf = np.array([c is None for c in cuts], dtype=bool)
        leaf[is_leaf] = np.arange(is_leaf.sum())
        return cls(dict(columns.types), tuple(cuts), np.array(left, np.int64), np.array(right, np.int64), leaf,
                   np.array(rows, np.int64), int(min_leaf_rows))

    def assign(self, columns) -> np.ndarray:
        """The leaf of every row: each cut evaluated once per node on that node's rows.

        Parameters
        ----------
        columns : Columns, pyarrow.Table or mapping of str to array_like
            Rows with (at least) the tree's attribute columns.

        Returns
        -------
        numpy.ndarray
            int64 leaf number of each row.

        Examples
        --------
        >>> tree = QdTree.build({"x": list(range(10))}, ['[{"col": "x", "op": ">", "value": 6}]'], min_leaf_rows=2)
        >>> tree.assign({"x": [7, 0, None, 9]}).tolist()
        [1, 0, 1, 1]
        """
        if not isinstance(columns, Columns):
            columns = Columns.from_table(columns, self.types)
        out = np.empty(columns.num_rows, dtype=np.int64)
        stack = [(0, np.arange(columns.num_rows))]
        while stack:
            node, at = stack.pop()
            if self.cuts[node] is None:
                out[at] = self.leaf[node]
                continue
            m = constraint_mask(columns, *self.cuts[node], at)
            stack.append((self.left[node], at[m]))
            stack.append((self.right[node], at[~m]))
        return out

    def with_leaf_rows(self, counts, min_leaf_rows: int | None = None) -> QdTree:
        """The same tree with each leaf's rows replaced by ``counts`` (an inner node's: its
        leaves' sum), e.g. the rows of all the data for a tree grown on a sample of it.

        Parameters
        ----------
        counts : array_like
            int, one per leaf.
        min_leaf_rows : int, optional
            The minimum leaf size to record instead (the data's, not the sample's).

        Returns
        -------
        QdTree

        Examples
        --------
        >>> tree = QdTree.build({"x": list(range(10))}, ['[{"col": "x", "op": ">", "value": 6}]'], min_leaf_rows=2)
        >>> tree.with_leaf_rows([70, 30]).rows.tolist()
        [100, 70, 30]
        """
        counts = np.asarray(counts, dtype=np.int64)
        if counts.shape != (self.num_leaves,):
            raise ValueError(f"need one count per leaf ({self.num_leaves}), got shape {counts.shape}")
        rows = np.zeros(len(self.cuts), dtype=np.int64)
        for node in range(len(self.cuts) - 1, -1, -1):  # pre-order: children come after their parent
            rows[node] = counts[self.leaf[node]] if self.cuts[node] is None else \
                rows[self.left[node]] + rows[self.right[node]]
        return replace(self, rows=rows, min_leaf_rows=self.min_leaf_rows if min_leaf_rows is None else min_leaf_rows)

    def route(self, predicate: Predicate) -> np.ndarray:
        """The leaves whose box the predicate may match: every leaf holding a row that
        satisfies it, and possibly more.

        Parameters
        ----------
        predicate : Predicate

        Returns
        -------
        numpy.ndarray
            int64 leaf numbers, ascending.
        """
        out, stack = [], [0]
        while stack:
            node = stack.pop()
            if not predicate.may_match(self.boxes[node]):
                continue
            if self.cuts[node] is None:
                out.append(self.leaf[node])
            else:
                stack += [self.right[node], self.left[node]]
        return np.array(out, dtype=np.int64)

    def scanned_rows(self, predicates) -> int:
        """Rows a workload scans: the sum over its predicates of the build rows of the
        leaves each reaches (the objective the construction minimises).

        Parameters
        ----------
        predicates : iterable of Predicate or str

        Returns
        -------
        int
        """
        counts = Counter(p if isinstance(p, Predicate) else parse(p, self.types) for p in predicates)
        rows = self.leaf_rows
        return int(sum(n * rows[self.route(p)].sum() for p, n in counts.items()))

    def to_dict(self) -> dict:
        """A JSON-able description (cuts as predicate clauses), read back by ``from_dict``."""
        nodes = [{"cut": None if cut is None else clause_json(*cut)[0], "left": int(lo), "right": int(hi),
                  "leaf": int(leaf), "rows": int(n)}
                 for cut, lo, hi, leaf, n in zip(self.cuts, self.left, self.right, self.leaf, self.rows, strict=True)]
        return {"format": FORMAT, "types": dict(self.types), "min_leaf_rows": self.min_leaf_rows, "nodes": nodes}

    @classmethod
    def from_dict(cls, d: dict) -> QdTree:
        """The tree ``to_dict`` described.

        Raises
        ------
        ValueError
            On another format, or nodes that do not form a pre-order binary tree.
        """
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"not a qd-tree description: format must be {FORMAT!r}")
        types, nodes = d["types"], d["nodes"]
        cuts = tuple(None if n["cut"] is None else parse_clause(n["cut"], types, f"node {i}: ")
                     for i, n in enumerate(nodes))
        left, right, leaf, rows = (np.array([n[k] for n in nodes], dtype=np.int64)
                                   for k in ("left", "right", "leaf", "rows"))
        inner = np.array([c is not None for c in cuts], dtype=bool)
        ids = np.arange(len(nodes))
        children = np.sort(np.r_[left[inner], right[inner]])
        if (not len(nodes) or (left[inner] <= ids[inner]).any() or (right[inner] <= left[inner]).any()
                or not np.array_equal(children, ids[1:]) or (left[~inner] != -1).any() or (right[~inner] != -1).any()
                or not np.array_equal(leaf[~inner], np.arange((~inner).sum())) or (leaf[inner] != -1).any()):
            raise ValueError("qd-tree nodes do not form a binary tree in pre-order")
        return cls(dict(types), cuts, left, right, leaf, rows, int(d["min_leaf_rows"]))


# ---------------------------------------------------------------------------- construction


@dataclass(frozen=True)
class _NumericCuts:
    thresholds: np.ndarray  # float64
    closed: np.ndarray  # True: col <= v, False: col < v
    values: list  # the thresholds as the workload wrote them (int or float), for JSON


@dataclass(frozen=True)
class _CategoricalCuts:
    sets: list  # OneOf per cut
    universe: dict  # every value the workload names -> its position
    member: np.ndarray  # bool (cuts, len(universe) + 1): the last position is "any other value"
    position: np.ndarray  # int64 per category code of the column (last: null code -1)


def _candidates(predicates: list, columns: Columns) -> dict:
    """Per column, the cuts at the boundaries of the workload's constraints."""
    numeric, categorical = {}, {}
    for p in predicates:
        for term in p.terms:
            for name, c in term:
                if columns.types[name] == CATEGORICAL:
                    categorical.setdefault(name, set()).add(c.values)
                    categorical[name].update((v,) for v in c.values)
                elif isinstance(c, OneOf):
                    numeric.setdefault(name, set()).update((v, s) for v in c.values for s in (False, True))
                else:
                    if c.lo != -np.inf:
                        numeric.setdefault(name, set()).add((c.lo, not c.lo_closed))
                    if c.hi != np.inf:
                        numeric.setdefault(name, set()).add((c.hi, c.hi_closed))
    out = {}
    for name in sorted(set(numeric) | set(categorical)):
        if name in numeric:
            cuts = sorted(numeric[name], key=lambda e: (e[0], e[1]))
            out[name] = _NumericCuts(np.array([v for v, _ in cuts], dtype=np.float64),
                                     np.array([s for _, s in cuts], dtype=bool), [v for v, _ in cuts])
        else:
            sets = sorted(s for s in categorical[name] if s)
            universe = {v: i for i, v in enumerate(sorted({v for s in sets for v in s}))}
            member = np.zeros((len(sets), len(universe) + 1), dtype=bool)
            for i, s in enumerate(sets):
                member[i, [universe[v] for v in s]] = True
            codes = columns.categories[name]
            position = np.full(len(codes) + 1, len(universe), dtype=np.int64)
            for value, code in codes.items():
                position[code] = universe.get(value, len(universe))
            position[-1] = len(universe) + 1  # null: on no side of a set, counted apart
            out[name] = _CategoricalCuts([OneOf(s) for s in sets], universe, member, position)
    return out


def _restrict(alive: list, name: str, side) -> list:
    """The conjunctions that still reach one side of a cut, their constraints narrowed."""
    out = []
    for owner, term in alive:
        if name in term:
            c = intersect(term[name], side)
            if is_empty(c):
                continue
            term = {**term, name: c}
        out.append((owner, term))
    return out


def _best_cut(columns: Columns, at: np.ndarray, alive: list, weights: np.ndarray, candidates: dict,
              min_leaf_rows: int):
    """The cheapest cut of the node (rows ``at``) whose sides keep ``min_leaf_rows`` rows,
    if it costs less than scanning the node whole; else None."""
    n = len(at)
    if n < 2 * min_leaf_rows or not alive:
        return None
    owner = np.array([i for i, _ in alive], dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # alive is grouped by predicate
    w = weights[owner[starts]]
    best_cost, best = n * w.sum(), None
    for name, cand in candidates.items():
        constrained = [j for j, (_, term) in enumerate(alive) if name in term]
        if isinstance(cand, _NumericCuts):
            n_left, reach_left, reach_right = _numeric_sides(columns, name, at, alive, constrained, cand)
        else:
            n_left, reach_left, reach_right = _categorical_sides(columns, name, at, alive, constrained, cand)
        n_right = n - n_left
        # a predicate reaches a side when one of its conjunctions does
        cost = (n_left * (w @ np.logical_or.reduceat(reach_left, starts, axis=0))
                + n_right * (w @ np.logical_or.reduceat(reach_right, starts, axis=0)))
        cost = np.where((n_left >= min_leaf_rows) & (n_right >= min_leaf_rows), cost, np.iinfo(np.int64).max)
        i = int(np.argmin(cost)) if len(cost) else 0
        if len(cost) and cost[i] < best_cost:
            best_cost = cost[i]
            if isinstance(cand, _NumericCuts):
                best = (name, Interval(hi=cand.values[i], hi_closed=bool(cand.closed[i])))
            else:
                best = (name, cand.sets[i])
    return best


def _numeric_sides(columns, name, at, alive, constrained, cand: _NumericCuts):
    """Rows left of each cut, and which conjunctions reach each side."""
    x = columns.data[name][at]
    ok = columns.valid.get(name)
    if ok is not None:
        x = x[ok[at]]  # nulls go right
    x = np.sort(x)
    v = cand.thresholds
    n_left = np.where(cand.closed, np.searchsorted(x, v, "right"), np.searchsorted(x, v, "left")).astype(np.int64)
    reach_left = np.ones((len(alive), len(v)), dtype=bool)
    reach_right = np.ones((len(alive), len(v)), dtype=bool)
    if constrained:
        bounds = [_bounds(alive[j][1][name]) for j in constrained]
        inf, inf_in, sup, sup_in = (np.array(col)[:, None] for col in zip(*bounds, strict=True))
        # some allowed value lies left of (below) the cut, resp. right of it
        reach_left[constrained] = (inf < v) | (cand.closed & inf_in & (inf == v))
        reach_right[constrained] = (sup > v) | (~cand.closed & sup_in & (sup == v))
    return n_left, reach_left, reach_right


def _bounds(c) -> tuple[float, bool, float, bool]:
    """Infimum and supremum of a numeric constraint, and whether each is attained."""
    if isinstance(c, OneOf):
        return float(c.values[0]), True, float(c.values[-1]), True
    return float(c.lo), c.lo_closed, float(c.hi), c.hi_closed


def _categorical_sides(columns, name, at, alive, constrained, cand: _CategoricalCuts):
    """Rows inside each cut's set, and which conjunctions reach each side."""
    u = len(cand.universe)
    counts = np.bincount(cand.position[columns.data[name][at]], minlength=u + 2)
    n_left = cand.member[:, :u].astype(np.int64) @ counts[:u]
    reach_left = np.ones((len(alive), len(cand.sets)), dtype=bool)
    reach_right = np.ones((len(alive), len(cand.sets)), dtype=bool)
    if constrained:
        allowed = np.zeros((len(constrained), u + 1), dtype=np.int64)
        for row, j in enumerate(constrained):
            allowed[row, [cand.universe[v] for v in alive[j][1][name].values]] = 1
        reach_left[constrained] = allowed @ cand.member.T.astype(np.int64) > 0
        reach_right[constrained] = allowed @ (~cand.member).T.astype(np.int64) > 0
    return n_left, reach_left, reach_right

