"""What every Beam pipeline of sigil shares: refusing settings it cannot honour, running on
the configured runner (``BEAM_OPTIONS``, the DirectRunner by default), and reading back the
counters its steps kept.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from sigil.transforms.records import InputError


def refuse(refused: list[str]) -> None:
    """An InputError naming every setting the Beam engine cannot honour, before any work."""
    if refused:
        raise InputError("not supported by --engine beam: " + "; ".join(refused))


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
