"""The trained module of a meshrecon run: convmesh's network plus its per-image pose offsets, and
what a checkpoint's ``model_config`` says about them.

:class:`MeshReconstruction` holds ``generator`` (:class:`~.network.ReconstructionNetwork`) and
``dataset_params`` (:class:`DatasetParams`), the two state dicts of a convmesh checkpoint
(``chk["generator"]``, ``chk["dataset_params"]``) under the same names. Its forward pass is the
whole differentiable path of training: network → template deformation → pose → render.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from lmnet.methods.meshrecon.config import RINGS
from lmnet.methods.meshrecon.network import ReconstructionNetwork
from lmnet.render.template_render import render_template
from lmnet.render.textured import transform_vertices
from lmnet.uvmesh.template import uv_sphere_template

__all__ = ["DatasetParams", "MeshReconstruction", "build_model", "model_config"]


class DatasetParams(nn.Module):
    """Learnable per-image pose offsets of a training set of ``num_images`` images.

    ``ds_translation (N, 2)`` and ``ds_scale (N, 1)`` are added to the stored SfM translation and
    scale (``optimize_deltas``); ``ds_z0 (N, 1)`` gives the pseudo-perspective distance
    ``z0 = 1 + exp(ds_z0)`` (``optimize_z0``). Item indices ``N + i`` are image ``i`` mirrored
    (:mod:`lmnet.data.cmr_dataset`): they share row ``i``, with the x translation negated. Without
    indices (validation, new photographs) the mean over the images is used.
    """

    def __init__(self, num_images: int, optimize_deltas: bool = True, optimize_z0: bool = False):
        super().__init__()
        self.num_images = int(num_images)
        if optimize_deltas:
            self.ds_translation = nn.Parameter(torch.zeros(num_images, 2))
            self.ds_scale = nn.Parameter(torch.zeros(num_images, 1))
        if optimize_z0:
            self.ds_z0 = nn.Parameter(torch.ones(num_images, 1))

    @property
    def has_deltas(self) -> bool:
        return hasattr(self, "ds_translation")

    @property
    def has_z0(self) -> bool:
        return hasattr(self, "ds_z0")

    def _rows(self, table: torch.Tensor, indices: torch.Tensor | None) -> torch.Tensor:
        return table.mean(0, keepdim=True) if indices is None else table[indices % self.num_images]

    def deltas(self, indices: torch.Tensor | None):
        """``(translation (B or 1, 3) with z = 0, scale (B or 1, 1))`` offsets of items ``indices (B,)``."""
        t = self._rows(self.ds_translation, indices)
        if indices is not None:
            t = t * torch.stack([1 - 2 * (indices // self.num_images).to(t.dtype), torch.ones_like(t[:, 1])], 1)
        return torch.cat([t, torch.zeros_like(t[:, :1])], 1), self._rows(self.ds_scale, indices)

    def z0(self, indices: torch.Tensor | None) -> torch.Tensor:
        """``(B or 1, 1)`` pseudo-perspective distances ``1 + exp(ds_z0)``."""
        return 1 + torch.exp(self._rows(self.ds_z0, indices))


class MeshReconstruction(nn.Module):
    """Network + pose offsets (module docstring); ``rings`` picks the template (16 CUB, 31 P3D)."""

    def __init__(self, generator: ReconstructionNetwork, dataset_params: DatasetParams, rings: int):
        super().__init__()
        self.generator = generator
        self.dataset_params = dataset_params
        self.rings = int(rings)

    @property
    def template(self):
        return uv_sphere_template(self.rings)

    def predict(self, x: torch.Tensor):
        """``(B, 4, S, S)`` → ``(texture (B, 3, T, T), displacement (B, 3, 32, 32), vertices (B, V, 3))``,
        the vertices in object space (the template deformed by the displacement map)."""
        texture, displacement = self.generator(x)
        return texture, displacement, self.template.vertex_positions(displacement.float(), self.generator.symmetric)

    def pose(self, vertices: torch.Tensor, scale, translation, rotation, indices=None) -> torch.Tensor:
        """Object-space ``(B, V, 3)`` → image space under the stored pose ``scale (B, 1)``,
        ``translation (B, 2)``, ``rotation (B, 4)`` plus the learned offsets of ``indices`` (None:
        their mean) (:func:`lmnet.render.textured.transform_vertices`)."""
        dp = self.dataset_params
        translation = nn.functional.pad(translation, (0, 1))
        if dp.has_deltas:
            dt, ds = dp.deltas(indices)
            translation, scale = translation + dt, scale + ds
        z0 = dp.z0(indices).expand(vertices.shape[0], 1) if dp.has_z0 else None
        return transform_vertices(vertices, scale, translation, rotation, z0=z0)

    def forward(self, x, scale, translation, rotation, indices=None, render_size: int = 256):
        """The training path: ``{"texture", "displacement", "vertices", "vertices_img", "rgb"
        (B, 3, R, R), "alpha" (B, 1, R, R), "mask"}`` for inputs ``x (B, 4, S, S)`` and their poses."""
        texture, displacement, vertices = self.predict(x)
        vertices_img = self.pose(vertices, scale, translation, rotation, indices)
        rgb, alpha, mask = render_template(self.template, vertices_img, texture.float(), render_size,
                                           symmetric=self.generator.symmetric)
        return {"texture": texture, "displacement": displacement, "vertices": vertices,
                "vertices_img": vertices_img, "rgb": rgb, "alpha": alpha, "mask": mask}


def build_model(model_config: Mapping[str, Any]) -> MeshReconstruction:
    """The module of a checkpoint's ``model_config`` (:func:`model_config`)."""
    generator = ReconstructionNetwork(symmetric=model_config["symmetric"],
                                      texture_res=model_config["texture_resolution"],
                                      image_size=model_config["image_size"])
    params = DatasetParams(model_config["num_images"], model_config["optimize_deltas"], model_config["optimize_z0"])
    return MeshReconstruction(generator, params, model_config["rings"])


def model_config(config: Mapping[str, Any], num_images: int) -> dict:
    """What a meshrecon checkpoint stores about its module: sizes, symmetry, template and the size
    of the pose-offset table (the training set's image count)."""
    return {"kind": "meshrecon", "dataset": config["dataset"], "rings": RINGS[config["dataset"]],
            "image_size": int(config["image_size"]), "texture_resolution": int(config["texture_resolution"]),
            "render_size": int(config["render_size"]), "symmetric": bool(config["symmetric"]),
            "num_images": int(num_images), "optimize_deltas": bool(config["optimize_deltas"]),
            "optimize_z0": bool(config["optimize_z0"])}
