"""hqi-generate job: synthetic data and hybrid-query workloads for HQI (Mohoney et al.,
"High-Throughput Vector Similarity Search in Knowledge Graphs", SIGMOD 2023).

Entities with clustered vectors and attributes correlated with them (``genre``,
``country``, ``year``, ``price``), a training workload and a batch of queries drawn from the
same Zipf-skewed predicate templates with different seeds (transforms/hqi_workload.py),
and, with ``hqi_generate.truth``, the batch's exact answers by brute force
(``transforms.hqi.exact_search``). It is a development and demo generator: everything is
made on the driver, from the seed, so ``hqi_generate.rows`` is bounded and a rerun writes
the same tables.

Outputs under ``<output>/hqi_generate/``: ``data`` (schemas.datasets.hqi_data, in files of
``FILE_ROWS`` rows), ``training`` and ``queries`` (hqi_workload), ``truth``
(HQI_RESULTS) and ``manifest.json``. hqi-index and hqi-query read them through
``hqi.data.path`` and the like (conf/hqi_demo.yaml).

Run: ``sigil hqi-generate --conf FILE`` or ``spark-submit jobs/hqi_generate.py --conf FILE``.
"""

from __future__ import annotations

from sigil.jobs.spark.io import write_table
from sigil.jobs.spark.session import job_run
from sigil.schemas import datasets
from sigil.schemas.config import SigilConfig
from sigil.transforms.hqi import data_arrays, exact_search, parse_workload
from sigil.transforms.hqi_workload import generate_data, generate_workload
from sigil.transforms.predicates import column_types
from sigil.transforms.records import InputError

FILE_ROWS = 50_000  # rows per data file: Spark reads one task per file


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    gen = config.hqi_generate
    if gen is None:
        raise InputError("the configuration has no 'hqi_generate' section")
    with job_run("hqi_generate", spark, config, strict, quiet) as job:
        with job.stage("data"):
            data = generate_data(gen.rows, gen.dim, clusters=gen.clusters, center_scale=gen.center_scale, seed=gen.seed)
            schema = datasets.hqi_data(gen.dim, [f for f in data.schema if f.name not in ("id", "vector")])
            write_table(data.cast(schema), job.path("data"), FILE_ROWS)
        with job.stage("workloads"):
            workloads = {name: generate_workload(data, m, seed=gen.seed + offset, k=gen.k, noise=gen.noise)
                         for name, m, offset in (("training", gen.training, 1), ("queries", gen.queries, 2))}
            for name, table in workloads.items():
                write_table(table.cast(datasets.hqi_workload(gen.dim)), job.path(name))
        outputs = {"data": data.num_rows, **{name: t.num_rows for name, t in workloads.items()}}
        if gen.truth:
            with job.stage("truth"):
                ids, vectors, attributes = data_arrays(data)
                queries, _ = parse_workload(workloads["queries"], column_types(attributes), gen.dim)
                outputs["truth"] = write_table(exact_search(ids, vectors, attributes, queries).to_arrow(),
                                               job.path("truth"))
        predicates = workloads["queries"].column("predicate")
        job.manifest["outputs"] = outputs
        job.manifest["metrics"] = {"rows": gen.rows, "dim": gen.dim, "attributes": column_types(data_arrays(data)[2]),
                                   "distinct_query_predicates": len(set(predicates.to_pylist())), "seed": gen.seed}
        job.log(f"{gen.rows} rows of dimension {gen.dim}, {gen.training} training queries, {gen.queries} queries"
                + (f", {outputs['truth']} exact answers" if gen.truth else ""))
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/hqi_generate.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["hqi-generate", *sys.argv[1:]]))
