"""Tests of the synthetic person generator (sigil.transforms.people)."""

from __future__ import annotations

import functools
import itertools
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigil.transforms import people
from sigil.transforms.people import (
    PEOPLE_SCHEMA,
    PERSON_FIELDS,
    TRUTH_SCHEMA,
    generate_people,
    truth_pairs,
)

STATES = {"nsw", "vic", "qld", "wa", "sa", "tas", "act", "nt"}


@functools.lru_cache(maxsize=None)
def _batch(chunk=0, entities=10_000, seed=11, mode="dedupe", **kw) -> pa.RecordBatch:
    return generate_people(chunk, entities, seed=seed, mode=mode, **kw)


def _copies(batch: pa.RecordBatch) -> list[tuple[dict, dict]]:
    """(copy, original of the same person) for every non-original record."""
    rows = batch.to_pylist()
    original = {r["entity_id"]: r for r in rows if r["rec_id"].endswith("-org")}
    return [(r, original[r["entity_id"]]) for r in rows if not r["rec_id"].endswith("-org")]


def _fields_differing(a: dict, b: dict) -> int:
    return sum(a[f] != b[f] for f in PERSON_FIELDS)


def _trigrams(record: dict) -> set[str]:
    s = " ".join(record[f] for f in PERSON_FIELDS if record[f] is not None)
    return {s[i:i + 3] for i in range(len(s) - 2)}


def _jaccard(a: dict, b: dict) -> float:
    x, y = _trigrams(a), _trigrams(b)
    return len(x & y) / len(x | y)


def _reference_pairs(table: pa.Table | pa.RecordBatch) -> list[tuple]:
    """Slow, obviously correct truth: every record pair of one entity, oriented."""
    rows = [r for r in table.to_pylist() if r["entity_id"] is not None]
    link = len({r["source"] for r in rows}) > 1
    out = []
    for x, y in itertools.combinations(rows, 2):
        if x["entity_id"] != y["entity_id"]:
            continue
        a, b = sorted([(x["source"], x["rec_id"]), (y["source"], y["rec_id"])])
        if link and a[0] == b[0]:
            continue
        out.append(a + b)
    return sorted(out)


def _pairs(table: pa.Table) -> list[tuple]:
    return sorted(zip(*(table[c].to_pylist() for c in TRUTH_SCHEMA.names)))


# --- schema and formats -------------------------------------------------------------------
def test_fields_and_schema():
    assert PERSON_FIELDS == ("given_name", "surname", "street_number", "address_1",
                             "address_2", "suburb", "postcode", "state", "date_of_birth",
                             "soc_sec_id")
    for mode in ("dedupe", "link"):
        batch = _batch(mode=mode)
        assert isinstance(batch, pa.RecordBatch)
        assert batch.schema == PEOPLE_SCHEMA
        assert batch.schema.names == ["source", "rec_id", "entity_id", *PERSON_FIELDS]
        assert batch.schema.field("entity_id").type == pa.int64()
        assert all(batch.schema.field(f).type == pa.string() for f in PERSON_FIELDS)
    assert truth_pairs(_batch()).schema == TRUTH_SCHEMA


def test_original_field_formats():
    rows = [r for r in _batch().to_pylist() if r["rec_id"].endswith("-org")]
    assert len(rows) == 10_000
    for r in rows:
        assert all(r[f] is None or (r[f] != "" and r[f] == r[f].lower()) for f in PERSON_FIELDS)
        if r["postcode"] is not None:
            assert len(r["postcode"]) == 4 and r["postcode"].isdigit()
        if r["soc_sec_id"] is not None:
            assert len(r["soc_sec_id"]) == 7 and r["soc_sec_id"].isdigit()
        if r["state"] is not None:
            assert r["state"] in STATES
        if r["date_of_birth"] is not None:
            d = r["date_of_birth"]
            assert len(d) == 8 and d.isdigit()
            np.datetime64(f"{d[:4]}-{d[4:6]}-{d[6:]}")  # raises if not a date
            assert "1930" <= d[:4] <= "2006"
        if r["street_number"] is not None:
            assert r["street_number"].isdigit() and int(r["street_number"]) >= 1


def test_suburb_determines_state_and_postcode():
    seen: dict[str, set] = {}
    for r in _batch().to_pylist():
        if r["rec_id"].endswith("-org") and None not in (r["suburb"], r["state"], r["postcode"]):
            seen.setdefault(r["suburb"], set()).add((r["state"], r["postcode"]))
    assert len(seen) > 500
    assert all(len(v) == 1 for v in seen.values())


def test_no_empty_strings_anywhere():
    for mode in ("dedupe", "link"):
        for f in PERSON_FIELDS:
            assert "" not in set(_batch(mode=mode, error_rate=2.0).column(f).to_pylist())


# --- determinism and chunks ---------------------------------------------------------------
def test_same_seed_and_chunk_give_identical_batches():
    for mode in ("dedupe", "link"):
        a = generate_people(3, 2000, seed=5, mode=mode)
        b = generate_people(3, 2000, seed=5, mode=mode)
        assert a.equals(b)
        assert not a.equals(generate_people(3, 2000, seed=6, mode=mode))


def test_chunks_are_different_people_with_disjoint_ids():
    a, b = _batch(chunk=0), _batch(chunk=1)
    ids_a, ids_b = set(a.column("entity_id").to_pylist()), set(b.column("entity_id").to_pylist())
    assert ids_a == set(range(0, 10_000)) and ids_b == set(range(10_000, 20_000))
    fields = ("given_name", "surname", "date_of_birth", "soc_sec_id")
    keys_a = {tuple(r[f] for f in fields) for r in a.to_pylist()}
    keys_b = {tuple(r[f] for f in fields) for r in b.to_pylist()}
    assert len(keys_a & keys_b) < 0.01 * len(keys_a)


def test_rec_ids_unique_across_chunks_and_sources():
    for mode in ("dedupe", "link"):
        ids = [i for c in range(4) for i in
               generate_people(c, 3000, seed=2, mode=mode).column("rec_id").to_pylist()]
        assert len(ids) == len(set(ids))


def test_rows_are_shuffled():
    entity = _batch().column("entity_id").to_numpy()
    assert np.mean(entity[1:] == entity[:-1]) < 0.02  # copies are not next to each other
    originals = np.flatnonzero(np.char.endswith(
        np.array(_batch().column("rec_id").to_pylist()), "-org"))
    assert originals.max() > 0.9 * len(entity)  # not all originals first


def test_empty_chunk():
    batch = generate_people(2, 0, seed=1)
    assert batch.num_rows == 0 and batch.schema == PEOPLE_SCHEMA
    pairs = truth_pairs(batch)
    assert pairs.num_rows == 0 and pairs.schema == TRUTH_SCHEMA


# --- layout: duplicate rate and link overlap ----------------------------------------------
@pytest.mark.parametrize("rate,max_dup", [(0.3, 3), (0.1, 1), (0.6, 5)])
def test_duplicate_rate_and_counts(rate, max_dup):
    batch = _batch(entities=20_000, duplicate_rate=rate, max_duplicates=max_dup)
    assert set(batch.column("source").to_pylist()) == {"people"}
    per_entity = Counter(batch.column("entity_id").to_pylist())
    sizes = np.array(list(per_entity.values()))
    assert len(sizes) == 20_000
    assert abs(np.mean(sizes > 1) - rate) < 0.015
    assert sizes.max() == 1 + max_dup
    k = np.arange(1, max_dup + 1)
    expected_k = (k / k).sum() / (1 / k).sum()  # mean of P(k) ~ 1/k
    assert abs(sizes[sizes > 1].mean() - 1 - expected_k) < 0.06
    originals = Counter(e for e, i in zip(batch.column("entity_id").to_pylist(),
                                          batch.column("rec_id").to_pylist())
                        if i.endswith("-org"))
    assert set(originals.values()) == {1} and len(originals) == 20_000


@pytest.mark.parametrize("overlap", [0.5, 0.9])
def test_link_overlap(overlap):
    batch = _batch(entities=20_000, mode="link", link_overlap=overlap)
    sources = batch.column("source").to_pylist()
    entity = batch.column("entity_id").to_pylist()
    assert set(sources) == {"a", "b"}
    per_source = Counter(zip(sources, entity))
    assert max(per_source.values()) == 1  # no duplicates within a source
    in_both = Counter(entity)
    assert abs(np.mean([n == 2 for n in in_both.values()]) - overlap) < 0.015
    n_a, n_b = sources.count("a"), sources.count("b")
    assert abs(n_a - n_b) < 0.03 * len(sources)  # one-source people split evenly
    for copy, original in _copies(batch):  # the copy is in b, its original in a
        assert copy["source"] == "b" and original["source"] == "a"


# --- truth pairs --------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), chunk=st.integers(0, 1000),
       mode=st.sampled_from(["dedupe", "link"]), entities=st.integers(0, 30),
       duplicate_rate=st.floats(0, 1), max_duplicates=st.integers(1, 4),
       link_overlap=st.floats(0, 1), keep=st.integers(0, 2**32 - 1))
def test_truth_pairs_match_reference(seed, chunk, mode, entities, duplicate_rate,
                                     max_duplicates, link_overlap, keep):
    batch = generate_people(chunk, entities, seed=seed, mode=mode,
                            duplicate_rate=duplicate_rate, max_duplicates=max_duplicates,
                            link_overlap=link_overlap)
    got = truth_pairs(batch)
    assert got.schema == TRUTH_SCHEMA
    assert _pairs(got) == _reference_pairs(batch)
    # a subset of the rows, as a multi-chunk Table
    mask = np.random.default_rng(keep).random(batch.num_rows) < 0.7
    table = pa.Table.from_batches([batch.filter(pa.array(mask)), batch.slice(0, 0)])
    assert _pairs(truth_pairs(table)) == _reference_pairs(table)


def test_truth_pairs_by_hand():
    link = pa.table({"source": ["b", "a", "a", "b", "a"],
                     "rec_id": ["x", "y", "z", "w", "v"],
                     "entity_id": pa.array([1, 1, 1, 2, None], pa.int64())})
    assert _pairs(truth_pairs(link)) == [("a", "y", "b", "x"), ("a", "z", "b", "x")]
    dedupe = pa.table({"source": ["s"] * 4, "rec_id": ["q", "p", "r", "t"],
                       "entity_id": pa.array([7, 7, 3, 7], pa.int64())})
    assert _pairs(truth_pairs(dedupe)) == [("s", "p", "s", "q"), ("s", "p", "s", "t"),
                                           ("s", "q", "s", "t")]


def test_truth_pair_counts_follow_layout():
    batch = _batch(entities=20_000)
    sizes = np.array(list(Counter(batch.column("entity_id").to_pylist()).values()))
    assert truth_pairs(batch).num_rows == (sizes * (sizes - 1) // 2).sum()
    link = _batch(entities=20_000, mode="link")
    pairs = truth_pairs(link)
    in_both = sum(n == 2 for n in Counter(link.column("entity_id").to_pylist()).values())
    assert pairs.num_rows == in_both
    assert set(pairs.column("source_a").to_pylist()) == {"a"}
    assert set(pairs.column("source_b").to_pylist()) == {"b"}


def test_truth_pairs_across_chunks():
    table = pa.Table.from_batches([_batch(chunk=c, entities=2000) for c in range(3)])
    per_chunk = [_pairs(truth_pairs(_batch(chunk=c, entities=2000))) for c in range(3)]
    assert all(per_chunk)
    assert _pairs(truth_pairs(table)) == sorted(itertools.chain(*per_chunk))


# --- corruption ---------------------------------------------------------------------------
def test_copies_are_corrupted_about_as_much_as_febrl():
    copies = _copies(_batch())
    assert len(copies) > 4000
    diffs = np.array([_fields_differing(c, o) for c, o in copies])
    assert np.mean(diffs >= 1) > 0.97
    assert 1.5 < diffs.mean() < 3.2  # FEBRL 4: 2.2 fields per duplicate
    assert np.mean(diffs >= 5) < 0.1  # most duplicates share most fields


def test_each_kind_of_corruption_occurs():
    copies = _copies(_batch())
    n = len(copies)
    alternates = people._alternate_names()
    nick = sum(c["given_name"] in alternates.get(o["given_name"], ()) for c, o in copies)
    swapped = sum(c["given_name"] is not None and c["given_name"] == o["surname"]
                  and c["surname"] == o["given_name"] for c, o in copies)
    abbrev = sum((o["address_1"] or "").endswith(" street")
                 and (c["address_1"] or "").endswith(" st") for c, o in copies)
    dob_swap = sum(None not in (c["date_of_birth"], o["date_of_birth"])
                   and c["date_of_birth"] != o["date_of_birth"]
                   and c["date_of_birth"] == o["date_of_birth"][:4] + o["date_of_birth"][6:]
                   + o["date_of_birth"][4:6] for c, o in copies)
    ssn_typo = sum(None not in (c["soc_sec_id"], o["soc_sec_id"])
                   and c["soc_sec_id"] != o["soc_sec_id"]
                   and sum(x != y for x, y in zip(c["soc_sec_id"], o["soc_sec_id"])) <= 2
                   for c, o in copies)
    typo = sum(None not in (c["surname"], o["surname"]) and c["surname"] != o["surname"]
               and abs(len(c["surname"]) - len(o["surname"])) <= 1
               and c["surname"] != o["given_name"] for c, o in copies)
    assert 0.05 * n < nick < 0.4 * n
    assert 0.01 * n < swapped < 0.1 * n
    assert 0.02 * n < abbrev < 0.3 * n
    assert 0.005 * n < dob_swap < 0.1 * n
    assert 0.01 * n < ssn_typo < 0.1 * n
    assert 0.05 * n < typo < 0.3 * n


def test_missing_values_in_originals_and_more_in_copies():
    batch = _batch()
    originals = [r for r in batch.to_pylist() if r["rec_id"].endswith("-org")]
    copies = [c for c, _ in _copies(batch)]
    null_org = np.mean([[r[f] is None for f in PERSON_FIELDS] for r in originals])
    null_copy = np.mean([[r[f] is None for f in PERSON_FIELDS] for r in copies])
    assert 0.01 < null_org < 0.05
    assert null_copy > null_org + 0.005


def test_error_rate_zero_gives_exact_copies_up_to_missing_values():
    copies = _copies(_batch(error_rate=0.0))
    assert copies
    for c, o in copies:
        assert all(c[f] == o[f] for f in PERSON_FIELDS if None not in (c[f], o[f]))


def test_error_rate_scales_corruption():
    means = [np.mean([_fields_differing(c, o) for c, o in _copies(_batch(error_rate=e))])
             for e in (0.5, 1.0, 2.0)]
    assert means[0] < means[1] < means[2]


def test_corruption_override():
    copies = _copies(generate_people(0, 10_000, seed=11,
                                     corruption={"nickname": 1.0, "swap_names": 0.0}))
    alternates = people._alternate_names()
    eligible = [(c, o) for c, o in copies if o["given_name"] in alternates]
    assert len(eligible) > 1000
    nick = np.mean([c["given_name"] in alternates[o["given_name"]] for c, o in eligible])
    assert nick > 0.8  # the rest: typo'd or missing afterwards


# --- realism ------------------------------------------------------------------------------
def test_copies_are_much_closer_to_their_original_than_random_pairs():
    batch = _batch()
    rows = batch.to_pylist()
    copies = _copies(batch)
    same = np.mean([_jaccard(c, o) for c, o in copies])
    rng = np.random.default_rng(0)
    i, j = rng.integers(len(rows), size=(2, 3000))
    random = np.mean([_jaccard(rows[a], rows[b]) for a, b in zip(i, j) if a != b])
    assert 0.65 < same < 0.92  # FEBRL 4: 0.79
    assert random < 0.1


def test_names_are_skewed_and_nicknames_matter():
    originals = [r for r in _batch().to_pylist() if r["rec_id"].endswith("-org")]
    given = Counter(r["given_name"] for r in originals if r["given_name"])
    surname = Counter(r["surname"] for r in originals if r["surname"])
    total = sum(given.values())
    assert sum(n for _, n in given.most_common(10)) > 0.08 * total  # uniform: 1.4%
    assert surname.most_common(1)[0][1] > 0.01 * sum(surname.values())  # uniform: 0.1%
    formal = sum(n for name, n in given.items() if name in people._NICKNAMES)
    assert formal > 0.25 * total


# --- configuration errors -----------------------------------------------------------------
@pytest.mark.parametrize("kwargs,key", [
    ({"mode": "both"}, "mode"),
    ({"duplicate_rate": 1.5}, "duplicate_rate"),
    ({"link_overlap": -0.1}, "link_overlap"),
    ({"max_duplicates": 0}, "max_duplicates"),
    ({"error_rate": -1.0}, "error_rate"),
    ({"seed": -1}, "seed"),
    ({"corruption": {"typos": 1.0}}, "corruption"),
])
def test_bad_configuration_names_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        generate_people(0, 10, **kwargs)
    with pytest.raises(ValueError, match="entities"):
        generate_people(0, -5)
