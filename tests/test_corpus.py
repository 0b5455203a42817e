"""The bad-input corpus (tests/corpus/): every case ends as promised, a clear one-message
error (exit 2) or quarantined rows with their reasons, never a traceback, and no row lost."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import corpus
from conftest import NO_CHECKS
from corpus.case import Case
from sigil.cli import main

# job -> (its output directory, its main dataset)
OUTPUTS = {"ingest": ("ingest", "records"), "graph-ingest": ("graph", "edges"), "communities": ("communities", "members"),
           "block": ("block", "candidates"), "match": ("match", "pairs"), "cluster": ("cluster", "entities"),
           "graph-index": ("graph_index", "signatures"), "ppr-index": ("ppr_index", "fingerprints"),
           "ppr-query": ("ppr_query", "rankings"), "hqi-index": ("hqi_index", "layout"),
           "hqi-query": ("hqi_query", "results")}


def cases() -> list[Case]:
    found = []
    for module in pkgutil.iter_modules(corpus.__path__):
        if module.name != "case":
            found += importlib.import_module(f"corpus.{module.name}").CASES
    names = [c.name for c in found]
    assert len(names) == len(set(names)), [n for n, k in Counter(names).items() if k > 1]
    return found


def substituted(value, folder: Path):
    """``value`` with ``{dir}`` replaced by the case's folder, in every string of a tree."""
    if isinstance(value, str):
        return value.replace("{dir}", str(folder))
    if isinstance(value, dict):
        return {k: substituted(v, folder) for k, v in value.items()}
    if isinstance(value, list):
        return [substituted(v, folder) for v in value]
    return value


def prepare(case: Case, folder: Path) -> Path:
    """Write the case's files and configuration; the configuration file's path."""
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    conf = folder / "conf.yaml"
    if case.conf_text is not None:
        conf.write_bytes(substituted(case.conf_text, folder).encode("utf-8", "surrogateescape"))
    else:
        conf.write_text(yaml.safe_dump({"output": "{dir}/out", "spark": {"shuffle_partitions": 2},
                                        "quality": NO_CHECKS, **substituted(case.config, folder)}, sort_keys=False)
                        .replace("{dir}", str(folder)))
    return conf


def reasons(path: Path) -> Counter:
    """Quarantined rows by reason, prefixes as the cases give them."""
    if not path.exists():
        return Counter()
    return Counter(pq.read_table(path, columns=["reason"]).column("reason").to_pylist())


def run(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_corpus_case(case: Case, spark, tmp_path, capsys):
    conf = prepare(case, tmp_path)
    for job in case.before:
        code, err = run([job, "--conf", str(conf), "--quiet"], capsys)
        assert code == 0, f"{job} before the case failed: {err}"
    code, err = run([case.job, "--conf", str(conf), "--quiet", *(substituted(a, tmp_path) for a in case.args)],
                    capsys)
    assert "Traceback" not in err, err
    assert code == case.exit, err
    if case.exit == 2:  # one message: a line naming the job, then indented details if any
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines[0].startswith(f"sigil {case.job}: ") and all(x.startswith("  ") for x in lines[1:]), err
        assert re.search(case.message, err), err
        return
    folder, dataset = OUTPUTS[case.job]
    out = tmp_path / "out" / folder
    manifest = json.loads((out / "manifest.json").read_text())
    found = reasons(out / "quarantine")
    for prefix, n in case.quarantined.items():
        got = sum(k for reason, k in found.items() if reason.startswith(prefix))
        assert got == n, f"{prefix!r}: {got} rows quarantined, not {n}; all: {dict(found)}"
    unexpected = {r: k for r, k in found.items() if not any(r.startswith(p) for p in case.quarantined)}
    assert not unexpected, f"quarantined beyond the case: {unexpected}"
    assert sum(manifest["quarantined"].values()) == sum(found.values())
    if case.rows is not None:
        assert pq.read_table(out / dataset).num_rows == case.rows
    if case.job == "ingest":  # every input row is a record or a quarantined row, per source
        for source, n in manifest["inputs"].items():
            assert n == manifest["outputs"][f"records.{source}"] + manifest["quarantined"][source], source
    rows_add_up(case.job, manifest)


def rows_add_up(job: str, manifest: dict) -> None:
    """graph-ingest, communities, hqi-index and hqi-query: every input row is used or
    quarantined (comment lines are counted apart; blank lines and headers are no rows)."""
    metrics, quarantined = manifest["metrics"], manifest["quarantined"]
    if job == "graph-ingest":
        assert manifest["inputs"]["edge_rows"] == metrics["edge_rows_used"] + quarantined["edges"]
        if "vertex_rows" in metrics:  # a vertex table, or a GML/GraphML graph's nodes
            assert metrics["vertex_rows"] == metrics["vertex_rows_used"] + quarantined["vertices"]
    if job == "communities" and "query_rows" in manifest["inputs"]:  # a query is answered or quarantined
        assert manifest["inputs"]["query_rows"] == metrics["seed_queries"]["queries"] + quarantined["queries"]
    if job == "hqi-index":  # a data row is laid out or quarantined
        assert manifest["inputs"]["data_rows"] == manifest["outputs"]["layout"] + quarantined["data"]
    if job == "hqi-query":
        assert manifest["inputs"]["query_rows"] == metrics["queries"] + quarantined["queries"]


def test_the_corpus_covers_every_reader():
    kinds = {importlib.import_module(f"corpus.{m.name}").__name__.split(".")[-1]
             for m in pkgutil.iter_modules(corpus.__path__)} - {"case"}
    assert {"records", "graphs", "configs", "outputs"} <= kinds
    assert len(cases()) >= 60
