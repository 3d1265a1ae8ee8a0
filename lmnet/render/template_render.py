"""Rendering the deformed UV-sphere template with a predicted texture: the one render path of the
textured-mesh methods (training, pseudo-ground-truth, inference, FID renders).

The texture and the template's UVs go through :func:`lmnet.uvmesh.maps.pad_for_sampling` (a
symmetric model's texture is circularly padded and its u remapped; otherwise the first column is
appended) and then :func:`lmnet.render.textured.render_textured` (conventions in its module docstring).
"""

from __future__ import annotations

import torch

from lmnet.render.textured import MAX_FRAGMENTS, render_textured
from lmnet.uvmesh.maps import pad_for_sampling
from lmnet.uvmesh.template import UVSphereTemplate

__all__ = ["template_face_uvs", "render_template"]


def template_face_uvs(template: UVSphereTemplate, texture: torch.Tensor, symmetric: bool = True):
    """``(face_uvs (1, F, 3, 2), padded texture)`` for sampling ``texture (B, 3, Ht, Wt)`` on ``template``."""
    uvs = template.tensor("uvs", texture.device).to(texture.dtype)
    uvs, padded = pad_for_sampling(uvs, texture, symmetric)
    return uvs[template.tensor("face_uvs", texture.device)].unsqueeze(0), padded


def render_template(template: UVSphereTemplate, vertices_img: torch.Tensor, texture: torch.Tensor, size, *,
                    symmetric: bool = True, max_fragments: int = MAX_FRAGMENTS):
    """Render the template deformed to ``vertices_img`` and coloured by ``texture``.

    Args:
        template: the UV sphere the vertices belong to.
        vertices_img: ``(B, V, 3)`` in image space (NDC x, y; larger z nearer), e.g. from
            :func:`lmnet.render.textured.transform_vertices`.
        texture: ``(B or 1, 3, Ht, Wt)``: the full texture (a symmetric model's already mirrored).
        size: render side ``S`` or ``(H, W)``.
    Returns:
        ``(rgb (B, 3, H, W), alpha (B, 1, H, W), mask (B, 1, H, W))`` as
        :func:`~lmnet.render.textured.render_textured`: texture colours with 0 on the background,
        the soft alpha and the hard mask. Differentiable in the vertices' x, y and the texture.
    """
    face_uvs, padded = template_face_uvs(template, texture, symmetric)
    faces = template.tensor("faces", vertices_img.device)
    return render_textured(vertices_img, faces, face_uvs.to(vertices_img.dtype), padded.to(vertices_img.dtype),
                           size, max_fragments=max_fragments)
