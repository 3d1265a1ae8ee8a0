"""The point cloud a mesh is made from: checks, spacing, outlier removal, reading ``.npy`` files.

Every check raises :class:`PointCloudError` (an :class:`~lmnet.errors.LmnetError`) with a message
that names the cloud (its file when it came from one) and says what was expected, before anything
is meshed or written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from lmnet.data.layout import load_npy
from lmnet.errors import LmnetError
from lmnet.mesh.methods import o3d

#: fewest points a mesh is made from: below this, spacing and normals are noise
MIN_POINTS = 50
#: a cloud whose second principal extent is below this fraction of its first is a line
COLLINEAR_RATIO = 1e-6


class PointCloudError(LmnetError, ValueError):
    """A point cloud cannot be meshed: wrong shape, too few points, NaN/inf, all on one line."""


def check_cloud(points, name: str = "point cloud") -> np.ndarray:
    """``points (N, 3)`` → float64 copy, or :class:`PointCloudError`.

    Refused: any other shape (a ``(K, N, 3)`` stack of several clouds included: pick one first),
    fewer than :data:`MIN_POINTS` points, NaN or infinite coordinates, all points on one line
    (or all equal)."""
    pts = np.asarray(points)
    if pts.ndim == 3 and pts.shape[-1] == 3:
        raise PointCloudError(f"{name}: a stack of {pts.shape[0]} clouds, shape {tuple(pts.shape)}; "
                              "one cloud of shape (N, 3) is needed: pick one of the stack")
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise PointCloudError(f"{name}: expected shape (N, 3), got {tuple(pts.shape)}")
    if not np.issubdtype(pts.dtype, np.number):
        raise PointCloudError(f"{name}: expected numbers, got dtype {pts.dtype}")
    if pts.shape[0] < MIN_POINTS:
        raise PointCloudError(f"{name}: {pts.shape[0]} points; meshing needs at least {MIN_POINTS}")
    pts = pts.astype(np.float64)
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        raise PointCloudError(f"{name}: {int(bad.sum())} of {len(pts)} points are NaN or infinite "
                              f"(first at row {int(np.argmax(bad))})")
    sv = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
    if sv[0] == 0 or sv[1] <= COLLINEAR_RATIO * sv[0]:
        what = "all equal" if sv[0] == 0 else "all on one line"
        raise PointCloudError(f"{name}: the {len(pts)} points are {what}; a surface needs points "
                              "spread in two directions at least")
    return pts


def point_spacing(points: np.ndarray) -> float:
    """Median distance from a point of ``points (N, 3)`` to its nearest other point (same units as
    the points): the length every meshing radius is scaled by. Duplicated points are ignored."""
    d = cKDTree(points).query(points, k=2)[0][:, 1]
    d = d[d > 0]
    if not len(d):
        raise PointCloudError("point cloud: every point is duplicated onto one position")
    return float(np.median(d))


def remove_outliers(points: np.ndarray, *, radius: float = 5.0, min_neighbors: int = 4) -> np.ndarray:
    """Drop isolated points: ``points (N, 3)`` → ``(M, 3)``, ``M <= N``.

    A point is kept when at least ``min_neighbors`` points (itself included, Open3D's count) lie
    within ``radius`` × :func:`point_spacing` of it. The radius scales with the cloud, so the same
    setting suits any size or point count: 5 × spacing holds ~20 points on a clean surface sample
    (an expected 0.25 / spacing² points per unit area) and keeps every point of the synthetic
    ShapeNet clouds but a handful, while a stray point in empty space has none. If the filter would
    leave fewer than :data:`MIN_POINTS`, the cloud is returned unchanged."""
    pcd = o3d().geometry.PointCloud(o3d().utility.Vector3dVector(points))
    _, keep = pcd.remove_radius_outlier(nb_points=int(min_neighbors), radius=radius * point_spacing(points))
    keep = np.asarray(keep, dtype=np.int64)
    return points[keep] if len(keep) >= MIN_POINTS else points


def load_points(path: str | Path, sample: int | None = None) -> np.ndarray:
    """Read one cloud from a ``.npy``: ``(N, 3)``, or cloud ``sample`` of a ``(K, N, 3)`` stack
    (a stack without ``sample`` is refused unless ``K == 1``). Checked by :func:`check_cloud`."""
    path = Path(path)
    arr = load_npy(path)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        if sample is None and arr.shape[0] == 1:
            sample = 0
        if sample is None:
            raise PointCloudError(f"{path}: a stack of {arr.shape[0]} clouds, shape {tuple(arr.shape)}; "
                                  f"choose one with --sample 0..{arr.shape[0] - 1}")
        if not 0 <= sample < arr.shape[0]:
            raise PointCloudError(f"{path}: --sample {sample} is out of range 0..{arr.shape[0] - 1}")
        arr = arr[sample]
    elif sample is not None:
        raise PointCloudError(f"{path}: --sample {sample} given but the file holds one cloud, "
                              f"shape {tuple(arr.shape)}")
    return check_cloud(arr, name=str(path))
