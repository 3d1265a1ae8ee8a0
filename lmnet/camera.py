"""Frames and cameras: the single definition used by the synthetic renderer, the data loader,
the silhouette projection and the visualisations.

Frames
------
- **ShapeNet v1 frame**: y up (what the 3D-R2N2 renderer loaded).
- **3D-LMNet frame** (all point clouds in lmnet): ``p_lmnet = p_v1 @ A`` with
  ``A = [[0,-1,0],[-1,0,0],[0,0,-1]]`` (docs/formats.md#frames): +x points down (gravity), chairs face +z.
  ``A`` is symmetric and orthogonal, so ``p_v1 = p_lmnet @ A`` as well.
- Shapes are centred with a unit bounding-box diagonal.

R2N2 camera
-----------
One line of ``rendering_metadata.txt``: ``azimuth_deg elevation_deg inplane_deg distance_ratio fov_deg``.
The extrinsics follow the 3D-R2N2 / Blender convention (as in the R2N2 loader of PyTorch3D):
camera distance ``= distance_ratio * R2N2_DISTANCE_SCALE`` (1.75, *unverified* against the original
renderer), the camera looks at the origin, and camera coordinates are OpenGL-style
(x right, y up, looking down -z). The image is ``137 x 137`` with a pinhole of field of view
focal length ``R2N2_FOCAL_NDC = 2.1875`` in normalised device units (half the image width = 1) for the
``fov 25`` that every R2N2 metadata line carries. That is the intrinsic matrix Mesh R-CNN and
PyTorch3D extracted from the R2N2 Blender set-up (an effective full field of view of 49.1°; Blender's
"25" is not the full angle); another ``fov`` scales the focal length by ``tan(12.5°) / tan(fov/2)``.
Principal point at the image centre. Pixel ``(row i, col j)`` covers
``u ∈ [j, j+1)``, ``v ∈ [i, i+1)`` in continuous image coordinates (v grows downwards).

All functions are torch, batched over leading dimensions, differentiable, CPU or CUDA.
"""

from __future__ import annotations

import math

import torch

from lmnet.image_sizes import CROP_OFFSET, CROP_SIZE, R2N2_IMAGE_SIZE  # noqa: F401 (the frame's sizes, used here)

R2N2_DISTANCE_SCALE = 1.75
R2N2_FOCAL_NDC = 2.1875
R2N2_NOMINAL_FOV = 25.0

#: ``p_lmnet = p_v1 @ LMNET_FROM_V1`` (and back, since the matrix is its own inverse)
LMNET_FROM_V1 = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])

# Blender rotates .obj files by +90° about x on import; R2N2's extrinsics undo it (v1 → Blender).
_BLENDER_FROM_V1 = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# object frame (camera on +x) → OpenGL camera frame
_CAM_FROM_OBJ = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def lmnet_from_v1(points: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` ShapeNet v1 (y up) → 3D-LMNet frame (+x down)."""
    return points @ LMNET_FROM_V1.to(points)


def v1_from_lmnet(points: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` 3D-LMNet frame → ShapeNet v1 frame."""
    return points @ LMNET_FROM_V1.to(points)


def _as_tensor(x, like: torch.Tensor | None = None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x if like is None else x.to(dtype=like.dtype, device=like.device)
    dtype = like.dtype if like is not None else torch.get_default_dtype()
    device = like.device if like is not None else None
    return torch.as_tensor(x, dtype=dtype, device=device)


def r2n2_extrinsics(azimuth_deg, elevation_deg, distance_ratio):
    """World-to-camera rigid transform for points in the **3D-LMNet frame**.

    Args:
        azimuth_deg, elevation_deg, distance_ratio: tensors (or numbers) of shape ``(...)``.
    Returns:
        ``R (..., 3, 3)`` and ``t (..., 3)`` such that ``x_cam = p @ R^T + t`` (OpenGL camera:
        x right, y up, the object in front at negative z).
    """
    az = _as_tensor(azimuth_deg)
    el = _as_tensor(elevation_deg, az)
    dist = _as_tensor(distance_ratio, az) * R2N2_DISTANCE_SCALE
    az, el, dist = torch.broadcast_tensors(az, el, dist)
    a = -math.pi * az / 180.0
    e = -math.pi * el / 180.0
    sa, ca, se, ce = torch.sin(a), torch.cos(a), torch.sin(e), torch.cos(e)
    zero = torch.zeros_like(a)
    world2obj = torch.stack(
        [
            torch.stack([ca * ce, sa * ce, -se], -1),
            torch.stack([-sa, ca, zero], -1),
            torch.stack([ca * se, sa * se, ce], -1),
        ],
        -2,
    )
    fixed = (_BLENDER_FROM_V1 @ LMNET_FROM_V1).to(az)  # lmnet → v1 → Blender
    R = _CAM_FROM_OBJ.to(az) @ world2obj @ fixed
    t = torch.stack([zero, zero, -dist], -1)
    return R, t


def focal_pixels(fov_deg, image_size: int = R2N2_IMAGE_SIZE) -> torch.Tensor:
    """Focal length in pixels of an R2N2 camera whose metadata says ``fov_deg`` (see module docs)."""
    fov = _as_tensor(fov_deg)
    scale = math.tan(math.radians(R2N2_NOMINAL_FOV / 2)) / torch.tan(fov * math.pi / 360.0)
    return (image_size / 2.0) * R2N2_FOCAL_NDC * scale


def project_points(points: torch.Tensor, azimuth_deg, elevation_deg, distance_ratio, fov_deg=25.0,
                   image_size: int = R2N2_IMAGE_SIZE, crop_offset: float = 0.0):
    """Project 3D-LMNet-frame points into an R2N2 image.

    Args:
        points: ``(..., N, 3)``.
        azimuth_deg, elevation_deg, distance_ratio, fov_deg: shape ``(...)`` (or scalars).
        image_size: side of the rendered image in pixels (137 for R2N2).
        crop_offset: pixels removed on the top/left (4 for the 128 px network crop).
    Returns:
        ``uv (..., N, 2)`` continuous pixel coordinates (u = column, v = row, both growing right/down;
        pixel centres at ``k + 0.5``) and ``depth (..., N)``, the positive distance along the view axis.
    """
    R, t = r2n2_extrinsics(azimuth_deg, elevation_deg, distance_ratio)
    R, t = R.to(points), t.to(points)
    cam = points @ R.transpose(-1, -2) + t.unsqueeze(-2)
    depth = -cam[..., 2]
    f = focal_pixels(_as_tensor(fov_deg, points), image_size).to(points)
    f = f.unsqueeze(-1) if f.dim() > 0 else f
    c = image_size / 2.0
    u = c + f * cam[..., 0] / depth - crop_offset
    v = c - f * cam[..., 1] / depth - crop_offset
    return torch.stack([u, v], -1), depth


def camera_position(azimuth_deg, elevation_deg, distance_ratio) -> torch.Tensor:
    """Camera centre ``(..., 3)`` in the 3D-LMNet frame."""
    R, t = r2n2_extrinsics(azimuth_deg, elevation_deg, distance_ratio)
    return -(R.transpose(-1, -2) @ t.unsqueeze(-1)).squeeze(-1)


# ----------------------------------------------------------------------------- view angles (degrees)
def wrap_degrees(delta: torch.Tensor) -> torch.Tensor:
    """Angle differences in degrees wrapped to ``[-180, 180)``."""
    return (delta + 180.0) % 360.0 - 180.0


def azimuth_unit(az_deg: torch.Tensor) -> torch.Tensor:
    """``(...)`` degrees → ``(..., 2)`` ``(cos, sin)``."""
    a = torch.deg2rad(az_deg)
    return torch.stack([torch.cos(a), torch.sin(a)], -1)
