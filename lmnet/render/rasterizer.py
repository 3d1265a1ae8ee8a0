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

import torch

from lmnet import camera as r2n2_camera
from lmnet.render.cameras import Camera
from lmnet.render.shading import DEFAULT_LIGHTS, Lights, lambert
from lmnet.render.zbuffer import ZBuffer, iter_fragments

DEFAULT_MESH_COLOR = (0.72, 0.72, 0.72)
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


# ----------------------------------------------------------------------------- triangles
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
        color: ``(3,)`` or per-face ``(F, 3)`` base colour in [0, 1].
        supersample: samples per pixel along each axis (anti-aliasing; 1 = aliased).
        smooth: interpolate area-weighted vertex normals (perspective-correct); False = flat faces.
        lights: key/fill/ambient set-up in camera coordinates.
        cull_backfaces: skip faces seen from behind (counter-clockwise seen from outside is the
            front). Only for closed, consistently oriented meshes; it halves the work.
        max_fragments: bound on the size of any per-chunk tensor (memory).
    Returns:
        ``uint8 (K, H, W, 4)`` RGBA, alpha = pixel coverage, 0 on the background.
    """
    if vertices.dim() != 2 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be (V, 3), got {tuple(vertices.shape)}")
    if faces.dim() != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be (F, 3), got {tuple(faces.shape)}")
    device, dtype = vertices.device, vertices.dtype
    faces = faces.to(device=device, dtype=torch.long)
    cam = camera.to(device=device, dtype=dtype)
    K, ss = len(cam), int(supersample)
    S = image_size * ss
    face_color = _colors(color, faces.shape[0], "color", dtype, device)

    # --- project -----------------------------------------------------------------------
    xc = cam.to_camera(vertices.unsqueeze(0).expand(K, -1, -1))          # (K, V, 3)
    depth = -xc[..., 2]
    f = cam.focal_pixels(S).unsqueeze(-1)
    u = S / 2.0 + f * xc[..., 0] / depth
    v = S / 2.0 - f * xc[..., 1] / depth
    tu, tv, td = u[:, faces], v[:, faces], depth[:, faces]                # (K, F, 3)

    # --- per-triangle bounding boxes (sample centres j + 0.5 inside [min, max]) ---------
    ok = (td > NEAR).all(-1)
    col0 = torch.ceil(tu.amin(-1) - 0.5).clamp(min=0)
    col1 = torch.floor(tu.amax(-1) - 0.5).clamp(max=S - 1)
    row0 = torch.ceil(tv.amin(-1) - 0.5).clamp(min=0)
    row1 = torch.floor(tv.amax(-1) - 0.5).clamp(max=S - 1)
    ok &= (col1 >= col0) & (row1 >= row0) & torch.isfinite(tu).all(-1) & torch.isfinite(tv).all(-1)
    k_idx, f_idx = torch.nonzero(ok, as_tuple=True)                      # primitive m = (view, face)
    if k_idx.numel() == 0:
        return torch.zeros(K, image_size, image_size, 4, dtype=torch.uint8, device=device)
    col0, row0 = col0[k_idx, f_idx].long(), row0[k_idx, f_idx].long()
    w = col1[k_idx, f_idx].long() - col0 + 1
    h = row1[k_idx, f_idx].long() - row0 + 1

    # --- edge functions in box-local coordinates (float64 set-up, float32 evaluation) --
    x = tu[k_idx, f_idx].double() - col0.unsqueeze(-1)                   # (M, 3)
    y = tv[k_idx, f_idx].double() - row0.unsqueeze(-1)
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
    # counter-clockwise in (x right, y up) is clockwise in (u right, v down): front faces have area < 0
    keep = (area < -1e-12) if cull_backfaces else (area.abs() > 1e-12)
    j, k = [1, 2, 0], [2, 0, 1]
    a = (y[:, j] - y[:, k]) / area.unsqueeze(-1)                          # λ_i = a_i x + b_i y + c_i
    b = (x[:, k] - x[:, j]) / area.unsqueeze(-1)
    c = (x[:, j] * y[:, k] - x[:, k] * y[:, j]) / area.unsqueeze(-1)
    inv = 1.0 / td[k_idx, f_idx].double()                                # 1/depth is affine on screen
    plane = torch.stack([(a * inv).sum(-1), (b * inv).sum(-1), (c * inv).sum(-1)], -1)
    if not bool(keep.all()):
        k_idx, f_idx, col0, row0, w, h = (t[keep] for t in (k_idx, f_idx, col0, row0, w, h))
        a, b, c, plane, inv, area = a[keep], b[keep], c[keep], plane[keep], inv[keep], area[keep]
    M = k_idx.numel()
    a32, b32, c32, p32 = a.to(dtype), b.to(dtype), c.to(dtype), plane.to(dtype)

    # --- z-buffer (nearness = -1/depth, smaller is nearer) -------------------------------
    zbuf = ZBuffer(K * S * S, M, (-float(inv.max()), -float(inv.min())), device=device)
    for idx, dx, dy, valid in iter_fragments(col0, row0, w, h, max_fragments):
        px = (dx + 0.5).to(dtype)
        py = (dy + 0.5).to(dtype)
        inside = valid.clone()
        for i in range(3):
            lam = a32[idx, i].view(-1, 1, 1) * px + b32[idx, i].view(-1, 1, 1) * py + c32[idx, i].view(-1, 1, 1)
            inside &= lam >= -_EDGE_EPS
        m_loc, dy_loc, dx_loc = torch.nonzero(inside, as_tuple=True)
        if m_loc.numel() == 0:
            continue
        m = idx[m_loc]
        pxs, pys = dx_loc.to(dtype) + 0.5, dy_loc.to(dtype) + 0.5
        z = -(p32[m, 0] * pxs + p32[m, 1] * pys + p32[m, 2])
        sample = (k_idx[m] * S + row0[m] + dy_loc) * S + col0[m] + dx_loc
        zbuf.add(sample, z, m)

    # --- shade the winners (per-primitive quantities first, then gathered per sample) ------
    sample, m = zbuf.winners()
    Rm = cam.R[k_idx]                                                       # (M, 3, 3)
    tri = vertices[faces[f_idx]]                                            # (M, 3, 3) world
    n_face = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    n_face = torch.bmm(Rm, n_face.unsqueeze(-1)).squeeze(-1)               # (M, 3) camera frame
    # screen-space winding tells which side faces the viewer (exact under perspective)
    facing = torch.where(area < 0, 1.0, -1.0).to(dtype).unsqueeze(-1)
    n_face = torch.nn.functional.normalize(n_face * facing, dim=-1)
    if smooth:
        vn = vertex_normals(vertices, faces)[faces[f_idx]]                  # (M, 3, 3) world
        vn = torch.bmm(vn, Rm.transpose(1, 2)) * facing.unsqueeze(-1)       # camera frame
        rem = sample % (S * S)
        pxs = (rem % S - col0[m]).to(dtype) + 0.5
        pys = (rem // S - row0[m]).to(dtype) + 0.5
        lam = a32[m] * pxs.unsqueeze(-1) + b32[m] * pys.unsqueeze(-1) + c32[m]  # (c, 3)
        wts = lam.clamp_min(0) * inv[m].to(dtype)                           # perspective-correct
        wts = wts / wts.sum(-1, keepdim=True).clamp_min(1e-20)
        n = (wts.unsqueeze(-1) * vn[m]).sum(1)
        # fall back to the face normal where smoothing cancels out
        n = torch.where(n.norm(dim=-1, keepdim=True) > 1e-6, n, n_face[m])
        n = torch.nn.functional.normalize(n, dim=-1)
    else:
        n = n_face[m]
    shaded = lambert(n, face_color[f_idx[m]], lights)
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
    if colors is None:
        colors = DEFAULT_POINT_COLOR
    col = torch.as_tensor(colors, dtype=dtype, device=device)
    if col.shape[-1:] != (3,) or col.dim() > 3 or (col.dim() > 1 and col.shape[-2] != N) or (
            col.dim() == 3 and col.shape[0] not in (1, B)):
        raise ValueError(f"colors must be (3,), (N, 3) or (B, N, 3), got {tuple(col.shape)}")
    col = col.expand(B, N, 3).reshape(B * N, 3)
    rad = torch.as_tensor(radius, dtype=dtype, device=device).expand(B, N).reshape(B * N)

    xc = cam.to_camera(points).reshape(B * N, 3)
    depth = -xc[:, 2]
    fpx = cam.focal_pixels(S).repeat_interleave(N)
    u = S / 2.0 + fpx * xc[:, 0] / depth
    v = S / 2.0 - fpx * xc[:, 1] / depth
    r_px = fpx * rad / depth
    col0 = torch.ceil(u - r_px - 0.5).clamp(min=0)
    col1 = torch.floor(u + r_px - 0.5).clamp(max=S - 1)
    row0 = torch.ceil(v - r_px - 0.5).clamp(min=0)
    row1 = torch.floor(v + r_px - 0.5).clamp(max=S - 1)
    ok = (depth > NEAR + rad) & (rad > 0) & torch.isfinite(xc).all(-1) & (col1 >= col0) & (row1 >= row0)
    (pid,) = torch.nonzero(ok, as_tuple=True)
    if pid.numel() == 0:
        return torch.zeros(B, image_size, image_size, 4, dtype=torch.uint8, device=device)
    bid = pid // N
    c0, r0 = col0[pid].long(), row0[pid].long()
    w = col1[pid].long() - c0 + 1
    h = row1[pid].long() - r0 + 1
    # offset of the box origin's sample centre from the splat centre, in pixels
    ox = (c0.to(dtype) + 0.5) - u[pid]
    oy = (r0.to(dtype) + 0.5) - v[pid]
    rp2 = r_px[pid] ** 2
    zc, rr = depth[pid], rad[pid]
    scale = zc / fpx[pid]                                                   # world units per pixel

    def _surface(m, dxs, dys):
        """Camera-frame offsets (sx, sy) of samples from the centre and the squared pixel distance."""
        ddx = ox[m] + dxs
        ddy = oy[m] + dys
        return ddx * scale[m], -ddy * scale[m], ddx * ddx + ddy * ddy

    zmin = float((zc - rr).min())
    zmax = float((zc + rr).max())
    zbuf = ZBuffer(B * S * S, pid.numel(), (zmin, zmax), device=device)
    for idx, dx, dy, valid in iter_fragments(c0, r0, w, h, max_fragments):
        d2 = (ox[idx].view(-1, 1, 1) + dx) ** 2 + (oy[idx].view(-1, 1, 1) + dy) ** 2
        inside = valid & (d2 <= rp2[idx].view(-1, 1, 1))
        m_loc, dy_loc, dx_loc = torch.nonzero(inside, as_tuple=True)
        if m_loc.numel() == 0:
            continue
        m = idx[m_loc]
        sx, sy, _ = _surface(m, dx_loc.to(dtype), dy_loc.to(dtype))
        hgt = (rr[m] ** 2 - sx * sx - sy * sy).clamp_min(0).sqrt()
        sample = (bid[m] * S + r0[m] + dy_loc) * S + c0[m] + dx_loc
        zbuf.add(sample, zc[m] - hgt, m)

    sample, m = zbuf.winners()
    rem = sample - bid[m] * S * S
    row, colm = rem // S, rem % S
    sx, sy, _ = _surface(m, (colm - c0[m]).to(dtype), (row - r0[m]).to(dtype))
    base = col[pid[m]]
    if shading:
        hgt = (rr[m] ** 2 - sx * sx - sy * sy).clamp_min(0).sqrt()
        n = torch.nn.functional.normalize(torch.stack([sx, sy, hgt], -1), dim=-1)
        base = lambert(n, base, lights)
    return _resolve(sample, base, B, image_size, ss)


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
