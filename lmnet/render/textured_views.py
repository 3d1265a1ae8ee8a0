"""Looking at a textured mesh: turntable views, fitted to the image, shaded, composited, as a GIF.

What ``lmnet render --mesh`` draws. The pictures come from the textured renderer's hard pass
(:func:`lmnet.render.textured.rasterize` and :func:`~lmnet.render.textured.sample_texture`, the two
halves of :func:`~lmnet.render.textured.render_textured`), with its conventions: orthographic, NDC
``x`` right and ``y`` up, the larger ``z`` nearer, texture lookup at ``(2u − 1, 1 − 2v)`` with
``align_corners=True``. The soft alpha is not computed (a picture has no use for it), and faces are
drawn from both sides, so a mesh whose faces wind inside out (convmesh's own ``Y up`` export)
still shows its outside.

**View frame.** A rotation ``q`` (w, x, y, z; :mod:`lmnet.quaternions`) takes the centred, scaled
object (:func:`fit_scale`) straight into the renderer's frame: ``v_view = qrot(q, s · (v − c))``.
The object's **+y is up**. lmnet's textured meshes are mirror-symmetric about the plane ``x = 0``
(:mod:`lmnet.uvmesh`), so a bird or a car has its sides along ±x and its length along z: at azimuth
0 the viewer looks along the object's **−x axis** (its +x side faces the viewer, its +z points to
the left of the picture), i.e. it is seen from the side. The azimuth turns the object about its
+y axis (right-handed), then the elevation tilts its top towards the viewer (seen from above).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lmnet.atomic_io import atomic_path
from lmnet.quaternions import qmul, qrot
from lmnet.render.textured import face_corners, rasterize, sample_texture

__all__ = ["FILL", "GREY", "axis_quaternion", "view_rotations", "fit_scale", "render_textured_mesh",
           "write_gif", "to_uint8"]

#: the fraction of the half image that the mesh's bounding sphere spans (:func:`fit_scale`)
FILL = 0.85
#: the colour of a mesh without a texture (RGB in [0, 1])
GREY = (0.72, 0.72, 0.72)
#: light direction in the view frame (up, right, towards the viewer), normalised below
_LIGHT = (0.35, 0.55, 1.0)
_AMBIENT = 0.55  # shade = ambient + (1 − ambient) · max(0, n · light)
_BATCH_PIXELS = 1 << 21  # at most this many output pixels rasterised at once


def _tensor(x, dtype) -> torch.Tensor:
    """A tensor of ``dtype`` from a tensor or anything NumPy takes (copied: read-only arrays welcome)."""
    return x.detach().to(dtype) if isinstance(x, torch.Tensor) else torch.tensor(np.asarray(x), dtype=dtype)


def axis_quaternion(axis: str, degrees) -> torch.Tensor:
    """Rotations by ``degrees`` (a number or ``(K,)``) about the ``"x"``, ``"y"`` or ``"z"`` axis →
    ``(K, 4)`` float64 unit quaternions (w, x, y, z), right-handed."""
    half = torch.as_tensor(degrees, dtype=torch.float64).reshape(-1) * (math.pi / 360.0)
    q = torch.zeros(half.shape[0], 4, dtype=torch.float64)
    q[:, 0] = torch.cos(half)
    q[:, 1 + "xyz".index(axis)] = torch.sin(half)
    return q


def view_rotations(n: int, elevation_deg: float = 20.0, start_deg: float = 0.0) -> torch.Tensor:
    """``n`` turntable views → ``(n, 4)`` float32 quaternions (w, x, y, z) in the view frame of the
    module docstring: azimuths ``start_deg + 360 k / n`` (k = 0 … n − 1; azimuth 0 is the side view,
    looking along the object's −x) about the object's +y axis, then a tilt of ``elevation_deg``
    (positive: seen from above)."""
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    azimuth = float(start_deg) + 360.0 * torch.arange(int(n), dtype=torch.float64) / int(n)
    turn = axis_quaternion("y", azimuth - 90.0)  # −90°: the object's +x turns towards the viewer (+z)
    tilt = axis_quaternion("x", float(elevation_deg)).expand(int(n), -1)
    return qmul(tilt, turn).float()


def fit_scale(vertices) -> tuple[torch.Tensor, float]:
    """``vertices (V, 3)`` → ``(centre (3,), scale)``: the centre of their bounding box and the scale
    that puts their farthest point from it at :data:`FILL` (0.85) of the half image. The bounding
    sphere fits, so the mesh fills about 85 % of the view under **every** rotation. A mesh with no
    extent (all vertices equal) or with non-finite vertices is a ValueError."""
    v = _tensor(vertices, torch.float32)
    if v.dim() != 2 or v.shape[1] != 3 or v.shape[0] == 0:
        raise ValueError(f"vertices must be (V, 3) with V >= 1, got {tuple(v.shape)}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError("vertices have NaN or infinite values")
    centre = (v.min(0).values + v.max(0).values) / 2
    radius = float((v - centre).norm(dim=1).max())
    if not radius > 0:
        raise ValueError("the mesh has no extent: all its vertices are at one point")
    return centre, FILL / radius


def _face_shade(view: torch.Tensor, faces: torch.Tensor, face_index: torch.Tensor) -> torch.Tensor:
    """Lambert-like shading of the visible faces: ``view (K, V, 3)``, ``faces (F, 3)``,
    ``face_index (K, H, W)`` (−1 uncovered) → ``(K, 1, H, W)`` in [ambient, 1]. A face's normal is
    turned towards the viewer first (faces are drawn from both sides)."""
    corners = face_corners(view, faces)  # (K, F, 3, 3)
    normal = torch.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
    normal = normal * torch.where(normal[..., 2:] < 0, -1.0, 1.0)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    light = view.new_tensor(_LIGHT)
    shade = _AMBIENT + (1 - _AMBIENT) * (normal @ (light / light.norm())).clamp_min(0)  # (K, F)
    pixel = torch.gather(shade, 1, face_index.clamp_min(0).flatten(1)).view_as(face_index)
    return pixel.unsqueeze(1)


def _texture_inputs(uvs, face_uvs, texture, n_faces: int):
    """The per-corner UVs ``(1, F, 3, 2)`` and the texture ``(1, 3, Ht, Wt)`` to sample; a mesh
    without a texture (``texture is None``) gets the flat :data:`GREY` and UVs 0."""
    if texture is None:
        return torch.zeros(1, n_faces, 3, 2), torch.tensor(GREY, dtype=torch.float32).view(1, 3, 1, 1)
    tex = _tensor(texture, torch.float32)
    if tex.dim() != 3 or tex.shape[0] != 3:
        raise ValueError(f"texture must be (3, H, W) in [0, 1], got {tuple(tex.shape)}")
    uv = _tensor(uvs, torch.float32)
    ft = _tensor(face_uvs, torch.long)
    if uv.dim() != 2 or uv.shape[1] != 2 or ft.shape != (n_faces, 3):
        raise ValueError(f"uvs must be (T, 2) and face_uvs ({n_faces}, 3), got {tuple(uv.shape)} "
                         f"and {tuple(ft.shape)}")
    return uv[ft].unsqueeze(0), tex.unsqueeze(0)


def render_textured_mesh(vertices, faces, uvs, face_uvs, texture, rotations, size: int,
                         background=(1.0, 1.0, 1.0), shading: bool = True) -> torch.Tensor:
    """Pictures of one textured mesh under ``K`` rotations.

    Args:
        vertices: ``(V, 3)`` in the object frame (module docstring: +y up, mirror plane x = 0);
            centred and scaled by :func:`fit_scale`.
        faces: ``(F, 3)`` vertex indices.
        uvs: ``(T, 2)`` texture coordinates as an OBJ stores them (v up, row 0 of the texture image
            is v = 1); used as they are (no symmetric padding, :mod:`lmnet.uvmesh.maps`).
        face_uvs: ``(F, 3)`` indices into ``uvs``.
        texture: ``(3, Ht, Wt)`` RGB in [0, 1], or None for a flat grey mesh (``uvs`` unused).
        rotations: ``(K, 4)`` quaternions (w, x, y, z) into the view frame, e.g. :func:`view_rotations`.
        size: image side in pixels.
        background: RGB in [0, 1] behind the mesh.
        shading: multiply the colours by a soft Lambert-like shade from the face normals (ambient
            0.55, one light from the upper right, in front), so that the shape reads.
    Returns:
        float32 ``(K, size, size, 3)`` in [0, 1]: the colour composited over ``background`` with
        the hard mask (no anti-aliasing).
    """
    f = _tensor(faces, torch.long)
    centre, scale = fit_scale(vertices)
    v = (_tensor(vertices, torch.float32) - centre) * scale
    q = _tensor(rotations, torch.float32)
    if q.dim() != 2 or q.shape[1] != 4:
        raise ValueError(f"rotations must be (K, 4) quaternions (w, x, y, z), got {tuple(q.shape)}")
    q = q / q.norm(dim=1, keepdim=True)
    corner_uv, tex = _texture_inputs(uvs, face_uvs, texture, f.shape[0])
    bg = torch.tensor(background, dtype=torch.float32).view(1, 3, 1, 1)
    frames = []
    with torch.no_grad():
        for chunk in q.split(max(1, _BATCH_PIXELS // (size * size))):
            view = qrot(chunk.unsqueeze(1), v.unsqueeze(0))  # (k, V, 3)
            hard = rasterize(view, f, corner_uv, size, cull_backfaces=False)
            rgb = sample_texture(tex, hard.values, hard.mask)
            if shading:
                rgb = rgb * _face_shade(view, f, hard.face_index)
            frames.append((rgb + bg * (1 - hard.mask)).clamp(0, 1).permute(0, 2, 3, 1))
    return torch.cat(frames)


def _shared_palette(frames: np.ndarray) -> Image.Image:
    """A 255-colour palette for every frame at once (a mosaic of all frames, subsampled to at most
    about 512² pixels): colours that only show on the far side are in it too."""
    k, h, w, _ = frames.shape
    step = max(1, int(math.ceil(math.sqrt(k * h * w / float(512 * 512)))))
    mosaic = np.concatenate(list(frames[:, ::step, ::step]), axis=1)
    return Image.fromarray(np.ascontiguousarray(mosaic), "RGB").quantize(colors=255, method=Image.Quantize.MEDIANCUT)


def write_gif(frames, path, ms_per_frame: int = 80) -> Path:
    """Write ``frames`` (``uint8 (K, H, W, 3)``) as a looping GIF at ``path``, ``ms_per_frame``
    each, atomically (:mod:`lmnet.atomic_io`); all frames share one palette (:func:`_shared_palette`,
    no dithering). GIF stores identical consecutive frames once, so a mesh that looks the same from
    two successive views gives fewer frames. Returns the path."""
    a = np.asarray(frames)
    if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3 or a.shape[0] < 1:
        raise ValueError(f"frames must be uint8 (K, H, W, 3) with K >= 1, got {a.dtype} {a.shape}")
    palette = _shared_palette(a)
    images = [Image.fromarray(f, "RGB").quantize(palette=palette, dither=Image.Dither.NONE) for f in a]
    path = Path(path)
    with atomic_path(path, suffix=".gif") as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(ms_per_frame),
                       loop=0, optimize=False, disposal=2)
    return path


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """Float frames in [0, 1] (any shape) → ``uint8`` ``round(255 · x)``."""
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
