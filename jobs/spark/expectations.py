"""Data quality of written datasets on Spark: a dataset read back and validated with its
expectation suite (schemas/expectations.py), the result recorded by the run."""

from __future__ import annotations

from sigil.run import Run
from sigil.schemas.expectations import validate


def check_expectations(spark, job: Run, dataset: str, suite: str) -> None:
    """Validate the dataset ``dataset`` the run wrote with the suite ``suite``; a failure
    warns, and fails the run under --strict."""
    with job.stage(f"validate {dataset}"):
        result = validate(spark.read.parquet(job.path(dataset)), suite)
    job.expectations(dataset, result)
