"""Losses and metrics of the pose candidates and the student head (``pose="unknown"``).

Angles are R2N2 view angles ``(azimuth, elevation)`` in **degrees** (:mod:`lmnet.camera`).
"""

from __future__ import annotations

import numpy as np
import torch

from lmnet.camera import azimuth_unit, wrap_degrees

#: degrees: Δelevation / 30° is weighted like the azimuth unit vectors in :func:`student_loss`
STUDENT_ELEVATION_SCALE = 30.0


def select_pose_winner(losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``losses (B, V, K)`` per candidate → ``(min loss (B, V), winner index (B, V))``; the gradient
    flows only through each view's winning candidate (ties: the lowest index)."""
    best, idx = losses.min(dim=-1)
    return best, idx


def student_loss(student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``‖u(az_s) − u(az_t)‖² + ((el_s − el_t) / 30°)²`` for ``(R, 2)`` angle pairs
    in degrees (``u`` = unit vector of the azimuth); ``target`` is treated as a constant."""
    target = target.detach()
    d_az = (azimuth_unit(student[:, 0]) - azimuth_unit(target[:, 0])).pow(2).sum(-1)
    d_el = ((student[:, 1] - target[:, 1]) / STUDENT_ELEVATION_SCALE).pow(2)
    return (d_az + d_el).mean()


def pose_errors(pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray) -> dict[str, float]:
    """Angle errors of predicted vs true ``(R, 2)`` (azimuth, elevation) in degrees.

    Returns ``azimuth_mean_deg`` / ``azimuth_median_deg`` (absolute wrapped difference),
    ``elevation_mean_deg``, ``azimuth_within_15_deg`` (fraction) and the same azimuth figures after
    the single global azimuth offset (searched in 1° steps) that minimises the mean error
    (``aligned_*``, ``azimuth_offset_deg``): the learned frame may be rotated about the vertical.
    """
    pred = torch.as_tensor(np.asarray(pred), dtype=torch.float64)
    gt = torch.as_tensor(np.asarray(gt), dtype=torch.float64)
    d = wrap_degrees(pred[:, 0] - gt[:, 0]).abs()
    offsets = torch.arange(0.0, 360.0, 1.0, dtype=torch.float64)
    da = wrap_degrees(pred[None, :, 0] - offsets[:, None] - gt[None, :, 0]).abs()
    j = int(da.mean(1).argmin())
    return {"azimuth_mean_deg": float(d.mean()), "azimuth_median_deg": float(d.median()),
            "azimuth_within_15_deg": float((d <= 15).double().mean()),
            "elevation_mean_deg": float((pred[:, 1] - gt[:, 1]).abs().mean()),
            "azimuth_offset_deg": float(offsets[j]), "aligned_azimuth_mean_deg": float(da[j].mean()),
            "aligned_azimuth_median_deg": float(da[j].median()),
            "aligned_azimuth_within_15_deg": float((da[j] <= 15).double().mean())}
