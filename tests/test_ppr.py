"""PowerWalk PPR (transforms/ppr.py): the walks against a slow reference walker, fingerprints
against exact PPR, exact PPR against networkx and a dense solve, the decomposition's algebra
and accuracy, determinism under any batching, truncation, top k, metrics and the index."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sigil.transforms.ppr import (Graph, PPRIndex, advance, decompose, exact_ppr, fingerprint_matrix, fingerprints,
                                  l1_error, min_visits, ndcg_at_k, precision_at_k, query, top_k, visit_values)

ALPHA = 0.15

# ---------------------------------------------------------------------------- references

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix(z: int) -> int:
    """splitmix64's finaliser on Python ints."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def adjacency(n, src, dst, weight, directed):
    """Out-neighbour lists [(target, weight)] sorted, from the raw edges: weight-0 edges left
    out, undirected edges both ways (a self-loop once)."""
    weight = [1.0] * len(src) if weight is None else weight
    out = {u: [] for u in range(n)}
    for u, v, w in zip(src, dst, weight):
        if w > 0:
            out[u].append((v, w))
            if not directed and u != v:
                out[v].append((u, w))
    return {u: sorted(nbrs) for u, nbrs in out.items()}


def reference_walks(n, src, dst, weight, directed, source, walks, alpha, seed):
    """One source's fingerprint by a plain Python walker drawing the documented numbers:
    step j of walk w from s uses splitmix64 keyed by mix(mix(mix(seed) ^ s) ^ w)."""
    out = adjacency(n, src, dst, weight, directed)
    key0 = mix(seed % (1 << 64))
    counts = Counter()
    for w in range(walks):
        key = mix(mix(key0 ^ source) ^ w)
        at, step = source, 0
        counts[at] += 1
        while True:
            u = (mix((key + (step + 1) * GAMMA) & M64) >> 11) * 2.0 ** -53
            step += 1
            if u < alpha:
                break
            nbrs = out[at]
            if not nbrs:
                at = source
            else:
                x = (u - alpha) / (1.0 - alpha)
                if weight is None:
                    at = nbrs[min(int(x * len(nbrs)), len(nbrs) - 1)][0]
                else:
                    acc, cum = 0.0, []
                    for _, w_ in nbrs:
                        acc += w_
                        cum.append(acc)
                    cum = [c / acc for c in cum]
                    cum[-1] = 1.0
                    at = nbrs[next(k for k, c in enumerate(cum) if c > x)][0]
            counts[at] += 1
    return {v: np.float32(alpha * c / walks) for v, c in sorted(counts.items())}


def dense_ppr(n, src, dst, weight, directed, p, alpha):
    """PPR of start distribution p by a dense linear solve: x = alpha p + (1 - alpha) x M,
    M the transition matrix with dangling rows replaced by p."""
    m = np.zeros((n, n))
    for u, nbrs in adjacency(n, src, dst, weight, directed).items():
        for v, w in nbrs:
            m[u, v] += w
    out = m.sum(axis=1)
    m[out > 0] /= out[out > 0, None]
    m[out == 0] = p
    return np.linalg.solve((np.eye(n) - (1 - alpha) * m).T, alpha * p)


@st.composite
def small_graphs(draw):
    n = draw(st.integers(1, 7))
    m = draw(st.integers(0, 14))
    src = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    dst = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    weight = draw(st.one_of(st.none(), st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.5]), min_size=m, max_size=m)))
    return n, src, dst, weight, draw(st.booleans())


@st.composite
def seed_sets(draw, n):
    return draw(st.lists(st.one_of(st.integers(0, n - 1), st.lists(st.integers(0, n - 1), min_size=1, max_size=3)),
                         min_size=1, max_size=4))


def start_vector(q, n):
    p = np.zeros(n)
    seeds = sorted({q} if isinstance(q, int) else set(q))
    p[seeds] = 1 / len(seeds)
    return p


# ---------------------------------------------------------------------------- test graphs


def graph_of(g: nx.Graph, weight: str | None = None) -> Graph:
    edges = list(g.edges(data=True))
    src = np.array([u for u, _, _ in edges], np.int64)
    dst = np.array([v for _, v, _ in edges], np.int64)
    w = None if weight is None else np.array([d[weight] for _, _, d in edges])
    return Graph.from_edges(src, dst, w, n=g.number_of_nodes(), directed=g.is_directed())


def nx_graph(kind: str) -> nx.Graph:
    """25 vertices, with dangling vertices (directed) or isolated ones (undirected)."""
    rng = np.random.default_rng(4)
    if kind == "undirected":
        g = nx.gnp_random_graph(25, 0.1, seed=4)
        g.add_edges_from([(2, 2), (5, 5)])
        g.remove_edges_from(list(g.edges(9)))
        return g
    g = nx.gnp_random_graph(25, 0.12, seed=4, directed=True)
    g.remove_edges_from(list(g.out_edges([3, 7])))
    if kind == "multi":
        g = nx.MultiDiGraph(g)
        g.add_edges_from([(0, 1), (0, 1), (4, 4)])
    if kind == "weighted":
        for u, v in g.edges():
            g[u][v]["w"] = float(rng.choice([0.0, 0.3, 1.0, 4.0]))
    return g


def nx_ppr(g: nx.Graph, p: np.ndarray, weight: str | None = None) -> np.ndarray:
    pr = nx.pagerank(g, alpha=1 - ALPHA, personalization=dict(enumerate(p)), tol=1e-14, max_iter=10_000,
                     weight=weight)
    return np.array([pr[v] for v in range(g.number_of_nodes())])


KINDS = {"directed": None, "multi": None, "weighted": "w", "undirected": None}
QUERIES = [0, 3, 11, [0, 3], [1, 7, 20]]


# ---------------------------------------------------------------------------- graph


def test_graph_csr():
    g = Graph.from_edges([2, 0, 0, 1], [0, 2, 1, 1], [1.0, 3.0, 1.0, 0.0], n=4)
    assert g.offsets.tolist() == [0, 2, 2, 3, 3]  # 1's only edge weighs 0: dangling, as is 3
    assert g.targets.tolist() == [1, 2, 0]
    assert g.cumulative.tolist() == [0.25, 1.0, 1.0]
    assert g.transition().toarray().tolist() == [[0, 0.25, 0.75, 0], [0] * 4, [1, 0, 0, 0], [0] * 4]
    # the input order of the edges does not matter
    h = Graph.from_edges([0, 0, 1, 2], [1, 2, 1, 0], [1.0, 3.0, 0.0, 1.0], n=4)
    assert all(np.array_equal(a, b) for a, b in [(g.offsets, h.offsets), (g.targets, h.targets),
                                                  (g.cumulative, h.cumulative)])


@pytest.mark.parametrize("args, kwargs, message", [
    (([0, 1], [1]), {}, "one length"),
    (([0.0], [1.0]), {}, "integers"),
    (([0, -1], [1, 0]), {}, "0..n-1"),
    (([0, 3], [1, 0]), {"n": 3}, "0..n-1"),
    (([0], [1], [np.nan]), {}, "finite"),
    (([0], [1], [-1.0]), {}, "non-negative"),
    (([0], [1], [1.0, 2.0]), {}, "one value per edge"),
])
def test_graph_rejects_bad_edges(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Graph.from_edges(*args, **kwargs)


# ---------------------------------------------------------------------------- exact PPR


@pytest.mark.parametrize("kind", KINDS)
def test_exact_ppr_is_networkx_pagerank(kind):
    g = nx_graph(kind)
    graph = graph_of(g, KINDS[kind])
    exact = exact_ppr(graph, QUERIES)
    for row, q in zip(exact, QUERIES):
        assert np.abs(row - nx_ppr(g, start_vector(q, 25), KINDS[kind])).sum() < 1e-9
        assert abs(row.sum() - 1) < 1e-12


def test_dangling_vertex_closed_form():
    # 0 -> 1, 1 dangling: from 1 the walk goes on at its source 0
    exact = exact_ppr(Graph.from_edges([0], [1]), [0, 1])
    a = ALPHA
    assert np.allclose(exact[0], [1 / (2 - a), (1 - a) / (2 - a)], atol=1e-10)
    assert np.allclose(exact[1], [0, 1], atol=1e-10)


@settings(max_examples=60)
@given(st.data())
def test_exact_ppr_is_a_dense_solve(data):
    n, src, dst, weight, directed = data.draw(small_graphs())
    queries = data.draw(seed_sets(n))
    exact = exact_ppr(Graph.from_edges(np.array(src, np.int64), np.array(dst, np.int64), weight, n=n,
                                       directed=directed), queries)
    for row, q in zip(exact, queries):
        assert np.abs(row - dense_ppr(n, src, dst, weight, directed, start_vector(q, n), ALPHA)).sum() < 1e-9


# ---------------------------------------------------------------------------- fingerprints


@settings(max_examples=60)
@given(st.data())
def test_walks_are_the_reference_walks(data):
    n, src, dst, weight, directed = data.draw(small_graphs())
    sources = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    walks, seed = data.draw(st.integers(1, 20)), data.draw(st.integers(-(1 << 70), 1 << 70))
    alpha = data.draw(st.sampled_from([ALPHA, 0.5, 1.0]))
    graph = Graph.from_edges(np.array(src, np.int64), np.array(dst, np.int64), weight, n=n, directed=directed)
    fp = fingerprints(graph, sources, walks, alpha=alpha, seed=seed)
    expected = [(s, v, x) for s in sources
                for v, x in reference_walks(n, src, dst, weight, directed, s, walks, alpha, seed).items()]
    assert list(zip(fp.source.tolist(), fp.target.tolist(), fp.value.tolist())) == expected
    assert fp.value.dtype == np.float32 and not fp.dropped.any()


@pytest.mark.parametrize("kind", KINDS)
def test_fingerprints_converge_to_exact_ppr(kind):
    g = nx_graph(kind)
    graph = graph_of(g, KINDS[kind])
    sources = np.array([0, 3, 11, 20])
    exact = exact_ppr(graph, sources)
    errors = {}
    for walks in (100, 20_000):
        fp = fingerprints(graph, sources, walks, seed=5)
        f = fingerprint_matrix(fp.source, fp.target, fp.value, graph.n)[sources]
        errors[walks] = l1_error(f, exact)
        # unbiased: each source's values sum to 1 in expectation (std sqrt((1 - alpha) / walks))
        assert np.abs(f.sum(axis=1) - 1).max() < 5 * np.sqrt((1 - ALPHA) / walks)
    assert errors[20_000].max() < 0.04
    assert errors[20_000].mean() < errors[100].mean() / 5


def test_fingerprints_do_not_depend_on_batching_or_order():
    graph = graph_of(nx.gnp_random_graph(300, 0.02, seed=2, directed=True))
    whole = fingerprints(graph, np.arange(300), 7, seed=11)
    order = np.random.default_rng(0).permutation(300)
    parts = [fingerprints(graph, order[a:b], 7, seed=11) for a, b in [(0, 1), (1, 120), (120, 300)]]
    rows = np.concatenate([np.c_[p.source, p.target] for p in parts])
    values = np.concatenate([p.value for p in parts])
    by = np.lexsort((rows[:, 1], rows[:, 0]))
    assert np.array_equal(rows[by], np.c_[whole.source, whole.target])
    assert np.array_equal(values[by], whole.value)
    # the edges' input order does not matter; another seed gives other walks
    e = np.c_[graph.offsets.searchsorted(np.arange(len(graph.targets)), side="right") - 1, graph.targets]
    e = e[np.random.default_rng(1).permutation(len(e))]
    shuffled = Graph.from_edges(e[:, 0], e[:, 1], n=300)
    assert np.array_equal(fingerprints(shuffled, np.arange(300), 7, seed=11).value, whole.value)
    assert not np.array_equal(fingerprints(graph, np.arange(300), 7, seed=12).value, whole.value)


def test_truncation_accounts_for_the_dropped_mass():
    graph = graph_of(nx_graph("weighted"), "w")
    sources = np.arange(25)
    full = fingerprints(graph, sources, 50, seed=3)
    floor = 0.01
    cut = fingerprints(graph, sources, 50, seed=3, floor=floor)
    keep = full.value >= floor
    assert 0 < keep.sum() < len(keep)
    assert np.array_equal(cut.source, full.source[keep]) and np.array_equal(cut.target, full.target[keep])
    assert np.array_equal(cut.value, full.value[keep]) and (cut.value >= floor).all()
    assert np.allclose(cut.dropped, np.bincount(full.source[~keep], weights=full.value[~keep], minlength=25))
    kept = np.bincount(cut.source, weights=cut.value, minlength=25)
    assert np.allclose(kept + cut.dropped, np.bincount(full.source, weights=full.value, minlength=25))


def test_fingerprints_reject_bad_arguments():
    graph = Graph.from_edges([0, 1], [1, 0])
    for kwargs, message in [({"sources": [0, 0]}, "distinct"), ({"sources": [2]}, "0..n-1"),
                            ({"sources": [0], "walks": 0}, "walks"), ({"sources": [0], "alpha": 0.0}, "alpha")]:
        with pytest.raises(ValueError, match=message):
            fingerprints(graph, **{"walks": 5, **kwargs})
    with pytest.raises(ValueError, match="twice"):
        fingerprint_matrix([0, 0], [1, 1], [0.5, 0.5], 2)


def stepped(graph: Graph, sources, walks: int, alpha: float, seed: int, order_seed: int = 0) -> dict:
    """Every walker stepped by ``advance`` until it stops, as ppr-index's joined path does
    (each round's walkers in a new random order): visits per (source, vertex)."""
    rng = np.random.default_rng(order_seed)
    source = np.repeat(np.asarray(sources, np.int64), walks)
    walk, at, step = np.tile(np.arange(walks), len(sources)), source.copy(), np.zeros(len(source), np.int64)
    visits = Counter(zip(source.tolist(), at.tolist()))
    while len(source):
        shuffle = rng.permutation(len(source))
        source, walk, at, step = source[shuffle], walk[shuffle], at[shuffle], step[shuffle]
        nxt = advance(graph.offsets, graph.targets, graph.cumulative, at, source, walk, step, alpha=alpha, seed=seed)
        go = nxt >= 0
        source, walk, at, step = source[go], walk[go], nxt[go], step[go] + 1
        visits.update(zip(source.tolist(), at.tolist()))
    return visits


@settings(max_examples=40)
@given(st.data())
def test_advance_steps_the_walks_of_fingerprints(data):
    """Walkers stepped one draw at a time, in any order, visit what ``fingerprints`` counts:
    the joined path of ppr-index and the walks in memory give the same fingerprints."""
    n, src, dst, weight, directed = data.draw(small_graphs())
    graph = Graph.from_edges(np.array(src, np.int64), np.array(dst, np.int64), weight, n=n, directed=directed)
    sources = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    walks, seed = data.draw(st.integers(1, 12)), data.draw(st.integers(-(1 << 70), 1 << 70))
    alpha = data.draw(st.sampled_from([ALPHA, 0.5, 1.0]))
    visits = stepped(graph, sources, walks, alpha, seed, order_seed=data.draw(st.integers(0, 9)))
    fp = fingerprints(graph, sources, walks, alpha=alpha, seed=seed)
    rows = sorted(visits.items(), key=lambda kv: (sources.index(kv[0][0]), kv[0][1]))
    assert [k for k, _ in rows] == list(zip(fp.source.tolist(), fp.target.tolist()))
    assert np.array_equal(visit_values([c for _, c in rows], walks, alpha), fp.value)


def test_advance_on_a_larger_weighted_graph():
    graph = graph_of(nx_graph("weighted"), "w")
    visits = sorted(stepped(graph, np.arange(25), 30, ALPHA, 17, order_seed=3).items())
    fp = fingerprints(graph, np.arange(25), 30, seed=17)
    assert [k for k, _ in visits] == list(zip(fp.source.tolist(), fp.target.tolist()))
    assert np.array_equal(visit_values([c for _, c in visits], 30, ALPHA), fp.value)
    with pytest.raises(ValueError, match="one value per walker"):
        advance(graph.offsets, graph.targets, None, [0], [0, 1], [0], [0])
    with pytest.raises(ValueError, match="rows of the CSR"):
        advance(graph.offsets, graph.targets, None, [25], [0], [0], [0])


@pytest.mark.parametrize("floor", [0.0, 0.005, 0.01, 0.0101, 0.05, 0.3])
def test_min_visits_is_the_floor_of_fingerprints(floor):
    """A row is kept by ``floor`` exactly when its visits reach ``min_visits``: the joined
    path truncates by counts alone."""
    graph = graph_of(nx_graph("directed"))
    full = fingerprints(graph, np.arange(25), 30, seed=4)
    counts = np.rint(full.value.astype(np.float64) * 30 / ALPHA).astype(np.int64)
    assert np.array_equal(visit_values(counts, 30, ALPHA), full.value)
    cut = fingerprints(graph, np.arange(25), 30, seed=4, floor=floor)
    keep = counts >= min_visits(30, ALPHA, floor)
    assert np.array_equal(cut.source, full.source[keep]) and np.array_equal(cut.value, full.value[keep])


def test_graph_from_parquet_is_graph_from_edges(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    edges = np.array([(u, v, d["w"]) for u, v, d in nx_graph("weighted").edges(data=True)])
    src, dst, w = edges[:, 0].astype(np.int64), edges[:, 1].astype(np.int64), edges[:, 2]
    pq.write_table(pa.table({"src": src, "dst": dst, "weight": w, "multiplicity": np.ones(len(w), np.int64)}),
                   tmp_path / "part-0.parquet")
    for directed in (True, False):
        for weighted in (True, False):
            read = Graph.from_parquet(str(tmp_path), 25, directed=directed, weighted=weighted)
            built = Graph.from_edges(src, dst, w if weighted else None, n=25, directed=directed)
            assert np.array_equal(read.offsets, built.offsets) and np.array_equal(read.targets, built.targets)
            assert (read.cumulative is None) == (not weighted)
            if weighted:
                assert np.array_equal(read.cumulative, built.cumulative)


# ---------------------------------------------------------------------------- decomposition


@settings(max_examples=60)
@given(st.data())
def test_decomposition_with_exact_fingerprints_is_exact(data):
    """ppr = estimate + residual @ F holds exactly for any steps and pruning: dangling
    vertices, weights and multi-source queries included."""
    n, src, dst, weight, directed = data.draw(small_graphs())
    graph = Graph.from_edges(np.array(src, np.int64), np.array(dst, np.int64), weight, n=n, directed=directed)
    queries = data.draw(seed_sets(n))
    steps = data.draw(st.integers(0, 6))
    prune = data.draw(st.sampled_from([0.0, 1e-3, 0.05, 0.3, 1.0]))
    f = sp.csr_array(exact_ppr(graph, np.arange(n)))
    assert np.abs(query(graph, f, queries, steps, prune=prune).toarray() - exact_ppr(graph, queries)).max() < 1e-9


def test_decomposition_push():
    graph = Graph.from_edges([0, 0, 1, 2], [1, 2, 2, 0])
    d = decompose(graph, [0, [1, 2]], steps=2, prune=0.2)
    a, b = ALPHA, 1 - ALPHA
    # query 0: 0 is pushed, then 1 and 2; query [1, 2]: 1 and 2, then 0 and 2 (all >= 0.2)
    assert np.allclose(d.estimate.toarray(), [[a, a * b / 2, a * b / 2], [a * b / 2, a / 2, a / 2 + a * b / 2]])
    assert np.allclose(d.residual.toarray(), [[b * b / 2, 0, b * b / 2], [b * b / 2, b * b / 4, b * b / 4]])
    d = decompose(graph, [0, [1, 2]], steps=2, prune=0.45)  # residuals of b / 2 stay
    assert np.allclose(d.estimate.toarray(), [[a, 0, 0], [0, a / 2, a / 2]])
    assert np.allclose(d.residual.toarray(), [[0, b / 2, b / 2], [b / 2, 0, b / 2]])
    assert np.allclose(d.estimate.sum(axis=1) + d.residual.sum(axis=1), 1)
    with pytest.raises(ValueError, match="at least one seed"):
        decompose(graph, [[0], []])


def test_more_steps_more_accurate():
    g = nx.DiGraph(nx.scale_free_graph(2000, seed=3))
    g.remove_edges_from(list(nx.selfloop_edges(g)))
    graph = graph_of(g)
    fp = fingerprints(graph, np.arange(graph.n), 10, seed=1)
    f = fingerprint_matrix(fp.source, fp.target, fp.value, graph.n)
    sources = np.random.default_rng(0).choice(graph.n, 40, replace=False)
    exact = exact_ppr(graph, sources)
    error = {t: l1_error(query(graph, f, sources, t), exact).mean() for t in (0, 2, 4, 8)}
    assert error[0] > error[2] > error[4] > error[8]
    assert error[8] < error[0] / 4
    assert precision_at_k(query(graph, f, sources, 8), exact, 20).mean() > precision_at_k(f[sources], exact, 20).mean()
    assert l1_error(query(graph, f, sources, 60, prune=0.0), exact).max() < 1e-3
    # T = 0 answers the fingerprints themselves
    assert np.allclose(query(graph, f, sources, 0).toarray(), f[sources].toarray())


def test_multi_source_query_is_the_ppr_of_the_seed_set():
    g = nx_graph("directed")
    graph = graph_of(g)
    seeds = [1, 3, 20]
    expected = nx_ppr(g, start_vector(seeds, 25))
    fp = fingerprints(graph, np.arange(25), 3000, seed=2)
    f = fingerprint_matrix(fp.source, fp.target, fp.value, 25)
    # with dangling vertices it is not the mean of the seeds' PPR
    assert np.abs(exact_ppr(graph, seeds).mean(axis=0) - expected).sum() > 1e-3
    for steps in (0, 3):
        assert l1_error(query(graph, f, [seeds], steps), expected[None]).item() < 0.05
    assert np.allclose(query(graph, f, [seeds, [20, 3, 1, 3]], 3).toarray()[1], query(graph, f, [seeds], 3).toarray())


def test_a_query_scores_the_same_in_any_batch():
    """Bit for bit: what the batch job answers for a query is what the in-memory index
    answers for it alone."""
    g = nx.planted_partition_graph(6, 20, 0.3, 0.02, seed=1)
    graph = graph_of(g)
    fp = fingerprints(graph, np.arange(graph.n), 20, seed=2)
    f = fingerprint_matrix(fp.source, fp.target, fp.value, graph.n)
    rng = np.random.default_rng(3)
    queries = [rng.choice(graph.n, rng.integers(1, 4), replace=False) for _ in range(60)]
    for resolution in (0.0, 0.01):
        batch = query(graph, f, queries, 4, resolution=resolution, seed=5)
        for i, q in enumerate(queries):
            alone = query(graph, f, [q[::-1]], 4, resolution=resolution, seed=5)  # its seeds in any order
            assert np.array_equal(alone.indices, batch[[i]].indices) and np.array_equal(alone.data, batch[[i]].data)


def test_sampled_residual_is_unbiased_and_small():
    """Residual weights under the resolution are kept at it with probability weight /
    resolution: over seeds, the sampled residual averages to the whole one, every kept
    weight is at least the resolution, and far fewer entries remain."""
    g = nx.barabasi_albert_graph(300, 3, seed=4)
    graph = graph_of(g)
    whole = decompose(graph, [0, [5, 9]], steps=2, prune=0.01).residual.toarray()
    draws = [decompose(graph, [0, [5, 9]], steps=2, prune=0.01, resolution=0.005, seed=s).residual.toarray()
             for s in range(400)]
    mean = np.mean(draws, axis=0)
    assert np.abs(mean - whole).sum(axis=1).max() < 0.06 and abs(mean.sum() - whole.sum()) < 0.01
    kept = draws[0][draws[0] > 0]
    assert kept.min() >= 0.005 - 1e-12 and (draws[0] > 0).sum() < (whole > 0).sum() / 2
    assert not np.array_equal(draws[0], draws[1])  # the seed decides
    assert np.array_equal(draws[0], decompose(graph, [0, [5, 9]], 2, prune=0.01, resolution=0.005, seed=0)
                          .residual.toarray())


# ---------------------------------------------------------------------------- top k and metrics


def test_top_k():
    scores = np.array([[0.2, 0.0, 0.5, 0.2, 0.1], [0, 0, 0, 0, 0], [0.0, 0.3, 0.0, 0.0, 0.0]])
    for s in (scores, sp.csr_array(scores)):
        t = top_k(s, 3)
        assert t.query.tolist() == [0, 0, 0, 2]
        assert t.rank.tolist() == [1, 2, 3, 1] and t.rank.dtype == np.int32
        assert t.vid.tolist() == [2, 0, 3, 1]  # 0 and 3 tie: the smaller vid first
        assert t.score.tolist() == [0.5, 0.2, 0.2, 0.3]
    assert top_k(scores, 10).vid.tolist() == [2, 0, 3, 4, 1]



@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=40), min_size=1, max_size=20),
       st.integers(1, 12))
def test_top_k_is_the_lexicographic_order(rows, k):
    """The heap selection ranks exactly as a full sort by (score descending, vid ascending),
    on rows full of ties and zeros."""
    width = max(map(len, rows))
    scores = np.zeros((len(rows), width))
    for i, row in enumerate(rows):
        scores[i, :len(row)] = row
    t = top_k(scores, k)
    for i, row in enumerate(scores):
        vid = np.flatnonzero(row > 0)
        want = vid[np.lexsort((vid, -row[vid]))][:k]
        assert t.vid[t.query == i].tolist() == want.tolist()
        assert t.rank[t.query == i].tolist() == list(range(1, len(want) + 1))

def test_metrics():
    exact = np.array([[0.4, 0.3, 0.2, 0.1, 0.0], [0.5, 0.5, 0.0, 0.0, 0.0]])
    assert l1_error(exact, exact).tolist() == [0, 0]
    assert precision_at_k(exact, exact, 2).tolist() == [1, 1]
    assert np.allclose(ndcg_at_k(exact, exact, 3), 1)
    estimate = np.array([[0.1, 0.2, 0.3, 0.4, 0.0], [0.6, 0.0, 0.0, 0.0, 0.4]])
    assert np.allclose(l1_error(estimate, exact), [0.6 + 0.2, 0.1 + 0.5 + 0.4])
    assert precision_at_k(estimate, exact, 2).tolist() == [0.0, 0.5]
    assert precision_at_k(estimate, exact, 4).tolist() == [1.0, 0.5]  # only 2 reachable vertices in row 1
    ideal = 0.4 + 0.3 / np.log2(3)
    assert np.allclose(ndcg_at_k(estimate, exact, 2),
                       [(0.1 + 0.2 / np.log2(3)) / ideal, 0.5 / (0.5 + 0.5 / np.log2(3))])


# ---------------------------------------------------------------------------- index


def test_index_ranks_alike_whether_it_adds_fingerprints_densely_or_not():
    """top_k adds a query's fingerprint rows into dense scores and scans every vertex when
    the rows' entries reach a quarter of the vertices, and tracks the vertices it touches
    otherwise: both give the ranking of ``scores``."""
    g = nx.DiGraph(nx.scale_free_graph(2000, seed=3))
    g.remove_edges_from(list(nx.selfloop_edges(g)))
    graph = graph_of(g)
    index = PPRIndex.build(graph, walks=8, seed=4, steps=2, prune=1e-2, resolution=1e-3)
    queries = list(range(0, 2000, 7))
    residual = decompose(graph, queries, 2, prune=1e-2, resolution=1e-3, seed=4).residual
    entries = (residual != 0).astype(np.int64) @ np.diff(index.fingerprints.indptr)
    assert (entries >= graph.n / 4).any() and (entries < graph.n / 4).any()  # both ways taken
    assert all(np.array_equal(a, b) for a, b in zip(index.top_k(queries, 20), top_k(index.scores(queries), 20)))


def test_index_answers_what_the_batch_functions_answer():
    graph = graph_of(nx_graph("weighted"), "w")
    index = PPRIndex.build(graph, walks=40, seed=9, floor=0.002, steps=3, prune=1e-3, resolution=0.02)
    fp = fingerprints(graph, np.arange(25), 40, seed=9, floor=0.002)
    f = fingerprint_matrix(fp.source, fp.target, fp.value, 25)
    queries = [0, [3, 7], 11] * 20  # enough to rank them in parallel threads
    batch = query(graph, f, queries, 3, prune=1e-3, resolution=0.02, seed=9)
    assert (index.scores(queries) != batch).nnz == 0
    t = top_k(batch, 5)
    assert all(np.array_equal(a, b) for a, b in zip(index.top_k(queries, 5), t))
    vid, score = index.top([3, 7], 5)
    assert np.array_equal(vid, t.vid[t.query == 1]) and np.array_equal(score, t.score[t.query == 1])
    assert (PPRIndex(graph, f, steps=3, prune=1e-3, resolution=0.02, seed=9).scores(queries) != batch).nnz == 0
