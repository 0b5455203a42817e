"""Match models over comparison levels: Fellegi-Sunter trained by EM, and its scoring form.

Fellegi & Sunter (1969), "A Theory for Record Linkage", JASA 64(328). For comparison k
and level l, ``m_k(l) = P(level l | match)`` and ``u_k(l) = P(level l | non-match)``.
Assuming the comparisons independent given the match status, a pair with levels
``gamma = (l_1..l_K)`` has the match weight (log2 posterior odds)

    w(gamma) = log2(lambda / (1 - lambda)) + sum_k log2(m_k(l_k) / u_k(l_k))

with ``lambda`` the prior probability that a pair matches, and the match probability is
``2**w / (1 + 2**w)``. A missing value (level -1) contributes nothing.

Training follows Splink: ``u`` from comparisons of random record pairs (nearly all of
them non-matches), then ``m`` and ``lambda`` by expectation-maximisation (Dempster,
Laird & Rubin 1977; Winkler 1988) over the blocked candidate pairs with ``u`` held fixed.
EM runs over the distinct level patterns with their counts, so its cost does not grow
with the number of pairs.

Term-frequency adjustment (Winkler 1989; Splink's ``term_frequency_adjustments``): for
an exact match on a value of relative frequency ``tf`` the chance that a random pair
agrees on it is ``tf`` rather than the column-wide ``u_k(exact)``, so the level's
weight becomes ``log2(m_k(exact) / tf)``: agreeing on a rare surname counts for more than
agreeing on "smith".

Every model reduces to the same scoring form, a bias plus one weight per comparison and
level (``MatchModel``); the supervised logistic model (transforms/supervised.py) fills the
same form, so one scorer and one JSON format serve both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

NULL_LEVEL = -1
_FLOOR = 1e-10  # probabilities are kept off 0 so that every level has a finite weight


@dataclass
class MatchModel:
    """Bias + per-level weights (log2), with the parameters that produced them.

    ``weights[k]`` has one entry per level of comparison k including ``else``;
    ``null_weights[k]`` is the weight of a missing value (0 for Fellegi-Sunter).
    ``tf_m[k]`` is ``m_k(exact)`` when comparison k is term-frequency adjusted, else None.
    """

    kind: str
    comparisons: list[dict]
    bias: float
    weights: list[list[float]]
    null_weights: list[float]
    threshold: float = 0.5
    tf_m: list[float | None] = field(default_factory=list)
    parameters: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.comparisons]

    def match_weight(self, gammas: np.ndarray, tf: dict[int, np.ndarray] | None = None) -> np.ndarray:
        """Weights of pairs with level matrix ``gammas`` (n, K); ``tf[k]`` is the relative
        frequency of each pair's value for a term-frequency adjusted comparison k."""
        w = np.full(len(gammas), self.bias, dtype=np.float64)
        for k, levels in enumerate(self.weights):
            table = np.asarray([self.null_weights[k], *levels], dtype=np.float64)
            g = gammas[:, k].astype(np.int64)
            contrib = table[g + 1]
            if tf and k in tf and self.tf_m and self.tf_m[k] is not None:
                exact = (g == 0) & (tf[k] > 0)
                contrib[exact] = np.log2(self.tf_m[k] / tf[k][exact])
            w += contrib
        return w

    @staticmethod
    def probability(weight: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp2(-np.asarray(weight, dtype=np.float64)))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "MatchModel":
        return cls(**json.loads(text))


def u_from_counts(counts: list[np.ndarray]) -> list[np.ndarray]:
    """u_k(l) from level counts of random pairs (nulls excluded), with add-half smoothing so
    a level never seen among random pairs (e.g. an exact id match) gets a small, finite u."""
    return [(c + 0.5) / (c.sum() + 0.5 * len(c)) for c in counts]


def value_pairs(codes: np.ndarray, sources: np.ndarray, link: bool, part: int = 0, parts: int = 1):
    """The pairs of records of a sample, grouped by their pair of values: every pair of
    value codes x <= y (the ``part``-th of ``parts`` slices of them) with the number of
    record pairs {i, j} holding it, so a comparison scores each pair of values once.

    With m_x the records of value x (m_sx of them in source s): x < y is held by m_x m_y
    pairs, x = y by m_x (m_x - 1) / 2; linking counts pairs across sources only, so x < y
    by m_x m_y - Σ_s m_sx m_sy and x = y by (m_x² - Σ_s m_sx²) / 2. Returns (x, y, weight)
    for the pairs of nonzero weight."""
    size = int(codes.max(initial=-1)) + 1
    m_s = np.zeros((int(sources.max(initial=0)) + 1, size))
    np.add.at(m_s, (sources, codes), 1)
    m = m_s.sum(axis=0)
    xs = np.arange(part, size, parts)
    counts = size - xs
    x = np.repeat(xs, counts)
    y = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + x
    same = (m_s[:, x] * m_s[:, y]).sum(axis=0) if link else 0.0
    w = np.where(x == y, (m[x] * m[x] - (same if link else m[x])) / 2, m[x] * m[y] - same)
    keep = w > 0
    return x[keep], y[keep], w[keep]


def _initial_m(levels: int) -> np.ndarray:
    m = 4.0 ** -np.arange(levels)  # most similar level most likely among matches
    return m / m.sum()


def _normalised(sums: np.ndarray) -> np.ndarray:
    total = sums.sum()
    if total <= 0:
        return np.full(len(sums), 1.0 / len(sums))
    return np.maximum(sums / total, _FLOOR) / np.maximum(sums / total, _FLOOR).sum()


def _level_sums(patterns: np.ndarray, weights: np.ndarray, levels: list[int]) -> list[np.ndarray]:
    """For each comparison k: the total weight of the patterns at each level (nulls skipped)."""
    out = []
    for k, n in enumerate(levels):
        g = patterns[:, k].astype(np.int64)
        keep = g >= 0
        out.append(np.bincount(g[keep], weights=weights[keep], minlength=n)[:n])
    return out


def fit_em(patterns: np.ndarray, counts: np.ndarray, u: list[np.ndarray], *, prior: float | None = None,
           max_iterations: int = 100, tolerance: float = 1e-6, update_u: bool = False,
           u_prior_pairs: float = 0.0):
    """m, u and lambda by EM over distinct level patterns.

    ``patterns`` (P, K) int8 levels (-1 = null), ``counts`` (P,) how many pairs show each
    pattern, ``u[k]`` the u of comparison k from random pairs. Returns
    ``(m, u, prior, history)`` where history lists lambda per iteration.

    E-step: p_g = P(match | g) from the current parameters. M-step:
    m_k(l) = sum_g c_g p_g [g_k = l] / sum_g c_g p_g [g_k != null], lambda = sum c p / sum c.

    With ``update_u`` the non-matches among the candidates re-estimate u too, with the
    random-pair u as a Dirichlet prior worth ``u_prior_pairs`` pairs (the MAP estimate
    u_k(l) ∝ sum_g c_g (1 - p_g) [g_k = l] + u_prior_pairs u_random_k(l)). Blocking selects
    non-matches that agree more than random pairs do (same postcode, similar name), which
    u from random pairs alone cannot explain; the prior keeps u sane when the candidates
    hold almost no non-matches.
    """
    levels = [len(x) for x in u]
    u = [np.asarray(x, dtype=np.float64) for x in u]
    u_random = u
    m = [_initial_m(n) for n in levels]
    lam = 0.5 if prior is None else prior
    counts = np.asarray(counts, dtype=np.float64)
    history: list[float] = []
    for _ in range(max_iterations):
        log_odds = np.full(len(patterns), np.log(lam / (1 - lam)))
        for k in range(len(levels)):
            g = patterns[:, k].astype(np.int64)
            seen = g >= 0
            log_odds[seen] += np.log(m[k][g[seen]]) - np.log(u[k][g[seen]])
        p = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
        new_m = [_normalised(s) for s in _level_sums(patterns, counts * p, levels)]
        new_u = ([_normalised(s + u_prior_pairs * r) for s, r in zip(_level_sums(patterns, counts * (1 - p), levels),
                                                                      u_random)] if update_u else u)
        new_lam = float(np.clip((counts * p).sum() / counts.sum(), _FLOOR, 1 - _FLOOR))
        delta = max([abs(new_lam - lam)] + [np.abs(a - b).max() for a, b in zip(new_m + new_u, m + u)])
        m, u, lam = new_m, new_u, new_lam
        history.append(lam)
        if delta < tolerance:
            break
    return m, u, lam, history


def fellegi_sunter(comparisons: list[dict], m: list[np.ndarray], u: list[np.ndarray], prior: float,
                   tf: list[bool], threshold: float = 0.5, history: list[float] = ()) -> MatchModel:
    """The scoring form of a Fellegi-Sunter model: bias = log2 prior odds, weight = log2(m/u)."""
    return MatchModel(
        kind="fellegi_sunter", comparisons=comparisons, bias=float(np.log2(prior / (1 - prior))),
        weights=[np.log2(mk / uk).tolist() for mk, uk in zip(m, u)],
        null_weights=[0.0] * len(m), threshold=threshold,
        tf_m=[float(mk[0]) if t else None for mk, t in zip(m, tf)],
        parameters={"prior": prior, "m": [x.tolist() for x in m], "u": [x.tolist() for x in u],
                    "em_iterations": len(history), "prior_history": list(history)})


def best_threshold(probability: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The probability threshold that maximises F1 on labelled pairs, and that F1.

    Pairs sorted by descending probability; predicting the top i as matches gives
    TP_i = cumsum(labels)_i, F1_i = 2 TP_i / (i + P). Ties are cut only between distinct
    probabilities; the threshold is the midpoint to the next lower one.
    """
    order = np.argsort(-probability, kind="stable")
    p, y = probability[order], labels[order].astype(np.float64)
    positives = y.sum()
    if positives == 0:
        raise ValueError("the labels hold no match: no threshold can be chosen")
    tp = np.cumsum(y)
    f1 = 2 * tp / (np.arange(1, len(p) + 1) + positives)
    last_of_tie = np.r_[p[1:] != p[:-1], True]
    i = int(np.argmax(np.where(last_of_tie, f1, -1)))
    below = p[i + 1] if i + 1 < len(p) else 0.0
    return float((p[i] + below) / 2), float(f1[i])
