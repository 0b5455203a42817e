"""The layout of DESIGN.md holds: dependencies point one way, jobs stand on one floor."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# folder -> the package it installs as (pyproject.toml's package-dir)
PACKAGES = {"sigil": "sigil", "schemas": "sigil.schemas", "transforms": "sigil.transforms", "jobs": "sigil.jobs",
            "jobs/spark": "sigil.jobs.spark", "pipelines": "sigil.pipelines", "pipelines/beam": "sigil.pipelines.beam"}


def modules() -> dict[str, Path]:
    """Every module of the project by its installed name."""
    out = {}
    for folder, package in PACKAGES.items():
        for file in (ROOT / folder).glob("*.py"):
            out[package if file.stem == "__init__" else f"{package}.{file.stem}"] = file
    return out


def imports(file: Path) -> set[str]:
    """The sigil modules a file imports, anywhere in it (functions included) but its
    ``if __name__ == "__main__":`` block, where a job starts the CLI for spark-submit."""
    tree = ast.parse(file.read_text())
    tree.body = [n for n in tree.body if not (isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    known = modules()
    return {name for name in found if name.startswith("sigil") and name in known}


ENTRIES = {"sigil.cli", "sigil.chains", "sigil.__main__"}  # the top: they start jobs and pipelines


def layer(name: str) -> str:
    """schemas, transforms, harness (sigil.*), spark (jobs/spark), job, beam (pipelines/beam),
    pipeline, entry."""
    if name in ENTRIES:
        return "entry"
    for prefix, kind in (("sigil.schemas", "schemas"), ("sigil.transforms", "transforms"),
                         ("sigil.jobs.spark", "spark"), ("sigil.jobs", "job"), ("sigil.pipelines.beam", "beam"),
                         ("sigil.pipelines", "pipeline")):
        if name == prefix or name.startswith(prefix + "."):
            return "package" if name == prefix and kind == "job" else kind
    return "harness"


# what each layer may import (besides itself)
ALLOWED = {
    "entry": {"schemas", "transforms", "harness", "spark", "job", "pipeline", "entry"},
    "schemas": set(),
    "transforms": {"schemas"},
    "spark": {"schemas", "transforms", "harness"},
    "job": {"schemas", "transforms", "harness", "spark"},
    "beam": {"schemas", "transforms", "harness"},  # the Beam building blocks, as jobs/spark for Spark
    "pipeline": {"schemas", "transforms", "harness", "beam"},
    "harness": {"schemas", "transforms", "harness"},  # engine-neutral: no Spark, no Beam
    "package": set(),
}
SAME_LAYER_OK = {"schemas", "transforms", "spark", "beam", "harness"}


@pytest.mark.parametrize("name", sorted(modules()))
def test_dependencies_point_one_way(name):
    file = modules()[name]
    mine = layer(name)
    bad = [other for other in imports(file) if other != name
           and (layer(other) not in ALLOWED[mine] | ({mine} if mine in SAME_LAYER_OK else set()))
           and layer(other) != "package"]
    assert not bad, f"{file.relative_to(ROOT)} ({mine}) imports {bad}"


def test_no_job_imports_a_job():
    jobs = [n for n in modules() if layer(n) == "job"]
    assert len(jobs) >= 10
    for name in jobs:
        other = sorted(i for i in imports(modules()[name]) if layer(i) == "job")
        assert not other, f"{name} imports the job(s) {other}"


def test_the_checker_sees_imports_inside_functions(tmp_path):
    file = tmp_path / "x.py"
    file.write_text("def f():\n    from sigil.jobs import block\n    import sigil.jobs.match\n"
                    "if __name__ == '__main__':\n    from sigil.cli import main\n")
    assert imports(file) == {"sigil.jobs", "sigil.jobs.block", "sigil.jobs.match"}
