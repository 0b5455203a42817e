"""Labelled pairs mapped to records as real exports write them (jobs/spark/labels.py): the
forms values differ in, a column subset, the nearest record above a floor, and every line
that does not map quarantined with its reason."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from sigil.jobs.spark.labels import labelled_pairs
from sigil.run import Run, StrictError
from sigil.schemas.config import PairLabels, load_config
from sigil.transforms.pair_text import canonical_key, nearest_matches, serialize

A = [("a1", "Sony Bravia 40 — Black", "1999", "899.00"), ("a2", "Café Noir Espresso Maker", "2004", ""),
     ("a3", "LG Dishwasher LDS4821", "2010", "499.99"), ("a4", "Canon EOS 5D Mark II Body", "2008", "2499")]
B = [("b1", "sony bravia kdl40 black", "1999.0", "899"), ("b2", "cafe noir espresso maker cn2", "2004", "0.0"),
     ("b3", "lg lds4821 built in dishwasher", "2010", "499.99 USD"), ("b4", "canon eos 5d mark ii", "2008", "")]


def _records(spark):
    rows = [(s, i, name, year, price) for s, table in (("a", A), ("b", B)) for i, name, year, price in table]
    return spark.createDataFrame(rows, "source string, id string, name string, year string, price string")


def _side(row, category=None, **changed):
    """A record as a pair file serialises it, with the values an export ``changed``."""
    _, name, year, price = row
    record = {"name": name.lower().replace("—", "&mdash;"), "year": year, "price": price, **changed}
    return serialize({**record, "category": category}, ["name", "year", "price", "category"])


def _lines() -> list[str]:
    a, b = {r[0]: r for r in A}, {r[0]: r for r in B}
    return [f"{_side(a['a1'], year='1999.0')}\t{_side(b['b1'], 'tv', year='1999')}\t1",  # forms, an entity
            f"{_side(b['b2'], price='')}\t{_side(a['a2'], name='cafe noir espresso maker')}\t1",  # 0.0 / empty
            f"{_side(a['a3'])}\t{_side(b['b3'], price='499.99')}\t1",  # a currency suffix lost
            f"{_side(a['a1'])}\t{_side(b['b3'])}\t0",
            f"{_side(('x', 'Zenith 9 radio', '1950', ''))}\t{_side(('y', 'Tesla coil', '1900', ''))}\t0",
            "not a pair line"]


def _run(tmp_path, strict=False) -> Run:
    return Run("nlsh_train", load_config(base={"output": str(tmp_path)}), strict=strict, quiet=True)


def test_keys_absorb_what_exports_change():
    assert canonical_key({"y": "1999.0", "p": "899.00"}, ["y", "p"]) == canonical_key({"y": "1999", "p": "899"},
                                                                                       ["y", "p"])
    assert canonical_key({"n": "a &mdash; b"}, ["n"]) == canonical_key({"n": "a — b"}, ["n"])
    assert canonical_key({"n": "Café"}, ["n"]) == canonical_key({"n": "cafe"}, ["n"])


def test_the_nearest_record_must_be_unique_and_above_the_floor():
    index, score = nearest_matches(["sony tv 40", "lg tv"], ["sony 40 tv", "lg tv", "lg tv", "sony tv 4"], 0.8)
    assert index[0].tolist() == [0, 3] and score[0, 0] == 1.0 and score[0, 1] < 1.0
    assert index[1].tolist() == [1, 2] and score[1].tolist() == [1.0, 1.0]  # a tie: the caller leaves it unmapped
    assert nearest_matches(["sony"], ["philips"], 0.8)[0].tolist() == [[-1, -1]]


def test_serialised_lines_map_by_normalised_text_then_nearest(spark, tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(_lines()) + "\n")
    labels = PairLabels(path=str(path), format="serialized", columns=["name", "year", "price"])
    with _run(tmp_path) as job:
        pairs = labelled_pairs(spark, labels, _records(spark), ["a", "b"], "link", job)
        got = sorted(tuple(r) for r in pairs.collect())
        quarantine = pq.read_table(job.path("labels_quarantine")).to_pylist()
        metrics = job.manifest["metrics"]
    assert got == [("a", "a1", "b", "b1", 1), ("a", "a1", "b", "b3", 0), ("a", "a2", "b", "b2", 1),
                   ("a", "a3", "b", "b3", 1)]
    assert [(q["line"], q["reason"]) for q in quarantine] == [
        (5, "no side found in either source"), (6, "malformed line: expected <record>\\t<record>\\t<0|1>")]
    assert quarantine[1]["raw"] == "not a pair line" and quarantine[0]["file"] == str(path)
    # b2's price 0.0 and b3's reworded name and currency: nearest; the rest by normalised text
    assert metrics == {"labels_read": 6, "labels_mapped": 4, "labels_nearest": 2}
    assert job.manifest["quarantined"]["labels"] == 2


def test_default_columns_ignore_an_attribute_the_records_lack(spark, tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(_lines()[:2]) + "\n")  # both serialise `category` too
    exact = PairLabels(path=str(path), format="serialized", nearest=None)
    with _run(tmp_path) as job:
        assert labelled_pairs(spark, exact, _records(spark), ["a", "b"], "link", job).count() == 1
        assert job.manifest["metrics"]["labels_nearest"] == 0  # b2's price 0.0 needs the nearest record


def test_a_low_mapped_share_warns_and_fails_under_strict(spark, tmp_path, caplog):
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(_lines()) + "\n")
    labels = PairLabels(path=str(path), format="serialized", min_mapped=0.9)
    with _run(tmp_path / "warn") as job:
        labelled_pairs(spark, labels, _records(spark), ["a", "b"], "link", job)
    assert "4 of 6 (67%) labelled lines or pairs map to records, under min_mapped=0.9" in caplog.text
    with pytest.raises(StrictError, match=r"--strict: .*4 of 6"), _run(tmp_path / "strict", strict=True) as job:
        labelled_pairs(spark, labels, _records(spark), ["a", "b"], "link", job)


def test_id_pairs_without_their_records_are_quarantined(spark, tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("id_a,id_b,label\na1,b1,1\na2,b9,0\na9,b8,1\n")
    with _run(tmp_path) as job:
        pairs = labelled_pairs(spark, PairLabels(path=str(path)), _records(spark), ["a", "b"], "link", job)
        assert [tuple(r) for r in pairs.collect()] == [("a", "a1", "b", "b1", 1)]
        bad = sorted((q["id"], q["reason"]) for q in pq.read_table(job.path("labels_quarantine")).to_pylist())
    assert bad == [("a2 / b9", "record not in b"), ("a9 / b8", "record not in a; record not in b")]
