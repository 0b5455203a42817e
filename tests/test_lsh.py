"""Banding, bucket pairs and similarity kernels against slow references."""

import itertools

import numpy as np
import pytest
from datasketch.lsh import _optimal_param
from hypothesis import given, settings
from hypothesis import strategies as st

from sigil.transforms.lsh import (band_keys, bucket_pairs, collision_probability, exact_jaccard,
                                  jaccard_estimates, optimal_params)


@pytest.mark.parametrize("threshold", [0.2, 0.3, 0.5, 0.8])
@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.2, 0.8)])
def test_optimal_params_as_datasketch(threshold, weights):
    assert optimal_params(threshold, 128, *weights) == _optimal_param(threshold, 128, *weights)


def test_collision_probability_s_curve():
    p = collision_probability(np.array([0.0, 0.3, 1.0]), 37, 3)
    assert p[0] == 0 and p[2] == 1 and 0.5 < p[1] < 0.7


def test_band_keys_agree_exactly_when_band_agrees():
    rng = np.random.default_rng(1)
    sig = rng.integers(0, 2**32, (50, 12), dtype=np.uint32)
    sig[1] = sig[0]
    sig[2, :4] = sig[0, :4]  # band 0 equal, others differ
    keys, fine = band_keys(sig, 3, 4)
    assert (keys[1] == keys[0]).all() and (fine[1] == fine[0]).all()
    assert keys[2, 0] == keys[0, 0] and (keys[2, 1:] != keys[0, 1:]).all()
    assert fine[2, 0] != fine[0, 0]  # the finer key also covers the next band
    assert len(set(keys[3:, 0].tolist())) == 47
    with pytest.raises(ValueError):
        band_keys(sig, 4, 4)


def reference_pairs(groups, max_size, oversized, cross_only):
    out = set()
    for members in groups:
        parts = [members] if len(members) <= max_size else (
            [] if oversized == "skip" else
            [[m for m in members if m[2] == f] for f in sorted({m[2] for m in members})])
        for part in parts:
            if len(part) > max_size:
                continue
            for (r1, s1, _), (r2, s2, _) in itertools.combinations(part, 2):
                if r1 != r2 and not (cross_only and s1 == s2):
                    out.add((min(r1, r2), max(r1, r2)))
    return out


member = st.tuples(st.integers(0, 30), st.integers(0, 2), st.integers(0, 2))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(member, max_size=9), max_size=6), st.integers(2, 5),
       st.sampled_from(["skip", "split"]), st.booleans())
def test_bucket_pairs_match_reference(groups, max_size, oversized, cross_only):
    offsets = np.cumsum([0] + [len(g) for g in groups])
    flat = [m for g in groups for m in g]
    rid, src, fine = (np.array([m[i] for m in flat], dtype=dt) for i, dt in enumerate((np.int64, np.int32, np.int64)))
    a, b = bucket_pairs(offsets, rid, src, fine, max_size, oversized, cross_only)
    assert (a < b).all()
    assert set(zip(a.tolist(), b.tolist())) == reference_pairs(groups, max_size, oversized, cross_only)


@given(st.lists(st.tuples(st.sets(st.integers(0, 40), max_size=15), st.sets(st.integers(0, 40), max_size=15)),
                min_size=1, max_size=10))
def test_exact_jaccard_matches_sets(pairs):
    def csr(sets):
        vals = np.array([v for s in sets for v in sorted(s)], dtype=np.uint64)
        return vals, np.cumsum([0] + [len(s) for s in sets]).astype(np.int64)

    got = exact_jaccard(*csr([p[0] for p in pairs]), *csr([p[1] for p in pairs]))
    want = [len(x & y) / len(x | y) if x | y else 0.0 for x, y in pairs]
    assert np.allclose(got, want, atol=1e-6)


def test_jaccard_estimates_share_equal():
    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.uint32)
    b = np.array([[1, 0, 3, 0], [5, 6, 7, 8]], dtype=np.uint32)
    assert jaccard_estimates(a, b).tolist() == [0.5, 1.0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 4), member), max_size=40), st.integers(2, 4),
       st.sampled_from(["skip", "split"]), st.booleans())
def test_partition_buckets_group_rows_into_buckets(rows, max_size, oversized, cross_only):
    from sigil.transforms.lsh import partition_buckets

    band = np.array([r[0] for r in rows], np.int32)
    key = np.array([r[1] for r in rows], np.int64)
    rid, src, fine = (np.array([r[2][i] for r in rows], dt) for i, dt in enumerate((np.int64, np.int32, np.int64)))
    out = partition_buckets(band, key, fine, rid, src, max_size, oversized, cross_only)
    groups: dict = {}
    for b, k, m in rows:
        groups.setdefault((b, k), []).append(m)
    a, b = out["pairs"]
    assert set(zip(a.tolist(), b.tolist())) == reference_pairs(groups.values(), max_size, oversized, cross_only)
    hist = {}
    for (bd, _), members in groups.items():
        hist[(bd, len(members))] = hist.get((bd, len(members)), 0) + 1
    hb, hs, hc = out["histogram"]
    assert dict(zip(zip(hb.tolist(), hs.tolist()), hc.tolist())) == hist
    ob, ok, osz, samples = out["oversized"]
    assert sorted(zip(ob.tolist(), ok.tolist(), osz.tolist())) == sorted(
        (bd, k, len(m)) for (bd, k), m in groups.items() if len(m) > max_size)
    assert all(len(s) == min(5, n) for s, n in zip(samples, osz.tolist()))


def test_oversized_samples_do_not_depend_on_row_order():
    """Engines deliver a bucket's rows in any order (Spark's shuffle, Beam's groups): the
    ids sampled from an oversized bucket are its smallest, whatever the order."""
    from sigil.transforms.lsh import buckets

    rng = np.random.default_rng(0)
    band, key, ids = np.zeros(40, np.int32), rng.integers(0, 2, 40), rng.permutation(1000)[:40]
    want = [np.sort(ids[key == k])[:5].tolist() for k in (0, 1)]
    for _ in range(5):
        p = rng.permutation(40)
        got = buckets(band[p], key[p], ids[p], max_size=3)["oversized"]
        assert got[1].tolist() == [0, 1] and [s.tolist() for s in got[3]] == want
