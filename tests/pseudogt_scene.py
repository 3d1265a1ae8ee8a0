"""A known scene for the pseudo-ground-truth tests: a deformed UV sphere, a pose, a true texture, its
photograph, and an independent (numpy) visibility of any UV point by an exact depth test."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from lmnet.render.textured import render_textured, sample_texture, transform_vertices
from lmnet.uvmesh import pad_for_sampling, uv_sphere_template

TEMPLATE = uv_sphere_template(16)


class Scene(NamedTuple):
    vertices_img: torch.Tensor   # (1, V, 3) image space
    texture: torch.Tensor        # (1, 3, T, T) the true texture, in [-1, 1]
    photo: torch.Tensor          # (1, 3, S, S) its render, background 0


def smooth_field(gen: torch.Generator, channels: int, coarse: int, size: int) -> torch.Tensor:
    """``(1, channels, size, size)``: a random ``coarse × coarse`` grid upsampled bicubically."""
    grid = torch.randn(1, channels, coarse, coarse, generator=gen, dtype=torch.float64)
    return F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)


def corner_uvs() -> torch.Tensor:
    """The template's per-corner UVs ``(1, F, 3, 2)`` float64."""
    return torch.from_numpy(TEMPLATE.uvs[TEMPLATE.face_uvs].astype(np.float64)).unsqueeze(0)


def make_scene(seed: int, texture_size: int, render_size: int, normal: float = 0.12, tangent: float = 0.02) -> Scene:
    """Template + a smooth random displacement map (offsets of about ``normal`` along the normal and
    ``tangent`` along the surface: a bumpy surface without folds), a random pose (object inside the
    image), a smooth random texture, and the photograph rendered with :func:`render_textured` (float64)."""
    gen = torch.Generator().manual_seed(seed)
    weights = torch.tensor([normal, tangent, tangent], dtype=torch.float64).view(1, 3, 1, 1)
    displacement = smooth_field(gen, 3, 4, 32) * weights
    vertices = TEMPLATE.vertex_positions(displacement, symmetric=True)
    q = F.normalize(torch.randn(1, 4, generator=gen, dtype=torch.float64), dim=-1)
    v_img = transform_vertices(vertices, torch.tensor([[0.62]], dtype=torch.float64),
                               torch.tensor([[0.04, -0.03]], dtype=torch.float64), q)
    texture = torch.tanh(0.6 * smooth_field(gen, 3, 6, texture_size))
    uv, padded = pad_for_sampling(corner_uvs(), texture, symmetric=True)
    photo, _, _ = render_textured(v_img, TEMPLATE.tensor("faces"), uv, padded, render_size)
    return Scene(v_img, texture, photo)


def texel_uvs(side: int) -> np.ndarray:
    """UV of texel ``(i, j)`` of a UV map of side ``side`` written by inverse rendering (the
    renderer's pixel centres in UV space): ``u = (j + 1/2)/side``, ``v = 1 - (i + 1/2)/side``;
    ``(side, side, 2)``."""
    c = (np.arange(side) + 0.5) / side
    return np.stack(np.meshgrid(c, 1 - c, indexing="xy"), -1)


def lookup_uvs(side: int) -> np.ndarray:
    """UV of texel ``(i, j)`` of a texture of side ``side`` as the shader reads it (circular
    padding in u: column ``side·u - 1/2``; align_corners in v: row ``(1 - v)(side - 1)``)."""
    u = (np.arange(side) + 0.5) / side
    v = 1 - np.arange(side) / (side - 1)
    return np.stack(np.meshgrid(u, v, indexing="xy"), -1)


def resample_true_texture(texture: torch.Tensor, side: int) -> torch.Tensor:
    """The true texture read at each UV texel centre (:func:`texel_uvs`) through the renderer's own
    lookup (``pad_for_sampling`` + bilinear ``grid_sample``): ``(1, 3, side, side)``."""
    uv = torch.from_numpy(texel_uvs(side)).to(texture.dtype)
    uv, padded = pad_for_sampling(uv, texture, symmetric=True)
    return sample_texture(padded, uv.permute(2, 0, 1).unsqueeze(0), torch.ones(1, 1, side, side, dtype=texture.dtype))


def _barycentric(tri: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Barycentric weights ``(..., 3)`` of points ``p (..., 2)`` in triangles ``tri (..., 3, 2)``."""
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    det = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (c[..., 0] - a[..., 0]) * (b[..., 1] - a[..., 1])
    det = np.where(det == 0, np.inf, det)
    w1 = ((p[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (c[..., 0] - a[..., 0]) * (p[..., 1] - a[..., 1])) / det
    w2 = ((b[..., 0] - a[..., 0]) * (p[..., 1] - a[..., 1]) - (p[..., 0] - a[..., 0]) * (b[..., 1] - a[..., 1])) / det
    return np.stack([1 - w1 - w2, w1, w2], -1)


def _locate(points: np.ndarray, tri: np.ndarray):
    """Every (point, triangle) pair with the 2D point inside the triangle: ``(point (m,), triangle
    (m,), weights (m, 3))`` for points ``(n, 2)`` and triangles ``(F, 3, 2)``; the candidates of a
    triangle are the points in its box (points sorted by x)."""
    order = np.argsort(points[:, 0], kind="stable")
    xs = points[order, 0]
    lo, hi = tri.min(1) - 1e-9, tri.max(1) + 1e-9
    pairs_p, pairs_f = [], []
    for f in range(len(tri)):
        cand = order[np.searchsorted(xs, lo[f, 0], "left"):np.searchsorted(xs, hi[f, 0], "right")]
        cand = cand[(points[cand, 1] >= lo[f, 1]) & (points[cand, 1] <= hi[f, 1])]
        pairs_p.append(cand)
        pairs_f.append(np.full(len(cand), f))
    p, f = np.concatenate(pairs_p), np.concatenate(pairs_f)
    w = _barycentric(tri[f], points[p])
    inside = (w >= -1e-9).all(-1)
    return p[inside], f[inside], w[inside]


def _uv_lookup(points_uv: np.ndarray):
    """``(covered (n,), face (n,), weights (n, 3))`` of UV points ``(n, 2)``: the first UV triangle
    (by index) that holds each point and its barycentric weights there."""
    p, f, w = _locate(points_uv, TEMPLATE.uvs.astype(np.float64)[TEMPLATE.face_uvs])
    order = np.lexsort((f, p))[::-1]                    # the last write per point is its lowest face
    face = np.zeros(len(points_uv), dtype=np.int64)
    weights = np.zeros((len(points_uv), 3))
    face[p[order]], weights[p[order]] = f[order], w[order]
    covered = np.zeros(len(points_uv), dtype=bool)
    covered[p] = True
    return covered, face, weights


def uv_covered(points_uv: np.ndarray) -> np.ndarray:
    """bool ``(N,)``: which UV points ``(N, 2)`` lie in a UV triangle of the template."""
    return _uv_lookup(points_uv)[0]


def zbuffer_visibility(v_img: np.ndarray, points_uv: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Independent visibility of UV points ``(N, 2)`` on the mesh ``v_img (V, 3)`` → bool ``(N,)``.

    Each point's surface point is found by a barycentric lookup in UV space (the UV triangle that
    holds it; none: not visible), mapped to image space; it is visible when its face is front-facing
    (screen normal z > 0), it lies inside the image, and no front face covering its screen position is
    nearer (larger z by more than ``eps``): an exact depth test against every face the renderer
    draws (DIB-R culls back faces, so they hide nothing).
    """
    tri = v_img[TEMPLATE.faces]                                             # (F, 3, 3)
    e1, e2 = tri[:, 1, :2] - tri[:, 0, :2], tri[:, 2, :2] - tri[:, 0, :2]
    front = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] > 0
    has, face, wf = _uv_lookup(points_uv)
    xyz = np.einsum("nk,nkd->nd", wf, tri[face])
    fronts = np.flatnonzero(front)
    p, f, ws = _locate(xyz[:, :2], tri[fronts, :, :2])
    depth = np.einsum("mk,mk->m", ws, tri[fronts[f], :, 2])
    occluded = np.zeros(len(points_uv), dtype=bool)
    occluded[p[depth > xyz[p, 2] + eps]] = True
    in_image = (np.abs(xyz[:, :2]) < 1).all(1)
    return has & front[face] & ~occluded & in_image


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor, peak: float = 2.0) -> float:
    """PSNR (dB) of ``a`` against ``b`` over the texels ``where`` (``(1, 1, R, R)`` bool), values in
    [-1, 1] (peak-to-peak 2)."""
    err = ((a - b) ** 2).mean(1, keepdim=True)[where]
    return float(10 * torch.log10(peak ** 2 / err.mean()))
