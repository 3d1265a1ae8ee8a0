"""Point clouds and meshes → images with one call: views, colours, backends, turntable GIFs.

- :func:`render_cloud` — ``(N, 3)`` / ``(B, N, 3)`` clouds → ``uint8 (B, H, W, 4)``, torch
  z-buffered shaded sphere splats (CPU or CUDA, batched) or the matplotlib fallback
  (:mod:`lmnet.render.mpl_backend`, no true occlusion);
- :func:`render_mesh_preview` — a ``(V, F)`` mesh from the same views;
- :func:`turntable_gif` — a looping GIF of one cloud spinning about the vertical axis.

Views (``view=``): ``"three_quarter"`` (the canonical front-side-above view,
:func:`~lmnet.render.cameras.three_quarter_view` at distance :data:`VIEW_DISTANCE`), ``"r2n2"``
with ``meta`` (an R2N2 view: a dict with ``azimuth``, ``elevation``, ``distance_ratio`` and
optionally ``fov`` — e.g. a :class:`~lmnet.data.dataset.ShapeNetDataset` item — or a
:class:`~lmnet.data.layout.ViewMeta`),
``"r2n2:AZ,EL,DIST[,FOV]"`` (degrees, distance ratio), or a :class:`~lmnet.render.cameras.Camera`.
Points are in the 3D-LMNet frame (+x down, unit bounding-box diagonal).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from lmnet.atomic_io import atomic_path
from lmnet.render.cameras import Camera, three_quarter_view, turntable
from lmnet.render.colors import DEFAULT_ERROR_MAX, as_points, point_colors
from lmnet.render.mpl_backend import render_points_mpl
from lmnet.render.rasterizer import DEFAULT_MESH_COLOR, composite, render_mesh_camera, render_points

BACKENDS = ("torch", "matplotlib")
#: camera distance of ``view="three_quarter"``: closer than the rasteriser's 1.6 so the shape fills
#: the frame (a unit-diagonal shape centred at the origin still never leaves it at R2N2's focal)
VIEW_DISTANCE = 1.3
WHITE = (255, 255, 255)


# ----------------------------------------------------------------------------- views
def _meta_values(meta):
    if meta is None:
        raise ValueError("view='r2n2' needs meta=(azimuth, elevation, distance_ratio[, fov]) "
                         "or a dict / dataset item / ViewMeta with those fields")
    if isinstance(meta, dict):
        missing = [k for k in ("azimuth", "elevation", "distance_ratio") if k not in meta]
        if missing:
            raise ValueError(f"r2n2 meta is missing {missing}; got keys {sorted(meta)}")
        return meta["azimuth"], meta["elevation"], meta["distance_ratio"], meta.get("fov", 25.0)
    if hasattr(meta, "azimuth"):
        return meta.azimuth, meta.elevation, meta.distance_ratio, getattr(meta, "fov", 25.0)
    vals = list(meta)
    if len(vals) not in (3, 4):
        raise ValueError(f"r2n2 meta must be (azimuth, elevation, distance_ratio[, fov]), got {meta!r}")
    return (*vals, 25.0) if len(vals) == 3 else tuple(vals)


def _check_r2n2(values, spec: str):
    """``(az, el, dist, fov)`` if a camera can be made of them: finite, distance ratio > 0, fov in
    (0, 180) degrees; else a ValueError naming ``spec``."""
    az, el, dist, fov = values
    if not all(math.isfinite(v) for v in values) or dist <= 0 or not 0 < fov < 180:
        raise ValueError(f"view {spec!r}: azimuth and elevation must be finite degrees, the distance ratio > 0 "
                         f"and the field of view in (0, 180) degrees")
    return values


def parse_view(spec: str):
    """``"three_quarter"`` → itself; ``"r2n2:AZ,EL,DIST[,FOV]"`` → ``("r2n2", (az, el, dist, fov))``."""
    s = spec.strip()
    if s == "three_quarter":
        return s, None
    if s.startswith("r2n2:"):
        try:
            vals = [float(x) for x in s[5:].split(",")]
        except ValueError:
            vals = []
        if len(vals) in (3, 4):
            return "r2n2", _check_r2n2(_meta_values(vals), spec)
    raise ValueError(f"view must be 'three_quarter', 'r2n2' (with meta) or 'r2n2:AZ,EL,DIST[,FOV]', "
                     f"got {spec!r}")


def resolve_view(view="three_quarter", batch: int = 1, meta=None, dtype=torch.float32,
                 device=None) -> Camera:
    """A ``Camera`` of ``batch`` cameras (or one, broadcast later) for a view spec (module docs)."""
    if isinstance(view, Camera):
        return view.to(device=device, dtype=dtype)
    if not isinstance(view, str):
        raise ValueError(f"view must be a string or a Camera, got {type(view).__name__}")
    if view != "r2n2":
        view, meta = parse_view(view)
    if view == "three_quarter":
        return three_quarter_view(batch, distance=VIEW_DISTANCE, dtype=dtype, device=device)
    az, el, dr, fov = _meta_values(meta)
    return Camera.r2n2(torch.as_tensor(az).float(), torch.as_tensor(el).float(),
                       torch.as_tensor(dr).float(), torch.as_tensor(fov).float(),
                       dtype=dtype, device=device)


def auto_radius(n_points: int, image_size: int) -> float:
    """Default splat radius (world units) for ``n_points`` on a unit-diagonal shape:
    ``0.45 / sqrt(N)`` (≈ 0.01 for 2048 points: neighbouring splats touch on a typical surface), but
    at least ``1.8 / image_size`` (≈ 1.5 px at the 3/4-view distance :data:`VIEW_DISTANCE`) so sparse or small
    images stay visible."""
    return max(0.45 / math.sqrt(max(int(n_points), 1)), 1.8 / float(image_size))


def _background(rgba: torch.Tensor, background) -> torch.Tensor:
    """``None``/"transparent" → unchanged; "white" or an RGB triple (0–255) → opaque composite."""
    if background is None or (isinstance(background, str) and background == "transparent"):
        return rgba

    bg = WHITE if (isinstance(background, str) and background == "white") else tuple(background)
    if len(bg) != 3:
        raise ValueError(f"background must be None, 'transparent', 'white' or (r, g, b), got {background!r}")
    rgb = composite(rgba, bg)
    return torch.cat([rgb, torch.full_like(rgb[..., :1], 255)], -1)


# ----------------------------------------------------------------------------- clouds
def render_cloud(points, view="three_quarter", meta=None, color_by="height", gt=None,
                 image_size: int = 512, backend: str = "torch", radius=None, shading=None,
                 error_max=DEFAULT_ERROR_MAX, background=None, supersample: int = 2,
                 device=None) -> torch.Tensor:
    """Render point clouds.

    Args:
        points: ``(N, 3)`` or ``(B, N, 3)`` (torch or numpy), 3D-LMNet frame.
        view: see the module docs; ``meta`` goes with ``view="r2n2"`` (``(B,)`` values for B views).
        color_by: ``"height"`` (viridis, bottom→top), ``"error"`` (plasma over the NN distance to
            ``gt``, 0 → ``error_max``, see :mod:`lmnet.render.colors`), ``"uniform"``, an RGB triple
            or explicit ``(N, 3)`` / ``(B, N, 3)`` colours in [0, 1].
        gt: ``(M, 3)`` or ``(B, M, 3)`` ground truth, required for ``"error"``.
        image_size: output side ``H = W`` in pixels.
        backend: ``"torch"`` (z-buffered shaded spheres) or ``"matplotlib"`` (depth-sorted flat
            discs, no true occlusion).
        radius: splat radius in world units; ``None`` → :func:`auto_radius`.
        shading: Lambert-shade the spheres (torch backend); ``None`` → on, except for ``"error"``
            where flat colours keep the scale readable.
        background: ``None`` (transparent), ``"white"`` or ``(r, g, b)`` 0–255 (opaque result).
        supersample: anti-aliasing samples per pixel side (torch backend).
        device: where to render (torch backend); ``None`` → the points' device.
    Returns:
        ``uint8 (B, H, W, 4)`` RGBA on the CPU (B = 1 for an ``(N, 3)`` input).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    p = as_points(points)
    if device is not None:
        p = p.to(device)
    if p.dim() == 2:
        p = p.unsqueeze(0)
    p = p.float()
    B, N = p.shape[:2]
    if N == 0:
        raise ValueError("render_cloud: the cloud has no points")
    colors = point_colors(p, color_by, gt=gt, error_max=error_max)
    cam = resolve_view(view, B, meta, device=p.device)
    if len(cam) not in (1, B):
        raise ValueError(f"{len(cam)} cameras for a batch of {B} clouds")
    r = auto_radius(N, image_size) if radius is None else radius
    if shading is None:
        shading = not (isinstance(color_by, str) and color_by == "error")
    if backend == "torch":

        rgba = render_points(p, cam, image_size=image_size, colors=colors, radius=r,
                             supersample=supersample, shading=bool(shading)).cpu()
    else:

        rgba = render_points_mpl(p, cam, colors, r, image_size=image_size)
    return _background(rgba, background)


def render_mesh_preview(vertices, faces, view="three_quarter", meta=None, image_size: int = 512,
                        color=None, background=None, supersample: int = 2, device=None,
                        **kwargs) -> torch.Tensor:
    """Render a triangle mesh ``vertices (V, 3)``, ``faces (F, 3)`` (3D-LMNet frame) from ``view``
    (as in :func:`render_cloud`) with :func:`~lmnet.render.rasterizer.render_mesh_camera`;
    ``kwargs`` go to it. Returns ``uint8 (K, H, W, 4)`` on the CPU (K cameras, 1 by default)."""

    v = vertices if isinstance(vertices, torch.Tensor) else torch.as_tensor(np.asarray(vertices))
    f = faces if isinstance(faces, torch.Tensor) else torch.as_tensor(np.asarray(faces))
    v = v.float().to(device) if device is not None else v.float()
    if f.dim() != 2 or f.shape[-1] != 3 or f.is_floating_point():
        raise ValueError(f"faces must be integer (F, 3), got {tuple(f.shape)} {f.dtype}")
    if f.numel() and (int(f.min()) < 0 or int(f.max()) >= v.shape[0]):
        raise ValueError(f"faces index vertices outside 0..{v.shape[0] - 1}")
    cam = resolve_view(view, 1, meta, device=v.device)
    rgba = render_mesh_camera(v, f.long().to(v.device), cam, image_size=image_size,
                              color=DEFAULT_MESH_COLOR if color is None else color,
                              supersample=supersample, **kwargs).cpu()
    return _background(rgba, background)


# ----------------------------------------------------------------------------- GIF
#: supersampled pixels rendered per turntable batch (z-buffer keys: 8 bytes each): 16 Mi samples
#: keep a batch near 128 MB; at 512 px (2 × 2 samples) that is the default 12 frames at a time
GIF_BATCH_SAMPLES = 1 << 24


def turntable_gif(points, path, n_frames: int = 36, image_size: int = 320, color_by="height",
                  gt=None, elevation_deg: float = 25.0, distance: float = VIEW_DISTANCE,
                  frame_ms: int = 80, radius=None, backend: str = "torch", batch: int = 12) -> Path:
    """Write a looping turntable GIF of one cloud ``(N, 3)`` spinning about the vertical (-x) axis.

    ``n_frames`` views evenly spaced in azimuth (:func:`~lmnet.render.cameras.turntable`) at
    ``elevation_deg``, rendered ``batch`` at a time (fewer when a batch would be over
    :data:`GIF_BATCH_SAMPLES` samples), composited on white, ``frame_ms`` per frame; each frame is
    reduced to the first frame's palette as it is rendered (1 byte per pixel held); written
    atomically. A cloud seen in no frame is a ValueError (the GIF would be blank). (GIF stores
    identical consecutive frames once: a cloud that looks the same from two successive views gives
    fewer frames.) Returns the path.
    """
    from PIL import Image

    p = as_points(points)
    if p.dim() != 2:
        raise ValueError(f"turntable_gif renders one cloud (N, 3), got shape {tuple(p.shape)}")
    if int(n_frames) < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    colors = point_colors(p, color_by, gt=gt)
    cams = turntable(int(n_frames), elevation_deg, distance)
    batch = max(1, min(int(batch), GIF_BATCH_SAMPLES // (2 * image_size) ** 2))
    frames, palette, seen = [], None, False
    for s in range(0, int(n_frames), batch):
        k = min(batch, int(n_frames) - s)
        cam = Camera(cams.R[s:s + k], cams.t[s:s + k], cams.focal[s:s + k])
        rgba = render_cloud(p.unsqueeze(0).expand(k, -1, -1), view=cam, color_by=colors,
                            image_size=image_size, radius=radius, backend=backend,
                            shading=not (isinstance(color_by, str) and color_by == "error"),
                            background="white")
        seen = seen or bool((rgba[..., :3] < 255).any())
        for f in rgba:
            rgb = Image.fromarray(f[..., :3].numpy(), "RGB")
            # one shared adaptive palette (the first frame's) keeps colours stable between frames
            if palette is None:
                palette = rgb.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
            frames.append(rgb.quantize(palette=palette, dither=Image.Dither.NONE))
    if not seen:
        raise ValueError("turntable_gif: no point of the cloud is inside any frame (is it in the unit "
                         "3D-LMNet frame, centred at the origin?)")
    path = Path(path)
    with atomic_path(path, suffix=".gif") as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=int(frame_ms), loop=0, optimize=False, disposal=2)
    return path
