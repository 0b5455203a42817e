"""Graph analytics, one task per sigil job (``sigil_job.py``: the task, the DAG params):

- ``sigil_graph``: graph-ingest -> graph-index -> communities, and beside them, with the DAG
  param ``ppr`` on, graph-ingest -> ppr-index -> ppr-query (the fingerprints read only the
  ingested graph): what ``sigil graph`` runs, less graph-generate;
- ``sigil_graphhash``: interactions-ingest -> graphhash, embedding rows for a user-item log;
- ``sigil_hqi``: hqi-index -> hqi-query, batches of hybrid queries over a laid-out index.
"""

from airflow.sdk import Param, chain
from sigil_job import SigilJob, sigil_dag

with sigil_dag("sigil_graph", __doc__, ppr=Param(False, type="boolean", description=(
        "also run ppr-index and ppr-query (the configuration's ppr section, its queries for ppr-query)"))):
    ingest = SigilJob(task_id="graph-ingest")
    ingest >> SigilJob(task_id="graph-index") >> SigilJob(task_id="communities")
    ingest >> SigilJob(task_id="ppr-index", when="ppr") >> SigilJob(task_id="ppr-query", when="ppr")

with sigil_dag("sigil_graphhash", __doc__):
    chain(SigilJob(task_id="interactions-ingest"), SigilJob(task_id="graphhash"))

with sigil_dag("sigil_hqi", __doc__):
    chain(SigilJob(task_id="hqi-index"), SigilJob(task_id="hqi-query"))
