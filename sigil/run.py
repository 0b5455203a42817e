"""What every job run shares, whatever its engine: timed stages, the manifest, and atomic
outputs.

A run writes its datasets into a staging directory beside the final one; ``commit``
writes the manifest there, swaps the staging directory into place and then writes the
``_SUCCESS`` marker, so a failed run never leaves a half-written result where a previous
good one stood. Spark jobs, Beam pipelines and the Airflow tasks use the same ``Run``;
only the filesystem they move directories with differs (``Storage``).

Before any work a run makes sure it can only replace what it owns: ``<output>/<job>``
must be absent, empty, or a previous output of the same job (its ``manifest.json`` says
so), and must not hold or lie inside a path the configuration reads. A lock file,
``<output>/.<job>.lock``, keeps a second run from writing the same output at once; the
staging directories that runs killed before they could clean up leave behind are removed
by the next run that takes the lock.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
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
_HELD: set[str] = set()  # the locks this process holds


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

    def read_text(self, path: str) -> str | None: ...  # None when missing

    def create_text(self, path: str, text: str) -> bool: ...  # False when it exists already

    def children(self, path: str) -> list[str] | None: ...  # names in a directory; None when not one


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

    def read_text(self, path: str) -> str | None:
        fs, p = open_input(path)
        if fs.get_file_info(p).type != pafs.FileType.File:
            return None
        with fs.open_input_stream(p) as f:
            return f.read().decode("utf-8", "replace")

    def create_text(self, path: str, text: str) -> bool:
        fs, p = open_input(path)
        fs.create_dir(p.rsplit("/", 1)[0], recursive=True)
        if isinstance(fs, pafs.LocalFileSystem):  # atomic: O_EXCL
            try:
                fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as out:
                out.write(text)
            return True
        if fs.get_file_info(p).type != pafs.FileType.NotFound:  # object stores: best effort
            return False
        self.write_text(path, text)
        return True

    def children(self, path: str) -> list[str] | None:
        fs, p = open_input(path)
        if fs.get_file_info(p).type != pafs.FileType.Directory:
            return None
        return [info.base_name for info in fs.get_file_info(pafs.FileSelector(p))]


class Run:
    """One job run, used as ``with Run(...) as job:``. ``with job.stage("name"):`` times and
    logs a stage; ``job.path(ds)`` is where dataset ``ds`` is written; ``job.commit()``
    makes it all visible at once, after ``check(run)`` (the engine's data-quality checks)
    has passed. Leaving the block by an exception drops the staging
    directory, so the previous output stays; datasets marked by ``keep_on_failure`` (costly
    to compute again) are moved to ``<output>/<job>.kept/`` first.

    Messages go to the ``sigil.<job>`` logger (``quiet`` keeps all but warnings back)."""

    def __init__(self, job: str, config: SigilConfig, storage: Storage | None = None, strict: bool = False,
                 quiet: bool = False, check: Callable[["Run"], None] | None = None):
        self.job, self.config, self.strict, self.quiet, self.check = job, config, strict, quiet, check
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
        self.locked = False

    def __enter__(self) -> "Run":
        self._check_output()
        self._lock()
        try:
            self._clean_stale()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            self.abort()

    @property
    def lock_path(self) -> str:
        return f"{self.config.output.rstrip('/')}/.{self.job}.lock"

    def _check_output(self) -> None:
        """Refuse, before any work, an output that is not this job's to replace."""
        for path in self.config.input_paths(self.job):
            if _overlaps(path, self.final):
                raise InputError(f"the output {self.final} overlaps the input {path}: choose another output")
        names = self._storage_call(self.storage.children, self.final)
        if names is None:
            if self._storage_call(self.storage.exists, self.final):
                raise InputError(f"{self.final} exists and is not a directory: choose another output")
            return
        if not names:
            return
        text = self._storage_call(self.storage.read_text, f"{self.final}/manifest.json")
        try:
            owner = json.loads(text).get("job") if text is not None else None
        except ValueError:
            owner = None
        if owner != self.job:
            raise InputError(f"{self.final} holds files that are not a sigil {self.job} output (no manifest.json of "
                             f"that job): refusing to replace them; choose another output or move them")

    def _lock(self) -> None:
        """Take ``<output>/.<job>.lock``; a lock of a dead run on this host is taken over."""
        mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "staging": self.staging,
                           "started": self.manifest["started"]})
        for _ in range(2):
            if self._storage_call(self.storage.create_text, self.lock_path, mine):
                self.locked = True
                _HELD.add(self.lock_path)
                return
            text = self._storage_call(self.storage.read_text, self.lock_path) or "{}"
            try:
                holder = json.loads(text)
            except ValueError:
                holder = {}
            if _alive(holder, self.lock_path):
                raise InputError(f"another sigil run is writing {self.final} (pid {holder.get('pid')} on "
                                 f"{holder.get('host')}, since {holder.get('started')}): wait for it to end, or "
                                 f"remove {self.lock_path} if it is not running")
            self.log(f"taking over the lock of a run that ended without releasing it ({text.strip()})")
            self.storage.delete(self.lock_path)
        raise InputError(f"could not take the lock {self.lock_path}: another run is starting")

    def _unlock(self) -> None:
        if self.locked:
            self.locked = False
            _HELD.discard(self.lock_path)
            self.storage.delete(self.lock_path)

    def _clean_stale(self) -> None:
        """Remove the staging directories of this job's runs that were killed: with the lock
        held, no other run of this job is writing. A run killed in the middle of its swap
        left the previous output aside (``<job>.old-*``): it is put back."""
        root = self.config.output.rstrip("/")
        names = self.storage.children(root) or []
        stale = [name for name in names if name.startswith(f".{self.job}.tmp-")]
        for name in sorted(name for name in names if name.startswith(f"{self.job}.old-")):
            if self.storage.exists(self.final):
                stale.append(name)
            else:
                self.storage.move(f"{root}/{name}", self.final)
                self.log(f"put back the previous output {name} as {self.final}")
        for name in stale:
            self.storage.delete(f"{root}/{name}")
        if stale:
            self.log(f"removed {len(stale)} directory(ies) left by killed runs: {stale}")

    def _storage_call(self, method, *args):
        """A storage operation on the output, with a filesystem refusal (permissions, a
        read-only folder) as a plain error naming the output."""
        try:
            return method(*args)
        except OSError as err:
            raise InputError(f"cannot use the output {self.config.output}: {err}") from None

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

    def expectations(self, suite: str, result: dict) -> None:
        """Record the validation ``result`` of a written dataset with suite ``suite``
        (schemas/expectations.py); a failure warns, and fails the run, before its outputs
        move into place, under ``quality.validate_output: fail`` or --strict."""
        self.manifest.setdefault("expectations", {})[suite] = result
        if not result["success"]:
            message = f"{suite} failed expectations: {result['failed']}"
            if self.config.quality.validate_output == "fail":
                raise StrictError(f"quality.validate_output: fail: {message}")
            if self.strict:
                raise StrictError(f"--strict: {message}")
            self.log(f"warning: {message}", logging.WARNING)

    def commit(self) -> dict:
        """Check the staged datasets (``check``, the engine's validation), write the manifest
        into the staging directory, swap it into place, mark it done."""
        if self.check is not None:
            self.check(self)
        self.manifest["timings"]["total"] = round(time.time() - self.started, 3)
        storage = self.storage
        storage.write_text(f"{self.staging}/manifest.json", json.dumps(self.manifest, indent=2, default=str))
        old = f"{self.final}.old-{uuid.uuid4().hex[:8]}"
        if storage.exists(self.final):
            storage.move(self.final, old)
        storage.move(self.staging, self.final)
        storage.delete(old)
        storage.write_text(f"{self.final}/{SUCCESS}", "")
        self._unlock()
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
        for cleanup in (lambda: self.storage.delete(self.staging), self._unlock):
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - cleanup must not hide the original error
                pass


def _overlaps(path: str, directory: str) -> bool:
    """Whether ``path`` is ``directory``, lies inside it, or holds it."""
    a, b = (p if "://" in p else os.path.abspath(p) for p in (path.rstrip("/"), directory.rstrip("/")))
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _alive(holder: dict, lock: str) -> bool:
    """Whether the run that wrote a lock may still be running: on another host it may; on
    this one, when its process exists (and, for this process, while it holds the lock)."""
    if holder.get("host") != socket.gethostname():
        return bool(holder)
    if holder.get("pid") == os.getpid():
        return lock in _HELD
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except (ProcessLookupError, ValueError, OverflowError):
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


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
