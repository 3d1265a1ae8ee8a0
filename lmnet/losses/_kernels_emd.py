"""Numba kernels of the EMD: dense costs, the ε-scaling auction (float64 and float32-SIMD) and the
exact finishing step (shortest augmenting paths).

Not public API: :mod:`lmnet.losses.emd` wraps them. Inputs ``(N, 3)`` point arrays and dense
``(N, N)`` costs (the only allocation larger than O(N)); every kernel releases the GIL.
"""

from __future__ import annotations

import math

import numpy as np

from lmnet.losses._numba import HAVE_NUMBA, jit as _jit  # noqa: F401  (HAVE_NUMBA: callers test it here)
from lmnet.losses.kernels import bid_scan_f32

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
def _start_phase(col4row, row4col, stack):
    """Start an ε phase of an auction: every row and column unassigned, all rows stacked (row 0
    on top). Returns the stack size ``N``."""
    n = col4row.shape[0]
    for j in range(n):
        row4col[j] = -1
    for i in range(n):
        col4row[i] = -1
        stack[i] = n - 1 - i
    return n


@_jit()
def auction(c, eps_final, eps_start, factor):
    """Forward Gauss-Seidel auction with epsilon scaling on the dense cost ``c (N, N)``.

    Minimises sum c[i, col4row[i]]. At the end every row satisfies eps_final-complementary
    slackness, c[i, j_i] + p[j_i] <= min_j (c[i, j] + p[j]) + eps_final, hence the total cost is
    at most the optimum + N · eps_final (Bertsekas). Returns ``(col4row (N,), prices (N,))``.

    Kept apart from :func:`auction_f32` on purpose: this one bids on float64 costs, so the
    ``N · eps_final`` bound of :func:`lmnet.losses.emd.emd_approx` holds exactly; the float32 SIMD scan
    of :func:`auction_f32` loosens it by float32 rounding, and a shared loop with a float64 scan
    would make the exact EMD's auction slower (measured: docs/results.md#kernel-tuning).
    """
    n = c.shape[0]
    p = np.zeros(n)
    col4row = np.full(n, -1, np.int64)
    row4col = np.full(n, -1, np.int64)
    stack = np.empty(n, np.int64)
    eps = max(eps_start, eps_final)
    while True:
        top = _start_phase(col4row, row4col, stack)
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
            # the assignment below is written again in auction_f32 on purpose: as a shared helper
            # it made both auctions slower per bid (docs/results.md#kernel-tuning)
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


@_jit()
def auction_f32(c32, eps_final, eps_start, factor):
    """:func:`auction` on a float32 cost ``c32 (N, N)`` with SIMD bid scans.

    Prices are kept in float64 (``p``) and mirrored in float32 for the scans; every bid raises a
    price by at least ``eps`` (which callers keep far above float32 resolution), so it terminates
    like :func:`auction`. Float32 rounding of the bid values (~1e-7 of the cost scale) loosens
    the ε-complementary slackness by that much; the exact finishing step does not rely on it.
    Returns ``(col4row (N,), prices (N,) float64, n_bids)``.

    Kept apart from :func:`auction` for speed: the int32-bit-pattern scan :func:`~lmnet.losses.kernels.bid_scan_f32`
    makes it faster than :func:`auction`'s float64 scan on the same cost (measured:
    docs/results.md#kernel-tuning), and :func:`auction` must stay float64 (its bound).
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
        top = _start_phase(col4row, row4col, stack)
        while top > 0:
            top -= 1
            i = stack[top]
            w1, w2, j1i = bid_scan_f32(c32[i], p32, buf, bits)
            j1 = np.int64(j1i)
            nbids += 1
            p[j1] += (np.float64(w2) - np.float64(w1)) + eps
            p32[j1] = np.float32(p[j1])
            # written again from auction(), on purpose: a shared helper for this per-bid assignment
            # made both auctions slower (docs/results.md#kernel-tuning)
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


@_jit(inline="always")
def _min_bits(bits, skip):
    """The least of ``bits (N,)`` (int64 views of float64 values) in the order of the floats (the
    sign-flipped bit pattern, so that the scan vectorises), entries with ``skip[j] != 0`` left out
    (``skip`` None: none) → its index (the first on a tie; N when every entry is skipped)."""
    n = bits.shape[0]
    m = _IMAX64
    for j in range(n):
        b = bits[j]
        b = b ^ ((b >> 63) & _IMAX64)
        if skip is not None:
            b = _IMAX64 if skip[j] != 0 else b
        m = b if b < m else m
    jm = np.int64(n)
    for j in range(n):
        b = bits[j]
        b = b ^ ((b >> 63) & _IMAX64)
        if skip is not None:
            b = _IMAX64 if skip[j] != 0 else b
        k = j if b == m else n
        jm = k if k < jm else jm
    return jm


@_jit()
def _feasible_duals(c, v, buf, bits):
    """Row duals ``u_i = min_j c_ij - v_j`` for the column duals ``v`` (``(N,)`` float64, any values),
    then ``v_j = min_i c_ij - u_i`` in place: the largest column duals feasible with ``u`` (vertical
    minima, vectorised). An auction leaves each bidder ε above its second-best column; this
    tightening makes about half of those rows tight again, halving the augmentations. Returns ``u``."""
    n = c.shape[0]
    u = np.empty(n)
    for i in range(n):
        ci = c[i]
        for j in range(n):
            buf[j] = ci[j] - v[j]
        u[i] = buf[_min_bits(bits, None)]
    for j in range(n):
        v[j] = np.inf
    for i in range(n):
        ci = c[i]
        ui = u[i]
        for j in range(n):
            t = ci[j] - ui
            vj = v[j]
            v[j] = t if t < vj else vj
    return u


@_jit()
def _keep_tight_edges(c, u, v, col4row, row4col, tol):
    """Unmatch (``col4row[i] = -1``) every row whose matched edge is not tight within ``tol`` or whose
    column another row already holds; fill ``row4col`` for the rest."""
    for i in range(c.shape[0]):
        j = col4row[i]
        if j != -1 and c[i, j] - v[j] - u[i] <= tol and row4col[j] == -1:
            row4col[j] = i
        else:
            col4row[i] = -1


@_jit()
def _augment(cur, c, u, v, col4row, row4col, spc, path, sc, vrows, scols, buf, bits):
    """Insert the free row ``cur`` by a shortest augmenting path (Dijkstra on reduced costs over all
    columns), update the duals so that every matched edge stays tight, and flip the path.
    ``spc``/``sc`` must be ``inf``/``0`` on entry and are left so; the other arrays are scratch."""
    n = c.shape[0]
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
        for j in range(n):
            buf[j] = spc[j]
        j = _min_bits(bits, sc)
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


@_jit()
def dense_ssp_finish_simd(c, col4row, v, tol):
    """Exact finishing step of the exact EMD: an optimal matching for the dense cost ``c (N, N)``.

    From a full matching ``col4row`` and column duals ``v`` (any values): ``u_i = min_j c_ij - v_j``
    makes the duals feasible (:func:`_feasible_duals`); rows whose matched edge is not tight within
    ``tol`` are unmatched and re-inserted by shortest augmenting paths (:func:`_augment`). The
    minimum searches use the int64 order of float64 bit patterns (sign-flipped for negatives)
    so that they vectorise (:func:`_min_bits`). On return every reduced cost is >= -tol-ish rounding
    and every matched edge is tight: the matching is optimal. Returns ``(col4row, u, v)``.
    """
    n = c.shape[0]
    buf = np.empty(n)
    bits = buf.view(np.int64)
    u = _feasible_duals(c, v, buf, bits)
    row4col = np.full(n, -1, np.int64)
    _keep_tight_edges(c, u, v, col4row, row4col, tol)
    spc = np.full(n, np.inf)
    path = np.empty(n, np.int64)
    sc = np.zeros(n, np.uint8)
    vrows = np.empty(n, np.int64)
    scols = np.empty(n, np.int64)
    for cur in range(n):
        if col4row[cur] == -1:
            _augment(cur, c, u, v, col4row, row4col, spc, path, sc, vrows, scols, buf, bits)
    return col4row, u, v
