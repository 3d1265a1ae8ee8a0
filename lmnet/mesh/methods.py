"""Three surface reconstructions of a clean ``(N, 3)`` cloud, all Open3D, all scaled by the cloud's
:func:`~lmnet.mesh.cloud.point_spacing` ``s`` (median nearest-neighbour distance):

- ``bpa``: **ball pivoting** with balls of radius ``s × (1, 2, 4)``: triangles join neighbouring
  input points, so the surface stays on the points, thin wings and legs included; where no ball
  rolls it leaves holes.
- ``poisson``: **screened Poisson** at octree ``depth`` 8, then every vertex farther than
  ``trim × s`` (2) from all input points is removed. Poisson closes a smooth surface around the
  points; on parts thinner than its octree cells that surface is a balloon or a sheet far from any
  point, which the distance trim cuts away. (Poisson's own density trimming, ``density_quantile``,
  removes too little of it on synthetic airplanes, chairs and lamps, measured in
  docs/meshing.md#steps.)
- ``alpha``: **alpha shape** with ``alpha = 4 × s``: the boundary of the Delaunay tetrahedra that
  fit in that ball; no normals needed, but noisy clouds give a rough, doubled surface.

Normals (for ``bpa`` and ``poisson``) are PCA over the ``k`` nearest neighbours (``k`` in
:data:`KNN_RANGE`), oriented consistently over a Riemannian graph and flipped as a whole so that
most point outward (away from the centroid). A flat cloud (all points on one plane) gets the
plane's normal everywhere: the orientation step triangulates in 3D, which a plane has no volume for;
for the same reason ``alpha`` cannot mesh a flat cloud. Each function returns an Open3D ``TriangleMesh``; ``o3d()`` imports Open3D lazily
(an optional dependency: ``pip install open3d-cpu``).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from lmnet.errors import LmnetError

BPA_RADII = (1.0, 2.0, 4.0)
#: neighbours a normal is fitted to: a plane needs 3 points; more than a few hundred smooth the
#: shape away (and cost N × k)
KNN_RANGE = (3, 500)
POISSON_DEPTH = 8
POISSON_TRIM = 2.0
ALPHA = 4.0


def o3d():
    """The ``open3d`` module, or an :class:`LmnetError` saying how to install it."""
    try:
        import open3d
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise LmnetError(f"meshing needs Open3D: pip install open3d-cpu==0.20.0 ({exc})") from None
    return open3d


def check_knn(k) -> int:
    """``k`` (neighbours for normals) if a whole number in :data:`KNN_RANGE`, else an :class:`LmnetError`."""
    lo, hi = KNN_RANGE
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not lo <= k <= hi:
        raise LmnetError(f"knn (neighbours for normal estimation) must be a whole number in {lo}..{hi}, got {k!r}")
    return int(k)


def estimate_normals(points, *, k: int = 30, plane_normal=None):
    """``(N, 3)`` → Open3D point cloud with unit normals, consistently oriented and pointing outward.
    ``plane_normal (3,)``: the cloud is flat; every normal is set to it (no PCA, no orientation)."""
    o = o3d()
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] < 4:
        raise LmnetError(f"expected at least 4 points of shape (N, 3), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise LmnetError("point cloud contains NaN or infinite values")
    pcd = o.geometry.PointCloud(o.utility.Vector3dVector(pts))
    if plane_normal is not None:
        pcd.normals = o.utility.Vector3dVector(np.tile(np.asarray(plane_normal, np.float64), (len(pts), 1)))
        return pcd
    k = int(min(check_knn(k), pts.shape[0] - 1))
    pcd.estimate_normals(o.geometry.KDTreeSearchParamKNN(knn=k))
    pcd.orient_normals_consistent_tangent_plane(max(3, min(k, 15)))
    normals = np.asarray(pcd.normals)
    outward = np.einsum("ij,ij->i", normals, pts - pts.mean(axis=0))
    if np.sum(outward > 0) < np.sum(outward < 0):
        pcd.normals = o.utility.Vector3dVector(-normals)
    return pcd


def _tidy(mesh):
    mesh.remove_degenerate_triangles()
    mesh.remove_duplicated_triangles()
    mesh.remove_unreferenced_vertices()
    return mesh


def ball_pivoting(points: np.ndarray, spacing: float, *, radii=BPA_RADII, k: int = 30, with_normals=None):
    """Ball-pivoting mesh of ``points (N, 3)``; ball radii ``spacing × radii``. ``with_normals``:
    the :func:`estimate_normals` cloud of ``points`` when the caller already has it."""
    if not radii or min(radii) <= 0:
        raise LmnetError(f"ball-pivoting radii must be positive multiples of the spacing, got {radii}")
    pcd = with_normals if with_normals is not None else estimate_normals(points, k=k)
    r = o3d().utility.DoubleVector([float(spacing * m) for m in sorted(radii)])
    return _tidy(o3d().geometry.TriangleMesh.create_from_point_cloud_ball_pivoting(pcd, r))


def poisson(points: np.ndarray, spacing: float | None = None, *, depth: int = POISSON_DEPTH,
            trim: float | None = POISSON_TRIM, density_quantile: float = 0.0, k: int = 30, with_normals=None):
    """Screened Poisson mesh of ``points (N, 3)``.

    ``density_quantile`` in ``[0, 1)``: fraction of lowest-density vertices removed (0 = none).
    ``trim``: vertices farther than ``trim × spacing`` from every input point are removed
    (``None`` = no distance trim, a closed surface). ``with_normals``: as for :func:`ball_pivoting`."""
    if not 0.0 <= density_quantile < 1.0:
        raise LmnetError(f"density_quantile must be in [0, 1), got {density_quantile}")
    if not 1 <= depth <= 12:
        raise LmnetError(f"depth must be in 1..12, got {depth}")
    if trim is not None and (spacing is None or trim <= 0):
        raise LmnetError(f"the Poisson distance trim needs a positive trim ({trim}) and the point spacing")
    pcd = with_normals if with_normals is not None else estimate_normals(points, k=k)
    mesh, density = o3d().geometry.TriangleMesh.create_from_point_cloud_poisson(pcd, depth=depth, linear_fit=False)
    drop = np.zeros(len(mesh.vertices), dtype=bool)
    density = np.asarray(density)
    if density_quantile > 0 and len(density):
        drop |= density < np.quantile(density, density_quantile)
    if trim is not None and len(drop):
        drop |= cKDTree(points).query(np.asarray(mesh.vertices))[0] > trim * spacing
    if drop.any():
        mesh.remove_vertices_by_mask(drop)
    return _tidy(mesh)


def alpha_shape(points: np.ndarray, spacing: float, *, alpha: float = ALPHA):
    """Alpha-shape mesh of ``points (N, 3)`` with ``alpha = alpha × spacing`` (a length)."""
    if alpha <= 0:
        raise LmnetError(f"alpha must be a positive multiple of the spacing, got {alpha}")
    pcd = o3d().geometry.PointCloud(o3d().utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
    return _tidy(o3d().geometry.TriangleMesh.create_from_point_cloud_alpha_shape(pcd, float(alpha * spacing)))


def decimate(mesh, target_triangles: int):
    """Quadric decimation to at most ``target_triangles`` faces (a no-op when already below)."""
    if target_triangles < 4:
        raise LmnetError(f"target_triangles must be >= 4, got {target_triangles}")
    if len(mesh.triangles) > target_triangles:
        mesh = mesh.simplify_quadric_decimation(int(target_triangles))
        mesh.remove_unreferenced_vertices()
    return mesh
