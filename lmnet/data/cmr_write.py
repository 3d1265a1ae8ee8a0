"""Write CUB-200-2011 and Pascal3D+ trees in the exact layouts the loaders read
(:mod:`lmnet.data.cub`, :mod:`lmnet.data.p3d`): stand-in datasets for tests and synthetic data.

A caller (a test, the synthetic generator) describes each image as a :class:`CmrItem` and calls
:func:`write_cub_tree` / :func:`write_p3d_tree` once per split. The ``.mat`` files are written with
``scipy.io.savemat`` as 1×N struct arrays with CMR's field names, the nested ``bbox`` struct and the
original dtypes (CUB: double fields, ``mask`` logical; Pascal3D+: ``width`` uint16, ``bbox`` uint16,
``mask`` uint8, ``rel_path`` with backslashes); coordinates stay 1-based. Text files use the original
separators (``images.txt``: ``"<id> <rel_path>"``; ``p3d_labels.csv``: commas). Writing a second
split into the same root adds its images to ``images.txt`` / ``image_class_labels.txt`` /
``p3d_labels.csv`` (an image already listed keeps its id). Every file is written atomically.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.io
import scipy.spatial

from lmnet import atomic_io
from lmnet.data import cub, p3d
from lmnet.data.paths import resolve_inside
from lmnet.errors import DataError


@dataclass
class CmrItem:
    """One annotated photograph.

    - ``rel_path``: path under the images folder, ``/``-separated (e.g. ``001.Bird/x_0001.jpg``,
      ``car_imagenet/n02814533_1.JPEG``); ``.jpg`` / ``.jpeg`` are written as JPEG (quality 95),
      anything else as PNG;
    - ``image``: uint8 ``(H, W, 3)``, or ``(H, W)`` for a grayscale photograph;
    - ``mask``: ``(H, W)`` 0/1 (any integer or bool dtype);
    - ``bbox``: ``(x1, y1, x2, y2)``, 1-based inclusive pixels;
    - ``parts``: ``(3, K)`` x, y (1-based) and visibility 0/1 (CUB K = 15, Pascal3D+ K = 12);
    - ``rot`` (3, 3), ``scale``, ``trans`` (2,): the SfM pose in 0-based pixels
      (``parts[:2] − 1 = scale · (rot @ S)[:2] + trans`` for a consistent item);
    - ``class_id``: CUB species 0..199 (written as ``class_id + 1``); unused for Pascal3D+;
    - ``p3d_labels``: Pascal3D+ ``(primary, secondary, shape)`` names for ``p3d_labels.csv``, or None
      (no row, as for the ``car_pascal`` images).
    """

    rel_path: str
    image: np.ndarray
    mask: np.ndarray
    bbox: Sequence[float]
    parts: np.ndarray
    rot: np.ndarray
    scale: float
    trans: Sequence[float]
    class_id: int = 0
    p3d_labels: tuple[str, str, str] | None = None


def _check_item(item: CmrItem, i: int, n_keypoints: int) -> None:
    where = f"item {i} ({item.rel_path!r})"
    img, mask = np.asarray(item.image), np.asarray(item.mask)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise DataError(f"{where}: image must be uint8 (H, W, 3) or (H, W), got {img.dtype} {img.shape}")
    if mask.shape != img.shape[:2] or not ((mask == 0) | (mask == 1)).all():
        raise DataError(f"{where}: mask must be 0/1 of the image's size {img.shape[:2]}, got {mask.shape}")
    if np.shape(item.parts) != (3, n_keypoints):
        raise DataError(f"{where}: parts must be (3, {n_keypoints}), got {np.shape(item.parts)}")
    if np.shape(item.rot) != (3, 3) or np.shape(item.trans) != (2,) or len(item.bbox) != 4:
        raise DataError(f"{where}: rot (3, 3), trans (2,) and a 4-number bbox expected")


def _write_image(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG" if jpeg else "PNG",
                                                      **({"quality": 95} if jpeg else {}))
    atomic_io.write_bytes(path, buf.getvalue())


def _write_images(images_dir: Path, items: Sequence[CmrItem], source: str) -> None:
    for i, item in enumerate(items):
        dest = resolve_inside(images_dir, item.rel_path, source=source, field=f"items[{i}].rel_path")
        _write_image(dest, np.asarray(item.image))


def _struct_array(records: list[dict]) -> np.ndarray:
    """A 1×N MATLAB struct array of ``records`` (dicts with the same keys)."""
    fields = list(records[0]) if records else []
    arr = np.empty((1, len(records)), dtype=[(f, object) for f in fields])
    for j, rec in enumerate(records):
        for f in fields:
            arr[0, j][f] = rec[f]
    return arr


def _bbox(bbox: Sequence[float], dtype) -> dict:
    """The nested ``bbox`` struct; an integer ``dtype`` (Pascal3D+) gets rounded values."""
    integer = np.issubdtype(dtype, np.integer)
    return {k: dtype(round(float(v)) if integer else v) for k, v in zip(("x1", "y1", "x2", "y2"), bbox)}


def _save_mat(path: Path, variables: dict) -> None:
    with atomic_io.atomic_path(path, suffix=".mat") as tmp:
        scipy.io.savemat(str(tmp), variables, do_compression=True)


def _sfm_variables(items: Sequence[CmrItem], mean_shape: np.ndarray | None, column_trans: bool, extra: dict) -> dict:
    """``sfm_anno`` (+ ``S`` and its convex hull ``conv_tri``, 1-based, when ``mean_shape`` is given)."""
    recs = []
    for item in items:
        t = np.asarray(item.trans, np.float64)
        recs.append({"rot": np.asarray(item.rot, np.float64), "scale": np.float64(item.scale),
                     "trans": t.reshape(2, 1) if column_trans else t.reshape(1, 2), **extra})
    out = {"sfm_anno": _struct_array(recs)}
    if mean_shape is not None:
        s = np.asarray(mean_shape, np.float64)
        out["S"] = s
        out["conv_tri"] = (scipy.spatial.ConvexHull(s.T).simplices + 1).astype(np.uint8)
    return out


def _merge_lines(path: Path, new: list[str], header: str | None = None) -> list[str]:
    """The lines of ``path`` (after ``header``) followed by those of ``new`` not already there."""
    old = path.read_text(encoding="utf-8").splitlines()[1 if header else 0:] if path.is_file() else []
    old = [line for line in old if line.strip()]
    seen = set(old)
    return old + [line for line in new if line not in seen]


def _write_cub_lists(root: Path, items: Sequence[CmrItem]) -> None:
    """Add the items to ``images.txt`` and ``image_class_labels.txt`` (an image listed before keeps its id)."""
    images = cub.read_id_file(root / cub.IMAGES_TXT) if (root / cub.IMAGES_TXT).is_file() else {}
    labels = cub.read_id_file(root / cub.CLASS_LABELS_TXT) if (root / cub.CLASS_LABELS_TXT).is_file() else {}
    by_path = {rel: key for key, rel in images.items()}
    next_id = max((int(k) for k in images), default=0) + 1
    for item in items:
        if item.rel_path not in by_path:
            by_path[item.rel_path] = str(next_id)
            next_id += 1
        labels[by_path[item.rel_path]] = str(int(item.class_id) + 1)
    order = sorted(by_path.items(), key=lambda kv: int(kv[1]))
    atomic_io.write_text(root / cub.IMAGES_TXT, "".join(f"{k} {rel}\n" for rel, k in order))
    atomic_io.write_text(root / cub.CLASS_LABELS_TXT, "".join(f"{k} {labels[k]}\n" for _, k in order))


def write_cub_tree(root: str | Path, items: Sequence[CmrItem], split: str = "train",
                   mean_shape: np.ndarray | None = None) -> Path:
    """Write ``items`` as CUB split ``split`` under ``root`` (layout: :mod:`lmnet.data.cub`): the
    photographs, ``data/<split>_cub_cleaned.mat``, ``sfm/anno_<split>.mat`` (with the keypoint mean
    shape ``S`` (3, 15) when given) and the two id lists. Returns ``root``."""
    root = Path(root)
    cub.check_split(split)
    for i, item in enumerate(items):
        _check_item(item, i, cub.N_KEYPOINTS)
    _write_images(root / cub.IMAGES_DIR, items, f"write_cub_tree({split})")
    recs = []
    for i, item in enumerate(items):
        h, w = np.asarray(item.mask).shape
        recs.append({"id": np.float64(i + 1), "rel_path": item.rel_path, "train": np.float64(split == "train"),
                     "test": np.float64(split != "train"), "bbox": _bbox(item.bbox, np.float64),
                     "width": np.float64(w), "height": np.float64(h),
                     "parts": np.asarray(item.parts, np.float64), "mask": np.asarray(item.mask).astype(bool),
                     "class_id": np.float64(int(item.class_id) + 1)})
    _save_mat(cub.annotation_path(root, split), {"images": _struct_array(recs)})
    _save_mat(cub.sfm_path(root, split), _sfm_variables(items, mean_shape, column_trans=True, extra={}))
    _write_cub_lists(root, items)
    return root


def _write_p3d_labels(root: Path, items: Sequence[CmrItem]) -> None:
    new = []
    for item in items:
        if item.p3d_labels is not None:
            primary, secondary, shape = item.p3d_labels
            new.append(f"{item.rel_path.rsplit('/', 1)[-1]},{primary},{secondary},{shape},1")
    lines = _merge_lines(root / p3d.LABELS_FILE, new, header=p3d.LABELS_HEADER)
    atomic_io.write_text(root / p3d.LABELS_FILE, "".join(line + "\n" for line in [p3d.LABELS_HEADER, *lines]))


def write_p3d_tree(root: str | Path, items: Sequence[CmrItem], split: str = "train",
                   mean_shape: np.ndarray | None = None) -> Path:
    """Write ``items`` as Pascal3D+ car split ``split`` under ``root`` (layout: :mod:`lmnet.data.p3d`):
    the photographs, ``data/car_<split>.mat`` (backslash ``rel_path``), ``data/car_kps.mat``,
    ``sfm/car_<split>.mat`` (with ``S`` (3, 12) when given) and ``p3d_labels.csv``. Returns ``root``."""
    root = Path(root)
    p3d.check_split(split)
    for i, item in enumerate(items):
        _check_item(item, i, len(p3d.KP_NAMES))
    _write_images(root / p3d.IMAGES_DIR, items, f"write_p3d_tree({split})")
    recs = []
    for i, item in enumerate(items):
        h, w = np.asarray(item.mask).shape
        recs.append({"width": np.uint16(w), "cad_index": np.float64(1), "height": np.float64(h),
                     "voc_image_id": Path(item.rel_path).stem, "voc_rec_id": np.float64(1),
                     "is_train": np.float64(split == "train"), "rel_path": item.rel_path.replace("/", "\\"),
                     "bbox": _bbox(item.bbox, np.uint16), "parts": np.asarray(item.parts, np.float64),
                     "mask": np.asarray(item.mask).astype(np.uint8)})
    _save_mat(p3d.annotation_path(root, split), {"images": _struct_array(recs)})
    names = np.empty((len(p3d.KP_NAMES), 1), dtype=object)
    names[:, 0] = p3d.KP_NAMES
    _save_mat(root / p3d.KPS_FILE, {"kp_names": names,
                                    "kp_perm_inds": np.array(p3d.KP_PERM_1BASED, np.uint8).reshape(-1, 1)})
    _save_mat(p3d.sfm_path(root, split), _sfm_variables(items, mean_shape, column_trans=False,
                                                        extra={"err_sfm_reproj": np.float64(0.0)}))
    _write_p3d_labels(root, items)
    return root
