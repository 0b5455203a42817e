"""What every Beam pipeline of sigil shares: refusing settings it cannot honour, running on
the configured runner (``BEAM_OPTIONS``, the DirectRunner by default), and reading back the
counters its steps kept.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Callable

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from sigil.run import Run
from sigil.schemas.config import SigilConfig
from sigil.transforms.records import InputError


def refuse(config: SigilConfig, refused: list[str]) -> None:
    """An InputError naming every setting the Beam engine cannot honour (``refused``, and
    ``quality.validate_output: fail``: the suites run on Spark), before any work."""
    if config.quality.validate_output == "fail":
        refused = [*refused, "quality.validate_output: fail (the expectation suites run on Spark; use --engine "
                             "spark, or quality.validate_output: warn or off)"]
    if refused:
        raise InputError("not supported by --engine beam: " + "; ".join(refused))


def unchecked(job: Run) -> None:
    """The data-quality step of a Beam run: the suites run on Spark, so with
    ``quality.validate_output: warn`` the run says, in its log and manifest, that its
    outputs were not validated."""
    if job.config.quality.validate_output != "off":
        job.manifest["expectations"] = {"not run": "the expectation suites run on Spark (--engine spark)"}
        job.log("warning: outputs not validated: the expectation suites run on Spark (--engine spark; "
                "quality.validate_output: off silences this)", logging.WARNING)


def execute(build: Callable[[beam.Pipeline], None], namespace: str,
            pipeline_args: list[str] | None = None) -> dict[str, int]:
    """Build a pipeline with ``build(p)``, run it to the end and return the counters of
    ``namespace`` by name. ``pipeline_args``: Beam's options; by default ``BEAM_OPTIONS``."""
    args = pipeline_args if pipeline_args is not None else shlex.split(os.environ.get("BEAM_OPTIONS", ""))
    p = beam.Pipeline(options=PipelineOptions(args or ["--runner=DirectRunner"]))
    build(p)
    result = p.run()
    result.wait_until_finish()
    found = result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]
    return {c.key.metric.name: int(c.committed if c.committed is not None else c.attempted) for c in found}
