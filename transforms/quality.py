"""Quality against the ground truth, from counts: pairwise precision, recall and F1, and
blocking's pair completeness, pair quality and reduction ratio.

The engines count (true pairs found, pairs predicted, pairs in the truth); the formulas
live here once. Blocking measures follow Christen, *Data Matching* (Springer 2012,
doi:10.1007/978-3-642-31164-2), ch. 7: pair completeness is the recall of the candidate
pairs, pair quality their precision, and the reduction ratio the share of all possible
record pairs that blocking leaves out.

Example
-------
>>> precision_recall(90, 100, 120)
{'precision': 0.9, 'recall': 0.75, 'f1': 0.8181818181818182}
"""

from __future__ import annotations


def f1(precision: float | None, recall: float | None) -> float | None:
    """The harmonic mean 2PR / (P + R); None when either is unknown, 0 when both are 0.

    Examples
    --------
    >>> f1(0.5, 1.0), f1(None, 1.0), f1(0.0, 0.0)
    (0.6666666666666666, None, 0.0)
    """
    if precision is None or recall is None:
        return None
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def precision_recall(true_positives: int, predicted: int, truth: int) -> dict:
    """Precision TP / predicted, recall TP / truth (0 when there is nothing to divide by)
    and their F1.

    Parameters
    ----------
    true_positives : int
        Predicted pairs that are truth pairs.
    predicted, truth : int
        Pairs predicted, pairs in the truth.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``.
    """
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / truth if truth else 0.0
    return {"precision": precision, "recall": recall, "f1": f1(precision, recall)}


def possible_pairs(counts: dict[str, int], mode: str) -> int:
    """Record pairs a comparison of everything would make: n(n-1)/2 when deduplicating,
    the pairs across sources, (n² - Σ_s n_s²)/2, when linking.

    Examples
    --------
    >>> possible_pairs({"a": 3, "b": 2}, "dedupe"), possible_pairs({"a": 3, "b": 2}, "link")
    (10, 6)
    """
    n = sum(counts.values())
    if mode == "dedupe":
        return n * (n - 1) // 2
    return (n * n - sum(c * c for c in counts.values())) // 2


def blocking_scores(found: int, truth: int, candidates: int, counts: dict[str, int], mode: str) -> dict:
    """Pair completeness (recall), pair quality (precision), reduction ratio and candidates
    per record of ``candidates`` pairs, ``found`` of which are among ``truth`` true pairs,
    over records counted per source (``counts``).

    Examples
    --------
    >>> blocking_scores(9, 10, 30, {"a": 100}, "dedupe")["reduction_ratio"]
    0.9939393939393939
    """
    total = possible_pairs(counts, mode)
    return {
        "truth_pairs": truth, "true_candidates": found,
        "pair_completeness": found / truth if truth else None,
        "pair_quality": found / candidates if candidates else None,
        "reduction_ratio": 1 - candidates / total if total else None,
        "candidates_per_record": candidates / max(sum(counts.values()), 1),
    }
