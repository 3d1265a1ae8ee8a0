"""The public numba kernels of :mod:`lmnet.losses`: the building blocks that the private kernel
modules here (``_kernels_nn``, ``_kernels_icp``, ``_kernels_emd``) and the released-protocol kernels
of :mod:`lmnet.eval` (:mod:`lmnet.eval._official_kernels`) share, each defined once.

- exact nearest neighbours on a uniform grid: :func:`grid_build`, :func:`grid_query_all`;
- rigid fitting: :func:`kabsch_into`, :func:`apply_rigid`, :func:`mean_sqrt`;
- the auction's float32 bid scan: :func:`bid_scan_f32`.

Conventions: points are ``(N, 3)`` C-contiguous arrays; outputs are written into arrays the caller
allocates (the kernels allocate O(N) at most), so loops that call them many times allocate nothing.
Every kernel is ``numba.njit(cache=True, nogil=True)`` (:func:`jit`; :func:`apply_rigid` and
:func:`mean_sqrt` are inlined into their callers, :func:`bid_scan_f32` uses ``fastmath``), callable
from numba code and from Python, and releases the GIL. Without numba (:data:`HAVE_NUMBA` False)
:func:`jit` returns the plain function: the kernels then run as (slow) Python, and the public
callers use their SciPy paths instead. No torch is imported here.
"""

from __future__ import annotations

import math

import numpy as np

from lmnet.losses._numba import HAVE_NUMBA, jit

__all__ = ["HAVE_NUMBA", "jit", "grid_build", "grid_query_all", "kabsch_into", "apply_rigid", "mean_sqrt",
           "bid_scan_f32"]

# --------------------------------------------------------------------------------------------
# Uniform-grid exact nearest neighbour
# --------------------------------------------------------------------------------------------


@jit()
def grid_build(ref, cells_per_point):
    """Bucket the reference cloud ``ref (M >= 1, 3)`` (float32 or float64) into a uniform grid of
    cubic cells, for exact nearest-neighbour queries (:func:`grid_query_all`).

    ``cells_per_point`` (float, e.g. ``lmnet.losses.chamfer_numpy.GRID_CELLS_PER_POINT``): about
    ``cells_per_point * M`` cells along the bounding box's longest side cubed, at most 256 per axis.
    Returns the grid ``(lo, h, dims, start, order, pts)``: ``lo (3,)`` float64 lower corner,
    ``h`` float cell side, ``dims (3,)`` int64 cells per axis, ``start (ncell + 1,)`` int64 offsets
    of each cell's points in the sorted order (cell ``c`` holds slots ``start[c] .. start[c+1]-1``),
    ``order (M,)`` int64 index into ``ref`` of each sorted slot, ``pts (M, 3)`` float64 the points in
    sorted order. Pass the six values unchanged to :func:`grid_query_all`."""
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


@jit()
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


@jit()
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


@jit()
def grid_query_all(query, lo, h, dims, start, order, pts, idx_out, d2_out):
    """Exact nearest point of the grid (:func:`grid_build` of ``ref``) to every point of
    ``query (N, 3)`` (float32 or float64): writes ``idx_out (N,)`` int64, the index into ``ref``, and
    ``d2_out (N,)`` float64, the squared Euclidean distance. Ties: the first point met by the shell
    scan. Allocation-free; the grid is not modified, so one grid serves many queries."""
    for i in range(query.shape[0]):
        best, s = _grid_query_one(query[i, 0], query[i, 1], query[i, 2], lo, h, dims, start, pts)
        idx_out[i] = order[s]
        d2_out[i] = best


# --------------------------------------------------------------------------------------------
# Rigid point-to-point fitting
# --------------------------------------------------------------------------------------------


@jit()
def kabsch_into(src, dst, idx, r_out, t_out):
    """Least-squares rigid transform ``dst[idx] ≈ src @ R.T + t`` (Kabsch, reflection fixed:
    ``det R = +1``), the same algebra as :func:`lmnet.eval.protocol.kabsch`, without forming
    ``dst[idx]``.

    ``src (N, 3)``, ``dst (M, 3)`` float64, ``idx (N,)`` int64 (``src[i]`` pairs with ``dst[idx[i]]``;
    the identity ``np.arange(N)`` pairs point i with point i); writes ``r_out (3, 3)`` and
    ``t_out (3,)`` float64 in place."""
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


@jit(inline="always")
def apply_rigid(cur, r, t):
    """``cur (N, 3) ← cur @ r.T + t`` in place (float64; ``r (3, 3)``, ``t (3,)``), point by point,
    without a temporary array."""
    for i in range(cur.shape[0]):
        a0 = cur[i, 0]
        a1 = cur[i, 1]
        a2 = cur[i, 2]
        for a in range(3):
            cur[i, a] = r[a, 0] * a0 + r[a, 1] * a1 + r[a, 2] * a2 + t[a]


@jit(inline="always")
def mean_sqrt(d2):
    """Mean of ``sqrt(d2)`` over a ``(N >= 1,)`` float vector of squared distances → float: the
    mean Euclidean distance, summed serially in index order (so the value is reproducible)."""
    s = 0.0
    for i in range(d2.shape[0]):
        s += math.sqrt(d2[i])
    return s / d2.shape[0]


# --------------------------------------------------------------------------------------------
# Auction bid scan (float32, SIMD)
# --------------------------------------------------------------------------------------------

_IMAX32 = np.int32(0x7FFFFFFF)


@jit(fastmath=True)
def bid_scan_f32(ci, p32, buf, bits):
    """Best and second-best of ``w_j = ci[j] + p32[j]`` over all j: ``ci``, ``p32 (N >= 1,)`` float32
    with every ``w_j >= 0`` (a row of costs and the prices of an auction).

    Non-negative float32 values order like their int32 bit patterns, and integer min reductions
    vectorise (float ones do not in numba), so this is four SIMD passes instead of one branchy
    scalar pass. ``buf``/``bits`` are one scratch buffer viewed as float32 and int32. Returns
    ``(w1, w2, j1)``; ties give ``w2 == w1``."""
    n = ci.shape[0]
    for j in range(n):
        buf[j] = ci[j] + p32[j]
    m1 = _IMAX32
    for j in range(n):
        v = bits[j]
        m1 = v if v < m1 else m1
    j1 = np.int32(n)
    for j in range(n):
        jj = np.int32(j)
        k = jj if bits[j] == m1 else np.int32(n)
        j1 = k if k < j1 else j1
    w1 = buf[j1]
    bits[j1] = _IMAX32
    m2 = _IMAX32
    for j in range(n):
        v = bits[j]
        m2 = v if v < m2 else m2
    if m2 == _IMAX32:  # a single column
        return w1, w1, j1
    bits[j1] = m2
    return w1, buf[j1], j1
