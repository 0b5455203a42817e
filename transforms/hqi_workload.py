"""Synthetic data and hybrid-query workloads for developing and testing HQI, in the data
and workload interfaces of transforms/hqi.py.

Data (``generate_data``): n entities whose vectors come from ``clusters`` Gaussian clusters
(centres ``N(0, center_scale^2 I)``, points ``centre + N(0, I)``, cluster sizes skewed;
optionally in a random subspace of lower dimension), and
attributes correlated with them, as the attributes of knowledge-graph entities are:

* ``genre`` (categorical, 24 values of skewed frequency): the cluster's genre for 85% of
  the rows, another one for the rest;
* ``country`` (categorical, 30 values, Zipf frequencies), independent of the rest;
* ``year`` (int64): around an era of the genre (standard deviation 8 years);
* ``price`` (float64, 2% null): log-normal with a mean of the genre, in cents.

Workloads (``generate_workload``): m queries drawn from 11 predicate templates (one
categorical value, ranges, conjunctions over two or three columns, disjunctions), whose
selectivities spread from about 0.1% to 50%. Each template has a small pool of parameter
values; templates and parameters are both drawn with Zipf-skewed frequencies, so
predicates recur within a batch, as in the workloads HQI optimises for. The pools come
from the data alone (a fixed internal seed), so workloads drawn with different seeds, e.g.
a training and a test workload, follow the same distribution. A query's vector is a
random row's vector plus ``N(0, noise^2 I)``.

Everything is a function of the arguments: the same seed gives the same table.

Example
-------
>>> data = generate_data(1000, 16, seed=1)
>>> data.schema.names, data.num_rows, data.schema.field("vector").type
(['id', 'vector', 'genre', 'country', 'year', 'price'], 1000, FixedSizeListType(fixed_size_list<item: float>[16]))
>>> workload = generate_workload(data, 100, seed=2)
>>> workload.schema.names, len(set(workload.column("predicate").to_pylist())) < 100
(['query_id', 'k', 'vector', 'predicate'], True)
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sigil.transforms.hqi import vector_array

GENRES = ("drama", "comedy", "documentary", "thriller", "action", "romance", "horror", "animation", "crime",
          "family", "fantasy", "science-fiction", "mystery", "adventure", "music", "history", "war", "western",
          "biography", "sport", "musical", "noir", "short", "news")
COUNTRIES = ("US", "GB", "FR", "DE", "IN", "JP", "IT", "ES", "CA", "KR", "CN", "BR", "MX", "SE", "AU", "RU", "NL",
             "DK", "AR", "PL", "BE", "NO", "FI", "TR", "IR", "EG", "NG", "ZA", "PT", "GR")
_POOL_SEED = 0x48514  # the template pools depend on the data only
_ZIPF_TEMPLATES, _ZIPF_PARAMETERS = 0.7, 1.1


def _zipf(count: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, count + 1) ** s
    return w / w.sum()


def generate_data(n: int, d: int = 128, *, clusters: int = 64, center_scale: float = 1.0,
                  intrinsic_dim: int | None = None, ambient_noise: float = 0.1, seed: int = 0) -> pa.Table:
    """Entities with clustered vectors and correlated attributes (see the module docstring).

    Parameters
    ----------
    n : int
        Rows.
    d : int, default 128
        Vector dimension.
    clusters : int, default 64
        Gaussian clusters of the vectors.
    center_scale : float, default 1.0
        Standard deviation of the cluster centres' coordinates (the points' is 1).
    intrinsic_dim : int, optional
        Draw the centres and points in this many dimensions and map them into d by an
        orthonormal basis drawn at random (distances kept), plus ``N(0, ambient_noise^2 I)``:
        data of low intrinsic dimension, as real embeddings are (Aumuller and Ceccarello,
        "The role of local intrinsic dimensionality in benchmarking nearest neighbor
        search", SISAP 2019). By default the points vary in all d dimensions.
    ambient_noise : float, default 0.1
        With ``intrinsic_dim``: the noise's standard deviation in every dimension.
    seed : int, default 0

    Returns
    -------
    pyarrow.Table
        ``id`` (int64, distinct, in no particular order), ``vector``
        (fixed_size_list<float32>[d]), ``genre``, ``country`` (string), ``year`` (int64),
        ``price`` (float64, nullable).

    Examples
    --------
    >>> t = generate_data(500, 4, seed=3)
    >>> t.equals(generate_data(500, 4, seed=3)), t.column("price").null_count > 0
    (True, True)
    """
    if n < 0 or d < 1 or clusters < 1:
        raise ValueError(f"need n >= 0, d >= 1 and clusters >= 1, got {n}, {d}, {clusters}")
    rng = np.random.default_rng(seed)
    genre_share = _zipf(len(GENRES), 0.8)
    r = d if intrinsic_dim is None else min(intrinsic_dim, d)
    centers = rng.normal(0.0, center_scale, (clusters, r)).astype(np.float32)
    cluster_genre = rng.choice(len(GENRES), clusters, p=genre_share)
    era = rng.uniform(1950, 2015, len(GENRES))
    log_price = rng.uniform(1.5, 4.0, len(GENRES))
    cluster = rng.choice(clusters, n, p=_zipf(clusters, 0.5))
    vectors = centers[cluster] + rng.standard_normal((n, r), dtype=np.float32)
    if r < d:  # an r-dimensional subspace (orthonormal basis: distances kept), plus ambient noise
        basis = np.linalg.qr(rng.standard_normal((d, r)))[0].T.astype(np.float32)
        vectors = vectors @ basis + np.float32(ambient_noise) * rng.standard_normal((n, d), dtype=np.float32)
    genre = np.where(rng.random(n) < 0.85, cluster_genre[cluster], rng.choice(len(GENRES), n, p=genre_share))
    country = rng.choice(len(COUNTRIES), n, p=_zipf(len(COUNTRIES), 1.1))
    year = np.clip(np.rint(era[genre] + rng.normal(0, 8, n)), 1920, 2024).astype(np.int64)
    price = np.round(np.exp(log_price[genre] + rng.normal(0, 0.6, n)), 2)
    price_null = rng.random(n) < 0.02
    ids = rng.permutation(n).astype(np.int64) * 7 + 11
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "vector": vector_array(vectors),
        "genre": pa.array(np.array(GENRES, dtype=object)[genre], pa.string()),
        "country": pa.array(np.array(COUNTRIES, dtype=object)[country], pa.string()),
        "year": pa.array(year, pa.int64()),
        "price": pa.array(price, pa.float64(), mask=price_null),
    })


def _templates(data: pa.Table) -> list[list]:
    """Per template, its pool of predicates (decoded JSON), from the data and a fixed seed."""
    rng = np.random.default_rng(_POOL_SEED)
    genres = [g for g, _ in sorted(_counts(data, "genre").items(), key=lambda e: (-e[1], e[0]))]
    countries = [c for c, _ in sorted(_counts(data, "country").items(), key=lambda e: (-e[1], e[0]))]
    year = data.column("year").to_numpy()
    price = data.column("price").drop_null().to_numpy()

    def pick(values, size):  # distinct values
        return [values[i] for i in rng.choice(len(values), size=min(size, len(values)), replace=False)]

    def draw(values, size):  # with repeats
        return [values[i] for i in rng.choice(len(values), size=size)]

    def yq(q):
        return int(np.quantile(year, q)) if len(year) else 2000

    def pq(q):
        return round(float(np.quantile(price, q)), 2) if len(price) else 10.0

    def eq(col, v):
        return {"col": col, "op": "=", "value": v}

    def rest(col, op, v):
        return {"col": col, "op": op, "value": v}

    return [
        [[eq("genre", g)] for g in genres],
        [[rest("year", "between", [y, y + w])] for y, w in
         zip([yq(q) for q in rng.uniform(0.05, 0.9, 12)], draw([2, 5, 10, 20], 12), strict=True)],
        [[rest("price", "<", pq(q))] for q in np.geomspace(0.003, 0.5, 10)],
        [[eq("genre", g), rest("year", ">=", yq(q))] for g, q in
         zip(draw(genres[:12], 15), rng.uniform(0.2, 0.8, 15), strict=True)],
        [[eq("country", c)] for c in countries],
        [[rest("genre", "in", sorted(pick(genres, 3)))] for _ in range(10)],
        [[eq("genre", g), eq("country", c), rest("price", "<=", pq(q))] for g, c, q in
         zip(draw(genres[:8], 20), draw(countries[:6], 20), rng.uniform(0.3, 0.9, 20), strict=True)],
        [{"op": "or", "value": [[eq("genre", g)], [eq("country", c), rest("year", "<", yq(q))]]}
         for g, c, q in zip(draw(genres[8:], 10), draw(countries[3:], 10), rng.uniform(0.1, 0.5, 10), strict=True)],
        [[rest("year", ">=", yq(q)), rest("price", "between", [pq(a), pq(a + 0.3)])]
         for q, a in zip(rng.uniform(0.3, 0.9, 10), rng.uniform(0.0, 0.6, 10), strict=True)],
        [{"op": "or", "value": [[eq("genre", g), rest("price", ">", pq(q))] for g in pair]}
         for pair, q in zip([pick(genres, 2) for _ in range(10)], rng.uniform(0.2, 0.8, 10), strict=True)],
        [[rest("country", "in", sorted(pick(countries[:10], 2))), eq("genre", g)] for g in pick(genres[:10], 10)],
    ]


def _counts(data: pa.Table, column: str) -> dict:
    counts = pc.value_counts(data.column(column).drop_null()).to_pylist()
    return {c["values"]: c["counts"] for c in counts}


def generate_workload(data: pa.Table, m: int, *, seed: int, k=10, noise: float = 1.0) -> pa.Table:
    """A Zipf-skewed workload of hybrid queries over ``data`` (see the module docstring).

    Parameters
    ----------
    data : pyarrow.Table
        A table of ``generate_data``.
    m : int
        Queries.
    seed : int
        Draws the templates, parameters, source rows, noise and k.
    k : int or sequence of int, default 10
        Every query's k, or values drawn uniformly per query.
    noise : float, default 1.0
        Standard deviation of the noise added to a random row's vector.

    Returns
    -------
    pyarrow.Table
        ``query_id`` (int64, 0..m-1), ``k`` (int32), ``vector``
        (fixed_size_list<float32>[d]), ``predicate`` (JSON string).

    Examples
    --------
    >>> data = generate_data(300, 4, seed=0)
    >>> w = generate_workload(data, 20, seed=1, k=[1, 5])
    >>> w.equals(generate_workload(data, 20, seed=1, k=[1, 5])), sorted(set(w.column("k").to_pylist()))
    (True, [1, 5])
    """
    if data.num_rows == 0 and m:
        raise ValueError("a workload needs data rows to draw query vectors from")
    rng = np.random.default_rng(seed)
    pools = _templates(data)
    template = rng.choice(len(pools), m, p=_zipf(len(pools), _ZIPF_TEMPLATES))
    predicates = []
    for t in template:
        pool = pools[t]
        predicates.append(json.dumps(pool[rng.choice(len(pool), p=_zipf(len(pool), _ZIPF_PARAMETERS))]))
    ks = np.full(m, k, dtype=np.int32) if np.isscalar(k) else rng.choice(np.asarray(k, dtype=np.int32), m)
    source = rng.integers(0, data.num_rows, m) if m else np.zeros(0, np.int64)
    vec = data.column("vector").combine_chunks()
    d = vec.type.list_size
    x = vec.flatten().to_numpy().reshape(-1, d)[source]
    x = x + rng.normal(0.0, noise, x.shape).astype(np.float32)
    return pa.table({
        "query_id": pa.array(np.arange(m, dtype=np.int64)),
        "k": pa.array(ks, pa.int32()),
        "vector": vector_array(x),
        "predicate": pa.array(predicates, pa.string()),
    })
