"""The ShapeNet on-disk layout exactly as users download it (docs/formats.md), and strict readers.

::

    <root>/ShapeNetRendering/<synset>/<model>/rendering/00.png … 23.png       137×137 RGBA
    <root>/ShapeNetRendering/<synset>/<model>/rendering/renderings.txt        00.png … 23.png
    <root>/ShapeNetRendering/<synset>/<model>/rendering/rendering_metadata.txt
    <root>/ShapeNet_pointclouds/<synset>/<model>/pointcloud_{1024,2048,16384}.npy   float32 (N, 3)

Every reader raises :class:`~lmnet.errors.CorruptFileError` naming the file and what was wrong.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmnet.data.inputs import R2N2_IMAGE_SIZE, read_rgba
from lmnet.errors import CorruptFileError, DataError

RENDERING_DIR = "ShapeNetRendering"
POINTCLOUD_DIR = "ShapeNet_pointclouds"
N_VIEWS = 24
POINT_COUNTS = (1024, 2048, 16384)


@dataclass(frozen=True)
class ViewMeta:
    """One line of ``rendering_metadata.txt``. Angles in degrees."""

    azimuth: float
    elevation: float
    inplane: float
    distance_ratio: float
    fov: float


def rendering_dir(root: str | Path, synset: str, model: str) -> Path:
    return Path(root) / RENDERING_DIR / synset / model / "rendering"


def image_path(root: str | Path, synset: str, model: str, view: int) -> Path:
    return rendering_dir(root, synset, model) / f"{view:02d}.png"


def metadata_path(root: str | Path, synset: str, model: str) -> Path:
    return rendering_dir(root, synset, model) / "rendering_metadata.txt"


def pointcloud_path(root: str | Path, synset: str, model: str, n_points: int) -> Path:
    if n_points not in POINT_COUNTS:
        raise DataError(f"n_points must be one of {POINT_COUNTS}, got {n_points}")
    return Path(root) / POINTCLOUD_DIR / synset / model / f"pointcloud_{n_points}.npy"


def pointcloud_colours_path(root: str | Path, synset: str, model: str, n_points: int) -> Path:
    """``uint8 (n_points, 3)`` RGB of each point of ``pointcloud_{n_points}.npy`` (``lmnet synth --colors``)."""
    return pointcloud_path(root, synset, model, n_points).with_name(f"pointcloud_{n_points}_colors.npy")


def format_metadata_line(meta: ViewMeta) -> str:
    return (f"{meta.azimuth:.10g} {meta.elevation:.10g} {meta.inplane:.10g} "
            f"{meta.distance_ratio:.10g} {meta.fov:.10g}")


def parse_metadata(path: str | Path) -> list[ViewMeta]:
    """Parse ``rendering_metadata.txt`` into 24 :class:`ViewMeta` (R2N2 writes 5 numbers a line;
    some copies wrap lines in brackets or commas, which are accepted)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CorruptFileError(path, "missing metadata file") from None
    except UnicodeDecodeError:
        raise CorruptFileError(path, "not a text file") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) != N_VIEWS:
        raise CorruptFileError(path, f"expected {N_VIEWS} metadata lines, found {len(lines)}")
    metas = []
    for i, line in enumerate(lines, 1):
        parts = line.replace("[", " ").replace("]", " ").replace(",", " ").split()
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise CorruptFileError(path, f"line {i}: expected 5 numbers, got {line.strip()!r}") from None
        if len(vals) != 5 or not all(math.isfinite(v) for v in vals):
            raise CorruptFileError(
                path, f"line {i}: expected 5 finite numbers (azimuth elevation inplane "
                      f"distance_ratio fov), got {line.strip()!r}")
        if vals[3] <= 0 or not (0 < vals[4] < 180):
            raise CorruptFileError(path, f"line {i}: distance_ratio must be > 0 and 0 < fov < 180, "
                                         f"got {line.strip()!r}")
        metas.append(ViewMeta(*vals))
    return metas


def read_image(path: str | Path) -> np.ndarray:
    """Read one rendering as ``uint8 (137, 137, 4)`` RGBA with :func:`lmnet.data.inputs.read_rgba`
    (EXIF orientation applied, 16-bit scaled, size limit). A rendering must carry its silhouette:
    an image without alpha (RGB, 8/16-bit gray) is refused rather than given an all-opaque mask."""

    path = Path(path)
    arr = read_rgba(path, require_alpha=True)
    if arr.shape[:2] != (R2N2_IMAGE_SIZE, R2N2_IMAGE_SIZE):
        raise CorruptFileError(path, f"expected a {R2N2_IMAGE_SIZE}x{R2N2_IMAGE_SIZE} image, got "
                                     f"{arr.shape[1]}x{arr.shape[0]}")
    return arr


def load_npy(path: str | Path, what: str = "point cloud") -> np.ndarray:
    """``np.load`` without pickles; a missing or unreadable file is a :class:`CorruptFileError`
    naming ``path`` (``what``: what the file should hold, for the message)."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CorruptFileError(path, f"missing {what}") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(path, f"unreadable .npy ({exc})") from None
    if not isinstance(arr, np.ndarray):  # np.load opens a .npz archive whatever the file is called
        keys = sorted(arr.files)
        arr.close()
        raise CorruptFileError(path, f"a .npz archive (arrays {keys[:5]}), not a .npy array: save the {what} "
                                     "with np.save")
    return arr


def read_pointcloud(path: str | Path, n_points: int | None = None) -> np.ndarray:
    """Read a ``pointcloud_N.npy`` as ``float32 (N, 3)``, checking shape and finiteness."""
    path = Path(path)
    arr = load_npy(path)
    if arr.ndim != 2 or arr.shape[1] != 3 or (n_points is not None and arr.shape[0] != n_points):
        want = f"({n_points}, 3)" if n_points else "(N, 3)"
        raise CorruptFileError(path, f"expected shape {want}, got {tuple(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise CorruptFileError(path, f"expected float points, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise CorruptFileError(path, "contains NaN or infinite values")
    return arr.astype(np.float32, copy=False)


def read_model_pointcloud(root: str | Path, key: str, n_points: int) -> np.ndarray:
    """The ground-truth cloud of ``key`` = ``"synset/model_id"`` under ``root``: its
    ``pointcloud_<n_points>.npy`` read by :func:`read_pointcloud` → ``float32 (n_points, 3)``."""
    synset, model = key.split("/", 1)
    return read_pointcloud(pointcloud_path(Path(root), synset, model, n_points), n_points)


def list_models(root: str | Path, synset: str) -> list[str]:
    """Model ids present for ``synset`` in either tree, sorted."""
    ids: set[str] = set()
    for sub in (RENDERING_DIR, POINTCLOUD_DIR):
        d = Path(root) / sub / synset
        if d.is_dir():
            ids.update(p.name for p in d.iterdir() if p.is_dir())
    return sorted(ids)


def list_synsets(root: str | Path) -> list[str]:
    found: set[str] = set()
    for sub in (RENDERING_DIR, POINTCLOUD_DIR):
        d = Path(root) / sub
        if d.is_dir():
            found.update(p.name for p in d.iterdir() if p.is_dir())
    return sorted(found)
