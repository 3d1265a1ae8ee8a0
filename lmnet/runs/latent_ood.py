"""How far an image's latent may lie from the training images' before the image counts as unlike the
training data: ``latent_ood.npz`` in an image run's folder, written when training ends
(:meth:`lmnet.methods.image.trainer.ImageTrainer.finish`) and read by ``lmnet infer --images``.

The file holds (``np.savez``, no pickles):

- ``reference`` float32 ``(N, D)``: the image encoder's μ of up to :data:`MAX_REFERENCE` training
  images (the best checkpoint's, evenly spread over the training items);
- ``validation_distances`` float64 ``(M,)``: each validation image's Euclidean distance from its μ
  to the nearest ``reference`` row;
- ``threshold`` float64 ``()``: their :data:`PERCENTILE` th percentile. An image whose distance is
  above it is farther from the training images than 99 % of the validation images are.

Runs trained before this file existed, or without a validation set, have none: the check is skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmnet import atomic_io
from lmnet.errors import CorruptFileError

LATENT_OOD_FILE = "latent_ood.npz"
PERCENTILE = 99.0
MAX_REFERENCE = 2048  #: training images whose latents are kept (evenly spread over the items)
_CHUNK = 1024


def nearest_distances(reference: np.ndarray, latents: np.ndarray) -> np.ndarray:
    """``latents (M, D)`` → float64 ``(M,)``: each row's Euclidean distance to the nearest row of
    ``reference (N, D)``."""
    ref = np.asarray(reference, dtype=np.float64)
    out = []
    for i in range(0, len(latents), _CHUNK):
        z = np.asarray(latents[i:i + _CHUNK], dtype=np.float64)
        d2 = (z * z).sum(1)[:, None] - 2 * z @ ref.T + (ref * ref).sum(1)[None]
        out.append(np.sqrt(np.maximum(d2.min(1), 0.0)))
    return np.concatenate(out) if out else np.zeros(0)


def write_latent_ood(run_dir: str | Path, reference: np.ndarray, validation: np.ndarray) -> Path:
    """Write ``run_dir/latent_ood.npz`` from the μ of training images ``reference (N, D)`` and of
    validation images ``validation (M, D)`` (module docstring); returns its path."""
    distances = nearest_distances(reference, validation)
    path = Path(run_dir) / LATENT_OOD_FILE
    atomic_io.save_npz(path, reference=np.asarray(reference, dtype=np.float32), validation_distances=distances,
                       threshold=np.float64(np.percentile(distances, PERCENTILE)), percentile=np.float64(PERCENTILE))
    return path


def read_latent_ood(run_dir: str | Path) -> dict | None:
    """``{"reference" (N, D), "threshold", "percentile", "path"}`` of ``run_dir/latent_ood.npz``, or None
    when the run has none; a damaged file is a :class:`CorruptFileError` naming it."""
    path = Path(run_dir) / LATENT_OOD_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            out = {"reference": f["reference"], "threshold": float(f["threshold"]),
                   "percentile": float(f["percentile"]), "path": path}
    except (OSError, ValueError, KeyError) as exc:
        raise CorruptFileError(path, f"unreadable latent reference ({exc}); delete it to skip the check") from None
    if out["reference"].ndim != 2 or len(out["reference"]) == 0 or not np.isfinite(out["threshold"]):
        raise CorruptFileError(path, f"expected a non-empty (N, D) 'reference' and a finite 'threshold', got "
                                     f"{out['reference'].shape} and {out['threshold']}")
    return out


def latent_warning(ood: dict, latent: np.ndarray) -> str | None:
    """The warning phrase for one image's μ ``(D,)`` against a run's :func:`read_latent_ood`, or
    None when it is within the threshold. A latent of another size is a :class:`CorruptFileError`."""
    if latent.shape[-1] != ood["reference"].shape[1]:
        raise CorruptFileError(ood["path"], f"holds latents of size {ood['reference'].shape[1]}, the network's "
                                                f"are {latent.shape[-1]}: delete it to skip the check")
    d = float(nearest_distances(ood["reference"], latent[None])[0])
    if d <= ood["threshold"]:
        return None
    return (f"its latent is farther from the training images' ({d:.3g}) than {ood['percentile']:g} % of the "
            f"validation images' are ({ood['threshold']:.3g})")
