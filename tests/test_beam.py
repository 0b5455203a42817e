"""The Beam engine against the Spark jobs on the same input: every dataset and every metric
equal; configurations Beam cannot honour refused at once, the key named."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import FEBRL, febrl4_config, needs_data
from test_jobs import messy_config
from sigil.cli import main
from sigil.schemas import datasets
from sigil.schemas.config import load_config
from sigil.transforms.records import InputError

SORT = {"signatures": ["rid"], "candidates": ["source_a", "id_a", "source_b", "id_b"],
        "bucket_sizes": ["band", "size"], "oversized": ["band", "key"]}


def _both(spark, tmp_path, records: str, truth: dict, **block) -> tuple:
    """Spark's and Beam's block outputs (root, manifest) for one configuration."""
    from sigil.jobs import block as spark_block
    from sigil.pipelines import block as beam_block

    out = []
    for engine in ("spark", "beam"):
        conf = febrl4_config(tmp_path / engine, None, input=records, **block)
        config = load_config(base={**conf, "truth": truth, "quality": {"validate_output": "off"}})
        manifest = spark_block.run(spark, config, quiet=True) if engine == "spark" else \
            beam_block.run(config, quiet=True)
        out.append((tmp_path / engine / "block", manifest))
    return out


def _table(root, name):
    schema = {"signatures": None, "candidates": datasets.CANDIDATES, "bucket_sizes": datasets.BUCKET_SIZES,
              "oversized": datasets.OVERSIZED}[name]
    t = pq.read_table(str(root / name), schema=schema)
    return t.sort_by([(c, "ascending") for c in SORT[name]])


def _same(spark_run, beam_run):
    (s_root, s_manifest), (b_root, b_manifest) = spark_run, beam_run
    for name in SORT:
        s, b = _table(s_root, name), _table(b_root, name)
        assert b.schema == s.schema, name
        assert b.equals(s), f"{name}: {b.num_rows} rows from Beam, {s.num_rows} from Spark"
    assert b_manifest["metrics"] == s_manifest["metrics"]
    assert (b_manifest["inputs"], b_manifest["outputs"]) == (s_manifest["inputs"], s_manifest["outputs"])


@pytest.fixture(scope="module")
def link_runs(spark, febrl4, febrl4_truth, tmp_path_factory):
    """FEBRL 4, link mode, exact Jaccard with its minimum, truth from a pairs file: Spark's
    and Beam's block runs."""
    config, _, _ = febrl4
    return _both(spark, tmp_path_factory.mktemp("link"), f"{config.output}/ingest/records",
                 {"path": str(febrl4_truth)})


@needs_data(FEBRL)
def test_beam_blocking_writes_what_spark_writes(link_runs):
    _same(*link_runs)
    assert link_runs[1][1]["metrics"]["pair_completeness"] >= 0.999


@needs_data(FEBRL)
def test_blocking_notebook_reads_a_beam_run(febrl4, link_runs, monkeypatch):
    """notebooks/blocking.ipynb, which reads signatures and bucket sizes, on Beam's outputs."""
    from conftest import run_notebook

    config, _, _ = febrl4
    root = link_runs[1][0].parent
    (root / "ingest").mkdir(exist_ok=True)
    (root / "ingest" / "records").symlink_to(Path(config.output) / "ingest" / "records")
    outputs, text = run_notebook("blocking.ipynb", str(root), monkeypatch)
    assert "pair_completeness" in text and "0.9998" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2


@needs_data(FEBRL)
def test_beam_blocking_with_oversized_buckets_and_an_id_truth(spark, febrl4, tmp_path):
    """Dedupe mode, small buckets split (and so ``oversized``), the estimate's minimum, truth
    from an id pattern."""
    config, _, _ = febrl4
    runs = _both(spark, tmp_path, f"{config.output}/ingest/records", {"id_regex": r"^rec-(\d+)-"}, mode="dedupe",
                 exact_jaccard=False, min_jaccard=None, min_jaccard_estimate=0.2,
                 lsh={"threshold": 0.3, "max_bucket_size": 8, "oversized": "split"},
                 minhash={"num_perm": 64})
    _same(*runs)
    assert runs[0][1]["metrics"]["oversized_buckets"] > 0 and runs[0][1]["metrics"]["truth_pairs"] >= 5000


def _ingested(root, names):
    records = pq.read_table(str(root / "records"), schema=datasets.records(names)).sort_by("rid")
    quarantine = pq.read_table(str(root / "quarantine"), schema=datasets.QUARANTINE)
    return records, quarantine.sort_by([("source", "ascending"), ("file", "ascending"), ("line", "ascending")])


def _ingest_both(spark, config):
    from sigil.jobs import ingest as spark_ingest
    from sigil.pipelines import ingest as beam_ingest

    names = [a.name for a in config.ingest.attributes]
    out = []
    for engine in ("spark", "beam"):
        c = load_config(base={**config.model_dump(mode="json"), "output": f"{config.output}/{engine}"})
        manifest = spark_ingest.run(spark, c, quiet=True) if engine == "spark" else beam_ingest.run(c, quiet=True)
        out.append((*_ingested(Path(c.output) / "ingest", names), manifest))
    (s_records, s_quarantine, s_manifest), (b_records, b_quarantine, b_manifest) = out
    assert b_records.equals(s_records) and b_quarantine.equals(s_quarantine)
    for key in ("inputs", "quarantined", "outputs", "metrics"):
        assert b_manifest[key] == s_manifest[key], key
    return b_records, b_quarantine, b_manifest


def test_beam_ingest_writes_what_spark_writes(spark, tmp_path):
    """Bad rows of every kind, a duplicate id, two formats, and CSV files cut into byte
    ranges (``split_bytes``) whose first lines come from the ranges before them."""
    config = messy_config(tmp_path, spark={"shuffle_partitions": 3})
    big = tmp_path / "in" / "part-2.csv"  # many short lines: several ranges, and duplicates across them
    big.write_text("rec_id,name,born\n" + "".join(f"{i % 700},name {i},1980010{1 + i % 9}\n" for i in range(2000)))
    config = load_config(base={**config.model_dump(mode="json"), "ingest": {
        **config.ingest.model_dump(mode="json"), "split_bytes": 4096}})
    records, quarantine, manifest = _ingest_both(spark, config)
    assert manifest["quarantined"]["csv"] > 1300 and records.num_rows == manifest["outputs"]["records"]
    assert len(set(quarantine.column("line").to_pylist())) > 1000  # line numbers across the ranges
    from sigil.pipelines import ingest as beam_ingest
    from sigil.run import StrictError

    strict = load_config(base={**config.model_dump(mode="json"), "output": str(tmp_path / "strict")})
    with pytest.raises(StrictError, match=r"part-1\.csv line 3: malformed line"):
        beam_ingest.run(strict, strict=True, quiet=True)


@needs_data(FEBRL)
def test_beam_ingest_of_febrl4(spark, febrl4_truth, tmp_path):
    config = load_config(base=febrl4_config(tmp_path, febrl4_truth))
    records, quarantine, _ = _ingest_both(spark, config)
    assert records.num_rows == 10_000 and quarantine.num_rows == 0


def test_beam_refuses_what_it_cannot_honour(tmp_path, capsys):
    from sigil.pipelines import block as beam_block

    base = {"output": str(tmp_path), "block": {"input": str(tmp_path / "records"), "method": "rules",
                                               "rules": [["surname"]]}, "quality": {"validate_output": "fail"}}
    with pytest.raises(InputError, match=r"block\.method: rules.*quality\.validate_output: fail"):
        beam_block.run(load_config(base=base), quiet=True)
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps(base))
    assert main(["block", "--engine", "beam", "--conf", str(conf)]) == 2
    assert "block.method" in capsys.readouterr().err
    assert not (tmp_path / "block").exists()
    from sigil.pipelines import ingest as beam_ingest

    config = load_config(base={**messy_config(tmp_path).model_dump(mode="json"), "quality": {"validate_output": "fail"}})
    with pytest.raises(InputError, match=r"quality\.validate_output: fail"):
        beam_ingest.run(config, quiet=True)
