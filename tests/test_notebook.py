"""The blocking notebook runs top to bottom on a real run's outputs."""

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
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "pair_completeness" in text and "0.9998" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # the S-curve and bucket sizes
