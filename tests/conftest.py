"""One Spark session for the whole run; shared data paths."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# shared, noisy machines: no per-example deadlines (timing is for benchmarks/)
settings.register_profile("sigil", deadline=None)
settings.load_profile("sigil")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
FEBRL = DATA / "er" / "febrl"


def needs_data(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"shared data not found at {path}")


@pytest.fixture(scope="session")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from sigil.jobs.spark.session import spark_session
    from sigil.schemas.config import SparkConfig

    session = spark_session(SparkConfig(master="local[2]", shuffle_partitions=4, driver_memory="2g",
                                        conf={"spark.ui.enabled": "false",
                                              "spark.ui.showConsoleProgress": "false"}))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def febrl4_truth(tmp_path_factory) -> Path:
    """FEBRL 4's links: rec-<n>-org in 4a matches rec-<n>-dup-0 in 4b."""
    path = tmp_path_factory.mktemp("truth") / "febrl4_truth.csv"
    path.write_text("id_a,id_b\n" + "".join(f"rec-{n}-org,rec-{n}-dup-0\n" for n in range(5000)))
    return path


# the data-quality checks (quality.validate_output) have their own tests (test_quality.py) and
# run in the chains' tests; where a test is about something else they would only cost time
NO_CHECKS = {"validate_output": "off"}

FEBRL_ATTRIBUTES = ["given_name", "surname", "street_number", "address_1", "address_2", "suburb",
                    "postcode", "state", "date_of_birth", "soc_sec_id"]


def febrl4_config(output: Path, truth: Path, **block) -> dict:
    return {
        "output": str(output),
        "spark": {"shuffle_partitions": 4},
        "ingest": {
            "sources": [{"name": "a", "path": str(FEBRL / "dataset4a.csv"), "id_column": "rec_id"},
                        {"name": "b", "path": str(FEBRL / "dataset4b.csv"), "id_column": "rec_id"}],
            "attributes": [{"name": a} for a in FEBRL_ATTRIBUTES],
        },
        "block": {"mode": "link", "lsh": {"threshold": 0.3}, "exact_jaccard": True, "min_jaccard": 0.3, **block},
        "truth": {"path": str(truth)},
        "quality": {"checks": "all"},
    }


@pytest.fixture(scope="session")
def febrl4(spark, tmp_path_factory, febrl4_truth):
    """FEBRL 4 ingested and blocked once for every test that reads the outputs."""
    from sigil.jobs import block, ingest
    from sigil.schemas.config import load_config

    out = tmp_path_factory.mktemp("febrl4")
    config = load_config(base=febrl4_config(out, febrl4_truth))
    return config, ingest.run(spark, config, quiet=True), block.run(spark, config, quiet=True)


def run_notebook(name: str, output: str, monkeypatch) -> tuple[list, str]:
    """Execute notebooks/<name> on a run's outputs; its outputs and their text."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("SIGIL_OUTPUT", output)
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs, "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
