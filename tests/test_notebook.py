"""The blocking notebook runs top to bottom on a real run's outputs."""

import json
from pathlib import Path

from conftest import FEBRL, needs_data, run_notebook


@needs_data(FEBRL)
def test_blocking_notebook_executes(febrl4, monkeypatch):
    config, _, _ = febrl4
    outputs, text = run_notebook("blocking.ipynb", config.output, monkeypatch)
    assert "pair_completeness" in text and "0.9998" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # the S-curve and bucket sizes


@needs_data(FEBRL)
def test_blocking_notebook_reads_truth_given_as_an_id_pattern(febrl4, tmp_path, monkeypatch):
    """FEBRL's configurations give the truth as ``truth.id_regex`` (conf/febrl4.yaml). The
    febrl4 run's datasets, linked into a run whose block manifest says so: FEBRL 4's ids name
    exactly the pairs of the fixture's truth file, so the manifest's metrics still hold."""
    config, _, _ = febrl4
    out = Path(config.output)
    (tmp_path / "ingest").mkdir()
    (tmp_path / "ingest" / "records").symlink_to(out / "ingest" / "records")
    (tmp_path / "block").mkdir()
    for dataset in (out / "block").iterdir():
        if dataset.is_dir():
            (tmp_path / "block" / dataset.name).symlink_to(dataset)
    manifest = json.loads((out / "block" / "manifest.json").read_text())
    manifest["config"]["truth"] = {"id_regex": r"^rec-(\d+)-"}
    (tmp_path / "block" / "manifest.json").write_text(json.dumps(manifest))
    _, text = run_notebook("blocking.ipynb", str(tmp_path), monkeypatch)
    assert "truth pairs loaded: 5,000" in text and "recomputed here: PC = 0.9998" in text
