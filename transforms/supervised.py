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
    """One-hot indicators of comparison levels: per comparison k, [null, level 0, ..., level n_k - 1].

    Parameters
    ----------
    gammas : numpy.ndarray
        int, shape ``(pairs, K)``: each pair's level of each comparison, -1 for null.
    levels : list of int
        n_k, the number of levels of comparison k (``else`` included).

    Returns
    -------
    numpy.ndarray
        float64, shape ``(pairs, sum_k (n_k + 1))``, one 1 per comparison block.

    Examples
    --------
    >>> import numpy as np
    >>> one_hot(np.array([[0, -1], [1, 0]]), [2, 1]).astype(int).tolist()
    [[0, 1, 0, 1, 0], [0, 0, 1, 0, 1]]
    """
    blocks = []
    for k, n in enumerate(levels):
        g = gammas[:, k].astype(np.int64) + 1
        block = np.zeros((len(gammas), n + 1), dtype=np.float64)
        block[np.arange(len(gammas)), g] = 1.0
        blocks.append(block)
    return np.hstack(blocks)


def fit_logistic(gammas: np.ndarray, labels: np.ndarray, comparisons: list[dict], *, c: float = 1.0,
                 seed: int = 0, threshold: float = 0.5) -> MatchModel:
    """Fit a match model on labelled pairs by L2-regularised logistic regression.

    ``ln P(match) / P(non-match) = b + sum_k beta_k[gamma_k]``, fitted by scikit-learn's
    ``LogisticRegression`` [1]_ on ``one_hot`` indicators; the model keeps the log2 form of
    Fellegi-Sunter [2]_ and Splink [3]_: bias ``b / ln 2``, weights ``beta / ln 2``, and
    ``P(match) = 1 / (1 + 2^-w)`` for a pair of total weight w.

    Parameters
    ----------
    gammas : numpy.ndarray
        int, shape ``(pairs, K)``: each pair's level of each comparison, -1 for null.
    labels : numpy.ndarray
        1 for a match, 0 for a non-match; both must occur.
    comparisons : list of dict
        Comparison k's description; ``comparisons[k]["labels"]`` names its levels
        (``else`` last).
    c : float, default 1.0
        Inverse regularisation strength (scikit-learn's ``C``).
    seed : int, default 0
        scikit-learn's ``random_state``.
    threshold : float, default 0.5
        Match probability from which a pair is a match, kept in the model.

    Returns
    -------
    fellegi_sunter.MatchModel
        ``kind="logistic"``, with ``weights[k]`` one log2 weight per level and
        ``null_weights[k]`` the weight of a missing value.

    Raises
    ------
    ValueError
        Unless both matches and non-matches are labelled.

    References
    ----------
    .. [1] scikit-learn, ``sklearn.linear_model.LogisticRegression``.
       https://scikit-learn.org/stable/modules/generated/sklearn.linear_model.LogisticRegression.html
    .. [2] I. P. Fellegi, A. B. Sunter, "A Theory for Record Linkage", JASA 64(328),
       1183-1210, 1969. doi:10.1080/01621459.1969.10501049
    .. [3] Splink. https://moj-analytical-services.github.io/splink/

    Examples
    --------
    >>> import numpy as np
    >>> gammas, labels = np.array([[0], [0], [1], [1], [0], [1]]), np.array([1, 1, 0, 0, 1, 0])
    >>> model = fit_logistic(gammas, labels, [{"name": "name", "labels": ["exact", "else"]}], c=10.0)
    >>> exact, other = model.weights[0]
    >>> bool(exact > 0 > other), round(float(model.probability(model.match_weight(np.array([[0]])))[0]), 2)
    (True, 0.92)
    """
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
