"""The user's mesh files for ``lmnet build-dataset``: which files are models of which category, and
each file read with trimesh into the normalised 3D-LMNet frame with its own colours.

**Folder → categories.** Without ``category``, every sub-folder of the meshes folder is a category
named after the folder, and every mesh file anywhere below it is one model of it; mesh files lying
directly in the meshes folder are refused (they have no category). With ``category``, every mesh
file anywhere below the folder is a model of that one category. A category named like one of the
13 ShapeNet categories (``airplane``, ``chair``, ...) or given as an 8-digit synset id keeps that
synset id; any other name gets a synset-like id ``9`` + 7 digits of a hash of the name
(:func:`category_id`; real synsets start with ``0``, so they never clash).

**Model ids.** The file's stem, or, for a file inside a per-model folder (``chair/abc123/model.obj``),
the name of that folder; characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``.
When two files of one category get the same id, the later one (in sorted path order) gets ``-`` and
8 hex digits of a hash of its path appended.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from lmnet.camera import LMNET_FROM_V1
from lmnet.data.categories import NAME_TO_SYNSET, SYNSET_TO_NAME
from lmnet.data.meshes import face_areas
from lmnet.errors import ConfigError, CorruptFileError, DataError
from lmnet.render.rasterizer import DEFAULT_MESH_COLOR

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")
UP_AXES = ("y", "z")
#: z-up file → y-up ShapeNet v1 frame for row vectors, ``(x, y, z) → (x, z, -y)``: the inverse of
#: the +90° turn about x that Blender applies to y-up files, so a ShapeNet model exported from
#: Blender (z up, front -y) comes back exactly.
V1_FROM_ZUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class SourceMesh:
    """One mesh file and where it goes: ``<root>/<tree>/<synset>/<model_id>``."""

    path: Path       # the file
    rel: str         # its path relative to the meshes folder (POSIX)
    category: str    # the category's name
    synset: str      # its synset-like id
    model_id: str


def category_id(name: str) -> str:
    """The synset-like id of a category name: a ShapeNet synset for one of the 13 ShapeNet names or
    an 8-digit id as given, else ``"9"`` + 7 digits of the name's blake2b hash."""
    clean = name.strip()
    if re.fullmatch(r"\d{8}", clean):
        return clean
    if clean.lower() in NAME_TO_SYNSET:
        return NAME_TO_SYNSET[clean.lower()]
    digest = int(hashlib.blake2b(f"lmnet-category/{clean}".encode(), digest_size=8).hexdigest(), 16)
    return f"9{digest % 10**7:07d}"


def category_name(synset: str, given: str) -> str:
    """The name written for a category: ShapeNet's name for a ShapeNet synset, else ``given``."""
    return SYNSET_TO_NAME.get(synset, given)


def _mesh_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MESH_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _model_ids(files: list[Path], category_dir: Path, taken: set[str]) -> list[str]:
    """One id per file (module docs), none of them in ``taken`` (the category's ids so far, which
    grows with them)."""
    ids: list[str] = []
    for f in files:
        rel = f.relative_to(category_dir)
        mid = _UNSAFE.sub("_", rel.parts[0] if len(rel.parts) > 1 else f.stem).strip(".") or "model"
        if mid in taken:
            mid += "-" + hashlib.blake2b(f.as_posix().encode(), digest_size=4).hexdigest()
        taken.add(mid)
        ids.append(mid)
    return ids


def find_meshes(meshes_dir: str | Path, category: str | None = None) -> list[SourceMesh]:
    """Every mesh file under ``meshes_dir`` with its category and model id (module docs), sorted.
    Raises :class:`DataError` for a missing folder, loose files without ``category`` or no mesh."""
    root = Path(meshes_dir)
    if not root.is_dir():
        raise DataError(f"meshes folder {root} does not exist")
    if category is not None:
        if not category.strip() or "/" in category:
            raise ConfigError(f"--category: expected a name without '/', got {category!r}")
        groups = [(category.strip(), root, _mesh_files(root))]
    else:
        loose = [p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES]
        if loose:
            raise DataError(f"{root}: mesh files directly in the folder ({', '.join(sorted(loose)[:3])}) have no "
                            "category: put them in a sub-folder named after their category, or pass --category NAME")
        groups = [(d.name, d, _mesh_files(d)) for d in sorted(root.iterdir())
                  if d.is_dir() and not d.name.startswith(".")]
    out, taken = [], {}
    for name, folder, files in groups:
        synset = category_id(name)  # two folders may name one synset ("chair", "03001627")
        for f, mid in zip(files, _model_ids(files, folder, taken.setdefault(synset, set()))):
            out.append(SourceMesh(f, f.relative_to(root).as_posix(), category_name(synset, name), synset, mid))
    if not out:
        raise DataError(f"{root}: no mesh files ({', '.join(MESH_SUFFIXES)}) found"
                        + ("" if category else " in its sub-folders (one per category)"))
    return out


def _corner_colors(mesh: trimesh.Trimesh) -> np.ndarray:
    """The mesh's own colours per face corner, ``(F, 3, 3)`` float64 in [0, 1]: vertex colours, face
    colours, a texture sampled at the corners' UVs (or the material's colour), else a plain grey."""
    vis, faces = mesh.visual, mesh.faces
    try:
        if vis.kind == "vertex":
            return np.asarray(vis.vertex_colors, np.float64)[faces][..., :3] / 255.0
        if vis.kind == "face":
            return np.repeat(np.asarray(vis.face_colors, np.float64)[:, None, :3], 3, 1) / 255.0
        if vis.kind == "texture":
            uv = getattr(vis, "uv", None)
            colors = vis.material.to_color(uv) if uv is not None and len(uv) == len(mesh.vertices) else None
            if colors is None:
                colors = vis.material.main_color
            colors = np.asarray(colors, np.float64)
            colors = colors[faces] if colors.ndim == 2 else np.broadcast_to(colors, (len(faces), 3, len(colors)))
            return colors[..., :3] / 255.0
    except (ValueError, IndexError, TypeError, AttributeError):
        pass  # an unusable colour description is no reason to drop the shape: render it grey
    return np.broadcast_to(np.asarray(DEFAULT_MESH_COLOR, np.float64), (len(faces), 3, 3))


def _triangles(path: Path) -> list[trimesh.Trimesh]:
    """The file's triangle meshes with their scene transforms applied; CorruptFileError if none."""
    try:
        geometry = trimesh.load_scene(str(path), process=False).dump(concatenate=False)
    except Exception as exc:  # trimesh raises many types for a bad file  # noqa: BLE001
        raise CorruptFileError(path, f"unreadable mesh ({type(exc).__name__}: {str(exc)[:120]})") from None
    meshes = [g for g in geometry if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    if not meshes:
        raise CorruptFileError(path, "no triangle faces (an empty, point-only or unreadable file)")
    return meshes


def read_mesh(path: str | Path, up: str = "y") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a mesh file and bring it into the 3D-LMNet frame, centred with a unit bbox diagonal.

    Args:
        up: the axis that points up in the file, ``"y"`` (ShapeNet's) or ``"z"`` (:data:`V1_FROM_ZUP`).
    Returns:
        ``vertices (V, 3)`` float64, ``faces (F, 3)`` int64 and ``corner_colors (F, 3, 3)`` float64 in
        [0, 1] (:func:`_corner_colors`), all parts of a scene concatenated.
    Raises:
        CorruptFileError naming the file: unreadable, no faces, face indices out of range, non-finite
        vertices, all vertices at one point, or zero surface area.
    """
    if up not in UP_AXES:
        raise ConfigError(f"up must be one of {UP_AXES}, got {up!r}")
    path = Path(path)
    verts, faces, colors, offset = [], [], [], 0
    for m in _triangles(path):
        f = np.asarray(m.faces, np.int64)
        if f.min() < 0 or f.max() >= len(m.vertices):
            raise CorruptFileError(path, f"face indices out of range (vertices: {len(m.vertices)})")
        verts.append(np.asarray(m.vertices, np.float64))
        faces.append(f + offset)
        colors.append(_corner_colors(m))
        offset += len(m.vertices)
    v, f = np.concatenate(verts), np.concatenate(faces)
    if not np.isfinite(v).all():
        raise CorruptFileError(path, "non-finite (NaN or infinite) vertex coordinates")
    if up == "z":
        v = v @ V1_FROM_ZUP
    used = v[np.unique(f)]
    if not np.ptp(used, axis=0).any():
        raise CorruptFileError(path, "degenerate: every vertex of its faces is at one point")
    v = (v - (used.min(0) + used.max(0)) / 2) / np.linalg.norm(np.ptp(used, axis=0))
    if not face_areas(v, f).sum() > 1e-12:
        raise CorruptFileError(path, "degenerate: zero surface area (every face is a line or a point)")
    return v @ LMNET_FROM_V1.numpy().astype(np.float64), f, np.concatenate(colors)


def closed_and_outward(vertices: np.ndarray, faces: np.ndarray) -> bool:
    """Whether the surface (``(V, 3)``, ``(F, 3)``; coincident vertices merged) is closed (every edge
    shared by exactly two faces), consistently wound and encloses a positive volume, i.e. every
    face's counter-clockwise side faces out: then back faces can be culled from a camera outside."""
    merged = trimesh.Trimesh(vertices, faces, process=True)
    return bool(merged.is_watertight and merged.is_winding_consistent and merged.volume > 0)
