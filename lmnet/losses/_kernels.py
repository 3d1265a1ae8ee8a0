"""Numba kernels behind :mod:`lmnet.losses`: grid nearest neighbours, Chamfer values/gradients,
the ε-scaling auction and exact assignment for EMD, and the evaluation ICP.

Nothing here is public API; :mod:`lmnet.losses.chamfer`, :mod:`lmnet.losses.emd` and
:mod:`lmnet.eval.protocol` wrap it. Kernels take ``(N, 3)`` / ``(B, N, 3)`` float32 or float64
arrays (numba compiles one version per dtype), never allocate anything larger than O(N) except
the EMD's dense ``N × N`` cost, and release the GIL, so callers may run items in threads.

``HAVE_NUMBA`` is False when numba is not installed; the callers then fall back to scipy
(cKDTree for nearest neighbours, ``linear_sum_assignment`` for EMD).
"""

from __future__ import annotations

import math

import numpy as np

try:  # numba is optional: the public functions fall back to scipy without it
    import numba as _nb

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is absent
    _nb = None
    HAVE_NUMBA = False


def _jit(**kw):
    """``numba.njit(cache=True, nogil=True, **kw)``, or the plain function without numba."""

    def deco(fn):
        if not HAVE_NUMBA:
            return fn
        return _nb.njit(cache=True, nogil=True, **kw)(fn)

    return deco


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
def _grid_scan_cell(c, q0, q1, q2, start, pts, best, bests):
    """Scan one cell; returns the updated (best squared distance, best sorted slot)."""
    for s in range(start[c], start[c + 1]):
        d0 = pts[s, 0] - q0
        d1 = pts[s, 1] - q1
        d2 = pts[s, 2] - q2
        dd = d0 * d0 + d1 * d1 + d2 * d2
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
                    for s in range(start[base + z_lo], start[base + z_hi + 1]):  # a whole z-row
                        e0 = pts[s, 0] - q0
                        e1 = pts[s, 1] - q1
                        e2 = pts[s, 2] - q2
                        dd = e0 * e0 + e1 * e1 + e2 * e2
                        if dd < best:
                            best = dd
                            bests = s
                else:
                    iz = c2 - r
                    if iz >= 0:
                        best, bests = _grid_scan_cell(base + iz, q0, q1, q2, start, pts, best, bests)
                    iz = c2 + r
                    if r > 0 and iz < d2_:
                        best, bests = _grid_scan_cell(base + iz, q0, q1, q2, start, pts, best, bests)
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
# Dense: epsilon-scaling auction (approximate EMD, with a bound)
# --------------------------------------------------------------------------------------------


@_jit()
def _dist(x, y, i, j):
    d0 = x[i, 0] - y[j, 0]
    d1 = x[i, 1] - y[j, 1]
    d2 = x[i, 2] - y[j, 2]
    return math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)


@_jit()
def dense_cost(x, y):
    """``C[i, j] = |x_i - y_j|`` for ``x (N, 3)``, ``y (M, 3)`` (float64)."""
    n = x.shape[0]
    m = y.shape[0]
    c = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            c[i, j] = _dist(x, y, i, j)
    return c


@_jit()
def auction(c, eps_final, eps_start, factor):
    """Forward Gauss-Seidel auction with epsilon scaling on the dense cost ``c (N, N)``.

    Minimises sum c[i, col4row[i]]. At the end every row satisfies eps_final-complementary
    slackness, c[i, j_i] + p[j_i] <= min_j (c[i, j] + p[j]) + eps_final, hence the total cost is
    at most the optimum + N · eps_final (Bertsekas). Returns ``(col4row (N,), prices (N,))``.
    """
    n = c.shape[0]
    p = np.zeros(n)
    col4row = np.full(n, -1, np.int64)
    row4col = np.full(n, -1, np.int64)
    stack = np.empty(n, np.int64)
    eps = max(eps_start, eps_final)
    while True:
        for j in range(n):
            row4col[j] = -1
        for i in range(n):
            col4row[i] = -1
            stack[i] = n - 1 - i
        top = n
        while top > 0:
            top -= 1
            i = stack[top]
            w1 = np.inf
            w2 = np.inf
            j1 = -1
            ci = c[i]
            for j in range(n):
                w = ci[j] + p[j]
                if w < w2:
                    if w < w1:
                        w2 = w1
                        w1 = w
                        j1 = j
                    else:
                        w2 = w
            if w2 == np.inf:
                w2 = w1
            p[j1] += w2 - w1 + eps
            old = row4col[j1]
            row4col[j1] = i
            col4row[i] = j1
            if old != -1:
                col4row[old] = -1
                stack[top] = old
                top += 1
        if eps <= eps_final:
            break
        eps = max(eps_final, eps / factor)
    return col4row, p


# --------------------------------------------------------------------------------------------
# Exact EMD, fast path: float32 SIMD auction + vectorised exact finish
# --------------------------------------------------------------------------------------------


@_jit()
def dense_cost_into(x, y, c, c32):
    """``c[i, j] = |x_i - y_j|`` (IEEE sqrt, vectorised over j) for ``x (N, 3)``, ``y (M, 3)``;
    ``c32`` receives the same matrix rounded to float32. Returns ``(max, mean)`` of ``c``."""
    m = y.shape[0]
    y0 = np.empty(m)
    y1 = np.empty(m)
    y2 = np.empty(m)
    for j in range(m):
        y0[j] = y[j, 0]
        y1[j] = y[j, 1]
        y2[j] = y[j, 2]
    cmax = 0.0
    csum = 0.0
    for i in range(x.shape[0]):
        a0 = x[i, 0]
        a1 = x[i, 1]
        a2 = x[i, 2]
        ci = c[i]
        ci32 = c32[i]
        for j in range(m):
            d0 = a0 - y0[j]
            d1 = a1 - y1[j]
            d2 = a2 - y2[j]
            ci[j] = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
            ci32[j] = np.float32(ci[j])
        rsum, rmax = _sum_max_nonneg(ci)
        cmax = max(cmax, rmax)
        csum += rsum
    return cmax, csum / max(1, x.shape[0] * m)


@_jit(fastmath=True)
def _sum_max_nonneg(a):
    """(sum, max) of a non-negative float64 vector, both vectorised (the max on the int64 bit
    patterns, which order like non-negative floats; the sum reassociated)."""
    s = 0.0
    for j in range(a.shape[0]):
        s += a[j]
    bits = a.view(np.int64)
    m = np.int64(0)
    for j in range(a.shape[0]):
        b = bits[j]
        m = b if b > m else m
    return s, np.array([m]).view(np.float64)[0]


_IMAX32 = np.int32(0x7FFFFFFF)


@_jit(fastmath=True)
def _bid_scan_f32(ci, p32, buf, bits):
    """Best and second-best of ``w_j = ci[j] + p32[j]`` over all j (float32, all w >= 0).

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


@_jit()
def auction_f32(c32, eps_final, eps_start, factor):
    """:func:`auction` on a float32 cost ``c32 (N, N)`` with SIMD bid scans.

    Prices are kept in float64 (``p``) and mirrored in float32 for the scans; every bid raises a
    price by at least ``eps`` (which callers keep far above float32 resolution), so it terminates
    like :func:`auction`. Float32 rounding of the bid values (~1e-7 of the cost scale) loosens
    the ε-complementary slackness by that much; the exact finishing step does not rely on it.
    Returns ``(col4row (N,), prices (N,) float64, n_bids)``.
    """
    n = c32.shape[0]
    p = np.zeros(n)
    p32 = np.zeros(n, np.float32)
    buf = np.empty(n, np.float32)
    bits = buf.view(np.int32)
    col4row = np.full(n, -1, np.int64)
    row4col = np.full(n, -1, np.int64)
    stack = np.empty(n, np.int64)
    eps = max(eps_start, eps_final)
    nbids = 0
    while True:
        for j in range(n):
            row4col[j] = -1
        for i in range(n):
            col4row[i] = -1
            stack[i] = n - 1 - i
        top = n
        while top > 0:
            top -= 1
            i = stack[top]
            w1, w2, j1i = _bid_scan_f32(c32[i], p32, buf, bits)
            j1 = np.int64(j1i)
            nbids += 1
            p[j1] += (np.float64(w2) - np.float64(w1)) + eps
            p32[j1] = np.float32(p[j1])
            old = row4col[j1]
            row4col[j1] = i
            col4row[i] = j1
            if old != -1:
                col4row[old] = -1
                stack[top] = old
                top += 1
        if eps <= eps_final:
            break
        eps = max(eps_final, eps / factor)
    return col4row, p, nbids


_IMAX64 = np.int64(0x7FFFFFFFFFFFFFFF)


@_jit()
def dense_ssp_finish_simd(c, col4row, v, tol):
    """Exact finishing step of the exact EMD: an optimal matching for the dense cost ``c (N, N)``.

    From a full matching ``col4row`` and column duals ``v`` (any values): ``u_i = min_j c_ij - v_j``
    makes the duals feasible; rows whose matched edge is not tight within ``tol`` are unmatched and
    re-inserted by shortest augmenting paths (Dijkstra on reduced costs over all columns). The
    minimum searches use the int64 order of float64 bit patterns (sign-flipped for negatives)
    so that they vectorise. On return every reduced cost is >= -tol-ish rounding and every matched
    edge is tight: the matching is optimal. Returns ``(col4row, u, v)``.
    """
    n = c.shape[0]
    u = np.empty(n)
    row4col = np.full(n, -1, np.int64)
    buf = np.empty(n)
    bits = buf.view(np.int64)
    for i in range(n):  # u_i = min_j c_ij - v_j: feasible row duals for the given v
        ci = c[i]
        for j in range(n):
            buf[j] = ci[j] - v[j]
        m = _IMAX64
        for j in range(n):
            b = bits[j]
            b = b ^ ((b >> 63) & _IMAX64)
            m = b if b < m else m
        jm = np.int64(n)
        for j in range(n):
            b = bits[j]
            b = b ^ ((b >> 63) & _IMAX64)
            k = j if b == m else n
            jm = k if k < jm else jm
        u[i] = buf[jm]
    # then v_j = min_i c_ij - u_i: the largest column duals feasible with u (vertical minima,
    # vectorised). An auction leaves each bidder ε above its second-best column; this tightening
    # makes about half of those rows tight again, halving the augmentations below.
    for j in range(n):
        v[j] = np.inf
    for i in range(n):
        ci = c[i]
        ui = u[i]
        for j in range(n):
            t = ci[j] - ui
            vj = v[j]
            v[j] = t if t < vj else vj
    for i in range(n):
        j = col4row[i]
        if j != -1 and c[i, j] - v[j] - u[i] <= tol and row4col[j] == -1:
            row4col[j] = i
        else:
            col4row[i] = -1
    spc = np.empty(n)
    path = np.empty(n, np.int64)
    sc = np.zeros(n, np.uint8)
    vrows = np.empty(n, np.int64)
    scols = np.empty(n, np.int64)
    for j in range(n):
        spc[j] = np.inf
    for cur in range(n):
        if col4row[cur] != -1:
            continue
        min_val = 0.0
        i = cur
        sink = -1
        nv = 0
        ns = 0
        while sink == -1:
            vrows[nv] = i
            nv += 1
            ci = c[i]
            ui = u[i]
            for j in range(n):
                r = min_val + ci[j] - ui - v[j]
                s = spc[j]
                upd = (r < s) & (sc[j] == 0)
                spc[j] = r if upd else s
                pj = path[j]
                path[j] = i if upd else pj
            m = _IMAX64
            for j in range(n):
                buf[j] = spc[j]
            for j in range(n):
                b = bits[j]
                b = b ^ ((b >> 63) & _IMAX64)
                b = _IMAX64 if sc[j] != 0 else b
                m = b if b < m else m
            jm = np.int64(n)
            for j in range(n):
                b = bits[j]
                b = b ^ ((b >> 63) & _IMAX64)
                b = _IMAX64 if sc[j] != 0 else b
                k = j if b == m else n
                jm = k if k < jm else jm
            j = jm
            min_val = spc[j]
            sc[j] = 1
            scols[ns] = j
            ns += 1
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
        u[cur] += min_val
        for t in range(1, nv):
            r_ = vrows[t]
            u[r_] += min_val - spc[col4row[r_]]
        for t in range(ns):
            j = scols[t]
            v[j] -= min_val - spc[j]
        j = sink
        while True:
            r_ = path[j]
            row4col[j] = r_
            nxt = col4row[r_]
            col4row[r_] = j
            if r_ == cur:
                break
            j = nxt
        for j in range(n):
            spc[j] = np.inf
            sc[j] = 0
    return col4row, u, v


# --------------------------------------------------------------------------------------------
# Chamfer: values and analytic gradients from nearest-neighbour indices
# --------------------------------------------------------------------------------------------


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
    for k in range(b):
        if want_grad:
            gxk = np.zeros((n, 3))
            gyk = np.zeros((m, 3))
        s0 = 0.0
        for i in range(n):
            j = ixy[k, i]
            e0 = np.float64(x[k, i, 0]) - np.float64(y[k, j, 0])
            e1 = np.float64(x[k, i, 1]) - np.float64(y[k, j, 1])
            e2 = np.float64(x[k, i, 2]) - np.float64(y[k, j, 2])
            dd = e0 * e0 + e1 * e1 + e2 * e2
            if squared:
                s0 += dd
                f = 2.0 * a0
            else:
                d = math.sqrt(dd)
                s0 += d
                f = a0 / d if d > 0.0 else 0.0
            if want_grad:
                gxk[i, 0] += f * e0
                gxk[i, 1] += f * e1
                gxk[i, 2] += f * e2
                gyk[j, 0] -= f * e0
                gyk[j, 1] -= f * e1
                gyk[j, 2] -= f * e2
        s1 = 0.0
        for j in range(m):
            i = iyx[k, j]
            e0 = np.float64(y[k, j, 0]) - np.float64(x[k, i, 0])
            e1 = np.float64(y[k, j, 1]) - np.float64(x[k, i, 1])
            e2 = np.float64(y[k, j, 2]) - np.float64(x[k, i, 2])
            dd = e0 * e0 + e1 * e1 + e2 * e2
            if squared:
                s1 += dd
                f = 2.0 * a1
            else:
                d = math.sqrt(dd)
                s1 += d
                f = a1 / d if d > 0.0 else 0.0
            if want_grad:
                gyk[j, 0] += f * e0
                gyk[j, 1] += f * e1
                gyk[j, 2] += f * e2
                gxk[i, 0] -= f * e0
                gxk[i, 1] -= f * e1
                gxk[i, 2] -= f * e2
        per[k] = a0 * s0 + a1 * s1
        if want_grad:
            for i in range(n):
                for a in range(3):
                    gx[k, i, a] = gxk[i, a]
            for j in range(m):
                for a in range(3):
                    gy[k, j, a] = gyk[j, a]


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
    nxt = np.empty(3)
    _grid_query_all(cur, lo, h, dims, start, order, pts, idx, d2)
    s = 0.0
    for i in range(n):
        s += math.sqrt(d2[i])
    prev = s / n
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        _kabsch_into(cur, tgt, idx, r, t)
        for i in range(n):
            a0 = cur[i, 0]
            a1 = cur[i, 1]
            a2 = cur[i, 2]
            for a in range(3):
                nxt[a] = r[a, 0] * a0 + r[a, 1] * a1 + r[a, 2] * a2 + t[a]
            cur[i, 0] = nxt[0]
            cur[i, 1] = nxt[1]
            cur[i, 2] = nxt[2]
        t_new = r @ t_tot + t
        r_tot = r @ r_tot
        t_tot = t_new
        _grid_query_all(cur, lo, h, dims, start, order, pts, idx, d2)
        s = 0.0
        for i in range(n):
            s += math.sqrt(d2[i])
        err = s / n
        if prev - err < tol:
            converged = True
            break
        prev = err
    dist = np.sqrt(d2)
    return cur, r_tot, t_tot, it, converged, dist
