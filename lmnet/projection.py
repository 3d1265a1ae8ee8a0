"""Differentiable point-cloud → soft-silhouette projection (reconstruction without rendering).

After Insafutdinov & Dosovitskiy (NeurIPS 2018) as used by Zubić & Liò (docs/training.md#projection), with the camera
of :mod:`lmnet.camera` so that a projected ground-truth cloud lands on the alpha mask of its own
R2N2-style render.

Pipeline for a batch of clouds ``(B, N, 3)`` (3D-LMNet frame) and one view per cloud:

1. perspective projection with the R2N2 camera into the 128 px network crop, rescaled to the grid
   (``size × size`` pixels, default 64, so one grid pixel covers ``128 / size`` crop pixels), and
   depth mapped linearly from ``[d − 0.5, d + 0.5]`` (the unit-diagonal object is inside radius 0.5
   of the origin; ``d`` is the camera distance) to ``depth_bins`` slices;
2. trilinear splatting of every point (mass 1) into the ``(depth_bins, size, size)`` grid;
3. separable Gaussian smoothing with standard deviation ``sigma`` in voxels, the kernel scaled to a
   peak of 1 so that an isolated point yields occupancy ≈ 1 at its centre whatever ``sigma``
   (anneal ``sigma`` from ~3 to ~0.2 during training with :func:`annealed_sigma`);
4. occupancy ``o = clamp(grid, 0, 1)``; ray-termination probability of slice ``k`` is
   ``o_k · Π_{j<k} (1 − o_j)``; their sum over depth, ``1 − Π_k (1 − o_k)``, is the soft silhouette.

Everything is vectorised torch, batched, differentiable w.r.t. the points, CPU or CUDA.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lmnet import camera



def annealed_sigma(step: int, total_steps: int, start: float = 3.0, end: float = 0.2) -> float:
    """Geometric annealing of the blur σ (voxels) from ``start`` to ``end`` over ``total_steps``."""
    if total_steps <= 1:
        return end
    t = min(max(step / (total_steps - 1), 0.0), 1.0)
    return float(start * (end / start) ** t)


def _gaussian_matrix(n: int, sigma: float, device, dtype) -> torch.Tensor:
    """``(n, n)`` banded matrix ``K[i, j] = exp(-(i - j)² / 2σ²)`` (peak 1, zero beyond 3σ): multiplying
    an axis by it is a zero-padded Gaussian blur along that axis, and a matmul is far faster on CPU
    than ``conv3d`` with 1-D kernels."""
    i = torch.arange(n, device=device, dtype=dtype)
    d = i[:, None] - i[None, :]
    k = torch.exp(-0.5 * (d / max(sigma, 1e-6)) ** 2)
    return k * (d.abs() <= max(1.0, math.ceil(3.0 * sigma)))


def _blur3d(grid: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, D, H, W)`` with a peak-1 kernel of std ``sigma`` voxels."""
    if sigma <= 0:
        return grid
    B, D, H, W = grid.shape
    kd = _gaussian_matrix(D, sigma, grid.device, grid.dtype)
    kh = _gaussian_matrix(H, sigma, grid.device, grid.dtype)
    kw = _gaussian_matrix(W, sigma, grid.device, grid.dtype)
    x = grid @ kw                                   # along W
    x = kh @ x                                      # along H (broadcast over B, D)
    x = (kd @ x.reshape(B, D, H * W)).reshape(B, D, H, W)  # along D
    return x


def points_to_grid(points: torch.Tensor, azimuth, elevation, distance_ratio, fov=25.0, *,
                   size: int = 64, depth_bins: int = 64) -> torch.Tensor:
    """Trilinearly splat projected points into a camera-aligned grid.

    Args:
        points: ``(B, N, 3)`` in the 3D-LMNet frame.
        azimuth, elevation (degrees), distance_ratio, fov (degrees): ``(B,)`` tensors or scalars.
    Returns:
        ``(B, depth_bins, size, size)`` point mass per voxel (each point contributes 1 in total,
        less if it falls partly outside the grid). Row 0 is the top of the image, slice 0 the nearest.
    """
    B, N, _ = points.shape
    uv, depth = camera.project_points(points, azimuth, elevation, distance_ratio, fov,
                                      image_size=camera.R2N2_IMAGE_SIZE, crop_offset=camera.CROP_OFFSET)
    dist = torch.as_tensor(distance_ratio, dtype=points.dtype, device=points.device)
    dist = (dist * camera.R2N2_DISTANCE_SCALE).reshape(-1, 1).expand(B, 1)
    scale = size / camera.CROP_SIZE
    # continuous voxel coordinates with voxel centres at integer values
    cx = uv[..., 0] * scale - 0.5
    cy = uv[..., 1] * scale - 0.5
    cz = (depth - (dist - 0.5)) * depth_bins - 0.5
    coords = torch.stack([cz, cy, cx], -1)  # (B, N, 3) in (D, H, W) order
    base = torch.floor(coords.detach())
    frac = coords - base
    base = base.long()
    dims = torch.tensor([depth_bins, size, size], device=points.device)
    grid = points.new_zeros(B, depth_bins * size * size)
    for corner in range(8):
        offs = torch.tensor([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1], device=points.device)
        idx = base + offs
        w = torch.where(offs.bool(), frac, 1.0 - frac).prod(-1)  # (B, N)
        inside = ((idx >= 0) & (idx < dims)).all(-1)
        flat = (idx[..., 0] * size + idx[..., 1]) * size + idx[..., 2]
        flat = torch.where(inside, flat, torch.zeros_like(flat))
        grid = grid.scatter_add(1, flat, w * inside.to(w.dtype))
    return grid.view(B, depth_bins, size, size)


def soft_silhouette(points: torch.Tensor, azimuth, elevation, distance_ratio, fov=25.0, *,
                    size: int = 64, depth_bins: int = 64, sigma: float = 1.0) -> torch.Tensor:
    """Soft silhouette ``(B, size, size)`` in ``[0, 1]`` of clouds ``(B, N, 3)`` seen from R2N2 views.

    See the module docstring for the steps; ``sigma`` is the blur in voxels (σ → 0 gives the sharpest
    silhouette the grid resolution allows).
    """
    grid = points_to_grid(points, azimuth, elevation, distance_ratio, fov, size=size, depth_bins=depth_bins)
    occ = _blur3d(grid, sigma).clamp(0.0, 1.0)
    # 1 - prod(1 - o) computed in log space; o == 1 gives log(0) = -inf → silhouette 1, finite grads
    transmittance = torch.exp(torch.log1p(-occ.clamp(max=1.0 - 1e-6)).sum(1))
    return 1.0 - transmittance


def ray_termination(points: torch.Tensor, azimuth, elevation, distance_ratio, fov=25.0, *,
                    size: int = 64, depth_bins: int = 64, sigma: float = 1.0) -> torch.Tensor:
    """Per-slice ray-termination probabilities ``(B, depth_bins + 1, size, size)``: slice ``k`` is
    ``o_k Π_{j<k}(1 − o_j)`` and the last entry is the probability that the ray escapes. Summing
    the first ``depth_bins`` entries gives :func:`soft_silhouette`; weighting them by depth gives an
    expected depth map."""
    grid = points_to_grid(points, azimuth, elevation, distance_ratio, fov, size=size, depth_bins=depth_bins)
    occ = _blur3d(grid, sigma).clamp(0.0, 1.0 - 1e-6)
    log_free = torch.log1p(-occ)
    before = torch.cumsum(log_free, 1) - log_free  # Σ_{j<k} log(1 − o_j)
    p = occ * torch.exp(before)
    escape = torch.exp(log_free.sum(1, keepdim=True))
    return torch.cat([p, escape], 1)


def mask_to_grid_resolution(mask: torch.Tensor, size: int = 64) -> torch.Tensor:
    """Area-downsample dataset masks ``(B, 1, 128, 128)`` (or ``(B, 128, 128)``) to ``(B, size, size)``."""
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    return F.adaptive_avg_pool2d(mask, size).squeeze(1)


def silhouette_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """L2 between soft silhouettes ``(B, H, W)``: per item the mean squared difference over pixels;
    ``reduction`` over the batch: ``"mean"``, ``"sum"`` or ``"none"`` → ``(B,)``."""
    if pred.shape != target.shape:
        raise ValueError(f"silhouette_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    per = ((pred - target) ** 2).flatten(1).mean(1)
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    if reduction == "mean":
        return per.mean()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def silhouette_iou(pred: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """IoU ``(B,)`` of two silhouettes ``(B, H, W)`` thresholded at ``threshold``."""
    a, b = pred > threshold, target > threshold
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float().clamp(min=1)
    return inter / union
