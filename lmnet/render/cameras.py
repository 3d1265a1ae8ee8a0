"""Generic pinhole cameras for the rasteriser (batched, resolution independent).

A :class:`Camera` holds ``B`` cameras. World points are in the **3D-LMNet frame** (+x down, see
:mod:`lmnet.camera`); ``x_cam = p @ R^T + t`` gives OpenGL camera coordinates (x right, y up, the
camera looks down -z). The focal length is stored in NDC units (half the image width = 1), so the
same camera renders at any ``image_size``: ``focal_px = focal * image_size / 2``, principal point
at the image centre, and a camera-space point projects to pixel coordinates

    ``u = S/2 + focal_px * x / depth``, ``v = S/2 - focal_px * y / depth``, ``depth = -z``,

with pixel ``(row i, col j)`` centred at ``(u, v) = (j + 0.5, i + 0.5)`` — exactly
:func:`lmnet.camera.project_points` for an R2N2 camera (:meth:`Camera.r2n2`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lmnet import camera as r2n2_camera


def _vec3(x, batch: int | None, dtype, device) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=dtype, device=device)
    if t.shape[-1:] != (3,) or t.dim() > 2:
        raise ValueError(f"expected a 3-vector or a (B, 3) tensor, got shape {tuple(t.shape)}")
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if batch is not None and t.shape[0] == 1 and batch > 1:
        t = t.expand(batch, 3)
    return t


@dataclass(frozen=True)
class Camera:
    """``B`` pinhole cameras.

    Attributes:
        R: ``(B, 3, 3)`` world (3D-LMNet frame) → camera rotation.
        t: ``(B, 3)`` translation: ``x_cam = p @ R^T + t``.
        focal: ``(B,)`` focal length in NDC units (half image width = 1; R2N2 fov 25 → 2.1875).
    """

    R: torch.Tensor
    t: torch.Tensor
    focal: torch.Tensor

    def __post_init__(self):
        if self.R.dim() != 3 or self.R.shape[1:] != (3, 3):
            raise ValueError(f"Camera.R must be (B, 3, 3), got {tuple(self.R.shape)}")
        b = self.R.shape[0]
        if self.t.shape != (b, 3):
            raise ValueError(f"Camera.t must be ({b}, 3), got {tuple(self.t.shape)}")
        if self.focal.shape != (b,):
            raise ValueError(f"Camera.focal must be ({b},), got {tuple(self.focal.shape)}")

    def __len__(self) -> int:
        return self.R.shape[0]

    def to(self, device=None, dtype=None) -> "Camera":
        return Camera(self.R.to(device=device, dtype=dtype), self.t.to(device=device, dtype=dtype),
                      self.focal.to(device=device, dtype=dtype))

    def expand(self, batch: int) -> "Camera":
        """Broadcast a single camera to ``batch`` cameras (identity if already ``batch``)."""
        if len(self) == batch:
            return self
        if len(self) != 1:
            raise ValueError(f"cannot broadcast {len(self)} cameras to a batch of {batch}")
        return Camera(self.R.expand(batch, 3, 3), self.t.expand(batch, 3), self.focal.expand(batch))

    def focal_pixels(self, image_size: int) -> torch.Tensor:
        """``(B,)`` focal length in pixels for a square ``image_size`` image."""
        return self.focal * (image_size / 2.0)

    def to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """``(B, N, 3)`` world points → ``(B, N, 3)`` camera coordinates."""
        return points @ self.R.transpose(-1, -2).to(points) + self.t.to(points).unsqueeze(-2)

    def project(self, points: torch.Tensor, image_size: int):
        """``(B, N, 3)`` world points → ``uv (B, N, 2)`` pixel coordinates and ``depth (B, N)``."""
        cam = self.to_camera(points)
        depth = -cam[..., 2]
        f = self.focal_pixels(image_size).to(points).unsqueeze(-1)
        c = image_size / 2.0
        u = c + f * cam[..., 0] / depth
        v = c - f * cam[..., 1] / depth
        return torch.stack([u, v], -1), depth

    # ------------------------------------------------------------------ constructors
    @staticmethod
    def r2n2(azimuth_deg, elevation_deg, distance_ratio, fov_deg=r2n2_camera.R2N2_NOMINAL_FOV,
             dtype=torch.float32, device=None) -> "Camera":
        """R2N2 cameras from ``rendering_metadata.txt`` values (each a number or a ``(B,)`` tensor).

        Identical to :func:`lmnet.camera.project_points` for the same metadata.
        """
        az = torch.as_tensor(azimuth_deg, dtype=dtype, device=device).reshape(-1)
        el = torch.as_tensor(elevation_deg, dtype=dtype, device=device).reshape(-1)
        dr = torch.as_tensor(distance_ratio, dtype=dtype, device=device).reshape(-1)
        fov = torch.as_tensor(fov_deg, dtype=dtype, device=device).reshape(-1)
        az, el, dr, fov = torch.broadcast_tensors(az, el, dr, fov)
        R, t = r2n2_camera.r2n2_extrinsics(az, el, dr)
        # focal_pixels(fov, S) = S/2 * focal_ndc, so focal_ndc = focal_pixels(fov, 2)
        focal = r2n2_camera.focal_pixels(fov, image_size=2)
        return Camera(R.to(dtype=dtype, device=device), t.to(dtype=dtype, device=device),
                      focal.to(dtype=dtype, device=device))

    @staticmethod
    def look_at(eye, target=(0.0, 0.0, 0.0), up=(-1.0, 0.0, 0.0),
                focal=r2n2_camera.R2N2_FOCAL_NDC, dtype=torch.float32, device=None) -> "Camera":
        """Cameras at ``eye (B, 3)`` looking at ``target`` with ``up`` (default -x: up in the
        3D-LMNet frame) projecting to the image's upward direction; ``focal`` in NDC units."""
        eye = _vec3(eye, None, dtype, device)
        b = eye.shape[0]
        target = _vec3(target, b, dtype, device)
        up = _vec3(up, b, dtype, device)
        back = torch.nn.functional.normalize(eye - target, dim=-1)  # camera +z points to the eye
        right = torch.linalg.cross(up, back, dim=-1)
        if bool((right.norm(dim=-1) < 1e-8).any()):
            raise ValueError("look_at: 'up' is parallel to the viewing direction")
        right = torch.nn.functional.normalize(right, dim=-1)
        true_up = torch.linalg.cross(back, right, dim=-1)
        R = torch.stack([right, true_up, back], dim=-2)
        t = -(R @ eye.unsqueeze(-1)).squeeze(-1)
        f = torch.as_tensor(focal, dtype=dtype, device=device).reshape(-1).expand(b).clone()
        return Camera(R, t, f)


#: default "3/4 view" direction in the 3D-LMNet frame: above (-x), in front (+z) and to the side (+y)
THREE_QUARTER_DIRECTION = (-0.45, 0.55, 0.75)


def three_quarter_view(batch: int = 1, distance: float = 1.6, focal: float = r2n2_camera.R2N2_FOCAL_NDC,
                       dtype=torch.float32, device=None) -> Camera:
    """The canonical "3/4 view" of a centred unit-diagonal object (front-side-above, up = -x).

    At the default ``distance`` and ``focal`` a unit-diagonal shape fills about 70 % of the frame.
    """
    d = torch.tensor(THREE_QUARTER_DIRECTION, dtype=dtype, device=device)
    eye = (distance * d / d.norm()).expand(batch, 3)
    return Camera.look_at(eye, focal=focal, dtype=dtype, device=device)


def turntable(n_views: int, elevation_deg: float = 25.0, distance: float = 1.6,
              focal: float = r2n2_camera.R2N2_FOCAL_NDC, dtype=torch.float32, device=None) -> Camera:
    """``n_views`` cameras evenly spaced in azimuth around the vertical (-x) axis, starting in front
    (+z) of the object, at ``elevation_deg`` above the horizontal plane."""
    az = torch.arange(n_views, dtype=torch.float64) * (2 * math.pi / n_views)
    el = math.radians(elevation_deg)
    eye = torch.stack([torch.full_like(az, -math.sin(el)),
                       math.cos(el) * torch.sin(az),
                       math.cos(el) * torch.cos(az)], -1) * distance
    return Camera.look_at(eye.to(dtype), focal=focal, dtype=dtype, device=device)
