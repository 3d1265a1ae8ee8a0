"""Chamfer and EMD: ours vs the alternatives, side by side on the same inputs.

Chamfer: forward+backward time and peak extra memory for a batch of 32 clouds, N vs N points
(Euclidean convention), ours (``backend="auto"``) vs scipy cKDTree backend vs plain
``torch.cdist`` (brute, only where its B·N·N matrix fits) vs chamferdist / pykeops when installed.
Peak extra memory = peak process RSS during the call minus RSS just before it, sampled every
~1 ms by a psutil thread (so it counts torch, numpy and numba allocations alike).

EMD: exact ours vs ``scipy.optimize.linear_sum_assignment`` per pair at 256/1024/2048 points on
shape-like clouds (a chair-like surface vs a resample of it with 1 % noise, and at 1024 vs a
different chair — what evaluation sees), each pair timed back to back with both solvers (best of 3
at N <= 1024), times = median over the pairs, speed-up = median (and worst) of the per-pair ratios; approx ours: relative error vs exact and
fwd+bwd time for a training batch.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lmnet.losses.chamfer import chamfer_distance
from lmnet.losses.emd import emd_approx, emd_exact
from lmnet.losses.emd import emd_approx
from lmnet.losses import auction

try:
    from benchmarks._common import median_time, peak_rss_delta, print_result
except ImportError:  # run as a script: python benchmarks/bench_<topic>.py
    from _common import median_time, peak_rss_delta, print_result

def _box_surface(rng, n, lo, hi):
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    p = lo + rng.random((n, 3)) * (hi - lo)
    face = rng.integers(0, 6, n)
    ax = face // 2
    p[np.arange(n), ax] = np.where(face % 2 == 1, hi[ax], lo[ax])
    return p


def _chair(rng, n):
    parts = [([-.25, -.05, -.25], [.25, 0, .25]), ([-.25, 0, .2], [.25, .5, .25]),
             ([-.25, -.5, -.25], [-.2, -.05, -.2]), ([.2, -.5, -.25], [.25, -.05, -.2]),
             ([-.25, -.5, .2], [-.2, -.05, .25]), ([.2, -.5, .2], [.25, -.05, .25])]
    cnt = rng.multinomial(n, [0.35, 0.33, 0.08, 0.08, 0.08, 0.08])
    return np.concatenate([_box_surface(rng, c, lo, hi) for c, (lo, hi) in zip(cnt, parts)])


def _chamfer_impls():
    """name → fn(x, y) returning a scalar loss (Euclidean convention where the library allows)."""
    import torch


    impls = {
        "ours": lambda x, y: chamfer_distance(x, y),
        "ours-kdtree": lambda x, y: chamfer_distance(x, y, backend="kdtree"),
        "torch.cdist": lambda x, y: chamfer_distance(x, y, backend="brute"),
    }
    notes = []
    try:
        from chamferdist import ChamferDistance  # type: ignore

        cd = ChamferDistance()
        impls["chamferdist"] = lambda x, y: cd(x, y, bidirectional=True)  # squared, summed
        notes.append("chamferdist sums squared NN distances (its own convention); timing only")
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        notes.append(f"chamferdist not installed ({type(exc).__name__}); skipped")
    try:
        from pykeops.torch import LazyTensor  # type: ignore

        def keops(x, y):
            # KeOps has no autodiff through Min_Reduction: find the NN indices with argmin (no grad
            # needed), then gather so the Euclidean distances are differentiable in plain torch.
            import torch

            xi, yj = LazyTensor(x.detach()[:, :, None, :]), LazyTensor(y.detach()[:, None, :, :])
            d2 = ((xi - yj) ** 2).sum(-1)
            i_xy, i_yx = d2.argmin(dim=2).long(), d2.argmin(dim=1).long()   # (B, N, 1), (B, M, 1)
            nx = torch.gather(y, 1, i_xy.expand(-1, -1, 3))
            ny = torch.gather(x, 1, i_yx.expand(-1, -1, 3))
            return (x - nx).norm(dim=-1).mean() + (y - ny).norm(dim=-1).mean()

        impls["pykeops"] = keops
    except Exception as exc:  # noqa: BLE001
        notes.append(f"pykeops not installed ({type(exc).__name__}); skipped")
    del torch
    return impls, notes


def bench_chamfer(quick: bool, rows: list, notes: list) -> None:
    import torch

    impls, n2 = _chamfer_impls()
    notes.extend(n2)
    sizes = [1024, 2048] if quick else [1024, 2048, 8192, 16384]
    b = 32
    brute_max = 1024 if quick else 2048
    notes.append(f"torch.cdist brute only up to N={brute_max} (B·N·N matrices; 2048 already ~2.6 GB)")
    rng = np.random.default_rng(0)
    for n in sizes:
        x0 = torch.tensor(np.stack([_chair(rng, n) for _ in range(b)]), dtype=torch.float32)
        y0 = torch.tensor(np.stack([_chair(rng, n) + 0.01 * rng.normal(size=(n, 3))
                                    for _ in range(b)]), dtype=torch.float32)
        case = f"chamfer fwd+bwd B={b} N=M={n}"
        reps = 3 if (quick or n > 2048) else 7
        times = {}
        for name, fn in impls.items():
            if name == "torch.cdist" and n > brute_max:
                continue
            if name == "ours-kdtree" and n > 8192 and quick:
                continue

            def step(fn=fn):
                x = x0.clone().requires_grad_()
                y = y0.clone().requires_grad_()
                fn(x, y).backward()

            step()  # warm-up (numba JIT / cache load, allocator)
            t = median_time(step, reps)
            mem = peak_rss_delta(step)
            times[name] = t
            rows.append({"case": case, "impl": name, "metric": "time", "value": t, "unit": "s"})
            rows.append({"case": case, "impl": name, "metric": "peak extra RSS", "value": mem,
                         "unit": "MB"})
        for name, t in times.items():
            if name != "ours":
                rows.append({"case": case, "impl": f"ours vs {name}", "metric": "speed-up (time ratio)",
                             "value": t / times["ours"], "unit": "x"})


def bench_emd(quick: bool, rows: list, notes: list) -> None:
    import torch
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist


    rng = np.random.default_rng(1)

    def lsa(x, y):
        c = cdist(x, y)
        r, col = linear_sum_assignment(c)
        return c[r, col].mean()

    def noisy_resample(n):  # the GT cloud vs a noisy resample of the same shape
        return _chair(rng, n), _chair(rng, n) + 0.01 * rng.normal(size=(n, 3))

    def other_chair(n):  # a different shape of the same category (proportions, point counts)
        scale = 1.0 + 0.15 * rng.uniform(-1, 1, 3)
        return _chair(rng, n), _chair(rng, n) * scale + 0.005 * rng.normal(size=(n, 3))

    kinds = {"chair vs noisy resample": noisy_resample, "chair vs other chair": other_chair}
    sizes = [256, 1024] if quick else [256, 1024, 2048]
    emd_exact(*noisy_resample(64))  # warm-up (numba cache load)
    for n in sizes:
        for kind, make in kinds.items():
            if n != 1024 and kind != "chair vs noisy resample":
                continue
            n_pairs = 3 if quick else 7
            reps = 3 if n <= 1024 else 1  # per pair: best of `reps` (robust to preemption by other jobs)
            t_ours, t_lsa, ratios, diffs = [], [], [], []
            for _ in range(n_pairs):
                x, y = make(n)
                to, tl = [], []
                for _ in range(reps):  # the same pair, both solvers back to back
                    t = time.perf_counter()
                    v = float(emd_exact(x, y))
                    to.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    ref = lsa(x, y)
                    tl.append(time.perf_counter() - t)
                t_ours.append(min(to))
                t_lsa.append(min(tl))
                ratios.append(t_lsa[-1] / t_ours[-1])
                diffs.append(abs(v - ref))
            case = f"exact EMD per pair N={n} ({kind})"
            rows.append({"case": case, "impl": "ours", "metric": "time", "value": statistics.median(t_ours), "unit": "s"})
            rows.append({"case": case, "impl": "scipy LSA", "metric": "time", "value": statistics.median(t_lsa), "unit": "s"})
            rows.append({"case": case, "impl": "ours vs scipy LSA", "metric": "speed-up (median per pair)",
                         "value": statistics.median(ratios), "unit": "x"})
            rows.append({"case": case, "impl": "ours vs scipy LSA", "metric": "speed-up (worst pair)",
                         "value": min(ratios), "unit": "x"})
            rows.append({"case": case, "impl": "ours", "metric": "max |ours - LSA|", "value": max(diffs), "unit": "raw"})

    # approx: accuracy on a few pairs of different kinds, and training-batch time
    n = 2048
    chair = _chair(rng, n)
    kinds = {
        "noisy resample": (chair, _chair(rng, n) + 0.01 * rng.normal(size=(n, 3))),
        "deformed copy": (chair, (chair + 0.03 * np.sin(3 * chair[:, [1, 2, 0]] + 1.0))[rng.permutation(n)]),
        "sphere vs chair": (0.5 * (lambda p: p / np.linalg.norm(p, axis=1, keepdims=True))(rng.normal(size=(n, 3))), chair),
    }
    exact = {kind: float(emd_exact(x, y)) for kind, (x, y) in kinds.items()}
    for kind, (x, y) in kinds.items():
        ap = float(emd_approx(torch.as_tensor(x[None]), torch.as_tensor(y[None])))
        rows.append({"case": f"approx EMD rel. error N={n} ({kind})", "impl": "ours",
                     "metric": "approx/exact - 1", "value": ap / exact[kind] - 1, "unit": "ratio"})
    b = 4 if quick else 32
    x0 = torch.tensor(np.stack([_chair(rng, n) for _ in range(b)]), dtype=torch.float32)
    y0 = torch.tensor(np.stack([_chair(rng, n) + 0.01 * rng.normal(size=(n, 3)) for _ in range(b)]),
                      dtype=torch.float32)

    def step():
        x = x0.clone().requires_grad_()
        emd_approx(x, y0).backward()

    t = median_time(step, 1 if not quick else 2)
    rows.append({"case": f"approx EMD fwd+bwd B={b} N={n}", "impl": "ours", "metric": "time",
                 "value": t, "unit": "s"})
    bench_sinkhorn(quick, rows, notes, kinds, exact, x0, y0, b)


def bench_sinkhorn(quick: bool, rows: list, notes: list, kinds: dict, exact: dict, x0, y0, b: int) -> None:
    """geomloss Sinkhorn (p = 1, i.e. the Euclidean transport cost = our EMD, uniform weights) on the
    same pairs as the approximate EMD: relative error against their exact EMD ``exact[kind]``
    (computed once by the caller), and fwd+bwd time against ours
    on a batch of the same clouds (``b_s`` of the ``b`` training pairs: a full batch took 27–135 s)."""
    import torch


    try:
        import geomloss  # type: ignore
        from geomloss import SamplesLoss  # type: ignore
    except ImportError as exc:
        notes.append(f"geomloss not installed ({type(exc).__name__}); Sinkhorn comparison skipped")
        return
    # blur = the entropic ε for p = 1 (in cloud units; the clouds span ~1); scaling = ε-annealing ratio.
    settings = {"blur 0.01, scaling 0.5 (default-like)": {"blur": 0.01, "scaling": 0.5},
                "blur 0.002, scaling 0.9 (accurate)": {"blur": 0.002, "scaling": 0.9}}
    for label, kw in settings.items():
        for debias in (True, False):
            loss = SamplesLoss("sinkhorn", p=1, debias=debias, backend="tensorized", **kw)
            name = f"geomloss Sinkhorn {label}, debias={debias}"
            for kind, (x, y) in kinds.items():
                v = float(loss(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)))
                rows.append({"case": f"approx EMD rel. error N={x.shape[0]} ({kind})", "impl": name,
                             "metric": "approx/exact - 1", "value": v / exact[kind] - 1, "unit": "ratio"})
    b_s = 2 if quick else 4
    xs, ys = x0[:b_s], y0[:b_s]

    def ours():
        x = xs.clone().requires_grad_()
        emd_approx(x, ys).backward()

    case = f"approx EMD fwd+bwd B={b_s} N={xs.shape[1]} (same clouds)"
    rows.append({"case": case, "impl": "ours", "metric": "time", "value": median_time(ours, 2), "unit": "s"})
    for label, kw in settings.items():
        loss = SamplesLoss("sinkhorn", p=1, debias=True, backend="tensorized", **kw)

        def sinkhorn(loss=loss):
            x = xs.clone().requires_grad_()
            loss(x, ys).sum().backward()

        rows.append({"case": case, "impl": f"geomloss Sinkhorn {label}, debias=True", "metric": "time",
                     "value": median_time(sinkhorn, 1 if not quick else 2), "unit": "s"})
    notes.append(f"geomloss {geomloss.__version__} with its tensorized backend "
                 f"(O(N²) memory; its KeOps backend not used); Sinkhorn timed on {b_s} of the {b} training pairs")


def bench_emd_torch_cpu(quick: bool, rows: list, notes: list) -> None:
    """The device-agnostic torch auction (``backend="torch"``, what CUDA tensors use) against the
    numba kernels (``backend="numba"``, the CPU default) on the CPU, same pairs, short runs: this
    is the measurement behind keeping numba as the CPU default. Also the auction's round count
    (each round is a few dozen small kernels: on a GPU its cost is mostly launch overhead)."""
    import torch


    rng = np.random.default_rng(2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many tiny ops: OpenMP threads only add overhead (measured 3-4x)
    try:
        for n, b in ([(256, 2)] if quick else [(256, 4), (1024, 2)]):
            x = torch.tensor(np.stack([_chair(rng, n) for _ in range(b)]))
            y = torch.tensor(np.stack([_chair(rng, n) + 0.01 * rng.normal(size=(n, 3)) for _ in range(b)]))
            for mode in ("exact", "approx"):
                case = f"{mode} EMD B={b} N={n} on CPU (chair vs noisy resample)"
                if mode == "exact":
                    fns = {"ours: numba": lambda: emd_exact(x, y, backend="numba"),
                           "torch auction": lambda: emd_exact(x, y, backend="torch")}
                else:
                    fns = {"ours: numba": lambda: emd_approx(x.clone().requires_grad_(), y,
                                                              backend="numba").backward(),
                           "torch auction": lambda: emd_approx(x.clone().requires_grad_(), y,
                                                                backend="torch").backward()}
                for impl, fn in fns.items():
                    fn()  # warm-up
                    rows.append({"case": case, "impl": impl, "metric": "time",
                                 "value": median_time(fn, 1 if n > 256 else 3), "unit": "s"})
                a, e0, e1 = auction.quantise(auction.pairwise_cost(x, y), mode)
                rounds = auction.auction(a, e0, e1, auction._EPS_FACTOR[mode])[2]
                rows.append({"case": case, "impl": "torch auction", "metric": "bidding rounds",
                             "value": rounds, "unit": "rounds"})
        # peak memory of the torch auction at the training size: the cost matrix and the first round
        # (every row bids once: the largest temporaries; later rounds have fewer bidders)
        b, n = (8, 2048) if quick else (32, 2048)
        x = torch.rand(b, n, 3, dtype=torch.float64) - 0.5
        y = x + 0.02 * torch.randn(b, n, 3, dtype=torch.float64)

        def first_round():
            a, e0, e1 = auction.quantise(auction.pairwise_cost(x, y), "approx")
            with contextlib.suppress(RuntimeError):  # stops after one round by design
                auction.auction(a, e0, e1, auction._EPS_FACTOR["approx"], max_rounds=1)

        rows.append({"case": f"torch auction B={b} N={n}: cost + first bidding round",
                     "impl": "torch auction", "metric": "peak extra RSS",
                     "value": peak_rss_delta(first_round), "unit": "MB"})
        rows.append({"case": f"torch auction B={b} N={n}: cost + first bidding round",
                     "impl": "torch auction", "metric": "cost matrix B*N*N*8",
                     "value": b * n * n * 8 / 2**20, "unit": "MB"})
    finally:
        torch.set_num_threads(threads)
    notes.append("torch auction on CPU timed with torch.set_num_threads(1); numba with its usual "
                 "threads (pairs in parallel); measured on a shared, busy 2-core machine")


def run(quick: bool = False) -> dict:
    rows: list = []
    notes: list = [
        "Chamfer value: sum of the two mean Euclidean NN distances, raw units (not ×100)",
        "EMD: mean Euclidean distance under the optimal matching, raw units",
        "peak extra memory: psutil RSS sampled every ~1 ms during one call, minus RSS before it",
        "chamfer 'ours' = backend auto on CPU = grid: numba exact NN + values and analytic gradients "
        "in a custom autograd.Function; every chamfer time includes cloning the inputs",
    ]
    bench_chamfer(quick, rows, notes)
    bench_emd(quick, rows, notes)
    bench_emd_torch_cpu(quick, rows, notes)
    return {"topic": "losses", "rows": rows, "notes": notes}


if __name__ == "__main__":
    print_result(run(quick="--quick" in sys.argv))
