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
    """The lower end ``low`` of a power law on ``[low, maximum]`` whose mean is ``average``.

    The mean of the density ``x^-exponent`` on ``[low, maximum]`` grows with ``low``;
    60 bisection steps on ``[1e-3, average]`` solve ``mean(low) = average``, as LFR
    chooses its minimum degree from the average one [1]_.

    Parameters
    ----------
    average : float
        Target mean, ``1 <= average < maximum``.
    maximum : float
        Upper end of the law.
    exponent : float
        Exponent of the density.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Unless ``1 <= average < maximum``.

    References
    ----------
    .. [1] A. Lancichinetti, S. Fortunato, F. Radicchi, "Benchmark graphs for testing community
       detection algorithms", Phys. Rev. E 78, 046110, 2008. doi:10.1103/PhysRevE.78.046110

    Examples
    --------
    >>> round(min_degree(10, 30, 2.0), 3)
    4.471
    """
    if not 1 <= average < maximum:
        raise ValueError(f"need 1 <= average_degree < max_degree, got {average} and {maximum}")
    lo, hi = 1e-3, float(average)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _mean_power_law(mid, maximum, exponent) < average else (lo, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class Plan:
    """The graph's global layout (small: one number per community), shared by every chunk.

    Build it with ``Plan.make``; every chunk of vertices then makes its edges alone
    (``edges``), so a graph of any size is generated in parallel, in O(edges) work [1]_.

    Parameters
    ----------
    vertices : int
        n, dense vertex ids 0..n-1.
    average_degree, max_degree : float
        Mean and upper end of the degree power law.
    degree_exponent : float
        Exponent of the degree power law.
    mixing : float
        LFR's mu: the expected fraction of a vertex's edges that leave its community.
    seed : int
        Seed of the edges.
    community_starts : numpy.ndarray
        int64, community c holds vertices ``community_starts[c]:community_starts[c+1]``;
        the last entry is n.
    permutation_seed : int
        Seed of the external ids.

    References
    ----------
    .. [1] A. Lancichinetti, S. Fortunato, F. Radicchi, "Benchmark graphs for testing community
       detection algorithms", Phys. Rev. E 78, 046110, 2008. doi:10.1103/PhysRevE.78.046110

    Examples
    --------
    >>> import numpy as np
    >>> plan = Plan.make(100, average_degree=6, max_degree=20, min_community=20, max_community=40, seed=1)
    >>> plan.community_starts.tolist(), plan.community_of(np.array([0, 26, 99])).tolist()
    ([0, 26, 58, 79, 100], [0, 1, 3])
    """

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
        """Draw the community sizes and fix the graph's parameters.

        Community sizes follow a power law of exponent ``community_exponent`` on
        ``[min_community, max_community]`` (rounded); vertices fill them in order, the
        last community absorbs the rest, and a tail shorter than ``min_community`` joins
        the previous one.

        Parameters
        ----------
        vertices : int
            n, in [1, 3e9).
        average_degree : float, default 15
            Mean degree, ``1 <= average_degree < max_degree``.
        max_degree : float, default 50
            Upper end of the degree power law.
        min_community, max_community : int, default 20 and 100
            Range of community sizes, ``2 <= min_community <= max_community``.
        mixing : float, default 0.3
            LFR's mu, in [0, 1].
        degree_exponent : float, default 2.0
            Exponent of the degree power law.
        community_exponent : float, default 1.5
            Exponent of the community-size power law.
        seed : int, default 0
            Seed of the sizes, the edges and the external ids.

        Returns
        -------
        Plan

        Raises
        ------
        ValueError
            On a parameter out of range (``average_degree`` is checked by ``edges``).

        Examples
        --------
        >>> plan = Plan.make(1000, min_community=20, max_community=50, seed=1)
        >>> int(plan.community_starts[-1]), bool((plan.community_starts[1:] - plan.community_starts[:-1] >= 20).all())
        (1000, True)
        """
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
        """The community of each dense vertex id.

        Parameters
        ----------
        v : numpy.ndarray
            Dense vertex ids, in 0..n-1.

        Returns
        -------
        numpy.ndarray
            int64 community index of each.

        Examples
        --------
        >>> import numpy as np
        >>> plan = Plan.make(100, average_degree=6, max_degree=20, min_community=20, max_community=40, seed=1)
        >>> plan.community_of(np.array([25, 26])).tolist()
        [0, 1]
        """
        return np.searchsorted(self.community_starts, v, side="right") - 1

    def external_ids(self, v: np.ndarray) -> np.ndarray:
        """The external id of each dense vertex: a seeded bijection of 0..n-1.

        ``id(v) = (a v + b) mod n`` with a seeded multiplier a coprime to n (so the map is
        a bijection) and offset b: no permutation table, any chunk computes it.

        Parameters
        ----------
        v : numpy.ndarray
            Dense vertex ids, in 0..n-1.

        Returns
        -------
        numpy.ndarray
            int64 external ids.

        Examples
        --------
        >>> import numpy as np
        >>> plan = Plan.make(100, average_degree=6, max_degree=20, min_community=20, max_community=40, seed=1)
        >>> ids = plan.external_ids(np.arange(100))
        >>> sorted(ids.tolist()) == list(range(100)), ids[:3].tolist()
        (True, [60, 97, 34])
        """
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
        """The edges started by vertices ``first..last-1``, drawn from ``(seed, chunk)``.

        Vertex v draws its degree d_v from the power law and starts about d_v / 2 edges
        (randomised rounding; the other half reach it from others); each goes, with
        probability ``mixing``, to a uniform vertex outside v's community, else to a
        uniform other member of it. Self-loops are dropped; an edge may repeat.

        Parameters
        ----------
        chunk : int
            Index of the chunk, part of the random stream's key: one chunk, one stream.
        first, last : int
            Dense vertex ids ``first..last-1`` start the chunk's edges.

        Returns
        -------
        src, dst : numpy.ndarray
            int64 end points (dense ids), grouped by ``src``.

        Raises
        ------
        ValueError
            Unless ``1 <= average_degree < max_degree``.

        Examples
        --------
        >>> plan = Plan.make(100, average_degree=6, max_degree=20, min_community=20, max_community=40,
        ...                  mixing=0.1, seed=1)
        >>> src, dst = plan.edges(0, 0, 50)
        >>> len(src), bool((src < 50).all()), bool((src != dst).all())
        (156, True, True)
        """
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
    """Seed queries for a generated graph, with their true communities.

    Each query picks a uniform community, ``seeds`` distinct uniform members of it and the
    community's size as its target size.

    Parameters
    ----------
    plan : Plan
        The graph.
    queries : int
        Number of queries.
    seeds : int
        Seeds per query (fewer when a community is smaller).
    seed : int, default 0
        Seed of the draw.

    Returns
    -------
    dict
        Lists by column: ``query_id`` (``"q0"``, ...), ``seeds`` (external ids as
        strings), ``size`` and ``community`` (its index).

    Examples
    --------
    >>> plan = Plan.make(100, average_degree=6, max_degree=20, min_community=20, max_community=40, seed=1)
    >>> seed_queries(plan, queries=2, seeds=3, seed=0)
    {'query_id': ['q0', 'q1'], 'seeds': [['89', '82', '48'], ['87', '72', '91']],
     'size': [26, 21], 'community': [0, 2]}
    """
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


def degree_corrected_blocks(vertices: int, blocks: int, average_degree: float, assortativity: float,
                            degree_exponent: float = 2.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sparse graph of a few large communities and heavy-tailed degrees, such as
    political-blog or follower networks, from the degree-corrected stochastic block model
    (Karrer & Newman, Phys. Rev. E 83, 016107, 2011) with Chung-Lu sampling.

    Vertex i gets a block b_i uniformly and a propensity θ_i >= 1 from the power law of
    exponent ``degree_exponent`` (capped at sqrt(n)); the number of edges between blocks r
    and s is Poisson with mean proportional to θ_r θ_s ω_rs, θ_r the sum over the block and
    ω_rs ``assortativity`` when r = s, else 1, scaled to ``average_degree``; each end is a
    member drawn with probability proportional to θ. Many vertices get degree 1 or 2, hubs
    get hundreds; duplicate edges and self-loops are dropped (isolated vertices remain).

    Returns
    -------
    tuple of numpy.ndarray
        ``src``, ``dst`` (src < dst, distinct) and each vertex's block.

    Examples
    --------
    >>> src, dst, block = degree_corrected_blocks(2000, 2, 8, 10, seed=1)
    >>> bool(abs(2 * len(src) / 2000 - 8) < 1.5), bool((block[src] == block[dst]).mean() > 0.85)
    (True, True)
    """
    rng = np.random.default_rng((seed, 5 << 40))
    theta = _power_law(rng, vertices, 1.0, max(np.sqrt(vertices), 2.0), degree_exponent)
    block = rng.integers(0, blocks, vertices)
    members = [np.flatnonzero(block == r) for r in range(blocks)]
    mass = np.array([theta[m].sum() for m in members])
    omega = np.where(np.eye(blocks, dtype=bool), float(assortativity), 1.0)
    pairs = np.outer(mass, mass) * omega
    expected = np.triu(pairs) - np.diag(np.diag(pairs)) / 2  # each unordered pair once, r = s halved
    counts = rng.poisson(expected * (vertices * average_degree / 2) / expected.sum())
    src, dst = [], []
    for r, s in zip(*np.nonzero(counts)):
        for side, group in ((src, members[r]), (dst, members[s])):
            side.append(rng.choice(group, counts[r, s], p=theta[group] / theta[group].sum()))
    src, dst = np.concatenate(src), np.concatenate(dst)
    key = np.unique(np.minimum(src, dst) * vertices + np.maximum(src, dst))
    key = key[key // vertices != key % vertices]
    return key // vertices, key % vertices, block
