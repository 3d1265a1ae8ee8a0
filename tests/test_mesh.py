"""Poisson meshing: outward normals, watertight closed surfaces, small Chamfer to the true surface."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

pytest.importorskip("open3d")

from lmnet import mesh as lm_mesh  # noqa: E402
from lmnet.errors import LmnetError  # noqa: E402

RNG = np.random.default_rng(0)
HALF = np.array([0.5, 0.3, 0.2])  # box half extents


def _sphere(n, r=0.5):
    p = RNG.normal(size=(n, 3))
    return r * p / np.linalg.norm(p, axis=1, keepdims=True)


def _box(n):
    p = RNG.uniform(-1, 1, size=(n, 3)) * HALF
    areas = np.array([HALF[1] * HALF[2], HALF[0] * HALF[2], HALF[0] * HALF[1]])  # face area per axis
    ax = RNG.choice(3, size=n, p=areas / areas.sum())
    p[np.arange(n), ax] = RNG.choice([-1, 1], size=n) * HALF[ax]
    return p


def _sample_mesh(vertices, faces, n):
    """Area-weighted uniform samples on a triangle mesh (seeded)."""
    rng = np.random.default_rng(1)
    tri = vertices[faces].astype(np.float64)
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    pick = rng.choice(len(tri), size=n, p=area / area.sum())
    u, w = rng.random((2, n, 1))
    flip = (u + w) > 1
    u, w = np.where(flip, 1 - u, u), np.where(flip, 1 - w, w)
    t = tri[pick]
    return t[:, 0] + u * (t[:, 1] - t[:, 0]) + w * (t[:, 2] - t[:, 0])


def _chamfer_to_surface(vertices, faces, true_surface):
    on_mesh = _sample_mesh(vertices, faces, 20000)
    return (cKDTree(true_surface).query(on_mesh)[0].mean() + cKDTree(on_mesh).query(true_surface)[0].mean())


def test_normals_point_outward_on_sphere():
    pts = _sphere(1500)
    pcd = lm_mesh.estimate_normals(pts)
    n = np.asarray(pcd.normals)
    cos = np.einsum("ij,ij->i", n, pts / np.linalg.norm(pts, axis=1, keepdims=True))
    assert np.all(cos > 0.9), cos.min()


@pytest.mark.parametrize("shape", ["sphere", "box"])
def test_closed_shapes_reconstruct_watertight(shape):
    pts = _sphere(2048) if shape == "sphere" else _box(4096)
    truth = _sphere(40000) if shape == "sphere" else _box(60000)
    v, f = lm_mesh.points_to_mesh(pts, depth=7, density_quantile=0.0)
    assert v.dtype == np.float32 and f.dtype == np.int64 and v.shape[1] == 3 and f.shape[1] == 3
    m = lm_mesh.to_o3d_mesh(v, f)
    assert m.is_watertight() and m.is_edge_manifold()
    # bound: Chamfer (mean Euclidean NN both ways, summed) below 0.02 for a shape of diameter ~1,
    # i.e. about 1% of its size per direction (the octree cell at depth 7 is ~0.008)
    assert _chamfer_to_surface(v, f, truth) < 0.02
    # faces are wound outward: the signed volume is positive
    tri = v[f].astype(np.float64)
    assert np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() > 0


def test_trimming_and_simplification(tmp_path):
    pts = _sphere(2048)
    v0, f0 = lm_mesh.points_to_mesh(pts, depth=7, density_quantile=0.0)
    v1, f1 = lm_mesh.points_to_mesh(pts, depth=7, density_quantile=0.05)
    assert len(v1) < len(v0)
    assert lm_mesh.to_o3d_mesh(v1, f1).is_edge_manifold()
    v2, f2 = lm_mesh.points_to_mesh(pts, depth=7, density_quantile=0.0, target_triangles=1000)
    assert len(f2) <= 1000
    assert _chamfer_to_surface(v2, f2, _sphere(40000)) < 0.03
    out = lm_mesh.write_mesh(tmp_path / "s.ply", v2, f2)
    import open3d as o3d

    back = o3d.io.read_triangle_mesh(str(out))
    assert len(back.triangles) == len(f2)
    with pytest.raises(LmnetError, match=".ply or .obj"):
        lm_mesh.write_mesh(tmp_path / "s.stl", v2, f2)


def test_cli_mesh(tmp_path):
    from lmnet.cli import main

    np.save(tmp_path / "p.npy", _sphere(1024).astype(np.float32))
    assert main(["mesh", "--points", str(tmp_path / "p.npy"), "--out", str(tmp_path / "m.obj"),
                 "--depth", "6"]) == 0
    assert (tmp_path / "m.obj").stat().st_size > 0
    np.save(tmp_path / "bad.npy", np.zeros((5, 2), np.float32))
    assert main(["mesh", "--points", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "x.ply")]) == 2
