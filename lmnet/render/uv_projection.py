"""Pseudo-ground-truth textures: a photograph projected into a mesh's UV space, kept where visible.

convmesh's ``--generate_pseudogt`` step, one function per operation:

1. :func:`texture_visibility`: which texels of a texture the renderer reads when it draws the mesh,
   found by autograd: ``∂ Σ rgb / ∂ texture`` (gradient outputs all ones) is non-zero exactly on
   the texels some pixel samples bilinearly;
2. :func:`project_image_to_uv`: the photograph read at the screen position of every texel's
   surface point (:func:`lmnet.render.textured.render_uv_space`), with its hard UV coverage;
3. :func:`pseudo_ground_truth`: (2) multiplied by (1), upsampled to the UV resolution.

Conventions are those of :mod:`lmnet.render.textured` (orthographic NDC, larger z nearer, front
faces counter-clockwise on screen) and of :mod:`lmnet.uvmesh` (a texture's width is u, row 0 is
v = 1; the full, symmetrised texture is looked up with :func:`lmnet.uvmesh.pad_for_sampling`).
Texel ``(i, j)`` of a UV map of side ``R`` written by :func:`project_image_to_uv` is the surface
point at ``u = (j + 1/2)/R``, ``v = 1 - (i + 1/2)/R`` (the renderer's pixel centres in UV space).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lmnet.render.textured import face_corners, rasterize, render_uv_space, sample_texture
from lmnet.uvmesh import UVSphereTemplate, pad_for_sampling

__all__ = ["VISIBILITY_DIVISOR", "DEFAULT_PIXEL_CENTRES", "visibility_resolution", "texture_visibility",
           "project_image_to_uv", "pseudo_ground_truth"]

#: the visibility texture is at most ``render_size // VISIBILITY_DIVISOR`` texels wide (convmesh: 1024 → 128)
VISIBILITY_DIVISOR = 8
#: lmnet's default sampling of the photograph: convmesh's (align_corners=True). The exact pixel
#: centres are not better on every texel the pseudo-GT keeps (docs/textured.md#pseudo-ground-truth)
DEFAULT_PIXEL_CENTRES = False


def visibility_resolution(texture_size: int, render_size: int) -> int:
    """The side at which :func:`texture_visibility` works: ``texture_size``, or
    ``render_size // 8`` when the texture is larger than that."""
    limit = render_size // VISIBILITY_DIVISOR
    return limit if texture_size > limit else texture_size


def _corner_uvs(uvs: torch.Tensor, face_uvs: torch.Tensor) -> torch.Tensor:
    """Template UVs ``(T, 2)`` and UV faces ``(F, 3)`` → per-corner UVs ``(1, F, 3, 2)``."""
    return uvs[face_uvs.long()].unsqueeze(0)


def texture_visibility(vertices_img: torch.Tensor, faces: torch.Tensor, uvs: torch.Tensor, face_uvs: torch.Tensor,
                       texture: torch.Tensor, size: int, symmetric: bool = True) -> torch.Tensor:
    """The texels the renderer reads when it draws the mesh at ``size × size``.

    The texture is first resized bilinearly (align_corners=False) to ``size // 8`` when it is larger
    (:func:`visibility_resolution`). It is then drawn through the training path: per-corner UVs and
    texture through :func:`lmnet.uvmesh.pad_for_sampling` (``symmetric``), the hard pass of
    :func:`lmnet.render.textured.rasterize`, the shader :func:`~lmnet.render.textured.sample_texture`
    (exactly the ``rgb`` of ``render_textured``; its soft alpha does not depend on the texture and is
    not computed). A texel is visible when ``∂ Σ rgb / ∂ texel`` is non-zero in any channel. The
    gradient does not depend on the texture's values, only on its shape, dtype and device.

    Args:
        vertices_img: ``(B, V, 3)`` image-space vertices (NDC x, y; larger z nearer).
        faces: ``(F, 3)`` vertex indices; ``uvs``: ``(T, 2)`` UVs in [0, 1] (v up);
        face_uvs: ``(F, 3)`` indices into ``uvs`` (the template's ``face_uvs``).
        texture: ``(B, C, Ht, Wt)`` the full texture the renderer would draw.
        size: render side in pixels (convmesh: 1024).
        symmetric: the ``pad_for_sampling`` mode of the texture (True: circular padding in u).
    Returns:
        bool ``(B, 1, Ht', Wt')`` at the resolution it rendered (``Ht' = Wt' = size // 8`` when resized).
    """
    if texture.dim() != 4 or texture.shape[0] != vertices_img.shape[0]:
        raise ValueError(f"texture must be ({vertices_img.shape[0]}, C, Ht, Wt), got {tuple(texture.shape)}")
    side = visibility_resolution(max(texture.shape[2:]), size)
    tex = texture.detach().to(vertices_img.dtype)
    if side != max(texture.shape[2:]):
        tex = F.interpolate(tex, size=(side, side), mode="bilinear", align_corners=False)
    with torch.enable_grad():
        tex = tex.clone().requires_grad_(True)
        corner_uv, padded = pad_for_sampling(_corner_uvs(uvs, face_uvs).to(tex.dtype), tex, symmetric)
        hard = rasterize(vertices_img.detach(), faces, corner_uv, size)
        rgb = sample_texture(padded, hard.values, hard.mask)
        (grad,) = torch.autograd.grad(rgb, tex, grad_outputs=torch.ones_like(rgb))
    return (grad != 0).any(dim=1, keepdim=True)


def project_image_to_uv(vertices_img: torch.Tensor, faces: torch.Tensor, uvs: torch.Tensor, face_uvs: torch.Tensor,
                        image: torch.Tensor, resolution: int, pixel_centres: bool = DEFAULT_PIXEL_CENTRES):
    """Inverse rendering: every texel takes the colour of ``image`` at its surface point's screen position.

    Wraps :func:`lmnet.render.textured.render_uv_space` with the corners' screen positions
    ``v_img.xy``. Nothing is occluded here: texels of hidden or back-facing surface read the
    colour of whatever was drawn in front of them (:func:`pseudo_ground_truth` masks them).

    ``pixel_centres=False`` (the default, :data:`DEFAULT_PIXEL_CENTRES`) is convmesh's sampling
    (``grid_sample(align_corners=True)``): NDC ``x`` reads image column ``(x + 1)(W - 1)/2``.
    ``pixel_centres=True`` reads column ``(xW + W - 1)/2``, the pixel the forward renderer centres
    at ``x``; the two differ by ``x/2`` pixels (0 at the image centre, half a pixel at the borders,
    the original reading nearer the centre). Measured (docs/textured.md#pseudo-ground-truth): the
    exact centres are more accurate inside the silhouette, the original's inward shift is more
    accurate on the rim, where a read half a pixel outward mixes in the background.

    Args:
        vertices_img: ``(B, V, 3)``; faces ``(F, 3)``; uvs ``(T, 2)``; face_uvs ``(F, 3)`` as in
            :func:`texture_visibility`.
        image: ``(B, C, Hi, Wi)`` the photograph (convmesh: the masked crop at 1024², in [-1, 1]).
        resolution: the UV map's side ``R``.
    Returns:
        ``(texture (B, C, R, R), alpha (B, 1, R, R))``: the image in UV space and the hard UV coverage
        (0 on texels no UV triangle covers, e.g. between the pole triangles).
    """
    corner_xy = face_corners(vertices_img[..., :2], faces)
    return render_uv_space(uvs.to(image.dtype).unsqueeze(0), face_uvs, corner_xy.to(image.dtype), image,
                           int(resolution), pixel_centres=pixel_centres)


def pseudo_ground_truth(vertices_img: torch.Tensor, template: UVSphereTemplate, texture: torch.Tensor,
                        image_hd: torch.Tensor, *, resolution: int = 512, render_size: int = 1024,
                        pixel_centres: bool = DEFAULT_PIXEL_CENTRES):
    """convmesh's pseudo-ground-truth texture of one batch: the photograph in UV space, where visible.

    1. ``visible = texture_visibility(vertices_img, ..., texture, render_size)`` (side
       ``min(T, render_size // 8)``);
    2. ``uv, alpha = project_image_to_uv(vertices_img, ..., image_hd, resolution)``;
    3. ``mask = interpolate(visible.float(), resolution, bilinear, align_corners=False) > 0``;
       return ``uv · mask`` and ``alpha · mask``.

    Args:
        vertices_img: ``(B, V, 3)`` the predicted mesh in image space (pose and learned offsets applied).
        template: the UV-sphere template (its ``faces``, ``uvs`` and ``face_uvs``).
        texture: ``(B, 3, T, T)`` the predicted full (symmetrised) texture.
        image_hd: ``(B, 3, H, W)`` the photograph, masked, in [-1, 1] (convmesh: at ``render_size``).
        resolution: side of the pseudo-GT texture (convmesh: 512).
        render_size: side of the visibility render (convmesh: 1024).
        pixel_centres: how the photograph is sampled (:func:`project_image_to_uv`).
    Returns:
        ``(texture (B, 3, R, R), alpha (B, 1, R, R))`` in ``image_hd``'s dtype; 0 where not visible.
    """
    device = vertices_img.device
    faces, uvs, face_uvs = (template.tensor(k, device) for k in ("faces", "uvs", "face_uvs"))
    visible = texture_visibility(vertices_img, faces, uvs, face_uvs, texture, render_size)
    uv, alpha = project_image_to_uv(vertices_img, faces, uvs, face_uvs, image_hd, resolution, pixel_centres)
    mask = F.interpolate(visible.float(), size=uv.shape[2:], mode="bilinear", align_corners=False) > 0
    mask = mask.to(uv.dtype)
    return uv * mask, alpha * mask
