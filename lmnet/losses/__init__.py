"""Every loss and point-cloud metric of lmnet, each defined once with its convention.

This package's ``__init__`` imports nothing: import each function from the module that defines
it (``from lmnet.losses.chamfer import chamfer_distance``). That keeps the NumPy / numba modules
(:mod:`~lmnet.losses.chamfer_numpy`, :mod:`~lmnet.losses.emd_numpy`, the ``_kernels_*`` modules),
which the evaluation workers import, free of torch.

Index (module → public names; units and conventions are stated at each function):

- :mod:`lmnet.losses.chamfer` (torch, batched, differentiable): ``chamfer_distance``,
  ``nearest_neighbors``. Chamfer is a **sum** of the two mean Euclidean nearest-neighbour
  distances (``squared=True``: the PyTorch3D-style squared variant, a different number).
- :mod:`lmnet.losses.chamfer_numpy` (one NumPy pair, for the evaluation; no torch):
  ``chamfer_terms``, ``nn_distances``.
- :mod:`lmnet.losses.emd` (torch): ``emd_exact``, ``emd_exact_matching``, ``emd_approx``; the mean
  Euclidean distance under the optimal one-to-one matching.
- :mod:`lmnet.losses.emd_numpy` (NumPy, no torch): ``emd_exact_pair``, the solver of ``emd_exact``.
- :mod:`lmnet.losses.latent`: ``latent_loss``, ``diversity_loss``, ``diversity_target`` (latent L1 /
  L2 and the Variant II diversity loss; means over batch and latent entries).
- :mod:`lmnet.losses.flatness` (torch): ``face_normals``, ``flatness_loss`` (the textured-mesh
  smoothness regulariser: ``(F/2)·Σ_i mean (n_f·n_{ff[f,i]} − 1)²``).
- :mod:`lmnet.losses.pose` (NumPy, with the torch camera): ``aligned_pose_errors`` (DPC's pose
  accuracy at 30° and median angular error after the best global rotation, symmetries included),
  ``rotations_from_view_angles``, ``symmetry_group``; used by the evaluation and the studies.
- the silhouette method's mask and pose losses live in its folder (:mod:`lmnet.methods.silhouette`).
- :mod:`lmnet.losses.kernels` (numba, no torch): the kernels shared with :mod:`lmnet.eval`:
  ``grid_build``, ``grid_query_all`` (exact grid nearest neighbours), ``kabsch_into``,
  ``apply_rigid``, ``mean_sqrt`` (rigid fitting), ``bid_scan_f32`` (the auction's bid scan).

Nothing here multiplies by 100.
"""
