"""GPU figures, side by side in one run (CUDA only; elsewhere it says so and measures nothing).

``python -m benchmarks --only gpu`` (``--quick`` for small sizes) on a machine with CUDA measures:

- **Chamfer** fwd+bwd at 32 × 2048 and 32 × 16384: ours (``backend="chunked"``, the CUDA default:
  ``torch.cdist`` over row blocks + argmin) vs a KNN search on squared distances by matmul (no
  square root per entry) and, when installed, pykeops / pytorch3d ``knn_points``. It prints
  which is fastest: the recommendation for the CUDA default.
- **EMD**: the torch auction on the device (``backend="torch"``, the CUDA default) vs the numba
  kernels through the host (``backend="numba"``): approx fwd+bwd at 32 × 2048, exact at
  32 × 1024; the auction's peak GPU memory and bidding rounds.
- **Training throughput** (samples/s): the autoencoder step and the image-encoder step of
  ``bench_train``, fp32 and AMP (float16 + GradScaler), the image step also channels_last.
- **DataLoader** items/s with 2, 8 and 16 workers from PNGs and from the memmap cache (fake
  R2N2-like data written by ``bench_data``), batch 32.
- **Evaluation** pairs/s: the CPU protocol with one process per core, and the exact EMD of
  1024-point pairs on the GPU in batches of 32.
- **One epoch of the official split** (35,022 shapes × 24 views), computed from the measured image
  step and DataLoader rates (the slower one bounds it).

Besides the host report, the run writes ``gpu.json`` / ``gpu.md`` next to it.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lmnet.losses.chamfer import chamfer_distance
from lmnet.losses.chamfer import safe_norm
from lmnet.losses import auction
from lmnet.losses.emd import emd_approx, emd_exact
from lmnet.train.precision import resolve_precision
from lmnet.data.dataset import ShapeNetDataset
from lmnet.eval.parallel import PairEvaluator
from lmnet.eval.protocol import Protocol
from lmnet.losses.emd import emd_exact

OFFICIAL_SAMPLES = 35022 * 24

FULL = {"chamfer": [(32, 2048), (32, 16384)], "emd_approx": (32, 2048), "emd_exact": (32, 1024),
        "train_batch": 32, "train_steps": 20, "repeats": 3, "data_models": 48, "workers": (2, 8, 16),
        "eval_pairs": 192, "emd_repeats": 2, "eval_workers": None, "train_warmup": 3}
QUICK = {"chamfer": [(32, 2048), (8, 16384)], "emd_approx": (8, 2048), "emd_exact": (8, 1024),
         "train_batch": 32, "train_steps": 5, "repeats": 2, "data_models": 8, "workers": (2, 8, 16),
         "eval_pairs": 64, "emd_repeats": 1, "eval_workers": None, "train_warmup": 2}
_CHUNK = 1 << 24  # distance entries per block of the matmul KNN (as chamfer's chunked backend)


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call, synchronising the device."""
    fn()
    _sync(device)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _peak_mb(fn, device) -> float | None:
    """Peak extra device memory of one ``fn()`` call in MiB (CUDA only, else None)."""
    import torch

    if device.type != "cuda":
        return None
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    _sync(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def _knn_mm(x, y):
    """Index of the nearest ``y`` for every ``x`` from squared distances |y|² − 2x·y (the |x|² term
    does not change the argmin), one matmul per row block: ``x (B, N, 3)``, ``y (B, M, 3)``."""
    import torch

    b, n, _ = x.shape
    m = y.shape[1]
    yy = (y * y).sum(-1)[:, None, :]
    rows = max(1, _CHUNK // max(1, b * m))
    out = torch.empty(b, n, dtype=torch.long, device=x.device)
    with torch.no_grad():
        for s in range(0, n, rows):
            out[:, s:s + rows] = torch.baddbmm(yy, x[:, s:s + rows], y.transpose(1, 2), alpha=-2.0).argmin(2)
    return out


def _chamfer_impls():
    import torch


    def from_idx(x, y, ixy, iyx):
        g = lambda p, i: torch.gather(p, 1, i.unsqueeze(-1).expand(-1, -1, 3))  # noqa: E731
        return (safe_norm(x - g(y, ixy)).mean(1) + safe_norm(y - g(x, iyx)).mean(1)).mean()

    impls = {"ours: chunked cdist": lambda x, y: chamfer_distance(x, y, backend="chunked"),
             "knn: matmul sq. dist": lambda x, y: from_idx(x, y, _knn_mm(x, y), _knn_mm(y, x))}
    notes = []
    try:
        from pytorch3d.ops import knn_points  # type: ignore

        def p3d(x, y):
            ixy = knn_points(x.detach(), y.detach(), K=1).idx[..., 0]
            iyx = knn_points(y.detach(), x.detach(), K=1).idx[..., 0]
            return from_idx(x, y, ixy, iyx)

        impls["knn: pytorch3d"] = p3d
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        notes.append(f"pytorch3d not installed ({type(exc).__name__}): its knn_points skipped")
    try:
        from pykeops.torch import LazyTensor  # type: ignore

        def keops(x, y):
            d2 = ((LazyTensor(x.detach()[:, :, None, :]) - LazyTensor(y.detach()[:, None, :, :])) ** 2).sum(-1)
            return from_idx(x, y, d2.argmin(dim=2).long()[..., 0], d2.argmin(dim=1).long()[..., 0])

        impls["knn: pykeops"] = keops
    except Exception as exc:  # noqa: BLE001
        notes.append(f"pykeops not installed ({type(exc).__name__}): skipped")
    return impls, notes


def bench_chamfer(device, cfg, rows, notes):
    import torch

    impls, more = _chamfer_impls()
    notes += more
    g = torch.Generator().manual_seed(0)
    for b, n in cfg["chamfer"]:
        x0 = (torch.rand(b, n, 3, generator=g) - 0.5).to(device)
        y0 = (x0.cpu() + 0.01 * torch.randn(b, n, 3, generator=g)).to(device)
        case = f"chamfer fwd+bwd B={b} N=M={n}"
        times = {}
        ref = None
        for name, fn in impls.items():
            def step(fn=fn):
                x = x0.clone().requires_grad_()
                fn(x, y0).backward()
                return x.grad

            grad = step()
            ref = grad if ref is None else ref
            agree = float((grad - ref).abs().max())
            times[name] = _timed(step, device, cfg["repeats"])
            rows.append({"case": case, "impl": name, "metric": "time", "value": times[name], "unit": "s"})
            peak = _peak_mb(step, device)
            if peak is not None:
                rows.append({"case": case, "impl": name, "metric": "peak extra memory", "value": peak, "unit": "MB"})
            rows.append({"case": case, "impl": name, "metric": "max |grad - ours|", "value": agree, "unit": "raw"})
        best = min(times, key=times.get)
        notes.append(f"Chamfer {case}: fastest is '{best}' ({times[best]:.4g} s)"
                     + ("" if best.startswith("ours") else
                        " -> recommend making it the CUDA default (today: chunked cdist)"))


def bench_emd(device, cfg, rows, notes):
    import torch


    g = torch.Generator().manual_seed(1)

    def pair(b, n):
        x = torch.rand(b, n, 3, generator=g) - 0.5
        return x.to(device), (x + 0.02 * torch.randn(b, n, 3, generator=g)).to(device)

    b, n = cfg["emd_approx"]
    x0, y0 = pair(b, n)
    case = f"approx EMD fwd+bwd B={b} N={n}"
    for impl, be in (("ours: torch auction on device", "torch"), ("numba via host", "numba")):
        def step(be=be):
            x = x0.clone().requires_grad_()
            emd_approx(x, y0, backend=be).backward()

        rows.append({"case": case, "impl": impl, "metric": "time",
                     "value": _timed(step, device, cfg["emd_repeats"]), "unit": "s"})
        if be == "torch":
            peak = _peak_mb(step, device)
            if peak is not None:
                rows.append({"case": case, "impl": impl, "metric": "peak extra memory", "value": peak, "unit": "MB"})
            a, e0, e1 = auction.quantise(auction.pairwise_cost(x0, y0), "approx")
            rows.append({"case": case, "impl": impl, "metric": "bidding rounds",
                         "value": auction.auction(a, e0, e1, auction._EPS_FACTOR["approx"])[2], "unit": "rounds"})
            del a
    b, n = cfg["emd_exact"]
    x0, y0 = pair(b, n)
    case = f"exact EMD B={b} N={n}"
    for impl, be in (("ours: torch auction on device", "torch"), ("numba via host", "numba")):
        t = _timed(lambda be=be: emd_exact(x0, y0, backend=be), device, cfg["emd_repeats"])
        rows.append({"case": case, "impl": impl, "metric": "time", "value": t, "unit": "s"})
        rows.append({"case": case, "impl": impl, "metric": "pairs/s", "value": b / t, "unit": "1/s"})
    for c in {r["case"] for r in rows if "EMD" in r["case"]}:
        t = {r["impl"]: r["value"] for r in rows if r["case"] == c and r["metric"] == "time"}
        if len(t) == 2:
            best = min(t, key=t.get)
            notes.append(f"EMD {c}: fastest is '{best}' ({t[best]:.4g} s vs {max(t.values()):.4g} s)"
                         + ("" if best.startswith("ours") else
                            " -> recommend backend='numba' (host) as the CUDA default"))
    diff = float((emd_exact(x0, y0, backend="torch").cpu() - emd_exact(x0, y0, backend="numba")).abs().max())
    rows.append({"case": case, "impl": "ours: torch auction on device", "metric": "max |torch - numba|",
                 "value": diff, "unit": "raw"})
    notes.append(f"EMD numba via host uses {os.cpu_count()} CPU cores (pairs in threads); if it beats "
                 "the device auction, pass backend='numba' (or make it the CUDA default)")


def bench_train(device, cfg, rows, notes):
    from benchmarks import bench_train as T


    b, steps = cfg["train_batch"], cfg["train_steps"]
    amp = resolve_precision("auto", device).autocast_dtype  # what training with amp='auto' uses here
    variants = [("ae_step", "fp32", lambda: T._ae_step(device, b, False)),
                ("ae_step", "amp", lambda: T._ae_step(device, b, True)),
                ("image_step", "fp32", lambda: T._image_step(device, b, None)),
                ("image_step", "amp", lambda: T._image_step(device, b, amp)),
                ("image_step", "fp32 channels_last", lambda: T._image_step(device, b, None, channels_last=True)),
                ("image_step", "amp channels_last", lambda: T._image_step(device, b, amp, channels_last=True))]
    if device.type != "cuda":  # amp in bench_train is CUDA's float16 + GradScaler
        variants = [v for v in variants if "amp" not in v[1]]
    rates = {}
    for case, impl, make in variants:
        rate = T._time_steps(make(), device, steps, cfg["repeats"], warmup=cfg["train_warmup"]) * b
        rates[(case, impl)] = rate
        rows.append({"case": f"{case} B={b}", "impl": impl, "metric": "samples/s", "value": rate, "unit": "1/s"})
    return max(r for (c, _), r in rates.items() if c == "image_step")


def bench_data(cfg, rows, notes):
    from benchmarks import bench_data as D

    synsets = ["02691156", "03001627"]
    best = 0.0
    with tempfile.TemporaryDirectory(prefix="lmnet-bench-gpu-") as tmp:
        root = Path(tmp) / "data"
        D._write_fake(root, synsets, cfg["data_models"])
        n_items = len(synsets) * cfg["data_models"] * 24
        sets = (("png decode every time", ShapeNetDataset(root, image_cache=False)),
                ("ours: memmap cache", ShapeNetDataset(root, image_cache=Path(tmp) / "cache")))
        for workers in cfg["workers"]:
            for impl, ds in sets:
                rate = D._items_per_s(ds, workers, cfg["repeats"])
                best = max(best, rate)
                rows.append({"case": f"DataLoader {n_items} items, batch 32, num_workers={workers}",
                             "impl": impl, "metric": "throughput", "value": rate, "unit": "items/s"})
    notes.append(f"DataLoader: fake R2N2-like PNGs ({n_items} views), second epoch of a persistent loader; "
                 f"{os.cpu_count()} CPU cores")
    return best


def bench_eval(device, cfg, rows, notes):
    from benchmarks.bench_eval import make_pairs

    import torch

    n = cfg["eval_pairs"]
    preds, gts = make_pairs(n)
    keys = [f"p{i}" for i in range(n)]
    workers = cfg["eval_workers"] or max(2, os.cpu_count() or 2)
    with PairEvaluator(Protocol(), workers=workers, chunksize=4) as ev:
        ev.submit(preds[:2 * workers], gts[:2 * workers], keys[:2 * workers])  # start the workers
        ev.results()
        ev._done.clear()
        t = time.perf_counter()
        ev.submit(preds, gts, keys)
        ev.results()
        rate = n / (time.perf_counter() - t)
    rows.append({"case": f"eval full protocol, {n} pairs", "impl": f"CPU, {workers} worker process(es)",
                 "metric": "pairs/s", "value": rate, "unit": "1/s"})
    rng = np.random.default_rng(0)
    k = min(32, n)
    sub = np.stack([p[rng.choice(len(p), 1024, replace=False)] for p in preds[:k]])
    x, y = torch.as_tensor(sub, device=device), torch.as_tensor(np.stack(gts[:k]), device=device)
    t = _timed(lambda: emd_exact(x, y), device, 1)
    rows.append({"case": f"eval exact EMD only, {k} pairs of 1024", "impl": f"emd_exact on {device.type} (auto)",
                 "metric": "pairs/s", "value": k / t, "unit": "1/s"})


def measure(device, cfg) -> tuple[list, list]:
    """Every section on ``device``; a failing section is noted and the others still run."""
    rows, notes = [], []
    rates = {}
    sections = [("chamfer", lambda: bench_chamfer(device, cfg, rows, notes)),
                ("emd", lambda: bench_emd(device, cfg, rows, notes)),
                ("train", lambda: rates.__setitem__("train", bench_train(device, cfg, rows, notes))),
                ("data", lambda: rates.__setitem__("data", bench_data(cfg, rows, notes))),
                ("eval", lambda: bench_eval(device, cfg, rows, notes))]
    for name, fn in sections:
        print(f"   gpu: {name}", flush=True)
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - reported, the other sections still run
            notes.append(f"section {name} failed: {type(exc).__name__}: {exc}")
    if "train" in rates and "data" in rates:
        rate = min(rates["train"], rates["data"])
        rows.append({"case": "one epoch, official split (35,022 shapes x 24 views)",
                     "impl": "image step, bounded by the DataLoader", "metric": "estimated time",
                     "value": OFFICIAL_SAMPLES / rate / 3600, "unit": "h"})
        notes.append(f"epoch estimate = {OFFICIAL_SAMPLES} samples / min(best image-step rate "
                     f"{rates['train']:.0f}, best DataLoader rate {rates['data']:.0f}) samples/s")
    return rows, notes


def run(quick: bool = False) -> dict:
    import torch

    if not torch.cuda.is_available():
        msg = ("no CUDA device here: nothing measured. Run `python -m benchmarks --only gpu` (or "
               "`bash benchmarks/gpu_check.sh`) on a machine with a GPU")
        return {"topic": "gpu", "rows": [], "notes": [msg], "skipped": True}
    device = torch.device("cuda")
    rows, notes = measure(device, QUICK if quick else FULL)
    notes.insert(0, f"GPU: {torch.cuda.get_device_name(device)}; torch {torch.__version__}, "
                    f"CUDA {torch.version.cuda}")
    return {"topic": "gpu", "rows": rows, "notes": notes, "own_report": "gpu"}


if __name__ == "__main__":
    from benchmarks._common import print_result

    print_result(run(quick="--quick" in sys.argv))
