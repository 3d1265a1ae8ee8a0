"""What the values of an imported checkpoint must be before they become lmnet weights.

Keys and shapes say a file has the right layout; they do not say its numbers are usable. A
diverged or damaged checkpoint can hold NaN or infinite weights, an edited one integer tensors
(which ``load_state_dict`` would silently cast), and a BatchNorm variance below 0 makes every
output NaN (``sqrt(var + eps)``). Each of these is refused at import, naming the tensor and the
file, instead of surfacing as a NaN prediction at the first ``lmnet infer``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch

from lmnet.errors import CorruptFileError

# BatchNorm variances in the two published formats (TFLearn, PyTorch): must be >= 0.
VARIANCE_SUFFIXES = ("moving_variance", "running_var")


def _is_float(t: np.ndarray | torch.Tensor) -> bool:
    return t.is_floating_point() if isinstance(t, torch.Tensor) else bool(np.issubdtype(t.dtype, np.floating))


def _is_int(t: np.ndarray | torch.Tensor) -> bool:
    if isinstance(t, torch.Tensor):
        return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)
    return bool(np.issubdtype(t.dtype, np.integer))


def _size(t: np.ndarray | torch.Tensor) -> int:
    return t.numel() if isinstance(t, torch.Tensor) else int(t.size)


def _n_finite(t: np.ndarray | torch.Tensor) -> int:
    return int((torch.isfinite(t) if isinstance(t, torch.Tensor) else np.isfinite(t)).sum())


def check_weights(tensors: Mapping[str, np.ndarray | torch.Tensor], path: str | Path, what: str = "variable",
                  counters: Iterable[str] = ()) -> None:
    """Raise :class:`CorruptFileError` naming ``path`` and the ``what`` (``"variable"``, ``"key"``)
    unless every tensor of ``tensors`` ``{name: array or tensor}`` is floating point and finite (a
    BatchNorm variance also >= 0); the names in ``counters`` (step counters such as
    ``num_batches_tracked``) must hold integers instead."""
    counters = set(counters)
    for name, t in tensors.items():
        if name in counters:
            if not _is_int(t):
                raise CorruptFileError(path, f"{what} {name!r} is a counter and must hold an integer, got dtype "
                                             f"{t.dtype}")
            continue
        if not _is_float(t):
            raise CorruptFileError(path, f"{what} {name!r} has dtype {t.dtype}; weights must be floating point "
                                         f"(float16, float32 or float64)")
        bad = _size(t) - _n_finite(t)
        if bad:
            raise CorruptFileError(path, f"{what} {name!r} holds {bad} NaN or infinite value(s) of {_size(t)}: "
                                         f"not usable weights (a diverged or damaged checkpoint)")
        negative = int((t < 0).sum()) if name.endswith(VARIANCE_SUFFIXES) else 0
        if negative:
            raise CorruptFileError(path, f"{what} {name!r} is a BatchNorm variance and holds {negative} negative "
                                         f"value(s); a variance must be >= 0")
