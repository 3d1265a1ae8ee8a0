"""Numba kernels for exact nearest neighbours of many items (on the uniform grid of
:mod:`lmnet.losses.kernels`) and the Chamfer value/gradient.

Not public API: :mod:`lmnet.losses.chamfer` (torch) and :mod:`lmnet.losses.chamfer_numpy` wrap
them. Kernels take ``(N, 3)`` / ``(B, N, 3)`` float32 or float64 arrays (numba compiles one version
per dtype), allocate O(N) at most and release the GIL.
"""

from __future__ import annotations

import math

import numpy as np

from lmnet.losses._numba import HAVE_NUMBA, jit as _jit  # noqa: F401  (HAVE_NUMBA: callers test it here)
from lmnet.losses.kernels import grid_build, grid_query_all

# --------------------------------------------------------------------------------------------
# Exact nearest neighbours of many items (the grid itself: lmnet.losses.kernels)
# --------------------------------------------------------------------------------------------



@_jit()
def grid_nn_serial(q, r, cells_per_point, idx_out, d2_out):
    """Serial exact NN for a list of items: ``q (K, N, 3)`` in ``r (K, M, 3)`` → ``idx_out``,
    ``d2_out (K, N)``. Releases the GIL, so Python threads can run several calls at once."""
    for s in range(q.shape[0]):
        lo, h, dims, start, order, pts = grid_build(r[s], cells_per_point)
        grid_query_all(q[s], lo, h, dims, start, order, pts, idx_out[s], d2_out[s])


# --------------------------------------------------------------------------------------------
# Chamfer: values and analytic gradients from nearest-neighbour indices
# --------------------------------------------------------------------------------------------


@_jit()
def _chamfer_direction(p, q, nn, squared, scale, want_grad, gp, gq):
    """One direction of the Chamfer of one item: ``Σ_i f(p_i − q_nn(i))`` for ``p (N, 3)``,
    ``q (M, 3)``, ``nn (N,)``; with ``want_grad`` adds ``scale · f'`` into ``gp (N, 3)`` and its
    negative into ``gq (M, 3)``. ``f`` as in :func:`chamfer_value_grad`, differences in float64."""
    s = 0.0
    for i in range(p.shape[0]):
        j = nn[i]
        e0 = np.float64(p[i, 0]) - np.float64(q[j, 0])
        e1 = np.float64(p[i, 1]) - np.float64(q[j, 1])
        e2 = np.float64(p[i, 2]) - np.float64(q[j, 2])
        dd = e0 * e0 + e1 * e1 + e2 * e2
        if squared:
            s += dd
            f = 2.0 * scale
        else:
            d = math.sqrt(dd)
            s += d
            f = scale / d if d > 0.0 else 0.0
        if want_grad:
            gp[i, 0] += f * e0
            gp[i, 1] += f * e1
            gp[i, 2] += f * e2
            gq[j, 0] -= f * e0
            gq[j, 1] -= f * e1
            gq[j, 2] -= f * e2
    return s


@_jit()
def chamfer_value_grad(x, y, ixy, iyx, squared, w0, w1, want_grad, per, gx, gy):
    """Per-item Chamfer values and their exact gradients with the neighbours held fixed.

    ``x (B, N, 3)``, ``y (B, M, 3)`` (same float dtype), ``ixy (B, N)`` index in y of each x's
    nearest point, ``iyx (B, M)`` the reverse. Writes ``per[b] = w0 · mean_i f(x_i − y_ixy(i)) +
    w1 · mean_j f(y_j − x_iyx(j))`` with ``f(d) = |d|`` (``squared=False``; gradient ``d/|d|``,
    0 where ``d = 0``) or ``|d|²`` (gradient ``2d``); differences and sums in float64. With
    ``want_grad``: ``gx = ∂per[b]/∂x[b]``, ``gy = ∂per[b]/∂y[b]`` (cast to the output dtype).
    """
    b = x.shape[0]
    n = x.shape[1]
    m = y.shape[1]
    a0 = w0 / n
    a1 = w1 / m
    gn = n if want_grad else 0
    gm = m if want_grad else 0
    for k in range(b):
        gxk = np.zeros((gn, 3))
        gyk = np.zeros((gm, 3))
        s0 = _chamfer_direction(x[k], y[k], ixy[k], squared, a0, want_grad, gxk, gyk)
        s1 = _chamfer_direction(y[k], x[k], iyx[k], squared, a1, want_grad, gyk, gxk)
        per[k] = a0 * s0 + a1 * s1
        if want_grad:
            for i in range(n):
                for a in range(3):
                    gx[k, i, a] = gxk[i, a]
            for j in range(m):
                for a in range(3):
                    gy[k, j, a] = gyk[j, a]
