"""The run harness replaces only what it owns, one run at a time, atomically."""

from __future__ import annotations

import json
import os
import socket

import pytest

from sigil.run import ArrowStorage, Run, SUCCESS
from sigil.schemas.config import load_config
from sigil.transforms.records import InputError


@pytest.fixture(params=["arrow", "hadoop"])
def storage(request):
    if request.param == "arrow":
        return ArrowStorage()
    from sigil.jobs.spark.session import HadoopStorage
    return HadoopStorage(request.getfixturevalue("spark"))


def config(tmp_path, **sections):
    return load_config(base={"output": str(tmp_path / "out"), **sections})


def finish(run: Run, rows: str = "x") -> dict:
    """Write one dataset file into the staging directory and commit."""
    run.storage.write_text(run.path("data/part-0.txt"), rows)
    return run.commit()


def test_commit_replaces_the_previous_output_and_marks_it(tmp_path, storage):
    for rows in ("first", "second"):
        with Run("ingest", config(tmp_path), storage, quiet=True) as run:
            finish(run, rows)
    final = tmp_path / "out" / "ingest"
    assert (final / "data" / "part-0.txt").read_text() == "second"
    assert (final / SUCCESS).exists() and json.loads((final / "manifest.json").read_text())["job"] == "ingest"
    assert sorted(os.listdir(tmp_path / "out")) == ["ingest"]  # no lock, no staging left


def test_refuses_to_replace_what_is_not_its_output(tmp_path, storage):
    raw = tmp_path / "out" / "ingest" / "people.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text("id,name\n1,a\n")
    with pytest.raises(InputError, match="not a sigil ingest output"):
        with Run("ingest", config(tmp_path), storage, quiet=True) as run:
            finish(run)
    assert raw.read_text() == "id,name\n1,a\n"
    (raw.parent / "manifest.json").write_text(json.dumps({"job": "block"}))  # another job's output
    with pytest.raises(InputError, match="not a sigil ingest output"):
        Run("ingest", config(tmp_path), storage, quiet=True).__enter__()


def test_refuses_an_output_overlapping_an_input(tmp_path, storage):
    source = {"ingest": {"sources": [{"name": "s", "path": str(tmp_path / "out" / "ingest" / "people.csv"),
                                      "id_column": "id"}], "attributes": [{"name": "name"}]}}
    with pytest.raises(InputError, match="overlaps the input"):
        Run("ingest", config(tmp_path, **source), storage, quiet=True).__enter__()
    # another job's input inside this job's output does not concern this job
    with Run("generate", config(tmp_path, **source), storage, quiet=True) as run:
        finish(run)


def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path, storage):
    with Run("block", config(tmp_path), storage, quiet=True) as first:
        with pytest.raises(InputError, match="another sigil run is writing"):
            Run("block", config(tmp_path), storage, quiet=True).__enter__()
        finish(first)
    with Run("block", config(tmp_path), storage, quiet=True) as again:  # released
        finish(again)


def test_a_killed_runs_lock_and_staging_are_cleaned(tmp_path, storage):
    out = tmp_path / "out"
    (out / ".match.tmp-dead0000" / "levels").mkdir(parents=True)
    (out / ".match.tmp-dead0000" / "levels" / "part-0.parquet").write_bytes(b"x" * 1000)
    (out / "match.old-dead").mkdir()
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    (out / ".match.lock").write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
    with Run("match", config(tmp_path), storage, quiet=True) as run:
        finish(run)
    assert sorted(os.listdir(out)) == ["match"]


def test_a_run_killed_in_its_swap_gets_the_previous_output_back(tmp_path, storage):
    with Run("cluster", config(tmp_path), storage, quiet=True) as run:
        finish(run, "good")
    out = tmp_path / "out"
    (out / "cluster").rename(out / "cluster.old-0badc0de")  # moved aside, the new one not yet in place
    with pytest.raises(RuntimeError):
        with Run("cluster", config(tmp_path), storage, quiet=True):
            raise RuntimeError("fails after taking the lock")
    assert (out / "cluster" / "data" / "part-0.txt").read_text() == "good"
    assert sorted(os.listdir(out)) == ["cluster"]


def test_a_failed_run_keeps_the_previous_output(tmp_path, storage):
    with Run("cluster", config(tmp_path), storage, quiet=True) as run:
        finish(run, "good")
    with pytest.raises(RuntimeError):
        with Run("cluster", config(tmp_path), storage, quiet=True) as run:
            run.storage.write_text(run.path("data/part-0.txt"), "half")
            raise RuntimeError("killed")
    assert (tmp_path / "out" / "cluster" / "data" / "part-0.txt").read_text() == "good"
    assert sorted(os.listdir(tmp_path / "out")) == ["cluster"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_is_a_plain_error(tmp_path, storage):
    (tmp_path / "out").mkdir()
    os.chmod(tmp_path / "out", 0o500)
    try:
        with pytest.raises(InputError, match="cannot use the output"):
            Run("ingest", config(tmp_path), storage, quiet=True).__enter__()
    finally:
        os.chmod(tmp_path / "out", 0o700)
