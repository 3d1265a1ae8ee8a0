"""Differentiable textured-mesh renderer with DIB-R's semantics (pure torch; CPU or CUDA; batched).

This is the renderer of the textured-mesh pipeline (convmesh / DIB-R): an orthographic rasteriser
whose hard pass interpolates per-corner attributes (UVs) and whose soft pass gives a silhouette
alpha with gradients at the boundary. Conventions, stated once here:

- **Camera:** orthographic. A vertex's ``(x, y)`` are NDC, ``[-1, 1]`` spans the image, x right,
  y up; ``z`` is depth and the **larger** z is nearer (the depth test keeps the larger z; equal z:
  the lower face index).
- **Pixels:** pixel ``(row i, col j)`` of an ``H × W`` image is centred at
  ``x = (2j + 1 - W) / W``, ``y = (H - 2i - 1) / H`` (row 0 at the top).
- **Winding and culling:** face ``(a, b, c)`` faces the viewer when the z of its normal
  ``(b - a) × (c - a)`` is ≥ 0, i.e. it runs counter-clockwise on screen (x right, y up). Faces with
  normal z < 0 are culled from the hard pass (not from the soft alpha); zero-area faces cover nothing.
- **Coverage:** a pixel centre is covered by a front face when it lies in the face's screen bounding
  box (``xmin ≤ x < xmax``, ``ymin ≤ y < ymax``) and all three barycentric weights are ≥ 0.
- **Interpolation:** per-corner attributes are interpolated **affinely** with the screen
  barycentrics (no perspective correction); uncovered pixels get 0. The hard mask is 1 on covered
  pixels, 0 elsewhere.
- **Shader** (:func:`sample_texture`): ``grid_sample(texture, (2u - 1, 1 - 2v), bilinear,
  align_corners=True) × mask``: ``u`` runs left → right, ``v`` bottom → top of the texture image,
  ``(0, 0)`` and ``(1, 1)`` are the centres of the bottom-left and top-right texels; background 0.
- **Soft alpha** (:func:`soft_alpha`): covered pixels get 1. Every other pixel takes the first
  ``max_faces`` (30) faces, by index, back faces included, whose screen bounding box expanded by
  ``expand`` (0.02 NDC) contains it, and ``A = 1 - Π_f (1 - exp(-sigma_inv · d²_f))`` with
  ``sigma_inv = 7000`` and ``d²_f`` the squared distance to the face's boundary: the minimum over its
  3 edges (the perpendicular distance, when the foot lies on the segment) and its 3 corners.
- **Gradients** reach the vertices' ``x, y`` (through the barycentrics and the soft alpha), the
  attributes / UVs and the texture; **none** reach depth ``z`` (it only decides visibility).

**Memory and speed.** Screen-space bounding boxes select the (pixel, face) candidate pairs; they are
enumerated in dense chunks of at most ``max_fragments`` elements (default 2²⁰; about 30 bytes of
temporaries each in float32, so ~30 MB per chunk) with no autograd. Autograd then sees only the
winners: one face per covered pixel (``≤ B·H·W`` rows of ``3·C`` attributes) and at most
``max_faces`` faces per uncovered pixel for the soft alpha (``≤ max_faces·B·H·W`` pairs, far fewer
in practice: only pixels near a face's box have any); the candidate list is truncated to
``max_faces`` per pixel whenever it outgrows ``max_fragments``, so it never holds more than
``max_faces·B·H·W + 2·max_fragments`` pairs. Beyond the chunks, memory grows with the output: about
300 bytes per pixel of ``B·H·W`` for forward + backward of the 960-face template. Measured figures:
``docs/textured.md`` (benchmark ``benchmarks/bench_textured_render.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from lmnet.quaternions import qrot
from lmnet.render.zbuffer import ZBuffer, iter_fragments

__all__ = ["SIGMA_INV", "BBOX_EXPAND", "MAX_SOFT_FACES", "MAX_FRAGMENTS", "Rasterized", "face_corners",
           "rasterize", "soft_alpha", "sample_texture", "render_textured", "render_uv_space",
           "transform_vertices"]

#: inverse sharpness of the soft silhouette, in 1 / NDC² (DIB-R's ``delta``)
SIGMA_INV = 7000.0
#: how far (NDC) a face's screen bounding box is grown to pick soft-alpha candidates
BBOX_EXPAND = 0.02
#: at most this many faces (the first by index) shape an uncovered pixel's soft alpha
MAX_SOFT_FACES = 30
#: largest dense (pixel, face) candidate chunk evaluated at once (memory bound)
MAX_FRAGMENTS = 1 << 20
_INDEX_SLACK = 1e-4  # pixel-index slack of the candidate boxes (the exact box test follows)


class Rasterized(NamedTuple):
    """What :func:`rasterize` returns."""

    values: torch.Tensor      # (B, C, H, W) interpolated attributes, 0 where uncovered
    mask: torch.Tensor        # (B, 1, H, W) hard mask, 1 covered / 0 not (vertices' dtype, no gradient)
    face_index: torch.Tensor  # (B, H, W) long, the visible face, -1 where uncovered


# ----------------------------------------------------------------------------- checks
def _image_size(size) -> tuple[int, int]:
    """``size`` (an int, or ``(H, W)``) → ``(H, W)``; ValueError unless both are positive ints."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or not all(isinstance(s, int) and s > 0 for s in hw):
        raise ValueError(f"size must be a positive int or (H, W) of positive ints, got {size!r}")
    return hw


def _check_mesh(vertices: torch.Tensor, faces: torch.Tensor) -> None:
    """ValueError unless ``vertices`` is float ``(B, V, 3)`` and ``faces`` integer ``(F, 3)`` in range."""
    if vertices.dim() != 3 or vertices.shape[-1] != 3 or not vertices.is_floating_point():
        raise ValueError(f"vertices must be a float (B, V, 3) tensor, got {vertices.dtype} {tuple(vertices.shape)}")
    if faces.dim() != 2 or faces.shape[-1] != 3 or faces.is_floating_point() or faces.dtype == torch.bool:
        raise ValueError(f"faces must be an integer (F, 3) tensor, got {faces.dtype} {tuple(faces.shape)}")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= vertices.shape[1]):
        raise ValueError(f"faces index vertices 0..{vertices.shape[1] - 1}, got values in "
                         f"[{int(faces.min())}, {int(faces.max())}]")


def _batch_or_one(batch: int) -> str:
    """How an error message names a batch dimension that may also be 1."""
    return "1" if batch == 1 else f"{batch} or 1"


def _check_per_corner(name: str, t: torch.Tensor, batch: int, n_faces: int, channels: int | None) -> None:
    """ValueError unless ``t`` is ``(batch or 1, n_faces, 3, channels)`` (any ``channels`` if None)."""
    ok = (t.dim() == 4 and t.shape[0] in (1, batch) and t.shape[1] == n_faces and t.shape[2] == 3
          and (channels is None or t.shape[3] == channels))
    if not ok:
        c = "C" if channels is None else channels
        raise ValueError(f"{name} must be ({_batch_or_one(batch)}, {n_faces}, 3, {c}), got {tuple(t.shape)}")


def face_corners(values: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Per-vertex ``values (B, V, D)`` → per-corner ``(B, F, 3, D)`` through ``faces (F, 3)``."""
    return values[:, faces.long()]


# ----------------------------------------------------------------------------- candidate boxes
def _pixel_x(col: torch.Tensor, width: int, dtype) -> torch.Tensor:
    """NDC x of pixel columns ``col`` (long): ``(2j + 1 - W) / W``."""
    return (2 * col + 1 - width).to(dtype) / width


def _pixel_y(row: torch.Tensor, height: int, dtype) -> torch.Tensor:
    """NDC y of pixel rows ``row`` (long): ``(H - 2i - 1) / H``."""
    return (height - 2 * row - 1).to(dtype) / height


def _pixel_boxes(lo: torch.Tensor, hi: torch.Tensor, height: int, width: int):
    """Pixel boxes holding the centres inside NDC boxes ``[lo, hi]`` (each ``(..., 2)``, x and y).

    Returns:
        ``(col0, row0, w, h, nonempty)``: long first column / row and box size (``(...)``, clamped
        to the image; a little slack, the caller applies the exact test) and bool ``nonempty``.
    """
    col_lo = torch.ceil((lo[..., 0] * width + width - 1) / 2 - _INDEX_SLACK)
    col_hi = torch.floor((hi[..., 0] * width + width - 1) / 2 + _INDEX_SLACK)
    row_lo = torch.ceil((height - 1 - hi[..., 1] * height) / 2 - _INDEX_SLACK)
    row_hi = torch.floor((height - 1 - lo[..., 1] * height) / 2 + _INDEX_SLACK)
    col0, col1 = col_lo.clamp(min=0), col_hi.clamp(max=width - 1)
    row0, row1 = row_lo.clamp(min=0), row_hi.clamp(max=height - 1)
    nonempty = (col1 >= col0) & (row1 >= row0)
    col0 = torch.where(nonempty, col0, torch.zeros_like(col0)).long()
    row0 = torch.where(nonempty, row0, torch.zeros_like(row0)).long()
    w = torch.where(nonempty, col1 - col0 + 1, torch.ones_like(col1)).long()
    h = torch.where(nonempty, row1 - row0 + 1, torch.ones_like(row1)).long()
    return col0, row0, w, h, nonempty


class _Boxes(NamedTuple):
    """``M`` selected ``(batch item, face)`` primitives and their candidate pixel boxes."""

    b: torch.Tensor     # (M,) long batch index
    f: torch.Tensor     # (M,) long face index
    col0: torch.Tensor  # (M,) long
    row0: torch.Tensor  # (M,) long
    w: torch.Tensor     # (M,) long
    h: torch.Tensor     # (M,) long
    lo: torch.Tensor    # (M, 2) the NDC box the centres must lie in: lo ≤ (x, y) < hi
    hi: torch.Tensor    # (M, 2)


def _select_boxes(lo: torch.Tensor, hi: torch.Tensor, keep: torch.Tensor, height: int, width: int) -> _Boxes:
    """The primitives ``keep (B, F)`` with NDC boxes ``lo, hi (B, F, 2)`` that reach a pixel."""
    col0, row0, w, h, nonempty = _pixel_boxes(lo, hi, height, width)
    b, f = torch.nonzero(keep & nonempty, as_tuple=True)
    return _Boxes(b, f, col0[b, f], row0[b, f], w[b, f], h[b, f], lo[b, f], hi[b, f])


def _chunk_pixels(boxes: _Boxes, idx, dx, dy, height: int, width: int, dtype):
    """The pixel centres of one :func:`iter_fragments` chunk and the exact (half-open) box test.

    Returns:
        ``(x (m, 1, bw), y (m, bh, 1), inside (m, bh, bw) bool)``.
    """
    x = _pixel_x(boxes.col0[idx].view(-1, 1, 1) + dx, width, dtype)
    y = _pixel_y(boxes.row0[idx].view(-1, 1, 1) + dy, height, dtype)
    lo, hi = boxes.lo[idx], boxes.hi[idx]
    in_x = (x >= lo[:, 0].view(-1, 1, 1)) & (x < hi[:, 0].view(-1, 1, 1))
    in_y = (y >= lo[:, 1].view(-1, 1, 1)) & (y < hi[:, 1].view(-1, 1, 1))
    return x, y, in_x & in_y


def _sample_index(boxes: _Boxes, m, dx, dy, height: int, width: int) -> torch.Tensor:
    """Flat pixel index ``(b·H + i)·W + j`` of the fragments at box offsets ``dx, dy`` of primitives
    ``m`` (long tensors broadcasting together) → long, their broadcast shape."""
    return (boxes.b[m] * height + boxes.row0[m] + dy) * width + boxes.col0[m] + dx


# ----------------------------------------------------------------------------- hard pass
def _barycentric_planes(xy: torch.Tensor) -> torch.Tensor:
    """Screen triangles ``xy (..., 3, 2)`` → ``(..., 2, 3)``: weights ``w1, w2`` of corners 1 and 2 as
    planes ``w = p0·x + p1·y + p2`` (``w0 = 1 - w1 - w2``), DIB-R's ``k1/k3`` and ``k2/k3``."""
    ax, ay = xy[..., 0, 0], xy[..., 0, 1]
    m, p = xy[..., 1, 0] - ax, xy[..., 1, 1] - ay
    n, q = xy[..., 2, 0] - ax, xy[..., 2, 1] - ay
    k3 = m * q - n * p
    w1 = torch.stack([q, -n, n * ay - q * ax], -1) / k3.unsqueeze(-1)
    w2 = torch.stack([-p, m, p * ax - m * ay], -1) / k3.unsqueeze(-1)
    return torch.stack([w1, w2], -2)


def _visible_faces(xy: torch.Tensor, z: torch.Tensor, height: int, width: int, cull_backfaces: bool,
                   max_fragments: int) -> torch.Tensor:
    """Hard pass (no autograd): the nearest (largest z) covering face of every pixel.

    Args:
        xy: ``(B, F, 3, 2)`` screen corners; ``z``: ``(B, F, 3)`` their depths.
    Returns:
        long ``(B·H·W,)``: face index per pixel, -1 where no face covers it.
    """
    B, n_faces = xy.shape[:2]
    area = ((xy[..., 1, 0] - xy[..., 0, 0]) * (xy[..., 2, 1] - xy[..., 0, 1])
            - (xy[..., 2, 0] - xy[..., 0, 0]) * (xy[..., 1, 1] - xy[..., 0, 1]))  # normal z
    keep = (area > 0 if cull_backfaces else area != 0) & torch.isfinite(xy).all(-1).all(-1)
    keep &= torch.isfinite(z).all(-1)
    boxes = _select_boxes(xy.amin(-2), xy.amax(-2), keep, height, width)
    index = torch.full((B * height * width,), -1, dtype=torch.long, device=xy.device)
    if boxes.b.numel() == 0:
        return index
    planes = _barycentric_planes(xy[boxes.b, boxes.f])                      # (M, 2, 3)
    zc = z[boxes.b, boxes.f]                                                 # (M, 3)
    zbuf = ZBuffer(B * height * width, B * n_faces, (-float(zc.max()), -float(zc.min())), device=xy.device)
    for idx, dx, dy, valid in iter_fragments(boxes.col0, boxes.row0, boxes.w, boxes.h, max_fragments):
        x, y, inside = _chunk_pixels(boxes, idx, dx, dy, height, width, xy.dtype)
        pl = planes[idx].view(-1, 2, 3, 1, 1)
        w1 = pl[:, 0, 0] * x + pl[:, 0, 1] * y + pl[:, 0, 2]
        w2 = pl[:, 1, 0] * x + pl[:, 1, 1] * y + pl[:, 1, 2]
        inside &= valid & (w1 >= 0) & (w2 >= 0) & (1 - w1 - w2 >= 0)
        m_loc, dy_loc, dx_loc = torch.nonzero(inside, as_tuple=True)
        if m_loc.numel() == 0:
            continue
        m = idx[m_loc]
        a1, a2 = w1[m_loc, dy_loc, dx_loc], w2[m_loc, dy_loc, dx_loc]
        depth = zc[m, 0] + a1 * (zc[m, 1] - zc[m, 0]) + a2 * (zc[m, 2] - zc[m, 0])
        sample = _sample_index(boxes, m, dx_loc, dy_loc, height, width)
        zbuf.add(sample, -depth, boxes.b[m] * n_faces + boxes.f[m])       # larger z wins
    sample, prim = zbuf.winners()
    index[sample] = prim % n_faces
    return index


def _pixel_centres(sample: torch.Tensor, height: int, width: int, dtype):
    """Flat pixel indices ``(n,)`` → ``(batch item (n,), x (n,), y (n,))``."""
    rem = sample % (height * width)
    return sample // (height * width), _pixel_x(rem % width, width, dtype), _pixel_y(rem // width, height, dtype)


def _interpolate(xy: torch.Tensor, attributes: torch.Tensor, index: torch.Tensor, height: int, width: int):
    """Affine barycentric interpolation (with autograd) at the covered pixels.

    Args:
        xy: ``(B, F, 3, 2)`` screen corners; attributes: ``(B or 1, F, 3, C)``; index: ``(B·H·W,)``.
    Returns:
        ``(B, C, H, W)``, 0 where ``index`` is -1.
    """
    B, C = xy.shape[0], attributes.shape[-1]
    (sample,) = torch.nonzero(index >= 0, as_tuple=True)
    b, x, y = _pixel_centres(sample, height, width, xy.dtype)
    f = index[sample]
    planes = _barycentric_planes(xy[b, f])                                   # (c, 2, 3)
    w12 = planes[..., 0] * x.unsqueeze(-1) + planes[..., 1] * y.unsqueeze(-1) + planes[..., 2]
    weights = torch.cat([1 - w12.sum(-1, keepdim=True), w12], -1)            # (c, 3)
    attr = attributes[b if attributes.shape[0] == B else torch.zeros_like(b), f]  # (c, 3, C)
    vals = (weights.unsqueeze(-1).to(attr.dtype) * attr).sum(1)
    out = torch.zeros(B * height * width, C, dtype=vals.dtype, device=vals.device).index_put((sample,), vals)
    return out.view(B, height, width, C).permute(0, 3, 1, 2)


def rasterize(vertices: torch.Tensor, faces: torch.Tensor, attributes: torch.Tensor, size, *,
              cull_backfaces: bool = True, max_fragments: int = MAX_FRAGMENTS) -> Rasterized:
    """Hard pass: per-pixel visible face and its affinely interpolated attributes (module docstring).

    Args:
        vertices: ``(B, V, 3)`` float, ``x, y`` in NDC, ``z`` depth (larger is nearer).
        faces: ``(F, 3)`` integer vertex indices, counter-clockwise on screen = front.
        attributes: ``(B or 1, F, 3, C)`` per-corner values, in the dtype to interpolate in.
        size: ``H = W`` (int) or ``(H, W)``.
        cull_backfaces: drop faces with normal z < 0 (DIB-R); False keeps both sides.
        max_fragments: memory bound of the candidate chunks (module docstring).
    Returns:
        :class:`Rasterized`: values ``(B, C, H, W)`` (gradients to the vertices' x, y and the
        attributes), mask ``(B, 1, H, W)``, face_index ``(B, H, W)``.
    """
    _check_mesh(vertices, faces)
    height, width = _image_size(size)
    B = vertices.shape[0]
    _check_per_corner("attributes", attributes, B, faces.shape[0], None)
    xy = face_corners(vertices[..., :2], faces)
    with torch.no_grad():
        index = _visible_faces(xy.detach(), face_corners(vertices[..., 2:], faces).detach().squeeze(-1),
                               height, width, cull_backfaces, max_fragments)
    values = _interpolate(xy, attributes, index, height, width)
    mask = (index >= 0).to(vertices.dtype).view(B, 1, height, width)
    return Rasterized(values, mask, index.view(B, height, width))


# ----------------------------------------------------------------------------- soft alpha
def _first_per_pixel(sample: torch.Tensor, face: torch.Tensor, n_faces: int, max_faces: int):
    """Keep, for every pixel, its ``max_faces`` lowest face indices → ``(sample, face, rank)``,
    sorted by pixel then face (``rank``: 0-based position within the pixel)."""
    key, _ = torch.sort(sample * n_faces + face)
    sample, face = key // n_faces, key % n_faces
    _, counts = torch.unique_consecutive(sample, return_counts=True)
    starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    rank = torch.arange(key.numel(), device=key.device) - starts
    keep = rank < max_faces
    return sample[keep], face[keep], rank[keep]


def _soft_candidates(xy: torch.Tensor, covered: torch.Tensor, height: int, width: int, expand: float,
                     max_faces: int, max_fragments: int):
    """No autograd: for every uncovered pixel, the first ``max_faces`` faces (any facing) whose box,
    grown by ``expand``, holds its centre → long ``(sample (n,), face (n,), rank (n,))``."""
    n_faces = xy.shape[1]
    keep = torch.isfinite(xy).all(-1).all(-1)
    boxes = _select_boxes(xy.amin(-2) - expand, xy.amax(-2) + expand, keep, height, width)
    empty = torch.zeros(0, dtype=torch.long, device=xy.device)
    samples, faces, held = [empty], [empty], 0
    for idx, dx, dy, valid in iter_fragments(boxes.col0, boxes.row0, boxes.w, boxes.h, max_fragments):
        _, _, inside = _chunk_pixels(boxes, idx, dx, dy, height, width, xy.dtype)
        sample = _sample_index(boxes, idx.view(-1, 1, 1), dx, dy, height, width)
        inside &= valid & ~covered[sample.clamp(max=covered.numel() - 1)]
        m_loc, dy_loc, dx_loc = torch.nonzero(inside, as_tuple=True)
        samples.append(sample[m_loc, dy_loc, dx_loc])
        faces.append(boxes.f[idx[m_loc]])
        held += m_loc.numel()
        if held > max_fragments:  # bound the list: keep the first max_faces per pixel so far
            s, f, _ = _first_per_pixel(torch.cat(samples), torch.cat(faces), n_faces, max_faces)
            samples, faces, held = [s], [f], s.numel()
    return _first_per_pixel(torch.cat(samples), torch.cat(faces), n_faces, max_faces)


def _boundary_distance2(corners: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared distance ``(n,)`` from points ``(x, y)`` (each ``(n,)``) to the boundary of triangles
    ``corners (n, 3, 2)``: the minimum over the edges ``i → i+1`` (perpendicular distance, used only
    when the foot lies on the segment) and the 3 corners. Differentiable in ``corners``."""
    p = torch.stack([x, y], -1).unsqueeze(1)                                 # (n, 1, 2)
    edge = corners.roll(-1, dims=1) - corners                                # (n, 3, 2)
    rel = p - corners
    len2 = (edge * edge).sum(-1)
    safe = torch.where(len2 > 0, len2, torch.ones_like(len2))
    cross = edge[..., 0] * rel[..., 1] - edge[..., 1] * rel[..., 0]
    foot = (rel * edge).sum(-1).detach() / safe.detach()
    on_segment = (len2.detach() > 0) & (foot >= 0) & (foot <= 1)
    perp = torch.where(on_segment, cross * cross / safe, torch.full_like(len2, float("inf")))
    corner = (rel * rel).sum(-1)
    return torch.cat([perp, corner], -1).min(-1).values


def soft_alpha(vertices: torch.Tensor, faces: torch.Tensor, mask: torch.Tensor, *, sigma_inv: float = SIGMA_INV,
               expand: float = BBOX_EXPAND, max_faces: int = MAX_SOFT_FACES,
               max_fragments: int = MAX_FRAGMENTS) -> torch.Tensor:
    """DIB-R's soft silhouette (module docstring): 1 on ``mask``, ``1 - Π(1 - exp(-sigma_inv d²))``
    over the first ``max_faces`` faces whose box grown by ``expand`` holds an uncovered pixel.

    Args:
        vertices: ``(B, V, 3)``; only ``x, y`` are used (and differentiated).
        faces: ``(F, 3)``.
        mask: ``(B, 1, H, W)`` hard mask from :func:`rasterize` (> 0.5 = covered).
    Returns:
        ``(B, 1, H, W)`` in the vertices' dtype; gradients reach the vertices' x, y.
    """
    _check_mesh(vertices, faces)
    B = vertices.shape[0]
    if mask.dim() != 4 or mask.shape[:2] != (B, 1):
        raise ValueError(f"mask must be ({B}, 1, H, W), got {tuple(mask.shape)}")
    height, width = mask.shape[2:]
    xy = face_corners(vertices[..., :2], faces)
    covered = (mask > 0.5).reshape(-1)
    with torch.no_grad():
        sample, face, rank = _soft_candidates(xy.detach(), covered, height, width, float(expand),
                                              int(max_faces), max_fragments)
    b, x, y = _pixel_centres(sample, height, width, xy.dtype)
    prob = torch.exp(-sigma_inv * _boundary_distance2(xy[b, face], x, y))
    pixels, row = torch.unique_consecutive(sample, return_inverse=True)
    table = torch.zeros(pixels.numel(), max(int(max_faces), 1), dtype=prob.dtype, device=prob.device)
    table = table.index_put((row, rank), prob)
    alpha = covered.to(xy.dtype).index_put((pixels,), 1 - torch.prod(1 - table, dim=1))
    return alpha.view(B, 1, height, width)


# ----------------------------------------------------------------------------- shading
def sample_texture(texture: torch.Tensor, uv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """DIB-R's texture shader: bilinear ``grid_sample`` at ``(2u - 1, 1 - 2v)``, align_corners=True,
    times ``mask`` (module docstring for the UV convention).

    Args:
        texture: ``(B or 1, C, Ht, Wt)``.
        uv: ``(B, 2, H, W)`` per-pixel texture coordinates (e.g. :attr:`Rasterized.values`).
        mask: ``(B, 1, H, W)``.
    Returns:
        ``(B, C, H, W)``; gradients reach the texture and ``uv``.
    """
    if uv.dim() != 4 or uv.shape[1] != 2:
        raise ValueError(f"uv must be (B, 2, H, W), got {tuple(uv.shape)}")
    B = uv.shape[0]
    if texture.dim() != 4 or texture.shape[0] not in (1, B):
        raise ValueError(f"texture must be ({_batch_or_one(B)}, C, Ht, Wt), got {tuple(texture.shape)}")
    if mask.shape != (B, 1) + tuple(uv.shape[2:]):
        raise ValueError(f"mask must be {(B, 1) + tuple(uv.shape[2:])}, got {tuple(mask.shape)}")
    grid = torch.stack([uv[:, 0] * 2 - 1, 1 - uv[:, 1] * 2], -1).to(texture.dtype)  # (B, H, W, 2)
    color = F.grid_sample(texture.expand(B, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros",
                          align_corners=True)
    return color * mask.to(color.dtype)


def render_textured(vertices: torch.Tensor, faces: torch.Tensor, face_uvs: torch.Tensor, texture: torch.Tensor,
                    size, *, sigma_inv: float = SIGMA_INV, expand: float = BBOX_EXPAND,
                    max_faces: int = MAX_SOFT_FACES, max_fragments: int = MAX_FRAGMENTS):
    """Render textured meshes as convmesh does with DIB-R (module docstring).

    Args:
        vertices: ``(B, V, 3)`` in image space (e.g. from :func:`transform_vertices`).
        faces: ``(F, 3)``.
        face_uvs: ``(B or 1, F, 3, 2)`` per-corner texture coordinates.
        texture: ``(B or 1, 3, Ht, Wt)``.
        size: ``H = W`` or ``(H, W)``.
    Returns:
        ``(rgb (B, 3, H, W), alpha (B, 1, H, W), mask (B, 1, H, W))``: the shaded image (0 on the
        background), the soft alpha and the hard mask.
    """
    _check_per_corner("face_uvs", face_uvs, vertices.shape[0], faces.shape[0], 2)
    hard = rasterize(vertices, faces, face_uvs, size, max_fragments=max_fragments)
    rgb = sample_texture(texture, hard.values, hard.mask)
    alpha = soft_alpha(vertices, faces, hard.mask, sigma_inv=sigma_inv, expand=expand, max_faces=max_faces,
                       max_fragments=max_fragments)
    return rgb, alpha, hard.mask


def render_uv_space(uvs: torch.Tensor, uv_faces: torch.Tensor, corner_xy: torch.Tensor, image: torch.Tensor,
                    size, *, pixel_centres: bool = False, max_fragments: int = MAX_FRAGMENTS):
    """Inverse rendering into UV space (convmesh's pseudo-ground-truth): each texel takes the colour of
    the image at the screen position of its surface point.

    The template is rasterised with positions ``UV·2 - 1`` (z = 0) through ``uv_faces`` and, as
    attributes, each corner's screen position ``(xy + 1) / 2``; :func:`sample_texture` then samples
    ``image`` there. UV triangles do not overlap, so no face is culled (DIB-R culls; with the
    counter-clockwise UV layout of the templates nothing is lost).

    With ``pixel_centres=False`` (the original) ``image`` is sampled with align_corners=True, so NDC
    ``x`` reads image column ``(x + 1)(W - 1) / 2`` while this renderer's pixel ``j`` is centred at
    column ``(x W + W - 1) / 2``: up to half a pixel apart at the borders. ``pixel_centres=True``
    scales the attributes by ``W / (W - 1)`` (``H / (H - 1)`` for y) so each texel reads exactly the
    pixel the forward render drew there.

    Args:
        uvs: ``(B or 1, T, 2)`` texture coordinates in [0, 1] (v up), the positions in UV space.
        uv_faces: ``(F, 3)`` indices into ``uvs``.
        corner_xy: ``(B, F, 3, 2)`` NDC screen position of every face corner (e.g.
            ``face_corners(v_img[..., :2], faces)`` with the mesh's vertex faces).
        image: ``(B, C, Hi, Wi)`` the photographs to project.
        size: UV texture side ``R`` or ``(R_h, R_w)``.
    Returns:
        ``(texture (B, C, R, R), alpha (B, 1, R, R))``: the image in UV space and its hard mask.
    """
    B = corner_xy.shape[0]
    if uvs.dim() != 3 or uvs.shape[0] not in (1, B) or uvs.shape[-1] != 2:
        raise ValueError(f"uvs must be ({_batch_or_one(B)}, T, 2), got {tuple(uvs.shape)}")
    _check_per_corner("corner_xy", corner_xy, B, uv_faces.shape[0], 2)
    if image.dim() != 4 or image.shape[0] != B:
        raise ValueError(f"image must be ({B}, C, Hi, Wi), got {tuple(image.shape)}")
    positions = torch.cat([uvs * 2 - 1, torch.zeros_like(uvs[..., :1])], -1).expand(B, -1, -1)
    if pixel_centres:
        hi, wi = image.shape[2:]
        corner_xy = corner_xy * corner_xy.new_tensor([wi / max(wi - 1, 1), hi / max(hi - 1, 1)])
    hard = rasterize(positions, uv_faces, (corner_xy + 1) / 2, size, cull_backfaces=False,
                     max_fragments=max_fragments)
    return sample_texture(image, hard.values, hard.mask), hard.mask


# ----------------------------------------------------------------------------- pose
def transform_vertices(vertices: torch.Tensor, scale: torch.Tensor, translation: torch.Tensor,
                       rotation: torch.Tensor, z0=None) -> torch.Tensor:
    """Object-space vertices → image space (NDC x, y; z larger = nearer), convmesh's pose transform.

    ``v_img = (qrot(q, s·v) + t) · (1, -1, -1)`` with ``t = (tx, ty, 0)`` (or ``(tx, ty, tz)`` when
    three values are given), then, with ``z0``, the pseudo-perspective ``xy ← xy·(z0 + z/2)/(z0 - z/2)``.

    Args:
        vertices: ``(B, V, 3)``.
        scale: ``(B, 1)``.
        translation: ``(B, 2)`` or ``(B, 3)`` (NDC).
        rotation: ``(B, 4)`` unit quaternions (w, x, y, z), :mod:`lmnet.quaternions`.
        z0: None, a number or ``(B, 1)``: the camera distance of the pseudo-perspective.
    Returns:
        ``(B, V, 3)``.
    """
    if vertices.dim() != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be (B, V, 3), got {tuple(vertices.shape)}")
    B = vertices.shape[0]
    if scale.shape != (B, 1):
        raise ValueError(f"scale must be ({B}, 1), got {tuple(scale.shape)}")
    if translation.dim() != 2 or translation.shape[0] != B or translation.shape[1] not in (2, 3):
        raise ValueError(f"translation must be ({B}, 2) or ({B}, 3), got {tuple(translation.shape)}")
    if rotation.shape != (B, 4):
        raise ValueError(f"rotation must be ({B}, 4) quaternions (w, x, y, z), got {tuple(rotation.shape)}")
    t = F.pad(translation, (0, 3 - translation.shape[1]))
    v = qrot(rotation.unsqueeze(1), scale.unsqueeze(-1) * vertices) + t.unsqueeze(1)
    v = v * v.new_tensor([1.0, -1.0, -1.0])
    if z0 is None:
        return v
    z0 = torch.as_tensor(z0, dtype=v.dtype, device=v.device)
    if z0.dim() == 2:
        if z0.shape != (B, 1):
            raise ValueError(f"z0 must be a number or ({B}, 1), got {tuple(z0.shape)}")
        z0 = z0.unsqueeze(-1)
    z = v[..., 2:]
    return torch.cat([v[..., :2] * (z0 + z / 2) / (z0 - z / 2), z], -1)
