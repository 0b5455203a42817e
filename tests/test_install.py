"""The package as a user installs it (a wheel, not the editable checkout) imports and finds
its configuration, from the repository root and from anywhere else."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = ("import sigil.chains, sigil.jobs.block, sigil.jobs.spark.io, sigil.pipelines.block; "
         "from sigil.schemas.config import load_config; conf = sigil.chains.demo_conf(); "
         "print(sigil.__file__); print(conf); print(load_config(conf).generate.entities)")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from the checkout, installed (without dependencies) into a folder."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(out / "dist"), str(ROOT)], check=True, capture_output=True)
    wheel = next((out / "dist").glob("sigil-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(out / "site"),
                    str(wheel)], check=True, capture_output=True)
    return out / "site"


def python_with(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """This interpreter with the wheel's folder ahead of the dependencies and without site
    processing (-S), so that the checkout's editable install (a .pth hook) plays no part."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), *site.getsitepackages()])}
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_wheel_holds_the_configurations(installed):
    assert (installed / "sigil" / "conf" / "demo.yaml").is_file()
    assert (installed / "sigil" / "conf" / "people.yaml").is_file()  # demo.yaml extends it
    assert (installed / "sigil" / "jobs" / "spark" / "io.py").is_file()


def test_installed_package_runs_outside_the_checkout(installed, tmp_path):
    done = python_with(installed, tmp_path, "-c", CHECK)
    assert done.returncode == 0, done.stderr
    module, conf, entities = done.stdout.split()[-3:]
    assert module.startswith(str(installed)) and conf.startswith(str(installed)) and int(entities) > 0
    cli = python_with(installed, tmp_path, "-m", "sigil", "--help")
    assert cli.returncode == 0 and "demo" in cli.stdout, cli.stderr


def test_python_m_sigil_from_the_repository_root(installed):
    """The checkout's sigil/ folder comes first on sys.path there and shadows the installed
    package: it must still find schemas, jobs, transforms and conf."""
    done = python_with(installed, ROOT, "-c", CHECK)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.split()[-2]) == ROOT / "conf" / "demo.yaml"
    cli = python_with(installed, ROOT, "-m", "sigil", "--help")
    assert cli.returncode == 0 and "demo" in cli.stdout, cli.stderr
