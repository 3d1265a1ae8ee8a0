"""Unit quaternions for rotations, in **(w, x, y, z)** order (scalar first) everywhere in lmnet.

The textured-mesh pipeline stores poses as quaternions (the CMR / convmesh convention:
``q = quaternion_from_matrix(R)`` of the SfM rotation, then ``qrot(q, v)`` rotates vertices).
:func:`quaternion_from_matrix` follows the eigenvector method of Gohlke's ``transformations.py``
(the one CMR calls, ``isprecise=False``), so the sign convention matches: ``w >= 0``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["quaternion_from_matrix", "quaternion_to_matrix", "qrot", "qmul"]


def quaternion_from_matrix(rotation) -> np.ndarray:
    """Rotation matrix ``(3, 3)`` (or a 4×4 whose upper-left block is used) → unit quaternion ``(4,)``
    float64 in (w, x, y, z), with ``w >= 0``.

    Uses the eigenvector of the largest eigenvalue of Bar-Itzhack's symmetric 4×4 matrix, so a
    matrix that is only nearly orthogonal (an SfM fit) gives the closest rotation's quaternion.
    """
    m = np.asarray(rotation, dtype=np.float64)
    if m.shape not in {(3, 3), (4, 4)} or not np.all(np.isfinite(m[:3, :3])):
        raise ValueError(f"rotation must be a finite (3, 3) matrix, got shape {m.shape}")
    m00, m01, m02 = m[0, :3]
    m10, m11, m12 = m[1, :3]
    m20, m21, m22 = m[2, :3]
    k = np.array([
        [m00 - m11 - m22, 0.0, 0.0, 0.0],
        [m01 + m10, m11 - m00 - m22, 0.0, 0.0],
        [m02 + m20, m12 + m21, m22 - m00 - m11, 0.0],
        [m21 - m12, m02 - m20, m10 - m01, m00 + m11 + m22],
    ]) / 3.0
    w, v = np.linalg.eigh(k)  # lower triangle is used
    q = v[[3, 0, 1, 2], np.argmax(w)]
    if q[0] < 0.0:
        q = -q
    return q


def quaternion_to_matrix(q) -> np.ndarray:
    """Quaternion ``(4,)`` in (w, x, y, z) (normalised here) → rotation matrix ``(3, 3)`` float64."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def qrot(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors ``v (..., 3)`` by unit quaternions ``q (..., 4)`` (w, x, y, z), broadcasting the
    leading dimensions (e.g. ``q (B, 1, 4)`` with ``v (B, V, 3)``). Differentiable in both.

    ``v + 2 (w (u × v) + u × (u × v))`` with ``u = (x, y, z)``; equals ``R(q) @ v``.
    """
    if q.shape[-1] != 4 or v.shape[-1] != 3:
        raise ValueError(f"qrot expects q (..., 4) and v (..., 3), got {tuple(q.shape)} and {tuple(v.shape)}")
    u, v = torch.broadcast_tensors(q[..., 1:], v)
    w = q[..., :1]
    uv = torch.cross(u, v, dim=-1)
    uuv = torch.cross(u, uv, dim=-1)
    return v + 2 * (w * uv + uuv)


def qmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a ⊗ b`` of quaternions ``(..., 4)`` in (w, x, y, z): rotating by the result
    equals rotating by ``b`` then by ``a``."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)
