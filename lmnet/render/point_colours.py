"""Colour a predicted point cloud from its input image: camera fit, visibility, image colours, fill-in.

:func:`colour_points` runs the steps, one function each:

0. :func:`inlier_points` — the points not far from their neighbours: strays of a predicted cloud
   widen its silhouette at every camera, so the camera is fitted to the others, and strays
   count as hidden;
1. :func:`fit_camera` — the R2N2 camera under which the cloud's inliers' splatted silhouette
   (:func:`splat_silhouettes`) best matches the image's mask (highest IoU): elevation and distance
   from R2N2's priors (:data:`ELEVATIONS`, :data:`DISTANCE_RATIOS`), azimuth searched on a coarse
   grid, then all three refined around the best;
2. :func:`visible_points` — a z-buffer of the splatted points (:func:`depth_buffer`): a point is
   visible when its depth is within ``tolerance`` of the nearest depth at its pixel;
3. :func:`image_colours` — visible points take the colour of the pixel they land on (a point that
   lands outside the mask, or within :data:`MASK_INSET` pixels of its edge, counts as hidden);
4. :func:`fill_hidden` — hidden points take the colour of the visible point nearest their mirror
   image (:func:`mirror_points`) when the cloud is mirror-symmetric (:func:`symmetry_score`) and
   that point is close, else the mean colour of their ``k`` nearest visible points.

Conventions (owned here): points are ``(N, 3)`` in the 3D-LMNet frame (unit bounding-box diagonal;
its mirror plane is ``y = 0``, docs/formats.md#frames), the image is the network crop ``uint8
(128, 128, 4)`` RGBA (:data:`lmnet.camera.CROP_SIZE`; the alpha > 127 is the object's mask), colours
are RGB 0–255. Cameras are R2N2 cameras (:mod:`lmnet.camera`); splat grids cover the 128 px crop
with ``size`` pixels, so one grid pixel is ``128 / size`` crop pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

from lmnet import camera

#: R2N2's renderings have elevations in [25°, 30°] and distance ratios in about [0.65, 0.9]
ELEVATIONS = (25.0, 27.5, 30.0)
DISTANCE_RATIOS = (0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
COARSE_AZIMUTH_STEP = 10.0  #: degrees between the azimuths of the first search
FINE_AZIMUTH_STEP = 2.0  #: degrees between the azimuths of the refinement (± one coarse step)
MASK_THRESHOLD = 127  #: alpha above this is the object
#: a point takes its pixel's colour only where that pixel is at least this many pixels inside the mask:
#: edge pixels blend the object with the background and a predicted cloud's outline is off by a pixel
#: or two (benchmarks/results/colour.md, 0 → 2: visible error / mean-colour baseline 0.29 → 0.20 on
#: the GT cloud, 0.67 → 0.56 from lit renders, 0.48 → 0.50 on the noisy cloud); points nearer the
#: edge are filled like hidden ones
MASK_INSET = 2


#: a point is a stray (:func:`inlier_points`) when its mean distance to its 8 nearest neighbours
#: exceeds twice the cloud's median (measured with benchmarks/bench_colour.py on models 0–1 of each
#: category: on the noisy stand-in for a prediction, visible error / baseline 0.50 → 0.31, the cars'
#: fitted azimuths from 90° to 3° off (median); benchmarks/results/colour.md has the latest figures)
INLIER_NEIGHBOURS, INLIER_FACTOR = 8, 2.0


@dataclass(frozen=True)
class FittedCamera:
    """The R2N2 camera (degrees, distance ratio, fov) that :func:`fit_camera` chose and its mask IoU."""

    azimuth: float
    elevation: float
    distance_ratio: float
    fov: float
    iou: float


@dataclass(frozen=True)
class PointColours:
    """:func:`colour_points`' result: ``colours uint8 (N, 3)``, ``visible bool (N,)``, the camera."""

    colours: np.ndarray
    visible: np.ndarray
    camera: FittedCamera


def _disk(radius: int, device) -> torch.Tensor:
    """``(K, 2)`` integer ``(dcol, drow)`` offsets of a disk of ``radius`` grid pixels."""
    r = torch.arange(-radius, radius + 1, device=device)
    d = torch.stack(torch.meshgrid(r, r, indexing="xy"), -1).reshape(-1, 2)
    return d[(d * d).sum(-1) <= radius * radius + radius]


def splat_pixels(uv: torch.Tensor, size: int, radius: int):
    """Grid pixels covered by disks around projected points.

    Args:
        uv: ``(..., N, 2)`` crop-pixel coordinates (:func:`lmnet.camera.project_points`, crop offset 4).
        size: grid side (covers the 128 px crop); radius: disk radius in grid pixels.
    Returns:
        ``flat (..., N, K)`` long pixel index ``row * size + col`` (0 where outside) and
        ``inside (..., N, K)`` bool; ``K`` offsets per point, the first the point's own pixel.
    """
    offs = _disk(radius, uv.device)
    offs = offs[torch.argsort((offs * offs).sum(-1), stable=True)]
    pix = torch.floor(uv * (size / camera.CROP_SIZE)).long().unsqueeze(-2) + offs  # (..., N, K, 2)
    inside = ((pix >= 0) & (pix < size)).all(-1)
    flat = torch.where(inside, pix[..., 1] * size + pix[..., 0], torch.zeros_like(pix[..., 0]))
    return flat, inside


def _project(points: torch.Tensor, azimuth, elevation, distance_ratio, fov):
    return camera.project_points(points, azimuth, elevation, distance_ratio, fov,
                                 image_size=camera.R2N2_IMAGE_SIZE, crop_offset=camera.CROP_OFFSET)


def splat_silhouettes(points: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor,
                      distance_ratio: torch.Tensor, fov: float = 25.0, *, size: int = 64,
                      radius: int = 1) -> torch.Tensor:
    """Binary silhouettes ``bool (C, size, size)`` of one cloud ``(N, 3)`` under ``C`` R2N2 cameras
    (``azimuth``, ``elevation``, ``distance_ratio``: ``(C,)``), each point a disk of ``radius`` px."""
    pts = points.unsqueeze(0).expand(len(azimuth), -1, -1)
    uv, _ = _project(pts, azimuth, elevation, distance_ratio, fov)
    flat, inside = splat_pixels(uv, size, radius)
    counts = torch.zeros(len(azimuth), size * size, device=points.device).scatter_add_(
        1, flat.flatten(1), inside.flatten(1).float())
    return (counts > 0).view(-1, size, size)


def mask_iou(silhouettes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """IoU ``(C,)`` of binary silhouettes ``(C, H, W)`` with one binary mask ``(H, W)``."""
    inter = (silhouettes & mask).flatten(1).sum(1).float()
    union = (silhouettes | mask).flatten(1).sum(1).float().clamp(min=1)
    return inter / union


def grid_mask(rgba: np.ndarray, size: int, radius: int = 0) -> torch.Tensor:
    """The object's mask ``bool (size, size)`` of a crop ``uint8 (128, 128, 4)``: alpha >
    :data:`MASK_THRESHOLD`, area-downsampled to the grid (a grid pixel is in when half of it is),
    then dilated by a square of ``radius`` grid pixels — as much as a splat disk widens a silhouette,
    so that the fit does not favour far cameras."""
    alpha = torch.from_numpy((rgba[..., 3] > MASK_THRESHOLD).astype(np.float32))
    grid = torch.nn.functional.adaptive_avg_pool2d(alpha[None, None], size) >= 0.5
    if radius > 0:
        grid = torch.nn.functional.max_pool2d(grid.float(), 2 * radius + 1, stride=1, padding=radius) > 0
    return grid[0, 0]


def _search(points: torch.Tensor, rgba: np.ndarray, azimuths, elevations, distances, fov: float, size: int,
            radius: int, chunk: int = 256) -> tuple[float, float, float, float]:
    """``(azimuth, elevation, distance_ratio, iou)`` of the best camera of the grid ``azimuths ×
    elevations × distances`` by the IoU of the splatted silhouette with the (dilated) mask."""
    mask = grid_mask(rgba, size, radius)
    a, e, d = torch.meshgrid(torch.as_tensor(np.asarray(azimuths) % 360.0, dtype=torch.float32),
                             torch.as_tensor(elevations, dtype=torch.float32),
                             torch.as_tensor(distances, dtype=torch.float32), indexing="ij")
    a, e, d = a.flatten(), e.flatten(), d.flatten()
    ious = torch.cat([mask_iou(splat_silhouettes(points, a[i:i + chunk], e[i:i + chunk], d[i:i + chunk], fov,
                                                 size=size, radius=radius), mask) for i in range(0, len(a), chunk)])
    best = int(torch.argmax(ious))  # ties: the first candidate
    return float(a[best]), float(e[best]), float(d[best]), float(ious[best])


def _around(centre: float, half_width: float, step: float) -> np.ndarray:
    return centre + np.arange(-half_width, half_width + step / 2, step)


def fit_camera(points: np.ndarray, rgba: np.ndarray, *, fov: float = 25.0, elevations=ELEVATIONS,
               distances=DISTANCE_RATIOS) -> FittedCamera:
    """The R2N2 camera whose splatted silhouette of ``points (N, 3)`` best matches the mask of
    ``rgba uint8 (128, 128, 4)`` (IoU), in three searches:

    1. every azimuth on a :data:`COARSE_AZIMUTH_STEP` grid × ``elevations`` × ``distances`` (64 px grid);
    2. azimuths :data:`FINE_AZIMUTH_STEP` apart within one coarse step of the best, same priors;
    3. on the 128 px grid: azimuth ± 2° (1° steps), elevation ± 1.5° (0.75°), distance ± 0.03 (0.015)
       around the best."""
    pts = torch.as_tensor(np.asarray(points), dtype=torch.float32)
    az, _, _, _ = _search(pts, rgba, np.arange(0.0, 360.0, COARSE_AZIMUTH_STEP), elevations, distances, fov, 64, 1)
    az, el, dist, _ = _search(pts, rgba, _around(az, COARSE_AZIMUTH_STEP, FINE_AZIMUTH_STEP), elevations,
                              distances, fov, 64, 1)
    az, el, dist, iou = _search(pts, rgba, _around(az, 2.0, 1.0), _around(el, 1.5, 0.75), _around(dist, 0.03, 0.015),
                                fov, camera.CROP_SIZE, 2)
    return FittedCamera(az, el, dist, float(fov), iou)


def project(points: np.ndarray, cam: FittedCamera) -> tuple[torch.Tensor, torch.Tensor]:
    """``points (N, 3)`` → ``uv (N, 2)`` crop pixels (u = column, v = row) and ``depth (N,)``."""
    pts = torch.as_tensor(np.asarray(points), dtype=torch.float32)
    return _project(pts, cam.azimuth, cam.elevation, cam.distance_ratio, cam.fov)


def depth_buffer(uv: torch.Tensor, depth: torch.Tensor, size: int, radius: int) -> torch.Tensor:
    """Nearest depth per grid pixel ``(size * size,)`` (``inf`` where no point lands) of points at
    ``uv (N, 2)`` crop pixels with ``depth (N,)``, each splatted as a disk of ``radius`` grid pixels."""
    flat, inside = splat_pixels(uv, size, radius)
    z = torch.where(inside, depth.unsqueeze(-1), torch.full_like(flat, float("inf"), dtype=depth.dtype))
    buf = torch.full((size * size,), float("inf"), dtype=depth.dtype)
    return buf.scatter_reduce(0, flat.flatten(), z.flatten(), reduce="amin")


def visible_points(points: np.ndarray, cam: FittedCamera, *, size: int = 128, radius: int = 2,
                   tolerance: float = 0.02) -> np.ndarray:
    """``bool (N,)``: points whose depth is within ``tolerance`` (object units: the bounding-box
    diagonal is 1) of the nearest depth at their own grid pixel (:func:`depth_buffer`)."""
    uv, depth = project(points, cam)
    buf = depth_buffer(uv, depth, size, radius)
    flat, inside = splat_pixels(uv, size, 0)
    own = buf[flat[:, 0]]
    return (inside[:, 0] & (depth <= own + tolerance)).numpy()


def image_colours(points: np.ndarray, cam: FittedCamera, rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour of the crop pixel each point lands on: ``colours float32 (N, 3)`` (0–255) and
    ``on_object bool (N,)``, true where that pixel is inside the image and at least
    :data:`MASK_INSET` pixels inside the mask."""
    uv, _ = project(points, cam)
    flat, inside = splat_pixels(uv, camera.CROP_SIZE, 0)
    flat, inside = flat[:, 0].numpy(), inside[:, 0].numpy()
    pixels = rgba.reshape(-1, 4)[flat]
    inner = rgba[..., 3] > MASK_THRESHOLD
    if MASK_INSET > 0:
        inner = ndimage.binary_erosion(inner, iterations=MASK_INSET)
    return pixels[:, :3].astype(np.float32), inside & inner.reshape(-1)[flat]


def inlier_points(points: np.ndarray, *, k: int = INLIER_NEIGHBOURS, factor: float = INLIER_FACTOR) -> np.ndarray:
    """``bool (N,)``: the points of ``points (N, 3)`` whose mean distance to their ``k`` nearest
    neighbours is at most ``factor`` × the median of that over the cloud (the others are strays)."""
    pts = np.asarray(points)
    kk = min(k, len(pts) - 1)
    if kk < 1:
        return np.ones(len(pts), bool)
    d = cKDTree(pts).query(pts, k=kk + 1)[0][:, 1:].mean(1)
    return d <= factor * np.median(d)


def mirror_points(points: np.ndarray) -> np.ndarray:
    """``(N, 3)`` mirrored in the 3D-LMNet frame's symmetry plane ``y = 0`` (the shapes' left/right)."""
    return np.asarray(points) * np.array([1.0, -1.0, 1.0], dtype=np.asarray(points).dtype)


def symmetry_score(points: np.ndarray) -> float:
    """Mean distance from each mirrored point to the cloud over the cloud's mean nearest-neighbour
    spacing: about 1 for a mirror-symmetric cloud (``(N, 3)``), larger the less symmetric it is."""
    tree = cKDTree(points)
    spacing = tree.query(points, k=2)[0][:, 1].mean()
    return float(tree.query(mirror_points(points))[0].mean() / max(spacing, 1e-12))


def fill_hidden(points: np.ndarray, colours: np.ndarray, known: np.ndarray, *, k: int = 8,
                symmetric: bool = False, mirror_reach: float = 2.0) -> np.ndarray:
    """Colours ``(N, 3)`` with the rows of hidden points (``known`` false) filled in.

    A hidden point takes, when ``symmetric``, the colour of the known point nearest its mirror image
    if that point is within ``mirror_reach`` mean point spacings; otherwise the mean colour of its
    ``k`` nearest known points. With no known point at all, ``colours`` is returned unchanged."""
    out = np.array(colours, dtype=np.float32)
    hidden = np.flatnonzero(~known)
    if len(hidden) == 0 or not known.any():
        return out
    src = np.flatnonzero(known)
    tree = cKDTree(points[src])
    kk = min(k, len(src))
    _, nn = tree.query(points[hidden], k=kk)
    out[hidden] = out[src[np.asarray(nn).reshape(len(hidden), kk)]].mean(1)
    if symmetric:
        spacing = cKDTree(points).query(points, k=2)[0][:, 1].mean()
        d, m = tree.query(mirror_points(points[hidden]))
        near = d <= mirror_reach * spacing
        out[hidden[near]] = out[src[m[near]]]
    return out


def colour_points(points: np.ndarray, rgba: np.ndarray, *, symmetric: bool | None = None, k: int = 4,
                  tolerance: float = 0.02, symmetry_threshold: float = 1.5) -> PointColours:
    """Every point of ``points (N, 3)`` gets a colour from ``rgba uint8 (128, 128, 4)`` (the input
    crop; its alpha is the mask): the steps of the module docstring. ``symmetric`` None: decided by
    :func:`symmetry_score` ≤ ``symmetry_threshold``."""
    points = np.asarray(points, dtype=np.float32)
    inliers = inlier_points(points)
    cam = fit_camera(points[inliers], rgba)
    colours, on_object = image_colours(points, cam, rgba)
    visible = visible_points(points, cam, tolerance=tolerance) & on_object & inliers
    if symmetric is None:
        symmetric = symmetry_score(points) <= symmetry_threshold
    filled = fill_hidden(points, colours, visible, k=k, symmetric=symmetric)
    if not visible.any():  # nothing seen: the object's mean colour, or grey without a mask
        obj = rgba[..., 3] > MASK_THRESHOLD
        filled[:] = rgba[..., :3][obj].mean(0) if obj.any() else 128.0
    return PointColours(np.clip(np.round(filled), 0, 255).astype(np.uint8), visible, cam)
