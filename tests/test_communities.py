"""Kernels of transforms/communities.py against slow, obviously-correct references."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from sigil.transforms.communities import (agreement, cluster_graph, count_sums, grow, grow_batch,
                                          jaccard_matrix, neighbourhood_signatures, recall_area)
from sigil.transforms.minhash import MinHasher


def _splitmix(x: int) -> int:
    m = (1 << 64) - 1
    x &= m
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
    return x ^ (x >> 31)


def _fmix32(x: int) -> int:
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


@given(st.lists(st.sets(st.integers(0, 10**12), max_size=12), min_size=1, max_size=8))
def test_neighbourhood_signatures_equal_the_definition(sets):
    hasher = MinHasher(num_perm=8, seed=3)
    owners = np.array([i for i, s in enumerate(sets) for _ in (s or [None])], np.int64)
    members = np.array([m for s in sets for m in (sorted(s) or [-1])], np.int64)
    vid, size, sig = neighbourhood_signatures(owners, members, hasher)
    assert vid.tolist() == list(range(len(sets)))
    assert size.tolist() == [len(s) for s in sets]
    for i, s in enumerate(sets):
        expected = [min(((int(a) * _fmix32(_splitmix(x) & 0xFFFFFFFF) + int(b)) & 0xFFFFFFFF for x in s),
                        default=0xFFFFFFFF) for a, b in zip(hasher.a, hasher.b)]
        assert sig[i].tolist() == expected


def test_signatures_estimate_jaccard():
    rng = np.random.default_rng(0)
    a = rng.choice(10**9, 400, replace=False)
    b = np.r_[a[:200], rng.choice(10**9, 200, replace=False)]  # J = 200 / 600
    owners = np.repeat([0, 1], 400)
    _, _, sig = neighbourhood_signatures(owners, np.r_[np.sort(a), np.sort(b)], MinHasher(num_perm=512, seed=1))
    assert abs(jaccard_matrix(sig)[0, 1] - 1 / 3) < 0.06


def _grow_reference(sig, seeds, size, streaming):
    sim = lambda i, j: float(np.mean(sig[i] == sig[j]))  # noqa: E731
    community = list(dict.fromkeys(seeds))
    basis = list(community)
    scores = [1.0] * len(community)
    while len(community) < min(max(size, len(community)), len(sig)):
        rest = [c for c in range(len(sig)) if c not in community]
        totals = [sum(sim(c, m) for m in basis) for c in rest]
        best = max(range(len(rest)), key=lambda k: (totals[k], -rest[k]))
        if totals[best] <= 0:
            break
        community.append(rest[best])
        scores.append(totals[best] / len(basis))
        if streaming:
            basis.append(rest[best])
    return community, scores


@given(st.integers(0, 10_000), st.integers(2, 30), st.integers(1, 4), st.integers(1, 30),
       st.sampled_from(["streaming", "seeds"]))
def test_grow_equals_the_greedy_definition(seed, m, n_seeds, size, ranking):
    rng = np.random.default_rng(seed)
    sig = rng.integers(0, 4, (m, 8)).astype(np.uint32)  # few values: many ties and zeros
    is_seed = np.zeros(m, bool)
    is_seed[rng.choice(m, min(n_seeds, m), replace=False)] = True
    order, score = grow(sig, is_seed, size, ranking)
    ref_order, ref_score = _grow_reference(sig, np.flatnonzero(is_seed).tolist(), size, ranking == "streaming")
    assert order.tolist() == ref_order
    np.testing.assert_allclose(score, ref_score, rtol=1e-5)


def test_grow_batch_equals_one_query_at_a_time():
    rng = np.random.default_rng(7)
    counts = [5, 12, 1, 30]
    offsets = np.r_[0, np.cumsum(counts)]
    sig = rng.integers(0, 6, (offsets[-1], 16)).astype(np.uint32)
    is_seed = np.zeros(offsets[-1], bool)
    is_seed[offsets[:-1]] = True
    is_seed[offsets[3] + 4] = True
    sizes = np.array([3, 20, 4, 10])
    query, row, score = grow_batch(sig, is_seed, offsets, sizes)
    for q, (lo, hi) in enumerate(zip(offsets[:-1], offsets[1:])):
        order, s = grow(sig[lo:hi], is_seed[lo:hi], sizes[q])
        assert row[query == q].tolist() == (order + lo).tolist()
        np.testing.assert_array_equal(score[query == q], s)


def test_recall_area():
    assert recall_area(np.ones(10, bool), 10) == pytest.approx(0.5)
    assert recall_area(np.zeros(10, bool), 10) == 0.0
    # one hit at rank 1 of a community of 2: r = 0, 1/2, 1/2 -> (1/4 + 1/2) / 2
    assert recall_area(np.array([True, False]), 2) == pytest.approx(0.375)
    assert recall_area(np.array([True]), 2) == pytest.approx(0.375)  # a short list keeps its recall
    assert recall_area(np.array([False, False, True]), 2) == 0.0  # ranks past |C| do not count


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5)), min_size=2, max_size=60))
def test_agreement_equals_scikit_learn(pairs):
    found, true = (np.array(x) for x in zip(*pairs))
    _, cells = np.unique(np.stack([found, true]), axis=1, return_counts=True)
    out = agreement(len(found), count_sums(cells), count_sums(np.unique(found, return_counts=True)[1]),
                    count_sums(np.unique(true, return_counts=True)[1]))
    assert out["nmi"] == pytest.approx(normalized_mutual_info_score(true, found), abs=1e-9)
    assert out["ari"] == pytest.approx(adjusted_rand_score(true, found), abs=1e-9)


def test_cluster_graph_finds_planted_cliques_deterministically():
    g = nx.ring_of_cliques(6, 8)
    e = np.array(g.edges())
    for algorithm in ("leiden", "louvain"):
        labels = cluster_graph(48, e[:, 0], e[:, 1], np.ones(len(e)), algorithm, seed=1)
        assert labels.tolist() == np.repeat(np.arange(6), 8).tolist()
        again = cluster_graph(48, e[:, 0], e[:, 1], np.ones(len(e)), algorithm, seed=1)
        assert again.tolist() == labels.tolist()


def test_generated_graph_is_deterministic_with_the_planted_mixing():
    from sigil.transforms.graphgen import Plan, seed_queries

    plan = Plan.make(5000, average_degree=12, max_degree=40, min_community=20, max_community=60, mixing=0.25, seed=3)
    src, dst = plan.edges(0, 0, 2500)
    again = plan.edges(0, 0, 2500)
    assert np.array_equal(src, again[0]) and np.array_equal(dst, again[1])
    s2, d2 = plan.edges(1, 2500, 5000)
    s, d = np.r_[src, s2], np.r_[dst, d2]
    assert not (s == d).any()
    assert abs((plan.community_of(s) != plan.community_of(d)).mean() - 0.25) < 0.02
    assert abs(2 * len(s) / 5000 - 12) < 1.0
    sizes = np.diff(plan.community_starts)
    assert sizes.min() >= 20 and sizes.sum() == 5000
    ids = plan.external_ids(np.arange(5000))
    assert sorted(ids.tolist()) == list(range(5000)) and not np.array_equal(ids, np.arange(5000))
    inverse = np.argsort(ids)
    qs = seed_queries(plan, 20, 3, seed=1)
    for seeds, size, community in zip(qs["seeds"], qs["size"], qs["community"]):
        members = inverse[np.array(seeds, dtype=np.int64)]
        assert (plan.community_of(members) == community).all() and size == sizes[community] and len(set(seeds)) == 3


def test_top_candidates_keeps_seeds_and_the_most_shared():
    from sigil.transforms.communities import top_candidates

    query = np.array([0, 0, 0, 0, 1, 1, 1])
    is_seed = np.array([1, 0, 0, 0, 0, 0, 1], bool)
    hits = np.array([0, 2, 5, 2, 1, 1, 0])
    vid = np.array([9, 4, 7, 3, 8, 2, 5])
    assert top_candidates(query, is_seed, hits, vid, 2).tolist() == [True, False, True, True, True, True, True]
    assert top_candidates(query, is_seed, hits, vid, 1).tolist() == [True, False, True, False, False, True, True]
