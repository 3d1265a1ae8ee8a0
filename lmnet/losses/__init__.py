"""Every loss and point-cloud metric of lmnet, each defined once with its convention.

Units and conventions live at each function:

- Chamfer (:mod:`~lmnet.losses.chamfer`, torch, batched, differentiable; and
  :mod:`~lmnet.losses.chamfer_numpy`, one NumPy pair, for the evaluation): a **sum** of the two mean
  Euclidean nearest-neighbour distances (``squared=True`` / ``cd_sq``: the PyTorch3D-style squared
  variant, a different number);
- EMD (:mod:`~lmnet.losses.emd`): the mean Euclidean distance under the optimal one-to-one matching;
- latent L1 / L2 and the Variant II diversity loss (:mod:`~lmnet.losses.latent`): means over batch
  and latent entries;
- the silhouette method's mask and pose losses live in its folder (:mod:`lmnet.methods.silhouette`).

Nothing here multiplies by 100. The public names are loaded lazily, so the numba kernel modules
(``_kernels_nn``, ``_kernels_emd``, ``_kernels_icp``) and :mod:`~lmnet.losses.chamfer_numpy`, used
by the evaluation protocol, do not import torch.
"""

from importlib import import_module

_PUBLIC = {
    "chamfer_distance": "lmnet.losses.chamfer",
    "nearest_neighbors": "lmnet.losses.chamfer",
    "chamfer_terms": "lmnet.losses.chamfer_numpy",
    "nn_distances": "lmnet.losses.chamfer_numpy",
    "emd_exact": "lmnet.losses.emd",
    "emd_exact_matching": "lmnet.losses.emd",
    "emd_approx": "lmnet.losses.emd",
    "latent_loss": "lmnet.losses.latent",
    "diversity_loss": "lmnet.losses.latent",
    "diversity_target": "lmnet.losses.latent",
}

__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lmnet.losses' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
