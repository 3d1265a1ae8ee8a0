"""DPC-style pose metrics (lmnet.losses.pose): the aligned per-view angular errors against a brute-force
search over a grid of global rotations, exact recovery of a known global rotation, the accuracy and
median under noise of known size, symmetric objects, and the view-angle helper's convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmnet.camera import r2n2_extrinsics
from lmnet.losses.pose import (aligned_pose_errors, axis_angle_matrix, rotation_about_up, rotation_angle_deg,
                               rotations_from_view_angles, symmetry_group, view_errors)


def _random_axes(rng, n):
    a = rng.normal(size=(n, 3))
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _true_poses(rng, n):
    return rotations_from_view_angles(rng.uniform(0, 360, n), rng.uniform(0, 60, n))


def _perturb(rotations, angles_deg, rng):
    """Each rotation times a rotation of the given angle about a random axis (object side)."""
    return np.stack([r @ axis_angle_matrix(ax, a) for r, ax, a in zip(rotations, _random_axes(rng, len(angles_deg)),
                                                                     angles_deg)])


def _euler_grid(step_deg: float) -> np.ndarray:
    """ZYZ Euler angles on a grid: every rotation is within ~step of one of them."""
    a = np.deg2rad(np.arange(0, 360, step_deg))
    b = np.deg2rad(np.arange(0, 180 + 1e-9, step_deg))
    A, B, C = (x.ravel() for x in np.meshgrid(a, b, a, indexing="ij"))

    def rz(t):
        c, s, z, o = np.cos(t), np.sin(t), np.zeros_like(t), np.ones_like(t)
        return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)

    def ry(t):
        c, s, z, o = np.cos(t), np.sin(t), np.zeros_like(t), np.ones_like(t)
        return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)

    return rz(A) @ ry(B) @ rz(C)


def _brute_force(pred, true, symmetries, step_deg=5.0):
    """The naive reference: the grid rotation with the smallest summed per-view error."""
    rel = np.stack([[p.T @ t @ s for s in symmetries] for p, t in zip(pred, true)])
    best, best_cost = None, np.inf
    grid = _euler_grid(step_deg)
    for chunk in np.array_split(grid, 40):
        cost = view_errors(chunk, rel)[0].sum(-1)
        i = int(cost.argmin())
        if cost[i] < best_cost:
            best, best_cost = chunk[i], float(cost[i])
    return best, best_cost


def test_view_angles_follow_the_camera_and_turn_about_up():
    az, el = np.array([0.0, 45.0, 200.0]), np.array([10.0, 30.0, 55.0])
    R = rotations_from_view_angles(az, el)
    want = r2n2_extrinsics(torch.tensor(az), torch.tensor(el), 1.0)[0].numpy()
    assert np.allclose(R, want) and np.allclose(R @ R.transpose(0, 2, 1), np.eye(3)) and np.allclose(np.linalg.det(R), 1)
    # a camera moved by +θ in azimuth sees the object turned by θ about the up axis (-x)
    assert np.allclose(rotations_from_view_angles(az + 70.0, el), R @ rotation_about_up(70.0))
    assert np.allclose(rotation_about_up(90.0) @ np.array([-1.0, 0, 0]), [-1.0, 0, 0])
    assert len(symmetry_group("up90")) == 4 and np.allclose(symmetry_group("none")[0], np.eye(3))
    with pytest.raises(ValueError, match="up180"):
        symmetry_group("mirror")


@pytest.mark.parametrize("angle", [0.0, 77.0, 180.0])
def test_known_global_rotation_gives_zero_error(angle):
    rng = np.random.default_rng(1)
    true = _true_poses(rng, 50)
    g0 = axis_angle_matrix([0.3, 1.0, -0.2], angle)
    res = aligned_pose_errors(true @ g0.T, true)  # pred_i G0 = true_i
    assert res.errors_deg.max() < 1e-4 and res.accuracy_30 == 1.0 and res.median_deg < 1e-4
    assert rotation_angle_deg(res.alignment, g0) < 1e-4


def test_agrees_with_brute_force_grid_search():
    rng = np.random.default_rng(2)
    true = _true_poses(rng, 12)
    g0 = axis_angle_matrix([1.0, -0.5, 0.4], 130.0)
    noise = np.r_[rng.uniform(0, 20, 9), 150.0, 170.0, 120.0]  # three outliers
    pred = _perturb(true @ g0.T, noise, rng)
    res = aligned_pose_errors(pred, true)
    g_ref, cost_ref = _brute_force(pred, true, [np.eye(3)])
    assert res.errors_deg.sum() <= cost_ref + 1e-6  # never worse than the grid's best
    assert rotation_angle_deg(res.alignment, g_ref) < 8.0  # and the same minimum, to the grid's resolution
    assert cost_ref - res.errors_deg.sum() < 12 * 5.0


def test_agrees_with_brute_force_with_symmetries():
    rng = np.random.default_rng(3)
    true = _true_poses(rng, 10)
    sym = symmetry_group("up180")
    g0 = axis_angle_matrix([0.2, 0.1, 1.0], 40.0)
    flips = [sym[i % 2] for i in range(10)]
    pred = _perturb(np.stack([t @ s @ g0.T for t, s in zip(true, flips)]), rng.uniform(0, 15, 10), rng)
    res = aligned_pose_errors(pred, true, sym)
    _, cost_ref = _brute_force(pred, true, sym)
    assert res.errors_deg.sum() <= cost_ref + 1e-6


def test_noise_of_known_size_gives_the_expected_accuracy_and_median():
    rng = np.random.default_rng(4)
    n = 2000
    true = _true_poses(rng, n)
    g0 = axis_angle_matrix([0.0, 1.0, 1.0], 60.0)
    angles = rng.permutation(np.linspace(0.0, 60.0, n))  # half the views within 30°, median 30°
    res = aligned_pose_errors(_perturb(true @ g0.T, angles, rng), true)
    assert abs(res.accuracy_30 - 0.5) < 0.03 and abs(res.median_deg - 30.0) < 1.5
    assert rotation_angle_deg(res.alignment, g0) < 2.0
    small = aligned_pose_errors(_perturb(true[:200] @ g0.T, rng.uniform(0, 10, 200), rng), true[:200])
    assert small.accuracy_30 == 1.0 and small.median_deg < 10.0


def test_outliers_do_not_move_the_alignment():
    """30 % of the views flipped by 180°: the L1 alignment follows the other 70 % exactly."""
    rng = np.random.default_rng(5)
    true = _true_poses(rng, 100)
    pred = true.copy()
    flip = axis_angle_matrix([0.0, 1.0, 0.0], 180.0)
    pred[:30] = pred[:30] @ flip
    res = aligned_pose_errors(pred, true)
    assert res.accuracy_30 == pytest.approx(0.7) and np.all(res.errors_deg[30:] < 1e-4)
    assert np.allclose(res.errors_deg[:30], 180.0, atol=1e-3)


def test_symmetric_object_takes_the_best_symmetry_per_view():
    rng = np.random.default_rng(6)
    true = _true_poses(rng, 40)
    sym = symmetry_group("up180")
    g0 = axis_angle_matrix([1.0, 2.0, 0.5], 25.0)
    flipped = np.arange(40) % 3 == 0  # front / back confused in a third of the views
    pred = np.stack([t @ (sym[1] if f else np.eye(3)) @ g0.T for t, f in zip(true, flipped)])
    plain = aligned_pose_errors(pred, true)
    assert plain.accuracy_30 == pytest.approx(1 - flipped.mean())
    res = aligned_pose_errors(pred, true, sym)
    assert res.errors_deg.max() < 1e-4 and res.accuracy_30 == 1.0
    # the alignment is defined up to the symmetry (G0 or G0 S fit equally): the flipped views are
    # exactly those that took the other symmetry than the rest
    assert np.array_equal(res.symmetry, flipped.astype(int)) or np.array_equal(res.symmetry, 1 - flipped.astype(int))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="pred and true"):
        aligned_pose_errors(np.zeros((3, 3, 3)), np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="pred and true"):
        aligned_pose_errors(np.zeros((0, 3, 3)), np.zeros((0, 3, 3)))
