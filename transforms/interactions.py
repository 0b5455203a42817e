"""User-item interactions: a synthetic generator, a per-user train/test split and the
interaction graph as a sparse biadjacency matrix.

The generator draws a population (``population``) and then its interactions
(``generate_interactions``):

* every user and every item belongs to one of C latent communities, drawn with
  Zipf-skewed shares ``∝ c^-community_skew`` (c = 1..C);
* user u has activity ``a_u ∝ r_u^-user_exponent`` and item i popularity
  ``p_i ∝ r_i^-item_exponent``, with r a seeded random rank (1..U, 1..I): Zipf's law,
  so an entity's interaction count falls as a power of its rank, as in real
  recommendation data;
* each interaction picks its user with probability ``a_u / Σ a``; with probability
  ``in_community`` its item is drawn from the user's community with probability
  proportional to popularity within it, else from all items by popularity (noise, which
  lands in the community by chance too). Timestamps are uniform over ``span`` seconds
  from ``start``; ratings 1..5 (float32) are higher inside the community (mean 4 against
  2.5, noise sd 1), so that they carry the same signal.

Everything is vectorised (inverse-CDF draws by ``searchsorted``): 10M interactions over
10k users and 5k items take seconds. External ids are ``"u<k>"`` and ``"i<k>"`` for
dense k; communities are drawn independently of k, so ids do not reveal them.

``split`` takes and returns tables keyed by the external ids: the vertex dictionary
(``dense_ids``) and the graph (``biadjacency``) are then built from the train table alone,
and a test entity unseen in training stays cold (``graphhash.cold_buckets``).

Example
-------
>>> t = generate_interactions(100, 50, 1000, communities=4, seed=1)
>>> t.schema.names, t.num_rows, t.column("user")[0].as_py().startswith("u")
(['user', 'item', 'timestamp', 'rating'], 1000, True)
>>> train, test = split(t, test_fraction=0.2, seed=1)
>>> train.num_rows + test.num_rows
1000
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from sigil.transforms.xxhash import xxhash64

SPLITS = ("time", "random")
_DAY = 86_400


def _zipf(count: int, exponent: float) -> np.ndarray:
    w = np.arange(1, count + 1, dtype=float) ** -float(exponent)
    return w / w.sum()


def _names(prefix: str, count: int) -> pa.Array:
    return pa.array(np.char.add(prefix, np.arange(count).astype(str)), pa.string())


@dataclass(frozen=True)
class Population:
    """The users and items of a generated data set, with their latent communities.

    Attributes
    ----------
    user_ids, item_ids : pyarrow.Array
        External ids (string), ``"u<k>"`` and ``"i<k>"`` at dense index k.
    user_community, item_community : numpy.ndarray
        int64 latent community of each.
    user_activity, item_popularity : numpy.ndarray
        float64 sampling weights, each summing to 1 (Zipf in a random rank).
    """

    user_ids: pa.Array
    item_ids: pa.Array
    user_community: np.ndarray
    item_community: np.ndarray
    user_activity: np.ndarray
    item_popularity: np.ndarray


def population(users: int, items: int, *, communities: int = 20, community_skew: float = 0.5,
               user_exponent: float = 0.8, item_exponent: float = 1.0, seed: int = 0) -> Population:
    """Users and items with latent communities, activity and popularity (module docstring).

    Parameters
    ----------
    users, items : int
        U and I, at least 1.
    communities : int, default 20
        C, at least 1.
    community_skew : float, default 0.5
        Community shares ``∝ c^-community_skew`` (0: equal shares in expectation).
    user_exponent, item_exponent : float, default 0.8 and 1.0
        Zipf exponents of user activity and item popularity in rank.
    seed : int, default 0

    Returns
    -------
    Population

    Raises
    ------
    ValueError
        On a count below 1 or a negative exponent.

    Examples
    --------
    >>> p = population(6, 4, communities=2, seed=3)
    >>> p.user_ids.to_pylist()[:2], p.user_community.tolist(), round(float(p.item_popularity.sum()), 6)
    (['u0', 'u1'], [0, 0, 1, 0, 0, 0], 1.0)
    """
    if min(users, items, communities) < 1:
        raise ValueError(f"users, items and communities must be at least 1, got {users}, {items}, {communities}")
    if min(community_skew, user_exponent, item_exponent) < 0:
        raise ValueError("community_skew, user_exponent and item_exponent must be >= 0")
    rng = np.random.default_rng((seed, 0))
    share = _zipf(communities, community_skew)
    user_community = rng.choice(communities, users, p=share)
    item_community = rng.choice(communities, items, p=share)
    activity = _zipf(users, user_exponent)[rng.permutation(users)]
    popularity = _zipf(items, item_exponent)[rng.permutation(items)]
    return Population(_names("u", users), _names("i", items), user_community.astype(np.int64),
                      item_community.astype(np.int64), activity, popularity)


def generate_interactions(users: int, items: int, interactions: int, *, communities: int = 20,
                          in_community: float = 0.8, community_skew: float = 0.5, user_exponent: float = 0.8,
                          item_exponent: float = 1.0, start: int = 1_600_000_000, span: int = 365 * _DAY,
                          seed: int = 0) -> pa.Table:
    """Interactions of a generated population (module docstring); the same seed, the same table.

    Parameters
    ----------
    users, items, interactions : int
        U, I and the number of rows (a user-item pair may repeat).
    communities, community_skew, user_exponent, item_exponent
        As ``population``, which draws the users and items with the same seed.
    in_community : float, default 0.8
        Probability that an interaction's item is drawn from the user's community.
    start : int, default 1_600_000_000
        First timestamp (Unix seconds).
    span : int, default one year
        Timestamps are uniform on ``[start, start + span)``.
    seed : int, default 0

    Returns
    -------
    pyarrow.Table
        ``user``, ``item`` (string external ids), ``timestamp`` (int64), ``rating``
        (float32, 1..5), in generation order.

    Raises
    ------
    ValueError
        On a negative count, ``in_community`` outside [0, 1] or ``span`` < 1.

    Examples
    --------
    >>> t = generate_interactions(200, 100, 5000, communities=5, seed=7)
    >>> t.equals(generate_interactions(200, 100, 5000, communities=5, seed=7))
    True
    >>> sorted(set(t.column("rating").to_pylist())) == [1.0, 2.0, 3.0, 4.0, 5.0]
    True
    """
    if interactions < 0 or span < 1 or not 0 <= in_community <= 1:
        raise ValueError(f"need interactions >= 0, span >= 1 and 0 <= in_community <= 1, got "
                         f"{interactions}, {span}, {in_community}")
    pop = population(users, items, communities=communities, community_skew=community_skew,
                     user_exponent=user_exponent, item_exponent=item_exponent, seed=seed)
    rng = np.random.default_rng((seed, 1))
    user = rng.choice(users, interactions, p=pop.user_activity)
    # items sorted by community: one cumulative popularity serves every community's draw
    order = np.argsort(pop.item_community, kind="stable")
    cumulative = np.r_[0.0, np.cumsum(pop.item_popularity[order])]
    bounds = np.searchsorted(pop.item_community[order], np.arange(communities + 1))
    community = pop.user_community[user]
    inside = rng.random(interactions) < in_community
    inside &= bounds[community + 1] > bounds[community]  # a community without items draws from all
    lo = np.where(inside, bounds[community], 0)
    hi = np.where(inside, bounds[community + 1], items)
    x = cumulative[lo] + rng.random(interactions) * (cumulative[hi] - cumulative[lo])
    position = np.clip(np.searchsorted(cumulative, x, side="right") - 1, lo, hi - 1)
    item = order[position]
    timestamp = start + rng.integers(0, span, interactions)
    native = pop.item_community[item] == community
    rating = np.clip(np.rint(np.where(native, 4.0, 2.5) + rng.normal(0.0, 1.0, interactions)), 1, 5)
    return pa.table({
        "user": pop.user_ids.take(pa.array(user)),
        "item": pop.item_ids.take(pa.array(item)),
        "timestamp": pa.array(timestamp, pa.int64()),
        "rating": pa.array(rating.astype(np.float32), pa.float32()),
    })


def _row_keys(table: pa.Table, seed: int, columns: list[str]) -> np.ndarray:
    """A seeded hash of each row's values in ``columns``: its place in a random order."""
    seeds = np.full(table.num_rows, seed, np.int64)
    return xxhash64([table.column(c) for c in columns] + [pa.array(seeds)]).view(np.uint64)


def _tail_mask(group: np.ndarray, keys: tuple[np.ndarray, ...], fraction: float) -> np.ndarray:
    """Whether each row is among the last ``round(fraction n_g)`` of its group g in the order
    of ``keys`` (the last key primary), keeping at least one row of every group out."""
    order = np.lexsort((*keys, group))
    size = np.bincount(group)
    take = np.minimum(np.floor(fraction * size + 0.5), size - 1).astype(np.int64)
    first = np.r_[0, np.cumsum(size)[:-1]]
    g = group[order]
    rank = np.arange(len(order)) - first[g]
    out = np.zeros(len(order), dtype=bool)
    out[order] = rank >= size[g] - take[g]
    return out


def split(table: pa.Table, *, test_fraction: float = 0.2, by: str = "time", seed: int = 0,
          user: str = "user", item: str = "item", timestamp: str = "timestamp") -> tuple[pa.Table, pa.Table]:
    """Split interactions into train and test per user, by time or at random.

    A user with n interactions sends ``t = min(round(test_fraction n), n - 1)`` of them to
    the test set (round half up), so every user of the test set is in the train set:

    * ``by="time"`` (leave-last-out): the user's t latest rows, timestamp ties broken by a
      seeded hash of (item, timestamp); every train row of a user is then no later than
      any test row of the user. A repeated pair may fall on both sides (a re-consumption
      after the cut), as in temporal evaluation;
    * ``by="random"``: the split is over the user's distinct items, all rows of a pair on
      one side: the t' = ``min(round(test_fraction n'), n' - 1)`` of the n' distinct items
      with the largest seeded hash of (user, item) go to test, so no pair is on both sides.

    The order is a seeded hash of external ids (``xxhash64``, as Spark's), never of the row
    order: the same rows in any order and the same seed give the same split.

    Parameters
    ----------
    table : pyarrow.Table
        Interactions with string or integer ``user`` and ``item`` columns (no nulls) and an
        integer ``timestamp`` column.
    test_fraction : float, default 0.2
        In [0, 1).
    by : {"time", "random"}, default "time"
    seed : int, default 0
    user, item, timestamp : str
        Column names.

    Returns
    -------
    train, test : pyarrow.Table
        The rows of ``table`` in their order, every row in exactly one.

    Raises
    ------
    ValueError
        On an unknown ``by``, a fraction outside [0, 1) or a null id.

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"user": ["a"] * 5 + ["b"], "item": list("pqrst") + ["p"], "timestamp": [5, 1, 4, 2, 3, 9]})
    >>> train, test = split(t, test_fraction=0.4)
    >>> test.column("item").to_pylist(), train.column("user").to_pylist()
    (['p', 'r'], ['a', 'a', 'a', 'b'])
    """
    if by not in SPLITS:
        raise ValueError(f"by must be one of {SPLITS}, got {by!r}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    if table.column(user).null_count or table.column(item).null_count:
        raise ValueError(f"null ids in {user!r} or {item!r}")
    group = dense_ids(table.column(user))[1]
    if by == "time":
        keys = (_row_keys(table, seed, [item, timestamp]), table.column(timestamp).to_numpy())
        test = _tail_mask(group, keys, test_fraction)
    else:
        items = dense_ids(table.column(item))[1]
        _, first, pair = np.unique(group * (int(items.max(initial=0)) + 1) + items, return_index=True,
                                   return_inverse=True)
        test = _tail_mask(group[first], (_row_keys(table, seed, [user, item]).take(first),), test_fraction)[pair]
    return table.filter(pa.array(~test)), table.filter(pa.array(test))


def dense_ids(values) -> tuple[pa.Array, np.ndarray]:
    """The vertex dictionary of an id column: its distinct ids sorted, and each row's index.

    Sorted ids make the dense index a function of the id set alone, not of the row order.

    Parameters
    ----------
    values : pyarrow.Array or pyarrow.ChunkedArray
        External ids, no nulls.

    Returns
    -------
    ids : pyarrow.Array
        The distinct ids, sorted; dense id k is ``ids[k]``.
    index : numpy.ndarray
        int64 dense id of each row.

    Raises
    ------
    ValueError
        On a null id.

    Examples
    --------
    >>> import pyarrow as pa
    >>> ids, index = dense_ids(pa.array(["b", "a", "b"]))
    >>> ids.to_pylist(), index.tolist()
    (['a', 'b'], [1, 0, 1])
    """
    if values.null_count:
        raise ValueError("null ids cannot get a dense index")
    distinct = pc.unique(values)
    ids = distinct.take(pc.array_sort_indices(distinct))
    return ids, pc.index_in(values, value_set=ids).to_numpy().astype(np.int64)


def biadjacency(user: np.ndarray, item: np.ndarray, weight: np.ndarray | None = None, *,
                shape: tuple[int, int] | None = None) -> sp.csr_array:
    """The user-item biadjacency matrix B, ``B_ui = Σ weight`` over the rows of pair (u, i).

    Parameters
    ----------
    user, item : numpy.ndarray
        Dense ids of each interaction.
    weight : numpy.ndarray, optional
        Weight of each interaction; 1 by default (B then counts interactions).
    shape : tuple of int, optional
        (U, I); by default one more than the largest ids.

    Returns
    -------
    scipy.sparse.csr_array
        float64, shape (U, I), repeated pairs summed, indices sorted.

    Examples
    --------
    >>> import numpy as np
    >>> biadjacency(np.array([0, 0, 1]), np.array([1, 1, 0]), shape=(2, 3)).toarray().tolist()
    [[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]]
    """
    user, item = np.asarray(user, np.int64), np.asarray(item, np.int64)
    weight = np.ones(len(user)) if weight is None else np.asarray(weight, float)
    if shape is None:
        shape = (int(user.max(initial=-1)) + 1, int(item.max(initial=-1)) + 1)
    matrix = sp.csr_array((weight, (user, item)), shape=shape)
    matrix.sum_duplicates()
    return matrix
