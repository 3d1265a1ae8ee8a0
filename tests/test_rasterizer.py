"""The torch z-buffer rasteriser against brute-force per-pixel references on tiny cases."""

import math

import numpy as np
import pytest
import torch

from lmnet import camera as r2n2
from lmnet.render import (Camera, Lights, composite, render_mesh, render_mesh_camera, render_points,
                          render_points_r2n2, three_quarter_view, turntable)
from lmnet.render.zbuffer import iter_fragments

FLAT = Lights(ambient=1.0, key=0.0, fill=0.0)  # unshaded: colours come out exactly


def _front_camera(focal=2.0, distance=2.0):
    """Looks down -z from (0, 0, distance); world x → image right, world y → image up."""
    return Camera(torch.eye(3).unsqueeze(0), torch.tensor([[0.0, 0.0, -distance]]), torch.tensor([focal]))


def _square(half, z=0.0):
    v = torch.tensor([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])
    return v, torch.tensor([[0, 1, 2], [0, 2, 3]])


# ----------------------------------------------------------------------------- references
def _brute_mesh(vertices, faces, cam, size, colors):
    """Per-pixel loop over all triangles: nearest (perspective-correct depth) at each pixel centre."""
    v = vertices.double()
    xc = (v @ cam.R[0].double().T + cam.t[0].double()).numpy()
    d = -xc[:, 2]
    f = float(cam.focal[0]) * size / 2
    u = size / 2 + f * xc[:, 0] / d
    w = size / 2 - f * xc[:, 1] / d
    img = np.zeros((size, size, 4))
    for i in range(size):
        for j in range(size):
            p = np.array([j + 0.5, i + 0.5])
            best, best_f = np.inf, -1
            for fi, (a, b, c) in enumerate(faces.tolist()):
                A, B, C = (np.array([u[k], w[k]]) for k in (a, b, c))
                area = _cross2(B - A, C - A)
                if abs(area) < 1e-12:
                    continue
                l0, l1, l2 = _cross2(B - p, C - p) / area, _cross2(C - p, A - p) / area, _cross2(A - p, B - p) / area
                if min(l0, l1, l2) < -1e-9:
                    continue
                depth = 1.0 / (l0 / d[a] + l1 / d[b] + l2 / d[c])
                if depth < best:
                    best, best_f = depth, fi
            if best_f >= 0:
                img[i, j, :3] = colors[best_f]
                img[i, j, 3] = 1
    return np.round(img * 255).astype(np.uint8)


def _cross2(a, b):
    return a[0] * b[1] - a[1] * b[0]


def _brute_points(points, cam, size, colors, radius):
    """Per-pixel loop over all points: the nearest sphere front surface under each pixel centre."""
    xc = (points.double() @ cam.R[0].double().T + cam.t[0].double()).numpy()
    f = float(cam.focal[0]) * size / 2
    img = np.zeros((size, size, 4))
    for i in range(size):
        for j in range(size):
            best, best_k = np.inf, -1
            for k, (x, y, z) in enumerate(xc):
                d = -z
                du = (j + 0.5) - (size / 2 + f * x / d)
                dv = (i + 0.5) - (size / 2 - f * y / d)
                if du * du + dv * dv > (f * radius / d) ** 2:
                    continue
                s2 = (du * d / f) ** 2 + (dv * d / f) ** 2
                depth = d - math.sqrt(max(radius ** 2 - s2, 0.0))
                if depth < best:
                    best, best_k = depth, k
            if best_k >= 0:
                img[i, j, :3] = colors[best_k]
                img[i, j, 3] = 1
    return np.round(img * 255).astype(np.uint8)


# ----------------------------------------------------------------------------- triangles
def test_square_covers_expected_pixels_and_background_is_transparent():
    v, f = _square(0.5)  # focal 2 (NDC), distance 2, 16 px → the square spans columns/rows [4, 12)
    img = render_mesh_camera(v, f, _front_camera(), image_size=16, supersample=1, lights=FLAT)[0].numpy()
    expected = np.zeros((16, 16), bool)
    expected[4:12, 4:12] = True
    assert np.array_equal(img[..., 3] > 0, expected)
    assert (img[..., 3][expected] == 255).all() and (img[~expected] == 0).all()
    assert (img[expected][:, :3] == round(0.72 * 255)).all()


def test_half_covered_pixels_get_half_alpha():
    v, f = _square(0.5625)  # edges at u = 3.5 and 12.5: border pixels half covered
    img = render_mesh_camera(v, f, _front_camera(), image_size=16, supersample=4, lights=FLAT)[0].numpy()
    a = img[..., 3]
    assert (a[4:12, 4:12] == 255).all()
    assert (a[4:12, 3] == 128).all() and (a[4:12, 12] == 128).all()  # round(0.5 * 255)
    assert a[3, 3] == 64  # a quarter-covered corner
    assert (a[:, :3] == 0).all() and (a[:2] == 0).all()
    assert (img[a > 0][:, :3] == round(0.72 * 255)).all()  # straight (un-premultiplied) colour


def test_per_corner_colours_are_interpolated():
    """(F, 3, 3) colours: equal corners give exactly the per-face image; a left-to-right ramp
    (black at x = -0.5, white at x = +0.5) comes out as a ramp across the square."""
    v, f = _square(0.5)
    face = torch.tensor([[0.2, 0.4, 0.6], [0.9, 0.1, 0.3]])
    flat = render_mesh_camera(v, f, _front_camera(), image_size=16, supersample=1, lights=FLAT, color=face)
    corners = render_mesh_camera(v, f, _front_camera(), image_size=16, supersample=1, lights=FLAT,
                                 color=face.unsqueeze(1).expand(2, 3, 3))
    assert (flat.int() - corners.int()).abs().max() <= 1  # rounding of the weights only
    ramp = ((v[:, 0] + 0.5)[f].unsqueeze(-1)).expand(2, 3, 3)
    img = render_mesh_camera(v, f, _front_camera(), image_size=16, supersample=1, lights=FLAT,
                             color=ramp)[0].numpy()
    row = img[8, 4:12, 0].astype(float)
    expected = (np.arange(4, 12) + 0.5 - 4) / 8 * 255  # pixel centres across the 8-px square
    assert np.abs(row - expected).max() <= 1.0
    with pytest.raises(ValueError, match="per-corner"):
        render_mesh_camera(v, f, _front_camera(), image_size=8, color=torch.zeros(3, 3, 3))


def test_depth_test_picks_the_nearest_triangle_whatever_the_order():
    near_v, near_f = _square(0.3, z=0.2)
    far_v, far_f = _square(0.5, z=-0.2)
    colors = torch.tensor([[1.0, 0, 0]] * 2 + [[0, 1.0, 0]] * 2)
    for order in ((near_v, far_v), (far_v, near_v)):
        v = torch.cat(order)
        f = torch.cat([near_f, near_f + 4])
        col = colors if order[0] is near_v else colors.flip(0)
        img = render_mesh_camera(v, f, _front_camera(), 16, color=col, supersample=1, lights=FLAT)[0]
        centre, ring = img[8, 8].tolist(), img[8, 4].tolist()
        assert centre == [255, 0, 0, 255] and ring == [0, 255, 0, 255]


@pytest.mark.parametrize("seed", [0, 1])
def test_mesh_matches_brute_force_reference(seed):
    g = torch.Generator().manual_seed(seed)
    v = (torch.rand(15, 3, generator=g) - 0.5) * 1.2
    f = torch.arange(15).view(5, 3)
    colors = torch.rand(5, 3, generator=g)
    cam = Camera.r2n2(37.0 + 90 * seed, 25.0, 0.8)
    ours = render_mesh_camera(v, f, cam, image_size=24, color=colors, supersample=1, lights=FLAT)[0].numpy()
    ref = _brute_mesh(v, f, cam, 24, colors.double().numpy())
    assert (ref[..., 3] > 0).sum() > 50
    assert np.array_equal(ours, ref)


def test_render_mesh_batch_equals_loop_and_chunking_is_invisible():
    g = torch.Generator().manual_seed(3)
    v = (torch.rand(60, 3, generator=g) - 0.5) * 0.8
    f = torch.randint(0, 60, (40, 3), generator=g)
    az, el, dr = torch.tensor([0.0, 100.0, 250.0]), torch.tensor([25.0, 27.0, 30.0]), torch.tensor([0.7, 0.8, 0.9])
    batch = render_mesh(v, f, az, el, dr, image_size=40)
    loop = torch.cat([render_mesh(v, f, az[i:i + 1], el[i:i + 1], dr[i:i + 1], image_size=40) for i in range(3)])
    assert batch.shape == (3, 40, 40, 4) and batch.dtype == torch.uint8
    assert (batch != loop).any(-1).float().mean() < 1e-3
    tiny = render_mesh(v, f, az, el, dr, image_size=40, max_fragments=64)
    assert torch.equal(tiny, batch)


def test_render_mesh_r2n2_silhouette_matches_projected_vertices():
    v, f = _square(0.3)
    img = render_mesh(v, f, 45.0, 25.0, 0.8, image_size=137)[0]
    uv, _ = r2n2.project_points(v, 45.0, 25.0, 0.8)
    for (u, w) in uv.tolist():  # each corner pixel of the projected quad is (partly) covered
        i, j = int(w), int(u)
        assert img[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2, 3].max() > 0
    assert img[0, 0, 3] == 0 and img[-1, -1, 3] == 0
    assert img[..., 3].float().mean() > 1


def test_iter_fragments_cover_each_box_once():
    x0 = torch.tensor([0, 5, 2]); y0 = torch.tensor([1, 0, 3]); w = torch.tensor([3, 1, 7]); h = torch.tensor([2, 5, 4])
    seen = {}
    for idx, dx, dy, valid in iter_fragments(x0, y0, w, h, max_fragments=8):
        for m, r, c in zip(*torch.nonzero(valid, as_tuple=True)):
            key = (int(idx[m]), int(y0[idx[m]] + dy[0, r, 0]), int(x0[idx[m]] + dx[0, 0, c]))
            seen[key] = seen.get(key, 0) + 1
    expected = {(k, y0[k].item() + r, x0[k].item() + c) for k in range(3)
                for r in range(h[k]) for c in range(w[k])}
    assert set(seen) == expected and set(seen.values()) == {1}


# ----------------------------------------------------------------------------- cameras
def test_camera_r2n2_projects_like_lmnet_camera():
    pts = torch.rand(2, 50, 3) - 0.5
    az, el, dr = torch.tensor([10.0, 200.0]), torch.tensor([25.0, 30.0]), torch.tensor([0.7, 0.9])
    uv, depth = Camera.r2n2(az, el, dr).project(pts, 137)
    uv_ref, depth_ref = r2n2.project_points(pts, az, el, dr)
    assert torch.allclose(uv, uv_ref, atol=1e-4) and torch.allclose(depth, depth_ref, atol=1e-5)


def test_look_at_and_presets():
    cam = Camera.look_at([[0.0, 0.0, 2.0]])
    uv, d = cam.project(torch.tensor([[[0.0, 0.0, 0.0], [-0.3, 0.0, 0.0]]]), 100)
    assert torch.allclose(uv[0, 0], torch.tensor([50.0, 50.0])) and abs(float(d[0, 0]) - 2.0) < 1e-6
    assert uv[0, 1, 1] < 50  # -x is up in the 3D-LMNet frame: above the centre in the image
    assert torch.allclose(cam.R[0] @ cam.R[0].T, torch.eye(3), atol=1e-6)
    assert len(three_quarter_view(4)) == 4 and len(turntable(6)) == 6
    tt = turntable(4)
    centres = -(tt.R.transpose(1, 2) @ tt.t.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(centres.norm(dim=-1), torch.full((4,), 1.6), atol=1e-5)
    assert (centres[:, 0] < 0).all()  # all above the object


# ----------------------------------------------------------------------------- splats
def test_point_splats_at_projected_location():
    p = torch.tensor([[[0.1, -0.2, 0.15]]])
    az, el, dr = torch.tensor([60.0]), torch.tensor([28.0]), torch.tensor([0.75])
    img = render_points_r2n2(p, az, el, dr, image_size=137, radius=0.02, supersample=4)[0].float()
    a = img[..., 3]
    ii, jj = torch.meshgrid(torch.arange(137.0) + 0.5, torch.arange(137.0) + 0.5, indexing="ij")
    centroid = torch.stack([(a * jj).sum() / a.sum(), (a * ii).sum() / a.sum()])
    uv, depth = r2n2.project_points(p[0], az, el, dr)
    assert torch.allclose(centroid, uv[0], atol=0.05)
    r_px = float(r2n2.focal_pixels(25.0)) * 0.02 / float(depth[0])
    assert abs(float(a.sum()) / 255 - math.pi * r_px ** 2) < 0.05 * math.pi * r_px ** 2
    assert img[0, 0, 3] == 0


def test_points_match_brute_force_reference():
    g = torch.Generator().manual_seed(0)
    pts = (torch.rand(1, 25, 3, generator=g) - 0.5) * 0.6
    colors = torch.rand(1, 25, 3, generator=g)
    cam = three_quarter_view()
    ours = render_points(pts, cam, image_size=32, colors=colors, radius=0.05, supersample=1, shading=False)
    ref = _brute_points(pts[0], cam, 32, colors[0].double().numpy(), 0.05)
    assert (ref[..., 3] > 0).sum() > 40
    assert np.array_equal(ours[0].numpy(), ref)


def test_points_depth_test_and_batch_equals_loop():
    cam = _front_camera()
    near_far = torch.tensor([[[0.0, 0.0, 0.3], [0.02, 0.0, -0.3]]])
    img = render_points(near_far, cam, 32, colors=torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]),
                        radius=0.1, supersample=1, shading=False)
    assert img[0, 16, 16].tolist() == [255, 0, 0, 255]
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(3, 200, 3, generator=g) - 0.5
    cams = turntable(3)
    batch = render_points(pts, cams, 48, radius=0.02)
    loop = torch.cat([render_points(pts[i:i + 1], Camera(cams.R[i:i + 1], cams.t[i:i + 1], cams.focal[i:i + 1]),
                                    48, radius=0.02) for i in range(3)])
    assert (batch != loop).any(-1).float().mean() < 1e-3
    one_cam = render_points(pts, three_quarter_view(), 48, radius=0.02, max_fragments=50)
    assert torch.equal(one_cam, render_points(pts, three_quarter_view(3), 48, radius=0.02))


def test_shaded_spheres_lit_from_the_upper_left_and_composite():
    img = render_points(torch.zeros(1, 1, 3), _front_camera(), 64, radius=0.8, colors=(1.0, 1.0, 1.0))[0]
    assert img[20, 22, 0] > img[44, 42, 0]  # key light upper-left
    flat = composite(img.unsqueeze(0))[0]
    assert flat.shape == (64, 64, 3) and flat[0, 0].tolist() == [255, 255, 255]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="vertices"):
        render_mesh_camera(torch.zeros(3, 2), torch.zeros(1, 3, dtype=torch.long), _front_camera())
    with pytest.raises(ValueError, match="colors"):
        render_points(torch.zeros(1, 4, 3), _front_camera(), 8, colors=torch.zeros(5, 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(3)
    v = (torch.rand(60, 3, generator=g) - 0.5) * 0.8
    f = torch.randint(0, 60, (40, 3), generator=g)
    cpu = render_mesh(v, f, torch.tensor([30.0]), torch.tensor([25.0]), torch.tensor([0.8]), image_size=40)
    gpu = render_mesh(v.cuda(), f.cuda(), torch.tensor([30.0]), torch.tensor([25.0]), torch.tensor([0.8]),
                      image_size=40)
    assert gpu.device.type == "cuda"
    assert (cpu != gpu.cpu()).any(-1).float().mean() < 5e-3
    pts = torch.rand(2, 300, 3, generator=g) - 0.5
    a = render_points(pts, turntable(2), 64)
    b = render_points(pts.cuda(), turntable(2), 64)
    assert (a != b.cpu()).any(-1).float().mean() < 5e-3
