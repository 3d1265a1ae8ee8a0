"""How closely a mesh follows a point cloud, and the mesh of a cloud chosen by that measure.

The fit of a mesh to a cloud is the **Chamfer distance ×100** between ``FIT_SAMPLES`` (16,384)
points drawn uniformly (area-weighted, seeded) on the mesh and the cloud: mean Euclidean
nearest-neighbour distance samples → cloud plus mean cloud → samples (a sum, distances not
squared; :func:`lmnet.losses.chamfer_terms`), in the cloud's own frame (no normalisation, no
ICP), then ×100. Both failures of a mesh raise it: surface far from every point (a Poisson balloon)
and points no triangle comes near (holes, dropped parts). A surface through the points themselves
scores about the cloud's own sampling density; interpolating noise is not penalised, so the fit
prefers ``bpa`` on noisy clouds where ``poisson`` can be the closer surface (see the benchmark).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from lmnet.data.meshes import face_areas, sample_surface
from lmnet.errors import LmnetError
from lmnet.losses.chamfer_numpy import chamfer_terms
from lmnet.mesh import cloud, methods

METHODS = ("auto", "bpa", "poisson", "alpha")
FIT_SAMPLES = 16384


class MeshingError(LmnetError):
    """No reconstruction produced a surface from this cloud."""


@dataclass
class MeshResult:
    """``vertices (V, 3) float32``, ``faces (F, 3) int64`` of the mesh made by ``method``;
    ``fit``: its Chamfer ×100 to the input cloud (see the module); ``fits``: the fit of every
    method tried (``auto`` tries all); ``n_points``: points meshed after ``n_removed`` outliers
    were dropped; ``n_merged``: input points merged as duplicates before that
    (:func:`~lmnet.mesh.cloud.deduplicate`); ``spacing``: median nearest-neighbour distance of the input."""

    vertices: np.ndarray
    faces: np.ndarray
    method: str
    fit: float
    fits: dict = field(default_factory=dict)
    n_points: int = 0
    n_removed: int = 0
    spacing: float = 0.0
    seconds: float = 0.0
    n_merged: int = 0

    def summary(self) -> str:
        tried = ", ".join(f"{m} {_number(f)}" for m, f in self.fits.items()) if len(self.fits) > 1 else ""
        merged = f", {self.n_merged} duplicates merged" if self.n_merged else ""
        return (f"method {self.method}; fit (Chamfer x100, mesh samples <-> input cloud) {_number(self.fit)}"
                + (f" [tried: {tried}]" if tried else "")
                + f"; {self.n_points} points meshed ({self.n_removed} outliers removed{merged})")


def _number(x: float) -> str:
    """Three decimals for a fit in a unit-size frame; three significant digits at other scales."""
    return f"{x:.3f}" if x == 0 or 1e-3 <= abs(x) < 1e6 else f"{x:.3g}"


def sample_mesh(vertices, faces, n: int = FIT_SAMPLES, seed: int = 0) -> np.ndarray:
    """``n`` points uniformly (area-weighted) on the mesh ``vertices (V, 3)``, ``faces (F, 3)``
    → ``(n, 3)`` float64; seeded, so a mesh always gets the same samples."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if len(f) == 0 or not face_areas(v, f).sum() > 0:
        raise MeshingError("the mesh has no surface (no faces of positive area) to sample")
    return sample_surface(v, f, int(n), np.random.default_rng(seed))


def mesh_fit(vertices, faces, points, *, n: int = FIT_SAMPLES, seed: int = 0) -> float:
    """Chamfer ×100 between ``n`` samples on the mesh and ``points (N, 3)`` (module docstring);
    ``inf`` for a mesh without surface."""
    try:
        samples = sample_mesh(vertices, faces, n, seed)
    except MeshingError:
        return float("inf")
    return 100.0 * chamfer_terms(samples, np.asarray(points, dtype=np.float64))["cd"]


def _build(method: str, pts: np.ndarray, spacing: float, normals, *, depth: int, trim: float | None,
           density_quantile: float, k: int):
    if method == "bpa":
        return methods.ball_pivoting(pts, spacing, with_normals=normals)
    if method == "poisson":
        return methods.poisson(pts, spacing, depth=depth, trim=trim, density_quantile=density_quantile,
                               with_normals=normals)
    if method == "alpha":
        return methods.alpha_shape(pts, spacing)
    raise LmnetError(f"unknown meshing method {method!r}; choose one of {', '.join(METHODS)}")


def _methods_to_try(method: str, flat: bool, name: str) -> tuple[str, ...]:
    """The methods ``method`` (one of :data:`METHODS`) stands for; a flat cloud leaves ``alpha`` out
    (it needs volume)."""
    if flat and method == "alpha":
        raise cloud.PointCloudError(f"{name}: all points lie on one plane; an alpha shape needs volume: "
                                    "use --method bpa or poisson")
    todo = METHODS[1:] if method == "auto" else (method,)
    return tuple(m for m in todo if not (flat and m == "alpha"))


def _open3d_mesh(m: str, used: np.ndarray, normals, opts: dict, name: str):
    """Method ``m``'s Open3D mesh of ``used``; Open3D's own failures become a :class:`MeshingError`."""
    try:
        return _build(m, used, cloud.point_spacing(used), normals, **opts)
    except RuntimeError as exc:  # Open3D raises RuntimeError (qhull precision errors among them)
        raise MeshingError(f"{name}: Open3D could not build the {m} mesh ({str(exc).splitlines()[0]})") from None


def reconstruct(points, method: str = "auto", *, clean: bool = True, target_triangles: int | None = None,
                depth: int = methods.POISSON_DEPTH, trim: float | None = methods.POISSON_TRIM,
                density_quantile: float = 0.0, k: int = 30, name: str = "point cloud") -> MeshResult:
    """Mesh of ``points (N, 3)``: checked (:func:`~lmnet.mesh.cloud.check_cloud`), duplicates merged
    and scaled to unit size (:func:`~lmnet.mesh.cloud.prepare_cloud`), outliers removed when
    ``clean`` (:func:`~lmnet.mesh.cloud.remove_outliers`), reconstructed by ``method`` (one of
    :data:`METHODS`; ``auto`` builds ``bpa``, ``poisson`` and ``alpha`` — not ``alpha`` for a flat
    cloud — and keeps the lowest fit), optionally decimated, and scored by :func:`mesh_fit` against
    the input cloud as given, in its units. ``k``: neighbours for normals, in
    :data:`~lmnet.mesh.methods.KNN_RANGE`."""
    if method not in METHODS:  # before any work
        raise LmnetError(f"unknown meshing method {method!r}; choose one of {', '.join(METHODS)}")
    t0 = time.perf_counter()
    k = methods.check_knn(k)
    pts = cloud.check_cloud(points, name)
    prep = cloud.prepare_cloud(pts, name)
    todo = _methods_to_try(method, prep.flat, name)
    used = cloud.remove_outliers(prep.points) if clean else prep.points
    opts = dict(depth=depth, trim=trim, density_quantile=density_quantile, k=k)
    normals = (methods.estimate_normals(used, k=k, plane_normal=prep.plane_normal)
               if {"bpa", "poisson"} & set(todo) else None)
    fits, meshes = {}, {}
    for m in todo:
        meshes[m] = _open3d_mesh(m, used, normals, opts, name)
        fits[m] = mesh_fit(prep.to_input(meshes[m].vertices), np.asarray(meshes[m].triangles), pts)
    best = min(fits, key=fits.get)
    if not np.isfinite(fits[best]):
        raise MeshingError(f"{name}: {', '.join(fits)} produced no surface from {len(used)} points")
    mesh = meshes[best]
    if target_triangles is not None:
        mesh = methods.decimate(mesh, target_triangles)
        fits[best] = mesh_fit(prep.to_input(mesh.vertices), np.asarray(mesh.triangles), pts)
    return MeshResult(prep.to_input(mesh.vertices).astype(np.float32), np.asarray(mesh.triangles, dtype=np.int64).copy(),
                      best, float(fits[best]), fits, len(used), len(prep.points) - len(used),
                      cloud.point_spacing(prep.points) / prep.scale, time.perf_counter() - t0, prep.n_merged)


def points_to_mesh(points, *, depth: int = 8, density_quantile: float = 0.02,
                   target_triangles: int | None = None, k: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Screened Poisson alone, closed surface (no distance trim, no outlier removal): ``points (N, 3)``
    → ``(vertices (V, 3) float32, faces (F, 3) int64)``, faces wound so that normals point outward.
    The surface of closed, thick shapes; use :func:`reconstruct` for shapes with thin parts."""
    prep = cloud.prepare_cloud(cloud.check_cloud(points))
    normals = methods.estimate_normals(prep.points, k=k, plane_normal=prep.plane_normal)
    mesh = methods.poisson(prep.points, depth=depth, trim=None, density_quantile=density_quantile,
                           with_normals=normals)
    if target_triangles is not None:
        mesh = methods.decimate(mesh, target_triangles)
    return (prep.to_input(mesh.vertices).astype(np.float32), np.asarray(mesh.triangles, dtype=np.int64).copy())
