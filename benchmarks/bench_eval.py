"""Throughput of the evaluation protocol (docs/evaluation.md): pairs/s for the full protocol (prediction 2048 →
subsampled to 1024 vs GT 1024, bbox normalisation, ICP, Chamfer, exact EMD), per-step costs, and the
estimated time for the official test split (8,762 shapes × 24 views = 210,288 pairs).

Per-step costs are measured side by side: ours (numba grid NN ICP/Chamfer, lmnet exact EMD) vs
the reference implementations (KD-tree ICP with numpy Kabsch, cKDTree Chamfer, scipy LSA) on the
same prepared pairs; the full protocol also against the previous pipeline (reference ICP + KD-tree
Chamfer, same EMD).

The official (released-code) protocol of :mod:`lmnet.eval.official` is timed on the same pairs in
one process (pairs/s and its time per pair relative to lmnet's), with its two own steps (the auction
EMD on the released schedule, the ICP moving the GT with tolerance 1e-10) per pair.

Inputs are shape-like clouds (points on the surface of a box + an ellipsoid, a different sample for
the prediction, plus 1% noise and a 5° rotation), which is what the evaluation sees; uniform random
clouds make the assignment problem harder than real data.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lmnet.eval import protocol as P
from lmnet.eval.parallel import PairEvaluator
from lmnet.losses.chamfer_numpy import chamfer_terms
from lmnet.eval import official as O

OFFICIAL_TEST_PAIRS = 8762 * 24

try:
    from benchmarks._common import median_time, print_result
except ImportError:  # run as a script: python benchmarks/bench_<topic>.py
    from _common import median_time, print_result

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


def run(quick: bool = False) -> dict:
    from scipy.spatial import cKDTree


    n_pairs = 16 if quick else 96
    repeats = 3
    preds, gts = make_pairs(n_pairs)
    keys = [f"bench/{i:04d}/00" for i in range(n_pairs)]
    rows, notes = [], []

    def row(case, impl, metric, value, unit):
        rows.append({"case": case, "impl": impl, "metric": metric, "value": float(value), "unit": unit})

    # per-step costs, one process, ours vs the reference implementation, on the same prepared pairs
    prepared = [(P.normalize_cloud(P.subsample(preds[i], 1024, key=keys[i])), P.normalize_cloud(gts[i]))
                for i in range(4 if quick else 10)]

    def per_pair(fn):
        fn(*prepared[0])  # warm-up (numba cache load)
        return 1e3 * median_time(lambda: [fn(p, g) for p, g in prepared], repeats) / len(prepared)

    def kdtree_chamfer(p, g):  # the reference: scipy cKDTree both ways
        return cKDTree(p).query(g)[0].mean() + cKDTree(g).query(p)[0].mean()

    def grid_chamfer(p, g):
        return chamfer_terms(p, g)["cd"]

    pairs_of_steps = [
        ("ICP (<=50 it, same result)", ("ours: grid NN built once, numba Kabsch", lambda p, g: P.icp(p, g)),
         ("reference: KD-tree + numpy Kabsch", lambda p, g: P.icp_reference(p, g))),
        ("Chamfer both ways", ("ours: numba grid", grid_chamfer), ("scipy cKDTree", kdtree_chamfer)),
        ("EMD exact", ("ours: lmnet.losses.emd_exact", lambda p, g: P.emd(p, g, "lmnet")),
         ("scipy linear_sum_assignment", lambda p, g: P.emd_scipy(p, g))),
    ]
    row("subsample+normalise", "1 process", "time per pair",
        per_pair(lambda p, g: P.normalize_cloud(P.subsample(preds[0], 1024, key=keys[0]))), "ms")
    for case, (name_a, fn_a), (name_b, fn_b) in pairs_of_steps:
        ta, tb = per_pair(fn_a), per_pair(fn_b)
        row(case, name_a, "time per pair", ta, "ms")
        row(case, name_b, "time per pair", tb, "ms")
        row(case, "ours vs reference", "speed-up", tb / ta, "x")
    res = P.icp(*prepared[0])
    notes.append(f"ICP on the first sample pair: {res.iterations} iterations, converged={res.converged}")

    proto = P.Protocol()
    # serial, full protocol
    serial = median_time(lambda: [P.evaluate_pair(p, g, proto, k) for p, g, k in
                                   zip(preds[: n_pairs // 2], gts[: n_pairs // 2], keys)], repeats)
    row("full protocol", "1 process", "throughput", (n_pairs // 2) / serial, "pairs/s")

    # the official (released-code) protocol on the same pairs, one process, next to lmnet's above

    n_off = n_pairs // 4
    O.evaluate_pairs(np.stack(preds[:1]), np.stack(gts[:1]))  # warm-up (numba cache load)
    toff = median_time(lambda: O.evaluate_pairs(np.stack(preds[:n_off]), np.stack(gts[:n_off])), repeats)
    row("official protocol (auction + exact EMD)", "1 process", "throughput", n_off / toff, "pairs/s")
    toff_nemd = median_time(lambda: O.evaluate_pairs(np.stack(preds[:n_off]), np.stack(gts[:n_off]),
                                                     with_emd=False), repeats)
    row("official protocol, EMD off", "1 process", "throughput", n_off / toff_nemd, "pairs/s")
    row("official vs lmnet protocol", "1 process", "time ratio", (toff / n_off) / (serial / (n_pairs // 2)), "x")
    off_prep = [(O.scale_released(preds[i])[O.subsample_indices(1)[0]], O.scale_released(gts[i]))
                for i in range(len(prepared))]
    t_auc = median_time(lambda: [O.auction_emd(p, g) for p, g in off_prep], repeats) / len(off_prep)
    t_icp = median_time(lambda: [O.icp_released(g, p) for p, g in off_prep], repeats) / len(off_prep)
    row("official: auction EMD (released schedule)", "numba, sequential bids", "time per pair", 1e3 * t_auc, "ms")
    row("official: ICP GT->pred (tol 1e-10, <=1000 it)", "numba grid NN", "time per pair", 1e3 * t_icp, "ms")
    res_off = O.evaluate_pairs(np.stack(preds[:n_off]), np.stack(gts[:n_off]))
    notes.append(f"official ICP iterations on {n_off} pairs: median {int(np.median(res_off['icp_iters']))}, "
                 f"max {int(res_off['icp_iters'].max())}; auction EMD / exact: mean "
                 f"{np.mean(res_off['emd_auction'] / res_off['emd_exact']):.4f}")

    def reference_pair(pred, gt, key):  # the previous pipeline: KD-tree ICP + KD-tree Chamfer
        p = P.normalize_cloud(P.subsample(pred, 1024, key=key))
        g = P.normalize_cloud(gt)
        p = P.icp_reference(p, g, max_iter=proto.icp_max_iter, tol=proto.icp_tol).aligned
        kdtree_chamfer(p, g)
        return P.emd(p, g, proto.emd_backend)

    n_ref = n_pairs // 4
    ref = median_time(lambda: [reference_pair(p, g, k) for p, g, k in zip(preds[:n_ref], gts[:n_ref], keys)], repeats)
    row("full protocol", "1 process, reference ICP+Chamfer", "throughput", n_ref / ref, "pairs/s")
    row("full protocol", "ours vs reference ICP+Chamfer", "speed-up (1 process)", (n_pairs // 2) / serial / (n_ref / ref), "x")

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
        tpar = median_time(par, repeats)
    finally:
        ev.__exit__(None, None, None)
    rate = n_pairs / tpar
    row("full protocol", "2 workers", "throughput", rate, "pairs/s")
    row("pool start-up + first 8 pairs", "2 workers (spawn)", "time", startup, "s")
    row("official test split (210,288 pairs)", "2 workers", "estimated time", OFFICIAL_TEST_PAIRS / rate / 3600, "h")
    notes.append(f"{n_pairs} pairs, median of {repeats} repeats; measured while other jobs load the 2 cores")
    return {"topic": "eval", "rows": rows, "notes": notes}


if __name__ == "__main__":
    print_result(run(quick="--quick" in sys.argv))
