"""What every job run shares, whatever its engine: timed stages, the manifest, and atomic
outputs.

A run writes its datasets into a staging directory beside the final one; ``commit``
writes the manifest there, swaps the staging directory into place and then writes the
``_SUCCESS`` marker, so a failed run never leaves a half-written result where a previous
good one stood. Spark jobs, Beam pipelines and the Airflow tasks use the same ``Run``;
only the filesystem they move directories with differs (``Storage``).
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from importlib import metadata
from typing import Protocol

import pyarrow.fs as pafs

from sigil.schemas.config import SigilConfig
from sigil.transforms.records import InputError, open_input

PACKAGES = ("sigil", "pyspark", "apache-beam", "pyarrow", "numpy", "numba", "datasketch", "pandas",
            "great-expectations")
SUCCESS = "_SUCCESS"  # written into a job's directory once its outputs are in place


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


class Storage(Protocol):
    """The directory operations a run needs, on whatever filesystem holds its outputs."""

    def exists(self, path: str) -> bool: ...

    def move(self, src: str, dst: str) -> None: ...  # creates dst's parent; dst must not exist

    def delete(self, path: str) -> None: ...  # recursive; nothing when missing

    def write_text(self, path: str, text: str) -> None: ...


class ArrowStorage:
    """``Storage`` through pyarrow's filesystems (local paths and URIs pyarrow knows)."""

    def exists(self, path: str) -> bool:
        fs, p = open_input(path)
        return fs.get_file_info(p).type != pafs.FileType.NotFound

    def move(self, src: str, dst: str) -> None:
        fs, s = open_input(src)
        _, d = open_input(dst)
        fs.create_dir(d.rsplit("/", 1)[0], recursive=True)
        fs.move(s, d)

    def delete(self, path: str) -> None:
        fs, p = open_input(path)
        kind = fs.get_file_info(p).type
        if kind == pafs.FileType.Directory:
            fs.delete_dir(p)
        elif kind == pafs.FileType.File:
            fs.delete_file(p)

    def write_text(self, path: str, text: str) -> None:
        fs, p = open_input(path)
        fs.create_dir(p.rsplit("/", 1)[0], recursive=True)
        with fs.open_output_stream(p) as out:
            out.write(text.encode())


class Run:
    """One job run, used as ``with Run(...) as job:``. ``with job.stage("name"):`` times and
    logs a stage; ``job.path(ds)`` is where dataset ``ds`` is written; ``job.commit()``
    makes it all visible at once. Leaving the block by an exception drops the staging
    directory, so the previous output stays; datasets marked by ``keep_on_failure`` (costly
    to compute again) are moved to ``<output>/<job>.kept/`` first.

    Messages go to the ``sigil.<job>`` logger (``quiet`` keeps all but warnings back)."""

    def __init__(self, job: str, config: SigilConfig, storage: Storage | None = None, strict: bool = False,
                 quiet: bool = False):
        self.job, self.config, self.strict, self.quiet = job, config, strict, quiet
        self.final = f"{config.output.rstrip('/')}/{job}"
        self.staging = f"{config.output.rstrip('/')}/.{job}.tmp-{uuid.uuid4().hex[:12]}"
        self.storage = storage if storage is not None else ArrowStorage()
        self.logger = logging.getLogger(f"sigil.{job}")
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

    def log(self, message: str, level: int = logging.INFO) -> None:
        if level >= logging.WARNING or not self.quiet:
            self.logger.log(level, message)

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

    def refuse_quarantined(self, n: int, first: Callable[[], list[str]], what: str = "row(s)") -> None:
        """Under --strict, fail when ``n`` rows were quarantined, naming the ``first()``
        few (``file line N: reason``)."""
        if self.strict and n:
            raise StrictError(f"--strict: {n} {what} quarantined; first: " + "; ".join(first()))

    def expectations(self, dataset: str, result: dict) -> None:
        """Record the validation ``result`` of a written dataset (schemas/expectations.py);
        a failure warns, and fails the run under --strict."""
        self.manifest.setdefault("expectations", {})[dataset] = result
        if not result["success"]:
            message = f"{dataset} failed expectations: {result['failed']}"
            if self.strict:
                raise StrictError(f"--strict: {message}")
            self.log(f"warning: {message}", logging.WARNING)

    def commit(self) -> dict:
        """Write the manifest into the staging directory, swap it into place, mark it done."""
        self.manifest["timings"]["total"] = round(time.time() - self.started, 3)
        storage = self.storage
        storage.write_text(f"{self.staging}/manifest.json", json.dumps(self.manifest, indent=2, default=str))
        old = f"{self.final}.old-{uuid.uuid4().hex[:8]}"
        if storage.exists(self.final):
            storage.move(self.final, old)
        storage.move(self.staging, self.final)
        storage.delete(old)
        storage.write_text(f"{self.final}/{SUCCESS}", "")
        self.log(f"wrote {self.final} (manifest.json)")
        return self.manifest

    def keep_on_failure(self, dataset: str, hint: str) -> None:
        """Should the run fail, move the written ``dataset`` to ``<output>/<job>.kept/`` and
        say there how to reuse it (``hint``)."""
        self.kept[dataset] = hint

    def _keep(self) -> None:
        for dataset, hint in self.kept.items():
            kept = f"{self.final}.kept/{dataset}"
            if not self.storage.exists(self.path(dataset)):
                continue
            self.storage.delete(kept)
            self.storage.move(self.path(dataset), kept)
            self.log(f"the run failed; {dataset} kept at {kept}: {hint.format(path=kept)}", logging.WARNING)

    def abort(self) -> None:
        """Drop the staging directory of a failed run; the previous output stays."""
        try:
            self._keep()
        except Exception as err:  # noqa: BLE001 - keeping is best effort
            self.log(f"could not keep {list(self.kept)}: {err}", logging.WARNING)
        try:
            self.storage.delete(self.staging)
        except Exception:  # noqa: BLE001 - cleanup must not hide the original error
            pass


def previous_manifest(config: SigilConfig, stage: str, job: str | None = None) -> dict:
    """The manifest of a finished earlier job (``stage``: its output directory); a plain
    error naming the job to run (``job``, by default the stage's name) when it is missing."""
    path = config.stage_path(stage, "manifest.json")
    fs, p = open_input(path)
    try:
        with fs.open_input_stream(p) as f:
            return json.loads(f.read())
    except (FileNotFoundError, OSError, ValueError):
        raise InputError(f"no {stage} output at {path}: run 'sigil {job or stage.replace('_', '-')}' "
                         "first") from None


def configure_logging(quiet: bool = False) -> None:
    """Messages of every ``sigil.*`` logger to stderr as ``[sigil.<job>] message``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
    root = logging.getLogger("sigil")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False
