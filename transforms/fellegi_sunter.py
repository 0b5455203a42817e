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
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sigil.transforms.compare import NULL_LEVEL, Vocabulary, comparison_levels, gamma_matrix, pair_levels, \
    value_column
from sigil.transforms.pairs import KEYS

_FLOOR = 1e-10  # probabilities are kept off 0 so that every level has a finite weight


@dataclass
class MatchModel:
    """A match model in scoring form: a bias plus one log2 weight per comparison level.

    A pair with levels ``gamma = (l_1..l_K)`` has the match weight
    ``w = bias + sum_k weights[k][l_k]`` (``null_weights[k]`` where ``l_k = -1``) and the
    match probability ``2^w / (1 + 2^w)``. A Fellegi-Sunter model [1]_ has the log2 prior
    odds as bias and ``weights[k][l] = log2(m_k(l) / u_k(l))``, as Splink [2]_ writes it;
    the logistic model of transforms/supervised.py fills the same form.

    Parameters
    ----------
    kind : str
        ``"fellegi_sunter"`` or ``"logistic"``.
    comparisons : list of dict
        Each comparison's description; ``comparisons[k]["name"]`` names comparison k.
    bias : float
        The weight every pair starts from.
    weights : list of list of float
        ``weights[k][l]``: the weight of level l of comparison k, ``else`` last.
    null_weights : list of float
        The weight of a missing value, per comparison (0 for Fellegi-Sunter).
    threshold : float, default 0.5
        Match probability from which a pair is a match.
    tf_m : list of float or None, default []
        ``m_k(exact)`` of a term-frequency adjusted comparison k, else None.
    parameters : dict, default {}
        The parameters that produced the weights, kept for reports.

    References
    ----------
    .. [1] I. P. Fellegi, A. B. Sunter, "A Theory for Record Linkage", JASA 64(328),
       1183-1210, 1969. doi:10.1080/01621459.1969.10501049
    .. [2] Splink. https://moj-analytical-services.github.io/splink/

    Examples
    --------
    >>> import numpy as np
    >>> model = MatchModel(kind="fellegi_sunter", comparisons=[{"name": "name"}], bias=-3.0,
    ...                    weights=[[4.0, -2.0]], null_weights=[0.0])
    >>> w = model.match_weight(np.array([[0], [1], [-1]]))
    >>> w.tolist(), model.probability(w).round(3).tolist()
    ([1.0, -5.0, -3.0], [0.667, 0.03, 0.111])
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
        """The comparisons' names, in the order of ``weights``."""
        return [c["name"] for c in self.comparisons]

    def match_weight(self, gammas: np.ndarray, tf: dict[int, np.ndarray] | None = None) -> np.ndarray:
        """The match weight of each pair: the bias plus the weight of each level.

        ``w = bias + sum_k weights[k][gamma_k]`` (``null_weights[k]`` for -1). For a
        term-frequency adjusted comparison k, an exact agreement (level 0) on a value of
        relative frequency ``tf > 0`` weighs ``log2(tf_m[k] / tf)`` instead [1]_: the
        chance that a random pair agrees on that value is tf, not ``u_k(exact)``.

        Parameters
        ----------
        gammas : numpy.ndarray
            int, shape ``(pairs, K)``: each pair's level of each comparison, -1 for null.
        tf : dict of int to numpy.ndarray, optional
            ``tf[k]``: per pair, the relative frequency of its value
            (transforms/compare.term_frequencies) for an adjusted comparison k; where it
            is 0 the level's weight stands.

        Returns
        -------
        numpy.ndarray
            float64, one weight (log2 odds) per pair.

        References
        ----------
        .. [1] W. E. Winkler, "Frequency-based matching in the Fellegi-Sunter model of record
           linkage", Proc. Section on Survey Research Methods, American Statistical
           Association, 1989; reissued as U.S. Census Bureau Research Report RR2000/06.
           https://www.census.gov/library/working-papers/2000/adrm/rr2000-06.html

        Examples
        --------
        >>> import numpy as np
        >>> model = MatchModel(kind="fellegi_sunter", comparisons=[{"name": "surname"}], bias=-3.0,
        ...                    weights=[[4.0, -2.0]], null_weights=[0.0], tf_m=[0.9])
        >>> model.match_weight(np.array([[0], [0], [1]]), tf={0: np.array([0.45, 0.009, 0.0])}).round(3).tolist()
        [-2.0, 3.644, -5.0]
        """
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
        """The match probability of a match weight: ``2^w / (1 + 2^w) = 1 / (1 + 2^-w)``.

        Parameters
        ----------
        weight : array_like
            Match weights (log2 odds).

        Returns
        -------
        numpy.ndarray
            float64, in [0, 1].

        Examples
        --------
        >>> MatchModel.probability([0.0, 1.0, -3.0]).tolist()
        [0.5, 0.6666666666666666, 0.1111111111111111]
        """
        return 1.0 / (1.0 + np.exp2(-np.asarray(weight, dtype=np.float64)))

    def to_json(self) -> str:
        """The model as an indented JSON object of its fields (``from_json`` reads it back).

        Examples
        --------
        >>> model = MatchModel(kind="fellegi_sunter", comparisons=[{"name": "name"}], bias=-3.0,
        ...                    weights=[[4.0, -2.0]], null_weights=[0.0])
        >>> MatchModel.from_json(model.to_json()) == model
        True
        """
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "MatchModel":
        """The model that ``to_json`` wrote.

        Parameters
        ----------
        text : str
            A JSON object with the fields of ``MatchModel``.

        Returns
        -------
        MatchModel

        Examples
        --------
        >>> text = '{"kind": "logistic", "comparisons": [], "bias": 1.5, "weights": [], "null_weights": []}'
        >>> MatchModel.from_json(text).bias
        1.5
        """
        return cls(**json.loads(text))


def u_from_counts(counts: list[np.ndarray]) -> list[np.ndarray]:
    """u probabilities from the level counts of random record pairs.

    Nearly all random pairs are non-matches, so their level frequencies estimate
    ``u_k(l) = P(level l | non-match)``, as Splink estimates u [1]_. With add-half
    smoothing, ``u_k(l) = (c_k(l) + 1/2) / (sum_l' c_k(l') + n_k / 2)`` over the n_k levels
    of comparison k: a level never seen among random pairs (e.g. an exact id match) gets a
    small, finite u, and so a finite weight.

    Parameters
    ----------
    counts : list of numpy.ndarray
        Per comparison, the (weighted) count of each level among random pairs, ``else``
        included and missing values left out (``sample_level_counts``).

    Returns
    -------
    list of numpy.ndarray
        Per comparison, u of each level; each sums to 1.

    References
    ----------
    .. [1] Splink, ``estimate_u_using_random_sampling``.
       https://moj-analytical-services.github.io/splink/

    Examples
    --------
    >>> import numpy as np
    >>> [u.round(4).tolist() for u in u_from_counts([np.array([0, 10, 90])])]
    [[0.0049, 0.1034, 0.8916]]
    """
    return [(c + 0.5) / (c.sum() + 0.5 * len(c)) for c in counts]


def value_pairs(codes: np.ndarray, sources: np.ndarray, link: bool, part: int = 0, parts: int = 1):
    """The pairs of records of a sample, grouped by their pair of values.

    Every pair of value codes x <= y comes with the number of record pairs {i, j} holding
    it, so a comparison scores each pair of values once. With m_x the records of value x
    (m_sx of them in source s): x < y is held by m_x m_y pairs, x = y by m_x (m_x - 1) / 2;
    linking counts pairs across sources only, so x < y by m_x m_y - Σ_s m_sx m_sy and
    x = y by (m_x² - Σ_s m_sx²) / 2.

    Parameters
    ----------
    codes : numpy.ndarray
        Non-negative integer value code of each record (e.g. from ``Vocabulary.encode``).
    sources : numpy.ndarray
        Non-negative integer source code of each record.
    link : bool
        Count only the pairs of records from different sources.
    part, parts : int, default 0, 1
        Which slice of the value pairs to return, of how many: those with
        ``x % parts == part`` (one slice per task).

    Returns
    -------
    x, y : numpy.ndarray
        int64 value codes, ``x <= y``, of the value pairs of nonzero weight.
    weight : numpy.ndarray
        float64, the number of record pairs holding each.

    Examples
    --------
    >>> import numpy as np
    >>> x, y, w = value_pairs(np.array([0, 0, 1]), np.array([0, 0, 0]), link=False)
    >>> x.tolist(), y.tolist(), w.tolist()
    ([0, 0], [0, 1], [1.0, 2.0])
    >>> x, y, w = value_pairs(np.array([0, 0, 1]), np.array([0, 1, 1]), link=True)
    >>> x.tolist(), y.tolist(), w.tolist()
    ([0, 0], [0, 1], [1.0, 1.0])
    """
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
    """m, u and the prior lambda of a Fellegi-Sunter model, by EM over distinct level patterns.

    The candidate pairs are taken as a two-class mixture [1]_: a pair with levels g has
    probability ``lambda prod_k m_k(g_k) + (1 - lambda) prod_k u_k(g_k)``, a missing level
    counting in neither product. EM [2]_, as Winkler applied it to record linkage [3]_,
    alternates over the distinct patterns g and their counts c_g, with u held fixed at its
    random-pair estimate as in Splink [4]_ (unless ``update_u``):

    * E-step: ``p_g = P(match | g)`` from the current parameters;
    * M-step: ``m_k(l) = sum_g c_g p_g [g_k = l] / sum_g c_g p_g [g_k != null]`` and
      ``lambda = sum_g c_g p_g / sum_g c_g``,

    until no parameter moves by ``tolerance``; the cost does not grow with the number of
    pairs. m starts at ``4^-l`` normalised (the most similar level most likely among
    matches); every probability is kept at least 1e-10, so every weight is finite.

    With ``update_u`` the non-matches among the candidates re-estimate u too, with the
    random-pair u as a Dirichlet prior worth ``u_prior_pairs`` pairs (the MAP estimate
    u_k(l) ∝ sum_g c_g (1 - p_g) [g_k = l] + u_prior_pairs u_random_k(l)). Blocking selects
    non-matches that agree more than random pairs do (same postcode, similar name), which
    u from random pairs alone cannot explain; the prior keeps u sane when the candidates
    hold almost no non-matches.

    Parameters
    ----------
    patterns : numpy.ndarray
        int, shape ``(P, K)``: the distinct level patterns, -1 for null.
    counts : numpy.ndarray
        Shape ``(P,)``: how many candidate pairs show each pattern.
    u : list of numpy.ndarray
        ``u[k]``: u of each level of comparison k, from random pairs (``u_from_counts``).
    prior : float, optional
        The starting lambda; 0.5 when not given.
    max_iterations : int, default 100
        Most EM iterations.
    tolerance : float, default 1e-6
        Stop once lambda and every m (and u) move by less.
    update_u : bool, default False
        Re-estimate u from the candidates' non-matches too.
    u_prior_pairs : float, default 0.0
        With ``update_u``, how many pairs the random-pair u weighs as.

    Returns
    -------
    m : list of numpy.ndarray
        Per comparison, m of each level.
    u : list of numpy.ndarray
        ``u`` as given, or re-estimated with ``update_u``.
    prior : float
        lambda: the share of candidate pairs that match.
    history : list of float
        lambda after each iteration.

    References
    ----------
    .. [1] I. P. Fellegi, A. B. Sunter, "A Theory for Record Linkage", JASA 64(328),
       1183-1210, 1969. doi:10.1080/01621459.1969.10501049
    .. [2] A. P. Dempster, N. M. Laird, D. B. Rubin, "Maximum likelihood from incomplete
       data via the EM algorithm", J. R. Stat. Soc. B 39(1), 1-38, 1977.
       doi:10.1111/j.2517-6161.1977.tb01600.x
    .. [3] W. E. Winkler, "Using the EM algorithm for weight computation in the
       Fellegi-Sunter model of record linkage", Proc. Section on Survey Research Methods,
       American Statistical Association, 1988.
    .. [4] Splink. https://moj-analytical-services.github.io/splink/

    Examples
    --------
    The expected counts of 1000 pairs under lambda = 0.1, m = (0.9, 0.1) for both
    comparisons and this u give those parameters back:

    >>> import numpy as np
    >>> patterns = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    >>> u = [np.array([0.05, 0.95]), np.array([0.2, 0.8])]
    >>> m, _, prior, history = fit_em(patterns, np.array([90, 45, 180, 685]), u, max_iterations=1000)
    >>> [mk.round(2).tolist() for mk in m], round(prior, 2)
    ([[0.9, 0.1], [0.9, 0.1]], 0.1)
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
    """The scoring form (``MatchModel``) of a Fellegi-Sunter model.

    ``bias = log2(lambda / (1 - lambda))``, ``weights[k][l] = log2(m_k(l) / u_k(l))`` [1]_,
    and a missing value weighs 0; a term-frequency adjusted comparison keeps
    ``m_k(exact)`` for ``MatchModel.match_weight``.

    Parameters
    ----------
    comparisons : list of dict
        Each comparison's description (``name``, level ``labels``).
    m, u : list of numpy.ndarray
        Per comparison, m and u of each level (``fit_em``).
    prior : float
        lambda, the probability that a candidate pair matches.
    tf : list of bool
        Whether each comparison is term-frequency adjusted.
    threshold : float, default 0.5
        Match probability from which a pair is a match.
    history : sequence of float, default ()
        lambda per EM iteration, kept in ``parameters``.

    Returns
    -------
    MatchModel
        ``kind="fellegi_sunter"``, with prior, m, u and the EM history in ``parameters``.

    References
    ----------
    .. [1] I. P. Fellegi, A. B. Sunter, "A Theory for Record Linkage", JASA 64(328),
       1183-1210, 1969. doi:10.1080/01621459.1969.10501049

    Examples
    --------
    >>> import numpy as np
    >>> model = fellegi_sunter([{"name": "surname"}], [np.array([0.9, 0.1])], [np.array([0.05, 0.95])],
    ...                        prior=0.1, tf=[True])
    >>> round(model.bias, 3), np.round(model.weights, 3).tolist(), model.tf_m
    (-3.17, [[4.17, -3.248]], [0.9])
    """
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

    Parameters
    ----------
    probability : numpy.ndarray
        Match probability of each labelled pair.
    labels : numpy.ndarray
        1 for a match, 0 for a non-match.

    Returns
    -------
    threshold : float
        Pairs at or above it are predicted matches.
    f1 : float
        The F1 score of that prediction.

    Raises
    ------
    ValueError
        When no pair is labelled a match.

    Examples
    --------
    >>> import numpy as np
    >>> best_threshold(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0]))
    (0.55, 1.0)
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


def u_sample_size(mode: str, n_pairs: int) -> int:
    """Records of the u sample: about ``n_pairs`` pairs come from the first sqrt(2 n) + 1
    records of a random order (deduplication), or from sqrt(n) + 1 of each source (linking).

    s records give s (s - 1) / 2 pairs among them, and s records of each of two sources
    give s² pairs across them.

    Parameters
    ----------
    mode : {"dedupe", "link"}
        Deduplicate one set of records, or link sources.
    n_pairs : int
        About how many record pairs the sample should give.

    Returns
    -------
    int
        Records to take, in total (dedupe) or per source (link).

    Examples
    --------
    >>> u_sample_size("dedupe", 5000), u_sample_size("link", 5000)
    (101, 71)
    """
    return math.isqrt(2 * n_pairs) + 1 if mode == "dedupe" else math.isqrt(n_pairs) + 1


def u_sample_rows(order: np.ndarray, sources: np.ndarray, mode: str, n_pairs: int) -> np.ndarray:
    """The rows of the u sample, sorted: the first ``u_sample_size`` by ``order`` (a seeded
    hash of each record's key), overall when deduplicating, per source when linking.

    Parameters
    ----------
    order : numpy.ndarray
        One sort key per record (ties keep row order).
    sources : numpy.ndarray
        The records' source codes.
    mode : {"dedupe", "link"}
    n_pairs : int
        About how many record pairs the sample should give.

    Returns
    -------
    numpy.ndarray
        Row indices, ascending.

    Examples
    --------
    >>> u_sample_rows(np.array([5, 1, 4, 2, 3]), np.array([0, 0, 1, 1, 1]), "link", 1).tolist()
    [0, 1, 3, 4]
    """
    size = u_sample_size(mode, n_pairs)
    if mode == "dedupe":
        return np.sort(np.argsort(order, kind="stable")[:size])
    rows = [mine[np.argsort(order[mine], kind="stable")[:size]]
            for mine in (np.flatnonzero(sources == s) for s in np.unique(sources))]
    return np.sort(np.concatenate(rows)) if rows else np.zeros(0, np.int64)


def sample_level_counts(sample: pa.Table, comparisons, mode: str, part: int = 0, parts: int = 1) -> list[np.ndarray]:
    """Level counts of each comparison over the ``part``-th of ``parts`` slices of all pairs
    of ``sample`` rows (across sources only when linking), missing values left out.

    Each pair of values is compared once and counted as often as record pairs hold it
    (``value_pairs``), so u costs the distinct value pairs, not the record pairs.

    Parameters
    ----------
    sample : pyarrow.Table
        ``source`` and the comparisons' value columns (transforms/compare.value_column).
    comparisons : list of schemas.config.Comparison
    mode : {"dedupe", "link"}
    part, parts : int
        Which slice of the value pairs to count, of how many (one per task).

    Returns
    -------
    list of numpy.ndarray
        Per comparison, the (weighted) count of each level, ``else`` included.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from sigil.schemas.config import Comparison
    >>> c = Comparison.model_validate({"column": "name", "levels": [{"kind": "exact"}]})
    >>> sample = pa.table({"source": ["a", "a", "a", "a"], "name_norm": ["ann", "ann", "bob", None]})
    >>> [counts.tolist() for counts in sample_level_counts(sample, [c], "dedupe")]
    [[1.0, 2.0]]
    """
    sources = pc.dictionary_encode(sample.column("source").combine_chunks()).indices.to_numpy()
    out = []
    for c in comparisons:
        values = sample.column(value_column(c)).combine_chunks()
        if c.levels[0].kind == "cosine":  # vectors: every record its own value
            x, y, w = value_pairs(np.arange(len(values)), sources, mode == "link", part, parts)
            levels = comparison_levels(c, values.take(pa.array(x)), values.take(pa.array(y)))
        else:
            vocab, (codes,) = Vocabulary.encode(values)
            x, y, w = value_pairs(codes, sources, mode == "link", part, parts)
            levels = pair_levels(c, vocab, x, y)
        seen = levels != NULL_LEVEL
        out.append(np.bincount(levels[seen], weights=w[seen], minlength=len(c.levels) + 1))
    return out


def score_batch(batch: pa.RecordBatch, model: MatchModel, threshold: float | None = None) -> pa.RecordBatch:
    """Match weights and probabilities of a batch of pairs.

    Parameters
    ----------
    batch : pyarrow.RecordBatch
        Pairs with their levels (transforms/compare.levels_schema): ``KEYS``,
        ``gamma_<name>`` per comparison of the model, and ``tf_<name>`` per
        term-frequency adjusted one (without it, the comparison is scored unadjusted).
    model : MatchModel
        The model.
    threshold : float, optional
        Match probability from which a pair is a match.

    Returns
    -------
    pyarrow.RecordBatch
        ``KEYS``, the ``gamma_<name>`` columns, ``match_weight`` and ``match_probability``
        (``MatchModel.match_weight``, ``MatchModel.probability``), and given a
        ``threshold``, ``is_match``: the probability at or above it.

    Examples
    --------
    >>> import pyarrow as pa
    >>> model = MatchModel(kind="fellegi_sunter", comparisons=[{"name": "name"}], bias=-3.0,
    ...                    weights=[[4.0, -2.0]], null_weights=[0.0])
    >>> batch = pa.RecordBatch.from_pydict({"source_a": ["a"], "id_a": ["1"], "source_b": ["a"], "id_b": ["2"],
    ...                                     "gamma_name": pa.array([0], pa.int8())})
    >>> scored = score_batch(batch, model, threshold=0.5).to_pylist()[0]
    >>> scored["match_weight"], round(scored["match_probability"], 3), scored["is_match"]
    (1.0, 0.667, True)
    """
    names = model.names
    tf = {k: batch.column(f"tf_{n}").to_numpy() for k, n in enumerate(names)
          if model.tf_m and model.tf_m[k] is not None and f"tf_{n}" in batch.schema.names}
    w = model.match_weight(gamma_matrix(batch, names), tf)
    p = MatchModel.probability(w)
    cols = {k: batch.column(k) for k in KEYS}
    cols.update({f"gamma_{n}": batch.column(f"gamma_{n}") for n in names})
    cols.update({"match_weight": w, "match_probability": p})
    if threshold is not None:
        cols["is_match"] = p >= threshold
    return pa.RecordBatch.from_pydict(cols)


def load_model(path: str, comparisons) -> MatchModel:
    """A saved ``model.json`` (any path pyarrow opens), checked against the configured
    comparisons (``schemas.config.Comparison``): the same names and levels, in order, else
    an InputError naming both."""
    from sigil.transforms.records import InputError, open_input

    fs, p = open_input(path)
    with fs.open_input_stream(p) as f:
        model = MatchModel.from_json(f.read().decode())
    if [(c["name"], c["labels"]) for c in model.comparisons] != [(c.key, c.labels()) for c in comparisons]:
        raise InputError(f"{path} was trained with other comparisons than match.comparisons: "
                         f"{[c['name'] for c in model.comparisons]}")
    return model
