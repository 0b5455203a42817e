"""The DAGs of pipelines/airflow/ in a real Airflow: the environment ``./dev.sh test`` makes
(``.venv-airflow``), a metadata database on SQLite in a temporary AIRFLOW_HOME, its ``airflow``
command. The DAGs import, their task graphs are the documented ones, and ``sigil_er`` run by
``airflow dags test`` (spark-submit on the ``spark_default`` connection's ``local[2]``) writes
what ``sigil er`` writes on FEBRL 4; a configuration error fails a task without a retry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import FEBRL, ROOT, needs_data
from sigil import chains
from sigil.cli import JOBS
from sigil.schemas.config import load_config, read_yaml

AIRFLOW = ROOT / ".venv-airflow" / "bin"
DAGS = ROOT / "pipelines" / "airflow"
PEOPLE = read_yaml(ROOT / "conf" / "people.yaml")
# every DAG's tasks and the tasks right after each
GRAPHS = {
    "sigil_er": {"ingest": ["block"], "block": ["match"], "match": ["cluster"], "cluster": []},
    "sigil_er_nlsh": {"ingest": ["nlsh-train"], "nlsh-train": ["nlsh-block"], "nlsh-block": ["match"],
                      "match": ["cluster"], "cluster": []},
    "sigil_graph": {"graph-ingest": ["graph-index", "ppr-index"], "graph-index": ["communities"], "communities": [],
                    "ppr-index": ["ppr-query"], "ppr-query": []},
    "sigil_graphhash": {"interactions-ingest": ["graphhash"], "graphhash": []},
    "sigil_hqi": {"hqi-index": ["hqi-query"], "hqi-query": []},
}
PARAMS = ["conf", "mode", "output", "python", "set", "strict"]
# the DAG folder parsed as Airflow's DAG processor parses it (the folder on sys.path)
PARSE = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
bag = BundleDagBag(sys.argv[1], bundle_path=Path(sys.argv[1]))
print(json.dumps({"errors": bag.import_errors, "dags": {
    d.dag_id: {"graph": {t.task_id: sorted(t.downstream_task_ids) for t in d.tasks}, "params": sorted(d.params)}
    for d in bag.dags.values()}}))
"""


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """``airflow ARGS...`` on a migrated metadata database, with the DAG folder, the
    ``spark_default`` connection (master ``local[2]``) and this environment's spark-submit."""
    assert (AIRFLOW / "airflow").is_file(), f"no Airflow at {AIRFLOW}: ./dev.sh test creates .venv-airflow"
    home = tmp_path_factory.mktemp("airflow")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def run(*args: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run([str(AIRFLOW / "airflow"), *args], cwd=home, env=env, capture_output=True, text=True,
                              timeout=timeout)

    done = run("db", "migrate", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return run


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> dict:
    assert (AIRFLOW / "python").is_file(), f"no Airflow at {AIRFLOW}: ./dev.sh test creates .venv-airflow"
    done = subprocess.run([str(AIRFLOW / "python"), "-c", PARSE, str(DAGS)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "AIRFLOW_HOME": str(tmp_path_factory.mktemp("parse"))})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_dags_import_without_errors(dagbag):
    assert dagbag["errors"] == {}
    assert sorted(dagbag["dags"]) == sorted(GRAPHS)


@pytest.mark.parametrize("dag_id", sorted(GRAPHS))
def test_one_task_per_job_in_the_documented_order(dagbag, dag_id):
    dag = dagbag["dags"][dag_id]
    assert dag["graph"] == GRAPHS[dag_id]
    assert set(dag["graph"]) <= set(JOBS)  # task ids are the CLI's job names
    assert dag["params"] == sorted(PARAMS + (["ppr"] if dag_id == "sigil_graph" else []))


def dataset(path: Path, keys: list[str]):
    return pq.read_table(path).sort_by([(k, "ascending") for k in keys])


@needs_data(FEBRL)
def test_the_er_dag_writes_what_sigil_er_writes(airflow, spark, febrl4, tmp_path):
    """Every job spark-submitted; then ``sigil er`` on the same configuration (its ingest and
    block are the session's FEBRL 4 run, match and cluster run here) and the outputs compared."""
    config, _, _ = febrl4
    conf = tmp_path / "febrl4.yaml"
    conf.write_text(yaml.safe_dump({**config.model_dump(mode="json", exclude_none=True),
                                    "match": PEOPLE["match"], "cluster": PEOPLE["cluster"]}))
    overrides = ["quality.validate_output=off", "truth=null"]  # checks and metrics: time, not datasets
    params = {"conf": str(conf), "output": str(tmp_path / "airflow"), "set": overrides, "python": sys.executable}
    done = airflow("dags", "test", "sigil_er", "--conf", json.dumps(params), timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-20_000:]

    reference = tmp_path / "er"
    for stage in ("ingest", "block"):
        shutil.copytree(f"{config.output}/{stage}", reference / stage)
    chains.run(load_config(conf, [*overrides, f"output={reference}"]), ("match", "cluster"), quiet=True, spark=spark)
    pair = ["source_a", "id_a", "source_b", "id_b"]
    for name, keys in (("ingest/records", ["rid"]), ("block/candidates", pair), ("match/pairs", pair),
                       ("cluster/entities", ["rid"])):
        ran, expected = dataset(tmp_path / "airflow" / name, keys), dataset(reference / name, keys)
        assert ran.num_rows > 0 and ran.equals(expected), name


@pytest.mark.parametrize("mode", ["spark-submit", "embedded"])
def test_a_configuration_error_fails_the_task_without_retries(airflow, tmp_path, mode):
    """Exit code 2 (here: no such configuration file) fails the task at once; a retry would
    wait its two minutes' delay, past the timeout."""
    params = {"conf": str(tmp_path / "missing.yaml"), "python": sys.executable, "mode": mode}
    done = airflow("dags", "test", "sigil_er", "--conf", json.dumps(params), timeout=100)
    log = done.stdout + done.stderr
    assert done.returncode != 0
    assert "AirflowFailException: sigil ingest: configuration or input error" in log, log[-20_000:]
    assert "configuration file not found" in log and "up_for_retry" not in log
