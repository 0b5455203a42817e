"""Generate job: synthetic person records with duplicates, and their ground truth.

Each Spark task generates one chunk of people (transforms/people.py), so any size from a
thousand to tens of millions of records streams to disk without being held in memory.

Outputs under ``<output>/generate/``: ``records/source=<name>/`` (Parquet or CSV with a
header; columns ``rec_id, entity_id`` and the FEBRL fields), ``truth`` (Parquet,
schemas.datasets.TRUTH) and ``manifest.json``.

Run: ``sigil generate --conf FILE`` or ``spark-submit jobs/generate.py --conf FILE``.
"""

from __future__ import annotations

import math

import pyarrow as pa

from sigil.jobs.spark.io import spark_schema, write_parquet
from sigil.jobs.spark.session import job_run
from sigil.schemas import datasets
from sigil.schemas.config import GenerateConfig, SigilConfig
from sigil.transforms.people import generate_people, truth_pairs
from sigil.transforms.records import InputError


def chunking(gen: GenerateConfig) -> tuple[int, int]:
    """(chunks, people per chunk): equal chunks, so entity ids stay unique across chunks."""
    chunks = math.ceil(gen.entities / gen.chunk_entities)
    return chunks, math.ceil(gen.entities / chunks)


def people(spark, gen: GenerateConfig, truth: bool = False):
    chunks, per_chunk = chunking(gen)
    options = dict(seed=gen.seed, mode=gen.mode, duplicate_rate=gen.duplicate_rate,
                   max_duplicates=gen.max_duplicates, link_overlap=gen.link_overlap)

    def make(batches):
        for batch in batches:
            for chunk in batch.column("id").to_pylist():
                records = generate_people(chunk, per_chunk, **options)
                yield from (truth_pairs(records) if truth else pa.Table.from_batches([records])).to_batches()

    schema = datasets.TRUTH if truth else datasets.PEOPLE
    return spark.range(0, chunks, 1, chunks).mapInArrow(make, spark_schema(schema))


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    gen = config.generate
    if gen is None:
        raise InputError("the configuration has no 'generate' section")
    with job_run("generate", spark, config, strict, quiet) as job:
        with job.stage("records"):
            df = people(spark, gen)
            writer = df.write.partitionBy("source")
            if gen.format == "csv":
                writer.option("header", True).csv(job.path("records"))
            else:
                writer.parquet(job.path("records"))
            counts = dict(spark.read.format(gen.format).option("header", True).load(job.path("records"))
                          .groupBy("source").count().collect())  # driver-ok: one row per source
        with job.stage("truth"):
            n_truth = write_parquet(people(spark, gen, truth=True), job.path("truth"), datasets.TRUTH)
        job.manifest["outputs"].update({f"records.{k}": v for k, v in sorted(counts.items())})
        job.manifest["outputs"]["truth"] = n_truth
        job.manifest["metrics"].update({"entities": chunking(gen)[0] * chunking(gen)[1],
                                        "records": sum(counts.values()), "truth_pairs": n_truth})
        job.log(f"{sum(counts.values())} records, {n_truth} true pairs")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/generate.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["generate", *sys.argv[1:]]))
