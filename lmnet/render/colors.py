"""Per-point colours for point-cloud figures: by height, by error to the ground truth, uniform.

All functions take ``points (N, 3)`` or ``(B, N, 3)`` (torch or numpy, 3D-LMNet frame: +x points
**down**) and return float32 torch colours ``(..., N, 3)`` in [0, 1] on the points' device.

- **height** — ``HEIGHT_CMAP`` (viridis) over the gravity axis, normalised per cloud: the lowest
  point (largest x) gets the low end (dark purple), the highest point (smallest x) the high end
  (yellow).
- **error** — ``ERROR_CMAP`` (plasma) over the Euclidean (not squared) distance from each point to
  its nearest neighbour in the ground-truth cloud, in the unit-diagonal frame, mapped linearly from
  0 (low end) to ``error_max`` (high end) and clipped there. ``error_max`` defaults to the fixed
  :data:`DEFAULT_ERROR_MAX` = 0.05 (5 % of the shape's diagonal, "5" in the ×100 tables) so figures
  are comparable across shapes; pass ``"p95"`` (any ``"pXX"``) to use that percentile of the
  cloud's own errors instead.
"""

from __future__ import annotations

import numpy as np
import torch

from lmnet.losses.chamfer import nearest_neighbors

HEIGHT_CMAP = "viridis"
ERROR_CMAP = "plasma"
DEFAULT_ERROR_MAX = 0.05
#: neutral blue-grey used for ``color_by="uniform"`` (the rasteriser's default point colour)
UNIFORM_COLOR = (0.55, 0.62, 0.75)


def as_points(points, name: str = "points") -> torch.Tensor:
    """Torch float tensor ``(N, 3)`` or ``(B, N, 3)`` from a tensor / array; clear error otherwise."""
    t = points if isinstance(points, torch.Tensor) else torch.as_tensor(np.asarray(points))
    if t.dim() not in (2, 3) or t.shape[-1] != 3:
        raise ValueError(f"{name} must be (N, 3) or (B, N, 3), got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.float()
    return t


def colormap(name: str, values: torch.Tensor) -> torch.Tensor:
    """Apply matplotlib colormap ``name`` to ``values`` in [0, 1] (clipped) → ``(..., 3)`` float32."""
    import matplotlib

    lut = torch.as_tensor(matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3],
                          dtype=torch.float32, device=values.device)
    idx = (values.float().clamp(0.0, 1.0) * 255.0).round().long()
    return lut[idx]


def height_colors(points, cmap: str = HEIGHT_CMAP) -> torch.Tensor:
    """``(..., N, 3)`` colours by height (-x is up), normalised per cloud (see module docs)."""
    p = as_points(points)
    h = -p[..., 0].float()
    lo = h.amin(-1, keepdim=True)
    hi = h.amax(-1, keepdim=True)
    return colormap(cmap, (h - lo) / (hi - lo).clamp_min(1e-12))


def point_errors(points, gt) -> torch.Tensor:
    """``(..., N)`` Euclidean distance from every point to its nearest neighbour in ``gt``
    (``(M, 3)``, or ``(B, M, 3)`` matching a batch of clouds); float32 on the points' device."""

    p = as_points(points)
    g = as_points(gt, "gt").to(device=p.device, dtype=p.dtype)
    if p.dim() == 3 and g.dim() == 2:
        g = g.unsqueeze(0).expand(p.shape[0], -1, -1)
    if p.dim() != g.dim() or (p.dim() == 3 and g.shape[0] != p.shape[0]):
        raise ValueError(f"gt of shape {tuple(g.shape)} does not match points of shape {tuple(p.shape)}")
    dist, _ = nearest_neighbors(p.contiguous(), g.contiguous())
    return dist.float()


def resolve_error_max(errors: torch.Tensor, error_max=DEFAULT_ERROR_MAX) -> torch.Tensor:
    """The upper end of the error colour scale: a number, or ``"pXX"`` → that percentile of each
    cloud's errors. Returns ``(..., 1)``."""
    if isinstance(error_max, str):
        if not (error_max.startswith("p") and error_max[1:].replace(".", "", 1).isdigit()):
            raise ValueError(f"error_max must be a number or 'pXX' (a percentile), got {error_max!r}")
        q = float(error_max[1:]) / 100.0
        if not 0.0 < q <= 1.0:
            raise ValueError(f"error_max percentile must be in (0, 100], got {error_max!r}")
        return torch.quantile(errors.float(), q, dim=-1, keepdim=True).clamp_min(1e-12)
    value = float(error_max)
    if not value > 0:
        raise ValueError(f"error_max must be > 0, got {error_max!r}")
    return torch.full(errors.shape[:-1] + (1,), value, dtype=torch.float32, device=errors.device)


def error_colors(points, gt, error_max=DEFAULT_ERROR_MAX, cmap: str = ERROR_CMAP) -> torch.Tensor:
    """``(..., N, 3)`` colours by NN distance to ``gt``: 0 → low end, ≥ ``error_max`` → high end."""
    err = point_errors(points, gt)
    return colormap(cmap, err / resolve_error_max(err, error_max))


def point_colors(points, color_by="height", gt=None, error_max=DEFAULT_ERROR_MAX) -> torch.Tensor:
    """Dispatch: ``"height"``, ``"error"`` (needs ``gt``), ``"uniform"``, an RGB triple, or explicit
    ``(N, 3)`` / ``(B, N, 3)`` colours in [0, 1]. Returns ``(..., N, 3)`` float32."""
    p = as_points(points)
    if isinstance(color_by, str):
        if color_by == "height":
            return height_colors(p)
        if color_by == "error":
            if gt is None:
                raise ValueError("color_by='error' needs the ground-truth cloud (gt=...)")
            return error_colors(p, gt, error_max)
        if color_by == "uniform":
            return torch.tensor(UNIFORM_COLOR, device=p.device).expand(*p.shape[:-1], 3)
        raise ValueError(f"color_by must be 'height', 'error', 'uniform' or an array of colours, "
                         f"got {color_by!r}")
    c = color_by if isinstance(color_by, torch.Tensor) else torch.as_tensor(np.asarray(color_by))
    c = c.to(device=p.device, dtype=torch.float32)
    if c.shape == (3,):
        return c.expand(*p.shape[:-1], 3)
    if c.shape[-1:] != (3,) or c.shape[-2:-1] != p.shape[-2:-1] or c.dim() > p.dim():
        raise ValueError(f"colours must be (3,), (N, 3) or (B, N, 3) for points of shape "
                         f"{tuple(p.shape)}, got {tuple(c.shape)}")
    if c.numel() and (float(c.min()) < 0 or float(c.max()) > 1):
        raise ValueError("explicit colours must lie in [0, 1]")
    return c.expand(*p.shape[:-1], 3)
