"""Read pickled ``.npz`` caches without running code from them.

convmesh writes its caches as ``np.savez_compressed(path, data=obj)`` where ``obj`` is a dict of
torch tensors, lists and strings: the member ``data.npy`` holds a 0-d object array, i.e. a pickle.
``np.load(allow_pickle=True)`` would run whatever a tampered file asks for. :func:`load_npz_object`
reads it with :class:`RestrictedUnpickler` instead, which admits only:

- numpy arrays (``numpy[._core].multiarray._reconstruct`` of exactly ``numpy.ndarray``), dtypes and
  scalars;
- torch tensors as plain pickling writes them: ``torch._utils._rebuild_tensor_v2`` over a storage,
  checked (no gradient, no hooks, no metadata), where the storage comes from
  ``torch.storage._load_from_bytes``. That function calls ``torch.load`` on embedded bytes with
  ``weights_only=False``; here the embedded bytes go through ``torch.load(..., weights_only=True,
  map_location="cpu")`` instead, so a pickle hidden in them is refused too;
- ``collections.OrderedDict`` (a tensor's empty hook table); dicts, lists, tuples, strings, numbers,
  booleans and None need no global.

Any other global is refused before it is looked up, and the loaded object is walked once more so
only those types come back. Every refusal is a :class:`~lmnet.errors.CorruptFileError` naming the
file.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmnet.errors import CorruptFileError

_RECONSTRUCT = ("numpy._core.multiarray", "numpy.core.multiarray")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler of the types listed in the module docstring; ``source`` names the file in errors."""

    def __init__(self, file, source: str | Path):
        super().__init__(file)
        self.source = str(source)

    def refuse(self, reason: str):
        raise CorruptFileError(self.source, f"refused to unpickle: {reason} (only tensors, arrays, lists, dicts, "
                                            f"strings and numbers are read from cache files)")

    def find_class(self, module: str, name: str):
        if module in _RECONSTRUCT and name == "_reconstruct":
            return self._reconstruct
        if module in _RECONSTRUCT and name == "scalar":
            return self._scalar
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild_tensor
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return self._load_storage
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        self.refuse(f"global {module}.{name}")

    def persistent_load(self, pid):
        self.refuse(f"persistent id {str(pid)[:60]!r}")

    def _reconstruct(self, subtype, shape, dtype):
        if subtype is not np.ndarray:
            self.refuse(f"array subtype {subtype!r}")
        return np.ndarray.__new__(np.ndarray, shape, dtype)

    def _scalar(self, dtype, data=None):
        if not isinstance(dtype, np.dtype) or dtype.kind == "O" or not isinstance(data, bytes):
            self.refuse("a numpy scalar that is not a plain number")
        return np.frombuffer(data, dtype=dtype, count=1)[0]

    def _load_storage(self, data):
        if not isinstance(data, bytes):
            self.refuse("tensor storage that is not bytes")
        try:
            storage = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError, TypeError) as exc:
            self.refuse(f"embedded tensor data ({_reason(exc)})")
        if not isinstance(storage, torch.storage.TypedStorage):
            self.refuse(f"embedded tensor data that is a {type(storage).__name__}, not a storage")
        return storage

    def _rebuild_tensor(self, storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
        if not isinstance(storage, torch.storage.TypedStorage):
            self.refuse("a tensor without a storage")
        ints = lambda v: isinstance(v, tuple) and all(type(x) is int for x in v)  # noqa: E731
        if type(offset) is not int or not ints(size) or not ints(stride) or requires_grad is not False:
            self.refuse("a tensor with an unusual layout or requires_grad")
        if (hooks is not None and hooks != collections.OrderedDict()) or metadata:
            self.refuse("a tensor with hooks or metadata")
        try:
            return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, collections.OrderedDict())
        except RuntimeError as exc:
            self.refuse(f"a tensor that does not fit its storage ({str(exc)[:120]})")


def _reason(exc: Exception) -> str:
    """The line of a ``torch.load(weights_only=True)`` error that says what it refused (not its
    advice to retry with ``weights_only=False``)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "WeightsUnpickler error" in line or "unsupported" in line.lower():
            return line[:200]
    return (lines[0] if lines else type(exc).__name__)[:200]


def check_plain(obj: Any, source: str | Path, where: str = "data") -> None:
    """Raise unless ``obj`` is built only of dicts (string keys), lists, tuples, strings, numbers,
    booleans, None, non-object numpy arrays and torch tensors."""
    if obj is None or isinstance(obj, (str, bool, int, float, np.number, np.bool_)):
        return
    if isinstance(obj, torch.Tensor) or (isinstance(obj, np.ndarray) and obj.dtype != object):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise CorruptFileError(source, f"{where}: a dict key that is a {type(k).__name__}, not a string")
            check_plain(v, source, f"{where}[{k!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_plain(v, source, f"{where}[{i}]")
        return
    raise CorruptFileError(source, f"{where}: unexpected {type(obj).__name__} in a cache file")


def _read_header(fh, source: Path, member: str) -> None:
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        version = np.lib.format.read_magic(fh)
        if version not in readers:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _, dtype = readers[version](fh)
    except ValueError as exc:
        raise CorruptFileError(source, f"{member}: not a .npy array ({exc})") from None
    if dtype != np.dtype(object) or shape != ():
        raise CorruptFileError(source, f"{member}: expected a pickled object (0-d object array), got {dtype} {shape}")


def load_npz_object(path: str | Path, key: str = "data") -> Any:
    """The object saved as ``np.savez[_compressed](path, key=obj)``, read through
    :class:`RestrictedUnpickler` and checked by :func:`check_plain`."""
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(path, "missing")
    member = f"{key}.npy"
    try:
        with zipfile.ZipFile(path) as zf:
            if member not in zf.namelist():
                raise CorruptFileError(path, f"no {key!r} entry; found {', '.join(zf.namelist()) or 'nothing'}")
            with zf.open(member) as fh:
                _read_header(fh, path, member)
                arr = RestrictedUnpickler(fh, path).load()
    except (zipfile.BadZipFile, EOFError, OSError, pickle.UnpicklingError, ValueError, TypeError,
            AttributeError, IndexError, KeyError, MemoryError) as exc:
        raise CorruptFileError(path, f"unreadable or truncated .npz ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype != object or arr.shape != ():
        raise CorruptFileError(path, f"{member}: expected a 0-d object array")
    obj = arr.item()
    check_plain(obj, path)
    return obj
