"""Throughput of the evaluation protocol (SPEC §4): pairs/s for the full protocol (prediction 2048 →
subsampled to 1024 vs GT 1024, bbox normalisation, ICP, Chamfer, exact EMD), per-step costs, and the
estimated time for the official test split (8,762 shapes × 24 views = 210,288 pairs).

Inputs are shape-like clouds (points on the surface of a box + an ellipsoid, a different sample for
the prediction, plus 1% noise and a 5° rotation), which is what the evaluation sees; uniform random
clouds make the assignment problem harder than real data.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OFFICIAL_TEST_PAIRS = 8762 * 24


def _surface(rng, n):
    """n points on a box (0.6×0.3×0.2) ∪ an ellipsoid above it."""
    k = n // 2
    half = np.array([0.3, 0.15, 0.1])
    box = rng.uniform(-1, 1, (k, 3)) * half
    ax = rng.integers(0, 3, k)
    box[np.arange(k), ax] = rng.choice([-1, 1], k) * half[ax]
    e = rng.normal(size=(n - k, 3))
    e = e / np.linalg.norm(e, axis=1, keepdims=True) * [0.15, 0.2, 0.1] + [-0.25, 0, 0]
    return np.concatenate([box, e]).astype(np.float32)


def make_pairs(n_pairs: int, seed: int = 0):
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    preds, gts = [], []
    for i in range(n_pairs):
        gts.append(_surface(rng, 1024))
        r = Rotation.from_rotvec(rng.normal(size=3) / np.sqrt(3) * np.deg2rad(5)).as_matrix()
        preds.append(((_surface(rng, 2048) + rng.normal(scale=0.01, size=(2048, 3))) @ r.T).astype(np.float32))
    return preds, gts


def _median_time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def run(quick: bool = False) -> dict:
    from lmnet.eval import protocol as P
    from lmnet.eval.parallel import PairEvaluator

    n_pairs = 16 if quick else 96
    repeats = 3
    preds, gts = make_pairs(n_pairs)
    keys = [f"bench/{i:04d}/00" for i in range(n_pairs)]
    rows, notes = [], []

    def row(case, impl, metric, value, unit):
        rows.append({"case": case, "impl": impl, "metric": metric, "value": float(value), "unit": unit})

    # per-step costs, one process, on a prepared pair
    p0 = P.normalize_cloud(P.subsample(preds[0], 1024, key=keys[0]))
    g0 = P.normalize_cloud(gts[0])
    n_step = 4 if quick else 10
    steps = {
        "subsample+normalise": lambda: P.normalize_cloud(P.subsample(preds[0], 1024, key=keys[0])),
        "ICP (<=50 it)": lambda: P.icp(p0, g0),
        "Chamfer (KD-tree, both ways)": lambda: P.chamfer(p0, g0),
        "EMD exact (scipy LSA)": lambda: P.emd_scipy(p0, g0),
    }
    if P._lmnet_emd() is not None:
        steps["EMD exact (lmnet.losses.emd_exact)"] = lambda: P.emd(p0, g0, "lmnet")
    else:
        notes.append("lmnet.losses.emd_exact not available: EMD uses scipy.optimize.linear_sum_assignment")
    for name, fn in steps.items():
        fn()
        row(name, "1 process", "time per pair", 1e3 * _median_time(lambda: [fn() for _ in range(n_step)], repeats) / n_step, "ms")
    res = P.icp(p0, g0)
    notes.append(f"ICP on the sample pair: {res.iterations} iterations, converged={res.converged}")

    proto = P.Protocol()
    # serial, full protocol
    serial = _median_time(lambda: [P.evaluate_pair(p, g, proto, k) for p, g, k in
                                   zip(preds[: n_pairs // 2], gts[: n_pairs // 2], keys)], repeats)
    row("full protocol", "1 process", "throughput", (n_pairs // 2) / serial, "pairs/s")

    # 2 worker processes, persistent pool (start-up measured separately)
    t = time.perf_counter()
    ev = PairEvaluator(proto, workers=2, chunksize=4).__enter__()
    ev.submit(preds[:8], gts[:8], keys[:8])  # two chunks → both workers import + load the kernels
    ev.results()
    startup = time.perf_counter() - t

    def par():
        ev._done.clear()
        ev.submit(preds, gts, keys)
        ev.results()
    try:
        tpar = _median_time(par, repeats)
    finally:
        ev.__exit__(None, None, None)
    rate = n_pairs / tpar
    row("full protocol", "2 workers", "throughput", rate, "pairs/s")
    row("pool start-up + first 8 pairs", "2 workers (spawn)", "time", startup, "s")
    row("official test split (210,288 pairs)", "2 workers", "estimated time", OFFICIAL_TEST_PAIRS / rate / 3600, "h")
    notes.append(f"{n_pairs} pairs, median of {repeats} repeats; measured while other jobs load the 2 cores")
    return {"topic": "eval", "rows": rows, "notes": notes}


def _print(result: dict) -> None:
    print(f"# {result['topic']}")
    print(f"{'case':40s} {'impl':36s} {'metric':16s} {'value':>10s} unit")
    for r in result["rows"]:
        print(f"{r['case']:40s} {r['impl']:36s} {r['metric']:16s} {r['value']:10.3f} {r['unit']}")
    for n in result["notes"]:
        print(f"- {n}")


if __name__ == "__main__":
    _print(run(quick="--quick" in sys.argv))
