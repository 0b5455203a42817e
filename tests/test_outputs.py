"""sigil/outputs.py on a small run directory written with pyarrow (no Spark)."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from sigil import outputs
from sigil.outputs import RunOutputs
from sigil.schemas.config import load_config
from sigil.transforms.pairs import KEYS

A = ["rec-1-org", "rec-2-org", "rec-3-org"]
B = ["rec-1-dup-0", "rec-1-dup-1", "rec-2-dup-0", "x-9"]
EXPECTED = [("a", "rec-1-org", "b", "rec-1-dup-0"), ("a", "rec-1-org", "b", "rec-1-dup-1"),
            ("a", "rec-2-org", "b", "rec-2-dup-0")]


def write_run(out: Path, truth: dict, started: str = "2025-01-01T00:00:00Z", job: str = "block", **sections) -> None:
    """Records of sources a and b, and a manifest of ``job`` whose configuration has ``truth``."""
    records = out / "ingest" / "records"
    records.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"source": ["a"] * 3 + ["b"] * 4, "id": A + B, "surname": list("xyzxxyq")}),
                   records / "part-0.parquet")
    config = load_config(base={
        "output": str(out),
        "ingest": {"sources": [{"name": "b", "path": "b.csv", "id_column": "id"},  # sorted by name where used
                               {"name": "a", "path": "a.csv", "id_column": "id"}],
                   "attributes": [{"name": "surname"}]},
        "block": {"mode": "link"}, "truth": truth, **sections})
    (out / job).mkdir(exist_ok=True)
    (out / job / "manifest.json").write_text(json.dumps({"job": job, "started": started, "metrics": {"x": 1},
                                                         "config": config.model_dump(mode="json")}))


def pairs(frame: pd.DataFrame) -> list[tuple]:
    assert list(frame.columns) == KEYS
    return sorted(frame.itertuples(index=False, name=None))


def test_doctests():
    assert doctest.testmod(outputs).failed == 0


def test_truth_from_an_id_regex_is_every_cross_source_pair_of_an_entity(tmp_path):
    write_run(tmp_path, {"id_regex": r"^rec-(\d+)-"})
    assert pairs(RunOutputs(tmp_path).truth()) == EXPECTED


def test_truth_from_a_csv_file_is_oriented_and_distinct(tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text(" id_a , id_b \nrec-1-org,rec-1-dup-0\n rec-2-org , rec-2-dup-0\nrec-1-org,rec-1-dup-1\n"
                     "rec-1-org,rec-1-dup-0\n")
    write_run(tmp_path / "run", {"path": str(truth)})
    assert pairs(RunOutputs(tmp_path / "run").truth()) == EXPECTED


def test_truth_from_a_parquet_file_with_its_own_columns_and_sources(tmp_path):
    pq.write_table(pa.table({"source_a": ["b", "a"], "x": ["rec-1-dup-0", "rec-2-org"],
                             "source_b": ["a", "b"], "y": ["rec-1-org", "rec-2-dup-0"]}), tmp_path / "t.parquet")
    write_run(tmp_path / "run", {"path": str(tmp_path / "t.parquet"), "format": "parquet", "id_columns": ["x", "y"]})
    assert pairs(RunOutputs(tmp_path / "run").truth()) == [EXPECTED[0], EXPECTED[2]]


def test_relative_paths_are_taken_from_the_repository_root(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "truth.csv").write_text("id_a,id_b\nrec-3-org,rec-1-dup-1\n")
    write_run(tmp_path / "out" / "run", {"path": "data/truth.csv"})
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.setenv("SIGIL_OUTPUT", "out/run")
    run = RunOutputs(default="out/elsewhere")
    assert run.root == tmp_path and run.path == tmp_path / "out" / "run"
    assert pairs(run.truth()) == [("a", "rec-3-org", "b", "rec-1-dup-1")]
    monkeypatch.delenv("SIGIL_OUTPUT")
    assert RunOutputs(default="out/elsewhere").path == tmp_path / "out" / "elsewhere"
    assert RunOutputs("/abs/run").path == Path("/abs/run")


def test_a_truth_file_not_found_here_gives_none_with_a_warning(tmp_path):
    write_run(tmp_path, {"path": str(tmp_path / "gone.csv")})
    with pytest.warns(UserWarning, match="not found here"):
        assert RunOutputs(tmp_path).truth() is None


def test_no_truth_configured(tmp_path):
    write_run(tmp_path, None)
    assert RunOutputs(tmp_path).truth() is None


def test_manifests_config_and_datasets(tmp_path):
    write_run(tmp_path, {"id_regex": r"^rec-(\d+)-"})
    write_run(tmp_path, {"id_regex": r"^rec-(\d)"}, started="2025-01-02T00:00:00Z", job="match")
    run = RunOutputs(tmp_path)
    assert run.manifest("block")["metrics"] == {"x": 1} and run.manifest("cluster") == {}
    assert run.config.truth.id_regex == r"^rec-(\d)"  # the latest run's
    assert run.config.er_mode() == "link" and run.sources() == ["a", "b"]
    assert run.has("ingest/records") and not run.has("block/candidates")
    empty = run.read("block/candidates", ["id_a", "id_b"])
    assert empty.empty and list(empty.columns) == ["id_a", "id_b"]
    recs = run.records(["id", "surname", "tokens"], ds.field("source") == "a")  # absent columns left out
    assert list(recs.columns) == ["id", "surname"] and recs.id.tolist() == A
    assert run.records_path() == str(tmp_path / "ingest" / "records")


def test_records_from_block_input(tmp_path):
    write_run(tmp_path / "first", None)
    write_run(tmp_path / "second", {"id_regex": r"^rec-(\d+)-"},
              block={"mode": "link", "input": str(tmp_path / "first" / "ingest" / "records")})
    run = RunOutputs(tmp_path / "second")
    assert run.records_path() == str(tmp_path / "first" / "ingest" / "records")
    assert pairs(run.truth()) == EXPECTED


def test_not_a_run_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no job manifest"):
        RunOutputs(tmp_path).config


@pytest.mark.parametrize("given", ["id_regex", "file"])
def test_spark_reads_the_same_truth_as_the_notebooks(spark, febrl4, febrl4_truth, given):
    """The jobs' truth (Spark, jobs/spark/pairs.py) and the notebooks' (Arrow) on FEBRL 4."""
    from conftest import FEBRL

    from sigil.jobs.spark.pairs import read_truth
    from sigil.schemas.config import TruthConfig
    from sigil.transforms.pairs import entity_of, entity_pairs, read_pairs

    if not FEBRL.exists():
        pytest.skip(f"shared data not found at {FEBRL}")
    config = febrl4[0]
    truth = {"id_regex": r"^rec-(\d+)-"} if given == "id_regex" else {"path": str(febrl4_truth)}
    config = config.model_copy(update={"truth": TruthConfig(**truth)})
    records = spark.read.parquet(f"{config.output}/ingest/records")
    by_spark = read_truth(spark, config, ["a", "b"], records).toArrow()
    if given == "id_regex":
        table = pq.read_table(f"{config.output}/ingest/records", columns=["source", "id"])
        by_arrow = entity_pairs(table.append_column("entity", entity_of(table["id"], truth["id_regex"])), "link")
    else:
        by_arrow = read_pairs(truth["path"], "csv", "link", ["a", "b"])
    rows = lambda t: sorted(zip(*(t.column(k).to_pylist() for k in KEYS)))  # noqa: E731
    assert rows(by_spark) == rows(by_arrow) and len(rows(by_arrow)) == 5000
