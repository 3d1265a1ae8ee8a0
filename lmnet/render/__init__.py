"""Torch z-buffer rasteriser (CPU or CUDA): triangle meshes and shaded point splats → RGBA.

- :class:`Camera` (generic pinhole batch; ``Camera.r2n2``, ``Camera.look_at``),
  :func:`three_quarter_view`, :func:`turntable`;
- :func:`render_mesh` (R2N2 views) / :func:`render_mesh_camera` (any camera);
- :func:`render_points` (any camera) / :func:`render_points_r2n2` (R2N2 views);
- :func:`composite` to flatten RGBA onto a solid background.

Figures, what the notebooks use (:mod:`.grids`, :mod:`.pointclouds`, :mod:`.browser`):

- :func:`make_grid` / :func:`save_grid` (rows of items → one PIL image), :func:`compose` (a grid of
  PIL cells with titles), :func:`to_pil`, :func:`show` (inline display), :func:`save_png`;
- :func:`render_cloud`, :func:`render_mesh_preview`, :func:`turntable_gif` (one call per picture);
- :func:`browse`, the ipywidgets browser over prediction records.

Textured meshes: :mod:`.textured` (the differentiable DIB-R-like renderer) and :mod:`.textured_views`
(pictures of one mesh: :func:`render_textured_mesh` under :func:`view_rotations`, :func:`to_uint8`,
:func:`write_gif` for a turntable; ``lmnet render --mesh``).

Soft silhouettes of point clouds, the differentiable projection of :mod:`lmnet.projection`:
:func:`soft_silhouette`, :func:`mask_to_grid_resolution`, :func:`silhouette_iou`,
:func:`annealed_sigma`.

matplotlib, ipywidgets and IPython are imported only where they are used.
"""

from lmnet.projection import annealed_sigma, mask_to_grid_resolution, silhouette_iou, soft_silhouette
from lmnet.render.browser import Browser, browse
from lmnet.render.cameras import Camera, three_quarter_view, turntable
from lmnet.render.grids import compose, make_grid, save_grid, save_png, show, to_pil
from lmnet.render.pointclouds import render_cloud, render_mesh_preview, turntable_gif
from lmnet.render.rasterizer import (composite, render_mesh, render_mesh_camera, render_points,
                                     render_points_r2n2, vertex_normals)
from lmnet.render.shading import DEFAULT_LIGHTS, Lights
from lmnet.render.textured_views import render_textured_mesh, to_uint8, view_rotations, write_gif

__all__ = [
    "Camera", "three_quarter_view", "turntable", "render_mesh", "render_mesh_camera",
    "render_points", "render_points_r2n2", "composite", "vertex_normals", "Lights", "DEFAULT_LIGHTS",
    "make_grid", "save_grid", "compose", "to_pil", "show", "save_png", "render_cloud", "render_mesh_preview",
    "turntable_gif", "Browser", "browse",
    "soft_silhouette", "mask_to_grid_resolution", "silhouette_iou", "annealed_sigma",
    "render_textured_mesh", "view_rotations", "to_uint8", "write_gif",
]
