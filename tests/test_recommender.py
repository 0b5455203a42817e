"""Hashed embedding tables, BPR matrix factorisation and the ranking metrics
(transforms/recommender.py), on hand-computed examples and on a planted-community dataset."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sigil.transforms.recommender import (Factors, RowMap, _negative_sampler, evaluate, popularity_factors,
                                          ranking_metrics, rows_of, train_bpr)

torch = pytest.importorskip("torch")

GROUPS = 5
SETTINGS = {"dim": 16, "epochs": 10, "batch_size": 256, "lr": 0.01, "reg": 1e-4, "seed": 0}


def planted(seed=0, n_users=300, n_items=200, per_user=20, inside=0.9, test_share=0.2):
    """Users and items in GROUPS communities; each user draws ``per_user`` distinct items,
    ``inside`` of the mass in its own community, all in proportion to a skewed item
    popularity (so the popularity baseline is not a straw man); ``test_share`` of each
    user's items are held out."""
    rng = np.random.default_rng(seed)
    user_group, item_group = np.arange(n_users) % GROUPS, np.arange(n_items) % GROUPS
    weight = 1.0 / (1.0 + rng.permutation(n_items)) ** 0.7
    outside = (1 - inside) / inside / (GROUPS - 1)  # weight of another community's item: 10% of the mass
    train, test = [], []
    for u in range(n_users):
        p = weight * np.where(item_group == user_group[u], 1.0, outside)
        chosen = rng.choice(n_items, per_user, replace=False, p=p / p.sum())
        held = round(test_share * per_user)
        test += [(u, i) for i in chosen[:held]]
        train += [(u, i) for i in chosen[held:]]
    train, test = np.array(train), np.array(test)
    return {"n_users": n_users, "n_items": n_items, "user_group": user_group, "item_group": item_group,
            "train": (train[:, 0], train[:, 1]), "test": (test[:, 0], test[:, 1])}


@pytest.fixture(scope="module")
def data():
    return planted()


def score(data, factors, k=20):
    return evaluate(factors, *data["train"], *data["test"], k=k)


def fit(data, **kwargs):
    return train_bpr(*data["train"], data["n_users"], data["n_items"], **{**SETTINGS, **kwargs})


@pytest.fixture(scope="module")
def popular(data):
    return score(data, popularity_factors(data["train"][1], data["n_users"], data["n_items"]))


# ---------------------------------------------------------------- metrics by hand


def test_ranking_metrics_by_hand():
    # hits at ranks 1 and 3, 2 relevant: DCG = 1 + 1/log2(4), IDCG = 1 + 1/log2(3)
    recall, ndcg = ranking_metrics([[True, False, True]], [2])
    assert recall.tolist() == [1.0]
    assert ndcg[0] == pytest.approx(1.5 / (1 + 1 / np.log2(3)))
    # more relevant items than K: recall divides by all of them, the ideal DCG stops at K
    recall, ndcg = ranking_metrics([[True, True, True], [False, False, False]], [5, 1])
    assert recall.tolist() == [0.6, 0.0]
    assert ndcg.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError):
        ranking_metrics([[False]], [0])
    with pytest.raises(ValueError):
        ranking_metrics([[True, True]], [1])


def test_evaluate_by_hand():
    # scores 4 > 3 > 2 > 1 through negative vectors; user 0 trained on item 0, tested on
    # {2, 3}; user 1 tested on {0, 1, 2}; user 2 has no test item and does not count
    f = Factors(-np.ones((3, 1), np.float32), -np.array([[4], [3], [2], [1]], np.float32), [])
    train, test = ([0], [0]), ([0, 0, 1, 1, 1], [2, 3, 0, 1, 2])
    g = 1 / np.log2(3)  # the discount of rank 2
    m = evaluate(f, *train, *test, k=2)  # user 0: [1, 2], one hit at rank 2; user 1: [0, 1], two hits
    assert (m["k"], m["users"]) == (2, 2)
    assert m["recall"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m["ndcg"] == pytest.approx((g / (1 + g) + 1.0) / 2)
    m = evaluate(f, *train, *test, k=3)  # user 0: [1, 2, 3]; user 1: [0, 1, 2]
    assert m["recall"] == pytest.approx(1.0)
    assert m["ndcg"] == pytest.approx(((g + 0.5) / (1 + g) + 1.0) / 2)
    # K beyond the items left: user 0 ranks its 3 remaining items
    assert evaluate(f, *train, [0], [3], k=10)["ndcg"] == pytest.approx(0.5)
    assert evaluate(f, *train, [], [], k=2) == {"k": 2, "users": 0, "recall": None, "ndcg": None}


def test_popularity_ranks_by_count_ties_to_the_lower_item():
    f = popularity_factors([1, 2, 1, 2, 0], n_users=1, n_items=4)  # counts 1, 2, 2, 0
    assert evaluate(f, [], [], [0], [2], k=1)["recall"] == 0.0  # item 1 wins the tie
    m = evaluate(f, [], [], [0], [2], k=2)
    assert m["recall"] == 1.0 and m["ndcg"] == pytest.approx(1 / np.log2(3))
    assert evaluate(f, [0], [1], [0], [2], k=1)["recall"] == 1.0  # item 1 trained on: excluded


def test_evaluate_checks_its_inputs():
    f = popularity_factors([0], 2, 2)
    with pytest.raises(ValueError, match="test items must lie in"):
        evaluate(f, [0], [0], [1], [2])
    with pytest.raises(ValueError, match="one entry per interaction"):
        evaluate(f, [0, 1], [0], [1], [1])
    with pytest.raises(ValueError, match="one dimension"):
        evaluate(Factors(np.ones((2, 2)), np.ones((2, 3)), []), [0], [0], [1], [1])


# ---------------------------------------------------------------- mappings and the embedding


def test_rows_of_and_row_map_checks():
    single = RowMap(3, np.array([2, 0, 2]))
    double = RowMap(4, np.array([2, 0, 2]), np.array([-1, 3, 0]))
    assert rows_of(single, [0, 2, 1]).tolist() == [[2], [2], [0]]
    assert rows_of(double, [0, 1]).tolist() == [[2, -1], [0, 3]]
    assert rows_of(double, []).shape == (0, 2)
    with pytest.raises(ValueError, match="ids must lie in"):
        rows_of(single, [3])
    with pytest.raises(ValueError, match="bucket must lie in"):
        RowMap(2, np.array([0, -1]))
    with pytest.raises(ValueError, match="bucket2 must lie in"):
        RowMap(2, np.array([0, 1]), np.array([2, 0]))
    with pytest.raises(ValueError, match="one entry per id"):
        RowMap(2, np.array([0, 1]), np.array([1]))
    with pytest.raises(ValueError, match="integer"):
        RowMap(2, np.array([0.0, 1.0]))


def test_hashed_embedding_sums_the_rows_of_a_double_mapping():
    from sigil.transforms.recommender import HashedEmbedding

    w = torch.tensor([[1.0, 0.0], [0.0, 10.0], [100.0, 0.0]])
    double = HashedEmbedding(3, 2, np.array([0, 1, 2, 1]), np.array([2, -1, 2, 0]))
    single = HashedEmbedding(3, 2, np.array([0, 1, 2, 1]))
    full = HashedEmbedding(3, 2)
    for table in (double, single, full):
        with torch.no_grad():
            table.weight.copy_(w)
    assert double(torch.tensor([0, 1, 2, 3])).tolist() == [[101.0, 0.0], [0.0, 10.0], [200.0, 0.0], [1.0, 10.0]]
    assert double(np.array([[3], [0]])).tolist() == [[[1.0, 10.0]], [[101.0, 0.0]]]
    assert single(torch.tensor([3, 0])).tolist() == [[0.0, 10.0], [1.0, 0.0]]
    assert full(torch.tensor([2])).tolist() == [[100.0, 0.0]]
    double(torch.tensor([0, 1, 2])).sum().backward()  # id 2 uses row 2 twice, id 1 has no second row
    assert double.weight.grad[:, 0].tolist() == [1.0, 1.0, 3.0]
    with pytest.raises(ValueError, match="bucket must lie in"):
        HashedEmbedding(2, 2, np.array([0, 2]))


def test_importing_the_module_does_not_import_torch():
    code = ("import sys, sigil.transforms.recommender as r; assert 'torch' not in sys.modules; "
            "r.HashedEmbedding; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_negatives_are_uniform_over_the_users_missing_items():
    # user 0 lacks only item 2; user 1 has only item 2 (twice); user 2 has every item; user 3 none
    users, items = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2]), np.array([3, 0, 1, 2, 2, 0, 1, 2, 3])
    draw = _negative_sampler(users, items, n_users=4, n_items=4)
    rng = np.random.default_rng(0)
    j = draw(rng, np.repeat([0, 1, 2, 3], 3000))
    assert (j[:3000] == 2).all()
    for part, allowed in ((j[3000:6000], [0, 1, 3]), (j[6000:9000], [0, 1, 2, 3]), (j[9000:], [0, 1, 2, 3])):
        counts = np.bincount(part, minlength=4)
        assert set(np.flatnonzero(counts).tolist()) == set(allowed)
        assert np.abs(counts[allowed] / 3000 - 1 / len(allowed)).max() < 0.03
    assert np.array_equal(draw(np.random.default_rng(5), np.arange(4)), draw(np.random.default_rng(5), np.arange(4)))


# ---------------------------------------------------------------- training on planted communities


def test_bpr_beats_popularity_on_planted_communities(data, popular):
    f = fit(data)
    m = score(data, f)
    assert f.losses[-1] < 0.5 * f.losses[0]
    assert m["users"] == data["n_users"]
    assert m["recall"] > popular["recall"] + 0.2, (m, popular)  # measured: 0.739 against 0.372
    assert m["ndcg"] > popular["ndcg"] + 0.15, (m, popular)


def test_one_row_for_everything_is_no_better_than_popularity(data, popular):
    one = RowMap(1, np.zeros(data["n_users"], np.int64)), RowMap(1, np.zeros(data["n_items"], np.int64))
    f = fit(data, user_map=one[0], item_map=one[1])
    assert np.ptp(f.user_vectors, axis=0).max() == 0 and np.ptp(f.item_vectors, axis=0).max() == 0
    assert score(data, f)["recall"] <= popular["recall"]


def test_community_mappings_keep_the_quality_random_ones_lose_it(data, popular):
    n_users, n_items = data["n_users"], data["n_items"]
    rng = np.random.default_rng(1)
    by_community = RowMap(GROUPS, data["user_group"]), RowMap(GROUPS, data["item_group"])
    double = (RowMap(GROUPS + 20, data["user_group"], GROUPS + rng.integers(20, size=n_users)),
              RowMap(GROUPS + 20, data["item_group"], GROUPS + rng.integers(20, size=n_items)))
    scrambled = RowMap(GROUPS, rng.permutation(data["user_group"])), RowMap(GROUPS, rng.permutation(data["item_group"]))
    full = score(data, fit(data))["recall"]
    community = score(data, fit(data, user_map=by_community[0], item_map=by_community[1]))["recall"]
    doubled = score(data, fit(data, user_map=double[0], item_map=double[1]))["recall"]
    shuffled = score(data, fit(data, user_map=scrambled[0], item_map=scrambled[1]))["recall"]
    # measured: full 0.739, community 0.677, double 0.790, shuffled about 0.1, popularity 0.372
    assert community > popular["recall"] + 0.2 and doubled > popular["recall"] + 0.2, (community, doubled)
    assert community > full - 0.1 and doubled > full - 0.05, (community, doubled, full)
    assert shuffled < community - 0.3, (shuffled, community)


def test_a_shared_table_gives_a_community_one_vector(data, popular):
    users, items = RowMap(GROUPS, data["user_group"]), RowMap(GROUPS, data["item_group"])
    f = fit(data, user_map=users, item_map=items, shared=True)
    u, i = np.flatnonzero(data["user_group"] == 3)[0], np.flatnonzero(data["item_group"] == 3)[0]
    assert np.array_equal(f.user_vectors[u], f.item_vectors[i])
    assert score(data, f)["recall"] > popular["recall"] + 0.2
    with pytest.raises(ValueError, match="shared=True"):
        fit(data, user_map=users, shared=True)
    with pytest.raises(ValueError, match="expected 200"):
        fit(data, item_map=users)


def test_training_is_deterministic_for_a_seed(data):
    a, b, c = fit(data, epochs=3), fit(data, epochs=3), fit(data, epochs=3, seed=1)
    assert np.array_equal(a.user_vectors, b.user_vectors) and np.array_equal(a.item_vectors, b.item_vectors)
    assert a.losses == b.losses and score(data, a) == score(data, b)
    assert not np.array_equal(a.user_vectors, c.user_vectors)
