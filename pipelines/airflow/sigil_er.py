"""Entity resolution, one task per sigil job (``sigil_job.py``: the task, the DAG params):

- ``sigil_er``: ingest -> block -> match -> cluster, the chain ``sigil er`` runs;
- ``sigil_er_nlsh``: ingest -> nlsh-train -> nlsh-block -> match -> cluster, neural-LSH
  blocking instead of MinHash; the configuration's ``match.input`` names
  ``<output>/nlsh_block/candidates`` (or the DAG param ``set`` does).

Each job reads the outputs of the one before it under the output root, so a run that
failed is resumed by clearing the failed task and those after it.
"""

from airflow.sdk import chain
from sigil_job import SigilJob, sigil_dag

with sigil_dag("sigil_er", __doc__):
    chain(*(SigilJob(task_id=job) for job in ("ingest", "block", "match", "cluster")))

with sigil_dag("sigil_er_nlsh", __doc__):
    chain(*(SigilJob(task_id=job) for job in ("ingest", "nlsh-train", "nlsh-block", "match", "cluster")))
