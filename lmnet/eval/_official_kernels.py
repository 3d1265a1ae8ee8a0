"""Numba kernels of the paper-faithful evaluation (:mod:`lmnet.eval.official`).

- :func:`icp_gt_onto_pred`: the released ICP loop (the GT moves onto a fixed prediction), on the
  exact uniform-grid nearest neighbours of :mod:`lmnet.losses.kernels`, built once on the fixed
  cloud;
- :func:`auction_match`: a sequential re-implementation of the released GPU auction's bidding
  schedule (one bidder at a time from a circular queue, ε from 1e-4, ×100 after every 40·n bids,
  capped at 1, stop after 40·n bids at ε = 1).

Not public API. Without numba the functions run as plain (slow) Python; :mod:`lmnet.eval.official`
then uses its NumPy/SciPy code paths for ICP instead.
"""

from __future__ import annotations

import math

import numpy as np

from lmnet.losses.kernels import (HAVE_NUMBA, apply_rigid, bid_scan_f32, grid_build, grid_query_all, kabsch_into,
                                  mean_sqrt)
from lmnet.losses.kernels import jit as _jit

__all__ = ["HAVE_NUMBA", "icp_gt_onto_pred", "auction_match"]


@_jit()
def icp_gt_onto_pred(gt, pred, tol, max_iter, cells_per_point):
    """The released ICP of ``gt (M, 3)`` (moving) onto ``pred (N, 3)`` (fixed), float64.

    Per iteration: nearest ``pred`` point of every moved GT point, its mean Euclidean distance
    ``err`` (measured *before* this iteration's update), the Kabsch fit moved GT → matched points,
    applied; stop when ``|prev - err| < tol`` (``prev`` starts at 0), after at most ``max_iter``.
    The final transform is a fresh Kabsch fit from the original GT to the moved GT (point i to
    point i). This loop stays apart from :func:`lmnet.losses._kernels_icp.icp_grid` on purpose: its error
    is measured before the update, its stopping rule and final fit differ, and a shared kernel with
    a mode flag would branch inside the per-point loop that numba vectorises. Returns
    ``(R (3, 3), t (3,), iterations)`` with ``moved ≈ gt @ R.T + t``.
    """
    m = gt.shape[0]
    lo, h, dims, start, order, pts = grid_build(pred, cells_per_point)
    cur = gt.copy()
    idx = np.empty(m, np.int64)
    d2 = np.empty(m)
    r = np.empty((3, 3))
    t = np.empty(3)
    prev = 0.0
    it = 0
    for k in range(max_iter):
        it = k + 1
        grid_query_all(cur, lo, h, dims, start, order, pts, idx, d2)
        err = mean_sqrt(d2)
        kabsch_into(cur, pred, idx, r, t)
        apply_rigid(cur, r, t)
        if abs(prev - err) < tol:
            break
        prev = err
    ident = np.arange(m)
    r_fin = np.empty((3, 3))
    t_fin = np.empty(3)
    kabsch_into(gt, cur, ident, r_fin, t_fin)
    return r_fin, t_fin, it


@_jit()
def _released_cost(x, y):
    """``(N, N)`` float32 costs ``c[i, j] = |x_i − y_j|`` of :func:`auction_match`: float32
    coordinate differences, the square root rounded to float32."""
    n = x.shape[0]
    c = np.empty((n, n), np.float32)
    for i in range(n):
        for j in range(n):
            d0 = np.float32(x[i, 0] - y[j, 0])
            d1 = np.float32(x[i, 1] - y[j, 1])
            d2 = np.float32(x[i, 2] - y[j, 2])
            c[i, j] = np.float32(math.sqrt(d0 * d0 + d1 * d1 + d2 * d2))
    return c


@_jit()
def auction_match(x, y):
    """Released-schedule auction matching of bidders ``x (N, 3)`` to objects ``y (N, 3)``, float32.

    Cost ``c[i, j] = |x_i − y_j|`` (float32). Bidders wait in a circular queue (initially 0..N-1).
    The bidder at the head finds its best object ``j*`` (smallest ``c + price``, lowest index on
    ties) and the second-best value, raises ``price[j*]`` by ``second − best + ε`` and takes
    ``j*``; the previous owner, if any, joins the tail. ε starts at 1e-4; after every 40·N bids it
    is multiplied by 100 (capped at 1); 40·N bids at ε = 1 end the auction. Prices and owners
    carry over between ε values (no restart).

    Returns ``(match (N,) int64, bids)``: ``y[match[i]]`` is ``x_i``'s object, or −1 for a bidder
    left without one when the bid limit ended the auction (not reached for clouds in the unit cube:
    at ε = 1 a price can only rise above the largest cost a few times).
    """
    n = x.shape[0]
    c = _released_cost(x, y)
    price = np.zeros(n, np.float32)
    buf = np.empty(n, np.float32)
    bits = buf.view(np.int32)
    owner = np.full(n, -1, np.int64)
    queue = np.arange(n)
    qhead = 0
    qlen = n
    tol = np.float32(1e-4)
    cnt = 0
    bids = 0
    while qlen > 0:
        i = queue[qhead]
        # smallest and second-smallest c[i, j] + price[j] (lowest index on ties), SIMD passes
        best, best2, bestj = bid_scan_f32(c[i], price, buf, bits)
        qhead += 1
        if qhead >= n:
            qhead -= n
        qlen -= 1
        price[bestj] += best2 - best + tol
        old = owner[bestj]
        if old != -1:
            tail = qhead + qlen
            if tail >= n:
                tail -= n
            queue[tail] = old
            qlen += 1
        owner[bestj] = i
        cnt += 1
        bids += 1
        if cnt == 40 * n:
            if tol == np.float32(1.0):
                qlen = 0
            tol = min(np.float32(1.0), np.float32(tol * np.float32(100.0)))
            cnt = 0
    match = np.full(n, -1, np.int64)
    for j in range(n):
        if owner[j] != -1:
            match[owner[j]] = j
    return match, bids
