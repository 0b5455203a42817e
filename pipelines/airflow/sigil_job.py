"""What sigil's DAGs share: ``SigilJob``, a sigil job as an Airflow task, and the DAG params.

A task runs one job (``ingest``, ``graph-index``...) in the mode the DAG param ``mode``
chooses:

- ``spark-submit`` (default): the job module (``sigil/jobs/<job>.py``, a spark-submit
  script) submitted by the Spark provider's ``SparkSubmitOperator`` through the connection
  ``spark_default``, whose host is the master (``local[4]``, ``yarn``, ``spark://host:7077``);
- ``embedded``: ``python -m sigil <job>`` on the worker, on the configuration's embedded
  Spark (``spark.master``).

Outputs are atomic (staged, then moved into place), so a failed task is retried as it
is. A configuration or input error (sigil's exit code 2) fails the task at once: a retry
would fail the same way.

This module defines no DAG; the DAG files import it from the DAG folder. It imports only
Airflow: sigil lives in an environment of its own (the DAG param ``python``).
"""

from __future__ import annotations

import subprocess
from datetime import timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.hooks.subprocess import SubprocessHook
from airflow.sdk import DAG, Param
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

INPUT_ERROR = 2  # sigil's exit code for a configuration or input error


def shared_params() -> dict[str, Param]:
    """The params of every DAG, new for each (a Param holds the value it resolved)."""
    return {
        "conf": Param(type="string", minLength=1, description="the YAML configuration file: an absolute path on the "
                                                              "worker, as are the paths in it (or URIs)"),
        "output": Param(None, type=["null", "string"], description="the output root (--set output=...); "
                                                                   "empty: the configuration's"),
        "set": Param([], type="array", items={"type": "string", "pattern": "^[^=]+="},
                     description="configuration overrides KEY=VALUE (--set), e.g. block.lsh.threshold=0.4"),
        "strict": Param(False, type="boolean", description="fail on any quarantined row (--strict)"),
        "mode": Param("spark-submit", enum=["spark-submit", "embedded"], description=(
            "spark-submit through the spark_default connection, or embedded Spark on the worker")),
        "python": Param("python3", type="string", minLength=1,
                        description="the Python of sigil's environment on the worker (and, for spark-submit, on the "
                                    "Spark hosts)"),
    }


def sigil_dag(dag_id: str, doc: str, **params: Param) -> DAG:
    """A DAG with the shared params (and ``params``), run on demand, each task retried twice."""
    return DAG(dag_id, doc_md=doc, schedule=None, params={**shared_params(), **params}, tags=["sigil"],
               default_args={"retries": 2, "retry_delay": timedelta(minutes=2)})


class SigilJob(SparkSubmitOperator):
    """The sigil job named by ``task_id`` (``graph-ingest``: the CLI's name); skipped unless the
    boolean DAG param ``when`` is on, where given."""

    def __init__(self, *, task_id: str, when: str | None = None, **kwargs) -> None:
        super().__init__(task_id=task_id, conn_id="spark_default", name=f"sigil-{task_id}", **kwargs)
        self.job, self.when = task_id, when

    def execute(self, context) -> None:
        params = context["params"]
        if self.when and not params[self.when]:
            raise AirflowSkipException(f"the DAG param {self.when} is off")
        args = ["--conf", params["conf"]]
        for item in [*params["set"], *([f"output={params['output']}"] if params["output"] else [])]:
            args += ["--set", item]
        args += ["--strict"] if params["strict"] else []
        if params["mode"] == "embedded":
            code = SubprocessHook().run_command([params["python"], "-m", "sigil", self.job, *args]).exit_code
        else:
            code = self._submit(context, params["python"], args)
        if code == INPUT_ERROR:
            raise AirflowFailException(f"sigil {self.job}: configuration or input error (exit code 2, not "
                                       "retried); the log above says which")
        if code:
            raise AirflowException(f"sigil {self.job} exited with code {code}")

    def _submit(self, context, python: str, args: list[str]) -> int:
        """spark-submit the job's module with ``args``: 0, or ``INPUT_ERROR`` where the job
        exited with it (seen in client mode, where spark-submit exits with the driver's code)."""
        self.application, self.application_args = self._module_file(python), args
        self.conf = {**(self.conf or {}), "spark.pyspark.python": python, "spark.pyspark.driver.python": python}
        try:
            super().execute(context)
        except AirflowException:
            # the hook raises one exception for every failure; its process holds the exit code
            if getattr(getattr(self._hook, "_submit_sp", None), "returncode", None) != INPUT_ERROR:
                raise
            return INPUT_ERROR
        return 0

    def _module_file(self, python: str) -> str:
        """The file of the job's module in sigil's environment: the application to submit."""
        module = f"sigil.jobs.{self.job.replace('-', '_')}"
        find = "import importlib.util, sys; print(importlib.util.find_spec(sys.argv[1]).origin)"
        try:
            found = subprocess.run([python, "-c", find, module], capture_output=True, text=True, timeout=120)
        except OSError as err:
            raise AirflowFailException(f"cannot run {python} (DAG param python): {err}") from None
        if found.returncode:
            raise AirflowFailException(f"{python} (DAG param python) cannot import {module}: is sigil installed "
                                       f"in its environment?\n{found.stderr}")
        return found.stdout.strip()
