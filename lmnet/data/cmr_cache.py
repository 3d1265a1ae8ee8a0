"""convmesh's cache files, written in the original format and read without running pickles.

Both are ``np.savez_compressed(path, data=dict)`` (so the original code, which reads them with
``np.load(path, allow_pickle=True)["data"].item()``, reads lmnet's files); lmnet reads them through
:func:`lmnet.data.safe_pickle.load_npz_object` and checks every key, shape and dtype.

``<cache>/poses_metadata.npz`` (one row per training image, in dataset order):

| key | type | shape | content |
|---|---|---|---|
| ``scale`` | float32 tensor | (N, 1) | NDC scale |
| ``translation`` | float32 tensor | (N, 3) | NDC tx, ty and z = 0 |
| ``rotation`` | float32 tensor | (N, 4) | quaternion (w, x, y, z) |
| ``path`` | list of str | N | the images' ``rel_path`` with ``/`` |

``<cache>/pseudogt_<R>x<R>/<index>.npz`` (pseudo-ground-truth of training image ``index``):

| key | type | shape | content |
|---|---|---|---|
| ``mesh`` | float32 tensor | (3, M, M) | displacement map (M = 32) |
| ``texture`` | float16 tensor | (3, R, R) | UV texture in [−1, 1] |
| ``texture_alpha`` | float16 tensor | (1, R, R) | its visibility alpha in [0, 1] |
| ``image`` | float16 tensor | (3, H, W) | the masked input image in [−1, 1] (convmesh: H = W = 299) |
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lmnet import atomic_io
from lmnet.data.safe_pickle import load_npz_object
from lmnet.errors import CorruptFileError, DataError

POSES_FILE = "poses_metadata.npz"
POSE_KEYS = {"scale": 1, "translation": 3, "rotation": 4}   #: key → columns
PSEUDOGT_DTYPES = {"mesh": torch.float32, "texture": torch.float16, "texture_alpha": torch.float16,
                   "image": torch.float16}
PSEUDOGT_CHANNELS = {"mesh": 3, "texture": 3, "texture_alpha": 1, "image": 3}
#: value range of each pseudo-GT entry (None: any finite value)
PSEUDOGT_RANGES = {"mesh": None, "texture": (-1.0, 1.0), "texture_alpha": (0.0, 1.0), "image": (-1.0, 1.0)}


def pseudogt_dir(cache_dir: str | Path, resolution: int) -> Path:
    """``<cache_dir>/pseudogt_<R>x<R>``."""
    return Path(cache_dir) / f"pseudogt_{int(resolution)}x{int(resolution)}"


def pseudogt_path(cache_dir: str | Path, resolution: int, index: int) -> Path:
    """``<cache_dir>/pseudogt_<R>x<R>/<index>.npz``."""
    return pseudogt_dir(cache_dir, resolution) / f"{int(index)}.npz"


def write_npz_object(path: str | Path, obj) -> Path:
    """``np.savez_compressed(path, data=obj)``, written atomically."""
    path = Path(path)
    with atomic_io.atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, data=obj)
    return path


def _tensor(name: str, value, dtype: torch.dtype) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
    t = t.detach().cpu().to(dtype).contiguous()
    if not torch.isfinite(t).all():
        raise DataError(f"{name}: contains NaN or infinite values")
    return t


def write_poses_metadata(path: str | Path, scale, translation, rotation, paths: Sequence[str]) -> Path:
    """Write ``poses_metadata.npz`` (module docstring). ``scale`` (N,) or (N, 1); ``translation``
    (N, 2) or (N, 3) with z = 0 (a zero column is added to (N, 2)); ``rotation`` (N, 4) (w, x, y, z);
    ``paths`` N ``/``-separated rel_paths."""
    paths = [str(p) for p in paths]
    n = len(paths)
    s, t, r = (_tensor(k, v, torch.float32) for k, v in
               (("scale", scale), ("translation", translation), ("rotation", rotation)))
    if t.shape == (n, 2):
        t = torch.cat([t, torch.zeros(n, 1)], dim=1)
    if s.shape not in ((n,), (n, 1)) or t.shape != (n, 3) or r.shape != (n, 4):
        raise DataError(f"poses for {n} paths: expected scale (N, 1), translation (N, 2|3), rotation (N, 4); "
                        f"got {tuple(s.shape)}, {tuple(t.shape)}, {tuple(r.shape)}")
    s = s.reshape(n, 1)
    if (t[:, 2] != 0).any():
        raise DataError("translation: the z column must be 0 (weak perspective)")
    return write_npz_object(path, {"scale": s, "translation": t, "rotation": r, "path": paths})


def read_poses_metadata(path: str | Path) -> dict:
    """``{"scale": (N, 1), "translation": (N, 3), "rotation": (N, 4), "path": [N str]}`` of a
    ``poses_metadata.npz``, every entry checked; a bad file raises :class:`CorruptFileError`."""
    data = load_npz_object(path)
    if not isinstance(data, dict):
        raise CorruptFileError(path, f"data: expected a dict, got {type(data).__name__}")
    missing = [k for k in (*POSE_KEYS, "path") if k not in data]
    if missing:
        raise CorruptFileError(path, f"data: no key {missing[0]!r} (expected {', '.join((*POSE_KEYS, 'path'))})")
    paths = data["path"]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise CorruptFileError(path, "data['path']: expected a list of strings")
    out = {"path": list(paths)}
    for key, cols in POSE_KEYS.items():
        t = data[key]
        if not isinstance(t, torch.Tensor) or t.dtype != torch.float32 or tuple(t.shape) != (len(paths), cols):
            got = f"{t.dtype} {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise CorruptFileError(path, f"data[{key!r}]: expected a float32 tensor ({len(paths)}, {cols}), got {got}")
        if not torch.isfinite(t).all():
            raise CorruptFileError(path, f"data[{key!r}]: contains NaN or infinite values")
        out[key] = t
    return out


def _check_pseudogt(entries: dict, where, error) -> None:
    """Shapes, dtypes and ranges of the four pseudo-GT entries; ``error(message)`` raises."""
    for key, dtype in PSEUDOGT_DTYPES.items():
        t = entries[key]
        ok = isinstance(t, torch.Tensor) and t.dtype == dtype and t.ndim == 3 and t.shape[0] == PSEUDOGT_CHANNELS[key]
        if not ok:
            got = f"{t.dtype} {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            error(f"{where}[{key!r}]: expected a {dtype} tensor ({PSEUDOGT_CHANNELS[key]}, H, W), got {got}")
        lo_hi = PSEUDOGT_RANGES[key]
        if not torch.isfinite(t).all() or (lo_hi and (t.min() < lo_hi[0] or t.max() > lo_hi[1])):
            error(f"{where}[{key!r}]: values must be finite{f' and in {list(lo_hi)}' if lo_hi else ''}")
    if entries["texture"].shape[1:] != entries["texture_alpha"].shape[1:] or \
            entries["texture"].shape[1] != entries["texture"].shape[2]:
        error(f"{where}: texture {tuple(entries['texture'].shape)} and texture_alpha "
              f"{tuple(entries['texture_alpha'].shape)} must be square and of one size")


def write_pseudogt(path: str | Path, mesh, texture, texture_alpha, image) -> Path:
    """Write one pseudo-GT ``.npz`` (module docstring); inputs are arrays or tensors of the listed
    shapes, converted to the listed dtypes (values outside the ranges are refused)."""
    entries = {"mesh": mesh, "texture": texture, "texture_alpha": texture_alpha, "image": image}
    entries = {k: _tensor(k, v, PSEUDOGT_DTYPES[k]) for k, v in entries.items()}

    def error(message):
        raise DataError(f"pseudo-GT for {path}: {message}")

    _check_pseudogt(entries, "data", error)
    return write_npz_object(path, entries)


def read_pseudogt(path: str | Path) -> dict:
    """``{"mesh", "texture", "texture_alpha", "image"}`` of a pseudo-GT ``.npz``, as stored
    (convmesh's reader then uses ``image / 2 + 0.5`` and ``texture.float()``), every entry checked."""
    data = load_npz_object(path)
    if not isinstance(data, dict) or any(k not in data for k in PSEUDOGT_DTYPES):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise CorruptFileError(path, f"data: expected the keys {', '.join(PSEUDOGT_DTYPES)}, got {keys}")

    def error(message):
        raise CorruptFileError(path, message)

    _check_pseudogt(data, "data", error)
    return {k: data[k] for k in PSEUDOGT_DTYPES}
