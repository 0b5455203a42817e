"""What every job run shares: timed stages, the manifest, and atomic outputs.

A run writes its datasets into a staging directory next to the final one; ``commit``
writes the manifest there and then swaps the staging directory into place, so a failed
run never leaves a half-written result where a previous good one stood.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import uuid
from contextlib import contextmanager
from importlib import metadata

from sigil.schemas.config import SigilConfig

PACKAGES = ("sigil", "pyspark", "apache-beam", "pyarrow", "numpy", "numba", "datasketch", "pandas",
            "great-expectations")


class StrictError(RuntimeError):
    """--strict and a quarantined row: names the file, line and reason."""


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


class HadoopFs:
    """Directory moves through Spark's Hadoop FileSystem: works for file://, hdfs://, s3a://..."""

    def __init__(self, spark, path: str):
        jvm = spark._jvm
        self._jvm = jvm
        self._conf = spark._jsc.hadoopConfiguration()
        self._fs = jvm.org.apache.hadoop.fs.Path(path).getFileSystem(self._conf)

    def _p(self, path):
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def exists(self, path: str) -> bool:
        return self._fs.exists(self._p(path))

    def rename(self, src: str, dst: str) -> None:
        self._fs.mkdirs(self._p(dst).getParent())
        if not self._fs.rename(self._p(src), self._p(dst)):
            raise OSError(f"could not move {src} to {dst}")

    def delete(self, path: str) -> None:
        self._fs.delete(self._p(path), True)

    def write_text(self, path: str, text: str) -> None:
        out = self._fs.create(self._p(path), True)
        out.write(bytearray(text.encode()))
        out.close()


class Run:
    """One job run, used as ``with Run(...) as job:``. ``with job.stage("name"):`` times and
    reports a stage; ``job.path(ds)`` is where dataset ``ds`` is written; ``job.commit()``
    makes it all visible at once. Leaving the block by an exception drops the staging
    directory, so the previous output stays; datasets marked by ``keep_on_failure`` (costly
    to compute again) are moved to ``<output>/<job>.kept/`` first."""

    def __init__(self, job: str, config: SigilConfig, spark=None, strict: bool = False, quiet: bool = False):
        self.job, self.config, self.strict, self.quiet = job, config, strict, quiet
        self.final = f"{config.output.rstrip('/')}/{job}"
        self.staging = f"{config.output.rstrip('/')}/.{job}.tmp-{uuid.uuid4().hex[:12]}"
        self.fs = HadoopFs(spark, self.final) if spark is not None else None
        self.started = time.time()
        self.manifest: dict = {
            "job": job,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "argv": sys.argv,
            "config": config.model_dump(mode="json"),
            "versions": versions(),
            "inputs": {}, "outputs": {}, "quarantined": {}, "metrics": {}, "timings": {},
        }
        self.kept: dict[str, str] = {}

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            self.abort()

    def path(self, dataset: str) -> str:
        return f"{self.staging}/{dataset}"

    def final_path(self, dataset: str) -> str:
        return f"{self.final}/{dataset}"

    def log(self, message: str) -> None:
        if not self.quiet:
            print(f"[sigil {self.job}] {message}", file=sys.stderr, flush=True)

    def log_metrics(self, *keys: str) -> None:
        """One line with the named metrics of the manifest (floats to 4 digits)."""
        metrics = self.manifest["metrics"]
        self.log(", ".join(f"{k} {metrics[k]:.4g}" if isinstance(metrics[k], float) else f"{k} {metrics[k]}"
                           for k in keys if k in metrics))

    @contextmanager
    def stage(self, name: str):
        self.log(f"{name} ...")
        t0 = time.perf_counter()
        yield
        seconds = time.perf_counter() - t0
        self.manifest["timings"][name] = round(seconds, 3)
        self.log(f"{name} done in {seconds:.1f} s")

    def check_quality(self, spark, dataset: str, suite: str) -> None:
        """Validate a written dataset with its expectation suite (schemas/expectations.py);
        a failure is recorded in the manifest, and fails the run under --strict."""
        from sigil.schemas.expectations import validate

        with self.stage(f"validate {dataset}"):
            result = validate(spark.read.parquet(self.path(dataset)), suite)
        self.manifest.setdefault("expectations", {})[dataset] = result
        if not result["success"]:
            message = f"{dataset} failed expectations: {result['failed']}"
            if self.strict:
                raise StrictError(f"--strict: {message}")
            self.log(f"warning: {message}")

    def commit(self) -> dict:
        """Write the manifest into the staging directory and swap it into place."""
        self.manifest["timings"]["total"] = round(time.time() - self.started, 3)
        text = json.dumps(self.manifest, indent=2, default=str)
        if self.fs is None:
            from sigil.transforms.records import open_input
            import pyarrow.fs as pafs
            fs, staging = open_input(self.staging)
            _, final = open_input(self.final)
            fs.create_dir(staging, recursive=True)
            with fs.open_output_stream(f"{staging}/manifest.json") as out:
                out.write(text.encode())
            old = f"{final}.old-{uuid.uuid4().hex[:8]}"
            if fs.get_file_info(final).type != pafs.FileType.NotFound:
                fs.move(final, old)
            fs.move(staging, final)
            if fs.get_file_info(old).type != pafs.FileType.NotFound:
                fs.delete_dir(old)
        else:
            self.fs.write_text(f"{self.staging}/manifest.json", text)
            old = f"{self.final}.old-{uuid.uuid4().hex[:8]}"
            if self.fs.exists(self.final):
                self.fs.rename(self.final, old)
            self.fs.rename(self.staging, self.final)
            if self.fs.exists(old):
                self.fs.delete(old)
        self.log(f"wrote {self.final} (manifest.json)")
        return self.manifest

    def keep_on_failure(self, dataset: str, hint: str) -> None:
        """Should the run fail, move the written ``dataset`` to ``<output>/<job>.kept/`` and
        say there how to reuse it (``hint``)."""
        self.kept[dataset] = hint

    def _keep(self) -> None:
        import pyarrow.fs as pafs

        from sigil.transforms.records import open_input

        for dataset, hint in self.kept.items():
            kept = f"{self.final}.kept/{dataset}"
            fs, src = open_input(self.path(dataset))
            _, dst = open_input(kept)
            if fs.get_file_info(src).type == pafs.FileType.NotFound:
                continue
            if fs.get_file_info(dst).type != pafs.FileType.NotFound:
                fs.delete_dir(dst)
            fs.create_dir(dst.rsplit("/", 1)[0], recursive=True)
            fs.move(src, dst)
            print(f"[sigil {self.job}] the run failed; {dataset} kept at {kept}: {hint.format(path=kept)}",
                  file=sys.stderr, flush=True)

    def abort(self) -> None:
        """Drop the staging directory of a failed run; the previous output stays."""
        try:
            self._keep()
        except Exception as err:  # noqa: BLE001 - keeping is best effort
            print(f"[sigil {self.job}] could not keep {list(self.kept)}: {err}", file=sys.stderr, flush=True)
        try:
            if self.fs is not None:
                self.fs.delete(self.staging)
            else:
                from sigil.transforms.records import open_input
                fs, staging = open_input(self.staging)
                fs.delete_dir(staging)
        except Exception:  # noqa: BLE001 - cleanup must not hide the original error
            pass
