"""Torch z-buffer rasteriser (CPU or CUDA): triangle meshes and shaded point splats → RGBA.

- :class:`Camera` (generic pinhole batch; ``Camera.r2n2``, ``Camera.look_at``),
  :func:`three_quarter_view`, :func:`turntable`;
- :func:`render_mesh` (R2N2 views) / :func:`render_mesh_camera` (any camera);
- :func:`render_points` (any camera) / :func:`render_points_r2n2` (R2N2 views);
- :func:`composite` to flatten RGBA onto a solid background.
"""

from lmnet.render.cameras import Camera, three_quarter_view, turntable
from lmnet.render.rasterizer import (composite, render_mesh, render_mesh_camera, render_points,
                                     render_points_r2n2, vertex_normals)
from lmnet.render.shading import DEFAULT_LIGHTS, Lights

__all__ = [
    "Camera", "three_quarter_view", "turntable", "render_mesh", "render_mesh_camera",
    "render_points", "render_points_r2n2", "composite", "vertex_normals", "Lights", "DEFAULT_LIGHTS",
]
