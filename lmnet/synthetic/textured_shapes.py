"""Shapes of the synthetic birds and cars: the UV-sphere template (:mod:`lmnet.uvmesh`) deformed by
displacement maps ``(3, 32, 32)``, and the template vertices that serve as keypoints.

Object frame (both datasets): **y up, the front towards −z, the animal's / car's right towards +x**;
the mirror plane is x = 0, as the template's.

A displacement map is built from a 3D offset field ``f(p)`` on the unit sphere: texel ``(r, c)`` of a
32×32 map is the sphere point at ``u = (c + 1/2)/32`` (the symmetric lookup reads column ``W·u − 1/2``)
and ``v = 1 − r/31`` (rows are sampled with ``align_corners=True``), i.e. polar angle ``θ = π(1 − v)``
and azimuth ``φ = 2π(3/4 − u)`` (:mod:`lmnet.uvmesh.template`); its three channels are ``f``
expressed in that point's frame ``(n, t, b)``. ``vertex_positions`` then samples the map back at the
vertices, so a vertex moves by (the bilinear interpolation of) ``f`` at its own position.

An item's map is ``mean + Σ_i c_i · basis_i`` (:func:`item_displacement`): the dataset's mean shape
(an elongated body with a head and a tail for birds, a box with a cabin for cars) and six basis maps
(stretches along x, y and z, three mirror-symmetric radial bumps at seeded centres) with coefficients
small enough that the surface stays star-shaped around its centre (no self-intersection).
"""

from __future__ import annotations

import numpy as np
import torch

from lmnet.uvmesh import UVSphereTemplate, adjust_poles

__all__ = ["RINGS", "KEYPOINT_DIRECTIONS", "keypoint_vertices", "texel_points", "field_to_map",
           "mean_displacement", "displacement_basis", "item_displacement"]

#: template rings per dataset
RINGS = {"cub": 16, "p3d": 31}
MAP_SIZE = 32
#: per keypoint (in the dataset's keypoint order): ``("plane", direction)`` for a keypoint on the
#: mirror plane, ``("right", direction)`` for the right one of a pair, ``("left", j)`` for the mirror
#: of keypoint ``j``. Directions are on the unit sphere (the undeformed template), object frame.
KEYPOINT_DIRECTIONS = {
    # back, beak, belly, breast, crown, forehead, left eye, left leg, left wing, nape,
    # right eye, right leg, right wing, tail, throat (CUB's order)
    "cub": [("plane", (0, 0.9, 0.44)), ("plane", (0, 0.35, -0.94)), ("plane", (0, -1, 0.2)),
            ("plane", (0, -0.5, -0.87)), ("plane", (0, 0.8, -0.6)), ("plane", (0, 0.6, -0.8)),
            ("left", 10), ("left", 11), ("left", 12), ("plane", (0, 0.98, -0.2)),
            ("right", (0.45, 0.55, -0.7)), ("right", (0.35, -0.9, 0.1)), ("right", (0.95, 0.2, 0.25)),
            ("plane", (0, 0.1, 1)), ("plane", (0, 0, -1))],
    # left_back_trunk, left_back_wheel, left_front_light, left_front_wheel, right_back_trunk,
    # right_back_wheel, right_front_light, right_front_wheel, upper_left_rearwindow,
    # upper_left_windshield, upper_right_rearwindow, upper_right_windshield (Pascal3D+'s order)
    "p3d": [("left", 4), ("left", 5), ("left", 6), ("left", 7),
            ("right", (0.55, 0.35, 0.75)), ("right", (0.6, -0.6, 0.55)), ("right", (0.55, 0.1, -0.85)),
            ("right", (0.6, -0.6, -0.55)), ("left", 10), ("left", 11),
            ("right", (0.45, 0.8, 0.4)), ("right", (0.45, 0.8, -0.4))],
}


def keypoint_vertices(template: UVSphereTemplate, fmt: str) -> np.ndarray:
    """``(K,)`` template vertex indices of the keypoints of ``fmt`` ("cub": 15, "p3d": 12): the vertex
    nearest each direction, on the plane x = 0 for a plane keypoint, with x > 0 for a right one, and
    the mirror vertex of its partner for a left one. So the keypoint mean shape
    ``S = template.vertices[ids].T`` satisfies ``S[:, perm] == diag(−1, 1, 1) · S`` exactly."""
    verts = template.vertices.astype(np.float64)
    ids = np.full(len(KEYPOINT_DIRECTIONS[fmt]), -1, np.int64)
    for j, (kind, value) in enumerate(KEYPOINT_DIRECTIONS[fmt]):
        if kind == "left":
            continue
        pool = template.plane_indices if kind == "plane" else np.nonzero(verts[:, 0] > 1e-6)[0]
        d = np.asarray(value, np.float64) / np.linalg.norm(value)
        ids[j] = pool[np.argmax(verts[pool] @ d)]
    for j, (kind, value) in enumerate(KEYPOINT_DIRECTIONS[fmt]):
        if kind == "left":
            ids[j] = template.mirror[ids[value]]
    return ids


def texel_points(height: int = MAP_SIZE, width: int = MAP_SIZE, columns=None):
    """Sphere points and frames of a map's texels (module docstring): ``(points (H, W', 3),
    frames (H, W', 3, 3) rows n, t, b)``; ``columns`` picks texel columns (default all ``width``)."""
    cols = np.arange(width) if columns is None else np.asarray(columns)
    u = (cols + 0.5) / width
    v = 1.0 - np.arange(height) / (height - 1)
    theta, phi = np.pi * (1.0 - v)[:, None], 2 * np.pi * (0.75 - u)[None, :]
    n = np.stack(np.broadcast_arrays(np.sin(theta) * np.sin(phi), np.cos(theta), -np.sin(theta) * np.cos(phi)), -1)
    t = np.cross(n, np.array([0.0, 1.0, 0.0]))
    norm = np.linalg.norm(t, axis=-1, keepdims=True)
    t = np.where(norm > 1e-9, t / np.maximum(norm, 1e-12), 0.0)
    b = np.cross(n, t)
    return n, np.stack([n, t, b], -2)


def field_to_map(offsets: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Offsets ``(H, W, 3)`` at the texels → displacement map ``(3, H, W)`` float64 (channels n, t, b),
    the pole rows averaged (:func:`lmnet.uvmesh.adjust_poles`: a pole is one vertex)."""
    local = np.einsum("hwij,hwj->ihw", frames, offsets)
    return adjust_poles(torch.from_numpy(local[None])).numpy()[0]


def _bump(p: np.ndarray, centre, width: float) -> np.ndarray:
    """Mirror-symmetric Gaussian bump ``(…,)`` around ``centre`` and its x-mirror."""
    c = np.asarray(centre, np.float64)
    c = c / np.linalg.norm(c)
    cm = c * np.array([-1.0, 1.0, 1.0])
    return (np.exp(-((p - c) ** 2).sum(-1) / width ** 2) + np.exp(-((p - cm) ** 2).sum(-1) / width ** 2)) / (
        1.0 + float(np.exp(-((c - cm) ** 2).sum() / width ** 2)))


def _mean_field(p: np.ndarray, fmt: str) -> np.ndarray:
    """The mean shape's offsets ``(…, 3)`` at sphere points ``p (…, 3)``."""
    if fmt == "cub":
        body = p * np.array([0.55, 0.55, 1.0])
        radial = (0.45 * _bump(p, (0, 0.55, -0.85), 0.45) + 0.25 * _bump(p, (0, 0.35, -0.94), 0.2)
                  + 0.35 * _bump(p, (0, 0.15, 1.0), 0.35) - 0.1 * _bump(p, (0, -1, 0), 0.6))
    else:
        boxy = p / (np.abs(p) ** 4).sum(-1, keepdims=True) ** 0.25
        body = boxy * np.array([0.7, 0.42, 1.3]) - np.array([0.0, 0.1, 0.0])
        radial = 0.28 * _bump(p, (0, 1, 0.15), 0.5) - 0.08 * _bump(p, (0, -1, 0), 0.5)
    return body + radial[..., None] * p - p


def mean_displacement(fmt: str) -> np.ndarray:
    """The dataset's mean displacement map ``(3, 32, 32)`` (module docstring)."""
    points, frames = texel_points()
    return field_to_map(_mean_field(points, fmt), frames)


def displacement_basis(fmt: str, seed: int) -> np.ndarray:
    """Six basis maps ``(6, 3, 32, 32)``: stretches along x, y, z and three radial bumps at centres
    drawn from ``seed`` (module docstring)."""
    rng = np.random.default_rng([seed, 1 if fmt == "cub" else 2, 7])
    points, frames = texel_points()
    fields = [points * np.eye(3)[k] for k in range(3)]
    for _ in range(3):
        centre = rng.normal(size=3)
        fields.append(_bump(points, centre, 0.55)[..., None] * points)
    return np.stack([field_to_map(f, frames) for f in fields])


#: largest coefficient of each basis map (stretches, then bumps)
COEFFICIENT_RANGE = np.array([0.15, 0.15, 0.15, 0.15, 0.15, 0.15])


def item_displacement(mean: np.ndarray, basis: np.ndarray, rng: np.random.Generator):
    """``(map (3, 32, 32) float32, coefficients (6,))``: ``mean + Σ c_i basis_i`` with ``c_i`` uniform
    in ``±COEFFICIENT_RANGE``."""
    coeffs = rng.uniform(-1.0, 1.0, len(basis)) * COEFFICIENT_RANGE
    return (mean + np.tensordot(coeffs, basis, 1)).astype(np.float32), coeffs
