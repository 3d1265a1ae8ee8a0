"""Textured triangle meshes on disk: ``<stem>.obj`` + ``<stem>.mtl`` + ``<stem>.png``.

The three files (what Blender, MeshLab and the original convmesh export read and write):

- ``<stem>.obj``: ``mtllib <stem>.mtl``, one ``v x y z`` per vertex, one ``vt u v`` per UV point,
  ``usemtl <stem>``, one ``f a/ta b/tb c/tc`` per triangle (1-based vertex / UV indices);
- ``<stem>.mtl``: material ``<stem>`` with ``map_Ka`` and ``map_Kd`` naming ``<stem>.png`` (a bare
  file name, resolved beside the OBJ);
- ``<stem>.png``: the RGB texture; row 0 is the top of the image, which is v = 1 in OBJ's ``vt``
  convention and in lmnet's UV maps (:mod:`lmnet.uvmesh.maps`), so the map is written as it is.

Numbers: vertices and UVs are stored as float32 values, written in the shortest decimal form that
reads back to the same float32 (9 significant digits where the shortest form would not), so
``read_textured_obj(write_textured_obj(...))`` returns them bit for bit.

Axes (``axes=``): ``"object"`` (default) writes coordinates as given. ``"y_up"`` writes ``(x, z, y)``,
the y↔z swap convmesh's export applies to reconstructed CUB / Pascal3D+ meshes so that they stand
upright ("Y up") in modelling tools; since the swap is a reflection, the corner order of every face
is also reversed so that faces still wind counter-clockwise seen from outside (convmesh's own
export leaves them reversed, i.e. inside out). Read a file back with the axes it was written with.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lmnet.atomic_io import atomic_path
from lmnet.errors import CorruptFileError, DataError, NonFiniteError

__all__ = ["AXES", "TexturedMesh", "texture_to_uint8", "write_textured_obj", "read_textured_obj", "read_obj"]

#: the axis conventions of :func:`write_textured_obj` / :func:`read_textured_obj`
AXES = ("object", "y_up")
_IGNORED = {"o", "g", "s", "vn", "l"}


class TexturedMesh(NamedTuple):
    """What :func:`read_textured_obj` returns (0-based indices)."""

    vertices: np.ndarray   # (V, 3) float32
    faces: np.ndarray      # (F, 3) int64
    uvs: np.ndarray        # (T, 2) float32
    face_uvs: np.ndarray   # (F, 3) int64
    texture: np.ndarray    # (H, W, 3) uint8; None from read_obj for an OBJ without a material


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def texture_to_uint8(texture) -> np.ndarray:
    """A texture as the PNG stores it: ``uint8 (H, W, 3)`` is returned as is; a float ``(3, H, W)``
    in [−1, 1] (the networks' range) becomes ``round((t + 1) / 2 · 255)``, clipped to [0, 255]."""
    tex = _numpy(texture)
    if tex.dtype == np.uint8:
        if tex.ndim != 3 or tex.shape[2] != 3:
            raise ValueError(f"a uint8 texture must be (H, W, 3), got shape {tex.shape}")
        return np.ascontiguousarray(tex)
    if tex.ndim != 3 or tex.shape[0] != 3 or not np.issubdtype(tex.dtype, np.floating):
        raise ValueError(f"a float texture must be (3, H, W) in [-1, 1], got {tex.dtype} {tex.shape}")
    if not np.all(np.isfinite(tex)):
        raise NonFiniteError("texture has NaN or infinite values; nothing was written")
    scaled = np.rint((tex.astype(np.float64) + 1.0) * 0.5 * 255.0)
    return np.ascontiguousarray(np.clip(scaled, 0, 255).astype(np.uint8).transpose(1, 2, 0))


def _float32_text(values: np.ndarray) -> list[str]:
    """Each float32 as the shortest decimal that reads back (through float64) to the same float32."""
    out = []
    for x in values.ravel():
        text = str(x)
        if np.float32(float(text)) != x:
            text = "%.9g" % x
        out.append(text)
    return out


def _check_mesh(vertices, faces, uvs, face_uvs):
    """The four arrays as float32 / int64, shapes and index ranges checked (``ValueError``)."""
    v = _numpy(vertices).astype(np.float32)
    f = _numpy(faces)
    t = _numpy(uvs).astype(np.float32)
    ft = _numpy(face_uvs)
    for name, arr, width in (("vertices", v, 3), ("faces", f, 3), ("uvs", t, 2), ("face_uvs", ft, 3)):
        if arr.ndim != 2 or arr.shape[1] != width:
            raise ValueError(f"{name} must be (N, {width}), got shape {arr.shape}")
    if ft.shape != f.shape:
        raise ValueError(f"face_uvs {ft.shape} must have the shape of faces {f.shape}")
    for name, idx, count in (("faces", f, len(v)), ("face_uvs", ft, len(t))):
        if not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"{name} must hold integers, got {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= count):
            raise ValueError(f"{name} index out of range [0, {count})")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(t))):
        raise NonFiniteError("mesh vertices or UVs have NaN or infinite values; nothing was written")
    return v, f.astype(np.int64), t, ft.astype(np.int64)


def _axes_transform(vertices: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray, axes: str):
    """``"y_up"``: swap y and z and reverse each face's corners (its own inverse); ``"object"``: as is."""
    if axes not in AXES:
        raise ValueError(f"axes must be one of {AXES}, got {axes!r}")
    if axes == "object":
        return vertices, faces, face_uvs
    return vertices[:, [0, 2, 1]], faces[:, ::-1], face_uvs[:, ::-1]


def _obj_text(name: str, vertices, faces, uvs, face_uvs) -> str:
    vtext, ttext = _float32_text(vertices), _float32_text(uvs)
    lines = [f"# lmnet textured mesh: {len(vertices)} vertices, {len(uvs)} UV points, {len(faces)} faces",
             f"mtllib {name}.mtl"]
    lines += [f"v {vtext[3 * i]} {vtext[3 * i + 1]} {vtext[3 * i + 2]}" for i in range(len(vertices))]
    lines += [f"vt {ttext[2 * i]} {ttext[2 * i + 1]}" for i in range(len(uvs))]
    lines.append(f"usemtl {name}")
    lines += ["f " + " ".join(f"{a + 1}/{b + 1}" for a, b in zip(fv, ft)) for fv, ft in zip(faces, face_uvs)]
    return "\n".join(lines) + "\n"


def _mtl_text(name: str) -> str:
    return "\n".join([f"newmtl {name}", "Ka 1.000 1.000 1.000", "Kd 1.000 1.000 1.000",
                      "Ks 0.000 0.000 0.000", "d 1.0", "illum 1",
                      f"map_Ka {name}.png", f"map_Kd {name}.png"]) + "\n"


def write_textured_obj(stem_path, vertices, faces, uvs, face_uvs, texture, *, axes: str = "object") -> Path:
    """Write ``<stem>.obj``, ``<stem>.mtl`` and ``<stem>.png``; returns the OBJ's path (a ``stem_path``
    ending in ``.obj`` is taken without it).

    ``vertices (V, 3)``, ``faces (F, 3)`` (0-based), ``uvs (T, 2)`` in [0, 1], ``face_uvs (F, 3)``
    (0-based), torch or NumPy; ``texture`` float ``(3, H, W)`` in [−1, 1] or ``uint8 (H, W, 3)``
    (:func:`texture_to_uint8`); ``axes`` as in the module docstring. Everything is checked and
    encoded before anything is written; the three files are then written to temporary files and
    moved into place together, OBJ last, so an error leaves no file of this call behind (and
    earlier files of the same stem untouched).
    """
    stem = Path(stem_path)
    if stem.suffix.lower() == ".obj":
        stem = stem.with_suffix("")
    name = stem.name
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"the stem must be a file name without whitespace, got {name!r}")
    v, f, t, ft = _check_mesh(vertices, faces, uvs, face_uvs)
    v, f, ft = _axes_transform(v, f, ft, axes)
    png = io.BytesIO()
    Image.fromarray(texture_to_uint8(texture), mode="RGB").save(png, format="PNG")
    contents = {".obj": _obj_text(name, v, f, t, ft).encode(), ".mtl": _mtl_text(name).encode(),
                ".png": png.getvalue()}
    with contextlib.ExitStack() as stack:
        for suffix in (".obj", ".mtl", ".png"):  # exits in reverse: PNG, MTL, then OBJ replaced
            stack.enter_context(atomic_path(stem.with_name(name + suffix), suffix=suffix)).write_bytes(
                contents[suffix])
    return stem.with_name(name + ".obj")


def _bare_name(path: Path, line_no: int, value: str, what: str) -> str:
    if not value or "/" in value or "\\" in value or value in {".", ".."} or "\x00" in value:
        raise CorruptFileError(path, f"line {line_no}: {what} {value!r} must be a bare file name "
                                     f"beside the OBJ")
    return value


def _parse_numbers(path: Path, line_no: int, fields: list[str], counts: tuple[int, ...], what: str):
    if len(fields) not in counts:
        raise CorruptFileError(path, f"line {line_no}: '{what}' needs {' or '.join(map(str, counts))} "
                                     f"numbers, got {len(fields)}")
    try:
        values = [float(x) for x in fields]
    except ValueError:
        raise CorruptFileError(path, f"line {line_no}: '{what}' has a value that is not a number: "
                                     f"{' '.join(fields)!r}") from None
    if not all(np.isfinite(values)):
        raise CorruptFileError(path, f"line {line_no}: '{what}' has a NaN or infinite value")
    return values


def _parse_corner(path: Path, line_no: int, corner: str, counts: tuple[int, int],
                  require_uv: bool = True) -> tuple[int, int]:
    """``a/b`` or ``a/b/n`` → 0-based ``(vertex, uv)``; negative indices count back from the end.
    With ``require_uv=False`` also ``a``, ``a//n`` (uv −1)."""
    parts = corner.split("/")
    if not require_uv and parts[0] and (len(parts) == 1 or (len(parts) == 3 and not parts[1])):
        parts = parts[:1]
    elif len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        allowed = "'v/vt' or 'v/vt/vn'" if require_uv else "'v', 'v/vt', 'v//vn' or 'v/vt/vn'"
        raise CorruptFileError(path, f"line {line_no}: face corner {corner!r} must be {allowed}")
    out = [-1, -1]
    for k, (text, count, what) in enumerate(zip(parts[:2], counts, ("vertex", "UV"))):
        try:
            index = int(text)
        except ValueError:
            raise CorruptFileError(path, f"line {line_no}: face corner {corner!r}: {text!r} is not an "
                                         f"integer") from None
        index = index - 1 if index > 0 else count + index
        if not 0 <= index < count:
            raise CorruptFileError(path, f"line {line_no}: face corner {corner!r}: {what} index {text} is "
                                         f"out of range (the file has {count} so far)")
        out[k] = index
    return out[0], out[1]


def _parse_obj(path: Path, require_uv: bool = True):
    """``(v, vt, f, ft, mtllib)`` of an OBJ file, lists of rows; every defect names its line.
    ``require_uv=False`` admits corners without a UV (:func:`_parse_corner`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise CorruptFileError(path, f"not a readable UTF-8 text file ({exc})") from None
    v, vt, f, ft, mtllib = [], [], [], [], None
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#") or fields[0] in _IGNORED:
            continue
        key, rest = fields[0], fields[1:]
        if key == "v":
            v.append(_parse_numbers(path, line_no, rest, (3,), "v"))
        elif key == "vt":
            vt.append(_parse_numbers(path, line_no, rest, (2, 3), "vt")[:2])
        elif key == "f":
            if len(rest) != 3:
                raise CorruptFileError(path, f"line {line_no}: only triangles are supported, this face "
                                             f"has {len(rest)} corners")
            corners = [_parse_corner(path, line_no, c, (len(v), len(vt)), require_uv) for c in rest]
            f.append([c[0] for c in corners])
            ft.append([c[1] for c in corners])
        elif key == "mtllib":
            mtllib = _bare_name(path, line_no, line.strip()[len("mtllib"):].strip(), "mtllib")
        elif key != "usemtl":
            raise CorruptFileError(path, f"line {line_no}: unknown OBJ statement {key!r}")
    if not f:
        raise CorruptFileError(path, "no faces ('f' lines)")
    return v, vt, f, ft, mtllib


def _texture_name(mtl: Path) -> str:
    """The ``map_Kd`` (else ``map_Ka``) file name of the first material in ``mtl``."""
    try:
        lines = mtl.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{mtl} (named by the OBJ's mtllib) does not exist") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise CorruptFileError(mtl, f"not a readable UTF-8 text file ({exc})") from None
    maps = {}
    for line_no, line in enumerate(lines, start=1):
        fields = line.split(maxsplit=1)
        if fields and fields[0] in ("map_Kd", "map_Ka"):
            maps.setdefault(fields[0], _bare_name(mtl, line_no, fields[1].strip() if len(fields) > 1 else "",
                                                  fields[0]))
    if not maps:
        raise CorruptFileError(mtl, "no map_Kd or map_Ka line naming the texture")
    return maps.get("map_Kd", maps.get("map_Ka"))


def _read_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise CorruptFileError(path, f"texture is {im.format}, expected PNG")
            return np.ascontiguousarray(np.asarray(im.convert("RGB")))
    except FileNotFoundError:
        raise DataError(f"{path} (the material's texture) does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise CorruptFileError(path, f"unreadable or truncated PNG ({exc})") from None


def read_textured_obj(path, *, axes: str = "object") -> TexturedMesh:
    """Read what :func:`write_textured_obj` wrote (or any triangle OBJ with ``vt``, an MTL and a PNG).

    → :class:`TexturedMesh` ``(vertices (V, 3) float32, faces (F, 3) int64, uvs (T, 2) float32,
    face_uvs (F, 3) int64, texture (H, W, 3) uint8)``, 0-based, undoing ``axes`` (pass the value the
    file was written with). ``mtllib`` and the texture must be bare file names beside the OBJ.
    ``o``, ``g``, ``s``, ``vn`` and ``l`` lines are skipped; anything else malformed raises
    :class:`~lmnet.errors.CorruptFileError` naming the file and line (a missing file:
    :class:`~lmnet.errors.DataError`).
    """
    path = Path(path)
    v, vt, f, ft, mtllib = _parse_obj(path)
    if mtllib is None:
        raise CorruptFileError(path, "no 'mtllib' line: the texture cannot be found")
    texture = _read_png(path.parent / _texture_name(path.parent / mtllib))
    vertices = np.array(v, dtype=np.float64).reshape(-1, 3).astype(np.float32)
    faces, face_uvs = np.array(f, dtype=np.int64), np.array(ft, dtype=np.int64)
    vertices, faces, face_uvs = _axes_transform(vertices, faces, face_uvs, axes)
    uvs = np.array(vt, dtype=np.float64).reshape(-1, 2).astype(np.float32)
    return TexturedMesh(np.ascontiguousarray(vertices), np.ascontiguousarray(faces), uvs,
                        np.ascontiguousarray(face_uvs), texture)


def read_obj(path, *, axes: str = "object") -> TexturedMesh:
    """Any triangle OBJ, textured or not, for viewing. With an ``mtllib`` line it is read by
    :func:`read_textured_obj` (every rule of it holds). Without one, faces may be ``f a b c`` or
    ``f a//n …`` too, and the result has ``texture`` None, ``uvs`` ``(0, 2)`` and ``face_uvs``
    −1 (UVs given in the file are not used). Errors as :func:`read_textured_obj`."""
    path = Path(path)
    v, _, f, _, mtllib = _parse_obj(path, require_uv=False)
    if mtllib is not None:
        return read_textured_obj(path, axes=axes)
    vertices = np.array(v, dtype=np.float64).reshape(-1, 3).astype(np.float32)
    faces = np.array(f, dtype=np.int64)
    vertices, faces, face_uvs = _axes_transform(vertices, faces, np.full_like(faces, -1), axes)
    return TexturedMesh(np.ascontiguousarray(vertices), np.ascontiguousarray(faces), np.zeros((0, 2), np.float32),
                        np.ascontiguousarray(face_uvs), None)
