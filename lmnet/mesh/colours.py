"""Vertex colours of a mesh made from a coloured cloud, and coloured mesh files.

The colours of a cloud are ``uint8 (N, 3)`` RGB, one row per point (``lmnet infer --color`` writes
them as ``<id>.colors.npy``). A mesh vertex takes the colour of the nearest point of the cloud the
mesh was made from, so a part keeps its colour up to its edges. ``.ply`` and ``.glb`` carry vertex
colours (:mod:`lmnet.colour_files`); ``.obj`` does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from lmnet.colour_files import DEFAULT_MESH_COLOR, write_coloured
from lmnet.data.layout import load_npy
from lmnet.errors import DataError


def load_colours(path: str | Path, n_points: int) -> np.ndarray:
    """``uint8 (n_points, 3)`` from a ``.npy`` written by ``lmnet infer --color``, or a
    :class:`~lmnet.errors.DataError` naming the file and the shape and type expected."""
    arr = load_npy(Path(path), "point colours")
    if arr.dtype != np.uint8 or arr.shape != (n_points, 3):
        raise DataError(f"{path}: expected point colours uint8 ({n_points}, 3) (one RGB row per point of "
                        f"--points), got {arr.dtype} {tuple(arr.shape)}")
    return arr


def vertex_colours(vertices: np.ndarray, points: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """``uint8 (V, 3)``: each of ``vertices (V, 3)`` takes the colour of its nearest point of
    ``points (N, 3)`` (coloured ``colours uint8 (N, 3)``)."""
    _, nearest = cKDTree(np.asarray(points)).query(np.asarray(vertices))
    return np.asarray(colours)[nearest]


def write_coloured_mesh(path: str | Path, vertices: np.ndarray, faces: np.ndarray,
                        colours: np.ndarray | None) -> Path:
    """Write a mesh with vertex colours ``uint8 (V, 3)`` (None: lmnet's mesh grey) as ``.ply`` or ``.glb``
    (:func:`lmnet.colour_files.write_coloured`, which refuses any other suffix)."""
    if colours is None:
        grey = np.round(np.asarray(DEFAULT_MESH_COLOR) * 255).astype(np.uint8)
        colours = np.broadcast_to(grey, (len(vertices), 3))
    return write_coloured(path, vertices, colours, faces)
