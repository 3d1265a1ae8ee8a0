"""Point-cloud losses and metrics: Chamfer distance, nearest neighbours, exact and approximate EMD.

Units and conventions live at each function: Chamfer is a sum of two mean Euclidean
nearest-neighbour distances (``squared=True`` for the PyTorch3D-style squared variant); EMD is the
mean Euclidean distance under the optimal one-to-one matching. Nothing here multiplies by 100.
"""

from lmnet.losses.chamfer import chamfer_distance, nearest_neighbors
from lmnet.losses.emd import emd_approx, emd_exact, emd_exact_matching

__all__ = ["chamfer_distance", "nearest_neighbors", "emd_exact", "emd_exact_matching", "emd_approx"]
