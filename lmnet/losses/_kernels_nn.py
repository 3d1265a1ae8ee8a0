"""Numba kernels for exact nearest neighbours (a uniform grid) and the Chamfer value/gradient.

Not public API: :mod:`lmnet.losses.chamfer` (torch) and :mod:`lmnet.losses.chamfer_numpy` wrap
them. Kernels take ``(N, 3)`` / ``(B, N, 3)`` float32 or float64 arrays (numba compiles one version
per dtype), allocate O(N) at most and release the GIL.
"""

from __future__ import annotations

import math

import numpy as np

from lmnet.losses._numba import HAVE_NUMBA, jit as _jit  # noqa: F401  (HAVE_NUMBA: callers test it here)

# --------------------------------------------------------------------------------------------
# Uniform-grid exact nearest neighbour
# --------------------------------------------------------------------------------------------


@_jit()
def _grid_build(ref, cells_per_point):
    """Bucket ``ref (M, 3)`` into a uniform grid. Returns (lo, h, dims, start, order, sorted_pts)."""
    m = ref.shape[0]
    lo = np.empty(3)
    hi = np.empty(3)
    for a in range(3):
        lo[a] = ref[0, a]
        hi[a] = ref[0, a]
    for p in range(1, m):
        for a in range(3):
            v = ref[p, a]
            if v < lo[a]:
                lo[a] = v
            if v > hi[a]:
                hi[a] = v
    emax = 0.0
    for a in range(3):
        emax = max(emax, hi[a] - lo[a])
    if not emax > 0.0:
        emax = 1.0
    # about `cells_per_point * M` cells along the longest side cubed, at most 256 per axis
    k = int(math.ceil((cells_per_point * m) ** (1.0 / 3.0)))
    k = max(1, min(k, 256))
    h = emax / k
    dims = np.empty(3, np.int64)
    for a in range(3):
        dims[a] = max(1, min(256, int(math.floor((hi[a] - lo[a]) / h)) + 1))
    ncell = dims[0] * dims[1] * dims[2]
    cell = np.empty(m, np.int64)
    start = np.zeros(ncell + 1, np.int64)
    for p in range(m):
        c0 = min(dims[0] - 1, max(0, int((ref[p, 0] - lo[0]) / h)))
        c1 = min(dims[1] - 1, max(0, int((ref[p, 1] - lo[1]) / h)))
        c2 = min(dims[2] - 1, max(0, int((ref[p, 2] - lo[2]) / h)))
        c = (c0 * dims[1] + c1) * dims[2] + c2
        cell[p] = c
        start[c + 1] += 1
    for c in range(ncell):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    order = np.empty(m, np.int64)
    for p in range(m):
        c = cell[p]
        order[fill[c]] = p
        fill[c] += 1
    pts = np.empty((m, 3))
    for s in range(m):
        for a in range(3):
            pts[s, a] = ref[order[s], a]
    return lo, h, dims, start, order, pts


@_jit()
def _grid_scan_slots(s0, s1, q0, q1, q2, pts, best, bests):
    """Scan the sorted slots ``s0 .. s1 - 1`` (one cell, or a row of adjacent cells); returns the
    updated (best squared distance, best sorted slot)."""
    for s in range(s0, s1):
        e0 = pts[s, 0] - q0
        e1 = pts[s, 1] - q1
        e2 = pts[s, 2] - q2
        dd = e0 * e0 + e1 * e1 + e2 * e2
        if dd < best:
            best = dd
            bests = s
    return best, bests


@_jit()
def _grid_query_one(q0, q1, q2, lo, h, dims, start, pts):
    """Exact nearest point of the grid to ``q``: (squared distance, sorted slot).

    Scans shells of cells of growing Chebyshev radius r around q's (clamped) cell and stops once
    the best distance found is no larger than the distance from q to any cell not yet scanned.
    Allocation-free (scalars only): it runs once per query point.
    """
    d0_ = dims[0]
    d1_ = dims[1]
    d2_ = dims[2]
    c0 = min(d0_ - 1, max(0, int(math.floor((q0 - lo[0]) / h))))
    c1 = min(d1_ - 1, max(0, int(math.floor((q1 - lo[1]) / h))))
    c2 = min(d2_ - 1, max(0, int(math.floor((q2 - lo[2]) / h))))
    best = np.inf
    bests = -1
    r = 0
    while True:
        # shell of radius r, clipped to the grid
        x_lo = max(0, c0 - r)
        x_hi = min(d0_ - 1, c0 + r)
        y_lo = max(0, c1 - r)
        y_hi = min(d1_ - 1, c1 + r)
        z_lo = max(0, c2 - r)
        z_hi = min(d2_ - 1, c2 + r)
        for ix in range(x_lo, x_hi + 1):
            xface = ix == c0 - r or ix == c0 + r
            for iy in range(y_lo, y_hi + 1):
                base = (ix * d1_ + iy) * d2_
                if xface or iy == c1 - r or iy == c1 + r:
                    best, bests = _grid_scan_slots(start[base + z_lo], start[base + z_hi + 1],  # a whole z-row
                                                   q0, q1, q2, pts, best, bests)
                else:
                    iz = c2 - r
                    if iz >= 0:
                        best, bests = _grid_scan_slots(start[base + iz], start[base + iz + 1],
                                                       q0, q1, q2, pts, best, bests)
                    iz = c2 + r
                    if r > 0 and iz < d2_:
                        best, bests = _grid_scan_slots(start[base + iz], start[base + iz + 1],
                                                       q0, q1, q2, pts, best, bests)
        # lower bound on the distance to every cell outside the scanned block
        bound = np.inf
        if c0 - r > 0:
            bound = min(bound, max(0.0, q0 - (lo[0] + (c0 - r) * h)))
        if c0 + r < d0_ - 1:
            bound = min(bound, max(0.0, lo[0] + (c0 + r + 1) * h - q0))
        if c1 - r > 0:
            bound = min(bound, max(0.0, q1 - (lo[1] + (c1 - r) * h)))
        if c1 + r < d1_ - 1:
            bound = min(bound, max(0.0, lo[1] + (c1 + r + 1) * h - q1))
        if c2 - r > 0:
            bound = min(bound, max(0.0, q2 - (lo[2] + (c2 - r) * h)))
        if c2 + r < d2_ - 1:
            bound = min(bound, max(0.0, lo[2] + (c2 + r + 1) * h - q2))
        if bound == np.inf or best <= bound * bound:
            return best, bests
        r += 1


@_jit()
def _grid_query_all(query, lo, h, dims, start, order, pts, idx_out, d2_out):
    for i in range(query.shape[0]):
        best, s = _grid_query_one(query[i, 0], query[i, 1], query[i, 2], lo, h, dims, start, pts)
        idx_out[i] = order[s]
        d2_out[i] = best


@_jit()
def grid_nn_serial(q, r, cells_per_point, idx_out, d2_out):
    """Serial exact NN for a list of items: ``q (K, N, 3)`` in ``r (K, M, 3)`` → ``idx_out``,
    ``d2_out (K, N)``. Releases the GIL, so Python threads can run several calls at once."""
    for s in range(q.shape[0]):
        lo, h, dims, start, order, pts = _grid_build(r[s], cells_per_point)
        _grid_query_all(q[s], lo, h, dims, start, order, pts, idx_out[s], d2_out[s])


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
