"""Supervised match model: logistic regression over one-hot comparison levels.

With labelled pairs, P(match | gamma) is fitted directly (scikit-learn's
``LogisticRegression``) on indicator features [gamma_k = l] for every comparison k and
level l, the missing-value level included. The fitted log-odds are linear in those
indicators, so the model has exactly the scoring form of Fellegi-Sunter (a bias plus one
weight per comparison and level; transforms/fellegi_sunter.py): the natural-log
coefficients divided by ln 2 become the log2 weights.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from sigil.transforms.fellegi_sunter import MatchModel


def one_hot(gammas: np.ndarray, levels: list[int]) -> np.ndarray:
    """Indicators per comparison k: [null, level 0, ..., level levels[k]-1]."""
    blocks = []
    for k, n in enumerate(levels):
        g = gammas[:, k].astype(np.int64) + 1
        block = np.zeros((len(gammas), n + 1), dtype=np.float64)
        block[np.arange(len(gammas)), g] = 1.0
        blocks.append(block)
    return np.hstack(blocks)


def fit_logistic(gammas: np.ndarray, labels: np.ndarray, comparisons: list[dict], *, c: float = 1.0,
                 seed: int = 0, threshold: float = 0.5) -> MatchModel:
    """Fit on labelled pairs (``labels`` 1 = match); ``comparisons[k]["labels"]`` names the
    levels of comparison k (``else`` last)."""
    labels = np.asarray(labels).astype(int)
    if len(np.unique(labels)) < 2:
        raise ValueError("logistic matching needs both matching and non-matching labelled pairs")
    levels = [len(c["labels"]) for c in comparisons]
    fit = LogisticRegression(C=c, max_iter=1000, random_state=seed).fit(one_hot(gammas, levels), labels)
    coef = fit.coef_[0] / np.log(2)
    weights, nulls, start = [], [], 0
    for n in levels:
        nulls.append(float(coef[start]))
        weights.append(coef[start + 1: start + 1 + n].tolist())
        start += n + 1
    return MatchModel(kind="logistic", comparisons=comparisons, bias=float(fit.intercept_[0] / np.log(2)),
                      weights=weights, null_weights=nulls, threshold=threshold, tf_m=[None] * len(levels),
                      parameters={"C": c, "training_pairs": int(len(labels)), "training_matches": int(labels.sum())})
