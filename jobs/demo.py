"""The main job: generate person records, then ingest -> block -> match -> cluster, with a
summary that compares every stage with the generator's ground truth.

``sigil demo`` runs conf/demo.yaml; ``--conf`` and ``--set`` change it like any job.
"""

from __future__ import annotations

from pathlib import Path

from sigil.jobs import er

DEFAULT_CONF = Path(__file__).resolve().parent.parent / "conf" / "demo.yaml"


def main(conf: str | None = None, overrides: list[str] = (), strict: bool = False, quiet: bool = False) -> dict:
    return er.main(conf or DEFAULT_CONF, overrides, strict, quiet, generate=True)
