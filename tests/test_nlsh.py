"""Neural-LSH kernels (top-k, hyperplane LSH, the hinge loss), match rules and the encoder."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigil.schemas.config import ConfigError, MatchRule, load_config
from sigil.transforms.match_rules import rule_columns, rule_holds
from sigil.transforms.nlsh import collision_probability, hinge_loss, hyperplane_keys, hyperplanes, top_k
from sigil.transforms.pair_text import serialize


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1, 40), st.integers(1, 12), st.integers(1, 7), st.booleans(),
       st.integers(0, 2 ** 31))
def test_top_k_equals_a_full_sort(nq, nb, k, block_rows, exclude, seed):
    rng = np.random.default_rng(seed)
    # small integers: dot products are exact, so ties are real ties and must go to the lower index
    q, base = (rng.integers(-2, 3, (n, 4)).astype(np.float32) for n in (nq, nb))
    qid = rng.integers(0, nb, nq) if exclude else None
    bid = np.arange(nb) if exclude else None
    index, score = top_k(q, base, k, qid, bid, block_rows)
    for i in range(nq):
        s = q[i] @ base.T
        allowed = [j for j in range(nb) if not exclude or j != qid[i]]
        want = sorted(allowed, key=lambda j: (-s[j], j))[: min(k, nb)]
        got = [j for j in index[i].tolist() if j >= 0]
        assert got == want
        assert score[i][: len(got)].tolist() == s[want].tolist()


def test_hyperplane_keys_are_seeded_and_collide_like_the_theory():
    rng = np.random.default_rng(0)
    dim, tables, bits = 16, 200, 1
    planes = hyperplanes(dim, tables, bits, seed=3)
    assert np.array_equal(planes, hyperplanes(dim, tables, bits, seed=3))
    assert not np.array_equal(planes, hyperplanes(dim, tables, bits, seed=4))
    a = unit(rng, 300, dim)
    noise = unit(rng, 300, dim)
    b = a + 0.8 * (noise - (noise * a).sum(1, keepdims=True) * a)  # a fixed angle from a
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    cos = float((a * b).sum(1).mean())
    ka = hyperplane_keys(a, planes, tables, bits)[2].reshape(300, tables)
    kb = hyperplane_keys(b, planes, tables, bits)[2].reshape(300, tables)
    expected = 1 - np.arccos(cos) / np.pi  # one bit, one table
    assert abs((ka == kb).mean() - expected) < 0.02
    assert collision_probability(cos, 1, 1) == pytest.approx(expected)
    assert collision_probability(1.0, 4, 8) == pytest.approx(1.0)


def test_multi_probe_flips_the_least_certain_bit():
    rng = np.random.default_rng(1)
    v = unit(rng, 50, 8)
    planes = hyperplanes(8, 3, 6, seed=0)
    row, table, key, fine = hyperplane_keys(v, planes, 3, 6, probes=2)
    assert len(row) == 50 * 3 * 3
    exact = hyperplane_keys(v, planes, 3, 6)[2].reshape(50, 3)
    probed = key.reshape(50, 3, 3)
    assert np.array_equal(probed[:, :, 0], exact)
    # a point moved just across its least certain hyperplane lands in its first probe bucket
    proj = (v @ planes.T).reshape(50, 3, 6)
    i, t = 7, 1
    j = int(np.argmin(np.abs(proj[i, t])))
    normal = planes[t * 6 + j]
    moved = v[i] - 1.0001 * proj[i, t, j] / (normal @ normal) * normal
    assert hyperplane_keys(moved[None], planes, 3, 6)[2].reshape(3)[t] == probed[i, t, 1]
    with pytest.raises(ValueError):
        hyperplane_keys(v, planes, 3, 6, probes=7)


def test_hinge_loss_is_the_rc_sensitive_hinge():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    a, c = torch.tensor(unit(rng, 4, 6)), torch.tensor(unit(rng, 7, 6))
    negative = torch.tensor(rng.random((4, 7)) < 0.6)
    negative[:, :4] &= ~torch.eye(4, 7, dtype=torch.bool)[:, :4]
    r, mult = 0.2, 2.5
    got = float(hinge_loss(a, c, np.arange(4), negative, r, mult))
    d = 1 - (a @ c.T).numpy()
    want = []
    for i in range(4):
        negs = [max(0.0, mult * r - d[i, j]) for j in range(7) if negative[i, j]]
        want.append(max(0.0, d[i, i] - r) + (np.mean(negs) if negs else 0.0))
    assert got == pytest.approx(np.mean(want), rel=1e-5)
    # the guarantee holds (matches within R, non-matches beyond cR): no loss
    same = torch.tensor(unit(rng, 3, 6))
    far = -same
    assert float(hinge_loss(same, torch.cat([same, far]), np.arange(3),
                            torch.tensor([[False] * 3 + [True] * 3] * 3), 0.1, 3.0)) == 0.0


RULE = {"any": [{"all": [{"column": "name", "extract": "first_word", "kind": "exact"},
                         {"column": "name", "extract": "codes", "kind": "levenshtein", "max": 1}]},
                {"column": "price", "kind": "numeric_diff", "max": 0.1}]}


def test_rule_brand_and_model_within_one_edit_or_price_within_ten_percent():
    rule = MatchRule.model_validate(RULE)
    assert rule_columns(rule) == ["name_norm", "price_norm"]
    pairs = pa.table({
        "name_norm_a": ["sony kdl40v4100 tv", "sony kdl40v4100", "lg ab1234", "lg ab1234", None, "x"],
        "name_norm_b": ["sony kdl40v4101", "panasonic kdl40v4100", "lg ab1299", "lg ab1299", "x", None],
        "price_norm_a": [None, "100", "100", "100", "5", None],
        "price_norm_b": ["1", "200", "109", "112", "5.2", None],
    })
    assert rule_holds(rule, pairs).tolist() == [True, False, True, False, True, False]
    negated = MatchRule.model_validate({"not": RULE})
    assert rule_holds(negated, pairs).tolist() == [False, True, False, True, False, True]


def test_rules_are_parsed_with_clear_errors(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("output: out\nencoder: {columns: [name]}\nnlsh_train:\n  rule: {all: [{column: name, kind: "
                    "levenshtein}]}\n")
    with pytest.raises(ConfigError, match="levenshtein takes max"):
        load_config(conf)
    conf.write_text("output: out\nencoder: {columns: [name]}\nnlsh_train:\n  rule: {all: [], any: []}\n")
    with pytest.raises(ConfigError, match="exactly one of"):
        load_config(conf)
    conf.write_text("output: out\nencoder: {columns: [name]}\nnlsh_train:\n  rule: {column: name, kind: eval}\n")
    with pytest.raises(ConfigError, match="kind"):
        load_config(conf)
    conf.write_text("output: out\nencoder: {columns: [name]}\nnlsh_train: {epochs: 1}\n")
    with pytest.raises(ConfigError, match="exactly one of labels or rule"):
        load_config(conf)


def test_encoder_serialises_like_the_pair_format_and_gives_unit_vectors():
    from sigil.transforms.encoder import encode, load_model, serialized

    table = pa.table({"name": ["Sony KDL-40", "Sony KDL40", None], "price": ["10", None, "3"]})
    texts = serialized(table, ["name", "price"])
    assert texts == [serialize(r, ["name", "price"]) for r in table.to_pylist()]
    model = load_model(None, 32)
    vectors = encode(model, texts, batch_size=2)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    again = encode(model, texts[::-1], batch_size=3)[::-1]
    np.testing.assert_allclose(vectors, again, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    bf16 = encode(model, texts, batch_size=2, precision="bfloat16")
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1, atol=1e-5)
    assert np.min(np.sum(bf16 * vectors, axis=1)) > 0.999
    int8 = encode(load_model(None, 32, precision="int8"), texts, batch_size=2, precision="int8")
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1, atol=1e-5)
    assert np.min(np.sum(int8 * vectors, axis=1)) > 0.97 and int8[0] @ int8[1] > int8[0] @ int8[2]
    assert encode(load_model(None, 32), texts[:1])[0] @ vectors[0] > 0.9999  # the float32 model is untouched


def test_progress_lines_give_throughput_and_the_time_left():
    from sigil.transforms.nlsh import _progress

    # 10 of 19 steps of the first of two epochs done at 3.2 s a step: 9 + 19 steps left
    assert _progress(0, 2, 10, 19, 0.1234, 3.2, 32) == (
        "epoch 0: step 10/19, loss 0.1234, 10.0 pairs/s, about 1.5 min of steps left")
    assert _progress(1, 2, 19, 19, 0.1, 2.0, 32).endswith("about 0.0 min of steps left")
