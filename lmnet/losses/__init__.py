"""Point-cloud losses and metrics: Chamfer distance, nearest neighbours, exact and approximate EMD.

Units and conventions live at each function: Chamfer is a sum of two mean Euclidean
nearest-neighbour distances (``squared=True`` for the PyTorch3D-style squared variant); EMD is the
mean Euclidean distance under the optimal one-to-one matching. Nothing here multiplies by 100.

The public names are loaded lazily, so ``from lmnet.losses import _kernels`` (numba kernels only,
used by the evaluation protocol) does not import torch.
"""

from importlib import import_module

_PUBLIC = {
    "chamfer_distance": "lmnet.losses.chamfer",
    "nearest_neighbors": "lmnet.losses.chamfer",
    "emd_exact": "lmnet.losses.emd",
    "emd_exact_matching": "lmnet.losses.emd",
    "emd_approx": "lmnet.losses.emd",
}

__all__ = ["chamfer_distance", "nearest_neighbors", "emd_exact", "emd_exact_matching", "emd_approx"]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lmnet.losses' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
