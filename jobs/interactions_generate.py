"""interactions-generate job: a synthetic interaction log for GraphHash and recommender
work (transforms/interactions.py ``generate_interactions``): users and items in latent
communities, power-law user activity and item popularity, most interactions inside the
user's community, timestamps over a year and ratings. Made on the driver from the seed,
so a rerun writes the same log.

Outputs under ``<output>/interactions_generate/``: ``log`` (Parquet: ``user``, ``item``,
``timestamp``, ``rating``, in files of ``FILE_ROWS`` rows), ``communities`` (each user's
and item's latent community: ``entity_type``, ``id``, ``community``) and
``manifest.json``. interactions-ingest reads the log through ``interactions.log``
(conf/graphhash_demo.yaml).

Run: ``sigil interactions-generate --conf FILE`` or ``spark-submit
jobs/interactions_generate.py --conf FILE``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sigil.jobs.spark.io import write_table
from sigil.jobs.spark.session import job_run
from sigil.schemas.config import SigilConfig
from sigil.transforms.interactions import generate_interactions, population
from sigil.transforms.records import InputError

FILE_ROWS = 1_000_000  # rows per log file: Spark reads one task per file


def run(spark, config: SigilConfig, strict: bool = False, quiet: bool = False) -> dict:
    gen = config.interactions_generate
    if gen is None:
        raise InputError("the configuration has no 'interactions_generate' section")
    with job_run("interactions_generate", spark, config, strict, quiet) as job:
        with job.stage("log"):
            log = generate_interactions(gen.users, gen.items, gen.interactions, communities=gen.communities,
                                        seed=gen.seed)
            n = write_table(log, job.path("log"), FILE_ROWS)
        with job.stage("communities"):
            pop = population(gen.users, gen.items, communities=gen.communities, seed=gen.seed)
            sides = [("user", pop.user_ids, pop.user_community), ("item", pop.item_ids, pop.item_community)]
            truth = pa.concat_tables([pa.table({"entity_type": pa.array([side] * len(ids), pa.string()),
                                                "id": pa.array(ids, pa.string()),
                                                "community": np.asarray(community, np.int64)})
                                      for side, ids, community in sides])
            write_table(truth, job.path("communities"))
        job.manifest["outputs"] = {"log": n, "communities": truth.num_rows}
        job.manifest["metrics"] = {**gen.model_dump(), "distinct_users": pc.count_distinct(log["user"]).as_py(),
                                   "distinct_items": pc.count_distinct(log["item"]).as_py()}
        job.log(f"{n} interactions of {gen.users} users and {gen.items} items in {gen.communities} communities")
        return job.commit()


if __name__ == "__main__":  # spark-submit jobs/interactions_generate.py --conf FILE
    import sys

    from sigil.cli import main
    sys.exit(main(["interactions-generate", *sys.argv[1:]]))
