"""Vectorised torch z-buffer rasteriser: triangle meshes and shaded sphere splats.

Both renderers are batched over cameras, device-agnostic (CPU or CUDA: everything follows the
device of the input geometry) and return ``uint8 (B, H, W, 4)`` RGBA images: Lambert-shaded
geometry (key + fill light, :mod:`lmnet.render.shading`) on a **transparent** background
(alpha 0 wherever nothing is drawn). Anti-aliasing: each pixel is rasterised with
``supersample × supersample`` samples at the sub-pixel centres; alpha is the covered fraction and
RGB is the average colour of the covered samples (straight, not premultiplied, alpha).

Conventions (see :mod:`lmnet.render.cameras`): world points in the 3D-LMNet frame, OpenGL camera,
pixel ``(row i, col j)`` centred at ``(u, v) = (j + 0.5, i + 0.5)``. Geometry behind the camera
(depth ≤ ``near``) is dropped (no clipping).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from lmnet import camera as r2n2_camera
from lmnet.colour_files import DEFAULT_MESH_COLOR
from lmnet.render.cameras import Camera
from lmnet.render.shading import DEFAULT_LIGHTS, Lights, lambert
from lmnet.render.zbuffer import ZBuffer, iter_fragments

DEFAULT_POINT_COLOR = (0.55, 0.62, 0.75)
NEAR = 1e-4
_EDGE_EPS = 1e-6  # samples exactly on a shared edge belong to both triangles (no pin-holes)


def _colors(color, n: int, what: str, dtype, device) -> torch.Tensor:
    c = torch.as_tensor(color, dtype=dtype, device=device)
    if c.shape == (3,):
        return c.expand(n, 3)
    if c.shape != (n, 3):
        raise ValueError(f"{what} must be (3,) or ({n}, 3), got {tuple(c.shape)}")
    return c


def _corner_colors(color, n_faces: int, dtype, device) -> torch.Tensor:
    """Per-corner colours ``(F, 3, 3)`` (face, corner, RGB), checked against ``n_faces``."""
    c = torch.as_tensor(color, dtype=dtype, device=device)
    if c.shape != (n_faces, 3, 3):
        raise ValueError(f"per-corner color must be ({n_faces}, 3, 3), got {tuple(c.shape)}")
    return c


def _resolve(sample: torch.Tensor, rgb: torch.Tensor, batch: int, size: int, ss: int) -> torch.Tensor:
    """Average covered samples into pixels → straight-alpha uint8 ``(B, H, W, 4)``.

    Args:
        sample: ``(c,)`` indices of the covered samples in the ``(B, size*ss, size*ss)`` grid.
        rgb: ``(c, 3)`` their colours.
    Alpha is the covered fraction of the ``ss × ss`` samples; RGB the mean over covered samples.
    """
    S = size * ss
    b, rem = sample // (S * S), sample % (S * S)
    pix = (b * size + (rem // S) // ss) * size + (rem % S) // ss
    total = torch.zeros(batch * size * size, 4, dtype=rgb.dtype, device=rgb.device)
    total.index_add_(0, pix, torch.cat([rgb, torch.ones_like(rgb[:, :1])], -1))
    count = total[:, 3:]
    out = torch.cat([total[:, :3] / count.clamp_min(1.0), count / (ss * ss)], -1)
    return (out.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).view(batch, size, size, 4)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted vertex normals ``(V, 3)`` (unit; zero for unused vertices). Vertices shared
    between faces are smoothed, so meshes that duplicate vertices along creases keep sharp edges."""
    tri = vertices[faces]
    fn = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)  # 2·area·n
    vn = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), fn.repeat_interleave(3, dim=0))
    return torch.nn.functional.normalize(vn, dim=-1)


def _blank(n: int, size: int, device) -> torch.Tensor:
    """``n`` fully transparent images, ``uint8 (n, size, size, 4)``."""
    return torch.zeros(n, size, size, 4, dtype=torch.uint8, device=device)


def _project(xc: torch.Tensor, focal_px: torch.Tensor, S: int):
    """Camera-frame points → the ``S × S`` sample grid.

    Args:
        xc: ``(..., 3)`` camera-frame points (OpenGL: the camera looks down -z).
        focal_px: focal length in samples, broadcastable to ``xc[..., 0]``.
    Returns:
        ``(u, v, depth)``, each of shape ``xc.shape[:-1]``: column and row in samples (v down) and
        the depth ``-z``.
    """
    depth = -xc[..., 2]
    u = S / 2.0 + focal_px * xc[..., 0] / depth
    v = S / 2.0 - focal_px * xc[..., 1] / depth
    return u, v, depth


def _sample_boxes(u_lo, u_hi, v_lo, v_hi, S: int):
    """Boxes of the samples whose centres (index + 0.5) lie in ``[u_lo, u_hi] × [v_lo, v_hi]``.

    Args:
        u_lo, u_hi, v_lo, v_hi: ``(...)`` float screen extents, in samples.
    Returns:
        ``(col0, col1, row0, row1, nonempty)``: first / last column and row, clamped to the grid
        ``[0, S - 1]`` (float ``(...)``), and whether the box holds any sample (bool ``(...)``).
    """
    col0 = torch.ceil(u_lo - 0.5).clamp(min=0)
    col1 = torch.floor(u_hi - 0.5).clamp(max=S - 1)
    row0 = torch.ceil(v_lo - 0.5).clamp(min=0)
    row1 = torch.floor(v_hi - 0.5).clamp(max=S - 1)
    return col0, col1, row0, row1, (col1 >= col0) & (row1 >= row0)


def _select_boxes(col0, col1, row0, row1, sel):
    """The boxes of the selected primitives (``sel``: an index, or a tuple of indices, picking
    ``M`` entries of the :func:`_sample_boxes` tensors) → long ``(M,)`` col0, row0, width, height."""
    c0, r0 = col0[sel].long(), row0[sel].long()
    return c0, r0, col1[sel].long() - c0 + 1, row1[sel].long() - r0 + 1


def _nearest_samples(prims, n_samples: int, S: int, max_fragments: int):
    """One z-buffer pass: the nearest primitive under every covered sample.

    Args:
        prims: :class:`_Triangles` or :class:`_Splats` (``M`` primitives): their ``view``,
            ``col0``, ``row0``, ``w``, ``h`` (long ``(M,)``), ``z_range()``, ``covers(idx, dx, dy,
            valid)`` → bool ``(m, bh, bw)`` and ``depth(m, dx, dy)`` → ``(c,)`` (smaller is nearer).
        n_samples: size of the flat sample grid ``views * S * S``.
    Returns:
        ``(sample, m)``, long ``(c,)``: the covered samples (flat indices into ``(views, S, S)``)
        and the primitive that wins each.
    """
    zbuf = ZBuffer(n_samples, prims.view.numel(), prims.z_range(), device=prims.view.device)
    for idx, dx, dy, valid in iter_fragments(prims.col0, prims.row0, prims.w, prims.h, max_fragments):
        m_loc, dy_loc, dx_loc = torch.nonzero(prims.covers(idx, dx, dy, valid), as_tuple=True)
        if m_loc.numel() == 0:
            continue
        m = idx[m_loc]
        sample = (prims.view[m] * S + prims.row0[m] + dy_loc) * S + prims.col0[m] + dx_loc
        zbuf.add(sample, prims.depth(m, dx_loc, dy_loc), m)
    return zbuf.winners()


# ----------------------------------------------------------------------------- triangles
class _Triangles(NamedTuple):
    """The ``M`` primitives ``(view, face)`` of a mesh that reach the sample grid, set up for
    rasterising in box-local sample coordinates (``x`` right, ``y`` down from the box origin)."""

    view: torch.Tensor   # (M,) long camera index
    face: torch.Tensor   # (M,) long face index
    col0: torch.Tensor   # (M,) long first sample column of the bounding box
    row0: torch.Tensor   # (M,) long first sample row
    w: torch.Tensor      # (M,) long box width in samples
    h: torch.Tensor      # (M,) long box height
    a: torch.Tensor      # (M, 3) edge functions λ_i = a_i x + b_i y + c_i (working dtype)
    b: torch.Tensor      # (M, 3)
    c: torch.Tensor      # (M, 3)
    plane: torch.Tensor  # (M, 3) 1/depth = plane · (x, y, 1) (working dtype)
    inv: torch.Tensor    # (M, 3) float64 1/depth at the corners
    area: torch.Tensor   # (M,) float64 twice the signed screen area (< 0: seen from the front)

    def z_range(self) -> tuple[float, float]:
        """Bounds of :meth:`depth` (nearness ``-1/depth``)."""
        return -float(self.inv.max()), -float(self.inv.min())

    def covers(self, idx, dx, dy, valid) -> torch.Tensor:
        """Whether sample ``(dy, dx)`` of each box ``idx`` (``(m,)``) is inside its triangle → bool
        ``(m, bh, bw)``; ``dx (1, 1, bw)`` / ``dy (1, bh, 1)`` long offsets, ``valid (m, bh, bw)``."""
        px = (dx + 0.5).to(self.a.dtype)
        py = (dy + 0.5).to(self.a.dtype)
        inside = valid.clone()
        for i in range(3):
            lam = (self.a[idx, i].view(-1, 1, 1) * px + self.b[idx, i].view(-1, 1, 1) * py
                   + self.c[idx, i].view(-1, 1, 1))
            inside &= lam >= -_EDGE_EPS
        return inside

    def depth(self, m, dx, dy) -> torch.Tensor:
        """Nearness ``-1/depth`` (smaller is nearer) of primitives ``m`` at box offsets ``dx, dy``,
        each ``(c,)``."""
        pxs, pys = dx.to(self.plane.dtype) + 0.5, dy.to(self.plane.dtype) + 0.5
        return -(self.plane[m, 0] * pxs + self.plane[m, 1] * pys + self.plane[m, 2])


def _check_mesh(vertices: torch.Tensor, faces: torch.Tensor) -> None:
    """Raise ValueError unless ``vertices`` is ``(V, 3)`` and ``faces`` is ``(F, 3)``."""
    if vertices.dim() != 2 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be (V, 3), got {tuple(vertices.shape)}")
    if faces.dim() != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be (F, 3), got {tuple(faces.shape)}")


def _project_triangles(vertices: torch.Tensor, faces: torch.Tensor, cam: Camera, S: int):
    """Corners of every face in every view → ``(tu, tv, td)``, each ``(K, F, 3)``: sample column,
    row and depth."""
    xc = cam.to_camera(vertices.unsqueeze(0).expand(len(cam), -1, -1))  # (K, V, 3)
    u, v, depth = _project(xc, cam.focal_pixels(S).unsqueeze(-1), S)
    return u[:, faces], v[:, faces], depth[:, faces]


def _edge_functions(x: torch.Tensor, y: torch.Tensor, cull_backfaces: bool):
    """Barycentric edge functions of ``M`` screen triangles with float64 corners ``x, y (M, 3)``.

    Returns:
        ``(a, b, c, area, keep)``: ``λ_i = a_i x + b_i y + c_i`` with ``a, b, c (M, 3)``; ``area
        (M,)`` twice the signed area; ``keep (M,)`` bool, the non-degenerate (and, with
        ``cull_backfaces``, front-facing) triangles.
    """
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
    # counter-clockwise in (x right, y up) is clockwise in (u right, v down): front faces have area < 0
    keep = (area < -1e-12) if cull_backfaces else (area.abs() > 1e-12)
    j, k = [1, 2, 0], [2, 0, 1]
    a = (y[:, j] - y[:, k]) / area.unsqueeze(-1)
    b = (x[:, k] - x[:, j]) / area.unsqueeze(-1)
    c = (x[:, j] * y[:, k] - x[:, k] * y[:, j]) / area.unsqueeze(-1)
    return a, b, c, area, keep


def _setup_triangles(vertices: torch.Tensor, faces: torch.Tensor, cam: Camera, S: int,
                     cull_backfaces: bool) -> _Triangles | None:
    """Project the mesh, keep the ``(view, face)`` pairs in front of the camera with a sample in
    their box and a non-degenerate (front, with ``cull_backfaces``) screen triangle, and set up
    their edge functions (float64, then the working dtype for evaluation). None when no box holds
    a sample."""
    tu, tv, td = _project_triangles(vertices, faces, cam, S)
    col0, col1, row0, row1, nonempty = _sample_boxes(tu.amin(-1), tu.amax(-1), tv.amin(-1), tv.amax(-1), S)
    ok = (td > NEAR).all(-1) & nonempty & torch.isfinite(tu).all(-1) & torch.isfinite(tv).all(-1)
    k_idx, f_idx = torch.nonzero(ok, as_tuple=True)
    if k_idx.numel() == 0:
        return None
    col0, row0, w, h = _select_boxes(col0, col1, row0, row1, (k_idx, f_idx))
    x = tu[k_idx, f_idx].double() - col0.unsqueeze(-1)                   # (M, 3) box-local
    y = tv[k_idx, f_idx].double() - row0.unsqueeze(-1)
    a, b, c, area, keep = _edge_functions(x, y, cull_backfaces)
    inv = 1.0 / td[k_idx, f_idx].double()                                # 1/depth is affine on screen
    plane = torch.stack([(a * inv).sum(-1), (b * inv).sum(-1), (c * inv).sum(-1)], -1)
    tris = _Triangles(k_idx, f_idx, col0, row0, w, h, a, b, c, plane, inv, area)
    if not bool(keep.all()):
        tris = _Triangles(*(t[keep] for t in tris))
    dtype = vertices.dtype
    return tris._replace(a=tris.a.to(dtype), b=tris.b.to(dtype), c=tris.c.to(dtype), plane=tris.plane.to(dtype))


def _perspective_weights(tris: _Triangles, sample: torch.Tensor, m: torch.Tensor, S: int) -> torch.Tensor:
    """Perspective-correct barycentric weights ``(c, 3)`` (summing to 1) of the winning samples
    ``sample (c,)`` in their triangles ``m (c,)``."""
    dtype = tris.a.dtype
    rem = sample % (S * S)
    pxs = (rem % S - tris.col0[m]).to(dtype) + 0.5
    pys = (rem // S - tris.row0[m]).to(dtype) + 0.5
    lam = tris.a[m] * pxs.unsqueeze(-1) + tris.b[m] * pys.unsqueeze(-1) + tris.c[m]  # (c, 3)
    wts = lam.clamp_min(0) * tris.inv[m].to(dtype)
    return wts / wts.sum(-1, keepdim=True).clamp_min(1e-20)


def _mesh_normals(vertices: torch.Tensor, faces: torch.Tensor, cam: Camera, tris: _Triangles,
                  sample: torch.Tensor, m: torch.Tensor, S: int, smooth: bool) -> torch.Tensor:
    """Unit camera-frame normals ``(c, 3)``, turned towards the viewer, at the winning samples:
    the face normal, or with ``smooth`` the interpolated vertex normals (the face normal where
    they cancel out)."""
    Rm = cam.R[tris.view]                                                   # (M, 3, 3)
    tri = vertices[faces[tris.face]]                                        # (M, 3, 3) world
    n_face = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    n_face = torch.bmm(Rm, n_face.unsqueeze(-1)).squeeze(-1)               # (M, 3) camera frame
    # screen-space winding tells which side faces the viewer (exact under perspective)
    facing = torch.where(tris.area < 0, 1.0, -1.0).to(vertices.dtype).unsqueeze(-1)
    n_face = torch.nn.functional.normalize(n_face * facing, dim=-1)
    if not smooth:
        return n_face[m]
    vn = vertex_normals(vertices, faces)[faces[tris.face]]                  # (M, 3, 3) world
    vn = torch.bmm(vn, Rm.transpose(1, 2)) * facing.unsqueeze(-1)           # camera frame
    n = (_perspective_weights(tris, sample, m, S).unsqueeze(-1) * vn[m]).sum(1)
    n = torch.where(n.norm(dim=-1, keepdim=True) > 1e-6, n, n_face[m])
    return torch.nn.functional.normalize(n, dim=-1)


def render_mesh_camera(vertices: torch.Tensor, faces: torch.Tensor, camera: Camera,
                       image_size: int = r2n2_camera.R2N2_IMAGE_SIZE, color=DEFAULT_MESH_COLOR,
                       supersample: int = 3, smooth: bool = True, lights: Lights = DEFAULT_LIGHTS,
                       cull_backfaces: bool = False, max_fragments: int = 1 << 21) -> torch.Tensor:
    """Render one triangle mesh from ``K`` cameras.

    Args:
        vertices: ``(V, 3)`` float, 3D-LMNet frame.
        faces: ``(F, 3)`` long vertex indices (any winding; lighting is two-sided).
        camera: ``K`` cameras (:class:`~lmnet.render.cameras.Camera`).
        image_size: output side ``H = W`` in pixels.
        color: ``(3,)``, per-face ``(F, 3)`` or per-corner ``(F, 3, 3)`` (face, corner, RGB) base
            colour in [0, 1]; per-corner colours are interpolated perspective-correctly.
        supersample: samples per pixel along each axis (anti-aliasing; 1 = aliased).
        smooth: interpolate area-weighted vertex normals (perspective-correct); False = flat faces.
        lights: key/fill/ambient set-up in camera coordinates.
        cull_backfaces: skip faces seen from behind (counter-clockwise seen from outside is the
            front). Only for closed, consistently oriented meshes; it halves the work.
        max_fragments: bound on the size of any per-chunk tensor (memory).
    Returns:
        ``uint8 (K, H, W, 4)`` RGBA, alpha = pixel coverage, 0 on the background.
    """
    _check_mesh(vertices, faces)
    device, dtype = vertices.device, vertices.dtype
    faces = faces.to(device=device, dtype=torch.long)
    cam = camera.to(device=device, dtype=dtype)
    K, ss = len(cam), int(supersample)
    S = image_size * ss
    per_corner = torch.as_tensor(color).dim() == 3
    face_color = (_corner_colors(color, faces.shape[0], dtype, device) if per_corner
                  else _colors(color, faces.shape[0], "color", dtype, device))
    tris = _setup_triangles(vertices, faces, cam, S, cull_backfaces)
    if tris is None:
        return _blank(K, image_size, device)
    sample, m = _nearest_samples(tris, K * S * S, S, max_fragments)
    n = _mesh_normals(vertices, faces, cam, tris, sample, m, S, smooth)
    base = face_color[tris.face[m]]
    if per_corner:  # (c, 3 corners, 3) weighted by the sample's barycentrics
        base = (_perspective_weights(tris, sample, m, S).unsqueeze(-1) * base).sum(1)
    shaded = lambert(n, base, lights)
    return _resolve(sample, shaded, K, image_size, ss)


def render_mesh(vertices: torch.Tensor, faces: torch.Tensor, azimuth, elevation, distance_ratio,
                fov=r2n2_camera.R2N2_NOMINAL_FOV, image_size: int = r2n2_camera.R2N2_IMAGE_SIZE,
                color=DEFAULT_MESH_COLOR, **kwargs) -> torch.Tensor:
    """Render a mesh from ``K`` R2N2 views (``rendering_metadata.txt`` values, each ``(K,)`` or a
    number; degrees). See :func:`render_mesh_camera` for the other arguments.

    Returns:
        ``uint8 (K, image_size, image_size, 4)``.
    """
    cam = Camera.r2n2(azimuth, elevation, distance_ratio, fov, dtype=vertices.dtype, device=vertices.device)
    return render_mesh_camera(vertices, faces, cam, image_size=image_size, color=color, **kwargs)


# ----------------------------------------------------------------------------- splats
class _Splats(NamedTuple):
    """The ``M`` points (of all clouds) whose sphere reaches the sample grid, set up for
    rasterising as discs around their projected centre."""

    view: torch.Tensor   # (M,) long cloud / camera index
    point: torch.Tensor  # (M,) long index into the flattened (B * N) points
    col0: torch.Tensor   # (M,) long first sample column of the disc's bounding box
    row0: torch.Tensor   # (M,) long first sample row
    w: torch.Tensor      # (M,) long box width in samples
    h: torch.Tensor      # (M,) long box height
    ox: torch.Tensor     # (M,) offset of the box origin's sample centre from the disc centre, x (samples)
    oy: torch.Tensor     # (M,) the same, y (down)
    rp2: torch.Tensor    # (M,) squared projected radius (samples²)
    zc: torch.Tensor     # (M,) depth of the sphere's centre
    rr: torch.Tensor     # (M,) sphere radius (world units)
    scale: torch.Tensor  # (M,) world units per sample at the centre's depth

    def z_range(self) -> tuple[float, float]:
        """Bounds of :meth:`depth`: the spheres' nearest and farthest depths."""
        return float((self.zc - self.rr).min()), float((self.zc + self.rr).max())

    def covers(self, idx, dx, dy, valid) -> torch.Tensor:
        """Whether sample ``(dy, dx)`` of each box ``idx`` (``(m,)``) is inside its disc → bool
        ``(m, bh, bw)``; ``dx (1, 1, bw)`` / ``dy (1, bh, 1)`` long offsets, ``valid (m, bh, bw)``."""
        d2 = (self.ox[idx].view(-1, 1, 1) + dx) ** 2 + (self.oy[idx].view(-1, 1, 1) + dy) ** 2
        return valid & (d2 <= self.rp2[idx].view(-1, 1, 1))

    def surface(self, m, dx, dy):
        """Camera-frame offsets ``(sx, sy)``, each ``(c,)``, from the sphere centres ``m (c,)`` of
        the samples at box offsets ``dx, dy (c,)`` (float)."""
        ddx = self.ox[m] + dx
        ddy = self.oy[m] + dy
        return ddx * self.scale[m], -ddy * self.scale[m]

    def height(self, m, sx, sy) -> torch.Tensor:
        """Height ``(c,)`` of the sphere's front surface above its centre plane at ``(sx, sy)``."""
        return (self.rr[m] ** 2 - sx * sx - sy * sy).clamp_min(0).sqrt()

    def depth(self, m, dx, dy) -> torch.Tensor:
        """Depth ``(c,)`` of the sphere's front surface at long box offsets ``dx, dy (c,)``."""
        sx, sy = self.surface(m, dx.to(self.ox.dtype), dy.to(self.ox.dtype))
        return self.zc[m] - self.height(m, sx, sy)


def _point_colors(colors, B: int, N: int, dtype, device) -> torch.Tensor:
    """``None``, ``(3,)``, ``(N, 3)`` or ``(B, N, 3)`` colours → ``(B * N, 3)``."""
    if colors is None:
        colors = DEFAULT_POINT_COLOR
    col = torch.as_tensor(colors, dtype=dtype, device=device)
    if col.shape[-1:] != (3,) or col.dim() > 3 or (col.dim() > 1 and col.shape[-2] != N) or (
            col.dim() == 3 and col.shape[0] not in (1, B)):
        raise ValueError(f"colors must be (3,), (N, 3) or (B, N, 3), got {tuple(col.shape)}")
    return col.expand(B, N, 3).reshape(B * N, 3)


def _setup_splats(points: torch.Tensor, cam: Camera, rad: torch.Tensor, S: int) -> _Splats | None:
    """Project ``points (B, N, 3)`` with radii ``rad (B * N,)`` through ``B`` cameras and keep the
    finite ones in front of the camera, with a positive radius and a sample in their disc's box.
    None when there are none."""
    B, N = points.shape[:2]
    xc = cam.to_camera(points).reshape(B * N, 3)
    fpx = cam.focal_pixels(S).repeat_interleave(N)
    u, v, depth = _project(xc, fpx, S)
    r_px = fpx * rad / depth
    col0, col1, row0, row1, nonempty = _sample_boxes(u - r_px, u + r_px, v - r_px, v + r_px, S)
    ok = (depth > NEAR + rad) & (rad > 0) & torch.isfinite(xc).all(-1) & nonempty
    (pid,) = torch.nonzero(ok, as_tuple=True)
    if pid.numel() == 0:
        return None
    c0, r0, w, h = _select_boxes(col0, col1, row0, row1, pid)
    return _Splats(view=pid // N, point=pid, col0=c0, row0=r0, w=w, h=h,
                   ox=(c0.to(points.dtype) + 0.5) - u[pid], oy=(r0.to(points.dtype) + 0.5) - v[pid],
                   rp2=r_px[pid] ** 2, zc=depth[pid], rr=rad[pid], scale=depth[pid] / fpx[pid])


def _shade_splats(splats: _Splats, sample: torch.Tensor, m: torch.Tensor, col: torch.Tensor, S: int,
                  shading: bool, lights: Lights) -> torch.Tensor:
    """Colours ``(c, 3)`` of the winning samples ``sample (c,)`` of splats ``m (c,)``: the points'
    colours ``col (B * N, 3)``, Lambert-shaded with the sphere's normal when ``shading``."""
    base = col[splats.point[m]]
    if not shading:
        return base
    rem = sample - splats.view[m] * S * S
    dtype = splats.ox.dtype
    sx, sy = splats.surface(m, (rem % S - splats.col0[m]).to(dtype), (rem // S - splats.row0[m]).to(dtype))
    n = torch.nn.functional.normalize(torch.stack([sx, sy, splats.height(m, sx, sy)], -1), dim=-1)
    return lambert(n, base, lights)


def render_points(points: torch.Tensor, camera: Camera, image_size: int = 512, colors=None,
                  radius=0.01, supersample: int = 2, shading: bool = True,
                  lights: Lights = DEFAULT_LIGHTS, max_fragments: int = 1 << 21) -> torch.Tensor:
    """Render ``B`` point clouds as z-buffered, shaded sphere splats.

    Each point is a sphere of ``radius`` (world units, i.e. the unit-diagonal 3D-LMNet frame) drawn
    as a disc of projected radius ``focal_px * radius / depth`` around the projected centre; inside
    the disc the sample depth and normal are those of the sphere's front surface, so overlapping
    splats intersect correctly.

    Args:
        points: ``(B, N, 3)`` or ``(N, 3)`` float, 3D-LMNet frame. Non-finite points are skipped.
        camera: ``B`` cameras, or 1 camera used for every cloud.
        image_size: output side ``H = W`` in pixels.
        colors: ``None`` (a default blue-grey), ``(3,)``, ``(N, 3)`` or ``(B, N, 3)`` in [0, 1].
        radius: number or a tensor broadcastable to ``(B, N)`` (per-point radii).
        supersample: samples per pixel along each axis (anti-aliasing).
        shading: Lambert-shade the spheres; False draws flat colours (e.g. colour-by-error).
    Returns:
        ``uint8 (B, H, W, 4)`` RGBA, alpha 0 on the background.
    """
    if points.dim() == 2:
        points = points.unsqueeze(0)
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must be (B, N, 3) or (N, 3), got {tuple(points.shape)}")
    device, dtype = points.device, points.dtype
    B, N = points.shape[:2]
    cam = camera.to(device=device, dtype=dtype).expand(B)
    ss = int(supersample)
    S = image_size * ss
    col = _point_colors(colors, B, N, dtype, device)
    rad = torch.as_tensor(radius, dtype=dtype, device=device).expand(B, N).reshape(B * N)
    splats = _setup_splats(points, cam, rad, S)
    if splats is None:
        return _blank(B, image_size, device)
    sample, m = _nearest_samples(splats, B * S * S, S, max_fragments)
    return _resolve(sample, _shade_splats(splats, sample, m, col, S, shading, lights), B, image_size, ss)


def render_points_r2n2(points: torch.Tensor, azimuth, elevation, distance_ratio,
                       fov=r2n2_camera.R2N2_NOMINAL_FOV, image_size: int = r2n2_camera.R2N2_IMAGE_SIZE,
                       **kwargs) -> torch.Tensor:
    """:func:`render_points` from R2N2 views (``(B,)`` metadata values, degrees) → ``uint8 (B, H, W, 4)``."""
    cam = Camera.r2n2(azimuth, elevation, distance_ratio, fov, dtype=points.dtype, device=points.device)
    return render_points(points, cam, image_size=image_size, **kwargs)


def composite(rgba: torch.Tensor, background=(255, 255, 255)) -> torch.Tensor:
    """Alpha-composite ``uint8 (..., 4)`` images over a solid ``background`` → ``uint8 (..., 3)``."""
    a = rgba[..., 3:].float() / 255.0
    bg = torch.as_tensor(background, dtype=torch.float32, device=rgba.device)
    out = rgba[..., :3].float() * a + bg * (1 - a)
    return out.round().clamp(0, 255).to(torch.uint8)
