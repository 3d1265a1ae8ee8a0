"""Earth mover's distance between equal-size point clouds: exact (evaluation) and approximate
(training).

Convention (docs/evaluation.md#the-lmnet-protocol-step-by-step): EMD(x, y) = min over one-to-one matchings
π of mean_i |x_i − y_π(i)|, the **mean Euclidean** (not squared) distance under the optimal matching,
raw units (not ×100).

- :func:`emd_exact` / :func:`emd_exact_matching`: exact optimum (equal to
  ``scipy.optimize.linear_sum_assignment`` on the Euclidean cost matrix up to float rounding).
  Algorithm: an ε-scaling auction (Bertsekas) on a float32 copy of the dense cost (SIMD bid
  scans) gives near-optimal dual prices and a matching; then, in float64, the duals are made
  feasible on all N² pairs, rows whose matched edge is not tight are unmatched and re-inserted by
  exact shortest augmenting paths (Hungarian/LSA-style, dense). The result is an optimal
  primal-dual pair. Numba kernels; falls back to ``linear_sum_assignment`` without numba.
- :func:`emd_approx`: differentiable training loss. The matching comes from the ε-scaling auction
  stopped at ε = ``rel_eps`` · LB, where LB = max(mean NN distance x→y, y→x) ≤ EMD; the auction's
  ε-complementary slackness bounds the result: EMD ≤ emd_approx ≤ EMD + ε ≤ (1 + rel_eps) · EMD.
  The gradient is that of the matched mean distance with the matching held fixed.

Backends (``backend=``): ``"numba"`` — the kernels above, on the CPU, pairs in parallel threads
(tensors on another device are copied to the host and the matching back); ``"torch"`` — the
batched auction of :mod:`lmnet.losses.auction` on the inputs' own device (integer-quantised costs:
the approximate bound is the same, the exact mode is optimal to within cmax·(N+1)·2^-46 on the
mean cost); ``"auto"`` — numba for numpy input and CPU tensors (faster there: see
``benchmarks/bench_losses.py``), torch for tensors on any other device (CUDA), so their data never
leaves the device.

Memory: numba — per worker thread one dense float64 N × N cost matrix plus, for the exact solver,
its float32 copy (12 MB at 1024, 48 MB at 2048); torch — see :mod:`lmnet.losses.auction` (measured:
docs/gpu.md#the-torch-auction-lmnetlossesauctionpy).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from lmnet.losses import _kernels_emd
from lmnet.losses import auction as _auction
from lmnet.losses.chamfer import safe_norm
from lmnet.losses.emd_numpy import exact_perm as _exact_perm

BACKENDS = ("auto", "numba", "torch")

#: first auction ε as a fraction of the largest cost; each phase divides ε by _EPS_FACTOR
_EPS_START_FRAC = 0.25
_EPS_FACTOR = 8.0


def _resolve_backend(backend: str, device: torch.device | None) -> str:
    """``"numba"`` or ``"torch"`` for inputs on ``device`` (None: numpy input)."""
    if backend not in BACKENDS:
        raise ValueError(f"emd: backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    return "numba" if device is None or device.type == "cpu" else "torch"


def _device_of(x) -> torch.device | None:
    return x.device if isinstance(x, torch.Tensor) else None


def _as_tensor_batch(x, y, who: str):
    """→ (xb (B,N,3), yb, unbatched) tensors on x's device (numpy becomes CPU float64); no copy
    to any other device, ever."""
    xt = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, np.float64))
    yt = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y, np.float64))
    if xt.dim() not in (2, 3) or xt.shape[-1] != 3 or xt.shape != yt.shape:
        raise ValueError(f"{who}: x and y must both be (N, 3) or (B, N, 3) with equal shapes, "
                         f"got {tuple(xt.shape)} and {tuple(yt.shape)}")
    if xt.device != yt.device:
        raise ValueError(f"{who}: x on {xt.device} but y on {yt.device}")
    if xt.shape[-2] == 0:
        raise ValueError(f"{who}: empty clouds {tuple(xt.shape)}")
    if not bool(torch.isfinite(xt).all() & torch.isfinite(yt).all()):
        raise ValueError(f"{who}: clouds contain NaN or inf")
    unbatched = xt.dim() == 2
    if unbatched:
        xt, yt = xt[None], yt[None]
    return xt.detach(), yt.detach(), unbatched


def _as_batch(x, y, who: str):
    """→ (xb (B,N,3) float64 numpy, yb, unbatched, is_tensor)."""
    is_tensor = isinstance(x, torch.Tensor)
    xn = x.detach().to("cpu", torch.float64).numpy() if is_tensor else np.asarray(x, np.float64)
    yn = (y.detach().to("cpu", torch.float64).numpy() if isinstance(y, torch.Tensor)
          else np.asarray(y, np.float64))
    if xn.ndim not in (2, 3) or xn.shape[-1] != 3 or xn.shape != yn.shape:
        raise ValueError(f"{who}: x and y must both be (N, 3) or (B, N, 3) with equal shapes, "
                         f"got {xn.shape} and {yn.shape}")
    if xn.shape[-2] == 0:
        raise ValueError(f"{who}: empty clouds {xn.shape}")
    if not (np.isfinite(xn).all() and np.isfinite(yn).all()):
        raise ValueError(f"{who}: clouds contain NaN or inf")
    unbatched = xn.ndim == 2
    if unbatched:
        xn, yn = xn[None], yn[None]
    return np.ascontiguousarray(xn), np.ascontiguousarray(yn), unbatched, is_tensor


def _n_workers(b: int) -> int:
    return max(1, min(b, os.cpu_count() or 1))


def _map(fn, b: int):
    if b == 1 or _n_workers(b) == 1:
        return [fn(k) for k in range(b)]
    with ThreadPoolExecutor(_n_workers(b)) as ex:  # numba kernels release the GIL
        return list(ex.map(fn, range(b)))




def _torch_exact_perm(x, y, who: str):
    xb, yb, unbatched = _as_tensor_batch(x, y, who)
    perm = _auction.assignment(xb, yb, "exact")
    return xb, yb, perm, unbatched


def emd_exact_matching(x, y, *, backend: str = "auto"):
    """Optimal one-to-one matching for ``x, y (N, 3)`` or ``(B, N, 3)`` (numpy or torch).

    Returns ``perm`` int64, ``(N,)`` or ``(B, N)``, numpy (for numpy input) or a tensor (on the
    inputs' device with the torch backend, else on the CPU), such that ``x[i]`` is matched to
    ``y[perm[i]]``; it minimises the summed Euclidean distance. With ties the optimum may not be
    unique; any optimal matching is returned. ``backend``: see the module docstring.
    """
    if _resolve_backend(backend, _device_of(x)) == "torch":
        _, _, perm, unbatched = _torch_exact_perm(x, y, "emd_exact_matching")
        perm = perm[0] if unbatched else perm
        return perm if isinstance(x, torch.Tensor) else perm.numpy()
    xb, yb, unbatched, is_tensor = _as_batch(x, y, "emd_exact_matching")
    perm = np.stack(_map(lambda k: _exact_perm(xb[k], yb[k]), xb.shape[0]))
    perm = perm[0] if unbatched else perm
    return torch.from_numpy(perm) if is_tensor else perm


def emd_exact(x, y, *, backend: str = "auto"):
    """Exact EMD: mean Euclidean distance under the optimal one-to-one matching (raw units).

    ``x, y``: ``(N, 3)`` or ``(B, N, 3)``, equal shapes, numpy arrays or torch tensors (any
    device; no gradient). Computed in float64. Returns float64: a 0-d value for ``(N, 3)``
    (numpy float64, or 0-d tensor), ``(B,)`` for batches — numpy in → numpy out, tensor in →
    float64 tensor out, on the inputs' device with the torch backend (the default for CUDA
    tensors), else on the CPU. Equals ``linear_sum_assignment(cdist(x, y))``'s mean cost to
    rounding (numba) or to within cmax·(N+1)·2^-46 (torch; see the module docstring).
    """
    if _resolve_backend(backend, _device_of(x)) == "torch":
        xb, yb, perm, unbatched = _torch_exact_perm(x, y, "emd_exact")
        x64, y64 = xb.to(torch.float64), yb.to(torch.float64)
        vals = safe_norm(x64 - torch.gather(y64, 1, perm.unsqueeze(-1).expand(-1, -1, 3))).mean(1)
        out = vals[0] if unbatched else vals
        if isinstance(x, torch.Tensor):
            return out
        return np.float64(out.item()) if unbatched else out.numpy()
    xb, yb, unbatched, is_tensor = _as_batch(x, y, "emd_exact")

    def one(k):
        p = _exact_perm(xb[k], yb[k])
        return np.linalg.norm(xb[k] - yb[k][p], axis=1).mean()

    vals = np.array(_map(one, xb.shape[0]), dtype=np.float64)
    out = vals[0] if unbatched else vals
    return torch.as_tensor(out, dtype=torch.float64) if is_tensor else np.float64(out) if unbatched else out


def _approx_perm(x: np.ndarray, y: np.ndarray, rel_eps: float) -> np.ndarray:
    n = x.shape[0]
    if not _kernels_emd.HAVE_NUMBA:
        return _exact_perm(x, y)
    c = _kernels_emd.dense_cost(x, y)
    cmax = float(c.max())
    if cmax == 0.0:
        return np.arange(n, dtype=np.int64)
    lb = max(float(c.min(axis=1).mean()), float(c.min(axis=0).mean()))  # ≤ EMD
    eps = rel_eps * lb if lb > 0 else 1e-12 * cmax
    col4row, _ = _kernels_emd.auction(c, eps, _EPS_START_FRAC * cmax, _EPS_FACTOR)
    return col4row


def emd_approx(x: torch.Tensor, y: torch.Tensor, *, reduction: str = "mean",
               rel_eps: float = 1e-2, backend: str = "auto") -> torch.Tensor:
    """Approximate, differentiable EMD for training: ``x, y (B, N, 3)`` tensors → loss.

    Per item: mean_i |x_i − y_π(i)| (Euclidean, raw units) for a near-optimal matching π from an
    ε-scaling auction, guaranteed ``EMD ≤ value ≤ (1 + rel_eps) · EMD`` (see module docstring;
    measured errors are far smaller). The gradient flows to both ``x`` and ``y`` through the
    matched distances with π held fixed (0 where a matched pair coincides). ``backend``:
    ``"auto"`` = numba (CPU, pairs in parallel threads) for CPU tensors, the torch auction on the
    inputs' device otherwise (see the module docstring); the bound holds for both.
    ``reduction``: ``"mean"`` over the batch, ``"sum"`` or ``"none"`` → ``(B,)``.
    """
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or t.dim() != 3 or t.shape[-1] != 3:
            raise ValueError(f"emd_approx: {name} must be a (B, N, 3) tensor, got "
                             f"{getattr(t, 'shape', type(t).__name__)}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"emd_approx: reduction {reduction!r} is not one of mean, sum, none")
    if not rel_eps > 0:
        raise ValueError(f"emd_approx: rel_eps must be > 0, got {rel_eps}")
    if _resolve_backend(backend, _device_of(x)) == "torch":
        xb, yb, _ = _as_tensor_batch(x, y, "emd_approx")
        idx = _auction.assignment(xb, yb, "approx", rel_eps)
    else:
        xb, yb, _, _ = _as_batch(x, y, "emd_approx")
        perm = np.stack(_map(lambda k: _approx_perm(xb[k], yb[k], rel_eps), xb.shape[0]))
        idx = torch.from_numpy(perm).to(y.device)
    y_m = torch.gather(y, 1, idx.unsqueeze(-1).expand(-1, -1, 3))
    per_item = safe_norm(x - y_m).mean(1)
    if reduction == "mean":
        return per_item.mean()
    if reduction == "sum":
        return per_item.sum()
    return per_item
