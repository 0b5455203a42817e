"""Scale: generated person records through ingest + block at several sizes.

Each size runs in a fresh ``sigil`` process (its own embedded Spark), so wall time and peak
memory are those of one real run: the peak is the sum of the resident memory of the sigil
process and all its children (the Spark JVM, the Python workers), sampled every 0.2 s.

    .venv/bin/python benchmarks/scale_block.py --sizes 100000,1000000
    .venv/bin/python benchmarks/scale_block.py --sizes 20000 --repeat 1     # quick check

Generation is not timed as part of the pipeline (it is reported apart). Prints one row per
size and the ratio time(largest) / time(smallest); ``--json`` writes the results.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

from sigil.schemas.config import read_yaml

ROOT = Path(__file__).resolve().parent.parent
SIGIL = [sys.executable, "-m", "sigil"]


def config(out: Path, people: int, threshold: float, partitions: int) -> dict:
    demo = read_yaml(ROOT / "conf" / "demo.yaml")  # with its `extends` resolved
    demo["output"] = str(out)
    demo["spark"] = {"shuffle_partitions": partitions, "driver_memory": "8g"}
    demo["generate"].update({"entities": people, "format": "parquet", "chunk_entities": 50_000})
    demo["ingest"]["sources"][0].update({"path": f"{out}/generate/records/source=people", "format": "parquet"})
    demo["ingest"]["validate_output"] = False
    demo["block"]["lsh"]["threshold"] = threshold
    demo["block"]["min_jaccard"] = threshold
    demo["block"]["validate_output"] = False
    demo["truth"] = {"path": f"{out}/generate/truth", "format": "parquet"}
    return demo


def measured(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak resident bytes of a command and all its descendants."""
    peak, done = [0], threading.Event()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def sample():
        while not done.is_set():
            try:
                tree = [proc, *proc.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.2)

    t0 = time.perf_counter()
    threading.Thread(target=sample, daemon=True).start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - t0
    done.set()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.decode()[-3000:]}")
    return seconds, peak[0]


def run_size(people: int, threshold: float, repeat: int, work: Path) -> dict:
    out = work / f"n{people}"
    conf = work / f"n{people}.yaml"
    conf.write_text(yaml.safe_dump(config(out, people, threshold, partitions=8 if people < 500_000 else 32)))
    gen_s, _ = measured([*SIGIL, "generate", "--conf", str(conf), "--quiet"])
    runs = []
    for _ in range(repeat):
        ingest_s, ingest_mem = measured([*SIGIL, "ingest", "--conf", str(conf), "--quiet"])
        block_s, block_mem = measured([*SIGIL, "block", "--conf", str(conf), "--quiet"])
        runs.append((ingest_s, block_s, max(ingest_mem, block_mem)))
    manifest = json.loads((out / "block" / "manifest.json").read_text())
    m = manifest["metrics"]
    return {
        "people": people, "records": m["records"], "generate_s": round(gen_s, 1),
        "ingest_s": round(statistics.median(r[0] for r in runs), 1),
        "block_s": round(statistics.median(r[1] for r in runs), 1),
        "total_s": round(statistics.median(r[0] + r[1] for r in runs), 1),
        "peak_rss_gb": round(max(r[2] for r in runs) / 2**30, 2),
        "bands_rows": f"{m['bands']}x{m['rows']}", "candidate_pairs": m["candidate_pairs"],
        "pair_completeness": round(m["pair_completeness"], 4), "pair_quality": round(m["pair_quality"], 4),
        "block_stages_s": manifest["timings"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000", help="people to generate (records are ~1.3x)")
    ap.add_argument("--threshold", type=float, default=0.5, help="LSH threshold and minimum exact Jaccard")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", help="keep the data here (default: a temporary directory)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = []
        for people in (int(s) for s in args.sizes.split(",")):
            results.append(run_size(people, args.threshold, args.repeat, work))
            r = results[-1]
            print(f"{r['records']:>9} records  ingest {r['ingest_s']:>6} s  block {r['block_s']:>6} s  "
                  f"total {r['total_s']:>6} s  peak {r['peak_rss_gb']} GiB  {r['candidate_pairs']} pairs  "
                  f"PC {r['pair_completeness']}  PQ {r['pair_quality']}  (generate {r['generate_s']} s)", flush=True)
    if len(results) > 1:
        ratio = results[-1]["total_s"] / results[0]["total_s"]
        print(f"time({results[-1]['records']}) / time({results[0]['records']}) = {ratio:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
