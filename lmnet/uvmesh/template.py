"""The UV-sphere mesh template and the displacement map that deforms it.

The template is Blender's UV sphere of radius 1 with 32 segments and ``R`` rings (CUB: R = 16,
Pascal3D+ cars: R = 31), triangulated, **y up**, built here procedurally (no data file):

- ``V = 32·(R−1) + 2`` vertices, ``T = 33·(R−1) + 64`` UV points, ``F = 64·(R−1)`` faces
  (R = 16: 482 / 559 / 960; R = 31: 962 / 1054 / 1920), the counts of the original OBJ files;
- ring ``j`` (1 … R−1) lies at polar angle ``θ = πj/R`` from the north pole (+y), segment ``k``
  (0 … 31) at azimuth ``φ = 2πk/32``; its vertex is ``(sin θ sin φ, cos θ, −sin θ cos φ)``;
- vertex order: segment by segment, ring 1 to R−1 in each (index ``k·(R−1) + j − 1``), then the
  north pole and the south pole; vertex 0 is ``(0, cos π/R, −sin π/R)``, as in the original file.
  (That file lists the same vertices, UVs and faces in another order; the test suite compares them
  up to order.);
- UVs: ring ``j`` at ``v = 1 − j/R``; segment ``k`` at ``u = ((24 − k) mod 32)/32``, so u decreases
  with φ and the seam (u = 0 ≡ 1) is segment 24, the −x side; the 33 columns ``u = c/32`` include
  both copies of the seam; each pole has one UV point per segment strip, at the strip's mid-u and
  ``v = 1`` (north) or ``0`` (south);
- every quad between segments ``k, k+1`` and rings ``j, j+1`` is split along the diagonal
  ``(k, j+1)–(k+1, j)`` for ``k < 16`` and ``(k, j)–(k+1, j+1)`` for ``k ≥ 16``, as in the original
  file; so the triangulation, like the vertices, is mirror-symmetric in x. Faces wind
  counter-clockwise seen from outside (normals ``(b−a)×(c−a)`` point outward).

The displacement map ``D (B, 3, H, W)`` (32×32 in the original) holds per-texel offsets along the
vertex's normal, tangent and bitangent (channels 0, 1, 2); :meth:`UVSphereTemplate.vertex_positions`
samples it at each vertex's topo UV. See docs/textured.md.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lmnet.errors import ConfigError
from lmnet.uvmesh.maps import circpad

__all__ = ["SEGMENTS", "UVSphereTemplate", "uv_sphere_template", "face_adjacency"]

#: segments (meridians) of every template; the displacement map's u axis goes round them once
SEGMENTS = 32
#: |x| below this is "on the mirror plane" (the original's threshold)
_PLANE_TOL = 1e-4


@dataclass(frozen=True, eq=False)
class UVSphereTemplate:
    """A UV-sphere template; every array is NumPy, read-only, in the template's vertex order
    (:meth:`tensor` gives a torch copy, e.g. to index a torch tensor with).

    Fields (V vertices, F faces, T UV points):

    - ``rings``, ``segments``;
    - ``vertices`` ``(V, 3)`` float32, on the unit sphere;
    - ``faces`` ``(F, 3)`` int64 vertex indices, ``face_uvs`` ``(F, 3)`` int64 indices into ``uvs``;
    - ``uvs`` ``(T, 2)`` float32 (u, v) in [0, 1], v = 1 at the north pole (OBJ ``vt`` convention);
    - ``topo_uv`` ``(V, 2)`` float32 in [−1, 1]: where a vertex reads the displacement map, in
      ``grid_sample`` coordinates (x = 2u − 1, y = 1 − 2v): the mean of the UVs of the vertex's
      face corners, with u = 1 counted as 0 (seam vertices read u = 0, poles u = 1/2);
    - ``frames`` ``(V, 3, 3)`` float32, rows ``n, t, b``: ``n`` the unit position, ``t = n × ŷ``
      normalised, ``b = n × t``; ``t = b = 0`` at the poles;
    - ``mirror`` ``(V,)`` int64: the vertex at the x-mirrored position (itself on the plane x = 0);
    - ``neg_indices`` (x < 0), ``pos_indices`` (``mirror[neg_indices]``, same order),
      ``plane_indices`` (x = 0: segments 0 and 16 and the poles), ``nonneg_indices``
      (``pos_indices`` then ``plane_indices``, the vertices a symmetric map is sampled at);
    - ``ff`` ``(F, 3)`` int64: ``ff[f, i]`` is the face across edge ``faces[f, i] → faces[f, i+1 mod 3]``.
    """

    rings: int
    segments: int
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    face_uvs: np.ndarray
    topo_uv: np.ndarray
    frames: np.ndarray
    mirror: np.ndarray
    neg_indices: np.ndarray
    pos_indices: np.ndarray
    plane_indices: np.ndarray
    nonneg_indices: np.ndarray
    ff: np.ndarray

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    def tensor(self, name: str, device=None) -> torch.Tensor:
        """A fresh torch copy of the array field ``name`` (``"faces"``, ``"uvs"``, ...) on ``device``."""
        value = getattr(self, name)
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{name!r} is not an array field of UVSphereTemplate")
        return _torch(value, device)

    def vertex_positions(self, displacement: torch.Tensor, symmetric: bool = True) -> torch.Tensor:
        """Deform the template by a displacement map: ``(B, 3, H, W)`` → vertex positions ``(B, V, 3)``.

        1. Bilinearly sample ``displacement`` at each vertex's ``topo_uv`` (``grid_sample``,
           ``align_corners=True``, zero padding in v). ``symmetric=True``: only the x ≥ 0 vertices
           are sampled, on the map circularly padded in u with u remapped
           (:func:`lmnet.uvmesh.maps.remap_u`, a texel-centre lookup); ``symmetric=False``: every
           vertex, on the map with its first column appended (column ``W·u``).
        2. ``Δ = d_n·n + d_t·t + d_b·b`` with ``(d_n, d_t, d_b)`` the three channels.
        3. ``symmetric=True``: each x < 0 vertex gets its mirror vertex's Δ with x negated, and the
           vertices on the plane x = 0 get Δx = 0, so the mesh is exactly mirror-symmetric.
        4. Return ``vertices + Δ`` in the displacement's dtype and device. Differentiable in ``D``.
        """
        if displacement.dim() != 4 or displacement.shape[1] != 3:
            raise ValueError(f"displacement must be (B, 3, H, W), got shape {tuple(displacement.shape)}")
        dev, dtype = displacement.device, displacement.dtype
        batch, width = displacement.shape[0], displacement.shape[3]
        topo = _torch(self.topo_uv, device=dev, dtype=dtype)
        frames = _torch(self.frames, device=dev, dtype=dtype)
        if symmetric:
            index = _torch(self.nonneg_indices, device=dev)
            topo, frames = topo[index], frames[index]
            delta = 1 / (2 * width)
            expansion = (width + 1) / width
            topo = torch.stack(((topo[:, 0] + 1 + 2 * delta - expansion) / expansion, topo[:, 1]), dim=1)
            padded = circpad(displacement, 1)
        else:
            padded = torch.cat((displacement, displacement[..., :1]), dim=3)
        grid = topo.unsqueeze(0).unsqueeze(-2).expand(batch, -1, -1, -1)           # (B, n, 1, 2)
        local = F.grid_sample(padded, grid, mode="bilinear", align_corners=True)   # (B, 3, n, 1)
        local = local.squeeze(-1).permute(0, 2, 1)                                 # (B, n, 3)
        deltas = (local.unsqueeze(-2) @ frames.expand(batch, -1, -1, -1)).squeeze(-2)
        if symmetric:
            deltas = self._mirror_deltas(deltas)
        return _torch(self.vertices, device=dev, dtype=dtype).unsqueeze(0) + deltas

    def _mirror_deltas(self, deltas: torch.Tensor) -> torch.Tensor:
        """Δ of the ``nonneg_indices`` vertices ``(B, n, 3)`` → Δ of every vertex ``(B, V, 3)``."""
        dev = deltas.device
        full = deltas.new_zeros(deltas.shape[0], self.num_vertices, 3)
        full = full.index_copy(1, _torch(self.nonneg_indices, device=dev), deltas)
        flip_x = torch.tensor([-1.0, 1.0, 1.0], device=dev, dtype=deltas.dtype)
        mirrored = full[:, _torch(self.pos_indices, device=dev)] * flip_x
        full = full.index_copy(1, _torch(self.neg_indices, device=dev), mirrored)
        plane_mask = torch.ones(self.num_vertices, 3, device=dev, dtype=deltas.dtype)
        plane_mask[_torch(self.plane_indices, device=dev), 0] = 0
        return full * plane_mask


def _torch(array: np.ndarray, device, dtype=None) -> torch.Tensor:
    """A torch copy of a (read-only) NumPy array."""
    return torch.from_numpy(array.copy()).to(device=device, dtype=dtype)


def _exact_cos_sin(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin with the values at multiples of π/2 made exact (0, ±1)."""
    out = []
    for values in (np.cos(angles), np.sin(angles)):
        values = np.where(np.abs(values) < 1e-12, 0.0, values)
        out.append(np.where(np.abs(np.abs(values) - 1.0) < 1e-12, np.sign(values), values))
    return out[0], out[1]


def _sphere_vertices(rings: int) -> np.ndarray:
    """``(V, 3)`` float64; segments 17…31 are the exact x-mirrors of segments 15…1."""
    cos_t, sin_t = _exact_cos_sin(math.pi * np.arange(1, rings) / rings)
    cos_p, sin_p = _exact_cos_sin(2 * math.pi * np.arange(SEGMENTS // 2 + 1) / SEGMENTS)
    half = np.stack([np.stack([sin_t * sin_p[k], cos_t, -sin_t * cos_p[k]], axis=1)
                     for k in range(SEGMENTS // 2 + 1)])                           # (17, R-1, 3)
    mirrored = half[SEGMENTS // 2 - 1:0:-1] * np.array([-1.0, 1.0, 1.0])            # segments 17..31
    grid = np.concatenate([half, mirrored]).reshape(-1, 3)
    return np.concatenate([grid, [[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]])


def _sphere_uvs(rings: int) -> np.ndarray:
    """``(T, 2)`` float64: 33 columns × (R−1) rings (index ``c·(R−1) + j − 1``), then the 32 north
    and the 32 south pole points (strip ``k``: mid-u of the strip)."""
    u, v = np.meshgrid(np.arange(SEGMENTS + 1) / SEGMENTS, 1.0 - np.arange(1, rings) / rings, indexing="ij")
    grid = np.stack([u.ravel(), v.ravel()], axis=1)
    strips = np.arange(SEGMENTS)
    pole_u = (((23 - strips) % SEGMENTS) + 0.5) / SEGMENTS
    north = np.stack([pole_u, np.ones(SEGMENTS)], axis=1)
    south = np.stack([pole_u, np.zeros(SEGMENTS)], axis=1)
    return np.concatenate([grid, north, south])


def _sphere_faces(rings: int) -> tuple[np.ndarray, np.ndarray]:
    """``(faces, face_uvs)``, both ``(F, 3)`` int64, strip by strip (segments k, k+1): the
    north-pole triangle, the quads' two triangles from top to bottom, the south-pole triangle."""
    n = rings - 1
    vid = np.arange(SEGMENTS * n).reshape(SEGMENTS, n)        # vid[k, j-1]: vertex (k, j)
    uid = np.arange((SEGMENTS + 1) * n).reshape(SEGMENTS + 1, n)  # uid[c, j-1]: UV column c, ring j
    north, south = SEGMENTS * n, SEGMENTS * n + 1
    faces, face_uvs = [], []
    for k in range(SEGMENTS):
        v0, v1 = vid[k], vid[(k + 1) % SEGMENTS]
        left = (23 - k) % SEGMENTS + 1                         # UV column of segment k in this strip
        t0, t1 = uid[left], uid[left - 1]
        faces.append((v0[0], north, v1[0]))
        face_uvs.append((t0[0], uid.size + k, t1[0]))
        for j in range(n - 1):                                 # quad: rings j+1, j+2 (0-based j)
            if k < SEGMENTS // 2:                              # diagonal (k, j+1)–(k+1, j)
                corners = [((0, 1), (1, 0), (1, 1)), ((0, 1), (0, 0), (1, 0))]
            else:                                              # diagonal (k, j)–(k+1, j+1)
                corners = [((0, 0), (1, 1), (0, 1)), ((0, 0), (1, 0), (1, 1))]
            for tri in corners:
                faces.append(tuple((v0, v1)[s][j + r] for s, r in tri))
                face_uvs.append(tuple((t0, t1)[s][j + r] for s, r in tri))
        faces.append((south, v0[n - 1], v1[n - 1]))
        face_uvs.append((uid.size + SEGMENTS + k, t0[n - 1], t1[n - 1]))
    return np.array(faces, dtype=np.int64), np.array(face_uvs, dtype=np.int64)


def face_adjacency(faces: np.ndarray) -> np.ndarray:
    """Edge neighbours of a closed manifold triangle mesh: ``faces (F, 3)`` → ``ff (F, 3)`` int64,
    ``ff[f, i]`` the other face of edge ``faces[f, i] → faces[f, (i+1) % 3]``.

    Raises ``ValueError`` when an edge does not have exactly two faces (open or non-manifold mesh).
    """
    faces = np.asarray(faces, dtype=np.int64)
    edges = np.stack([faces, np.roll(faces, -1, axis=1)], axis=2).reshape(-1, 2)   # (3F, 2)
    keys = np.sort(edges, axis=1)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    if np.any(counts != 2):
        raise ValueError(f"{int(np.sum(counts != 2))} edges do not have exactly two faces")
    order = np.argsort(inverse, kind="stable")           # the two uses of each edge, side by side
    first, second = order[0::2], order[1::2]
    other = np.empty(len(edges), dtype=np.int64)
    other[first], other[second] = second // 3, first // 3
    return other.reshape(-1, 3)


def _topo_uv(uvs: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray, rings: int) -> np.ndarray:
    """Per vertex: the mean UV of its face corners (u = 1 counted as 0), mapped to ``grid_sample``
    coordinates ``(2u − 1, 1 − 2v)``; ``(V, 2)`` float64."""
    corners = uvs[face_uvs.ravel()] * [SEGMENTS, rings]
    corners[np.isclose(corners[:, 0], SEGMENTS, rtol=0.0, atol=1e-4), 0] = 0.0   # wrap the seam
    count = np.bincount(faces.ravel(), minlength=faces.max() + 1).astype(np.float64)
    total = np.zeros((len(count), 2))
    np.add.at(total, faces.ravel(), corners)
    topo = total / count[:, None] / [SEGMENTS, rings] * 2 - 1
    return topo * [1.0, -1.0]


def _tangent_frames(vertices: np.ndarray) -> np.ndarray:
    """``(V, 3, 3)`` rows ``n, t, b`` (module docstring); ``t = b = 0`` at the poles."""
    normals = vertices / np.linalg.norm(vertices, axis=1, keepdims=True)
    tangents = np.cross(normals, [0.0, 1.0, 0.0])
    length = np.linalg.norm(tangents, axis=1, keepdims=True)
    tangents = np.divide(tangents, length, out=np.zeros_like(tangents), where=length > 1e-12)
    frames = np.stack([normals, tangents, np.cross(normals, tangents)], axis=1)
    poles = [int(np.argmax(vertices[:, 1])), int(np.argmin(vertices[:, 1]))]
    frames[poles, 1:] = 0.0
    return frames


def _mirror_index(rings: int) -> np.ndarray:
    """``(V,)``: vertex ``(k, j)`` ↔ ``(−k mod 32, j)``; the poles map to themselves."""
    n = rings - 1
    seg, ring = np.divmod(np.arange(SEGMENTS * n), n)
    return np.concatenate([((-seg) % SEGMENTS) * n + ring, [SEGMENTS * n, SEGMENTS * n + 1]])


def _readonly(array: np.ndarray, dtype) -> np.ndarray:
    out = np.ascontiguousarray(array, dtype=dtype)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=None)
def uv_sphere_template(rings: int) -> UVSphereTemplate:
    """The 32-segment UV sphere with ``rings`` rings (16: CUB, 31: Pascal3D+), built once and cached."""
    if isinstance(rings, bool) or not isinstance(rings, (int, np.integer)) or rings < 3:
        raise ConfigError(f"template rings must be an integer >= 3 (16 for CUB, 31 for P3D), got {rings!r}")
    rings = int(rings)
    vertices = _sphere_vertices(rings)
    uvs = _sphere_uvs(rings)
    faces, face_uvs = _sphere_faces(rings)
    mirror = _mirror_index(rings)
    neg = np.flatnonzero(vertices[:, 0] < -_PLANE_TOL)
    plane = np.flatnonzero(np.abs(vertices[:, 0]) < _PLANE_TOL)
    pos = mirror[neg]
    i64, f32 = np.int64, np.float32
    return UVSphereTemplate(
        rings=rings, segments=SEGMENTS,
        vertices=_readonly(vertices, f32), faces=_readonly(faces, i64),
        uvs=_readonly(uvs, f32), face_uvs=_readonly(face_uvs, i64),
        topo_uv=_readonly(_topo_uv(uvs, faces, face_uvs, rings), f32),
        frames=_readonly(_tangent_frames(vertices), f32), mirror=_readonly(mirror, i64),
        neg_indices=_readonly(neg, i64), pos_indices=_readonly(pos, i64),
        plane_indices=_readonly(plane, i64), nonneg_indices=_readonly(np.concatenate([pos, plane]), i64),
        ff=_readonly(face_adjacency(faces), i64))
