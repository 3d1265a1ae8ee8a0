"""Meshes to and from disk: ``.ply`` (binary) or ``.obj``, written atomically (with vertex
colours, and ``.glb``: :mod:`lmnet.mesh.colours`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from lmnet.errors import LmnetError
from lmnet.mesh.methods import o3d

MESH_SUFFIXES = (".ply", ".obj")
#: what ``lmnet mesh --out`` takes: also glTF binary (:func:`lmnet.mesh.colours.write_coloured_mesh`)
CLI_MESH_SUFFIXES = MESH_SUFFIXES + (".glb",)


def check_mesh_path(path: str | Path, suffixes: tuple[str, ...] = MESH_SUFFIXES) -> Path:
    """``path`` if it ends in one of ``suffixes``, else an :class:`LmnetError` (checked before any work)."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise LmnetError(f"{path}: mesh output must end in {', '.join(suffixes[:-1])} or {suffixes[-1]}")
    return path


def to_o3d_mesh(vertices, faces):
    """``vertices (V, 3)``, ``faces (F, 3)`` → Open3D ``TriangleMesh``."""
    o = o3d()
    return o.geometry.TriangleMesh(o.utility.Vector3dVector(np.asarray(vertices, dtype=np.float64)),
                                   o.utility.Vector3iVector(np.asarray(faces, dtype=np.int32)))


def write_mesh(path: str | Path, vertices, faces) -> Path:
    """Write ``.ply`` (binary) or ``.obj`` atomically: Open3D writes a temporary file with the same
    extension in the target folder, which is then renamed over ``path``."""
    path = check_mesh_path(path)
    mesh = to_o3d_mesh(vertices, faces)
    mesh.compute_vertex_normals()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix.lower(), dir=path.parent)
    os.close(fd)
    try:
        if not o3d().io.write_triangle_mesh(tmp, mesh, write_ascii=False):
            raise LmnetError(f"{path}: Open3D could not write the mesh")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
