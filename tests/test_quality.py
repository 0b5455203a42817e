"""Great Expectations on every dataset: the versioned suites, validation on each run
(off | warn | fail), and the Data Docs site."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from conftest import DATA, ROOT, needs_data
from sigil.schemas.config import load_config
from sigil.schemas.expectations import CONTRACTS, PROJECT, suite_file, suite_json, suites

FOOTBALL = DATA / "graph" / "football.gml"
# what a job writes beside its datasets and no suite checks: files that are not Parquet
# datasets, and intermediates the job deletes before its outputs move into place
UNCHECKED = {"ingest.parsed", "match.levels", "match.model.json", "nlsh_train.model", "nlsh_train.report.json",
             "hqi_index.tree.json", "block.bucket_stats", "block.skipped_keys", "graph_index.bucket_stats",
             "nlsh_block.bucket_stats", "ppr_index.walk_stats", "ppr_index.walkers", "generate.records",
             "graph_generate.edges", "graph_generate.vertices", "graph_generate.queries", "hqi_generate.data",
             "hqi_generate.truth", "interactions_generate.log", "interactions_generate.communities"}


def test_suite_files_are_the_contracts_written_out():
    """schemas/gx/expectations/ holds exactly the suites built from the contracts."""
    built = suites()
    for name, suite in built.items():
        assert suite_file(name).read_text() == suite_json(suite), f"{name}: python -m sigil.schemas.expectations"
    on_disk = {p.relative_to(PROJECT / "expectations").with_suffix("").as_posix().replace("/", ".")
               for p in (PROJECT / "expectations").rglob("*.json")}
    assert on_disk == set(built)


def _written_datasets() -> set[str]:
    """``<job>.<dataset>`` for every ``job.path("<dataset>")`` in the job modules."""
    found = set()
    for module in (ROOT / "jobs").glob("*.py"):
        tree = ast.parse(module.read_text())
        runs = [n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", None) == "job_run" and isinstance(n.args[0], ast.Constant)]
        datasets = {n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call)
                    and getattr(n.func, "attr", None) == "path" and getattr(n.func.value, "id", None) == "job"
                    and n.args and isinstance(n.args[0], ast.Constant)}
        found |= {f"{run}.{d}" for run in runs for d in datasets}
    return found


def test_every_dataset_a_job_writes_has_a_suite():
    # and the quarantines of labels that jobs/spark/labels.py writes for them, and the raw sources
    written = _written_datasets() | {"match.labels_quarantine", "nlsh_train.train_quarantine",
                                     "nlsh_train.valid_quarantine", "ingest.sources"}
    assert len(written) > 40
    assert written - UNCHECKED <= set(CONTRACTS), sorted(written - UNCHECKED - set(CONTRACTS))
    assert set(CONTRACTS) <= written, sorted(set(CONTRACTS) - written)


def test_suites_catch_bad_candidates(spark, tmp_path):
    """Each kind of check fails on the rows that break it, naming what it saw."""
    from sigil.jobs.spark.expectations import validate_frame

    config = load_config(base={"output": str(tmp_path)})
    bad = spark.createDataFrame(
        [("b", "2", "a", "1", 1.5, None, None), ("a", "1", "a", "3", 0.5, 0.2, 0.9),
         ("a", "1", "a", "3", 0.5, 0.2, 0.9)],
        "source_a string, id_a string, source_b string, id_b string, jaccard_estimate float, jaccard float, "
        "cosine float")
    spark.createDataFrame([("a", "1"), ("b", "2")], "source string, id string").createOrReplaceTempView("sigil_records")
    cheap = validate_frame(config, "block.candidates", bad, rows=2)
    assert not cheap["success"]
    failed = {(f["expectation"], f["column"]): f["observed"] for f in cheap["failed"]}
    assert failed[("expect_column_values_to_be_between", "jaccard_estimate")] == 1
    assert failed[("expect_table_row_count_to_equal", None)] == 3
    assert failed[("unexpected_rows_expectation", "a pair is stored once, (source_a, id_a) < (source_b, id_b)")] == 1
    full = validate_frame(config, "block.candidates.full", bad)
    failed = {(f["expectation"], f["column"]): f["observed"] for f in full["failed"]}
    assert failed[("expect_compound_columns_to_be_unique", None)] == 2
    assert failed[("unexpected_rows_expectation", "record b exists")] == 2
    assert ("unexpected_rows_expectation", "record a exists") not in failed
    good = spark.createDataFrame([("a", "1", "b", "2", 0.5, 0.5, None)], bad.schema)
    assert validate_frame(config, "block.candidates", good, rows=1) == {"success": True, "failed": []}


def _football(tmp_path, **quality) -> dict:
    return {"output": str(tmp_path / "out"), "spark": {"shuffle_partitions": 2}, "quality": quality,
            "graph": {"edges": {"path": str(FOOTBALL), "format": "gml", "community_attribute": "value"}}}


@needs_data(FOOTBALL)
def test_failing_checks_warn_or_fail_before_the_outputs_move(spark, tmp_path, monkeypatch):
    """A suite that the data breaks: ``warn`` commits and says so in the manifest; ``fail``
    fails the run and the previous output stays; ``off`` checks nothing."""
    from sigil import quality
    from sigil.jobs import graph_ingest
    from sigil.run import StrictError

    strict = tmp_path / "project"  # the suites, with one that football's degrees (7-12) break
    shutil.copytree(PROJECT, strict)
    vertices = suite_file("graph.vertices", strict)
    suite = json.loads(vertices.read_text())
    suite["expectations"].append({"type": "expect_column_values_to_be_between",
                                  "kwargs": {"column": "out_degree", "max_value": 8}, "meta": {}})
    vertices.write_text(json.dumps(suite))
    monkeypatch.setattr(quality, "PROJECT", strict)

    warned = graph_ingest.run(spark, load_config(base=_football(tmp_path)), quiet=True)
    result = warned["expectations"]["graph.vertices"]
    assert not result["success"]
    assert result["failed"] == [{"expectation": "expect_column_values_to_be_between", "column": "out_degree",
                                 "observed": sum(d > 8 for _, d in _football_degrees())}]
    assert warned["expectations"]["graph.edges"]["success"]
    started = json.loads((tmp_path / "out" / "graph" / "manifest.json").read_text())["started"]

    with pytest.raises(StrictError, match=r"quality.validate_output: fail: graph.vertices failed"):
        graph_ingest.run(spark, load_config(base=_football(tmp_path, validate_output="fail")), quiet=True)
    assert json.loads((tmp_path / "out" / "graph" / "manifest.json").read_text())["started"] == started
    assert not list((tmp_path / "out").glob(".graph.tmp-*"))

    off = graph_ingest.run(spark, load_config(base=_football(tmp_path, validate_output="off")), quiet=True)
    assert "expectations" not in off


def _football_degrees():
    import networkx as nx

    return nx.read_gml(FOOTBALL, label="id").degree()


@needs_data(FOOTBALL)
def test_data_docs_list_every_suite_and_the_latest_results(spark, tmp_path):
    from sigil.cli import main
    from sigil.jobs import graph_ingest

    graph_ingest.run(spark, load_config(base=_football(tmp_path, checks="all", data_docs=True)), quiet=True)
    site = tmp_path / "out" / "gx" / "uncommitted" / "data_docs" / "local_site"
    index = (site / "index.html").read_text()
    results = sorted((site / "validations").rglob("*.html"))
    assert {p.relative_to(site / "validations").parts[:2] for p in results} == {
        ("graph", "vertices"), ("graph", "edges"), ("graph", "communities"), ("graph", "quarantine")}
    (site / "index.html").unlink()
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps(_football(tmp_path)))
    assert main(["docs", "--conf", str(conf)]) == 0
    index = (site / "index.html").read_text()
    for name in suites():
        page = Path("expectations", *name.split(".")).with_suffix(".html").as_posix()
        assert f"'expectation_suite_name': '{name}', '_table_row_link_path': '{page}'" in index, name
        assert (site / page).exists()


def test_raw_sources_are_checked_as_spark_reads_them(spark, tmp_path):
    """A row without an id: ingest quarantines it, and the source's suite says so."""
    from sigil.jobs import ingest

    (tmp_path / "a.csv").write_text('rec_id,name\nr1,Ann\n,Bob\nr3,"Cy\nDee"\nr1,Eve\n')
    config = load_config(base={"output": str(tmp_path / "out"), "quality": {"checks": "all"}, "ingest": {
        "sources": [{"name": "a", "path": str(tmp_path / "a.csv"), "id_column": "rec_id"}],
        "attributes": [{"name": "name"}]}})
    manifest = ingest.run(spark, config, quiet=True)
    assert manifest["quarantined"] == {"a": 2}  # the missing id and the repeated one
    found = manifest["expectations"]
    assert found["ingest.sources[a]"] == {"success": False, "failed": [
        {"expectation": "unexpected_rows_expectation", "column": "every row has an id", "observed": 1}]}
    assert found["ingest.sources.full[a]"]["failed"] == [
        {"expectation": "expect_column_values_to_be_unique", "column": "id", "observed": 2}]
    assert found["ingest.records"]["success"] and found["ingest.quarantine"]["success"]
