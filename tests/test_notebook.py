"""The blocking notebook runs top to bottom on a real run's outputs."""

import os

import nbformat
from nbclient import NotebookClient

from conftest import FEBRL, ROOT, needs_data


@needs_data(FEBRL)
def test_blocking_notebook_executes(febrl4, monkeypatch):
    config, _, _ = febrl4
    monkeypatch.setenv("SIGIL_OUTPUT", config.output)
    nb = nbformat.read(ROOT / "notebooks" / "blocking.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "pair completeness" in text.lower() or "pair_completeness" in text
    assert os.environ["SIGIL_OUTPUT"] == config.output
