"""Mesh normalisation and uniform (area-weighted) surface sampling, numpy float64."""

from __future__ import annotations

import numpy as np


def normalize_unit_diagonal(vertices: np.ndarray) -> np.ndarray:
    """Centre ``(V, 3)`` vertices at their bounding-box centre and scale the box diagonal to 1."""
    lo, hi = vertices.min(0), vertices.max(0)
    diag = float(np.linalg.norm(hi - lo))
    if diag <= 0:
        raise ValueError("degenerate mesh: zero bounding-box diagonal")
    return (vertices - (lo + hi) / 2) / diag


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    t = vertices[faces]
    return 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniformly distributed over the mesh surface (density ∝ area) → ``(n, 3)``.

    A face is drawn with probability ``area / total area``; inside it the point
    ``(1 - √r1) A + √r1 (1 - r2) B + √r1 r2 C`` is uniform (Osada et al. 2002).
    """
    areas = face_areas(vertices, faces)
    total = areas.sum()
    if not total > 0:
        raise ValueError("mesh has zero surface area")
    cdf = np.cumsum(areas) / total
    face = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(faces) - 1)
    r1, r2 = np.sqrt(rng.random(n))[:, None], rng.random(n)[:, None]
    t = vertices[faces[face]]
    return (1 - r1) * t[:, 0] + r1 * (1 - r2) * t[:, 1] + r1 * r2 * t[:, 2]
