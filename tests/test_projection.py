"""Differentiable silhouette projection: splatting against a brute-force loop, gradients, σ, geometry."""

import math

import pytest
import torch

from lmnet import camera, projection


def _brute_grid(points, az, el, dr, size, depth_bins):
    uv, depth = camera.project_points(points, az, el, dr, 25.0, crop_offset=camera.CROP_OFFSET)
    d = dr * camera.R2N2_DISTANCE_SCALE
    grid = torch.zeros(depth_bins, size, size, dtype=points.dtype)
    for (u, v), z in zip(uv[0].tolist(), depth[0].tolist()):
        c = [(z - (d - 0.5)) * depth_bins - 0.5, v * size / 128 - 0.5, u * size / 128 - 0.5]
        b = [math.floor(x) for x in c]
        for dz in (0, 1):
            for dy in (0, 1):
                for dx in (0, 1):
                    i, j, k = b[0] + dz, b[1] + dy, b[2] + dx
                    if 0 <= i < depth_bins and 0 <= j < size and 0 <= k < size:
                        w = 1.0
                        for off, cc, bb in ((dz, c[0], b[0]), (dy, c[1], b[1]), (dx, c[2], b[2])):
                            f = cc - bb
                            w *= f if off else 1 - f
                        grid[i, j, k] += w
    return grid


def test_splatting_matches_brute_force_and_conserves_mass():
    torch.manual_seed(0)
    pts = (torch.rand(1, 40, 3, dtype=torch.float64) - 0.5) * 0.6
    grid = projection.points_to_grid(pts, 40.0, 25.0, 0.8, size=16, depth_bins=12)
    ref = _brute_grid(pts, 40.0, 25.0, 0.8, 16, 12)
    assert torch.allclose(grid[0], ref, atol=1e-10)
    assert math.isclose(grid.sum().item(), 40.0, rel_tol=1e-9)  # all points inside the frustum


def test_gradcheck_points():
    torch.manual_seed(1)
    pts = ((torch.rand(1, 6, 3, dtype=torch.float64) - 0.5) * 0.4).requires_grad_(True)

    def f(p):
        return projection.soft_silhouette(p, 30.0, 25.0, 0.8, size=8, depth_bins=8, sigma=0.8)

    assert torch.autograd.gradcheck(f, (pts,), eps=1e-6, atol=1e-5)


def _sphere(n=4096, r=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(1, n, 3, generator=g)
    return r * p / p.norm(dim=-1, keepdim=True)


def test_sphere_silhouette_is_a_disc_of_the_projected_radius():
    # at the end of annealing (sigma 0.2 voxels) the 2048-point disc has the analytic area; a larger
    # sigma dilates it by about sigma voxels, which is what annealing is for
    pts = _sphere(n=2048)
    sil = projection.soft_silhouette(pts, 0.0, 25.0, 0.8, size=64, sigma=0.2)[0]
    d = 0.8 * camera.R2N2_DISTANCE_SCALE
    f = camera.focal_pixels(25.0).item() * 64 / 128
    r_px = f * 0.3 / math.sqrt(d * d - 0.09)
    area = (sil > 0.5).sum().item()
    assert abs(area - math.pi * r_px**2) / (math.pi * r_px**2) < 0.05
    ys, xs = torch.nonzero(sil > 0.5, as_tuple=True)
    assert abs(xs.float().mean().item() + 0.5 - 32) < 1 and abs(ys.float().mean().item() + 0.5 - 32) < 1


def test_smaller_sigma_sharpens():
    pts = _sphere(n=2048)
    soft = projection.soft_silhouette(pts, 10.0, 25.0, 0.8, sigma=3.0)
    sharp = projection.soft_silhouette(pts, 10.0, 25.0, 0.8, sigma=0.5)
    # fewer pixels in the uncertain band and a smaller footprint when sigma shrinks
    band = lambda s: ((s > 0.05) & (s < 0.95)).sum().item()
    assert (sharp > 0.05).sum() < (soft > 0.05).sum()
    assert band(sharp) < band(soft)


def test_ray_termination_sums_to_one_and_to_silhouette():
    pts = _sphere(n=512)
    p = projection.ray_termination(pts, 0.0, 25.0, 0.8, size=32, depth_bins=32, sigma=1.0)
    assert torch.allclose(p.sum(1), torch.ones(1, 32, 32), atol=1e-5)
    sil = projection.soft_silhouette(pts, 0.0, 25.0, 0.8, size=32, depth_bins=32, sigma=1.0)
    assert torch.allclose(p[:, :-1].sum(1), sil, atol=1e-5)


def test_batched_views_equal_single_views():
    pts = _sphere(n=256).repeat(3, 1, 1) + torch.tensor([0.05, 0.0, 0.0])
    az, el, dr = torch.tensor([0.0, 120.0, 250.0]), torch.tensor([25.0, 27.0, 30.0]), torch.tensor([0.7, 0.8, 0.9])
    batch = projection.soft_silhouette(pts, az, el, dr, size=32, sigma=1.0)
    for i in range(3):
        one = projection.soft_silhouette(pts[i:i + 1], az[i:i + 1], el[i:i + 1], dr[i:i + 1], size=32, sigma=1.0)
        assert torch.allclose(batch[i], one[0], atol=1e-6)


def test_loss_iou_and_mask_downsampling():
    a = torch.zeros(2, 8, 8)
    a[:, 2:6, 2:6] = 1
    b = torch.zeros(2, 8, 8)
    b[:, 2:6, 2:4] = 1
    assert torch.allclose(projection.silhouette_iou(a, b), torch.tensor([0.5, 0.5]))
    assert torch.allclose(projection.silhouette_loss(a, b, "none"), torch.full((2,), 8 / 64))
    m = torch.zeros(1, 1, 128, 128)
    m[..., :64, :] = 1
    small = projection.mask_to_grid_resolution(m, 64)
    assert small.shape == (1, 64, 64) and small[0, :32].min() == 1 and small[0, 32:].max() == 0
    with pytest.raises(ValueError, match="differ"):
        projection.silhouette_loss(a, b[:, :4])
    assert projection.annealed_sigma(0, 10) == 3.0 and math.isclose(projection.annealed_sigma(9, 10), 0.2)
