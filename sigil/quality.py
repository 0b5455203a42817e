"""The data-quality project of an output root: the versioned suites, the validation results
of its runs, and the Data Docs site built from both (Great Expectations 1.x).

Each output root gets a copy of the project in ``schemas/gx/`` (``<output>/gx/``, or
``quality.project``): its suites are refreshed from the package on every open, so a run
always validates with the suites of the code that wrote the data, while the results of
earlier runs stay beside them for the Data Docs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sigil.schemas.config import ConfigError, SigilConfig
from sigil.schemas.expectations import PROJECT

_OPEN: dict[str, object] = {}  # project root -> its context, once per process


def project_root(config: SigilConfig) -> Path:
    """Where the project of ``config``'s outputs lives: ``quality.project``, or the output
    root when that is a local directory."""
    root = config.quality.project or config.output
    if "://" in root and not root.startswith("file://"):
        raise ConfigError(f"quality.project: the Great Expectations project must be a local directory; the "
                          f"output {config.output} is not, so set quality.project (or quality.validate_output: off)")
    return Path(root.removeprefix("file://"))


def context(config: SigilConfig):
    """The file-backed context of ``config``'s project, created from ``schemas/gx/`` when
    missing and its suites brought up to date."""
    import great_expectations as gx

    root = project_root(config)
    gx_dir, key = root / "gx", str(root.resolve())
    if key not in _OPEN or not (gx_dir / "great_expectations.yml").exists():
        gx_dir.mkdir(parents=True, exist_ok=True)
        if not (gx_dir / "great_expectations.yml").exists():  # afterwards it also lists the data sources
            shutil.copyfile(PROJECT / "great_expectations.yml", gx_dir / "great_expectations.yml")
        shutil.copytree(PROJECT / "expectations", gx_dir / "expectations", dirs_exist_ok=True)
        _OPEN[key] = gx.get_context(mode="file", project_root_dir=str(root))
    return _OPEN[key]


def validate(config: SigilConfig, suite: str, batch_definition, batch: dict, parameters: dict) -> dict:
    """Validate the batch ``batch`` of ``batch_definition`` with suite ``suite`` and its
    ``$PARAMETER`` values ``parameters``; the result is stored in the project. Returns a
    summary for the manifest: ``{"success", "failed": [{"expectation", "column", "observed"}]}``
    (``column``: the column checked, or what an SQL check states)."""
    import great_expectations as gx

    ctx = context(config)
    definition = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite, data=batch_definition, suite=ctx.suites.get(suite)))
    # BASIC: counts and a few examples of what failed, the least the Data Docs render
    result = definition.run(batch_parameters=batch, expectation_parameters=parameters, result_format="BASIC")
    failed = [{"expectation": r.expectation_config.type,
               "column": r.expectation_config.kwargs.get("column") or r.expectation_config.description,
               "observed": _observed(r.result)} for r in result.results if not r.success]
    return {"success": bool(result.success), "failed": failed}


def _observed(result: dict):
    """What a failed check saw: its count of bad rows, or the observed value (a row count,
    the columns; an SQL check's count of the rows it selected)."""
    return result.get("unexpected_count", result.get("observed_value"))


def docs(config: SigilConfig) -> Path:
    """Build the Data Docs site of ``config``'s project: every suite, and the latest
    results of each; returns its index page."""
    context(config).build_data_docs()
    return project_root(config) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
