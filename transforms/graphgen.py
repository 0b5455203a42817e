"""Graphs with planted communities, generated in independent chunks at any size.

A degree-corrected planted partition in the spirit of the LFR benchmark (Lancichinetti,
Fortunato, Radicchi, Phys. Rev. E 78, 2008), built so that every chunk of vertices is
generated alone, in O(edges) numpy work, without the whole graph in memory:

* community sizes follow a power law of exponent ``community_exponent`` between
  ``min_community`` and ``max_community``; vertices are assigned to them in order;
* vertex degrees follow a power law of exponent ``degree_exponent`` up to ``max_degree``,
  its lower end chosen so that the mean is ``average_degree``;
* each vertex v starts about d_v / 2 edges (the other half reach it from others): each goes
  outside its community with probability ``mixing`` (to a uniform vertex of another
  community), else to a uniform other member of its own. The expected fraction of a
  vertex's edges leaving its community is then ``mixing``, LFR's mu.

External vertex ids are a seeded permutation of 0..n-1, so ids do not reveal communities.
Every random draw comes from ``numpy.random.default_rng((seed, chunk))``: a chunk's edges
are the same whichever task makes them, and a rerun gives the same graph.

Example
-------
>>> plan = Plan.make(vertices=1000, average_degree=10, max_degree=30, min_community=20,
...                  max_community=50, mixing=0.2, seed=1)
>>> src, dst = plan.edges(0, 0, 1000)
>>> int(plan.community_starts[-1]), bool(abs(2 * len(src) / 1000 - 10) < 1.5)
(1000, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _power_law(rng, count: int, low: float, high: float, exponent: float) -> np.ndarray:
    """``count`` draws of density ~ x^-exponent on [low, high] (inverse transform)."""
    u = rng.random(count)
    if abs(exponent - 1) < 1e-9:
        return low * (high / low) ** u
    a, b = low ** (1 - exponent), high ** (1 - exponent)
    return (a + u * (b - a)) ** (1 / (1 - exponent))


def _mean_power_law(low: float, high: float, exponent: float) -> float:
    x = np.linspace(low, high, 20_001)
    w = x ** -exponent
    return float((x * w).sum() / w.sum())


def min_degree(average: float, maximum: float, exponent: float) -> float:
    """The lower end of a power law on [low, maximum] whose mean is ``average`` (bisection)."""
    if not 1 <= average < maximum:
        raise ValueError(f"need 1 <= average_degree < max_degree, got {average} and {maximum}")
    lo, hi = 1e-3, float(average)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _mean_power_law(mid, maximum, exponent) < average else (lo, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class Plan:
    """The graph's global layout (small: one number per community), shared by every chunk."""

    vertices: int
    average_degree: float
    max_degree: float
    degree_exponent: float
    mixing: float
    seed: int
    community_starts: np.ndarray  # community c holds vertices community_starts[c]:community_starts[c+1]
    permutation_seed: int

    @classmethod
    def make(cls, vertices: int, average_degree: float = 15, max_degree: float = 50, min_community: int = 20,
             max_community: int = 100, mixing: float = 0.3, degree_exponent: float = 2.0,
             community_exponent: float = 1.5, seed: int = 0) -> "Plan":
        if not 1 <= vertices < 3_000_000_000:
            raise ValueError(f"vertices must be in [1, 3e9), got {vertices}")
        if not 0 <= mixing <= 1:
            raise ValueError(f"mixing must be in [0, 1], got {mixing}")
        if not 2 <= min_community <= max_community:
            raise ValueError("need 2 <= min_community <= max_community")
        rng = np.random.default_rng((seed, 1 << 40))
        expected = _mean_power_law(min_community, max_community, community_exponent)
        sizes = np.rint(_power_law(rng, int(vertices / expected * 1.2) + 2, min_community, max_community,
                                   community_exponent)).astype(np.int64)
        ends = np.cumsum(sizes)
        k = int(np.searchsorted(ends, vertices))  # communities until n is covered; the last one absorbs the rest
        starts = np.r_[0, ends[:k]] if k else np.zeros(1, np.int64)
        starts = starts[starts < vertices]
        if len(starts) > 1 and vertices - starts[-1] < min_community:
            starts = starts[:-1]  # a short tail joins the previous community
        return cls(vertices, float(average_degree), float(max_degree), float(degree_exponent), float(mixing), seed,
                   np.r_[starts, vertices].astype(np.int64), seed)

    def community_of(self, v: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.community_starts, v, side="right") - 1

    def external_ids(self, v: np.ndarray) -> np.ndarray:
        """The external id of dense vertex v: a seeded bijection of 0..n-1 (affine map mod n
        with a multiplier coprime to n: no permutation table, any chunk computes it)."""
        a = self._multiplier()
        b = np.random.default_rng((self.permutation_seed, 2 << 40)).integers(0, self.vertices)
        return (np.asarray(v, np.int64) * a + b) % self.vertices  # exact in int64 while n < 3e9

    def _multiplier(self) -> int:
        rng = np.random.default_rng((self.permutation_seed, 3 << 40))
        while True:
            a = int(rng.integers(1, max(self.vertices, 2)))
            if np.gcd(a, self.vertices) == 1:
                return a

    def edges(self, chunk: int, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """The edges started by vertices first..last-1 (dense ids), as (src, dst) arrays."""
        rng = np.random.default_rng((self.seed, chunk))
        v = np.arange(first, last, dtype=np.int64)
        low = min_degree(self.average_degree, self.max_degree, self.degree_exponent)
        degree = _power_law(rng, len(v), low, self.max_degree, self.degree_exponent)
        stubs = np.floor(degree / 2 + rng.random(len(v))).astype(np.int64)  # randomised rounding of d/2
        src = np.repeat(v, stubs)
        outside = rng.random(len(src)) < self.mixing
        comm = self.community_of(src)
        lo, hi = self.community_starts[comm], self.community_starts[comm + 1]
        # inside: a uniform other member of the own community
        inner = lo + (src - lo + 1 + (rng.random(len(src)) * (hi - lo - 1)).astype(np.int64)) % (hi - lo)
        # outside: a uniform vertex of the other n - |C| ones, skipping the own community
        other = (rng.random(len(src)) * (self.vertices - (hi - lo))).astype(np.int64)
        outer = np.where(other >= lo, other + (hi - lo), other)
        dst = np.where(outside & (hi - lo < self.vertices), outer, inner)
        keep = dst != src
        return src[keep], dst[keep]


def seed_queries(plan: Plan, queries: int, seeds: int, seed: int = 0) -> dict:
    """``queries`` seed queries: each a uniform community, ``seeds`` distinct uniform members
    of it (external ids) and the community's size as the target."""
    rng = np.random.default_rng((seed, 4 << 40))
    starts = plan.community_starts
    chosen = rng.integers(0, len(starts) - 1, queries)
    rows = {"query_id": [], "seeds": [], "size": [], "community": []}
    for q, c in enumerate(chosen):
        lo, hi = int(starts[c]), int(starts[c + 1])
        members = lo + rng.choice(hi - lo, min(seeds, hi - lo), replace=False)
        rows["query_id"].append(f"q{q}")
        rows["seeds"].append([str(x) for x in plan.external_ids(members)])
        rows["size"].append(hi - lo)
        rows["community"].append(int(c))
    return rows
