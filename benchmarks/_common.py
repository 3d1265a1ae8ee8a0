"""Helpers shared by the ``bench_*.py`` modules: timing and printing a result table."""

from __future__ import annotations

import statistics
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
