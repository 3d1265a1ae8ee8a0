"""Chamfer distance and exact nearest neighbours with exact gradients and O(B·(N+M)) memory.

Convention (the paper's; docs/losses.md): for one item

    CD(x, y) = w0 · mean_i d(x_i, Y) + w1 · mean_j d(y_j, X)

with ``d`` the **Euclidean** (square-rooted) nearest-neighbour distance, a **sum** of the two
directional means (not their average), raw units (not ×100). ``squared=True`` gives the
PyTorch3D-style number (squared NN distances) instead — a different quantity.

How it works: nearest-neighbour indices are found without autograd by a backend; the gradient is
the exact gradient of the loss with the neighbour assignment held fixed (what cdist+min gives).
At d = 0 the Euclidean gradient is taken as 0 (no NaN). The ``"grid"`` backend computes values and
analytic gradients inside numba (a custom ``autograd.Function``: no torch kernels at all, so no
OpenMP fork/join, in the input dtype); the others recompute the matched distances from gathered
points with autograd.

Backends (``backend=``):
- ``"grid"``   CPU, numba uniform-grid exact NN (default on CPU when numba is installed), items and
  directions spread over a persistent pool of ``torch.get_num_threads()`` Python threads running
  GIL-free serial kernels;
- ``"kdtree"`` CPU, ``scipy.spatial.cKDTree`` with ``workers=-1`` (default without numba);
- ``"chunked"`` any device, torch ``cdist`` over row blocks, memory O(B · chunk · M)
  (default on CUDA);
- ``"brute"``  plain full ``torch.cdist`` + min, memory O(B·N·M): the reference for tests.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from lmnet.losses import _kernels_nn

BACKENDS = ("auto", "grid", "kdtree", "chunked", "brute")
REDUCTIONS = ("mean", "sum", "none")

#: grid cells per reference point (tuned on 32 × 2048 clouds: docs/results.md#kernel-tuning)
_GRID_CELLS_PER_POINT = 1.0
#: budget for one block of the chunked backend, in distance entries (~64 MB of float32)
_CHUNK_ENTRIES = 1 << 24


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"chamfer: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 3 or t.shape[-1] != 3:
            raise ValueError(f"chamfer: {name} must have shape (B, N, 3), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"chamfer: {name} must be floating point, got {t.dtype}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"chamfer: batch sizes differ: x {tuple(x.shape)} vs y {tuple(y.shape)}")
    if x.shape[1] == 0 or y.shape[1] == 0:
        raise ValueError(f"chamfer: empty cloud: x {tuple(x.shape)}, y {tuple(y.shape)}")
    if x.device != y.device:
        raise ValueError(f"chamfer: x on {x.device} but y on {y.device}")


def _resolve_backend(backend: str, device: torch.device) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"chamfer: backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if device.type != "cpu":
            return "chunked"
        return "grid" if _kernels_nn.HAVE_NUMBA else "kdtree"
    if backend in ("grid", "kdtree") and device.type != "cpu":
        raise ValueError(f"chamfer: backend {backend!r} runs on CPU only, inputs are on {device}")
    if backend == "grid" and not _kernels_nn.HAVE_NUMBA:
        raise ValueError("chamfer: backend 'grid' needs numba (pip install numba); use 'kdtree'")
    return backend


def _np_native(t: torch.Tensor, dtype=None) -> np.ndarray:
    """Contiguous numpy view/copy of a CPU tensor in ``dtype`` (default: its own float32/64 dtype;
    float16/bfloat16 become float32). Float32↔64 conversions happen in numpy (single-threaded),
    not as torch kernels."""
    t = t.detach()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()  # numpy has no bfloat16
    a = t.numpy()
    want = dtype or (a.dtype if a.dtype in (np.float32, np.float64) else np.float32)
    return np.ascontiguousarray(a, dtype=want)


def _nn_idx_cpu(x: torch.Tensor, y: torch.Tensor, backend: str, both: bool):
    """Indices (B, N) of y nearest each x (and (B, M) of x nearest each y when ``both``)."""
    dt = np.result_type(_np_native(x[:0]).dtype, _np_native(y[:0]).dtype)
    xn, yn = _np_native(x, dt), _np_native(y, dt)
    if backend == "grid":
        ixy, iyx = _grid_nn(xn, yn, both)
        return torch.from_numpy(ixy), (torch.from_numpy(iyx) if both else None)
    from scipy.spatial import cKDTree

    b = xn.shape[0]
    ixy = np.empty(xn.shape[:2], np.int64)
    iyx = np.empty(yn.shape[:2], np.int64) if both else None
    for k in range(b):
        ixy[k] = cKDTree(yn[k]).query(xn[k], workers=-1)[1]
        if both:
            iyx[k] = cKDTree(xn[k]).query(yn[k], workers=-1)[1]
    return torch.from_numpy(ixy), (torch.from_numpy(iyx) if both else None)


_POOL: ThreadPoolExecutor | None = None
_POOL_KEY: tuple[int, int] | None = None


def _n_threads() -> int:
    return max(1, min(os.cpu_count() or 1, torch.get_num_threads()))


def _run_jobs(jobs) -> None:
    """Run the zero-argument callables ``jobs`` (GIL-free numba calls) on a persistent thread pool.

    Python threads rather than numba's parallel loops: numba's OpenMP pool next to torch's OpenMP
    workers oversubscribes the cores and was several times slower inside a training step. The pool
    is re-created after a fork (its threads do not exist in the child) or a thread-count change.
    """
    global _POOL, _POOL_KEY
    workers = _n_threads()
    if workers == 1 or len(jobs) == 1:
        for job in jobs:
            job()
        return
    key = (os.getpid(), workers)
    if _POOL is None or _POOL_KEY != key:
        _POOL = ThreadPoolExecutor(workers, thread_name_prefix="lmnet-nn")
        _POOL_KEY = key
    for fut in [_POOL.submit(job) for job in jobs]:
        fut.result()


def _grid_nn(xn: np.ndarray, yn: np.ndarray, both: bool):
    """Exact NN by the numba grid, ``xn (B, N, 3)``, ``yn (B, M, 3)`` (same dtype) →
    ``(ixy (B, N), iyx (B, M) or None)`` int64. Work is cut into ~4 jobs per thread (chunks of
    items per direction, or of query points for a single large item) for load balance."""
    b, n, _ = xn.shape
    m = yn.shape[1]
    ixy, dxy = np.empty((b, n), np.int64), np.empty((b, n))
    iyx, dyx = (np.empty((b, m), np.int64), np.empty((b, m))) if both else (None, None)
    workers = _n_threads()
    cpp = _GRID_CELLS_PER_POINT
    jobs = []

    def job(q, r, io, do):
        return lambda: _kernels_nn.grid_nn_serial(q, r, cpp, io, do)

    dirs = [(xn, yn, ixy, dxy)] + ([(yn, xn, iyx, dyx)] if both else [])
    if workers > 1 and b * len(dirs) < 2 * workers:  # few items: split the query points
        for q, r, io, do in dirs:
            cuts = np.linspace(0, q.shape[1], 2 * workers + 1).astype(int)
            for k in range(b):
                for a, z in zip(cuts[:-1], cuts[1:]):
                    if z > a:
                        jobs.append(job(q[k:k + 1, a:z], r[k:k + 1], io[k:k + 1, a:z], do[k:k + 1, a:z]))
    else:
        step = max(1, -(-b * len(dirs) // (4 * workers)))
        for q, r, io, do in dirs:
            for s0 in range(0, b, step):
                s1 = min(b, s0 + step)
                jobs.append(job(q[s0:s1], r[s0:s1], io[s0:s1], do[s0:s1]))
    _run_jobs(jobs)
    return ixy, iyx


class _GridChamfer(torch.autograd.Function):
    """Per-item Chamfer values ``(B,)`` with analytic gradients, all in numba (see
    :func:`lmnet.losses._kernels_nn.chamfer_value_grad`); CPU tensors only."""

    @staticmethod
    def forward(ctx, x, y, squared: bool, w0: float, w1: float):
        dt = np.result_type(_np_native(x[:0]).dtype, _np_native(y[:0]).dtype)
        xn, yn = _np_native(x, dt), _np_native(y, dt)
        ixy, iyx = _grid_nn(xn, yn, True)
        want = bool(ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
        per = np.empty(xn.shape[0])
        gx = np.empty(xn.shape, dt) if want else np.empty((0, 0, 3), dt)
        gy = np.empty(yn.shape, dt) if want else np.empty((0, 0, 3), dt)
        _kernels_nn.chamfer_value_grad(xn, yn, ixy, iyx, bool(squared), float(w0), float(w1), want,
                                    per, gx, gy)
        ctx.grads = (gx, gy) if want else None
        ctx.dtypes = (x.dtype, y.dtype)
        return torch.from_numpy(per.astype(dt))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        gx, gy = ctx.grads
        g = _np_native(grad_out, gx.dtype)[:, None, None]
        out_x = torch.from_numpy(gx * g).to(ctx.dtypes[0]) if ctx.needs_input_grad[0] else None
        out_y = torch.from_numpy(gy * g).to(ctx.dtypes[1]) if ctx.needs_input_grad[1] else None
        return out_x, out_y, None, None, None


def _nn_idx_chunked(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    b, n, _ = x.shape
    m = y.shape[1]
    rows = max(1, _CHUNK_ENTRIES // max(1, b * m))
    out = torch.empty(b, n, dtype=torch.long, device=x.device)
    with torch.no_grad():
        for s in range(0, n, rows):
            d = torch.cdist(x[:, s:s + rows], y)  # (B, rows, M)
            out[:, s:s + rows] = d.argmin(dim=2)
    return out


def _nn_indices(x, y, backend: str, both: bool = True):
    if backend == "chunked":
        ixy = _nn_idx_chunked(x, y)
        return ixy, (_nn_idx_chunked(y, x) if both else None)
    ixy, iyx = _nn_idx_cpu(x, y, backend, both)
    return ixy.to(x.device), (iyx.to(x.device) if iyx is not None else None)


def _gather(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``points (B, M, 3)``, ``idx (B, N)`` → ``(B, N, 3)``."""
    return torch.gather(points, 1, idx.unsqueeze(-1).expand(-1, -1, 3))


def safe_norm(diff: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last axis whose gradient is 0 (not NaN) where the norm is 0."""
    sq = (diff * diff).sum(-1)
    pos = sq > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), torch.zeros_like(sq))


def _matched(x, y_nn, squared: bool) -> torch.Tensor:
    diff = x - y_nn
    return (diff * diff).sum(-1) if squared else safe_norm(diff)


def _reduce(per_item: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_item.mean()
    if reduction == "sum":
        return per_item.sum()
    return per_item


def chamfer_distance(x: torch.Tensor, y: torch.Tensor, *, squared: bool = False,
                     reduction: str = "mean", weights=(1.0, 1.0),
                     backend: str = "auto") -> torch.Tensor:
    """Chamfer distance between ``x (B, N, 3)`` and ``y (B, M, 3)`` (N ≠ M allowed).

    Per item: ``weights[0] · mean_i d(x_i, Y) + weights[1] · mean_j d(y_j, X)`` where ``d`` is the
    Euclidean nearest-neighbour distance (square-rooted; the paper's convention) or, with
    ``squared=True``, the squared one (PyTorch3D convention). A weighted **sum** of the two
    directional means over points; raw units, not ×100.

    ``weights=(1.0, 0.5)`` reproduces the official 3D-LMNet TensorFlow training loss, which by an
    operator-precedence slip weighted the second direction (ground truth → prediction, when
    ``x`` is the prediction and ``y`` the ground truth) by one half.

    ``reduction``: ``"mean"`` over the batch → scalar, ``"sum"`` → scalar, ``"none"`` → ``(B,)``.
    ``backend``: see the module docstring; all give the same value and gradient (up to ties
    between equidistant neighbours). Gradients are exact with the nearest neighbours held fixed;
    memory is O(B·(N+M)) except for ``"brute"``.
    """
    _check_pair(x, y)
    if reduction not in REDUCTIONS:
        raise ValueError(f"chamfer: reduction {reduction!r} is not one of {', '.join(REDUCTIONS)}")
    if len(weights) != 2:
        raise ValueError(f"chamfer: weights must be a pair (w_xy, w_yx), got {weights!r}")
    w0, w1 = float(weights[0]), float(weights[1])
    backend = _resolve_backend(backend, x.device)
    if backend == "brute":
        d = torch.cdist(x, y)
        if squared:
            d = d * d
        per_item = w0 * d.min(dim=2).values.mean(1) + w1 * d.min(dim=1).values.mean(1)
        return _reduce(per_item, reduction)
    if backend == "grid":
        return _reduce(_GridChamfer.apply(x, y, bool(squared), w0, w1), reduction)
    ixy, iyx = _nn_indices(x, y, backend, both=True)
    per_item = (w0 * _matched(x, _gather(y, ixy), squared).mean(1)
                + w1 * _matched(y, _gather(x, iyx), squared).mean(1))
    return _reduce(per_item, reduction)


def nearest_neighbors(x, y, *, backend: str = "auto"):
    """Exact Euclidean nearest neighbour in ``y`` of every point of ``x``.

    ``x (B, N, 3)`` and ``y (B, M, 3)`` (or unbatched ``(N, 3)``, ``(M, 3)``), torch tensors or
    numpy arrays. Returns ``(dist, idx)``: ``dist (B, N)`` Euclidean (not squared) distances,
    ``idx (B, N)`` int64 indices into ``y`` — numpy in → numpy out (float64 distances), tensor in
    → tensors on x's device (distances in x's dtype, no autograd). Unbatched in → unbatched out.
    """
    as_numpy = not isinstance(x, torch.Tensor)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64)) if as_numpy else x
    yt = torch.as_tensor(np.asarray(y, dtype=np.float64)) if not isinstance(y, torch.Tensor) else y
    unbatched = xt.dim() == 2
    if unbatched:
        if yt.dim() != 2:
            raise ValueError(f"nearest_neighbors: x is (N, 3) but y has shape {tuple(yt.shape)}")
        xt, yt = xt[None], yt[None]
    yt = yt.to(xt.device)
    _check_pair(xt, yt)
    be = _resolve_backend(backend, xt.device)
    with torch.no_grad():
        if be == "brute":
            dist, idx = torch.cdist(xt, yt.to(xt.dtype)).min(dim=2)
        else:
            idx, _ = _nn_indices(xt, yt, be, both=False)
            dist = safe_norm(xt - _gather(yt.to(xt.dtype), idx))
    if unbatched:
        dist, idx = dist[0], idx[0]
    if as_numpy:
        return dist.cpu().numpy().astype(np.float64), idx.cpu().numpy()
    return dist, idx
