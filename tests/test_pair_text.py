"""Serialised labelled pairs mapped back to record ids (transforms/pair_text.py)."""

from __future__ import annotations

import csv

import pytest

from conftest import DATA, needs_data
from sigil.transforms.pair_text import canonical_key, map_pairs, parse_record, serialize

ABT_BUY = DATA / "er" / "abt_buy"
COLUMNS = ["name", "description", "price"]


def test_serialize_and_parse_round_trip():
    record = {"name": "Sony Bravia 40'", "description": None, "price": "899.0"}
    text = serialize(record, COLUMNS)
    assert text == "COL name VAL Sony Bravia 40' COL description VAL  COL price VAL 899.0 "
    assert parse_record(text) == {"name": "Sony Bravia 40'", "description": "", "price": "899.0"}
    with pytest.raises(ValueError, match="not a serialised record"):
        parse_record("name: sony")


def test_keys_absorb_retokenisation():
    published = parse_record("COL name VAL sony bravia 40 ' - black COL description VAL  COL price VAL 899.0 ")
    table = {"name": "Sony Bravia 40' Black", "description": "", "price": "899.0"}
    assert canonical_key(published, COLUMNS) == canonical_key(table, COLUMNS)


def test_sides_are_oriented_and_failures_have_reasons():
    a = [{"id": "1", "name": "Alpha X1", "description": "", "price": ""},
         {"id": "2", "name": "Twin", "description": "", "price": ""},
         {"id": "3", "name": "Twin", "description": "", "price": ""}]
    b = [{"id": "9", "name": "Beta Y2", "description": "", "price": ""}]
    text = {r["name"]: serialize({k: v.lower() for k, v in r.items()}, COLUMNS) for r in a + b}
    lines = [f"{text['Alpha X1']}\t{text['Beta Y2']}\t1", f"{text['Beta Y2']}\t{text['Alpha X1']}\t0",
             f"{text['Twin']}\t{text['Beta Y2']}\t1", f"{serialize({'name': 'Gone'}, COLUMNS)}\t{text['Beta Y2']}\t0",
             "no tabs here"]
    mapped, unmapped = map_pairs(lines, {"abt": a, "buy": b}, COLUMNS)
    assert mapped == [(1, "1", "9", 1), (2, "1", "9", 0)]
    assert unmapped == [(3, "several abt records have this text"), (4, "record not in abt"),
                        (5, "malformed line: expected <record>\\t<record>\\t<0|1>")]


@needs_data(ABT_BUY)
def test_abt_buy_pairs_map_to_ids_that_agree_with_the_matches():
    tables = {name: list(csv.DictReader(open(ABT_BUY / f"table{t}.csv", encoding="utf-8")))
              for name, t in (("abt", "A"), ("buy", "B"))}
    gold = {(r["tableA_id"], r["tableB_id"]) for r in csv.DictReader(open(ABT_BUY / "matches.csv"))}
    for split, lines in (("train", 5743), ("valid", 1916), ("test", 1916)):
        mapped, unmapped = map_pairs(open(ABT_BUY / "pairs" / f"{split}.txt", encoding="utf-8"), tables, COLUMNS)
        assert len(mapped) + len(unmapped) == lines and len(mapped) / lines > 0.97
        assert all(reason.startswith(("record not in", "no side found")) for _, reason in unmapped)
        positive = [(a, b) in gold for _, a, b, label in mapped if label == 1]
        negative = [(a, b) not in gold for _, a, b, label in mapped if label == 0]
        assert sum(positive) / len(positive) > 0.98 and sum(negative) / len(negative) > 0.99
