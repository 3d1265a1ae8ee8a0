"""Feature statistics files in convmesh's format: ``precomputed_fid_<R>x<R>_<split>.npz``
(docs/fid.md#statistics-files).

| key | dtype | shape | content |
|---|---|---|---|
| ``stats_m`` | float64 | (D,) | the mean feature |
| ``stats_s`` | float32 | (D, D) | the **lower triangle** of the covariance, zeros above the diagonal |
| ``num_images`` | int64 | () | how many images the statistics are of |
| ``resolution`` | int64 | () | the image size R the features were computed at |
| ``features`` | str | () | lmnet only: the feature extractor's name (``inception-torchvision``, ...) |

convmesh reads such a file with ``s = stats_s + np.triu(stats_s.T, 1)`` and ignores ``features``;
:func:`read_fid_stats` does the same and checks every array first. Files are written atomically and
read with ``np.load(allow_pickle=False)``.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmnet import atomic_io
from lmnet.errors import CorruptFileError, DataError


@dataclass(frozen=True)
class FidStats:
    """What a statistics file holds: ``mu (D,)`` and the full symmetric ``sigma (D, D)`` (float64),
    the image count, the resolution and the features' name (``""`` when the file names none)."""

    mu: np.ndarray
    sigma: np.ndarray
    num_images: int
    resolution: int
    features: str = ""


def fid_stats_name(resolution: int, split: str) -> str:
    """convmesh's file name: ``precomputed_fid_<R>x<R>_<split>.npz`` (e.g. ``..._299x299_train.npz``)."""
    return f"precomputed_fid_{int(resolution)}x{int(resolution)}_{split}.npz"


def write_fid_stats(path: str | Path, stats: FidStats) -> None:
    """Write ``stats`` to ``path`` atomically: ``sigma``'s lower triangle as float32 (what convmesh
    stores), ``mu`` as float64."""
    mu, sigma = np.asarray(stats.mu, np.float64), np.asarray(stats.sigma)
    d = mu.shape[0] if mu.ndim == 1 else -1
    if d < 1 or sigma.shape != (d, d):
        raise ValueError(f"write_fid_stats: mu {mu.shape} and sigma {sigma.shape}: expected (D,) and (D, D)")
    buf = io.BytesIO()
    np.savez_compressed(buf, stats_m=mu, stats_s=np.tril(sigma.astype(np.float32)),
                        num_images=np.int64(stats.num_images), resolution=np.int64(stats.resolution),
                        features=np.str_(stats.features))
    atomic_io.write_bytes(path, buf.getvalue())


def _scalar_int(path: Path, z, name: str) -> int:
    value = z[name]
    if value.shape != () or value.dtype.kind not in "iu" or int(value) < 1:
        raise CorruptFileError(path, f"{name}: expected a positive integer scalar, got {value.dtype} of shape {value.shape}")
    return int(value)


def _features_name(path: Path, z) -> str:
    """The optional ``features`` entry: a string scalar; ``""`` when absent (convmesh's files)."""
    if "features" not in z.files:
        return ""
    value = z["features"]
    if value.shape != () or value.dtype.kind != "U":
        raise CorruptFileError(path, f"features: expected a string scalar, got {value.dtype} of shape {value.shape}")
    return str(value)


def _triangle(path: Path, z, dims: int | None) -> tuple[np.ndarray, np.ndarray]:
    mu, tri = z["stats_m"], z["stats_s"]
    if mu.ndim != 1 or mu.dtype.kind != "f":
        raise CorruptFileError(path, f"stats_m: expected a float vector (D,), got {mu.dtype} of shape {mu.shape}")
    d = mu.shape[0]
    if dims is not None and d != dims:
        raise CorruptFileError(path, f"stats_m: {d} features, expected {dims}")
    if tri.shape != (d, d) or tri.dtype.kind != "f":
        raise CorruptFileError(path, f"stats_s: expected a float ({d}, {d}) lower triangle, got {tri.dtype} of shape {tri.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(tri))):
        raise CorruptFileError(path, "stats_m / stats_s hold NaN or infinite values")
    if np.any(np.triu(tri, 1)):
        raise CorruptFileError(path, "stats_s: not lower-triangular (non-zero values above the diagonal)")
    tri = tri.astype(np.float64)
    return mu.astype(np.float64), tri + np.triu(tri.T, 1)


def read_fid_stats(path: str | Path, dims: int | None = None) -> FidStats:
    """Read a statistics file (module docstring) → :class:`FidStats` with the full symmetric sigma.
    ``dims``: the feature count expected (e.g. 2048). A missing file → DataError; an unreadable
    archive, a missing key, a wrong shape or dtype, a non-lower-triangular ``stats_s`` or a wrong
    feature count → one-line CorruptFileError naming the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such FID statistics file")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("stats_m", "stats_s", "num_images", "resolution") if k not in z.files]
            if missing:
                raise CorruptFileError(path, f"no array {missing[0]!r} (expected stats_m, stats_s, num_images, resolution)")
            mu, sigma = _triangle(path, z, dims)
            features = _features_name(path, z)
            return FidStats(mu, sigma, _scalar_int(path, z, "num_images"), _scalar_int(path, z, "resolution"), features)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(path, f"not a readable .npz archive of plain arrays ({exc})") from None
