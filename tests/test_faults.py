"""Faults as a user meets them: a second run of the same output while one is writing, and a
run killed mid-write. Real processes, as `sigil` runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml


def write_inputs(folder: Path, rows: int = 300_000) -> None:
    with open(folder / "people.csv", "w") as f:
        f.write("id,name,town\n")
        f.writelines(f"{i},Name {i % 9973},Town {i % 101}\n" for i in range(rows))


def conf(folder: Path, output: Path) -> Path:
    path = folder / f"{output.name}.yaml"
    path.write_text(yaml.safe_dump({
        "output": str(output), "spark": {"master": "local[2]", "shuffle_partitions": 2, "driver_memory": "1g"},
        "ingest": {"sources": [{"name": "s", "path": str(folder / "people.csv"), "id_column": "id"}],
                   "attributes": [{"name": "name"}, {"name": "town"}], "split_bytes": 1 << 20}}))
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sigil", *args], capture_output=True, text=True, timeout=600)


def wait_for(test, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not test():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def records(output: Path):
    return pq.read_table(output / "ingest" / "records").sort_by("rid")


def test_concurrent_run_refused_killed_run_cleaned_rerun_identical(tmp_path):
    write_inputs(tmp_path)
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "sigil", "ingest", "--conf", str(conf(tmp_path, out)), "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        # caught writing: its lock taken and its staging directory begun
        wait_for(lambda: (out / ".ingest.lock").exists() and any(out.glob(".ingest.tmp-*/*"))
                 or first.poll() is not None)
        assert first.poll() is None, "the first run ended before it could be caught writing"
        os.killpg(first.pid, signal.SIGSTOP)  # the driver, its JVM and its Python workers
        second = run("ingest", "--conf", str(conf(tmp_path, out)), "--quiet")
        assert second.returncode == 2 and "another sigil run is writing" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert list(out.glob(".ingest.tmp-*")) and (out / ".ingest.lock").exists()  # what kill -9 leaves
    assert not (out / "ingest").exists()

    unchecked = ("--set", "quality.validate_output=off")  # the checks ran above; here only the records matter
    rerun = run("ingest", "--conf", str(conf(tmp_path, out)), "--quiet", *unchecked)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ingest"]  # staging and lock of the killed run gone
    clean = tmp_path / "clean"
    assert run("ingest", "--conf", str(conf(tmp_path, clean)), "--quiet", *unchecked).returncode == 0
    got, want = records(out), records(clean)
    assert got.num_rows == 300_000 and got.select(["rid", "id", "name", "town", "line"]).equals(
        want.select(["rid", "id", "name", "town", "line"]))
