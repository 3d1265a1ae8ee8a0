"""Helpers shared by the ``bench_*.py`` modules: timing, peak memory and printing a result table."""

from __future__ import annotations

import statistics
import threading
import time


def median_time(fn, repeats: int, *, warmup: bool = False) -> float:
    """Median wall time in seconds of ``repeats`` calls of ``fn`` (after one untimed call if
    ``warmup``: first-call allocations, numba JIT, font caches)."""
    if warmup:
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def peak_rss_delta(fn) -> float:
    """Peak RSS during ``fn()`` minus RSS before it, in MB (psutil sampling thread, ~1 ms): counts
    torch, numpy and numba allocations alike."""
    import psutil

    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.001)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        fn()
    finally:
        stop.set()
        th.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return (peak[0] - base) / 2**20


def print_result(result: dict) -> None:
    """Print a benchmark's ``{"topic", "rows", "notes"}`` as an aligned table."""
    rows = result.get("rows", [])
    cols = ("case", "impl", "metric")
    width = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in cols}
    print(f"# {result.get('topic', '')}")
    print("  ".join(f"{c:{width[c]}s}" for c in cols) + f"  {'value':>12s} unit")
    for r in rows:
        print("  ".join(f"{str(r[c]):{width[c]}s}" for c in cols) + f"  {r['value']:12.4g} {r['unit']}")
    for n in result.get("notes", []):
        print(f"note: {n}")
