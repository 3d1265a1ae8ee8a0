"""The ground truth of a synthetic bird / car set, kept beside the dataset layout for evaluation:
``<out>/truth/<split>/<index>.npz``, one per photograph (``index`` is the entry's position in its
split, as the loaders number images).

Keys (all arrays; read with ``np.load(allow_pickle=False)`` or :func:`read_truth`):

| key | shape, dtype | content |
|---|---|---|
| ``texture`` | (3, T, T) float32 | the UV texture in [−1, 1] (T = 128), mirror-symmetric |
| ``displacement`` | (3, 32, 32) float32 | the displacement map of the shape |
| ``vertices`` | (V, 3) float32 | ``template.vertex_positions(displacement)``: object space |
| ``keypoint_vertices`` | (K,) int64 | the template vertices used as keypoints |
| ``class_id`` | () int64 | the class (CUB species − 1; Pascal3D+ shape id) |
| ``scale``, ``translation``, ``rotation`` | (1,), (2,), (4,) float32 | the NDC pose the loader gives the unmirrored crop (w, x, y, z) |
| ``novel_rotation`` | (N, 4) float32 | N other views: the item's rotation turned about the object's up axis |
| ``novel_rgba`` | (N, 4, S, S) float32 | renders at ``S = truth_size`` under ``scale``, ``translation`` and ``novel_rotation``: rgb in [−1, 1] with background 0, then the hard mask |

Files are written atomically as deterministic zip archives (fixed time stamps), so the same seed
gives the same bytes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from lmnet import atomic_io
from lmnet.errors import CorruptFileError, DataError

__all__ = ["TRUTH_DIR", "TRUTH_KEYS", "truth_path", "write_npz", "read_npz", "read_truth"]

TRUTH_DIR = "truth"
#: key → number of dimensions
TRUTH_KEYS = {"texture": 3, "displacement": 3, "vertices": 2, "keypoint_vertices": 1, "class_id": 0,
              "scale": 1, "translation": 1, "rotation": 1, "novel_rotation": 2, "novel_rgba": 4}
_EPOCH = (1980, 1, 1, 0, 0, 0)


def truth_path(out: str | Path, split: str, index: int) -> Path:
    return Path(out) / TRUTH_DIR / split / f"{int(index)}.npz"


def write_npz(path: str | Path, arrays: dict) -> None:
    """``np.savez_compressed``-compatible archive of ``arrays``, written atomically, with fixed time
    stamps (byte-identical for identical arrays)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, value in arrays.items():
            data = io.BytesIO()
            np.save(data, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data.getvalue())
    atomic_io.write_bytes(path, buf.getvalue())


def read_npz(path: str | Path, keys: dict) -> dict:
    """The arrays ``keys`` (name → number of dimensions) of an archive → ``{name: array}``; a missing
    file is a DataError, an unreadable one, a missing key, a wrong number of dimensions or a
    non-finite float a CorruptFileError naming the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    out = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for name, ndim in keys.items():
                if name not in z.files:
                    raise CorruptFileError(path, f"no array {name!r} (expected {', '.join(keys)})")
                value = z[name]
                if value.ndim != ndim:
                    raise CorruptFileError(path, f"{name}: expected {ndim} dimensions, got shape {value.shape}")
                if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                    raise CorruptFileError(path, f"{name}: holds NaN or infinite values")
                out[name] = value
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(path, f"not a readable .npz archive of plain arrays ({exc})") from None
    return out


def read_truth(out: str | Path, split: str, index: int) -> dict:
    """The truth of photograph ``index`` of ``split`` (module docstring) → ``{key: array}``;
    CorruptFileError when a shape does not fit the others."""
    path = truth_path(out, split, index)
    t = read_npz(path, TRUTH_KEYS)
    n = t["novel_rotation"].shape[0]
    expected = {"texture": (3,), "displacement": (3,), "vertices": (t["vertices"].shape[0], 3), "scale": (1,),
                "translation": (2,), "rotation": (4,), "novel_rotation": (n, 4), "novel_rgba": (n, 4)}
    for name, head in expected.items():
        if t[name].shape[:len(head)] != head:
            raise CorruptFileError(path, f"{name}: shape {t[name].shape} does not start with {head}")
    size = t["novel_rgba"].shape[2:]
    if size[0] != size[1] or t["texture"].shape[1] != t["texture"].shape[2]:
        raise CorruptFileError(path, "novel_rgba and texture must be square")
    ids = t["keypoint_vertices"]
    if ids.size and (ids.min() < 0 or ids.max() >= len(t["vertices"])):
        raise CorruptFileError(path, "keypoint_vertices index outside vertices")
    t["class_id"] = int(t["class_id"])
    return t
