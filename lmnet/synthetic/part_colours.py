"""Per-part colours of the synthetic shapes (``lmnet synth --colors``).

A shape is built from closed primitives that share no vertices (:class:`~lmnet.synthetic.primitives.PartList`),
so its parts are the connected components of its mesh. Each part gets a saturated colour; the two
parts of a mirror pair (same centre up to the sign of ``y``, the 3D-LMNet frame's symmetry plane
``y = 0``, docs/formats.md#frames) get the same one, so the coloured shape stays mirror-symmetric.
Colours are RGB in ``[0, 1]`` (the renderer's albedo); the stored per-point colours are them × 255.
"""

from __future__ import annotations

import colorsys

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SATURATION, VALUE = 0.75, 0.9
GOLDEN = 0.6180339887498949  #: hue step between consecutive colours (well spread for any count)
MIRROR_DECIMALS = 3  #: part centres are compared rounded to this many decimals (unit-diagonal shape)


def part_labels(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """``(F,)`` part index of every face of ``faces (F, 3)``: the connected components of the mesh."""
    rows = np.repeat(faces[:, 0], 2)
    cols = faces[:, 1:].reshape(-1)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_vertices, n_vertices))
    _, vertex_label = connected_components(graph, directed=False)
    return vertex_label[faces[:, 0]]


def mirror_keys(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(P,)`` key of each part (its mirror pair shares it): the index of its rounded centre
    ``(x, |y|, z)`` among all parts' (vertex means, ``vertices (V, 3)`` in the 3D-LMNet frame)."""
    n_parts = int(labels.max()) + 1
    centres = np.zeros((n_parts, 3))
    for p in range(n_parts):
        centres[p] = vertices[np.unique(faces[labels == p])].mean(0)
    centres[:, 1] = np.abs(centres[:, 1])
    _, keys = np.unique(np.round(centres, MIRROR_DECIMALS), axis=0, return_inverse=True)
    return keys.reshape(-1)


def palette(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 3)`` distinct saturated RGB colours in ``[0, 1]``: hues a golden-ratio step apart from
    a random start."""
    h0 = rng.random()
    return np.array([colorsys.hsv_to_rgb((h0 + i * GOLDEN) % 1.0, SATURATION, VALUE) for i in range(n)])


def part_face_colours(vertices: np.ndarray, faces: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(F, 3)`` face colours in ``[0, 1]``: one colour per part, shared by mirror pairs."""
    labels = part_labels(faces, len(vertices))
    keys = mirror_keys(vertices, faces, labels)
    return palette(int(keys.max()) + 1, rng)[keys[labels]]


def point_colours(face_colours: np.ndarray, face_of_point: np.ndarray) -> np.ndarray:
    """``uint8 (n, 3)`` colours of surface points from their faces' ``face_colours (F, 3)`` in [0, 1]."""
    return np.clip(np.round(face_colours[face_of_point] * 255.0), 0, 255).astype(np.uint8)
