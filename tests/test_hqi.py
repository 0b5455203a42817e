"""HQI batch hybrid queries: predicates, the qd-tree, the layout and batch search, and the
synthetic workloads (transforms/predicates.py, qdtree.py, hqi.py, hqi_workload.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigil.transforms.hqi import (
    RESULT_SCHEMA,
    Queries,
    SearchResult,
    SearchStats,
    arrange,
    build,
    choose_clusters,
    data_arrays,
    exact_search,
    fit_partitioning,
    layout_tables,
    load_layout,
    nearest,
    parse_workload,
    recall_at_k,
    save_layout,
    search,
    slice_layout,
)
from sigil.transforms.hqi_workload import generate_data, generate_workload
from sigil.transforms.predicates import (
    CATEGORICAL,
    NUMERIC,
    Columns,
    Interval,
    NoneOf,
    OneOf,
    PredicateError,
    column_types,
    parse,
    parse_many,
)
from sigil.transforms.qdtree import QdTree

TYPES = {"genre": CATEGORICAL, "country": CATEGORICAL, "year": NUMERIC, "price": NUMERIC}
INF = math.inf


def clause(col, op, value):
    return {"col": col, "op": op, "value": value}


def one(col, op, value):
    return json.dumps([clause(col, op, value)])


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("text, term", [
    (one("genre", "=", "jazz"), (("genre", OneOf(("jazz",))),)),
    (one("genre", "in", ["rock", "jazz", "rock"]), (("genre", OneOf(("jazz", "rock"))),)),
    (one("year", "=", 2000), (("year", OneOf((2000,))),)),
    (one("year", "in", [3, 1.5, 3]), (("year", OneOf((1.5, 3))),)),
    (one("year", "between", [1990, 2000]), (("year", Interval(1990, 2000)),)),
    (one("year", ">", 2000), (("year", Interval(2000, INF, False)),)),
    (one("year", ">=", 2000), (("year", Interval(2000, INF, True)),)),
    (one("year", "<", 2000), (("year", Interval(-INF, 2000, hi_closed=False)),)),
    (one("year", "<=", 2000.5), (("year", Interval(-INF, 2000.5, hi_closed=True)),)),
])
def test_every_op_parses_to_its_constraint(text, term):
    assert parse(text, TYPES).terms == (term,)


def test_equal_predicates_have_one_normal_form():
    p = [clause("year", ">=", 1990), clause("genre", "=", "jazz"), clause("year", "<", 2000)]
    same = [clause("genre", "in", ["jazz"]), clause("year", "<", 2000), clause("year", ">=", 1990),
            clause("year", ">", 1980)]
    assert parse(json.dumps(p), TYPES) == parse(json.dumps(same), TYPES)
    assert hash(parse(json.dumps(p), TYPES)) == hash(parse(json.dumps(same), TYPES))
    assert parse(json.dumps(p), TYPES).terms == ((("genre", OneOf(("jazz",))),
                                                  ("year", Interval(1990, 2000, True, False))),)
    points = [one("year", "=", 3), one("year", "in", [3]), one("year", "between", [3, 3]),
              json.dumps([clause("year", ">=", 3), clause("year", "<=", 3)])]
    assert len({parse(t, TYPES) for t in points}) == 1
    a, b = [clause("genre", "=", "a")], [clause("year", ">", 5)]
    assert parse(json.dumps({"op": "or", "value": [a, b, a]}), TYPES) == \
        parse(json.dumps({"op": "or", "value": [b, a]}), TYPES)
    assert parse(json.dumps({"op": "or", "value": [a]}), TYPES) == parse(json.dumps(a), TYPES)


def test_merging_clauses_and_the_constants():
    assert parse("[]", TYPES).is_true and parse(json.dumps({"op": "or", "value": [[], [clause("year", "=", 1)]]}),
                                                TYPES).is_true
    assert parse(json.dumps({"op": "or", "value": []}), TYPES).is_false
    assert parse(json.dumps([clause("year", ">", 5), clause("year", "<", 5)]), TYPES).is_false
    assert parse(json.dumps([clause("year", ">", 5), clause("year", "<=", 5)]), TYPES).is_false
    assert parse(one("genre", "in", []), TYPES).is_false
    assert parse(json.dumps([clause("genre", "in", ["a", "b"]), clause("genre", "in", ["b", "c"])]),
                 TYPES).terms == ((("genre", OneOf(("b",))),),)
    assert parse(json.dumps([clause("year", "in", [1, 5, 9]), clause("year", "between", [2, 9])]),
                 TYPES).terms == ((("year", OneOf((5, 9))),),)
    # an unsatisfiable conjunction drops out of a disjunction
    p = parse(json.dumps({"op": "or", "value": [[clause("genre", "=", "a"), clause("genre", "=", "b")],
                                                [clause("year", "=", 1)]]}), TYPES)
    assert p.terms == ((("year", OneOf((1,))),),)
    assert p.columns == {"year"}


def test_to_json_round_trips():
    texts = ["[]", json.dumps({"op": "or", "value": []}), one("year", ">", 1.5),
             json.dumps([clause("year", ">", 1), clause("year", "<=", 7), clause("genre", "in", ["b", "a"])]),
             json.dumps({"op": "or", "value": [[clause("price", "between", [1, 2])], [clause("country", "=", "x")]]})]
    for text in texts:
        p = parse(text, TYPES)
        assert parse(p.to_json(), TYPES) == p


@pytest.mark.parametrize("text, reason", [
    ("", "malformed JSON"),
    ("[{", "malformed JSON"),
    ("genre = 'jazz'", "malformed JSON"),
    ('[{"col": "year", "op": ">", "value": NaN}]', "NaN is not a JSON number"),
    ('[{"col": "year", "op": ">", "value": 1e400}]', "finite numbers"),
    (None, "missing (null)"),
    ("5", "must be a list of clauses or an 'or' object, got number"),
    ('"[]"', "got string"),
    (one("genre", "=", "x")[1:-1], "single clause must be wrapped in a list"),
    ('{"op": "and", "value": []}', 'a disjunction must be {"op": "or"'),
    ('{"op": "or"}', "a disjunction must be"),
    ('{"op": "or", "value": {}}', "'or' needs a list of conjunctions, got object"),
    ('{"op": "or", "value": [' + one("genre", "=", "x")[1:-1] + "]}", "or term 0: a single clause must be wrapped"),
    ('{"op": "or", "value": [3]}', "or term 0: a conjunction must be a list"),
    ('{"op": "or", "value": [[], [{"col": "colour", "op": "=", "value": 1}]]}', "or term 1: clause 0: unknown column"),
    ("[1]", "clause 0: a clause must be an object"),
    ('[{"op": "=", "value": 1}]', "clause is missing 'col'"),
    ('[{"col": "year", "value": 1}]', "clause is missing 'op'"),
    ('[{"col": "year", "op": "="}]', "clause is missing 'value'"),
    ('[{"col": "year", "op": "=", "value": 1, "negate": true}]', "unknown keys ['negate']"),
    (one("colour", "=", "red"), 'unknown column "colour" (known: country, genre, price, year)'),
    ('[{"col": 3, "op": "=", "value": 1}]', "unknown column 3"),
    (one("year", "!=", 3), 'op must be one of =, in, between, >, >=, <, <=, got "!="'),
    ('[{"col": "year", "op": null, "value": 3}]', "op must be one of"),
    (one("genre", "<", "m"), "column 'genre' is categorical: only '=' and 'in' apply, got '<'"),
    (one("genre", "between", ["a", "m"]), "only '=' and 'in' apply"),
    (one("genre", "=", 3), "column 'genre' is categorical: its values must be strings, got number 3"),
    (one("genre", "in", ["a", None]), "must be strings, got null"),
    (one("year", "=", "2000"), "column 'year' is numeric: its values must be numbers, got string \"2000\""),
    (one("year", ">", True), "must be numbers, got boolean true"),
    (one("year", "=", None), "must be numbers, got null"),
    (one("year", "in", 3), "'in' needs a list of values, got number 3"),
    (one("year", "in", [1, "x"]), "must be numbers, got string"),
    (one("year", "between", 3), "'between' needs a list of values"),
    (one("year", "between", [1, 2, 3]), "'between' needs [lo, hi], got 3 values"),
    (one("year", "between", [5, 1]), "'between' needs lo <= hi, got [5, 1]"),
    (json.dumps([clause("year", "=", 1), clause("genre", "=", 2)]), "clause 1: column 'genre'"),
])
def test_bad_predicates_say_why(text, reason):
    with pytest.raises(PredicateError) as e:
        parse(text, TYPES)
    assert reason in str(e.value)
    assert isinstance(e.value, ValueError)


def test_parse_many_gives_a_reason_per_bad_text():
    parsed, reasons = parse_many(["[]", one("colour", "=", "x"), None, "[]"], TYPES)
    assert [p is not None for p in parsed] == [True, False, False, True]
    assert reasons[0] is None and "unknown column" in reasons[1] and "missing" in reasons[2]
    assert parsed[0] is parsed[3]  # each distinct text parsed once


# ---------------------------------------------------------------------------- masks


def small_table(seed=0, n=80) -> dict:
    rng = np.random.default_rng(seed)
    genre = np.array(["a", "b", "c", None], dtype=object)[rng.integers(0, 4, n)]
    country = np.array(["x", "y", None], dtype=object)[rng.integers(0, 3, n)]
    year = [None if u < 0.1 else int(v) for u, v in zip(rng.random(n), rng.integers(0, 10, n), strict=True)]
    price = rng.integers(0, 8, n) / 2.0
    price[rng.random(n) < 0.1] = np.nan  # NaN: a null too
    price = [None if u < 0.05 else float(v) for u, v in zip(rng.random(n), price, strict=True)]
    return {"genre": genre, "country": country, "year": year, "price": price}


def reference_clause(value, c) -> bool:
    """A clause on one row, straight from the specification."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    op, v = c["op"], c["value"]
    return {"=": lambda: value == v, "in": lambda: value in v, "between": lambda: v[0] <= value <= v[1],
            ">": lambda: value > v, ">=": lambda: value >= v, "<": lambda: value < v,
            "<=": lambda: value <= v}[op]()


def reference(row: dict, predicate) -> bool:
    if isinstance(predicate, dict):
        return any(reference(row, conj) for conj in predicate["value"])
    return all(reference_clause(row[c["col"]], c) for c in predicate)


NUMBERS = st.sampled_from([-1, 0, 1, 2, 2.5, 3, 4, 5.5, 7, 9, 12])
CATEGORIES = {"genre": ["a", "b", "c", "zz"], "country": ["x", "y", "zz"]}


@st.composite
def clauses(draw):
    col = draw(st.sampled_from(sorted(TYPES)))
    if TYPES[col] == CATEGORICAL:
        values = st.sampled_from(CATEGORIES[col])
        op = draw(st.sampled_from(["=", "in"]))
        return clause(col, op, draw(values) if op == "=" else draw(st.lists(values, max_size=3)))
    op = draw(st.sampled_from(["=", "in", "between", ">", ">=", "<", "<="]))
    if op == "in":
        return clause(col, op, draw(st.lists(NUMBERS, max_size=3)))
    if op == "between":
        return clause(col, op, sorted([draw(NUMBERS), draw(NUMBERS)]))
    return clause(col, op, draw(NUMBERS))


CONJUNCTIONS = st.lists(clauses(), max_size=3)
PREDICATES = st.one_of(CONJUNCTIONS, st.builds(lambda t: {"op": "or", "value": t}, st.lists(CONJUNCTIONS, max_size=3)))
TABLE = small_table()
ROWS = [dict(zip(TABLE, values, strict=True)) for values in zip(*TABLE.values(), strict=True)]


@settings(max_examples=150)
@given(PREDICATES)
def test_mask_equals_the_row_by_row_reference(predicate):
    p = parse(json.dumps(predicate), TYPES)
    expected = [reference(row, predicate) for row in ROWS]
    columns = Columns.from_table(TABLE, TYPES)
    assert p.mask(columns).tolist() == expected
    assert p.mask(columns, slice(10, 30)).tolist() == expected[10:30]
    picked = np.array([5, 0, 7, 7])
    assert p.mask(columns, picked).tolist() == [expected[i] for i in picked]


def test_mask_on_arrow_tables_and_dictionary_columns():
    table = pa.table({"genre": pa.array(TABLE["genre"].tolist()).dictionary_encode(),
                      "country": pa.chunked_array([TABLE["country"][:40].tolist(), TABLE["country"][40:].tolist()]),
                      "year": pa.array(TABLE["year"], pa.int64()), "price": pa.array(TABLE["price"], pa.float64())})
    assert column_types(table) == TYPES
    p = {"op": "or", "value": [[clause("genre", "in", ["a", "c"]), clause("year", ">", 3)],
                               [clause("country", "=", "y"), clause("price", "<=", 1.5)]]}
    assert parse(json.dumps(p), TYPES).mask(Columns.from_table(table)).tolist() == [reference(r, p) for r in ROWS]
    with pytest.raises(ValueError, match="attribute column 'flag' has type bool"):
        column_types({"flag": [True, False]})


@st.composite
def row_in_box(draw):
    """A row and a box holding it: each of the row's non-null values lies in the box's
    constraint on that column (a null value, in any)."""
    row, box = {}, {}
    for col, kind in TYPES.items():
        value = draw(st.one_of(st.none(), st.sampled_from(CATEGORIES[col][:-1]) if kind == CATEGORICAL else NUMBERS))
        row[col] = value
        if not draw(st.booleans()):
            continue
        if kind == CATEGORICAL:
            others = [v for v in CATEGORIES[col] if v != value]
            extra = draw(st.lists(st.sampled_from(others), max_size=2))
            box[col] = (OneOf(tuple(sorted({*extra, value} - {None}))) if draw(st.booleans())
                        else NoneOf(tuple(sorted(set(extra)))))
        elif value is not None and draw(st.booleans()):
            box[col] = OneOf(tuple(sorted({value, draw(NUMBERS)})))
        else:
            lo = -INF if draw(st.booleans()) else draw(NUMBERS)
            hi = INF if draw(st.booleans()) else draw(NUMBERS)
            if value is not None:
                lo, hi = min(lo, value), max(hi, value)
            box[col] = Interval(lo, hi, lo == value or draw(st.booleans()), hi == value or draw(st.booleans()))
    return row, box


@settings(max_examples=300)
@given(PREDICATES, row_in_box())
def test_may_match_is_never_false_for_a_box_holding_a_matching_row(predicate, row_box):
    row, box = row_box
    if reference(row, predicate):
        assert parse(json.dumps(predicate), TYPES).may_match(box)


def test_may_match_rules_boxes_out():
    p = parse(json.dumps([clause("genre", "in", ["a", "b"]), clause("year", ">=", 5)]), TYPES)
    assert not p.may_match({"genre": NoneOf(("a", "b"))})
    assert not p.may_match({"genre": OneOf(("c",))})
    assert not p.may_match({"year": Interval(hi=5, hi_closed=False)})
    assert p.may_match({"year": Interval(hi=5)}) and p.may_match({"genre": NoneOf(("a",))})
    assert not parse(json.dumps({"op": "or", "value": []}), TYPES).may_match({})


# ---------------------------------------------------------------------------- qd-tree


@pytest.fixture(scope="module")
def data():
    return generate_data(4000, 16, clusters=16, seed=5)


@pytest.fixture(scope="module")
def train(data):
    return generate_workload(data, 1500, seed=6).column("predicate").to_pylist()


@pytest.fixture(scope="module")
def test_workload(data):
    return generate_workload(data, 400, seed=7, k=[1, 5, 10, 10, 50])


def test_qdtree_partitions_rows_and_cuts_scanned_rows(data, train, test_workload):
    columns = Columns.from_table(data_arrays(data)[2])
    tree = QdTree.build(columns, train, min_leaf_rows=100)
    leaf = tree.assign(columns)
    assert tree.num_leaves > 4
    assert leaf.min() == 0 and leaf.max() == tree.num_leaves - 1
    assert np.array_equal(np.bincount(leaf, minlength=tree.num_leaves), tree.leaf_rows)
    assert tree.leaf_rows.sum() == data.num_rows and tree.leaf_rows.min() >= 100
    test = test_workload.column("predicate").to_pylist()
    # the whole table per query without the tree; with it, the training workload and an unseen one scan far less
    assert tree.scanned_rows(train) < 0.5 * data.num_rows * len(train)
    assert tree.scanned_rows(test) < 0.5 * data.num_rows * len(test)
    assert QdTree.build(columns, train, min_leaf_rows=2001).num_leaves == 1


def test_qdtree_routing_never_misses_a_satisfying_row(data, train, test_workload):
    columns = Columns.from_table(data_arrays(data)[2])
    tree = QdTree.build(columns, train, min_leaf_rows=100)
    leaf = tree.assign(columns)
    for text in set(test_workload.column("predicate").to_pylist()):
        p = parse(text, columns.types)
        assert set(np.unique(leaf[p.mask(columns)])) <= set(tree.route(p).tolist()), text


@settings(max_examples=60)
@given(st.lists(PREDICATES, min_size=1, max_size=8), st.lists(PREDICATES, min_size=1, max_size=5),
       st.integers(1, 12))
def test_qdtree_routing_property(training, queries, min_leaf_rows):
    columns = Columns.from_table(TABLE, TYPES)
    tree = QdTree.build(columns, [json.dumps(p) for p in training], min_leaf_rows=min_leaf_rows)
    leaf = tree.assign(columns)
    assert (np.bincount(leaf, minlength=tree.num_leaves) >= min_leaf_rows).all() or tree.num_leaves == 1
    for q in queries:
        p = parse(json.dumps(q), TYPES)
        assert set(leaf[p.mask(columns)].tolist()) <= set(tree.route(p).tolist())


def test_qdtree_json_round_trip(data, train, test_workload):
    columns = Columns.from_table(data_arrays(data)[2])
    tree = QdTree.build(columns, train, min_leaf_rows=100)
    again = QdTree.from_dict(json.loads(json.dumps(tree.to_dict())))
    assert np.array_equal(again.assign(columns), tree.assign(columns))
    for text in set(test_workload.column("predicate").to_pylist()):
        p = parse(text, columns.types)
        assert np.array_equal(again.route(p), tree.route(p))
    broken = tree.to_dict()
    broken["nodes"][0]["left"] = 0
    with pytest.raises(ValueError, match="pre-order"):
        QdTree.from_dict(broken)
    with pytest.raises(ValueError, match="format"):
        QdTree.from_dict({"nodes": []})


# ---------------------------------------------------------------------------- search


@pytest.fixture(scope="module")
def dataset(data):
    """The generated rows, plus 12 rows sharing one vector and attributes (distance ties)."""
    ids, x, attrs = data_arrays(data)
    x = x.copy()
    x[100:112] = x[99]
    attrs = attrs.to_pydict()
    for col in attrs:
        attrs[col][100:112] = [attrs[col][99]] * 12
    return ids, x, pa.table(attrs)


@pytest.fixture(scope="module")
def layout(dataset, train):
    ids, x, attrs = dataset
    return build(ids, x, attrs, train, min_leaf_rows=150, rows_per_cluster=40, seed=3)


@pytest.fixture(scope="module")
def queries(dataset, test_workload, layout):
    _, x, attrs = dataset
    q, bad = parse_workload(test_workload, layout.columns.types, x.shape[1])
    assert bad.num_rows == 0
    row99 = {c: attrs.column(c)[99].as_py() for c in ("genre", "year")}
    extra = [  # (k, vector, predicate)
        (5, x[99], "[]"),  # 13 rows at distance 0: ties broken by id
        (20, x[99], one("genre", "=", row99["genre"])),
        (3, x[7], json.dumps({"op": "or", "value": []})),  # FALSE
        (3, x[7], one("genre", "=", "no such genre")),  # matches no row
        (4000, x[8], json.dumps([clause("genre", "=", row99["genre"]), clause("year", "=", row99["year"])])),
        (0, x[9], "[]"),  # k = 0: no results
        (10, x[10], json.dumps([clause("price", "<", 1e9)])),  # every non-null price
    ]
    preds = [parse(p, layout.columns.types) for _, _, p in extra]
    return Queries(np.r_[q.query_id, 10_000 + np.arange(len(extra))], np.r_[q.k, [e[0] for e in extra]],
                   np.vstack([q.vectors, np.stack([e[1] for e in extra])]), q.predicates + preds)


def satisfying(dataset, queries) -> np.ndarray:
    columns = Columns.from_table(dataset[2])
    return np.array([p.mask(columns).sum() for p in queries.predicates])


def per_query(result, queries) -> np.ndarray:
    return np.bincount(np.searchsorted(queries.query_id, result.query_id), minlength=len(queries.k))


def test_exact_search_equals_a_naive_sort(dataset, queries):
    ids, x, attrs = dataset
    truth = exact_search(ids, x, attrs, queries)
    columns = Columns.from_table(attrs)
    for i in range(len(queries.k)):
        rows = np.flatnonzero(queries.predicates[i].mask(columns))
        d = ((x[rows].astype(np.float64) - queries.vectors[i]) ** 2).sum(axis=1).astype(np.float32)
        best = np.lexsort((ids[rows], d))[:queries.k[i]]
        mine = truth.query_id == queries.query_id[i]
        assert truth.id[mine].tolist() == ids[rows][best].tolist()
        np.testing.assert_allclose(truth.distance[mine], d[best], rtol=1e-6)
        assert truth.rank[mine].tolist() == list(range(len(best)))
    tie = truth.query_id == 10_000
    assert truth.distance[tie].tolist() == [0.0] * 5 and truth.id[tie].tolist() == sorted(ids[99:112])[:5]


def test_search_exact_mode_equals_exact_search(dataset, layout, queries):
    truth = exact_search(*dataset, queries)
    result = search(layout, queries)
    for field in ("query_id", "rank", "id", "distance"):
        assert np.array_equal(getattr(result, field), getattr(truth, field)), field
    expected = np.minimum(queries.k, satisfying(dataset, queries))
    assert np.array_equal(per_query(result, queries), expected)
    assert expected[-3] < queries.k[-3] and expected[-5:-3].sum() == 0 and expected[-2] == 0
    # the layout scans and multiplies less than brute force, evaluating each distinct predicate once per leaf
    assert result.stats.rows_scanned.sum() < truth.stats.rows_scanned.sum()
    assert result.stats.distance_computations.sum() <= truth.stats.distance_computations.sum() / 0.7  # dense slices
    evaluated = {p for p, k in zip(queries.predicates, queries.k, strict=True) if k and not (p.is_true or p.is_false)}
    assert result.stats.predicate_evaluations == sum(len(layout.tree.route(p)) for p in evaluated)
    table = result.to_arrow()
    assert table.schema == RESULT_SCHEMA and table.num_rows == len(result.id)


@pytest.mark.parametrize("nprobe", [1, 3])
def test_approximate_mode_is_never_short_and_never_invalid(dataset, layout, queries, nprobe):
    ids, x, attrs = dataset
    result = search(layout, queries, nprobe=nprobe)
    assert np.array_equal(per_query(result, queries), np.minimum(queries.k, satisfying(dataset, queries)))
    columns, position = Columns.from_table(attrs), {int(v): i for i, v in enumerate(ids)}
    at = np.searchsorted(queries.query_id, result.query_id)
    for i in np.unique(at):
        mine = np.flatnonzero(at == i)
        rows = np.array([position[int(v)] for v in result.id[mine]])
        assert queries.predicates[i].mask(columns, rows).all()
        assert result.rank[mine].tolist() == list(range(len(mine)))
        assert np.all(np.diff(result.distance[mine]) >= 0) and len(set(result.id[mine])) == len(mine)
        d = ((x[rows].astype(np.float64) - queries.vectors[i]) ** 2).sum(axis=1).astype(np.float32)
        np.testing.assert_allclose(result.distance[mine], d, rtol=1e-6)


def test_approximate_recall(dataset, layout, queries):
    truth = search(layout, queries)
    recalls = [recall_at_k(search(layout, queries, nprobe=n), truth, 10) for n in (1, 4, 16)]
    assert 0.3 < recalls[0] <= recalls[1] <= recalls[2] and recalls[2] > 0.85, recalls
    everything = search(layout, queries, nprobe=len(layout.centroids))
    assert recall_at_k(everything, truth, 10) == 1.0
    assert np.array_equal(everything.id, truth.id) and np.array_equal(everything.distance, truth.distance)
    assert everything.stats.rows_scanned.sum() <= truth.stats.rows_scanned.sum()


def test_recall_at_k_counts_ties():
    stats = SearchStats(np.zeros(2, np.int64), np.zeros(2, np.int64), 0, 0)

    def result(qid, ids, dist):
        qid = np.array(qid)
        rank = np.concatenate([np.arange((qid == q).sum()) for q in dict.fromkeys(qid.tolist())])
        return SearchResult(qid, rank.astype(np.int32), np.array(ids), np.float32(dist), stats)
    truth = result([1, 1, 1, 2], [10, 11, 12, 20], [1, 2, 2, 5])
    assert recall_at_k(result([1, 1, 2], [10, 12, 20], [1, 2, 5]), truth, 2) == 1.0  # 12 ties with 11
    assert recall_at_k(result([1, 1], [10, 13], [1, 3]), truth, 2) == 0.25  # query 2: nothing returned
    assert recall_at_k(result([1, 1, 1, 2], [10, 11, 12, 20], [1, 2, 2, 5]), truth, 3) == 1.0


def test_layout_invariants(dataset, layout, train):
    ids, x, attrs = dataset
    assert np.array_equal(np.sort(layout.order), np.arange(len(ids)))
    assert np.array_equal(layout.ids, ids[layout.order]) and np.array_equal(layout.vectors, x[layout.order])
    assert np.array_equal(layout.leaf, layout.tree.assign(layout.columns))
    # clusters are contiguous slices inside their leaf, each centroid the mean of its rows
    assert np.array_equal(layout.cluster_offsets[layout.leaf_clusters], layout.leaf_offsets)
    c = layout.cluster
    assert (np.diff(layout.cluster_offsets) > 0).all()
    means = np.stack([layout.vectors[c == j].mean(axis=0) for j in range(len(layout.centroids))])
    np.testing.assert_allclose(layout.centroids, means, atol=1e-4)
    again = build(ids, x, attrs, train, min_leaf_rows=150, rows_per_cluster=40, seed=3)
    assert np.array_equal(again.order, layout.order) and np.array_equal(again.centroids, layout.centroids)
    per_leaf = build(ids, x, attrs, train, min_leaf_rows=150, clusters_per_leaf=3, seed=3)
    assert (np.diff(per_leaf.leaf_clusters) <= 3).all()


def test_build_and_search_refuse_bad_input(dataset, layout, queries):
    ids, x, attrs = dataset
    with pytest.raises(ValueError, match="distinct"):
        build(np.zeros(len(ids), np.int64), x, attrs, [])
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        build(ids, bad, attrs, [])
    with pytest.raises(ValueError, match="not both"):
        build(ids, x, attrs, [], rows_per_cluster=10, clusters_per_leaf=2)
    with pytest.raises(ValueError, match="nprobe"):
        search(layout, queries, nprobe=0)
    with pytest.raises(ValueError, match="dimension"):
        search(layout, queries._replace(vectors=queries.vectors[:, :4]))
    with pytest.raises(ValueError, match="columns"):
        search(layout, queries._replace(predicates=[parse(one("colour", "=", "x"), {"colour": CATEGORICAL})]
                                        * len(queries.k)))


def test_parse_workload_quarantines_with_reasons():
    table = pa.table({
        "query_id": pa.array([1, 2, 3, 3, None, 6, 7, 8], pa.int64()),
        "k": pa.array([5, -1, 5, 5, 5, 5, 5, None], pa.int32()),
        "vector": pa.array([[0.0, 1.0]] * 5 + [[0.0], None, [float("nan"), 1]]),
        "predicate": ["[]", "[]", one("genre", "=", "a"), "[]", "[]", "[]", "[]", "{"],
    })
    queries, bad = parse_workload(table, TYPES, 2)
    assert queries.query_id.tolist() == [1, 3] and queries.k.tolist() == [5, 5]
    assert queries.vectors.dtype == np.float32 and queries.predicates[1].terms == ((("genre", OneOf(("a",))),),)
    assert bad.to_pylist() == [
        {"query_id": 2, "reason": "k must be a positive integer, got -1"},
        {"query_id": 3, "reason": "duplicate query_id"},
        {"query_id": None, "reason": "missing query_id"},
        {"query_id": 6, "reason": "vector has 1 values, expected 2"},
        {"query_id": 7, "reason": "missing vector"},
        {"query_id": 8, "reason": "k must be a positive integer, got None"},
    ]
    _, bad = parse_workload(table.slice(7).set_column(1, "k", pa.array([1], pa.int32())), TYPES, 2)
    assert bad.column("reason").to_pylist() == ["vector has NaN or infinite values"]
    _, bad = parse_workload(table.slice(2, 1).set_column(3, "predicate", pa.array(["[{"])), TYPES, 2)
    assert bad.column("reason").to_pylist()[0].startswith("predicate: malformed JSON")


# ---------------------------------------------------------------------------- partitioning, slices, storage


def _squared(x, c) -> np.ndarray:
    return ((x[:, None, :].astype(np.float64) - c[None, :, :]) ** 2).sum(axis=2)


def test_nearest_is_exact_whatever_the_batch():
    rng = np.random.default_rng(2)
    # integers far from the origin: ties, and float32 products that err by more than the gaps
    c = rng.integers(0, 3, (40, 8)).astype(np.float32) + 3000
    x = rng.integers(0, 3, (500, 8)).astype(np.float32) + 3000
    expected = _squared(x, c).argmin(axis=1)  # ties to the lower index
    assert np.array_equal(nearest(x, c), expected)
    assert np.array_equal(np.concatenate([nearest(x[i:i + 7], c) for i in range(0, 500, 7)]), expected)
    y, cy = rng.normal(size=(300, 16)).astype(np.float32), rng.normal(size=(20, 16)).astype(np.float32)
    assert np.array_equal(nearest(y, cy), _squared(y, cy).argmin(axis=1))
    assert nearest(y, cy[:1]).tolist() == [0] * 300


@pytest.mark.parametrize("clusters", [30, 400])  # all sorted; only the nearest sorted, some rows in full
def test_choose_clusters_follows_exact_distances_whatever_the_batch(clusters):
    rng = np.random.default_rng(3)
    c = rng.integers(0, 3, (clusters, 8)).astype(np.float32) + 3000  # many exact ties
    q = rng.integers(0, 3, (200, 8)).astype(np.float32) + 3000
    k, satisfying = rng.choice([1, 5, 40, 200], 200), rng.integers(1, 6, clusters)
    got = choose_clusters(q, k, c, satisfying, 3)
    order = np.argsort(_squared(q, c), axis=1, kind="stable")
    for i in range(len(q)):
        reach = np.cumsum(satisfying[order[i]])
        probes = min(max(3, int((reach < k[i]).sum()) + 1), len(c))
        mine = got[0] == i  # the exact set; its order only schedules the probes
        assert sorted(got[1][mine]) == sorted(order[i, :probes]) and got[2][mine].tolist() == list(range(probes))
        alone = choose_clusters(q[i:i + 1], k[i:i + 1], c, satisfying, 3)
        assert sorted(alone[1]) == sorted(got[1][mine])


def test_partitioning_fitted_on_a_sample(dataset, train, queries):
    ids, x, attrs = dataset
    half = np.arange(0, len(ids), 2)
    p = fit_partitioning(attrs.take(half), x[half], train, min_leaf_rows=150, rows_per_cluster=40, seed=3, share=0.5)
    assert p.tree.leaf_rows.min() >= 75 and np.diff(p.leaf_clusters).max() > 1
    cluster = p.assign(attrs, x)
    pieces = [p.assign(attrs.slice(i, 97), x[i:i + 97]) for i in range(0, len(ids), 97)]
    assert np.array_equal(np.concatenate(pieces), cluster)  # a row's place does not depend on its batch
    layout = arrange(p, ids, x, attrs, cluster)
    assert np.array_equal(layout.leaf, layout.tree.assign(layout.columns))
    for lf in range(layout.tree.num_leaves):  # every row in its leaf's nearest cluster
        lo, hi = layout.leaf_offsets[lf:lf + 2]
        c0, c1 = layout.leaf_clusters[lf:lf + 2]
        assert np.array_equal(layout.cluster[lo:hi] - c0, _squared(layout.vectors[lo:hi], p.centroids[c0:c1]).argmin(1))
    result = search(layout, queries)
    truth = exact_search(ids, x, attrs, queries)
    assert np.array_equal(result.id, truth.id) and np.array_equal(result.distance, truth.distance)
    with pytest.raises(ValueError, match="cluster in 0"):
        arrange(p, ids, x, attrs, cluster + len(p.centroids))


def _merge(parts: list, queries) -> tuple:
    """Each query's k best of the slices' results, by (distance, id)."""
    qid, ids, dist = (np.concatenate([getattr(r, f) for r in parts]) for f in ("query_id", "id", "distance"))
    order = np.lexsort((ids, dist, np.searchsorted(queries.query_id, qid)))
    qid, ids, dist = qid[order], ids[order], dist[order]
    rank = np.arange(len(qid)) - np.searchsorted(qid, qid) if len(qid) else qid
    keep = rank < queries.k[np.searchsorted(queries.query_id, qid)]
    return qid[keep], ids[keep], dist[keep]


@pytest.mark.parametrize("nprobe", [None, 2])
def test_slices_answer_as_the_whole_layout(layout, queries, nprobe):
    """What hqi-query's spark engine does: the probes chosen on the whole layout, each slice
    of two clusters searched alone, the slices' results merged by (distance, id)."""
    queries = queries._replace(query_id=np.arange(len(queries.k)))  # sorted ids, for the merge
    whole = search(layout, queries, nprobe=nprobe)
    pairs = []  # (query, cluster) of every probe, chosen on the whole
    for i, (p, k, v) in enumerate(zip(queries.predicates, queries.k, queries.vectors, strict=True)):
        leaves = layout.tree.route(p)
        clusters = np.concatenate([np.arange(*layout.leaf_clusters[lf:lf + 2]) for lf in leaves]) if len(leaves) \
            else np.zeros(0, np.int64)
        if k and nprobe is None:  # every cluster of the leaves it reaches
            pairs += [(i, c) for c in clusters]
            continue
        sat = np.array([p.mask(layout.columns, slice(*layout.cluster_offsets[c:c + 2])).sum() for c in clusters])
        clusters, sat = clusters[sat > 0], sat[sat > 0]
        if k and len(clusters):
            _, pos, _ = choose_clusters(v[None], np.array([k]), layout.centroids[clusters], sat, nprobe)
            pairs += [(i, c) for c in clusters[pos]]
    pairs = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    parts, scanned = [], np.zeros(len(queries.k), np.int64)
    for lf in range(layout.tree.num_leaves):
        for c0 in range(layout.leaf_clusters[lf], layout.leaf_clusters[lf + 1], 2):
            c1 = min(c0 + 2, layout.leaf_clusters[lf + 1])
            lo, hi = layout.cluster_offsets[[c0, c1]]
            part = slice_layout(layout.ids[lo:hi], layout.vectors[lo:hi], layout.columns.take(slice(lo, hi)),
                                layout.cluster[lo:hi] - c0, layout.centroids[c0:c1], types=layout.columns.types)
            mine = pairs[(pairs[:, 1] >= c0) & (pairs[:, 1] < c1)]
            qs = np.unique(mine[:, 0])
            sub = Queries(queries.query_id[qs], queries.k[qs], queries.vectors[qs], [queries.predicates[i] for i in qs])
            probes = None if nprobe is None else (np.searchsorted(qs, mine[:, 0]), mine[:, 1] - c0)
            r = search(part, sub, probes=probes)
            parts.append(r)
            scanned[qs] += r.stats.rows_scanned
    qid, ids, dist = _merge(parts, queries)
    assert np.array_equal(qid, whole.query_id) and np.array_equal(ids, whole.id)
    assert np.array_equal(dist, whole.distance) and np.array_equal(scanned, whole.stats.rows_scanned)


def test_save_and_load_layout(tmp_path, dataset, layout, queries):
    save_layout(layout, str(tmp_path))
    again = load_layout(str(tmp_path))
    for field in ("ids", "vectors", "norms", "leaf_offsets", "cluster_offsets", "leaf_clusters", "centroids"):
        assert np.array_equal(getattr(again, field), getattr(layout, field)), field
    assert again.tree.to_dict() == layout.tree.to_dict() and again.columns.types == layout.columns.types
    for nprobe in (None, 3):
        a, b = search(again, queries, nprobe=nprobe), search(layout, queries, nprobe=nprobe)
        assert np.array_equal(a.id, b.id) and np.array_equal(a.distance, b.distance)
    rows, centroids = layout_tables(layout)
    attrs = dataset[2].take(pa.array(layout.order))
    assert rows.select(attrs.column_names).equals(attrs.cast(rows.select(attrs.column_names).schema))
    assert rows.column("price").null_count == attrs.column("price").null_count > 0
    assert centroids.column("rows").to_pylist() == np.diff(layout.cluster_offsets).tolist()
    (tmp_path / "centroids" / "part-00000.parquet").unlink()
    pq.write_table(centroids.slice(1), tmp_path / "centroids" / "part-00000.parquet")
    with pytest.raises(ValueError, match="number the clusters"):
        load_layout(str(tmp_path))


# ---------------------------------------------------------------------------- generator


def test_generator_is_deterministic_and_skewed(data, train):
    assert data.equals(generate_data(4000, 16, clusters=16, seed=5))
    assert not data.column("vector").equals(generate_data(4000, 16, clusters=16, seed=6).column("vector"))
    assert data.schema.field("vector").type == pa.list_(pa.float32(), 16)
    assert len(set(data.column("id").to_pylist())) == data.num_rows
    w = generate_workload(data, 1500, seed=6)
    assert w.equals(generate_workload(data, 1500, seed=6)) and not w.equals(generate_workload(data, 1500, seed=8))
    texts = w.column("predicate").to_pylist()
    assert len(set(texts)) < len(texts) / 5  # predicates recur
    assert any('"or"' in t for t in texts)
    columns = Columns.from_table(data_arrays(data)[2])
    share = np.array([parse(t, columns.types).mask(columns).mean() for t in set(texts)])
    assert share.min() <= 0.002 and share.max() >= 0.3
    # another seed, the same templates: most of its queries' predicates occur in the first
    other = generate_workload(data, 400, seed=7).column("predicate").to_pylist()
    assert np.mean([t in set(train) for t in other]) > 0.8


def test_exact_under_ties_and_float32_cancellation():
    """Integer vectors far from the origin: many equal distances, and float32 products that
    err by more than the distances themselves; the answer is still exact, ties by id."""
    rng = np.random.default_rng(11)
    n, d = 1500, 8
    x = rng.integers(0, 3, (n, d)).astype(np.float32) + 3000  # x.q > 2^24: float32 rounds it
    ids = rng.permutation(n).astype(np.int64) * 3
    attrs = {"genre": np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, n)], "year": rng.integers(0, 20, n)}
    types = {"genre": CATEGORICAL, "year": NUMERIC}
    texts = ["[]", one("genre", "=", "a"), one("year", "<", 5), json.dumps([clause("genre", "in", ["b", "c"]),
                                                                            clause("year", ">=", 12)])]
    m = 60
    queries = Queries(np.arange(m), rng.choice([1, 10, 100, 2000], m),
                      rng.integers(0, 3, (m, d)).astype(np.float32) + 3000,
                      [parse(texts[i % len(texts)], types) for i in range(m)])
    truth = exact_search(ids, x, attrs, queries)
    columns = Columns.from_table(attrs, types)
    for i in range(m):
        rows = np.flatnonzero(queries.predicates[i].mask(columns))
        dist = ((x[rows].astype(np.float64) - queries.vectors[i]) ** 2).sum(axis=1)  # small integers: exact
        best = np.lexsort((ids[rows], dist))[:queries.k[i]]
        mine = truth.query_id == i
        assert truth.id[mine].tolist() == ids[rows][best].tolist()
        assert truth.distance[mine].tolist() == dist[best].tolist()
    layout = build(ids, x, attrs, texts * 5, min_leaf_rows=100, rows_per_cluster=30, types=types)
    for nprobe in (None, 10_000):
        result = search(layout, queries, nprobe=nprobe)
        assert np.array_equal(result.id, truth.id) and np.array_equal(result.distance, truth.distance)


@pytest.mark.parametrize("nprobe", [None, 3])
def test_threads_give_the_same_answers(layout, queries, nprobe):
    one = search(layout, queries, nprobe=nprobe)
    two = search(layout, queries, nprobe=nprobe, threads=3)
    for a, b in zip(one[:4], two[:4], strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(one.stats.rows_scanned, two.stats.rows_scanned)
    assert one.stats.predicate_evaluations == two.stats.predicate_evaluations
    with pytest.raises(ValueError, match="threads"):
        search(layout, queries, threads=0)
