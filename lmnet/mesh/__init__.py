"""Point cloud → triangle mesh that follows the shape, thin parts included.

:func:`reconstruct` is the entry point (``lmnet mesh`` calls it):

1. the cloud is checked (:mod:`lmnet.mesh.cloud`: shape ``(N, 3)``, 50 to ``LMNET_MAX_MESH_POINTS``
   points, finite, not all on one line), made safe for Open3D (duplicates merged, scaled to unit size
   by a power of two, a flat cloud marked) and isolated outliers are removed with a radius scaled to
   its point spacing;
2. a surface is built by ball pivoting, screened Poisson with a distance trim, or an alpha shape
   (:mod:`lmnet.mesh.methods`), or all three with ``method="auto"``;
3. each is scored by its fit, the Chamfer ×100 between 16,384 samples on the mesh and the input
   cloud (:mod:`lmnet.mesh.fit`), and ``auto`` keeps the lowest.

:func:`points_to_mesh` is plain closed Poisson (the earlier behaviour), kept for closed shapes.
Open3D is an optional dependency (``pip install open3d-cpu``), imported lazily.
"""

from lmnet.mesh.cloud import (MIN_POINTS, PointCloudError, PreparedCloud, check_cloud, deduplicate, load_points,
                              point_spacing, prepare_cloud, remove_outliers)
from lmnet.mesh.fit import FIT_SAMPLES, METHODS, MeshingError, MeshResult, mesh_fit, points_to_mesh, reconstruct, sample_mesh
from lmnet.mesh.colours import load_colours, vertex_colours, write_coloured_mesh
from lmnet.mesh.io import check_mesh_path, to_o3d_mesh, write_mesh
from lmnet.mesh.methods import KNN_RANGE, check_knn, estimate_normals

__all__ = ["MIN_POINTS", "PointCloudError", "PreparedCloud", "check_cloud", "deduplicate", "load_points",
           "point_spacing", "prepare_cloud", "remove_outliers", "KNN_RANGE", "check_knn",
           "FIT_SAMPLES", "METHODS", "MeshingError", "MeshResult", "mesh_fit", "points_to_mesh", "reconstruct",
           "sample_mesh", "check_mesh_path", "to_o3d_mesh", "write_mesh", "estimate_normals",
           "load_colours", "vertex_colours", "write_coloured_mesh"]
