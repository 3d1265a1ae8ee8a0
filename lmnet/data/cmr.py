"""CMR annotation files (``.mat``), shared by the CUB-200-2011 and Pascal3D+ loaders.

CMR (Kanazawa et al.) ships each split as two MATLAB files, read with
``scipy.io.loadmat(struct_as_record=False, squeeze_me=True)`` exactly as its loaders do:

- an **annotation file** with the variable ``images``, a 1×N struct array. The fields lmnet uses
  (:data:`ANNOTATION_FIELDS`) are ``rel_path`` (the image path under the images folder; Pascal3D+
  writes it with backslashes), ``bbox`` (a struct ``x1, y1, x2, y2``, **1-based** inclusive pixel
  coordinates), ``parts`` (``3 × K`` double: x, y 1-based, visible flag) and ``mask`` (``H × W``
  0/1, the image's size). The files carry more fields (``id``, ``width``, ``class_id``, ...), which
  are not read;
- an **SfM file** with the variable ``sfm_anno``, a 1×N struct array (entry i belongs to image i) of
  ``rot`` (3×3), ``scale`` (1×1) and ``trans`` (2×1 or 1×2): the weak-perspective fit of the
  keypoint mean shape ``S`` (3×K, also in the file) to the image's keypoints, in **0-based** pixel
  coordinates: ``parts[:2] − 1 ≈ scale · (rot @ S)[:2] + trans`` for the visible keypoints.

Every field is checked where it is read: a missing, ill-typed or ill-shaped field, or a truncated
file, raises :class:`~lmnet.errors.CorruptFileError` whose one line names the file, the item index
and the field (``.../train_cub_cleaned.mat: images[3].bbox: no field 'x2' ...``).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError, mat_struct

from lmnet.errors import CorruptFileError, DataError

ANNOTATION_VAR = "images"
SFM_VAR = "sfm_anno"
ANNOTATION_FIELDS = ("rel_path", "bbox", "parts", "mask")
BBOX_FIELDS = ("x1", "y1", "x2", "y2")
SFM_FIELDS = ("rot", "scale", "trans")
_LOAD_ERRORS = (ValueError, TypeError, OSError, EOFError, KeyError, IndexError, AttributeError, zlib.error,
                struct.error, MatReadError, NotImplementedError, UnicodeDecodeError, OverflowError)


@dataclass(frozen=True)
class Annotation:
    """One checked entry of ``images``: ``rel_path`` as stored, ``bbox`` ``(4,)`` float64
    ``x1, y1, x2, y2`` (1-based, inclusive), ``parts`` ``(3, K)`` float64 (x, y 1-based, visible),
    ``mask`` ``(H, W)`` uint8 0/1."""

    rel_path: str
    bbox: np.ndarray
    parts: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class SfmPose:
    """One checked entry of ``sfm_anno``: ``rot`` ``(3, 3)``, ``scale`` (a number > 0), ``trans``
    ``(2,)``, all float64, in 0-based pixels of the original image (module docstring)."""

    rot: np.ndarray
    scale: float
    trans: np.ndarray


def load_mat(path: str | Path, variables: Sequence[str]) -> dict[str, Any]:
    """``{name: value}`` of ``variables`` in the MATLAB file ``path``, loaded as CMR does; a missing,
    unreadable or truncated file or a missing variable raises naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    try:
        data = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True,
                                variable_names=list(variables))
    except _LOAD_ERRORS as exc:
        raise CorruptFileError(path, f"unreadable or truncated MATLAB file ({type(exc).__name__}: {exc})") from None
    missing = [v for v in variables if v not in data]
    if missing:
        raise CorruptFileError(path, f"no variable {missing[0]!r}; expected {', '.join(variables)}")
    return {v: data[v] for v in variables}


def struct_entries(path: str | Path, value: Any, name: str) -> list:
    """The entries of a 1×N struct array ``value`` (variable ``name`` of ``path``) as a list
    (``squeeze_me`` turns a 1×1 array into the struct itself)."""
    if isinstance(value, mat_struct):
        return [value]
    if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 1 \
            and all(isinstance(v, mat_struct) for v in value):
        return list(value)
    if isinstance(value, np.ndarray) and value.size == 0:
        return []
    raise CorruptFileError(path, f"{name}: expected a 1xN struct array, got {_describe(value)}")


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    if isinstance(value, mat_struct):
        return f"a struct with fields {', '.join(value._fieldnames)}"
    return type(value).__name__


def _field(path: Path, entry: Any, where: str, name: str, expected: Sequence[str]) -> Any:
    if not isinstance(entry, mat_struct):
        raise CorruptFileError(path, f"{where}: expected a struct, got {_describe(entry)}")
    if name not in entry._fieldnames:
        raise CorruptFileError(path, f"{where}: no field {name!r} (expected fields {', '.join(expected)})")
    return getattr(entry, name)


def _number(path: Path, value: Any, where: str) -> float:
    arr = np.asarray(value)
    if arr.shape != () or arr.dtype.kind not in "biuf" or not np.isfinite(arr):
        raise CorruptFileError(path, f"{where}: expected a finite number, got {_describe(value)}"
                                     f"{'' if arr.shape else f' {arr!r}'}")
    return float(arr)


def _array(path: Path, value: Any, where: str, shape: tuple[int, ...], kinds: str = "biuf") -> np.ndarray:
    """``value`` as a finite float64 array of ``shape`` (``-1`` = any length)."""
    arr = np.asarray(value)
    ok = arr.ndim == len(shape) and all(s in (-1, n) for s, n in zip(shape, arr.shape))
    if not ok or arr.dtype.kind not in kinds:
        want = "x".join("N" if s == -1 else str(s) for s in shape)
        raise CorruptFileError(path, f"{where}: expected a numeric {want} array, got {_describe(value)}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise CorruptFileError(path, f"{where}: contains NaN or infinite values")
    return arr


def parse_bbox(path: Path, value: Any, where: str) -> np.ndarray:
    """``bbox`` struct → ``(4,)`` float64 ``x1, y1, x2, y2`` with ``x1 <= x2`` and ``y1 <= y2``."""
    box = np.array([_number(path, _field(path, value, where, k, BBOX_FIELDS), f"{where}.{k}") for k in BBOX_FIELDS])
    if box[0] > box[2] or box[1] > box[3]:
        raise CorruptFileError(path, f"{where}: x1 <= x2 and y1 <= y2 expected, got x1={box[0]:g} y1={box[1]:g} "
                                     f"x2={box[2]:g} y2={box[3]:g}")
    return box


def parse_mask(path: Path, value: Any, where: str) -> np.ndarray:
    """``mask`` → ``(H, W)`` uint8 of 0/1 values."""
    arr = np.asarray(value)
    if arr.ndim != 2 or min(arr.shape) < 1 or arr.dtype.kind not in "biuf":
        raise CorruptFileError(path, f"{where}: expected an HxW 0/1 array, got {_describe(value)}")
    if arr.dtype != bool and not ((arr == 0) | (arr == 1)).all():
        raise CorruptFileError(path, f"{where}: values other than 0 and 1")
    return arr.astype(np.uint8)


def parse_annotation(path: str | Path, entry: Any, i: int, n_keypoints: int) -> Annotation:
    """Check entry ``i`` of ``images`` (with ``n_keypoints`` keypoints) and return it; the bbox
    must overlap the image (the mask's size) and reach at most one image width / height beyond it
    (so the square crop stays within a few times the image)."""
    path, where = Path(path), f"{ANNOTATION_VAR}[{i}]"
    get = lambda name: _field(path, entry, where, name, ANNOTATION_FIELDS)  # noqa: E731
    rel = get("rel_path")
    if not isinstance(rel, str):
        raise CorruptFileError(path, f"{where}.rel_path: expected a string, got {_describe(rel)}")
    bbox = parse_bbox(path, get("bbox"), f"{where}.bbox")
    parts = _array(path, get("parts"), f"{where}.parts", (3, n_keypoints))
    mask = parse_mask(path, get("mask"), f"{where}.mask")
    h, w = mask.shape
    if bbox[2] < 1 or bbox[3] < 1 or bbox[0] > w or bbox[1] > h:
        raise CorruptFileError(path, f"{where}.bbox: ({bbox[0]:g}, {bbox[1]:g}, {bbox[2]:g}, {bbox[3]:g}) does not "
                                     f"overlap the {w}x{h} image (1-based pixel coordinates)")
    if bbox[0] < 1 - w or bbox[1] < 1 - h or bbox[2] > 2 * w or bbox[3] > 2 * h:
        raise CorruptFileError(path, f"{where}.bbox: ({bbox[0]:g}, {bbox[1]:g}, {bbox[2]:g}, {bbox[3]:g}) reaches more "
                                     f"than the image's size beyond the {w}x{h} image")
    return Annotation(rel, bbox, parts, mask)


def parse_sfm(path: str | Path, entry: Any, i: int) -> SfmPose:
    """Check entry ``i`` of ``sfm_anno`` and return it."""
    path, where = Path(path), f"{SFM_VAR}[{i}]"
    get = lambda name: _field(path, entry, where, name, SFM_FIELDS)  # noqa: E731
    rot = _array(path, get("rot"), f"{where}.rot", (3, 3))
    scale = _number(path, get("scale"), f"{where}.scale")
    if scale <= 0:
        raise CorruptFileError(path, f"{where}.scale: expected a positive number, got {scale:g}")
    trans = _array(path, np.ravel(get("trans")), f"{where}.trans", (2,))
    return SfmPose(rot, scale, trans)


def read_annotations(path: str | Path, n_keypoints: int) -> list[Annotation]:
    """Every entry of the annotation file ``path``, checked (:func:`parse_annotation`)."""
    entries = struct_entries(path, load_mat(path, [ANNOTATION_VAR])[ANNOTATION_VAR], ANNOTATION_VAR)
    return [parse_annotation(path, e, i, n_keypoints) for i, e in enumerate(entries)]


def read_sfm(path: str | Path) -> list[SfmPose]:
    """Every entry of the SfM file ``path``, checked (:func:`parse_sfm`)."""
    entries = struct_entries(path, load_mat(path, [SFM_VAR])[SFM_VAR], SFM_VAR)
    return [parse_sfm(path, e, i) for i, e in enumerate(entries)]


def check_counts(anno_path: str | Path, n_anno: int, sfm_path: str | Path, n_sfm: int) -> None:
    """Entry ``i`` of the SfM file belongs to image ``i``: both must hold the same number."""
    if n_anno != n_sfm:
        raise DataError(f"{sfm_path}: {n_sfm} {SFM_VAR} entries, but {anno_path} has {n_anno} {ANNOTATION_VAR}; "
                        f"entry i of one must belong to entry i of the other")


def read_permutation(path: str | Path, value: Any, name: str, one_based: bool) -> np.ndarray:
    """A keypoint mirror permutation (``kp_perm_inds``) → 0-based int64 ``(K,)``; it must be a
    permutation of ``1..K`` (``one_based``) or ``0..K-1``."""
    arr = np.ravel(np.asarray(value))
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        raise CorruptFileError(path, f"{name}: expected a list of keypoint indices, got {_describe(value)}")
    perm = arr.astype(np.int64) - (1 if one_based else 0)
    whole = np.array_equal(arr, np.round(arr))
    if not whole or not np.array_equal(np.sort(perm), np.arange(arr.size)):
        base = "1..K" if one_based else "0..K-1"
        raise CorruptFileError(path, f"{name}: expected a permutation of {base} (K={arr.size}), got {arr.tolist()}")
    return perm


def read_text_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file of a dataset (CUB's id lists, Pascal3D+'s labels); a missing
    or undecodable file raises naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise CorruptFileError(path, "not a UTF-8 text file") from None
