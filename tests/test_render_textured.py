"""The DIB-R-style textured renderer (lmnet.render.textured) against per-pixel numpy references,
lmnet's z-buffer triangle rasteriser, autograd's gradcheck and its own batched / chunked paths."""

import math

import numpy as np
import pytest
import torch

from lmnet.quaternions import quaternion_to_matrix
from lmnet.render import Camera, render_mesh_camera
from lmnet.render.textured import (MAX_SOFT_FACES, SIGMA_INV, face_corners, rasterize, render_textured,
                                   render_uv_space, sample_texture, soft_alpha, transform_vertices)


# ----------------------------------------------------------------------------- scenes
def _uv_sphere(segments: int, rings: int, radius: float = 1.0):
    """UV sphere: vertices (V, 3), faces (F, 3) counter-clockwise seen from outside, per-corner UVs
    (F, 3, 2); (segments·(rings-1) + 2) vertices, 2·segments·(rings-1) faces."""
    verts = [[0.0, radius, 0.0]]
    for r in range(1, rings):
        th = math.pi * r / rings
        for s in range(segments):
            ph = 2 * math.pi * s / segments
            verts.append([radius * math.sin(th) * math.sin(ph), radius * math.cos(th),
                          radius * math.sin(th) * math.cos(ph)])
    verts.append([0.0, -radius, 0.0])
    south = len(verts) - 1

    def vid(r, s):
        return 0 if r == 0 else south if r == rings else 1 + (r - 1) * segments + s % segments

    def uv(r, s):
        return [s / segments, 1 - r / rings]

    faces, uvs = [], []
    for r in range(rings):
        for s in range(segments):
            a, b, c, d = (r, s), (r + 1, s), (r + 1, s + 1), (r, s + 1)
            tris = [(a, b, c)] if r == 0 else [(a, b, d)] if r == rings - 1 else [(a, b, c), (a, c, d)]
            for t in tris:
                faces.append([vid(*k) for k in t])
                uvs.append([uv(*k) for k in t])
    return torch.tensor(verts), torch.tensor(faces), torch.tensor(uvs)


def _pixel_centres(h, w):
    """NDC centres: x (W,), y (H,)."""
    return (2 * np.arange(w) + 1 - w) / w, (h - 2 * np.arange(h) - 1) / h


def _bary(tri, x, y):
    """DIB-R barycentrics (w0, w1, w2) of point (x, y) in the screen triangle tri (3, 2)."""
    (ax, ay), (bx, by), (cx, cy) = tri
    m, p, n, q, s, t = bx - ax, by - ay, cx - ax, cy - ay, x - ax, y - ay
    k3 = m * q - n * p
    w1, w2 = (s * q - n * t) / k3, (m * t - s * p) / k3
    return 1 - w1 - w2, w1, w2


def _covers(tri, x, y):
    """Front-facing, non-degenerate, centre in the half-open box and all weights ≥ 0."""
    (ax, ay), (bx, by), (cx, cy) = tri
    if (bx - ax) * (cy - ay) - (cx - ax) * (by - ay) <= 0:
        return False
    lo, hi = tri.min(0), tri.max(0)
    if not (lo[0] <= x < hi[0] and lo[1] <= y < hi[1]):
        return False
    return min(_bary(tri, x, y)) >= 0


def _seg_dist2(p, a, b):
    """Squared distance from p to segment ab (the closest point, clamped)."""
    e = b - a
    t = np.clip(np.dot(p - a, e) / np.dot(e, e), 0.0, 1.0)
    return float(np.sum((a + t * e - p) ** 2))


def _soft_alpha_reference(tris, h, w, sigma_inv=SIGMA_INV, expand=0.02, max_faces=MAX_SOFT_FACES):
    """DIB-R's soft alpha per pixel, written directly: tris (F, 3, 2) float64 → (H, W)."""
    xs, ys = _pixel_centres(h, w)
    out = np.zeros((h, w))
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            if any(_covers(t, x, y) for t in tris):
                out[i, j] = 1.0
                continue
            keep = 1.0
            near = [t for t in tris if (t.min(0)[0] - expand <= x < t.max(0)[0] + expand
                                        and t.min(0)[1] - expand <= y < t.max(0)[1] + expand)]
            for t in near[:max_faces]:
                d2 = min(_seg_dist2(np.array([x, y]), t[k], t[(k + 1) % 3]) for k in range(3))
                keep *= 1 - math.exp(-sigma_inv * d2)
            out[i, j] = 1 - keep
    return out


def _two_triangles(dtype=torch.float64):
    """Two front-facing triangles (one vertex shared) whose edges pass no 12×12 pixel centre."""
    v = torch.tensor([[[-0.71, -0.62, 0.1], [0.53, -0.47, 0.2], [-0.12, 0.66, 0.3],
                       [0.77, 0.58, -0.2]]], dtype=dtype)
    f = torch.tensor([[0, 1, 2], [1, 3, 2]])
    return v, f


def _min_centre_edge_distance(xy, faces, h, w):
    """Smallest distance of any pixel centre to any edge's line segment (scene sanity check)."""
    xs, ys = _pixel_centres(h, w)
    tris = xy[faces].numpy()
    return min(_seg_dist2(np.array([x, y]), t[k], t[(k + 1) % 3]) for t in tris for k in range(3)
               for x in xs for y in ys) ** 0.5


# ----------------------------------------------------------------------------- gradients
def test_gradcheck_texture_and_uvs():
    v, f = _two_triangles()
    gen = torch.Generator().manual_seed(0)
    uvs = (torch.rand(1, 2, 3, 2, generator=gen, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    tex = torch.rand(1, 3, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t, u: render_textured(v, f, u, t, 12)[0], (tex, uvs))


def test_gradcheck_vertex_xy_through_barycentrics():
    v, f = _two_triangles()
    assert _min_centre_edge_distance(v[0, :, :2], f, 12, 12) > 1e-3
    attrs = torch.randn(1, 2, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    z = v[..., 2:]

    def values(xy):
        return rasterize(torch.cat([xy, z], -1), f, attrs, 12).values

    xy = v[..., :2].clone().requires_grad_(True)
    assert float(rasterize(v, f, attrs, 12).mask.sum()) > 20
    assert torch.autograd.gradcheck(values, (xy,))


@pytest.mark.parametrize("sigma_inv", [60.0, SIGMA_INV])
def test_gradcheck_soft_alpha(sigma_inv):
    v, f = _two_triangles()
    z = v[..., 2:]
    mask = rasterize(v, f, torch.zeros(1, 2, 3, 1, dtype=v.dtype), 12).mask

    def alpha(xy):
        return soft_alpha(torch.cat([xy, z], -1), f, mask, sigma_inv=sigma_inv)

    a = alpha(v[..., :2])
    soft = ((a > 1e-4) & (a < 1 - 1e-4)).sum()
    assert int(soft) >= (3 if sigma_inv == SIGMA_INV else 20)  # the check has something to check
    assert torch.autograd.gradcheck(alpha, (v[..., :2].clone().requires_grad_(True),))


def test_gradients_reach_xy_not_depth():
    v, faces, uvs = _uv_sphere(12, 6, 0.7)
    v = v.unsqueeze(0).clone().requires_grad_(True)
    tex = torch.rand(1, 3, 8, 8, requires_grad=True)
    uvs = uvs.unsqueeze(0).clone().requires_grad_(True)
    rgb, alpha, mask = render_textured(v, faces, uvs, tex, 32)
    (rgb.sum() + alpha.sum()).backward()
    assert v.grad[..., :2].abs().sum() > 0 and tex.grad.abs().sum() > 0 and uvs.grad.abs().sum() > 0
    assert torch.all(v.grad[..., 2] == 0)
    assert mask.grad_fn is None and not mask.requires_grad


# ----------------------------------------------------------------------------- forward semantics
def test_soft_alpha_single_triangle_closed_form():
    v = torch.tensor([[[-0.55, -0.4, 0.0], [0.6, -0.3, 0.0], [0.05, 0.5, 0.0]]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 2]])
    size = (40, 36)
    mask = rasterize(v, f, torch.zeros(1, 1, 3, 1, dtype=v.dtype), size).mask
    ours = soft_alpha(v, f, mask)[0, 0].numpy()
    ref = _soft_alpha_reference(v[0, :, :2][f].numpy(), *size)
    assert np.abs(ours - ref).max() < 1e-9
    assert ((ref > 1e-3) & (ref < 1 - 1e-3)).sum() > 20  # the boundary band is exercised


def test_soft_alpha_first_faces_by_index_back_faces_included():
    """40 small triangles of both windings around one spot: each pixel uses only its first
    max_faces candidates by face index, culled faces included."""
    gen = np.random.default_rng(3)
    centres = gen.uniform(-0.15, 0.15, (40, 1, 2))
    tris = centres + gen.uniform(-0.12, 0.12, (40, 3, 2))
    v = torch.tensor(np.concatenate([tris.reshape(1, 120, 2), np.zeros((1, 120, 1))], -1))
    f = torch.arange(120).view(40, 3)
    size = 24
    mask = rasterize(v, f, torch.zeros(1, 40, 3, 1, dtype=v.dtype), size).mask
    for k in (MAX_SOFT_FACES, 4):
        ours = soft_alpha(v, f, mask, max_faces=k, sigma_inv=300.0)[0, 0].numpy()
        ref = _soft_alpha_reference(tris, size, size, sigma_inv=300.0, max_faces=k)
        assert np.abs(ours - ref).max() < 1e-9, k
    assert not np.allclose(_soft_alpha_reference(tris, size, size, 300.0, max_faces=4),
                           _soft_alpha_reference(tris, size, size, 300.0, max_faces=30))


def test_linear_texture_renders_back_barycentric_uv():
    gen = np.random.default_rng(5)
    tri = np.array([[-0.8, -0.7], [0.75, -0.55], [0.1, 0.8]])
    uvc = gen.uniform(0.05, 0.95, (1, 1, 3, 2))
    v = torch.tensor(np.concatenate([tri, np.zeros((3, 1))], -1)[None], dtype=torch.float32)
    ht, wt = 9, 13
    tex = torch.zeros(1, 3, ht, wt)
    tex[0, 0] = torch.linspace(0, 1, wt).view(1, wt)          # u = column / (Wt - 1)
    tex[0, 1] = torch.linspace(1, 0, ht).view(ht, 1)          # v = 1 - row / (Ht - 1): v runs up
    rgb, _, mask = render_textured(v, torch.tensor([[0, 1, 2]]), torch.tensor(uvc, dtype=torch.float32), tex, 32)
    xs, ys = _pixel_centres(32, 32)
    n = 0
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            if _covers(tri, x, y):
                expected = np.asarray(_bary(tri, x, y)) @ uvc[0, 0]
                assert np.abs(rgb[0, :2, i, j].numpy() - expected).max() < 1e-5
                assert mask[0, 0, i, j] == 1
                n += 1
            else:
                assert mask[0, 0, i, j] == 0 and torch.all(rgb[0, :, i, j] == 0)
    assert n > 200


def test_hard_mask_matches_zbuffer_rasterizer():
    """Orthographic limit of lmnet's perspective z-buffer rasteriser: camera at z = D looking down -z
    with focal D (NDC units), so x_pixel = S/2 (1 + x D / (D - z)) → S/2 (1 + x)."""
    verts, faces, _ = _uv_sphere(24, 12)
    rot = torch.tensor(quaternion_to_matrix([0.9, 0.3, -0.2, 0.25]), dtype=torch.float64)
    verts = (verts.double() @ rot.T) * torch.tensor([0.75, 0.55, 0.6], dtype=torch.float64) + 0.08
    size, dist = 64, 1e4
    ours = rasterize(verts.unsqueeze(0), faces, torch.zeros(1, faces.shape[0], 3, 1, dtype=torch.float64),
                     size).mask[0, 0] > 0
    cam = Camera(torch.eye(3, dtype=torch.float64)[None], torch.tensor([[0.0, 0.0, -dist]], dtype=torch.float64),
                 torch.tensor([dist], dtype=torch.float64))
    theirs = render_mesh_camera(verts, faces, cam, image_size=size, supersample=1)[0, ..., 3] > 0
    iou = float((ours & theirs).sum()) / float((ours | theirs).sum())
    assert iou >= 0.99, iou
    assert 0.2 < float(ours.float().mean()) < 0.6


def test_depth_test_keeps_larger_z_in_either_order():
    near = [[-0.9, -0.9, 0.5], [0.9, -0.9, 0.5], [0.0, 0.9, 0.5]]
    far = [[-0.8, -0.8, -0.3], [0.8, -0.8, -0.3], [0.0, 0.8, -0.3]]
    for first, second, winner in ((near, far, 0), (far, near, 1)):
        v = torch.tensor([first + second])
        f = torch.tensor([[0, 1, 2], [3, 4, 5]])
        attrs = torch.tensor([[[[1.0]] * 3, [[2.0]] * 3]])
        r = rasterize(v, f, attrs, 16)
        centre = r.face_index[0, 8, 8]
        assert int(centre) == winner and float(r.values[0, 0, 8, 8]) == 1.0 + winner


def test_back_faces_are_culled():
    ccw = torch.tensor([[[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.0, 0.5, 0.0]]])
    cw = ccw[:, [0, 2, 1]]
    f = torch.tensor([[0, 1, 2]])
    attrs = torch.ones(1, 1, 3, 2)
    assert rasterize(ccw, f, attrs, 16).mask.sum() > 0
    r = rasterize(cw, f, attrs, 16)
    assert r.mask.sum() == 0 and r.values.abs().sum() == 0 and torch.all(r.face_index == -1)
    assert rasterize(cw, f, attrs, 16, cull_backfaces=False).mask.sum() > 0
    # the soft alpha still sees the culled face (DIB-R), as the reference (which ignores winding) does
    alpha = soft_alpha(cw, f, r.mask, sigma_inv=100.0)[0, 0].numpy()
    ref = _soft_alpha_reference(cw[0, :, :2].double().numpy()[None], 16, 16, sigma_inv=100.0)
    assert np.abs(alpha - ref).max() < 1e-6 and alpha.max() > 0.5


def test_batch_equals_per_item_and_chunking_changes_nothing():
    verts, faces, uvs = _uv_sphere(16, 8)
    gen = torch.Generator().manual_seed(7)
    q = torch.nn.functional.normalize(torch.randn(3, 4, generator=gen), dim=-1)
    scale = torch.tensor([[0.6], [0.8], [0.5]])
    trans = torch.tensor([[0.1, -0.2], [0.0, 0.0], [-0.3, 0.25]])
    tex = torch.rand(3, 3, 16, 16, generator=gen)

    def run(idx, **kw):
        v = verts.expand(len(idx), -1, -1).clone().requires_grad_(True)
        t = tex[idx].clone().requires_grad_(True)
        out = render_textured(transform_vertices(v, scale[idx], trans[idx], q[idx]), faces, uvs[None], t, 40, **kw)
        (out[0].square().sum() + out[1].square().sum()).backward()
        return [o.detach() for o in out] + [v.grad, t.grad]

    batched = run([0, 1, 2])
    for k in range(3):
        single = run([k])
        for a, b in zip(batched, single):
            torch.testing.assert_close(a[k:k + 1], b, rtol=1e-5, atol=1e-6)
    chunked = run([0, 1, 2], max_fragments=257)  # many chunks, candidate list truncated repeatedly
    for a, b in zip(batched, chunked):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    verts, faces, uvs = _uv_sphere(32, 16)
    q = torch.nn.functional.normalize(torch.tensor([[0.9, 0.2, 0.3, -0.1], [0.5, -0.5, 0.5, 0.5]]), dim=-1)
    tex = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    def run(device):
        v = verts.expand(2, -1, -1).to(device).clone().requires_grad_(True)
        t = tex.to(device).clone().requires_grad_(True)
        vi = transform_vertices(v, torch.full((2, 1), 0.7, device=device), torch.zeros(2, 2, device=device),
                                q.to(device))
        rgb, alpha, mask = render_textured(vi, faces.to(device), uvs[None].to(device), t, 64)
        (rgb.sum() + alpha.sum()).backward()
        return [x.detach().cpu() for x in (rgb, alpha, mask, v.grad, t.grad)]

    cpu, gpu = run("cpu"), run("cuda")
    mask_diff = (cpu[2] != gpu[2]).float().mean()
    assert mask_diff < 1e-3  # at most a rounding-level edge pixel
    if mask_diff == 0:
        for a, b in zip(cpu, gpu):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- UV space, pose
def test_render_uv_space_reads_the_image_where_the_surface_was_drawn():
    """A quad drawn on screen, inverse-rendered back into UV space from an image that encodes its own
    pixel coordinates: every texel reads the column/row of its surface point (both sampling modes)."""
    uvs = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    uv_faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    screen = torch.tensor([[-0.6, -0.5], [0.7, -0.4], [0.5, 0.65], [-0.55, 0.5]])  # an affine-ish quad
    corner_xy = face_corners(screen[None], uv_faces)                          # (1, 2, 3, 2)
    hi, wi = 30, 40
    image = torch.stack([torch.arange(wi, dtype=torch.float32).expand(hi, wi),
                         torch.arange(hi, dtype=torch.float32).view(hi, 1).expand(hi, wi)])[None]
    size = 16
    for exact in (False, True):
        tex, alpha = render_uv_space(uvs, uv_faces, corner_xy, image, size, pixel_centres=exact)
        assert alpha.shape == (1, 1, size, size) and float(alpha.mean()) > 0.8
        xs, ys = _pixel_centres(size, size)
        for i, y in enumerate(ys):
            for j, x in enumerate(xs):
                if alpha[0, 0, i, j] == 0:
                    continue
                tri = None
                for face in uv_faces.tolist():
                    if _covers(uvs[0, face].numpy() * 2 - 1, x, y):
                        tri = face
                        break
                w = np.asarray(_bary(uvs[0, tri].numpy() * 2 - 1, x, y))
                sx, sy = w @ screen[tri].numpy()
                if exact:   # the pixel the forward renderer centres at (sx, sy)
                    col, row = (sx * wi + wi - 1) / 2, (hi - 1 - sy * hi) / 2
                else:       # grid_sample, align_corners=True
                    col, row = (sx + 1) * (wi - 1) / 2, (1 - sy) * (hi - 1) / 2
                assert abs(float(tex[0, 0, i, j]) - col) < 1e-3 and abs(float(tex[0, 1, i, j]) - row) < 1e-3


def test_transform_vertices_matches_rotation_matrix_and_pseudo_perspective():
    gen = torch.Generator().manual_seed(11)
    v = torch.randn(2, 7, 3, generator=gen, dtype=torch.float64)
    q = torch.nn.functional.normalize(torch.randn(2, 4, generator=gen, dtype=torch.float64), dim=-1)
    s = torch.tensor([[0.7], [1.3]], dtype=torch.float64)
    t2 = torch.tensor([[0.1, -0.2], [0.3, 0.05]], dtype=torch.float64)
    out = transform_vertices(v, s, t2, q)
    for b in range(2):
        ref = (s[b].numpy() * v[b].numpy()) @ quaternion_to_matrix(q[b].numpy()).T
        ref = (ref + np.r_[t2[b].numpy(), 0.0]) * np.array([1.0, -1.0, -1.0])
        np.testing.assert_allclose(out[b].numpy(), ref, atol=1e-12)
    t3 = torch.cat([t2, torch.zeros(2, 1, dtype=torch.float64)], -1)
    torch.testing.assert_close(transform_vertices(v, s, t3, q), out)
    z0 = torch.tensor([[2.0], [3.5]], dtype=torch.float64)
    persp = transform_vertices(v, s, t2, q, z0=z0)
    z = out[..., 2:]
    torch.testing.assert_close(persp[..., :2], out[..., :2] * (z0[:, None] + z / 2) / (z0[:, None] - z / 2))
    torch.testing.assert_close(persp[..., 2], out[..., 2])
    torch.testing.assert_close(transform_vertices(v, s, t2, q, z0=2.0)[0], persp[0])


# ----------------------------------------------------------------------------- input checks
def test_shape_errors_name_the_argument():
    v, f = _two_triangles(torch.float32)
    uv = torch.zeros(1, 2, 3, 2)
    tex = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ValueError, match=r"vertices must be a float \(B, V, 3\)"):
        render_textured(v[0], f, uv, tex, 8)
    with pytest.raises(ValueError, match=r"faces must be an integer \(F, 3\)"):
        render_textured(v, f.float(), uv, tex, 8)
    with pytest.raises(ValueError, match="faces index vertices 0..3"):
        render_textured(v, f + 1, uv, tex, 8)
    with pytest.raises(ValueError, match=r"face_uvs must be \(1, 2, 3, 2\)"):
        render_textured(v, f, uv[..., :1], tex, 8)
    with pytest.raises(ValueError, match=r"attributes must be"):
        rasterize(v, f, torch.zeros(2, 2, 3, 1), 8)
    with pytest.raises(ValueError, match="size must be a positive int"):
        render_textured(v, f, uv, tex, 0)
    with pytest.raises(ValueError, match=r"texture must be \(1, C, Ht, Wt\)"):
        render_textured(v, f, uv, tex[0], 8)
    with pytest.raises(ValueError, match=r"mask must be \(1, 1, H, W\)"):
        soft_alpha(v, f, torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match=r"uv must be \(B, 2, H, W\)"):
        sample_texture(tex, torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"rotation must be \(1, 4\)"):
        transform_vertices(v, torch.ones(1, 1), torch.zeros(1, 2), torch.ones(1, 3))
    with pytest.raises(ValueError, match=r"translation must be"):
        transform_vertices(v, torch.ones(1, 1), torch.zeros(1, 4), torch.ones(1, 4))
    with pytest.raises(ValueError, match=r"image must be"):
        render_uv_space(torch.zeros(1, 4, 2), f, torch.zeros(1, 2, 3, 2), torch.zeros(3, 8, 8), 8)
