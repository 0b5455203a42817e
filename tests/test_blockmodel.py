"""The nested DC-SBM description length, and the whole-graph weights it chooses."""

from __future__ import annotations

from functools import cache

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from sklearn.metrics import normalized_mutual_info_score

from sigil.jobs.communities import weighted_partition
from sigil.schemas.config import WholeGraphConfig
from sigil.transforms.blockmodel import description_length, log_partitions
from sigil.transforms.graphgen import Plan, degree_corrected_blocks


@cache
def _partitions(m: int) -> list[list[int]]:
    """q(i, j) for i, j <= m by the recurrence q(i, j) = q(i, j - 1) + q(i - j, j), exact."""
    q = [[1] * (m + 1)] + [[0] * (m + 1) for _ in range(m)]
    for j in range(1, m + 1):
        for i in range(1, m + 1):
            q[i][j] = q[i][j - 1] + (q[i - j][j] if i >= j else 0)
    return q


@pytest.mark.parametrize("m", [10, 299, 300, 700, 1500])
@pytest.mark.parametrize("n", [1, 2, 5, 40, 2000])
def test_log_partitions_match_the_recurrence(m, n):
    exact = float(np.log(float(_partitions(1500)[m][min(n, m)])))
    assert log_partitions(m, n) == pytest.approx(exact, abs=0.1 if m >= 300 else 1e-9)


def _graph(kind: str):
    """(n, src, dst, true labels): a degree-corrected graph of two large communities, or a
    graph of many small ones (sigil's planted-partition generator)."""
    if kind == "two large, heavy-tailed":
        src, dst, truth = degree_corrected_blocks(1200, 2, 27, 12, seed=1)
        return 1200, src, dst, truth
    plan = Plan.make(3000, mixing=0.3, seed=1)
    s, d = plan.edges(0, 0, 3000)
    key = np.unique(np.minimum(s, d) * 3000 + np.maximum(s, d))
    return 3000, key // 3000, key % 3000, plan.community_of(np.arange(3000))


def test_the_planted_partition_is_the_shortest_description():
    n, src, dst, truth = _graph("two large, heavy-tailed")
    halves = truth * 2 + np.random.default_rng(0).integers(0, 2, n)  # each community cut in two at random
    lengths = [description_length(n, src, dst, labels) for labels in (truth, np.zeros(n, int), halves)]
    assert lengths[0] < lengths[1] and lengths[0] < lengths[2]


def _jaccard(n, src, dst) -> np.ndarray:
    """Exact Jaccard of the closed neighbourhoods of each edge's ends."""
    a = sp.coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    a = (((a + a.T) > 0) + sp.eye(n)).astype(float).tocsr()
    degree = np.asarray(a.sum(1)).ravel()
    common = np.asarray(a[src].multiply(a[dst]).sum(1)).ravel()
    return common / (degree[src] + degree[dst] - common)


@pytest.mark.parametrize(("kind", "chosen"), [("two large, heavy-tailed", "none"), ("many small", "jaccard")])
def test_auto_weights_keep_the_better_partition(kind, chosen):
    """Jaccard weights cut large heavy-tailed communities apart but resolve many small ones
    past modularity's resolution limit; ``auto`` keeps the better of the two either way."""
    n, src, dst, truth = _graph(kind)
    edges = pa.table({"src": src, "dst": dst, "weight": _jaccard(n, src, dst), "similar": np.ones(len(src), bool),
                      "edge": np.ones(len(src), bool)})
    nmi = {}
    for weights in ("jaccard", "none", "auto"):
        labels, report = weighted_partition(n, edges, WholeGraphConfig(weights=weights))
        nmi[weights] = normalized_mutual_info_score(truth, labels)
    assert report["weights"] == chosen and min(report["description_length"], key=report["description_length"].get) == chosen
    assert nmi["auto"] == nmi[chosen] >= max(nmi.values()) and abs(nmi["jaccard"] - nmi["none"]) > 0.03
