"""Fellegi-Sunter EM, the scoring form, thresholds and the logistic model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigil.transforms.fellegi_sunter import MatchModel, best_threshold, fellegi_sunter, fit_em, u_from_counts
from sigil.transforms.supervised import fit_logistic, one_hot

M = [np.array([0.85, 0.1, 0.05]), np.array([0.7, 0.3]), np.array([0.9, 0.06, 0.04])]
U = [np.array([0.02, 0.08, 0.9]), np.array([0.1, 0.9]), np.array([0.001, 0.05, 0.949])]
META = [{"name": f"c{k}", "labels": [f"l{i}" for i in range(len(m) - 1)] + ["else"]} for k, m in enumerate(M)]


def draw(n: int, prior: float, seed: int = 0, null_rate: float = 0.1):
    """Pairs drawn from the generative model the EM assumes (conditional independence)."""
    rng = np.random.default_rng(seed)
    match = rng.random(n) < prior
    cols = []
    for m, u in zip(M, U):
        g = np.where(match, rng.choice(len(m), n, p=m), rng.choice(len(u), n, p=u))
        g[rng.random(n) < null_rate] = -1
        cols.append(g)
    return np.column_stack(cols).astype(np.int8), match


def patterns_of(gammas):
    patterns, counts = np.unique(gammas, axis=0, return_counts=True)
    return patterns, counts


def test_em_recovers_the_generating_parameters():
    gammas, _ = draw(400_000, prior=0.2)
    m, u, prior, history = fit_em(*patterns_of(gammas), [x + 0.0 for x in U])
    assert prior == pytest.approx(0.2, abs=0.01)
    for got, want in zip(m, M):
        np.testing.assert_allclose(got, want, atol=0.01)
    assert u == [pytest.approx(x) for x in U]  # u stays fixed unless update_u
    assert 1 < len(history) < 100


def test_em_can_update_u_too():
    gammas, _ = draw(400_000, prior=0.3, seed=1)
    start = [np.full(len(x), 1 / len(x)) for x in U]
    m, u, prior, _ = fit_em(*patterns_of(gammas), start, update_u=True, prior=0.5)
    assert prior == pytest.approx(0.3, abs=0.02)
    for got, want in zip(u, U):
        np.testing.assert_allclose(got, want, atol=0.02)


def test_weights_are_the_log_bayes_factors():
    model = fellegi_sunter(META, M, U, prior=0.1, tf=[False, True, False])
    gammas = np.array([[0, 0, 0], [2, 1, 2], [-1, -1, -1], [1, -1, 0]], dtype=np.int8)
    want = [np.log2(0.1 / 0.9) + sum(np.log2(M[k][g] / U[k][g]) for k, g in enumerate(row) if g >= 0)
            for row in gammas]
    np.testing.assert_allclose(model.match_weight(gammas), want)
    # term frequency: an exact match on a value held by 1% of records weighs m / 0.01
    tf = {1: np.array([0.01, 0.5, 0.0, 0.2])}
    adjusted = model.match_weight(gammas, tf)
    assert adjusted[0] == pytest.approx(want[0] - np.log2(M[1][0] / U[1][0]) + np.log2(M[1][0] / 0.01))
    np.testing.assert_allclose(adjusted[1:], want[1:])  # only exact levels (0) are adjusted
    p = MatchModel.probability(np.array([0.0, 10.0, -10.0]))
    np.testing.assert_allclose(p, [0.5, 1024 / 1025, 1 / 1025])


def test_model_json_round_trip():
    model = fellegi_sunter(META, M, U, prior=0.1, tf=[True, False, False], history=[0.2, 0.1])
    again = MatchModel.from_json(model.to_json())
    gammas, _ = draw(100, 0.5)
    np.testing.assert_array_equal(again.match_weight(gammas), model.match_weight(gammas))
    assert again.parameters["m"][0] == pytest.approx(M[0].tolist())


def test_u_from_counts_smooths_unseen_levels():
    u = u_from_counts([np.array([0.0, 10.0, 990.0])])[0]
    assert u.sum() == pytest.approx(1) and 0 < u[0] < 1e-3


@settings(max_examples=100)
@given(st.lists(st.tuples(st.sampled_from([0.1, 0.2, 0.5, 0.7, 0.9, 0.99]), st.booleans()), min_size=1,
                max_size=30).filter(lambda xs: any(y for _, y in xs)))
def test_best_threshold_maximises_f1(rows):
    p = np.array([x for x, _ in rows])
    y = np.array([int(lab) for _, lab in rows])
    threshold, f1 = best_threshold(p, y)

    def f1_at(t):
        pred = p >= t
        tp = (pred & (y == 1)).sum()
        return 2 * tp / (pred.sum() + y.sum())

    assert f1 == pytest.approx(f1_at(threshold))
    assert f1 == pytest.approx(max(f1_at(t) for t in [*p, 1.1]))


def test_logistic_fills_the_same_scoring_form():
    gammas, match = draw(20_000, prior=0.3, seed=2)
    model = fit_logistic(gammas, match, META)
    levels = [len(c["labels"]) for c in META]
    direct = one_hot(gammas, levels)
    assert direct.sum(axis=1).tolist() == [3.0] * len(gammas)
    p = model.probability(model.match_weight(gammas))
    accuracy = ((p >= 0.5) == match).mean()
    bayes = fellegi_sunter(META, M, U, prior=0.3, tf=[False] * 3)
    optimal = ((bayes.probability(bayes.match_weight(gammas)) >= 0.5) == match).mean()
    assert accuracy >= optimal - 0.005  # as good as the true generative model, near enough
    with pytest.raises(ValueError, match="both"):
        fit_logistic(gammas, np.ones(len(gammas)), META)


def test_u_prior_keeps_u_near_random_pairs_when_candidates_are_all_matches():
    gammas, _ = draw(50_000, prior=0.999, seed=3)
    _, u_free, _, _ = fit_em(*patterns_of(gammas), [x + 0.0 for x in U], update_u=True)
    _, u_map, prior, _ = fit_em(*patterns_of(gammas), [x + 0.0 for x in U], update_u=True, u_prior_pairs=1000)
    err = lambda us: max(np.abs(a - b).max() for a, b in zip(us, U))  # noqa: E731
    assert err(u_map) < 0.05 < err(u_free) or err(u_map) < err(u_free)
    assert prior > 0.98
