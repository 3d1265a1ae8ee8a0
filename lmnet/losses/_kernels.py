"""Numba kernels behind :mod:`lmnet.losses`: grid nearest neighbours and a sparse exact assignment.

Nothing here is public API; :mod:`lmnet.losses.chamfer` and :mod:`lmnet.losses.emd` wrap it.
Every kernel works on float64 ``(N, 3)`` arrays, computes Euclidean distances on the fly (no dense
``N × M`` matrix is ever stored) and releases the GIL, so callers may run pairs in threads.

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


_prange = _nb.prange if HAVE_NUMBA else range


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
    """
    c = np.empty(3, np.int64)
    q = (q0, q1, q2)
    for a in range(3):
        c[a] = min(dims[a] - 1, max(0, int(math.floor((q[a] - lo[a]) / h))))
    best = np.inf
    bests = -1
    r = 0
    while True:
        # shell of radius r, clipped to the grid
        x_lo = max(0, c[0] - r)
        x_hi = min(dims[0] - 1, c[0] + r)
        y_lo = max(0, c[1] - r)
        y_hi = min(dims[1] - 1, c[1] + r)
        z_lo = max(0, c[2] - r)
        z_hi = min(dims[2] - 1, c[2] + r)
        for ix in range(x_lo, x_hi + 1):
            xface = ix == c[0] - r or ix == c[0] + r
            for iy in range(y_lo, y_hi + 1):
                base = (ix * dims[1] + iy) * dims[2]
                if xface or iy == c[1] - r or iy == c[1] + r:
                    for iz in range(z_lo, z_hi + 1):
                        best, bests = _grid_scan_cell(base + iz, q0, q1, q2, start, pts, best, bests)
                else:
                    iz = c[2] - r
                    if iz >= 0:
                        best, bests = _grid_scan_cell(base + iz, q0, q1, q2, start, pts, best, bests)
                    iz = c[2] + r
                    if r > 0 and iz < dims[2]:
                        best, bests = _grid_scan_cell(base + iz, q0, q1, q2, start, pts, best, bests)
        # lower bound on the distance to every cell outside the scanned block
        bound = np.inf
        for a in range(3):
            if c[a] - r > 0:
                bound = min(bound, max(0.0, q[a] - (lo[a] + (c[a] - r) * h)))
            if c[a] + r < dims[a] - 1:
                bound = min(bound, max(0.0, lo[a] + (c[a] + r + 1) * h - q[a]))
        if bound == np.inf or best <= bound * bound:
            return best, bests
        r += 1


@_jit()
def _grid_query_all(query, lo, h, dims, start, order, pts, idx_out, d2_out):
    for i in range(query.shape[0]):
        best, s = _grid_query_one(query[i, 0], query[i, 1], query[i, 2], lo, h, dims, start, pts)
        idx_out[i] = order[s]
        d2_out[i] = best


@_jit(parallel=True)
def grid_nn_pairs(x, y, cells_per_point):
    """Both directions of exact NN for a batch: ``x (B, N, 3)``, ``y (B, M, 3)`` float64.

    Returns ``idx_xy (B, N)`` (index into y of each x's nearest point), ``d2_xy (B, N)`` (its
    squared distance), ``idx_yx (B, M)``, ``d2_yx (B, M)``. The 2·B tasks run in parallel.
    """
    b = x.shape[0]
    n = x.shape[1]
    m = y.shape[1]
    idx_xy = np.empty((b, n), np.int64)
    d2_xy = np.empty((b, n))
    idx_yx = np.empty((b, m), np.int64)
    d2_yx = np.empty((b, m))
    for t in _prange(2 * b):
        if t < b:
            lo, h, dims, start, order, pts = _grid_build(y[t], cells_per_point)
            _grid_query_all(x[t], lo, h, dims, start, order, pts, idx_xy[t], d2_xy[t])
        else:
            s = t - b
            lo, h, dims, start, order, pts = _grid_build(x[s], cells_per_point)
            _grid_query_all(y[s], lo, h, dims, start, order, pts, idx_yx[s], d2_yx[s])
    return idx_xy, d2_xy, idx_yx, d2_yx


@_jit(parallel=True)
def grid_nn_one(x, y, cells_per_point):
    """One direction: ``x (B, N, 3)`` → nearest in ``y (B, M, 3)``; queries split in parallel."""
    b = x.shape[0]
    n = x.shape[1]
    idx = np.empty((b, n), np.int64)
    d2 = np.empty((b, n))
    nchunk = 8
    step = (n + nchunk - 1) // nchunk
    for s in range(b):
        lo, h, dims, start, order, pts = _grid_build(y[s], cells_per_point)
        for c in _prange(nchunk):
            a0 = c * step
            a1 = min(n, a0 + step)
            if a0 < a1:
                _grid_query_all(x[s, a0:a1], lo, h, dims, start, order, pts, idx[s, a0:a1], d2[s, a0:a1])
    return idx, d2


# --------------------------------------------------------------------------------------------
# Exact assignment: shortest augmenting paths on a sparse candidate graph + dense dual check
# --------------------------------------------------------------------------------------------


@_jit()
def _dist(x, y, i, j):
    d0 = x[i, 0] - y[j, 0]
    d1 = x[i, 1] - y[j, 1]
    d2 = x[i, 2] - y[j, 2]
    return math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)


@_jit()
def _heap_push(hk, hv, size, key, val):
    i = size
    hk[i] = key
    hv[i] = val
    while i > 0:
        p = (i - 1) >> 1
        if hk[p] <= hk[i]:
            break
        hk[p], hk[i] = hk[i], hk[p]
        hv[p], hv[i] = hv[i], hv[p]
        i = p
    return size + 1


@_jit()
def _heap_pop(hk, hv, size):
    """Remove the root; returns (key, val, new size). Caller checks size > 0."""
    key = hk[0]
    val = hv[0]
    size -= 1
    hk[0] = hk[size]
    hv[0] = hv[size]
    i = 0
    while True:
        l = 2 * i + 1
        if l >= size:
            break
        r = l + 1
        c = l
        if r < size and hk[r] < hk[l]:
            c = r
        if hk[i] <= hk[c]:
            break
        hk[c], hk[i] = hk[i], hk[c]
        hv[c], hv[i] = hv[i], hv[c]
        i = c
    return key, val, size


@_jit()
def _build_candidates(knn_xy, knn_yx, x, y):
    """CSR candidate graph rows→columns: each x's k nearest y plus, reversed, each y's k nearest x."""
    n = knn_xy.shape[0]
    k1 = knn_xy.shape[1]
    k2 = knn_yx.shape[1]
    deg = np.full(n, k1, np.int64)
    for j in range(n):
        for t in range(k2):
            deg[knn_yx[j, t]] += 1
    ptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        ptr[i + 1] = ptr[i] + deg[i]
    col = np.empty(ptr[n], np.int64)
    fill = ptr[:-1].copy()
    for i in range(n):
        for t in range(k1):
            col[fill[i]] = knn_xy[i, t]
            fill[i] += 1
    for j in range(n):
        for t in range(k2):
            i = knn_yx[j, t]
            col[fill[i]] = j
            fill[i] += 1
    cost = np.empty(ptr[n])
    for i in range(n):
        for e in range(ptr[i], ptr[i + 1]):
            cost[e] = _dist(x, y, i, col[e])
    return ptr, col, cost


@_jit()
def _augment(src, x, y, ptr, col, cost, head, enext, ecol, ecost, u, v, col4row, row4col,
             dist, pred, scanned, touched, vrows, hk, hv):
    """One shortest augmenting path (Dijkstra on reduced costs) from free row ``src``.

    The graph is the CSR ``ptr/col/cost`` plus per-row linked lists of extra edges
    (``head[i]`` → ``enext``; ``ecol``, ``ecost``). Returns True on success (duals updated,
    matching grown by one) or False when no free column is reachable. Work arrays are reset.
    """
    ntouch = 0
    nv = 0
    hsize = 0
    mu = 0.0
    i = src
    sink = -1
    ok = True
    while True:
        vrows[nv] = i
        nv += 1
        ui = u[i]
        e = ptr[i]
        e_end = ptr[i + 1]
        x_e = head[i]
        while True:
            if e < e_end:
                j = col[e]
                c = cost[e]
                e += 1
            elif x_e != -1:
                j = ecol[x_e]
                c = ecost[x_e]
                x_e = enext[x_e]
            else:
                break
            if scanned[j]:
                continue
            nd = mu + c - ui - v[j]
            if nd < dist[j]:
                if dist[j] == np.inf:
                    touched[ntouch] = j
                    ntouch += 1
                dist[j] = nd
                pred[j] = i
                hsize = _heap_push(hk, hv, hsize, nd, j)
        jbest = -1
        while hsize > 0:
            key, j, hsize = _heap_pop(hk, hv, hsize)
            if scanned[j] or key > dist[j]:
                continue
            jbest = j
            mu = key
            break
        if jbest == -1:
            ok = False
            break
        scanned[jbest] = True
        if row4col[jbest] == -1:
            sink = jbest
            break
        i = row4col[jbest]
    if ok:
        u[src] += mu
        for t in range(1, nv):
            r = vrows[t]
            u[r] += mu - dist[col4row[r]]
        for t in range(ntouch):
            j = touched[t]
            if scanned[j]:
                v[j] -= mu - dist[j]
        j = sink
        while True:
            r = pred[j]
            row4col[j] = r
            nxt = col4row[r]
            col4row[r] = j
            if r == src:
                break
            j = nxt
    for t in range(ntouch):
        j = touched[t]
        dist[j] = np.inf
        scanned[j] = False
    return ok


@_jit()
def _row_min_reduced(i, ptr, col, cost, head, enext, ecol, ecost, v):
    """min over the graph edges of row i of (c_ij - v_j): the largest dual-feasible u_i."""
    best = np.inf
    for e in range(ptr[i], ptr[i + 1]):
        r = cost[e] - v[col[e]]
        if r < best:
            best = r
    e = head[i]
    while e != -1:
        r = ecost[e] - v[ecol[e]]
        if r < best:
            best = r
        e = enext[e]
    return best


@_jit()
def sparse_assignment(x, y, knn_xy, knn_yx, tol, max_add):
    """Exact min-cost perfect matching of ``x (N, 3)`` to ``y (N, 3)`` under Euclidean cost.

    Solves on a candidate graph (``knn_xy (N, k)``: each x's k nearest y; ``knn_yx``: each y's
    k nearest x) with shortest augmenting paths (Hungarian / Jonker-Volgenant duals), then checks
    the dual certificate ``c_ij - u_i - v_j >= -tol`` on ALL N² pairs. Each violating row gets
    its (up to ``max_add``) most violated pairs as new edges, is unmatched and re-solved; repeat
    until the certificate holds. Dual feasibility everywhere + complementary slackness on the
    matching = optimal (to within ``N · tol`` in total). A search that reaches no free column
    gets edges from its source row to the nearest free columns.

    Returns ``(col4row (N,), u (N,), v (N,), n_extra_edges, n_rounds)``.
    """
    n = x.shape[0]
    ptr, col, cost = _build_candidates(knn_xy, knn_yx, x, y)
    # extra edges: per-row linked lists in growable arrays
    cap_e = 4 * n
    head = np.full(n, -1, np.int64)
    enext = np.empty(cap_e, np.int64)
    ecol = np.empty(cap_e, np.int64)
    ecost = np.empty(cap_e)
    n_e = 0
    u = np.empty(n)
    v = np.empty(n)
    col4row = np.full(n, -1, np.int64)
    row4col = np.full(n, -1, np.int64)
    # column reduction: v_j = min over candidate rows; a column claims its argmin row if free.
    v[:] = np.inf
    arg = np.full(n, -1, np.int64)
    for i in range(n):
        for e in range(ptr[i], ptr[i + 1]):
            j = col[e]
            if cost[e] < v[j]:
                v[j] = cost[e]
                arg[j] = i
    for j in range(n):
        i = arg[j]
        if col4row[i] == -1:
            col4row[i] = j
            row4col[j] = i
    for i in range(n):
        u[i] = _row_min_reduced(i, ptr, col, cost, head, enext, ecol, ecost, v)  # 0 for claimed rows
    dist = np.full(n, np.inf)
    pred = np.full(n, -1, np.int64)
    scanned = np.zeros(n, np.bool_)
    touched = np.empty(n, np.int64)
    vrows = np.empty(n + 1, np.int64)
    hk = np.empty(ptr[n] + cap_e + n)
    hv = np.empty(ptr[n] + cap_e + n, np.int64)
    red = np.empty(n)
    rounds = 0
    while True:
        rounds += 1
        for src in range(n):
            while col4row[src] == -1:
                if _augment(src, x, y, ptr, col, cost, head, enext, ecol, ecost, u, v, col4row,
                            row4col, dist, pred, scanned, touched, vrows, hk, hv):
                    break
                # no free column reachable: link src to its nearest free columns
                n_free = 0
                for j in range(n):
                    if row4col[j] == -1:
                        red[n_free] = _dist(x, y, src, j)
                        touched[n_free] = j
                        n_free += 1
                order = np.argsort(red[:n_free])
                n_add = min(n_free, max_add)
                if n_e + n_add > cap_e:
                    cap_e = 2 * (n_e + n_add)
                    enext = _grow_int(enext, cap_e)
                    ecol = _grow_int(ecol, cap_e)
                    ecost = _grow_float(ecost, cap_e)
                for t in range(n_add):
                    j = touched[order[t]]
                    ecol[n_e] = j
                    ecost[n_e] = red[order[t]]
                    enext[n_e] = head[src]
                    head[src] = n_e
                    n_e += 1
                u[src] = min(u[src], _row_min_reduced(src, ptr, col, cost, head, enext, ecol, ecost, v))
                if hk.shape[0] < ptr[n] + n_e + n:
                    hk = np.empty(ptr[n] + cap_e + n)
                    hv = np.empty(ptr[n] + cap_e + n, np.int64)
        # dense dual certificate
        nviol = 0
        for i in range(n):
            ui = u[i]
            nbad = 0
            for j in range(n):
                r = _dist(x, y, i, j) - ui - v[j]
                if r < -tol:
                    red[nbad] = r
                    touched[nbad] = j
                    nbad += 1
            if nbad == 0:
                continue
            nviol += 1
            n_add = min(nbad, max_add)
            order = np.argsort(red[:nbad])
            if n_e + n_add > cap_e:
                cap_e = 2 * (n_e + n_add)
                enext = _grow_int(enext, cap_e)
                ecol = _grow_int(ecol, cap_e)
                ecost = _grow_float(ecost, cap_e)
            for t in range(n_add):
                j = touched[order[t]]
                ecol[n_e] = j
                ecost[n_e] = _dist(x, y, i, j)
                enext[n_e] = head[i]
                head[i] = n_e
                n_e += 1
            u[i] = _row_min_reduced(i, ptr, col, cost, head, enext, ecol, ecost, v)
            j0 = col4row[i]
            if j0 != -1:
                row4col[j0] = -1
                col4row[i] = -1
        if hk.shape[0] < ptr[n] + n_e + n:
            hk = np.empty(ptr[n] + cap_e + n)
            hv = np.empty(ptr[n] + cap_e + n, np.int64)
        if nviol == 0:
            break
    return col4row, u, v, n_e, rounds


@_jit()
def _grow_int(a, cap):
    out = np.empty(cap, np.int64)
    out[: a.shape[0]] = a
    return out


@_jit()
def _grow_float(a, cap):
    out = np.empty(cap)
    out[: a.shape[0]] = a
    return out


# --------------------------------------------------------------------------------------------
# Dense: epsilon-scaling auction (approximate, with a bound) and exact SSP finishing
# --------------------------------------------------------------------------------------------


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


@_jit()
def dense_ssp_finish(c, col4row, v, tol):
    """Exact finishing: from dual prices ``v`` (feasible after setting u) and a full matching,
    unmatch rows whose edge is not tight, then shortest augmenting paths (dense, array-based
    Dijkstra as in scipy's LSA). Returns the optimal ``col4row`` and duals ``(u, v)``."""
    n = c.shape[0]
    u = np.empty(n)
    row4col = np.full(n, -1, np.int64)
    for i in range(n):
        best = np.inf
        ci = c[i]
        for j in range(n):
            r = ci[j] - v[j]
            if r < best:
                best = r
        u[i] = best
        j = col4row[i]
        if j != -1 and ci[j] - v[j] - best <= tol:
            row4col[j] = i
        else:
            col4row[i] = -1
    spc = np.empty(n)
    path = np.empty(n, np.int64)
    remaining = np.empty(n, np.int64)
    sr = np.zeros(n, np.bool_)
    sc = np.zeros(n, np.bool_)
    for cur in range(n):
        if col4row[cur] != -1:
            continue
        for j in range(n):
            spc[j] = np.inf
            sr[j] = False
            sc[j] = False
            remaining[j] = n - 1 - j
        nrem = n
        min_val = 0.0
        i = cur
        sink = -1
        while sink == -1:
            sr[i] = True
            idx = -1
            lowest = np.inf
            ci = c[i]
            ui = u[i]
            for it in range(nrem):
                j = remaining[it]
                r = min_val + ci[j] - ui - v[j]
                if r < spc[j]:
                    path[j] = i
                    spc[j] = r
                if spc[j] < lowest or (spc[j] == lowest and row4col[j] == -1):
                    lowest = spc[j]
                    idx = it
            min_val = lowest
            j = remaining[idx]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            sc[j] = True
            nrem -= 1
            remaining[idx] = remaining[nrem]
        u[cur] += min_val
        for r_ in range(n):
            if sr[r_] and r_ != cur:
                u[r_] += min_val - spc[col4row[r_]]
        for j in range(n):
            if sc[j]:
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
    return col4row, u, v


@_jit()
def grid_nn_serial(q, r, cells_per_point, idx_out, d2_out):
    """Serial exact NN for a list of items: ``q (K, N, 3)`` in ``r (K, M, 3)`` → ``idx_out``,
    ``d2_out (K, N)``. Releases the GIL, so Python threads can run several calls at once."""
    for s in range(q.shape[0]):
        lo, h, dims, start, order, pts = _grid_build(r[s], cells_per_point)
        _grid_query_all(q[s], lo, h, dims, start, order, pts, idx_out[s], d2_out[s])
