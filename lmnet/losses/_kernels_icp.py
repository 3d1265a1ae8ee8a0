"""Numba kernel of the evaluation's rigid point-to-point ICP on the exact grid nearest neighbours.

Not public API: :mod:`lmnet.eval.protocol` wraps :func:`icp_grid`. Its building blocks (grid nearest
neighbours, Kabsch fit, rigid transform) are the public :mod:`lmnet.losses.kernels`, which the
released ICP loop of :mod:`lmnet.eval._official_kernels` uses too.
"""

from __future__ import annotations

import numpy as np

from lmnet.losses._numba import HAVE_NUMBA, jit as _jit  # noqa: F401  (HAVE_NUMBA: callers test it here)
from lmnet.losses.kernels import apply_rigid, grid_build, grid_query_all, kabsch_into, mean_sqrt

# --------------------------------------------------------------------------------------------
# Rigid point-to-point ICP (evaluation protocol) on the grid nearest neighbours
# --------------------------------------------------------------------------------------------


@_jit()
def icp_grid(src, tgt, max_iter, tol, cells_per_point):
    """Rigid point-to-point ICP of ``src (N, 3)`` onto ``tgt (M, 3)`` (float64), exactly the loop
    of :func:`lmnet.eval.protocol.icp_reference` with the KD-tree replaced by the exact grid NN
    (built once: the target does not move) and no per-iteration allocations.

    Returns ``(aligned (N, 3), R (3, 3), t (3,), iterations, converged, dist (N,))`` where
    ``dist`` are the final Euclidean NN distances aligned → tgt.
    """
    n = src.shape[0]
    lo, h, dims, start, order, pts = grid_build(tgt, cells_per_point)
    cur = src.copy()
    idx = np.empty(n, np.int64)
    d2 = np.empty(n)
    r_tot = np.eye(3)
    t_tot = np.zeros(3)
    r = np.empty((3, 3))
    t = np.empty(3)
    grid_query_all(cur, lo, h, dims, start, order, pts, idx, d2)
    prev = mean_sqrt(d2)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        kabsch_into(cur, tgt, idx, r, t)
        apply_rigid(cur, r, t)
        t_new = r @ t_tot + t
        r_tot = r @ r_tot
        t_tot = t_new
        grid_query_all(cur, lo, h, dims, start, order, pts, idx, d2)
        err = mean_sqrt(d2)
        if prev - err < tol:
            converged = True
            break
        prev = err
    dist = np.sqrt(d2)
    return cur, r_tot, t_tot, it, converged, dist
