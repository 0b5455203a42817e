"""Data quality of the datasets a Spark job wrote: each staged dataset validated with its
suites (schemas/expectations.py) on Spark before the outputs move into place, the results
stored in the output's Great Expectations project (sigil/quality.py) and the manifest."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sigil import quality
from sigil.run import Run
from sigil.schemas.config import SigilConfig, Source
from sigil.schemas.expectations import CONTRACTS, views


def check_outputs(spark, job: Run) -> None:
    """Validate every dataset in ``job``'s staging directory that has a suite, with
    ``quality.checks`` deciding whether the ``.full`` suites run too; ``job.expectations``
    then warns or fails by ``quality.validate_output``."""
    settings = job.config.quality
    if settings.validate_output == "off":
        return
    for dataset in sorted(job.storage.children(job.staging) or []):
        name = f"{job.job}.{dataset}"
        if name not in CONTRACTS:
            continue
        names = [name] + ([f"{name}.full"] if settings.checks == "all" and CONTRACTS[name].full else [])
        with job.stage(f"validate {dataset}"):
            frame = spark.read.parquet(job.path(dataset))
            rows = _reported_rows(job, dataset) if CONTRACTS[name].counted else None
            for suite in names:
                for view in views(suite):
                    spark.read.parquet(_view_path(job, view)).createOrReplaceTempView(f"sigil_{view}")
                job.expectations(suite, validate_frame(job.config, suite, frame, rows))
    if settings.data_docs:
        quality.docs(job.config)


def check_sources(spark, job: Run) -> None:
    """Validate each raw record source of the ingest job, as Spark's own readers read it,
    with the suites ``ingest.sources`` (its id column renamed ``id``)."""
    settings = job.config.quality
    if settings.validate_output == "off":
        return
    names = ["ingest.sources"] + (["ingest.sources.full"] if settings.checks == "all" else [])
    for source in job.config.ingest.sources:
        with job.stage(f"validate source {source.name}"):
            frame = _raw(spark, source)
            frame = frame.select((F.col(f"`{source.id_column}`").cast("string") if source.id_column in frame.columns
                                  else F.lit(None).cast("string")).alias("id"))  # no such column: no ids
            for suite in names:
                job.expectations(f"{suite}[{source.name}]", validate_frame(job.config, suite, frame))


def _raw(spark, source: Source) -> DataFrame:
    """A source's rows as Spark reads its format (CSV with a header, quoted fields over
    lines), header names stripped as ingest strips them."""
    if source.format in ("csv", "tsv"):
        frame = spark.read.csv(source.path, header=True, multiLine=True, escape='"',
                               sep=source.delimiter or ("," if source.format == "csv" else "\t"))
        return frame.toDF(*[c.strip() for c in frame.columns]) if source.strip_header else frame
    return spark.read.json(source.path) if source.format == "jsonl" else spark.read.parquet(source.path)


def validate_frame(config: SigilConfig, suite: str, frame: DataFrame, rows: int | None = None) -> dict:
    """Validate ``frame`` with suite ``suite`` (``rows``: the row count its job reported,
    for the suites that check it); the datasets its checks read must be registered as the
    views ``sigil_<name>``. Returns the summary of ``sigil.quality.validate``."""
    parameters = {"rows": rows} if rows is not None else {}
    return quality.validate(config, suite, _batch_definition(config, suite.removesuffix(".full")),
                            {"dataframe": frame}, parameters)


def _batch_definition(config: SigilConfig, name: str):
    """The project's Spark data asset ``name`` (a dataset of a job), as one whole batch."""
    sources = quality.context(config).data_sources
    try:
        source = sources.get("spark")
    except KeyError:
        source = sources.add_spark(name="spark")
    names = {asset.name for asset in source.assets}
    asset = source.get_asset(name) if name in names else source.add_dataframe_asset(name=name)
    found = [d for d in asset.batch_definitions if d.name == "whole"]
    return found[0] if found else asset.add_batch_definition_whole_dataframe(name="whole")


def _reported_rows(job: Run, dataset: str) -> int:
    """The rows the job reported for ``dataset``: quarantine, the quarantined rows; ingested
    records, the input rows less those (so input = records + quarantine); entities, one
    per record read; otherwise the manifest's output count."""
    m = job.manifest
    if dataset == "quarantine":
        return sum(m["quarantined"].values())
    if job.job == "ingest" and dataset == "records":
        return sum(m["inputs"].values()) - sum(m["quarantined"].values())
    if job.job == "cluster" and dataset == "entities":
        return m["inputs"]["records"]
    return m["outputs"][dataset]


def _view_path(job: Run, view: str) -> str:
    """Where the dataset a check reads lives: this run's own, staged, or the configured input."""
    if job.storage.exists(job.path(view)):
        return job.path(view)
    config = job.config
    if view == "candidates":
        return (config.match.input if config.match else None) or config.stage_path("block", "candidates")
    if view == "records" and job.job == "nlsh_block" and config.nlsh_block.input:
        return config.nlsh_block.input
    return config.records_path() if view == "records" else config.stage_path("graph", view)
