"""Chamfer terms and nearest-neighbour distances of one pair of NumPy clouds (no torch).

The evaluation protocols and the mesh fit measure single pairs in worker processes that need no
torch; :mod:`lmnet.losses.chamfer` is the batched, differentiable torch loss with the same
convention. Both use the exact uniform-grid nearest neighbours of :mod:`lmnet.losses._kernels_nn`
(``scipy.spatial.cKDTree`` without numba; the two give the same distances to the last bit).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from lmnet.losses import _kernels_nn

#: grid cells per reference point for the exact grid nearest neighbours (as in lmnet.losses.chamfer)
GRID_CELLS_PER_POINT = 1.0


def _cloud(name: str, points) -> np.ndarray:
    arr = np.ascontiguousarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected a point cloud of shape (N, 3) with N >= 1, got {arr.shape}")
    return arr


def nn_distances(a, b) -> np.ndarray:
    """``(N,)`` float64 Euclidean (not squared) distance from each point of ``a (N, 3)`` to its
    nearest point of ``b (M, 3)``; inputs are converted to float64."""
    a = _cloud("nn_distances a", a)
    b = _cloud("nn_distances b", b)
    if not _kernels_nn.HAVE_NUMBA:
        return cKDTree(b).query(a)[0]
    idx = np.empty((1, a.shape[0]), np.int64)
    d2 = np.empty((1, a.shape[0]))
    _kernels_nn.grid_nn_serial(a[None], b[None], GRID_CELLS_PER_POINT, idx, d2)
    return np.sqrt(d2[0])


def chamfer_terms(pred, gt) -> dict[str, float]:
    """Chamfer of one pair ``pred (N, 3)``, ``gt (M, 3)``, raw units (not ×100), float64:

    - ``cd`` = mean_gt min_pred ‖g − p‖ + mean_pred min_gt ‖p − g‖ (Euclidean, a **sum** of the two
      directional means, distances not squared: the paper's number);
    - ``cd_gt2pred``, ``cd_pred2gt``: the two terms (coverage of the GT, precision of the prediction);
    - ``cd_sq`` = the same sum with squared distances (the PyTorch3D-style ``chamfer_distance``), a
      different quantity.
    """
    return chamfer_from_distances(nn_distances(gt, pred), nn_distances(pred, gt))


def chamfer_from_distances(d_gp: np.ndarray, d_pg: np.ndarray) -> dict[str, float]:
    """:func:`chamfer_terms` from the NN distances already taken: ``d_gp (M,)`` from each GT point to
    the prediction, ``d_pg (N,)`` from each predicted point to the GT (Euclidean, raw units), so a
    caller that needs the distances for something else (the F-score of :mod:`lmnet.eval.protocol`)
    takes them once."""
    return {
        "cd": float(d_gp.mean() + d_pg.mean()),
        "cd_gt2pred": float(d_gp.mean()),
        "cd_pred2gt": float(d_pg.mean()),
        "cd_sq": float((d_gp ** 2).mean() + (d_pg ** 2).mean()),
    }
