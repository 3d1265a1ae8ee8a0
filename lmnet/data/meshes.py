"""Triangle meshes as NumPy arrays (``vertices (V, 3)`` float64, ``faces (F, 3)`` int64 vertex
indices): face areas, bounding-box normalisation and uniform surface sampling.

:func:`sample_surface` is the one surface sampler: the synthetic dataset's clouds
(:mod:`lmnet.synthetic`), Pix3D's sampled ground truth (:func:`lmnet.data.pix3d.load_gt`) and the
fit of a mesh to a cloud (:mod:`lmnet.mesh.fit`) all draw their points with it.
"""

from __future__ import annotations

import numpy as np

FACE_DRAWS = ("cdf", "choice")


def normalize_unit_diagonal(vertices: np.ndarray) -> np.ndarray:
    """Centre ``(V, 3)`` vertices at their bounding-box centre and scale the box diagonal to 1."""
    lo, hi = vertices.min(0), vertices.max(0)
    diag = float(np.linalg.norm(hi - lo))
    if diag <= 0:
        raise ValueError("degenerate mesh: zero bounding-box diagonal")
    return (vertices - (lo + hi) / 2) / diag


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(F,)`` float64: the area of each triangle, in squared vertex units."""
    t = vertices[faces]
    return 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator, *,
                   face_draw: str = "cdf", return_faces: bool = False):
    """``n`` points uniformly distributed over the mesh surface (density ∝ area) → ``(n, 3)`` float64
    (with ``return_faces``: and the ``(n,)`` index of the face each point lies on; same points).

    A face is drawn with probability ``area / total area`` (``rng.random(n)`` looked up in the
    cumulative areas); inside it the point ``(1 - √r1) A + √r1 (1 - r2) B + √r1 r2 C`` is uniform
    (Osada et al. 2002; ``r1``, ``r2`` from two more ``rng.random(n)``). ``face_draw`` says how the
    cumulative areas are rounded, the only difference between the two samplers this one replaced:

    - ``"cdf"``: ``cumsum(areas) / areas.sum()``, the index clamped to the last face (the synthetic
      clouds and the mesh fit);
    - ``"choice"``: ``rng.choice(F, n, p=areas / areas.sum())``, i.e. ``cumsum(p) / cumsum(p)[-1]``
      (Pix3D's sampled ground truth).

    Both use the same random numbers and the same distribution; they pick another face only when a
    uniform number falls within rounding (~1e-16) of a step of the cumulative areas, which no test
    mesh does, but each caller keeps its own so that its points stay bit-identical.
    Raises ValueError for a mesh without area.
    """
    if face_draw not in FACE_DRAWS:
        raise ValueError(f"face_draw must be one of {FACE_DRAWS}, got {face_draw!r}")
    areas = face_areas(vertices, faces)
    total = areas.sum()
    if not total > 0:
        raise ValueError("the mesh has zero surface area")
    if face_draw == "choice":
        face = rng.choice(len(faces), size=n, p=areas / total)
    else:
        cdf = np.cumsum(areas) / total
        face = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(faces) - 1)
    r1, r2 = np.sqrt(rng.random(n))[:, None], rng.random(n)[:, None]
    t = vertices[faces[face]]
    points = (1 - r1) * t[:, 0] + r1 * (1 - r2) * t[:, 1] + r1 * r2 * t[:, 2]
    return (points, face) if return_faces else points
