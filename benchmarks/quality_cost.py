"""What the data-quality checks cost: the ER chain (ingest -> block -> match -> cluster) on
FEBRL 4 (conf/febrl4.yaml, no truth) in one warm Spark session, with
``quality.validate_output: off``, the default cheap checks and ``quality.checks: all``,
interleaved, ``--repeat`` runs each after one warm-up round; medians (min-max) of the chain's
seconds and of its ``validate ...`` stages.

    .venv/bin/python benchmarks/quality_cost.py [--repeat 3] [--work /tmp/sigil-quality]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from sigil import chains
from sigil.schemas.config import load_config

CONF = Path(__file__).resolve().parents[1] / "conf" / "febrl4.yaml"
MODES = {"off": ["quality.validate_output=off"], "cheap": [], "all": ["quality.checks=all"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", default="/tmp/sigil-quality")
    args = parser.parse_args()
    runs = {mode: [] for mode in MODES}
    for rep in range(args.repeat + 1):
        for mode, overrides in MODES.items():
            config = load_config(CONF, [f"output={args.work}", "truth=null", *overrides])
            t0 = time.perf_counter()
            manifests = chains.run(config, quiet=True)
            seconds = time.perf_counter() - t0
            checks = sum(t for stage in chains.ER_STAGES for name, t in manifests[stage]["timings"].items()
                         if name.startswith("validate"))
            if rep:  # the first round warms the session up
                runs[mode].append((seconds, checks))
    spread = lambda xs: f"{statistics.median(xs):.1f} s ({min(xs):.1f}-{max(xs):.1f})"  # noqa: E731
    print("| quality | chain | of which checks |\n|---|---|---|")
    for mode, found in runs.items():
        print(f"| {mode} | {spread([s for s, _ in found])} | {spread([c for _, c in found])} |")
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
