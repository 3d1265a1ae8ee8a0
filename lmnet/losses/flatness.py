"""Flatness (smoothness) regulariser of a triangle mesh: neighbouring faces should have parallel normals.

Used on the deformed UV sphere of the textured-mesh pipeline (docs/textured.md#the-flatness-loss); convmesh's
reconstruction weights it by 5e-5, with a warm-up.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["face_normals", "flatness_loss"]


def _check(vertices: torch.Tensor, faces: torch.Tensor) -> None:
    if vertices.dim() != 3 or vertices.shape[2] != 3:
        raise ValueError(f"vertices must be (B, V, 3), got shape {tuple(vertices.shape)}")
    if faces.dim() != 2 or faces.shape[1] != 3 or faces.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"faces must be an integer (F, 3) tensor, got {faces.dtype} {tuple(faces.shape)}")


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit face normals ``(B, F, 3)`` of ``vertices (B, V, 3)`` and ``faces (F, 3)``:
    ``normalize((v1 − v0) × (v2 − v0))`` (counter-clockwise corners → outward); a degenerate face
    gives the zero vector (``F.normalize``'s eps = 1e-12)."""
    _check(vertices, faces)
    faces = faces.long()
    v0, v1, v2 = vertices[:, faces[:, 0]], vertices[:, faces[:, 1]], vertices[:, faces[:, 2]]
    return F.normalize(torch.cross(v1 - v0, v2 - v0, dim=2), dim=2)


def flatness_loss(vertices: torch.Tensor, faces: torch.Tensor, ff: torch.Tensor) -> torch.Tensor:
    """``L_flat = (F / 2) · Σ_{i=1..3} mean_{b,f} (n_f · n_{ff[f,i]} − 1)²`` → scalar.

    ``vertices (B, V, 3)``, ``faces (F, 3)``, ``ff (F, 3)`` the three edge-neighbours of each face
    (any order: the sum over i does not depend on it), ``n`` the unit normals of :func:`face_normals`.
    Reduction: for each i, the mean over batch and faces; the three means are summed and scaled by
    F/2 (so the value grows with the face count, as in convmesh's ``loss_flat``). 0 when every pair of
    neighbours is coplanar with the same orientation; each term lies in [0, 4].
    """
    normals = face_normals(vertices, faces)
    if ff.shape != faces.shape or ff.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"ff must be an integer tensor shaped like faces {tuple(faces.shape)}, got "
                         f"{ff.dtype} {tuple(ff.shape)}")
    ff = ff.long()
    loss = normals.new_zeros(())
    for i in range(3):
        cos = (normals * normals[:, ff[:, i]]).sum(dim=-1)
        loss = loss + ((cos - 1) ** 2).mean()
    return loss * (faces.shape[0] / 2.0)
