"""Exact EMD of one pair of NumPy clouds, without torch: the solver behind
:func:`lmnet.losses.emd.emd_exact` (which adds batches, tensors and the torch backend), and what the
evaluation protocol calls in its worker processes so that they never import torch.

Convention: EMD(x, y) = min over one-to-one matchings π of mean_i |x_i − y_π(i)|, the **mean
Euclidean** (not squared) distance under the optimal matching, raw units (not ×100). The algorithm
is described in :mod:`lmnet.losses.emd`.
"""

from __future__ import annotations

import numpy as np

from lmnet.losses import _kernels_emd

#: exact mode: final auction ε as a fraction of the mean cost before the exact finishing step
_EXACT_EPS_FRAC = 4e-5
#: exact mode: first ε as a fraction of the largest cost (a few NN spacings of a 1024-point shape;
#: starting at 0.25 only adds phases) and the ε reduction factor per phase. Tuned on chair-like
#: pairs at 1024 points (noisy resample / other chair; docs/results.md#kernel-tuning); the exact
#: finish makes the result independent of these.
_EXACT_EPS_START_FRAC = 0.05
_EXACT_EPS_FACTOR = 4.0
#: exact mode: the float32 auction keeps ε >= this fraction of the largest cost (~64 float32 ulps
#: of a price of that size), so every bid moves a price
_F32_EPS_FLOOR = 2.0 ** -18


def exact_perm(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Optimal ``perm`` (x_i ↔ y_perm[i]) for one pair of (N, 3) float64 clouds.

    Dense float64 cost (and a float32 copy for the auction), ε-scaling auction with SIMD bids from
    ε₀ = ``_EXACT_EPS_START_FRAC`` · max cost down to ``_EXACT_EPS_FRAC`` · mean cost, then the
    exact finish (:func:`~lmnet.losses._kernels_emd.dense_ssp_finish_simd`): duals made feasible on
    all N² pairs, non-tight rows re-inserted by shortest augmenting paths — an optimal primal-dual
    pair in float64, so the matching is optimal whatever the auction's float32 rounding did.
    """
    n = x.shape[0]
    if not _kernels_emd.HAVE_NUMBA or n < 8:
        from scipy.optimize import linear_sum_assignment
        from scipy.spatial.distance import cdist

        return linear_sum_assignment(cdist(x, y))[1].astype(np.int64)
    c = np.empty((n, n))
    c32 = np.empty((n, n), np.float32)
    cmax, cmean = _kernels_emd.dense_cost_into(x, y, c, c32)
    if cmax == 0.0:
        return np.arange(n, dtype=np.int64)
    # ε stays far above float32 resolution of the bid values (prices are O(cmax))
    eps_final = max(_EXACT_EPS_FRAC * cmean, _F32_EPS_FLOOR * cmax)
    col4row, prices, _ = _kernels_emd.auction_f32(c32, eps_final, _EXACT_EPS_START_FRAC * cmax,
                                              _EXACT_EPS_FACTOR)
    del c32
    col4row, _, _ = _kernels_emd.dense_ssp_finish_simd(c, col4row, -prices, 1e-13 * cmax)
    return col4row


def emd_exact_pair(x, y) -> float:
    """Exact EMD of ``x, y (N, 3)`` (equal N, finite; computed in float64) → a float."""
    xn = np.ascontiguousarray(np.asarray(x, np.float64))
    yn = np.ascontiguousarray(np.asarray(y, np.float64))
    if xn.ndim != 2 or xn.shape[-1] != 3 or xn.shape != yn.shape or xn.shape[0] == 0:
        raise ValueError(f"emd_exact_pair: x and y must both be (N, 3), N > 0, got {xn.shape} and {yn.shape}")
    if not (np.isfinite(xn).all() and np.isfinite(yn).all()):
        raise ValueError("emd_exact_pair: clouds contain NaN or inf")
    p = exact_perm(xn, yn)
    return float(np.linalg.norm(xn - yn[p], axis=1).mean())
