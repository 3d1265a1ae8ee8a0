"""Lambert shading with a key and a fill light, defined in **camera coordinates** (OpenGL: x right,
y up, +z towards the viewer), so every view of an object is lit the same way, like the 3D-R2N2
renders."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Lights:
    """Directions point from the surface towards the light (camera frame, need not be unit).

    Intensity = ``ambient + key * max(0, n·l_key) + fill * max(0, n·l_fill)`` (clamped to 1 after
    multiplying the base colour).
    """

    ambient: float = 0.30
    key: float = 0.62
    key_direction: tuple[float, float, float] = (-0.45, 0.65, 0.62)   # upper left, in front
    fill: float = 0.28
    fill_direction: tuple[float, float, float] = (0.75, -0.15, 0.65)  # right, slightly below


DEFAULT_LIGHTS = Lights()


def lambert(normals: torch.Tensor, colors: torch.Tensor, lights: Lights = DEFAULT_LIGHTS) -> torch.Tensor:
    """Shade ``colors (..., 3)`` in [0, 1] given unit camera-frame ``normals (..., 3)`` facing the
    viewer. Returns ``(..., 3)`` in [0, 1]."""
    key = torch.nn.functional.normalize(
        torch.tensor(lights.key_direction, dtype=normals.dtype, device=normals.device), dim=0)
    fill = torch.nn.functional.normalize(
        torch.tensor(lights.fill_direction, dtype=normals.dtype, device=normals.device), dim=0)
    intensity = (lights.ambient
                 + lights.key * (normals @ key).clamp_min(0)
                 + lights.fill * (normals @ fill).clamp_min(0))
    return (colors * intensity.unsqueeze(-1)).clamp(0.0, 1.0)
