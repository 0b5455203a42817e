"""MinHash signatures are bit-exact with datasketch; tokenisers match plain-Python references."""

import hashlib
import struct

import datasketch
import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from sigil.transforms.minhash import MinHasher, sha1_prefix64, signature_batch, token_sets
from sigil.transforms.tokens import tokenize, tokenize_columns

texts = st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=12)


def qgrams(s: str, q: int) -> list[bytes]:
    if not s:
        return []
    if len(s) < q:
        return [s.encode()]
    return [s[i:i + q].encode() for i in range(len(s) - q + 1)]


def rows(tokens, offsets):
    values = tokens.to_pylist()
    return [values[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


@given(texts, st.integers(1, 5))
def test_qgrams_match_reference(strings, q):
    tokens, offsets = tokenize(pa.array(strings, pa.string()), "qgram", q)
    assert rows(tokens, offsets) == [qgrams(s, q) if s else [] for s in strings]


@given(st.lists(st.one_of(st.none(), st.text(alphabet=" \tab\nçd日", max_size=30)), max_size=10))
def test_words_match_str_split(strings):
    tokens, offsets = tokenize(pa.array(strings, pa.string()), "word")
    assert rows(tokens, offsets) == [[w.encode() for w in s.split()] if s else [] for s in strings]


def test_joined_and_tagged_columns():
    a, b = pa.array(["ab", None, "x"]), pa.array(["cd", "ef", None])
    joined, offs = tokenize_columns([a, b], kind="word", join=True)
    assert rows(joined, offs) == [[b"ab", b"cd"], [b"ef"], [b"x"]]
    tagged, offs = tokenize_columns([a, b], kind="word", join=False, tags=["f", "g"])
    assert rows(tagged, offs) == [[b"f\x1fab", b"g\x1fcd"], [b"g\x1fef"], [b"f\x1fx"]]


def test_joined_columns_keep_rows_whose_values_are_all_null():
    """Arrow's element-wise join drops all-null rows; each row keeps its (empty) token list."""
    one, two = pa.array(["ab", None, "cd"]), pa.array([None, None, "ef"])
    assert rows(*tokenize_columns([one], kind="word")) == [[b"ab"], [], [b"cd"]]
    assert rows(*tokenize_columns([one, two], kind="word")) == [[b"ab"], [], [b"cd", b"ef"]]
    batch = pa.RecordBatch.from_pydict({"rid": [1, 2, 3], "source": ["a"] * 3, "id": ["1", "2", "3"],
                                        "name_norm": one})
    out = signature_batch(batch, ["name"], MinHasher(num_perm=8))
    assert out.num_rows == 3 and out["num_tokens"].to_pylist() == [1, 0, 1]


@given(st.lists(st.binary(max_size=200), max_size=20))
def test_sha1_prefix_matches_hashlib(values):
    got = sha1_prefix64(pa.array(values, pa.binary()))
    want = [struct.unpack("<Q", hashlib.sha1(v).digest()[:8])[0] for v in values]
    assert got.tolist() == want


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.text(max_size=8), max_size=15), min_size=1, max_size=8),
       st.sampled_from([1, 7, 128]), st.integers(0, 2**32 - 1), st.sampled_from(["affine32", "legacy"]))
def test_signatures_equal_datasketch(token_lists, num_perm, seed, scheme):
    flat = [t.encode() for ts in token_lists for t in ts]
    offsets = np.cumsum([0] + [len(ts) for ts in token_lists])
    sig = MinHasher(num_perm, seed, scheme).signatures(pa.array(flat, pa.binary()), offsets)
    for i, ts in enumerate(token_lists):
        m = datasketch.MinHash(num_perm=num_perm, seed=seed, scheme=scheme)
        m.update_batch([t.encode() for t in ts])
        assert np.array_equal(m.hashvalues.astype(np.uint64), sig[i].astype(np.uint64))


def test_signature_estimates_jaccard():
    rng = np.random.default_rng(0)
    universe = [f"t{i}".encode() for i in range(400)]
    a = set(rng.choice(400, 200, replace=False).tolist())
    b = set(list(a)[:120]) | set(rng.choice(400, 80, replace=False).tolist())
    true = len(a & b) / len(a | b)
    toks = [universe[i] for i in sorted(a)] + [universe[i] for i in sorted(b)]
    sig = MinHasher(512, 3).signatures(pa.array(toks, pa.binary()), np.array([0, len(a), len(a) + len(b)]))
    assert abs((sig[0] == sig[1]).mean() - true) < 0.07


@given(st.lists(st.lists(st.integers(0, 50), max_size=20), max_size=10))
def test_token_sets_are_sorted_distinct(groups):
    values = np.array([v for g in groups for v in g], dtype=np.uint64)
    offsets = np.cumsum([0] + [len(g) for g in groups]).astype(np.int64)
    out, offs = token_sets(values, offsets)
    assert [out[offs[i]:offs[i + 1]].tolist() for i in range(len(groups))] == [sorted(set(g)) for g in groups]
