"""Coloured point clouds and meshes on disk: binary ``.ply`` and glTF binary ``.glb``, written atomically.

One convention for every writer here: ``points`` / ``vertices`` are ``(N, 3)`` floats (stored as
float32), ``colours`` are ``uint8 (N, 3)`` RGB (0–255, sRGB as in the input image), ``faces`` are
``(F, 3)`` vertex indices (``None``: a point cloud). Nothing but numpy is needed to write them.

- ``.ply``: ``binary_little_endian 1.0``, one ``vertex`` element ``x y z`` (float) ``red green blue``
  (uchar) and, for a mesh, a ``face`` element ``vertex_indices`` (uchar count, int indices). Open3D,
  MeshLab, Blender and trimesh read it.
- ``.glb``: glTF 2.0 binary, one mesh of one primitive: ``POSITION`` (float32 VEC3, with min/max) and
  ``COLOR_0`` (normalised uint8 VEC4, alpha 255, so every element stays 4-byte aligned), ``mode`` 0
  (POINTS) for a cloud or 4 (TRIANGLES) with uint32 indices for a mesh. The glTF frame is y up; the
  positions are written as given (3D-LMNet frame, +x down) so that what is read back is what was
  written — a viewer shows the object on its side unless told otherwise.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from lmnet import atomic_io
from lmnet.errors import DataError

#: the grey of an uncoloured mesh (RGB in [0, 1]): the renders' and the written files'
DEFAULT_MESH_COLOR = (0.72, 0.72, 0.72)

COLOURED_SUFFIXES = (".ply", ".glb")
_GLB_MAGIC, _GLB_VERSION = 0x46546C67, 2
_CHUNK_JSON, _CHUNK_BIN = 0x4E4F534A, 0x004E4942
_FLOAT, _UBYTE, _UINT = 5126, 5121, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_MODE_POINTS, _MODE_TRIANGLES = 0, 4


def check_coloured(points, colours, faces=None, name: str = "coloured geometry"):
    """``(points float32 (N, 3), colours uint8 (N, 3), faces int64 (F, 3) or None)`` or a
    :class:`~lmnet.errors.DataError` naming ``name`` and what was expected."""
    pts = np.asarray(points, dtype=np.float32)
    col = np.asarray(colours)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise DataError(f"{name}: expected points of shape (N, 3) with N >= 1, got {tuple(pts.shape)}")
    if not np.isfinite(pts).all():
        raise DataError(f"{name}: points must be finite")
    if col.shape != pts.shape or col.dtype != np.uint8:
        raise DataError(f"{name}: expected colours uint8 {tuple(pts.shape)}, got {col.dtype} {tuple(col.shape)}")
    if faces is None:
        return pts, col, None
    f = np.asarray(faces)
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
        raise DataError(f"{name}: expected integer faces of shape (F, 3), got {f.dtype} {tuple(f.shape)}")
    if len(f) and (f.min() < 0 or f.max() >= len(pts)):
        raise DataError(f"{name}: face indices must lie in [0, {len(pts)}), got [{f.min()}, {f.max()}]")
    return pts, col, f.astype(np.int64)


def ply_bytes(points, colours, faces=None) -> bytes:
    """The binary little-endian PLY file of a coloured cloud (``faces`` None) or mesh (module docs)."""
    pts, col, f = check_coloured(points, colours, faces)
    head = ["ply", "format binary_little_endian 1.0", "comment written by lmnet",
            f"element vertex {len(pts)}", "property float x", "property float y", "property float z",
            "property uchar red", "property uchar green", "property uchar blue"]
    if f is not None:
        head += [f"element face {len(f)}", "property list uchar int vertex_indices"]
    vert = np.empty(len(pts), dtype=[("p", "<f4", (3,)), ("c", "u1", (3,))])
    vert["p"], vert["c"] = pts, col
    body = vert.tobytes()
    if f is not None:
        face = np.empty(len(f), dtype=[("n", "u1"), ("i", "<i4", (3,))])
        face["n"], face["i"] = 3, f
        body += face.tobytes()
    return ("\n".join(head + ["end_header"]) + "\n").encode("ascii") + body


def _pad4(data: bytes, fill: bytes = b"\0") -> bytes:
    return data + fill * (-len(data) % 4)


def _glb_document(pts: np.ndarray, f: np.ndarray | None, sizes: list[int]) -> dict:
    """The glTF JSON of one primitive whose buffer views (positions, colours[, indices]) have ``sizes``."""
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
    views = [{"buffer": 0, "byteOffset": o, "byteLength": s, "target": _ARRAY_BUFFER}
             for o, s in zip(offsets, sizes)]
    accessors = [{"bufferView": 0, "componentType": _FLOAT, "count": len(pts), "type": "VEC3",
                  "min": pts.min(0).tolist(), "max": pts.max(0).tolist()},
                 {"bufferView": 1, "componentType": _UBYTE, "normalized": True, "count": len(pts), "type": "VEC4"}]
    primitive = {"attributes": {"POSITION": 0, "COLOR_0": 1}, "mode": _MODE_POINTS}
    if f is not None:
        views[2]["target"] = _ELEMENT_ARRAY_BUFFER
        accessors.append({"bufferView": 2, "componentType": _UINT, "count": int(f.size), "type": "SCALAR"})
        primitive.update(indices=2, mode=_MODE_TRIANGLES)
    return {"asset": {"version": "2.0", "generator": "lmnet"}, "scene": 0, "scenes": [{"nodes": [0]}],
            "nodes": [{"mesh": 0}], "meshes": [{"primitives": [primitive]}],
            "buffers": [{"byteLength": sum(sizes)}], "bufferViews": views, "accessors": accessors}


def glb_bytes(points, colours, faces=None) -> bytes:
    """The glTF binary (``.glb``) of a coloured cloud (mode POINTS) or mesh (TRIANGLES); module docs."""
    pts, col, f = check_coloured(points, colours, faces)
    rgba = np.concatenate([col, np.full((len(col), 1), 255, np.uint8)], 1)
    blobs = [pts.astype("<f4").tobytes(), rgba.tobytes()]
    if f is not None:
        blobs.append(f.astype("<u4").tobytes())
    sizes = [len(b) for b in blobs]  # each a multiple of 4 bytes: 12 N, 4 N, 12 F
    doc = _pad4(json.dumps(_glb_document(pts, f, sizes), separators=(",", ":")).encode("utf-8"), b" ")
    binary = b"".join(blobs)
    total = 12 + 8 + len(doc) + 8 + len(binary)
    return (struct.pack("<III", _GLB_MAGIC, _GLB_VERSION, total) + struct.pack("<II", len(doc), _CHUNK_JSON) + doc
            + struct.pack("<II", len(binary), _CHUNK_BIN) + binary)


def write_coloured(path: str | Path, points, colours, faces=None) -> Path:
    """Write a coloured cloud or mesh to ``path`` atomically, as ``.ply`` or ``.glb`` by its suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in COLOURED_SUFFIXES:
        raise DataError(f"{path}: a coloured cloud or mesh is written as .ply or .glb, not {suffix or 'no suffix'!r}")
    data = (ply_bytes if suffix == ".ply" else glb_bytes)(points, colours, faces)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_io.write_bytes(path, data)
    return path
