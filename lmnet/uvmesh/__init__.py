"""UV-mapped meshes: the UV-sphere template, its displacement and texture maps, OBJ + MTL + PNG files.

- :mod:`lmnet.uvmesh.template`: ``uv_sphere_template(rings)`` → :class:`UVSphereTemplate` (vertices,
  faces, UVs, topo UVs, tangent frames, mirror pairs, face adjacency; ``vertex_positions(D)``);
- :mod:`lmnet.uvmesh.maps`: ``circpad``, ``symmetrize_texture``, ``adjust_poles``, ``remap_u``,
  ``pad_for_sampling``;
- :mod:`lmnet.uvmesh.obj_io`: ``write_textured_obj``, ``read_textured_obj``, ``read_obj`` (any
  triangle OBJ, textured or not).

Conventions are stated in each module and in docs/textured.md.
"""

from lmnet.uvmesh.maps import adjust_poles, circpad, pad_for_sampling, remap_u, symmetrize_texture
from lmnet.uvmesh.template import SEGMENTS, UVSphereTemplate, face_adjacency, uv_sphere_template

__all__ = ["adjust_poles", "circpad", "pad_for_sampling", "remap_u", "symmetrize_texture",
           "SEGMENTS", "UVSphereTemplate", "face_adjacency", "uv_sphere_template"]
