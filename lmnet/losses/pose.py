"""Camera-pose accuracy as DPC reports it (Insafutdinov & Dosovitskiy 2018): the angular error of each
view's predicted camera rotation after **one global rotation** aligns the predicted frame with the
true one, then ``accuracy_30`` (fraction of views within 30°) and ``median_deg``.

Conventions (stated once, here)
-------------------------------
- A pose is the **world → camera rotation** ``R (3, 3)`` of :func:`lmnet.camera.r2n2_extrinsics`
  (``x_cam = R p`` for ``p`` in the 3D-LMNet frame; :func:`rotations_from_view_angles` builds it from
  R2N2 ``(azimuth, elevation)`` degrees). Arrays are float64 NumPy, ``(V, 3, 3)`` for ``V`` views.
- The angle between two rotations ``A``, ``B`` is the geodesic one, ``arccos((tr(AᵀB) − 1) / 2)``,
  in **degrees**, in ``[0, 180]``.
- A network that learns shape and pose from masks may learn its canonical frame rotated by some
  ``G`` against the dataset's: view ``i``'s prediction is then ``R_pred,i G``. A symmetric object
  (``symmetries``: rotations ``S`` of the object frame that leave the shape unchanged, identity
  included) is seen identically by the cameras ``R_true,i S``. So the error of view ``i`` is
  ``e_i(G) = min_S angle(R_pred,i G, R_true,i S) = min_S angle(G, R_pred,iᵀ R_true,i S)``.

The alignment
-------------
``G`` minimises ``Σ_i e_i(G)``, the L1 (geodesic-median) rotation average of the relative rotations
``Q_i = R_pred,iᵀ R_true,i S``. Why L1 and not only the closed-form chordal L2 mean (SVD of
``Σ Q_i``): unknown-pose training typically gets most views right and some wrong by a large angle
(a front / back flip); an L2 mean is dragged towards those outliers, inflating every error, while
the L1 optimum follows the majority, which is what an accuracy at 30° and a median measure.
It is found by seeding with the chordal L2 mean and with up to ``n_seeds`` of the ``Q_i`` themselves
(evenly spaced: one seed lies near the majority mode even when it is not the mean), keeping the
best few by the objective, and refining each with Weiszfeld iterations on SO(3) (Hartley et al.,
"L1 rotation averaging using the Weiszfeld algorithm", CVPR 2011), re-choosing each view's nearest
symmetry at every step. ``tests/test_pose_metrics.py`` checks it against a brute-force search over
a grid of rotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from lmnet.camera import r2n2_extrinsics

#: degrees: a view is "accurate" within this angle (DPC's threshold)
ACCURACY_THRESHOLD_DEG = 30.0


def rotations_from_view_angles(azimuth_deg, elevation_deg) -> np.ndarray:
    """R2N2 view angles ``(V,)`` degrees (``rendering_metadata.txt``) → world → camera rotations
    ``(V, 3, 3)`` float64, the rotation part of :func:`lmnet.camera.r2n2_extrinsics`."""
    az = np.atleast_1d(np.asarray(azimuth_deg, dtype=np.float64))
    el = np.atleast_1d(np.asarray(elevation_deg, dtype=np.float64))
    R, _ = r2n2_extrinsics(torch.from_numpy(az), torch.from_numpy(el), 1.0)
    return R.numpy().astype(np.float64)


def axis_angle_matrix(axis: Sequence[float], angle_deg: float) -> np.ndarray:
    """The rotation ``(3, 3)`` by ``angle_deg`` degrees about ``axis`` (right hand, normalised here)."""
    u = np.asarray(axis, dtype=np.float64)
    u = u / np.linalg.norm(u)
    return _exp(u[None] * np.deg2rad(angle_deg))[0]


#: the up axis of the 3D-LMNet frame (+x points down, along gravity; lmnet.camera)
UP_AXIS = (-1.0, 0.0, 0.0)


def rotation_about_up(angle_deg: float) -> np.ndarray:
    """Rotation ``(3, 3)`` of the object frame about the up axis by ``angle_deg``: a camera at
    azimuth ``a + angle_deg`` sees the object as the camera at ``a`` sees it rotated by this
    (``R(a + θ, e) = R(a, e) @ rotation_about_up(θ)``, tested)."""
    return axis_angle_matrix(UP_AXIS, angle_deg)


def symmetry_group(name: str) -> list[np.ndarray]:
    """Named object symmetries, identity first: ``"none"``; ``"up180"`` (a rectangular table, a
    shape with a front / back turn symmetry); ``"up90"`` (a square table)."""
    steps = {"none": 1, "up180": 2, "up90": 4}
    if name not in steps:
        raise ValueError(f"unknown symmetry {name!r}; expected one of {sorted(steps)}")
    return [rotation_about_up(360.0 * k / steps[name]) for k in range(steps[name])]


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle in degrees between rotations ``a (..., 3, 3)`` and ``b (..., 3, 3)`` (broadcast)."""
    cos = (np.einsum("...ij,...ij->...", a, b) - 1.0) / 2.0  # tr(aᵀ b)
    return np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))


@dataclass
class AlignedPoseErrors:
    """What :func:`aligned_pose_errors` returns.

    ``errors_deg (V,)``: each view's angle after the alignment (its nearest symmetry);
    ``alignment (3, 3)``: ``G``; ``symmetry (V,)``: index of the symmetry each view took;
    ``accuracy_30``: fraction of views with an error below :data:`ACCURACY_THRESHOLD_DEG`;
    ``median_deg``: the median error."""

    errors_deg: np.ndarray
    alignment: np.ndarray
    symmetry: np.ndarray
    accuracy_30: float
    median_deg: float


def view_errors(alignment: np.ndarray, relative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``alignment (..., 3, 3)`` candidates ``G`` and ``relative (V, K, 3, 3)`` rotations
    ``R_pred,iᵀ R_true,i S_k`` → ``(errors (..., V) degrees, symmetry index (..., V))``, the min over k."""
    ang = rotation_angle_deg(alignment[..., None, None, :, :], relative)  # (..., V, K)
    return ang.min(-1), ang.argmin(-1)


def aligned_pose_errors(pred: np.ndarray, true: np.ndarray, symmetries: Sequence[np.ndarray] | None = None,
                        *, n_seeds: int = 64, refine: int = 4, iterations: int = 100) -> AlignedPoseErrors:
    """Per-view angular errors (degrees) of predicted vs true world → camera rotations ``(V, 3, 3)``
    after the best global rotation (the L1 rotation average, module docs), each view taking its
    best of ``symmetries`` (rotations ``(3, 3)`` of the object frame; identity added if missing).
    ``n_seeds``, ``refine``, ``iterations``: the search (module docs)."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if pred.ndim != 3 or pred.shape[1:] != (3, 3) or pred.shape != true.shape or len(pred) == 0:
        raise ValueError(f"aligned_pose_errors expects pred and true (V>=1, 3, 3), got {pred.shape} and {true.shape}")
    sym = [np.eye(3)] + [np.asarray(s, dtype=np.float64) for s in (symmetries or [])
                         if not np.allclose(s, np.eye(3))]
    relative = np.einsum("vji,vjk,skl->vsil", pred, true, np.stack(sym))  # (V, K, 3, 3): pred_iᵀ true_i S_k
    seeds = np.concatenate([_project_to_rotation(relative[:, 0].sum(0))[None], _spread_seeds(relative, n_seeds)])
    cost = view_errors(seeds, relative)[0].sum(-1)
    best_g, best_cost = seeds[int(cost.argmin())], float(cost.min())
    for i in np.argsort(cost, kind="stable")[:refine]:
        g = weiszfeld(seeds[i], relative, iterations)
        c = float(view_errors(g, relative)[0].sum())
        if c < best_cost:
            best_g, best_cost = g, c
    err, k = view_errors(best_g, relative)
    return AlignedPoseErrors(errors_deg=err, alignment=best_g, symmetry=k,
                             accuracy_30=float((err < ACCURACY_THRESHOLD_DEG).mean()), median_deg=float(np.median(err)))


def weiszfeld(start: np.ndarray, relative: np.ndarray, iterations: int = 100, tol_rad: float = 1e-10) -> np.ndarray:
    """Weiszfeld iterations for ``argmin_G Σ_i min_k angle(G, relative[i, k])`` from ``start (3, 3)``;
    ``relative (V, K, 3, 3)``. Each step moves ``G`` by the weighted mean (weights ``1 / angle``) of
    the log-map residuals to each view's nearest ``relative[i, k]``."""
    g = start
    views = np.arange(relative.shape[0])
    for _ in range(iterations):
        _, k = view_errors(g, relative)
        v = _log(np.einsum("ji,vjk->vik", g, relative[views, k]))  # (V, 3): log(Gᵀ Q_i)
        w = 1.0 / np.maximum(np.linalg.norm(v, axis=1), 1e-9)
        step = (w[:, None] * v).sum(0) / w.sum()
        g = _project_to_rotation(g @ _exp(step[None])[0])
        if np.linalg.norm(step) < tol_rad:
            break
    return g


def _spread_seeds(relative: np.ndarray, n: int) -> np.ndarray:
    flat = relative.reshape(-1, 3, 3)
    return flat[np.unique(np.linspace(0, len(flat) - 1, min(n, len(flat))).round().astype(int))]


def _project_to_rotation(m: np.ndarray) -> np.ndarray:
    """The rotation nearest to ``m (3, 3)`` in the Frobenius norm (SVD, determinant +1)."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _exp(v: np.ndarray) -> np.ndarray:
    """Axis-angle vectors ``(N, 3)`` (radians) → rotations ``(N, 3, 3)`` (Rodrigues)."""
    theta = np.linalg.norm(v, axis=1)[:, None, None]
    k = np.zeros((len(v), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    k = k - k.transpose(0, 2, 1)
    safe = np.where(theta > 1e-12, theta, 1.0)
    a = np.where(theta > 1e-12, np.sin(safe) / safe, 1.0)
    b = np.where(theta > 1e-12, (1.0 - np.cos(safe)) / safe ** 2, 0.5)
    return np.eye(3) + a * k + b * (k @ k)


def _log(r: np.ndarray) -> np.ndarray:
    """Rotations ``(N, 3, 3)`` → axis-angle vectors ``(N, 3)`` (radians, angle in ``[0, π]``), through
    the quaternion (Bar-Itzhack's eigenvector, stable near π)."""
    m = r
    k = np.zeros((len(r), 4, 4))
    k[:, 0, 0] = m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2]
    k[:, 1, 1] = m[:, 1, 1] - m[:, 0, 0] - m[:, 2, 2]
    k[:, 2, 2] = m[:, 2, 2] - m[:, 0, 0] - m[:, 1, 1]
    k[:, 3, 3] = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    k[:, 1, 0], k[:, 2, 0], k[:, 2, 1] = m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1]
    k[:, 3, 0], k[:, 3, 1], k[:, 3, 2] = m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]
    w, vec = np.linalg.eigh(k / 3.0)  # lower triangle
    q = vec[np.arange(len(r)), :, w.argmax(1)]  # (x, y, z, w)
    q = q * np.where(q[:, 3:] < 0, -1.0, 1.0)
    s = np.linalg.norm(q[:, :3], axis=1)
    angle = 2.0 * np.arctan2(s, q[:, 3])
    return q[:, :3] * np.where(s > 1e-12, angle / np.maximum(s, 1e-300), 2.0)[:, None]


__all__ = ["ACCURACY_THRESHOLD_DEG", "UP_AXIS", "AlignedPoseErrors", "aligned_pose_errors", "axis_angle_matrix",
           "rotation_about_up", "rotation_angle_deg", "rotations_from_view_angles", "symmetry_group", "view_errors",
           "weiszfeld"]
