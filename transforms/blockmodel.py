"""Description length of a partition under the nested degree-corrected stochastic block model.

The description length Σ = -ln P(A, θ) of a graph A and a partition's model θ is the number
of nats needed to send the graph by first sending the model; the smaller Σ, the better the
partition explains the graph, with no resolution parameter and no reward for splitting
noise (Peixoto 2014, 2017). Here it chooses between candidate partitions of one graph.

For an undirected simple graph with degrees k, a partition b into B groups of sizes n_r,
e_rs edges between groups r and s (e_rr twice the edges inside r) and e_r = sum_s e_rs:

* the edges given the model, microcanonical DC-SBM [2]_, eq. (7):
  ``ln P(A|k,e,b) = sum_i ln k_i! - sum_r ln e_r! + sum_{r<s} ln e_rs! + sum_r ln e_rr!!``;
* the degrees, each group's degree histogram η^r [2]_, eq. (26):
  ``ln n_r! - sum_k ln η^r_k! + ln q(e_r, n_r)``, q(m, n) the number of partitions of the
  integer m into at most n parts (exact below 300, else the asymptotic form of [2]_, app. D);
* the partition, ``ln N! - sum_r ln n_r! + ln C(N-1, B-1) + ln N`` [2]_, eq. (11);
* the edge counts e: a multigraph between the B groups, itself sent as a block model of the
  groups, and so on up to one group: the nested prior of [1]_, which removes the flat
  prior's own resolution limit (about sqrt(N) groups). Each level l costs
  ``sum_{r<s} ln multiset(n_r n_s, e_rs) + sum_r ln multiset(n_r (n_r + 1) / 2, e_rr / 2)``
  plus its partition as above, with n_r counting groups of the level below. The hierarchy
  is built by Leiden on each level's multigraph (modularity), the same for every candidate.

References
----------
.. [1] T. P. Peixoto, "Hierarchical block structures and high-resolution model selection in
   large networks", Phys. Rev. X 4, 011047, 2014. doi:10.1103/PhysRevX.4.011047
.. [2] T. P. Peixoto, "Nonparametric Bayesian inference of the microcanonical stochastic
   block model", Phys. Rev. E 95, 012317, 2017. doi:10.1103/PhysRevE.95.012317

Example
-------
Two 8-cliques joined by one edge take fewer nats as two groups than as one; two
triangles do not (too few edges to pay for the model):

>>> import itertools
>>> import numpy as np
>>> def cliques(k):
...     e = np.array([(a + h, b + h) for h in (0, k) for a, b in itertools.combinations(range(k), 2)] + [(0, k)])
...     return [round(description_length(2 * k, e[:, 0], e[:, 1], np.array(b)), 1)
...             for b in (np.repeat([0, 1], k), np.zeros(2 * k, int))]
>>> cliques(8), cliques(3)
([86.9, 99.4], [20.0, 14.5])
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.optimize import brentq
from scipy.special import gammaln, spence

EXACT_PARTITIONS = 300  # q(m, n) by recurrence below this m, by its asymptotic form above


def _lnfact(x):
    return gammaln(np.asarray(x, float) + 1)


def _lnbinom(n, k):
    return _lnfact(n) - _lnfact(k) - _lnfact(np.asarray(n, float) - k)


def _lnmultiset(n, k):
    """ln of the number of multisets of k items from n kinds, C(n + k - 1, k)."""
    return _lnbinom(np.asarray(n, float) + k - 1, k)


@cache
def _partition_table() -> np.ndarray:
    """ln q(m, n) for m, n < EXACT_PARTITIONS: q(m, n) = q(m, n - 1) + q(m - n, n)."""
    size = EXACT_PARTITIONS
    q = np.zeros((size, size))
    q[0, :] = 1
    for n in range(1, size):
        for m in range(1, size):
            q[m, n] = q[m, n - 1] + (q[m - n, n] if m >= n else 0)
    with np.errstate(divide="ignore"):
        return np.log(q)


def log_partitions(m: int, n: int) -> float:
    """ln q(m, n), the number of partitions of m into at most n parts ([2]_, app. D):
    ``q ≈ f(u) exp(sqrt(m) g(u)) / m``, u = n / sqrt(m), with v(u) the root of
    ``v = u sqrt(Li2(1 - e^-v))``, ``f = v / (2^(3/2) π u) (1 - (1 + u²/2) e^-v)^(-1/2)``
    and ``g = 2v/u - u ln(1 - e^-v)``."""
    n = min(n, m)
    if m <= 0 or n <= 1:
        return 0.0
    if m < EXACT_PARTITIONS:
        return float(_partition_table()[m, n])
    u = n / np.sqrt(m)
    if u > 20:  # no bound in effect: Hardy-Ramanujan, q ≈ exp(π sqrt(2m/3)) / (4 sqrt(3) m)
        return float(np.pi * np.sqrt(2 * m / 3) - np.log(4 * np.sqrt(3) * m))
    dilog = lambda x: spence(1 - x)  # noqa: E731 - scipy's spence(z) is Li2(1 - z)
    v = brentq(lambda v: v - u * np.sqrt(dilog(1 - np.exp(-v))), 1e-12, 100.0)
    f = v / (2 ** 1.5 * np.pi * u) * (1 - (1 + u * u / 2) * np.exp(-v)) ** -0.5
    g = 2 * v / u - u * np.log(1 - np.exp(-v))
    return float(np.log(f) + np.sqrt(m) * g - np.log(m))


def _partition_cost(groups: np.ndarray) -> float:
    """-ln P(b) of a partition of len(groups) items."""
    sizes = np.bincount(groups)
    n, b = len(groups), len(sizes)
    return float(_lnfact(n) - _lnfact(sizes).sum() + _lnbinom(n - 1, b - 1) + np.log(n))


def _block_edges(lo: np.ndarray, hi: np.ndarray, count: np.ndarray, groups: np.ndarray):
    """The multigraph between groups: end groups (r <= s) and edge counts of each pair."""
    b = int(groups.max()) + 1
    r, s = groups[lo], groups[hi]
    key, inverse = np.unique(np.minimum(r, s) * b + np.maximum(r, s), return_inverse=True)
    return key // b, key % b, np.bincount(inverse, weights=count)


def _degree_cost(degree: np.ndarray, groups: np.ndarray, group_degree: np.ndarray) -> float:
    """-ln P(k|e,b): each group's degree histogram, then its degrees in some order."""
    sizes = np.bincount(groups)
    _, histogram = np.unique(groups.astype(np.int64) * (degree.max() + 1) + degree, return_counts=True)
    bound = sum(log_partitions(int(m), int(n)) for m, n in zip(group_degree, sizes))
    return float(_lnfact(sizes).sum() - _lnfact(histogram).sum() + bound)


def _upper_levels(lo, hi, count, groups, split) -> float:
    """The nested prior: the group multigraph sent level by level up to one group."""
    total = 0.0
    while (nodes := int(groups.max()) + 1) > 1:
        above = np.asarray(split(nodes, lo, hi, count), np.int64)
        if above.max() + 1 == nodes:  # the level cannot be coarsened: one group above it
            above = np.zeros(nodes, np.int64)
        sizes = np.bincount(above).astype(float)
        lo, hi, count = _block_edges(lo, hi, count, above)
        pairs = np.where(lo == hi, sizes[lo] * (sizes[lo] + 1) / 2, sizes[lo] * sizes[hi])
        total += float(_lnmultiset(pairs, count).sum()) + _partition_cost(above)
        groups = above
    return total


def _leiden_split(nodes: int, lo: np.ndarray, hi: np.ndarray, count: np.ndarray) -> np.ndarray:
    from sigil.transforms.communities import cluster_graph

    return cluster_graph(nodes, lo, hi, count, "leiden", seed=0, iterations=-1)


def description_length(n: int, src: np.ndarray, dst: np.ndarray, labels: np.ndarray, split=_leiden_split) -> float:
    """Σ in nats of the simple undirected graph (src, dst) on vertices 0..n-1 under the
    nested DC-SBM with ``labels`` as its bottom partition (module docstring). Smaller is
    better. ``split(nodes, lo, hi, count)`` groups a level's multigraph into the next."""
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    groups = np.unique(np.asarray(labels), return_inverse=True)[1].astype(np.int64)
    degree = np.bincount(src, minlength=n) + np.bincount(dst, minlength=n)
    lo, hi, count = _block_edges(src, dst, np.ones(len(src)), groups)
    group_degree = np.bincount(groups, weights=degree)
    inside = lo == hi  # e_rr!! = 2^(m_rr) m_rr! for the m_rr edges inside r
    edges = (_lnfact(degree).sum() - _lnfact(group_degree).sum() + _lnfact(count[~inside]).sum()
             + (count[inside] * np.log(2) + _lnfact(count[inside])).sum())
    return float(-edges + _degree_cost(degree, groups, group_degree) + _partition_cost(groups)
                 + _upper_levels(lo, hi, count, groups, split))
