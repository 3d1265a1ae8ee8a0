"""matplotlib (Agg) fallback for point-cloud rendering: a depth-sorted 2D scatter.

Points are projected with the same :class:`~lmnet.render.cameras.Camera` as the torch rasteriser,
so they land on the same pixels, then drawn far-to-near as flat discs of the same projected radius
(painter's algorithm). **There is no true occlusion**: discs are ordered per point, not resolved per
pixel, so intersecting splats do not cut each other, and there is no shading. Use it when the torch
rasteriser is not an option; it is a preview, not a figure renderer.
"""

from __future__ import annotations

import numpy as np
import torch

from lmnet.render.cameras import Camera

_DPI = 100.0


def render_points_mpl(points: torch.Tensor, camera: Camera, colors: torch.Tensor, radius,
                      image_size: int = 512) -> torch.Tensor:
    """Render ``B`` clouds with matplotlib.

    Args:
        points: ``(B, N, 3)`` float, 3D-LMNet frame.
        camera: ``B`` cameras or one.
        colors: ``(B, N, 3)`` in [0, 1].
        radius: sphere radius in world units (number or broadcastable to ``(B, N)``).
        image_size: output side in pixels.
    Returns:
        ``uint8 (B, H, W, 4)`` RGBA, transparent background (like :func:`render_points`).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = points.detach().cpu().float()
    B, N = points.shape[:2]
    cam = camera.to(device="cpu", dtype=torch.float32).expand(B)
    uv, depth = cam.project(points, image_size)
    rad = torch.as_tensor(radius, dtype=torch.float32).expand(B, N)
    r_px = cam.focal_pixels(image_size).unsqueeze(-1) * rad / depth
    cols = colors.detach().cpu().float().expand(B, N, 3)
    out = np.zeros((B, image_size, image_size, 4), np.uint8)
    for b in range(B):
        ok = (depth[b] > 1e-4) & torch.isfinite(uv[b]).all(-1)
        order = torch.argsort(depth[b][ok], descending=True)          # far first
        uv_b = uv[b][ok][order].numpy()
        u, v = uv_b[:, 0], uv_b[:, 1]
        diameter_pt = 2.0 * r_px[b][ok][order].numpy() * 72.0 / _DPI   # pixels → points
        fig = Figure(figsize=(image_size / _DPI, image_size / _DPI), dpi=_DPI)
        fig.patch.set_alpha(0.0)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, image_size)
        ax.set_ylim(image_size, 0)                                      # v grows downwards
        ax.set_axis_off()
        ax.patch.set_alpha(0.0)
        ax.scatter(u, v, s=diameter_pt ** 2, c=cols[b][ok][order].numpy(), marker="o",
                   linewidths=0, edgecolors="none")
        canvas.draw()
        out[b] = np.asarray(canvas.buffer_rgba())
    return torch.from_numpy(out)
