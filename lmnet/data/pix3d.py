"""Pix3D (real photographs of chairs, sofas and tables with aligned 3D models) in its released layout.

Layout under a root (the Pix3D archive, optionally with the 3D-LMNet point clouds beside it)::

    pix3d.json                       a list of entries (one per photograph)
    img/<cat>/<name>.jpg|png         the photograph
    mask/<cat>/<name>.png            its object mask (non-zero = object)
    model/<cat>/<shape>/model.obj    the shape (a file name "model<suffix>.obj")
    pix3d_pointclouds/<cat>/<shape>/pcl_1024<suffix>.npy   3D-LMNet's GT points (optional)

An entry needs the keys :data:`REQUIRED_KEYS`: ``img``, ``mask``, ``model`` (paths relative to the
root that stay inside it, :func:`entry_file`; nothing else is opened), ``category`` (a string),
``img_size`` ``[w, h]``, ``bbox`` ``[x0, y0, x1, y1]`` in pixels (finite) and the booleans
``truncated``, ``occluded``, ``slightly_occluded``. A used photograph's mask must mark the object
inside the bbox (:func:`check_mask`).

- **Filtering** (the paper's): category chair, sofa or table, and none of the three flags set.
- **Input image**: the photograph masked, cropped to the bbox, resized and padded to the network's
  128×128 by :func:`lmnet.data.inputs.prepare_pix3d` (the steps are stated there). A mask whose size
  differs from its photograph is resized to it with the same :func:`~lmnet.data.inputs.resize_bilinear`
  (then ≠ 0), as the 3D-LMNet loaders do.
- **Ground truth** (:func:`load_gt`): the official ``pcl_1024<suffix>.npy`` when present, else 1024
  points sampled uniformly on ``model.obj`` (:func:`lmnet.data.meshes.sample_surface` with
  ``face_draw="choice"``) by a generator seeded with ``(GT_SEED, crc32(model path))``, so every run
  draws the same points. Either way the points are then rotated into 3D-LMNet's frame
  (:func:`to_lmnet_frame`).
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import numpy as np

from lmnet.data.inputs import image_size, prepare_pix3d, read_converted, resize_bilinear
from lmnet.data.layout import load_npy
from lmnet.data.meshes import sample_surface
from lmnet.data.paths import resolve_inside
from lmnet.errors import CorruptFileError, DataError

CATEGORIES = ("chair", "sofa", "table")
#: Pix3D category → the ShapeNet synset the tables file it under
CATEGORY_SYNSETS = {"chair": "03001627", "sofa": "04256520", "table": "04379243"}
#: the keys holding a file name relative to the root (:func:`entry_file`)
PATH_KEYS = ("img", "mask", "model")
REQUIRED_KEYS = ("img", "mask", "model", "category", "img_size", "bbox", "truncated", "occluded",
                 "slightly_occluded")
INDEX_FILE = "pix3d.json"
POINTCLOUD_DIR = "pix3d_pointclouds"
GT_POINTS = 1024
GT_SEED = 0


# ---------------------------------------------------------------------------- pix3d.json


def entry_file(root: str | Path, entry: dict, key: str, where: str | None = None) -> Path:
    """The file ``entry[key]`` names (``key`` one of :data:`PATH_KEYS`), as ``root / entry[key]``
    through :func:`lmnet.data.paths.resolve_inside`: a name that is not a relative path inside
    ``root`` (absolute, ``..``, a symlink out, not a string) raises
    :class:`~lmnet.data.paths.PathOutsideRootError` naming ``pix3d.json`` and ``where`` (default:
    the entry's ``img``) and ``key``. Nothing is opened."""
    return resolve_inside(root, entry[key], source=Path(root) / INDEX_FILE, field=f"{where or _where(entry)}: {key}")


def _where(entry: dict) -> str:
    """How an error names an entry whose position in ``pix3d.json`` is not at hand: by its ``img``."""
    img = entry.get("img")
    return f"entry {img!r}" if isinstance(img, str) else "an entry"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_entry(e: Any, i: int, path: Path) -> None:
    """:class:`DataError` naming entry ``i`` of ``path`` and its key unless ``e`` has every key of
    :data:`REQUIRED_KEYS` with the right type: paths inside the root (:func:`entry_file`), a string
    category, whole ``img_size`` > 0, a finite ``bbox``, boolean flags."""
    if not isinstance(e, dict):
        raise DataError(f"{path}: entry {i} is not an object")
    name = f"entry {i} ({e['img']})" if isinstance(e.get("img"), str) else f"entry {i}"
    for k in REQUIRED_KEYS:
        if k not in e:
            raise DataError(f"{path}: {name} has no key {k!r}; expected keys {', '.join(REQUIRED_KEYS)}")
    for k in PATH_KEYS:
        entry_file(path.parent, e, k, where=f"entry {i}")
    if not (isinstance(e["category"], str) and e["category"]):
        raise DataError(f"{path}: {name}: category must be a name such as {', '.join(CATEGORIES)}, "
                        f"got {type(e['category']).__name__} {e['category']!r}")
    size = e["img_size"]
    if not (isinstance(size, list) and len(size) == 2 and all(type(v) is int and v > 0 for v in size)):
        raise DataError(f"{path}: {name}: img_size must be [width, height] > 0, got {size!r}")
    bbox = e["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        raise DataError(f"{path}: {name}: bbox must be [x0, y0, x1, y1], finite numbers, got {bbox!r}")
    for k in ("truncated", "occluded", "slightly_occluded"):
        if not isinstance(e[k], bool):
            raise DataError(f"{path}: {name}: {k} must be true or false, got {e[k]!r}")


def load_index(root: str | Path) -> list[dict]:
    """The entries of ``root/pix3d.json`` (in file order), each checked for :data:`REQUIRED_KEYS`
    and their types; a problem raises :class:`DataError` naming the entry and the key."""
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        raise DataError(f"{path} does not exist (expected the Pix3D root with {INDEX_FILE}, img/, mask/, model/)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise CorruptFileError(path, "expected a list of entries")
    for i, e in enumerate(data):
        _check_entry(e, i, path)
    return data


def is_used(entry: dict, categories: Sequence[str] = CATEGORIES) -> bool:
    """The paper's filter: category in ``categories`` and not truncated, occluded or slightly occluded."""
    return (entry["category"] in categories and not entry["truncated"] and not entry["occluded"]
            and not entry["slightly_occluded"])


def select(entries: Sequence[dict], categories: Sequence[str] | str | None = None) -> list[dict]:
    """The used entries of ``categories`` (default chair, sofa, table), in file order."""
    cats = parse_categories(categories)
    return [e for e in entries if is_used(e, cats)]


def parse_categories(categories: Sequence[str] | str | None) -> tuple[str, ...]:
    if categories is None or categories == "all":
        return CATEGORIES
    if isinstance(categories, str):
        categories = [c.strip() for c in categories.split(",") if c.strip()]
    bad = [c for c in categories if c not in CATEGORIES]
    if bad:
        raise DataError(f"Pix3D category {bad[0]!r} is not evaluated; expected some of {', '.join(CATEGORIES)}")
    return tuple(categories)


def entry_key(entry: dict) -> str:
    """``"<cat>/<image name>"`` (the image path without ``img/`` and extension)."""
    p = Path(entry["img"])
    return f"{entry['category']}/{p.stem}"


def check_bbox(entry: dict, width: int, height: int) -> tuple[int, int, int, int]:
    """The bbox as ints ``(x0, y0, x1, y1)``; :class:`DataError` unless
    ``0 <= x0 < x1 <= width`` and ``0 <= y0 < y1 <= height``."""
    x0, y0, x1, y1 = (int(round(v)) for v in entry["bbox"])
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise DataError(f"{entry['img']}: bbox {entry['bbox']} is outside the {width}x{height} image "
                        f"(expected 0 <= x0 < x1 <= {width}, 0 <= y0 < y1 <= {height})")
    return x0, y0, x1, y1


# ---------------------------------------------------------------------------- images


def read_photo(root: str | Path, entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb uint8 (H, W, 3), mask bool (H, W))`` of an entry; a mask of another size is resized
    to the photograph (bilinear, then ≠ 0). Both files are named through :func:`entry_file` and
    decoded with the pixel limit of :func:`lmnet.data.inputs.read_converted`."""
    rgb = read_converted(entry_file(root, entry, "img"), "RGB")
    mask = read_converted(entry_file(root, entry, "mask"), "L")
    if mask.shape != rgb.shape[:2]:
        mask = resize_bilinear(mask[..., None], rgb.shape[0], rgb.shape[1])[..., 0]
    return rgb, mask != 0


def check_mask(root: str | Path, entry: dict, mask: np.ndarray, bbox: tuple[int, int, int, int]) -> None:
    """:class:`CorruptFileError` naming the mask file and the entry unless ``mask`` (bool (H, W), as
    :func:`read_photo` returns it) marks an object pixel inside ``bbox`` (:func:`check_bbox`):
    otherwise the network input would be an all-black image, evaluated without a word."""
    x0, y0, x1, y1 = bbox
    if mask[y0:y1, x0:x1].any():
        return
    what = "is all zero" if not mask.any() else f"has no non-zero pixel inside the bbox {list(bbox)}"
    raise CorruptFileError(entry_file(root, entry, "mask"), f"the mask of {_where(entry)} {what}; expected "
                                                            f"the object's pixels (non-zero)")


def size_notes(root: str | Path, entry: dict, rgb: np.ndarray) -> list[str]:
    """Harmless inconsistencies worth a note: the photograph's size differs from ``img_size``, or
    the mask's from the photograph's (it is then resized)."""
    notes = []
    w, h = entry["img_size"]
    if rgb.shape[:2] != (h, w):
        notes.append(f"{entry_file(root, entry, 'img')}: image is {rgb.shape[1]}x{rgb.shape[0]}, "
                     f"pix3d.json img_size says {w}x{h}")
    mask_path = entry_file(root, entry, "mask")
    mw, mh = image_size(mask_path)
    if (mw, mh) != (rgb.shape[1], rgb.shape[0]):
        notes.append(f"{mask_path}: mask is {mw}x{mh}, image is {rgb.shape[1]}x{rgb.shape[0]} (resized to it)")
    return notes


# ---------------------------------------------------------------------------- ground truth


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices (V, 3) float64, triangles (F, 3) int64)`` of a Wavefront OBJ: ``v`` lines and
    ``f`` lines (``i``, ``i/t``, ``i/t/n``, ``i//n``, negative = relative; polygons fanned).
    :class:`CorruptFileError` names the file and line of anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    verts: list[tuple[float, float, float]] = []
    faces: list[tuple[int, int, int]] = []
    try:
        text = path.read_text(errors="strict")
    except UnicodeDecodeError:
        raise CorruptFileError(path, "not a text OBJ file") from None
    for ln, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] not in ("v", "f"):
            continue
        try:
            if parts[0] == "v":
                x, y, z = (float(v) for v in parts[1:4])
                verts.append((x, y, z))
            else:
                idx = []
                for tok in parts[1:]:
                    k = int(tok.split("/")[0])
                    k = k - 1 if k > 0 else len(verts) + k
                    if not 0 <= k < len(verts):
                        raise ValueError(f"vertex index {tok} out of range")
                    idx.append(k)
                if len(idx) < 3:
                    raise ValueError("a face needs 3 vertices")
                faces += [(idx[0], idx[j], idx[j + 1]) for j in range(1, len(idx) - 1)]
        except ValueError as exc:
            raise CorruptFileError(path, f"line {ln}: {line.strip()[:60]!r}: {exc}") from None
    if not faces:
        raise CorruptFileError(path, "no faces")
    v = np.asarray(verts, np.float64)
    if not np.isfinite(v).all():
        raise CorruptFileError(path, "non-finite vertex coordinates")
    return v, np.asarray(faces, np.int64)


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])


def rotate(points: np.ndarray, xa: float, ya: float) -> np.ndarray:
    """``points @ Rx(xa) @ Ry(ya)`` (row vectors, angles in degrees) as in the released code."""
    return np.asarray(points, np.float64) @ _rx(math.radians(xa)) @ _ry(math.radians(ya))


def to_lmnet_frame(points: np.ndarray) -> np.ndarray:
    """Pix3D model frame → 3D-LMNet's: ``rotate(rotate(p, -90, -90), -90, 0)``, i.e.
    ``(x, y, z) → (−y, −x, −z)``."""
    return rotate(rotate(points, -90.0, -90.0), -90.0, 0.0)


def pointcloud_path(root: str | Path, entry: dict, n_points: int = GT_POINTS) -> Path:
    """``pix3d_pointclouds/<cat>/<shape>/pcl_<n><suffix>.npy``; the suffix is what follows
    ``model`` in the OBJ file name (usually nothing). Built from the entry's ``category`` and
    ``model``, so it too must stay inside ``root`` (:func:`lmnet.data.paths.resolve_inside`)."""
    entry_file(root, entry, "model")  # refuses a model name outside the root
    obj = PurePosixPath(entry["model"])
    suffix = obj.stem[len("model"):] if obj.stem.startswith("model") else obj.stem
    rel = f"{POINTCLOUD_DIR}/{entry['category']}/{obj.parent.name}/pcl_{n_points}{suffix}.npy"
    return resolve_inside(root, rel, source=Path(root) / INDEX_FILE, field=f"{_where(entry)}: category, model")


def load_gt(root: str | Path, entry: dict, n_points: int = GT_POINTS, *, seed: int = GT_SEED) -> tuple[np.ndarray, str]:
    """``(points float32 (n_points, 3) in 3D-LMNet's frame, source)``; source ``"official"`` (the
    npy file) or ``"sampled"`` (from the OBJ with ``(seed, crc32(model path))``, see the module
    docstring; another ``seed`` draws another sample of the same surface)."""
    p = pointcloud_path(root, entry, n_points)
    if p.is_file():
        pts = load_npy(p)
        if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) != n_points or not np.isfinite(pts).all():
            raise CorruptFileError(p, f"expected finite ({n_points}, 3) points, got {pts.shape}")
        source = "official"
    else:
        obj = entry_file(root, entry, "model")
        v, f = read_obj(obj)
        rng = np.random.default_rng([int(seed), zlib.crc32(str(entry["model"]).encode("utf-8"))])
        try:
            pts = sample_surface(v, f, n_points, rng, face_draw="choice")
        except ValueError as exc:
            raise CorruptFileError(obj, str(exc)) from None
        source = "sampled"
    return to_lmnet_frame(pts).astype(np.float32), source


# ---------------------------------------------------------------------------- dataset


class Pix3DDataset:
    """The used Pix3D photographs of ``categories`` as network inputs with their GT.

    ``ds[i]`` → ``{"image": float32 tensor (3, 128, 128) raw 0–255, "points": float32 tensor
    (1024, 3) in 3D-LMNet's frame, "category": synset, "pix3d_category", "key": "<cat>/<name>",
    "model": the OBJ path, "gt_source": "official" | "sampled", "index"}``. Items follow
    ``pix3d.json``'s order. GT clouds are cached per model (many photographs share one shape).
    """

    def __init__(self, root: str | Path, categories: Sequence[str] | str | None = None, n_points: int = GT_POINTS):
        self.root = Path(root)
        self.categories = parse_categories(categories)
        self.n_points = int(n_points)
        self.entries = select(load_index(self.root), self.categories)
        if not self.entries:
            raise DataError(f"{self.root / INDEX_FILE}: no used entries (not truncated/occluded) in "
                            f"categories {', '.join(self.categories)}")
        self._gt: dict[str, tuple[np.ndarray, str]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def gt(self, entry: dict) -> tuple[np.ndarray, str]:
        key = str(entry["model"])
        if key not in self._gt:
            self._gt[key] = load_gt(self.root, entry, self.n_points)
        return self._gt[key]

    def __getitem__(self, index: int) -> dict:
        import torch

        e = self.entries[int(index)]
        rgb, mask = read_photo(self.root, e)
        bbox = check_bbox(e, rgb.shape[1], rgb.shape[0])
        check_mask(self.root, e, mask, bbox)
        pts, source = self.gt(e)
        return {"image": torch.from_numpy(prepare_pix3d(rgb, mask, bbox)), "points": torch.from_numpy(pts),
                "category": CATEGORY_SYNSETS[e["category"]], "pix3d_category": e["category"],
                "key": entry_key(e), "model": str(e["model"]), "gt_source": source, "index": int(index)}
