"""The Spark session factory (embedded ``local[*]`` by default, any master under
spark-submit) and the Hadoop filesystem a run moves its outputs with."""

from __future__ import annotations

import functools
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


def _as_os_error(method):
    """A Hadoop FileSystem call whose Java failure (permissions, a read-only folder) comes
    back as an OSError, as pyarrow's do."""

    @functools.wraps(method)
    def call(*args):
        from py4j.protocol import Py4JJavaError

        try:
            return method(*args)
        except Py4JJavaError as err:
            raise OSError(str(err.java_exception.getMessage() or err.java_exception.toString())) from None

    return call


class HadoopStorage:
    """``sigil.run.Storage`` through Spark's Hadoop FileSystem: file://, hdfs://, s3a://...,
    with the credentials and settings of the session."""

    def __init__(self, spark):
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()

    def _fs(self, path: str):
        p = self._jvm.org.apache.hadoop.fs.Path(path)
        return p.getFileSystem(self._conf), p

    @_as_os_error
    def exists(self, path: str) -> bool:
        fs, p = self._fs(path)
        return fs.exists(p)

    @_as_os_error
    def move(self, src: str, dst: str) -> None:
        fs, s = self._fs(src)
        _, d = self._fs(dst)
        fs.mkdirs(d.getParent())
        if not fs.rename(s, d):
            raise OSError(f"could not move {src} to {dst}")

    @_as_os_error
    def delete(self, path: str) -> None:
        fs, p = self._fs(path)
        fs.delete(p, True)

    @_as_os_error
    def write_text(self, path: str, text: str) -> None:
        fs, p = self._fs(path)
        out = fs.create(p, True)
        out.write(bytearray(text.encode()))
        out.close()

    @_as_os_error
    def read_text(self, path: str) -> str | None:
        fs, p = self._fs(path)
        if not fs.isFile(p):
            return None
        stream = fs.open(p)
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)).decode("utf-8", "replace")
        finally:
            stream.close()

    @_as_os_error
    def create_text(self, path: str, text: str) -> bool:
        fs, p = self._fs(path)
        fs.mkdirs(p.getParent())
        try:
            out = fs.create(p, False)  # fails when the file exists (atomic on HDFS)
        except Exception as err:  # noqa: BLE001 - py4j's error for FileAlreadyExistsException
            if "FileAlreadyExistsException" in str(err):
                return False
            raise
        out.write(bytearray(text.encode()))
        out.close()
        return True

    @_as_os_error
    def children(self, path: str) -> list[str] | None:
        fs, p = self._fs(path)
        if not fs.exists(p) or not fs.getFileStatus(p).isDirectory():
            return None
        return [status.getPath().getName() for status in fs.listStatus(p)]


def job_run(job: str, spark, config, strict: bool = False, quiet: bool = False):
    """The ``sigil.run.Run`` of Spark job ``job``: outputs moved through Hadoop's
    filesystems, and checked with their expectation suites before they move into place."""
    from sigil.jobs.spark.expectations import check_outputs
    from sigil.run import Run

    return Run(job, config, HadoopStorage(spark), strict, quiet, check=functools.partial(check_outputs, spark))
