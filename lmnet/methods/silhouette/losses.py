"""Mask-only losses of the silhouette training: soft silhouettes against masks, and the two
directions of a 2D Chamfer between projected points and mask pixels.

Conventions, stated once here:

- images are square grids of ``S × S`` pixels covering the 128² R2N2 crop; distances are in
  **image widths** (pixels / S), never ×100;
- :func:`silhouette_l2` is the per-view **mean over pixels** of the squared difference (L2) of a
  soft silhouette (:func:`project_views`) and the mask;
- :func:`mask_distance_loss` and :func:`mask_coverage_loss` are **means** (over items, views and
  points / foreground pixels) of Euclidean (not squared) 2D distances.

Cameras are R2N2 views ``(azimuth, elevation)`` in degrees, distance ratio and fov
(:mod:`lmnet.camera`), as tensors ``(B, V)``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import distance_transform_edt

from lmnet import camera, projection
from lmnet.losses.chamfer import nearest_neighbors, safe_norm
from lmnet.methods.silhouette.pose_losses import select_pose_winner


def mask_distance_field(masks: torch.Tensor) -> torch.Tensor:
    """``(V, S, S)`` masks → ``(V, S, S)`` Euclidean distance from each pixel centre to the nearest
    pixel with mask > 0.5, in units of the image width (pixels / S); 0 inside the mask. An empty mask
    gives 0 everywhere (no signal rather than an infinite one)."""
    out = np.zeros(tuple(masks.shape), np.float32)
    for i, m in enumerate(masks.numpy() > 0.5):
        if m.any():
            out[i] = distance_transform_edt(~m) / m.shape[-1]
    return torch.from_numpy(out)


def project_views(points: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor,
                  distance_ratio: torch.Tensor, fov: torch.Tensor, *, sigma: float, size: int,
                  depth_bins: int) -> torch.Tensor:
    """Soft silhouettes of each cloud from several cameras.

    ``points (B, N, 3)``; camera tensors ``(B, C)`` (degrees / ratio / degrees) → ``(B, C, size, size)``.
    """
    B, C = azimuth.shape
    pts = points.unsqueeze(1).expand(B, C, *points.shape[1:]).reshape(B * C, *points.shape[1:])
    sil = projection.soft_silhouette(pts, azimuth.reshape(-1), elevation.reshape(-1), distance_ratio.reshape(-1),
                                     fov.reshape(-1), size=size, depth_bins=depth_bins, sigma=sigma)
    return sil.view(B, C, size, size)


def winning_candidate_silhouettes(points: torch.Tensor, masks: torch.Tensor, candidates: torch.Tensor,
                                  distance_ratio: torch.Tensor, fov: torch.Tensor, *, sigma: float, size: int,
                                  depth_bins: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each view's best pose candidate and its soft silhouette.

    ``points (B, N, 3)``, ``masks (B, V, S, S)``, ``candidates (B, V, K, 2)`` (azimuth, elevation in
    degrees), ``distance_ratio`` / ``fov (B, V)`` → ``(loss (B, V), silhouettes (B, V, S, S), winners
    (B, V, 2), index (B, V))``: the winner of a view is the candidate whose silhouette has the lowest
    :func:`silhouette_l2` against the view's mask (ties: the lowest index), ``loss`` is that L2.

    The gradient reaches the points and the winning candidates only, as through a min over all K
    losses; the K candidates are therefore compared without autograd and only the winners are
    projected again with it, so the backward pass never holds the K − 1 losing silhouettes
    (same value and gradient as the full graph, tested against it)."""
    B, V, K, _ = candidates.shape
    rep = lambda t: t.unsqueeze(-1).expand(B, V, K).reshape(B, V * K)
    kw = dict(sigma=sigma, size=size, depth_bins=depth_bins)
    with torch.no_grad():
        sil = project_views(points.detach(), candidates[..., 0].reshape(B, V * K).detach(),
                            candidates[..., 1].reshape(B, V * K).detach(), rep(distance_ratio), rep(fov), **kw)
        _, index = select_pose_winner(silhouette_l2(sil.view(B, V, K, size, size), masks.unsqueeze(2)))
        del sil
    winners = candidates.gather(2, index[..., None, None].expand(B, V, 1, 2)).squeeze(2)
    win_sil = project_views(points, winners[..., 0], winners[..., 1], distance_ratio, fov, **kw)
    return silhouette_l2(win_sil, masks), win_sil, winners, index


def silhouette_l2(silhouettes: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of ``(silhouette − mask)²``: ``(..., S, S)`` (broadcast against each other)
    → ``(...)``, one value per view (or per pose candidate)."""
    return ((silhouettes - masks) ** 2).flatten(-2).mean(-1)


def mask_distance_loss(points: torch.Tensor, dist: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor,
                       distance_ratio: torch.Tensor, fov: torch.Tensor) -> torch.Tensor:
    """Mean over items, views and points of the mask distance field ``dist (B, V, S, S)`` (image
    widths, :func:`mask_distance_field`) sampled bilinearly at each point's projection into each view
    (cameras ``(B, V)``): pulls points that project outside a mask towards it (mask-only, the
    "precision" direction of a 2D Chamfer). Points projecting outside the image take the border
    value (no gradient)."""
    B, V = azimuth.shape
    N = points.shape[1]
    pts = points.unsqueeze(1).expand(B, V, N, 3)
    uv, _ = camera.project_points(pts, azimuth, elevation, distance_ratio, fov,
                                  image_size=camera.R2N2_IMAGE_SIZE, crop_offset=camera.CROP_OFFSET)
    grid = (uv / camera.CROP_SIZE * 2.0 - 1.0).reshape(B * V, 1, N, 2)  # edges of the crop at ±1
    val = F.grid_sample(dist.reshape(B * V, 1, *dist.shape[-2:]), grid, mode="bilinear",
                        padding_mode="border", align_corners=False)
    return val.mean()


def mask_coverage_loss(points: torch.Tensor, masks: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor,
                       distance_ratio: torch.Tensor, fov: torch.Tensor) -> torch.Tensor:
    """Mean over items and views of the mean, over the foreground pixels (mask > 0.5) of
    ``masks (B, V, S, S)``, of the 2D Euclidean distance from the pixel centre to the nearest
    projected point, in image widths (the "coverage" direction of a 2D Chamfer, mask-only). It pulls
    points towards parts of the silhouette that no point reaches — the soft silhouette's clamped
    occupancy gives points piled inside saturated voxels no gradient. Views with an empty mask
    count 0."""
    B, V, S, _ = masks.shape
    N = points.shape[1]
    pts = points.unsqueeze(1).expand(B, V, N, 3)
    uv, _ = camera.project_points(pts, azimuth, elevation, distance_ratio, fov,
                                  image_size=camera.R2N2_IMAGE_SIZE, crop_offset=camera.CROP_OFFSET)
    c = (torch.arange(S, device=points.device, dtype=points.dtype) + 0.5) * (camera.CROP_SIZE / S)
    pix = torch.stack(torch.meshgrid(c, c, indexing="xy"), -1).reshape(S * S, 2)  # (u, v) per pixel, row-major
    uv = uv.reshape(B * V, N, 2)
    fg = masks.reshape(B * V, S * S) > 0.5
    # Nearest projected point of each foreground pixel, found without autograd by the Chamfer loss's
    # exact nearest-neighbour search (pixels and points lifted to z = 0); the distances to those
    # points are then recomputed with autograd: the same value and gradient as autograd through a
    # full (pixels × points) cdist + min (ties aside), which kept that whole tensor per view for the
    # backward (most of a step's time: studies/results/silhouette.md). Pixels are packed foreground first, padded
    # to the largest foreground count; padding never counts.
    n_fg = fg.sum(1)
    P = max(int(n_fg.max()), 1)
    order = torch.argsort((~fg).to(torch.int8), dim=1, stable=True)[:, :P]  # foreground pixels first
    valid = torch.arange(P, device=points.device)[None] < n_fg[:, None]      # (B·V, P)
    q = pix[order]                                                              # (B·V, P, 2)
    _, nearest = nearest_neighbors(F.pad(q, (0, 1)), F.pad(uv.detach(), (0, 1)))
    hit = uv.gather(1, nearest[..., None].expand(-1, -1, 2))
    d = safe_norm(q - hit) / camera.CROP_SIZE * valid.to(q.dtype)
    return (d.sum(1) / n_fg.clamp(min=1).to(d.dtype)).mean()
