"""Point cloud → triangle mesh with screened Poisson surface reconstruction (Open3D).

Pipeline of :func:`points_to_mesh`:

1. normals estimated by PCA over the ``k`` nearest neighbours, then oriented consistently
   (``orient_normals_consistent_tangent_plane``: propagation over a Riemannian graph) and the whole
   set flipped if needed so that normals point **outward** (the majority points away from the
   centroid);
2. Poisson reconstruction at octree ``depth`` (8 ≈ 256³ grid);
3. low-density trimming: vertices whose Poisson density is below the ``density_quantile``
   quantile are removed (they are the surface Poisson hallucinates far from any point);
4. optional quadric-decimation to ``target_triangles``.

Open3D is an optional dependency (``pip install open3d-cpu``); it is imported lazily.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmnet.errors import LmnetError


def _o3d():
    try:
        import open3d as o3d
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise LmnetError(f"meshing needs Open3D: pip install open3d-cpu==0.20.0 ({exc})") from None
    return o3d


def estimate_normals(points, *, k: int = 30):
    """``(N, 3)`` → Open3D point cloud with unit normals, consistently oriented and pointing outward."""
    o3d = _o3d()
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] < 4:
        raise LmnetError(f"expected at least 4 points of shape (N, 3), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise LmnetError("point cloud contains NaN or infinite values")
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    k = int(min(k, pts.shape[0] - 1))
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=k))
    pcd.orient_normals_consistent_tangent_plane(max(3, min(k, 15)))
    normals = np.asarray(pcd.normals)
    outward = np.einsum("ij,ij->i", normals, pts - pts.mean(axis=0))
    if np.sum(outward > 0) < np.sum(outward < 0):
        pcd.normals = o3d.utility.Vector3dVector(-normals)
    return pcd


def points_to_mesh(points, *, depth: int = 8, density_quantile: float = 0.02,
                   target_triangles: int | None = None, k: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Poisson mesh of a point cloud.

    ``points (N, 3)`` → ``(vertices (V, 3) float32, faces (F, 3) int64)``, faces wound so that
    normals point outward. ``density_quantile`` in ``[0, 1)``: fraction of lowest-density vertices
    removed (0 = no trimming). ``target_triangles``: decimate to at most this many faces.
    """
    o3d = _o3d()
    if not 0.0 <= density_quantile < 1.0:
        raise LmnetError(f"density_quantile must be in [0, 1), got {density_quantile}")
    if not 1 <= depth <= 12:
        raise LmnetError(f"depth must be in 1..12, got {depth}")
    pcd = estimate_normals(points, k=k)
    mesh, density = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(pcd, depth=depth, linear_fit=False)
    density = np.asarray(density)
    if density_quantile > 0 and len(density):
        mesh.remove_vertices_by_mask(density < np.quantile(density, density_quantile))
    mesh.remove_degenerate_triangles()
    mesh.remove_unreferenced_vertices()
    if target_triangles is not None:
        if target_triangles < 4:
            raise LmnetError(f"target_triangles must be >= 4, got {target_triangles}")
        if len(mesh.triangles) > target_triangles:
            mesh = mesh.simplify_quadric_decimation(int(target_triangles))
            mesh.remove_unreferenced_vertices()
    return (np.asarray(mesh.vertices, dtype=np.float32).copy(),
            np.asarray(mesh.triangles, dtype=np.int64).copy())


def to_o3d_mesh(vertices, faces):
    o3d = _o3d()
    return o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.asarray(vertices, dtype=np.float64)),
                                     o3d.utility.Vector3iVector(np.asarray(faces, dtype=np.int32)))


def write_mesh(path: str | Path, vertices, faces) -> Path:
    """Write ``.ply`` (binary) or ``.obj`` atomically: Open3D writes a temporary file with the same
    extension in the target folder, which is then renamed over ``path``."""
    import os
    import tempfile

    o3d = _o3d()
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in (".ply", ".obj"):
        raise LmnetError(f"{path}: mesh output must end in .ply or .obj")
    mesh = to_o3d_mesh(vertices, faces)
    mesh.compute_vertex_normals()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=ext, dir=path.parent)
    os.close(fd)
    try:
        if not o3d.io.write_triangle_mesh(tmp, mesh, write_ascii=False):
            raise LmnetError(f"{path}: Open3D could not write the mesh")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_points(path: str | Path) -> np.ndarray:
    """Read an ``(N, 3)`` ``.npy`` (or the first cloud of a ``(K, N, 3)`` sample stack)."""
    from lmnet.errors import CorruptFileError

    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CorruptFileError(path, "missing point cloud") from None
    except (ValueError, OSError, EOFError) as exc:
        raise CorruptFileError(path, f"unreadable .npy ({exc})") from None
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[0]
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise CorruptFileError(path, f"expected shape (N, 3) or (K, N, 3), got {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise CorruptFileError(path, "contains NaN or infinite values")
    return arr.astype(np.float64)
