"""The point cloud a mesh is made from: checks, duplicates, scale, spacing, outlier removal,
reading ``.npy`` files.

Every check raises :class:`PointCloudError` (an :class:`~lmnet.errors.LmnetError`) with a message
that names the cloud (its file when it came from one) and says what was expected, before anything
is meshed or written. Degenerate clouds are dealt with before Open3D sees them
(:func:`prepare_cloud`): duplicates are merged, the cloud is brought to unit size by an exact
power-of-two scale, and a flat cloud is marked so that its normals are the plane's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from lmnet.data.layout import load_npy
from lmnet.envvars import MAX_MESH_POINTS
from lmnet.errors import LmnetError
from lmnet.mesh.methods import o3d

#: fewest points a mesh is made from: below this, spacing and normals are noise
MIN_POINTS = 50
#: a cloud whose second principal extent is below this fraction of its first is a line
COLLINEAR_RATIO = 1e-6
#: a cloud whose third principal extent is below this fraction of its first is flat (one plane)
FLAT_RATIO = 1e-6
#: points closer than this fraction of the bounding-box diagonal are one point: coordinates are
#: snapped to a grid of cells this size (from the lowest corner) and one point per cell is kept
DUPLICATE_TOLERANCE = 1e-6
#: largest coordinate magnitude meshed: mesh vertices are float32 (largest 3.4e38)
MAX_COORDINATE = 1e36
#: smallest bounding-box diagonal meshed: smaller clouds are below float32's normal range (1.2e-38)
MIN_DIAGONAL = 1e-36


class PointCloudError(LmnetError, ValueError):
    """A point cloud cannot be meshed: wrong shape, too few points, NaN/inf, all on one line."""


def check_cloud(points, name: str = "point cloud") -> np.ndarray:
    """``points (N, 3)`` → float64 copy, or :class:`PointCloudError`.

    Refused: any other shape (a ``(K, N, 3)`` stack of several clouds included: pick one first),
    fewer than :data:`MIN_POINTS` points or more than ``LMNET_MAX_MESH_POINTS``
    (:data:`lmnet.envvars.MAX_MESH_POINTS`), NaN or infinite coordinates, coordinates beyond
    ``±``:data:`MAX_COORDINATE` or a bounding-box diagonal under :data:`MIN_DIAGONAL` (not
    representable in a float32 mesh), all points on one line (or all equal)."""
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
    MAX_MESH_POINTS.check(pts.shape[0], f"{name}: the cloud to mesh",
                          hint="subsample the cloud", error=PointCloudError)
    pts = pts.astype(np.float64)
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        raise PointCloudError(f"{name}: {int(bad.sum())} of {len(pts)} points are NaN or infinite "
                              f"(first at row {int(np.argmax(bad))})")
    _check_scale(pts, name)
    sv = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
    if sv[0] == 0 or sv[1] <= COLLINEAR_RATIO * sv[0]:
        what = "all equal" if sv[0] == 0 else "all on one line"
        raise PointCloudError(f"{name}: the {len(pts)} points are {what}; a surface needs points "
                              "spread in two directions at least")
    return pts


def _check_scale(pts: np.ndarray, name: str) -> None:
    """Refuse coordinates a float32 mesh cannot hold (beyond :data:`MAX_COORDINATE`, or a diagonal
    under :data:`MIN_DIAGONAL` that is not zero; all-equal points are refused by the caller)."""
    biggest = float(np.abs(pts).max())
    if biggest > MAX_COORDINATE:
        raise PointCloudError(f"{name}: coordinates up to {biggest:.3g}; a mesh (float32 vertices) holds at "
                              f"most {MAX_COORDINATE:g}: rescale the cloud")
    diagonal = float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0)))
    if 0 < diagonal < MIN_DIAGONAL:
        raise PointCloudError(f"{name}: the cloud spans {diagonal:.3g} (bounding-box diagonal); a mesh "
                              f"(float32 vertices) needs at least {MIN_DIAGONAL:g}: rescale the cloud")


@dataclass(frozen=True)
class PreparedCloud:
    """A checked cloud made ready for Open3D by :func:`prepare_cloud`.

    ``points (M, 3)`` float64: the distinct points (first of each duplicate group, input order) ×
    ``scale``; ``scale``: a power of two bringing the bounding-box diagonal into [0.7, 1.4) (exact:
    multiplying by it loses no bit); ``n_merged``: input points dropped as duplicates; ``flat``:
    all points on one plane (third principal extent under :data:`FLAT_RATIO` of the first), and
    then ``plane_normal (3,)``, the plane's unit normal."""

    points: np.ndarray
    scale: float
    n_merged: int
    flat: bool
    plane_normal: np.ndarray | None

    def to_input(self, vertices) -> np.ndarray:
        """Vertices ``(V, 3)`` made from :attr:`points` → the input's units (float64)."""
        return np.asarray(vertices, dtype=np.float64) / self.scale


def deduplicate(points: np.ndarray, tolerance: float = DUPLICATE_TOLERANCE) -> tuple[np.ndarray, int]:
    """``points (N, 3)`` → ``(distinct (M, 3), N - M)``: one point per grid cell of ``tolerance`` ×
    the bounding-box diagonal (the first of the cell, input order kept). A cloud without duplicates
    comes back unchanged."""
    lo = points.min(axis=0)
    cell = tolerance * float(np.linalg.norm(points.max(axis=0) - lo))
    if not cell > 0:
        return points[:1], len(points) - 1
    keys = np.floor((points - lo) / cell).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    if len(first) == len(points):
        return points, 0
    return points[np.sort(first)], len(points) - len(first)


def prepare_cloud(points: np.ndarray, name: str = "point cloud") -> PreparedCloud:
    """A cloud checked by :func:`check_cloud` → :class:`PreparedCloud`: duplicates merged
    (:func:`deduplicate`; fewer than :data:`MIN_POINTS` distinct points left is a
    :class:`PointCloudError`), scaled to unit size by a power of two (so 1e30- or 1e-30-sized
    clouds mesh like unit ones, and a unit-size cloud is meshed bit for bit as given), flatness
    detected."""
    distinct, merged = deduplicate(points)
    if len(distinct) < MIN_POINTS:
        raise PointCloudError(f"{name}: {len(distinct)} distinct points ({merged} of {len(points)} are duplicates "
                              f"within {DUPLICATE_TOLERANCE:g} of the bounding-box diagonal); meshing needs at "
                              f"least {MIN_POINTS}")
    diagonal = float(np.linalg.norm(distinct.max(axis=0) - distinct.min(axis=0)))
    scale = float(2.0 ** -round(np.log2(diagonal)))
    unit = distinct * scale
    _, sv, vt = np.linalg.svd(unit - unit.mean(axis=0), full_matrices=False)
    flat = bool(sv[2] <= FLAT_RATIO * sv[0])
    return PreparedCloud(unit, scale, merged, flat, vt[2] / np.linalg.norm(vt[2]) if flat else None)


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
