"""The Spark session factory (embedded ``local[*]`` by default, any master under
spark-submit) and the Hadoop filesystem a run moves its outputs with."""

from __future__ import annotations

import os
import shutil
import sys

from sigil.schemas.config import SparkConfig


def check_java() -> None:
    """Spark 4 needs Java 17 or newer; say so plainly instead of a py4j stack trace."""
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    if not java or not os.path.exists(java):
        raise SystemExit("sigil needs Java 17 or newer (Spark 4): install a JDK 17 and put java on PATH "
                         "or set JAVA_HOME")


def spark_session(conf: SparkConfig = SparkConfig()):
    """Get or create the Spark session.

    Workers run the driver's interpreter (``PYSPARK_PYTHON``), so they import the same
    sigil and libraries. Under ``spark-submit`` the master and resources come from the
    command line and ``conf.master`` is ignored. The console progress bar is on only on a
    terminal unless ``conf.progress`` says otherwise: in a log file its carriage returns
    run together into lines of thousands of characters.
    """
    check_java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(conf.app_name)
    if "SPARK_SUBMIT_OPTS" not in os.environ and not os.environ.get("SPARK_ENV_LOADED"):
        builder = builder.master(conf.master).config("spark.driver.memory", conf.driver_memory)
    progress = conf.progress if conf.progress is not None else sys.stderr.isatty()
    settings = {
        "spark.sql.shuffle.partitions": str(conf.shuffle_partitions),
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(conf.arrow_batch_rows),
        # record columns joined to millions of pairs: a broadcast hash join saves shuffling and
        # sorting the pairs twice (Spark's 10 MB default stops short of 1M records' columns)
        "spark.sql.autoBroadcastJoinThreshold": f"{conf.broadcast_join_mb}m" if conf.broadcast_join_mb else "-1",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": progress,
        "spark.python.worker.reuse": "true",
        **conf.conf,
    }
    for key, value in settings.items():
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


class HadoopStorage:
    """``sigil.run.Storage`` through Spark's Hadoop FileSystem: file://, hdfs://, s3a://...,
    with the credentials and settings of the session."""

    def __init__(self, spark):
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()

    def _fs(self, path: str):
        p = self._jvm.org.apache.hadoop.fs.Path(path)
        return p.getFileSystem(self._conf), p

    def exists(self, path: str) -> bool:
        fs, p = self._fs(path)
        return fs.exists(p)

    def move(self, src: str, dst: str) -> None:
        fs, s = self._fs(src)
        _, d = self._fs(dst)
        fs.mkdirs(d.getParent())
        if not fs.rename(s, d):
            raise OSError(f"could not move {src} to {dst}")

    def delete(self, path: str) -> None:
        fs, p = self._fs(path)
        fs.delete(p, True)

    def write_text(self, path: str, text: str) -> None:
        fs, p = self._fs(path)
        out = fs.create(p, True)
        out.write(bytearray(text.encode()))
        out.close()
