"""Timing shared by the in-process benchmarks."""

from __future__ import annotations

import os
import statistics
import time


def timed(fn, repeat: int = 1):
    """Run ``fn`` ``repeat`` times: (result of the last run, median seconds, (min, max)
    seconds, the 1-minute load average after)."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return out, statistics.median(runs), (min(runs), max(runs)), os.getloadavg()[0]
