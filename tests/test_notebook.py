"""The blocking notebook runs top to bottom on a real run's outputs."""

from conftest import FEBRL, needs_data, run_notebook


@needs_data(FEBRL)
def test_blocking_notebook_executes(febrl4, monkeypatch):
    config, _, _ = febrl4
    outputs, text = run_notebook("blocking.ipynb", config.output, monkeypatch)
    assert "pair_completeness" in text and "0.9998" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # the S-curve and bucket sizes
