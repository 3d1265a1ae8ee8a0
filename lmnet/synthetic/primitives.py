"""Closed, outward-oriented triangle primitives (numpy float64) and a part list that merges them.

Faces are counter-clockwise seen from outside. Vertices are duplicated along sharp creases (box
edges, cylinder rims), so smooth vertex normals keep flat faces flat and round sides round.
All coordinates are in the y-up ShapeNet v1 frame used to build the shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# the 6 quads of a hexahedron whose corners are indexed by bits (x, y, z) = (i & 1, i >> 1 & 1, i >> 2 & 1)
_HEX_QUADS = np.array([
    [0, 4, 6, 2],  # -x
    [1, 3, 7, 5],  # +x
    [0, 1, 5, 4],  # -y
    [2, 6, 7, 3],  # +y
    [0, 2, 3, 1],  # -z
    [4, 5, 7, 6],  # +z
])


def hexahedron(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A (possibly skewed/tapered) box from its 8 ``corners (8, 3)``, corner ``i`` at the
    (x, y, z) = (i & 1, i >> 1 & 1, i >> 2 & 1) end of each local axis. Returns ``(24, 3), (12, 3)``."""
    corners = np.asarray(corners, dtype=np.float64)
    verts = corners[_HEX_QUADS.reshape(-1)]
    base = 4 * np.arange(6)[:, None]
    faces = np.concatenate([base + [0, 1, 2], base + [0, 2, 3]])
    return verts, faces


def box(center, size) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box of ``size (3,)`` (full side lengths) centred at ``center (3,)``."""
    bits = np.array([[(i >> a) & 1 for a in range(3)] for i in range(8)], dtype=np.float64)
    corners = np.asarray(center, np.float64) + (bits - 0.5) * np.asarray(size, np.float64)
    return hexahedron(corners)


def _frame(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    axis = axis / np.linalg.norm(axis)
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    return e1, e2


def frustum(p0, p1, r0: float, r1: float, segments: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Closed truncated cone from ``p0`` (radius ``r0``) to ``p1`` (radius ``r1``); a radius of 0
    gives a cone (no cap at that end). Cylinders are ``r0 == r1``."""
    if r0 <= 0 and r1 <= 0:
        raise ValueError("frustum needs a positive radius at one end at least")
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    axis = p1 - p0
    e1, e2 = _frame(axis)
    ang = 2 * np.pi * np.arange(segments) / segments
    ring = np.cos(ang)[:, None] * e1 + np.sin(ang)[:, None] * e2          # (s, 3)
    verts, faces = [], []
    n = 0
    side0, side1 = p0 + r0 * ring, p1 + r1 * ring                          # side rings (smooth)
    verts += [side0, side1]
    i = np.arange(segments)
    nxt = (i + 1) % segments
    # (e1, e2, axis) is right-handed, so going around i→i+1 is counter-clockwise seen from +axis
    if r0 > 0:  # (a zero radius collapses one triangle of each side quad: leave it out)
        faces.append(np.stack([i, nxt, segments + nxt], 1))
    if r1 > 0:
        faces.append(np.stack([i, segments + nxt, segments + i], 1))
    n = 2 * segments
    if r0 > 0:                                                              # bottom cap faces -axis
        verts += [p0 + r0 * ring, p0[None]]
        faces.append(np.stack([np.full(segments, n + segments), n + nxt, n + i], 1))
        n += segments + 1
    if r1 > 0:                                                              # top cap faces +axis
        verts += [p1 + r1 * ring, p1[None]]
        faces.append(np.stack([np.full(segments, n + segments), n + i, n + nxt], 1))
        n += segments + 1
    return np.concatenate(verts), np.concatenate(faces)


def cylinder(p0, p1, radius: float, segments: int = 20):
    return frustum(p0, p1, radius, radius, segments)


def ellipsoid(center, radii, rings: int = 10, segments: int = 20):
    """UV ellipsoid with semi-axes ``radii (3,)`` (a sphere when all equal), poles along y."""
    theta = np.pi * np.arange(1, rings) / rings                             # inner latitudes
    phi = 2 * np.pi * np.arange(segments) / segments
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    ring_pts = np.stack([st * np.cos(phi), np.broadcast_to(ct, (rings - 1, segments)),
                         st * np.sin(phi)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0.0, 1.0, 0.0]], ring_pts, [[0.0, -1.0, 0.0]]])
    verts = np.asarray(center, np.float64) + verts * np.asarray(radii, np.float64)
    faces = []
    i = np.arange(segments)
    nxt = (i + 1) % segments
    top, bottom = 0, len(verts) - 1
    faces.append(np.stack([np.full(segments, top), 1 + nxt, 1 + i], 1))
    for r in range(rings - 2):
        a, b = 1 + r * segments, 1 + (r + 1) * segments
        faces.append(np.stack([a + i, a + nxt, b + nxt], 1))
        faces.append(np.stack([a + i, b + nxt, b + i], 1))
    last = 1 + (rings - 2) * segments
    faces.append(np.stack([np.full(segments, bottom), last + i, last + nxt], 1))
    return verts, np.concatenate(faces)


@dataclass
class PartList:
    """Accumulates primitives with a colour each and merges them into one mesh."""

    verts: list = field(default_factory=list)
    faces: list = field(default_factory=list)
    colors: list = field(default_factory=list)
    _n: int = 0

    def add(self, mesh: tuple[np.ndarray, np.ndarray], color) -> None:
        v, f = mesh
        self.verts.append(v)
        self.faces.append(f + self._n)
        self.colors.append(np.broadcast_to(np.asarray(color, np.float64), (len(f), 3)))
        self._n += len(v)

    def mesh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``vertices (V, 3) float64, faces (F, 3) int64, face_colors (F, 3) float64``."""
        return (np.concatenate(self.verts), np.concatenate(self.faces).astype(np.int64),
                np.concatenate(self.colors))
