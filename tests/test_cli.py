"""The command line: help, and configuration errors that name the key, before any Spark work."""

import subprocess
import sys

import pytest

from sigil.cli import main


def test_help_lists_jobs():
    out = subprocess.run([sys.executable, "-m", "sigil", "--help"], capture_output=True, text=True, check=True).stdout
    for job in ("generate", "ingest", "block", "match", "cluster", "er", "demo"):
        assert job in out
    out = subprocess.run([sys.executable, "-m", "sigil", "block", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "--engine" in out and "--strict" in out and "--set" in out


def test_config_error_exits_2_naming_the_key(tmp_path, capsys):
    conf = tmp_path / "c.yaml"
    conf.write_text("output: /tmp/x\nblock: {lsh: {threshhold: 0.5}}\n")
    assert main(["block", "--conf", str(conf)]) == 2
    assert "block.lsh.threshhold: unknown key" in capsys.readouterr().err


def test_unknown_job_is_an_argparse_error():
    with pytest.raises(SystemExit) as err:
        main(["frobnicate"])
    assert err.value.code == 2


def test_block_without_ingest_is_a_clear_error(spark, tmp_path, capsys):  # the shared session
    conf = tmp_path / "c.yaml"
    conf.write_text(f"output: {tmp_path}/out\nblock: {{mode: dedupe}}\n")
    assert main(["block", "--conf", str(conf), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no ingested records" in err and "run 'sigil ingest' first" in err and "Traceback" not in err


def test_er_names_missing_sections_before_any_work(tmp_path, capsys):
    conf = tmp_path / "c.yaml"
    conf.write_text(f"output: {tmp_path}/out\n")
    assert main(["er", "--conf", str(conf), "--from", "match"]) == 2
    assert "no section for stage(s) ['match', 'cluster']" in capsys.readouterr().err
