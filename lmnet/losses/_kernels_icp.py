"""Numba kernel of the evaluation's rigid point-to-point ICP on the exact grid nearest neighbours.

Not public API: :mod:`lmnet.eval.protocol` wraps :func:`icp_grid`; :mod:`lmnet.eval._official_kernels`
reuses :func:`_kabsch_into` and :func:`_apply_rigid` for the released ICP loop.
"""

from __future__ import annotations

import math

import numpy as np

from lmnet.losses._kernels_nn import _grid_build, _grid_query_all
from lmnet.losses._numba import HAVE_NUMBA, jit as _jit  # noqa: F401  (HAVE_NUMBA: callers test it here)

# --------------------------------------------------------------------------------------------
# Rigid point-to-point ICP (evaluation protocol) on the grid nearest neighbours
# --------------------------------------------------------------------------------------------


@_jit()
def _kabsch_into(src, dst, idx, r_out, t_out):
    """Least-squares rigid transform ``dst[idx] ≈ src @ R.T + t`` (Kabsch, reflection fixed),
    the same algebra as :func:`lmnet.eval.protocol.kabsch`, without forming ``dst[idx]``."""
    n = src.shape[0]
    cs = np.zeros(3)
    cd = np.zeros(3)
    for i in range(n):
        j = idx[i]
        for a in range(3):
            cs[a] += src[i, a]
            cd[a] += dst[j, a]
    for a in range(3):
        cs[a] /= n
        cd[a] /= n
    h = np.zeros((3, 3))
    for i in range(n):
        j = idx[i]
        s0 = src[i, 0] - cs[0]
        s1 = src[i, 1] - cs[1]
        s2 = src[i, 2] - cs[2]
        for b in range(3):
            e = dst[j, b] - cd[b]
            h[0, b] += s0 * e
            h[1, b] += s1 * e
            h[2, b] += s2 * e
    u, _, vt = np.linalg.svd(h)
    det = np.linalg.det(vt.T @ u.T)
    d = 1.0 if det >= 0.0 else -1.0  # np.sign(det) or 1.0
    if det == 0.0:
        d = 1.0
    dm = np.eye(3)
    dm[2, 2] = d
    r = vt.T @ dm @ u.T
    for a in range(3):
        r_out[a, 0] = r[a, 0]
        r_out[a, 1] = r[a, 1]
        r_out[a, 2] = r[a, 2]
        t_out[a] = cd[a] - (r[a, 0] * cs[0] + r[a, 1] * cs[1] + r[a, 2] * cs[2])


@_jit(inline="always")
def _apply_rigid(cur, r, t):
    """``cur (N, 3) ← cur @ r.T + t`` in place, point by point (no temporary array)."""
    for i in range(cur.shape[0]):
        a0 = cur[i, 0]
        a1 = cur[i, 1]
        a2 = cur[i, 2]
        for a in range(3):
            cur[i, a] = r[a, 0] * a0 + r[a, 1] * a1 + r[a, 2] * a2 + t[a]


@_jit(inline="always")
def _mean_sqrt(d2):
    """Mean of ``sqrt(d2)`` over a ``(N,)`` vector of squared distances (a plain serial sum)."""
    s = 0.0
    for i in range(d2.shape[0]):
        s += math.sqrt(d2[i])
    return s / d2.shape[0]


@_jit()
def icp_grid(src, tgt, max_iter, tol, cells_per_point):
    """Rigid point-to-point ICP of ``src (N, 3)`` onto ``tgt (M, 3)`` (float64), exactly the loop
    of :func:`lmnet.eval.protocol.icp_reference` with the KD-tree replaced by the exact grid NN
    (built once: the target does not move) and no per-iteration allocations.

    Returns ``(aligned (N, 3), R (3, 3), t (3,), iterations, converged, dist (N,))`` where
    ``dist`` are the final Euclidean NN distances aligned → tgt.
    """
    n = src.shape[0]
    lo, h, dims, start, order, pts = _grid_build(tgt, cells_per_point)
    cur = src.copy()
    idx = np.empty(n, np.int64)
    d2 = np.empty(n)
    r_tot = np.eye(3)
    t_tot = np.zeros(3)
    r = np.empty((3, 3))
    t = np.empty(3)
    _grid_query_all(cur, lo, h, dims, start, order, pts, idx, d2)
    prev = _mean_sqrt(d2)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        _kabsch_into(cur, tgt, idx, r, t)
        _apply_rigid(cur, r, t)
        t_new = r @ t_tot + t
        r_tot = r @ r_tot
        t_tot = t_new
        _grid_query_all(cur, lo, h, dims, start, order, pts, idx, d2)
        err = _mean_sqrt(d2)
        if prev - err < tol:
            converged = True
            break
        prev = err
    dist = np.sqrt(d2)
    return cur, r_tot, t_tot, it, converged, dist
