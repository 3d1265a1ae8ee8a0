"""Operations on UV-space maps: textures ``(B, 3, H, W)`` and displacement maps ``(B, 3, 32, 32)``.

Conventions (the UV sphere of :mod:`lmnet.uvmesh.template`):

- a map's **width is u** (around the sphere, periodic) and its **height is v**; row 0 is v = 1 (the
  north pole, +y), the last row is v = 0 (the south pole);
- u wraps around: column ``W − 1`` is followed by column 0, hence the circular padding;
- a *symmetric* model produces the half ``(…, N)`` and :func:`symmetrize_texture` mirrors it into
  the full ``(…, 2N)`` map; the mirror axis is the plane x = 0 of the template (u = 1/4 and u = 3/4).

Sampling a map at a UV point uses ``grid_sample(..., mode="bilinear", align_corners=True)`` on a
padded map and remapped u (:func:`pad_for_sampling`): the result is the texel-centre lookup
``column = W·u − 1/2`` (wrapping around) for symmetric maps, and ``column = W·u`` on a map extended
by its first column for non-symmetric ones, as the original convmesh code does.
"""

from __future__ import annotations

import torch

__all__ = ["circpad", "symmetrize_texture", "adjust_poles", "remap_u", "pad_for_sampling"]


def _check_maps(x: torch.Tensor, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} must be (B, C, H, W), got shape {tuple(x.shape)}")


def circpad(x: torch.Tensor, amount: int = 1) -> torch.Tensor:
    """Circular padding in u: ``(B, C, H, W)`` → ``(B, C, H, W + 2·amount)``, the last ``amount``
    columns copied to the left and the first ``amount`` to the right (v is not padded)."""
    _check_maps(x, "circpad input")
    if not 1 <= amount <= x.shape[3]:
        raise ValueError(f"circpad amount must be in [1, W={x.shape[3]}], got {amount}")
    return torch.cat((x[..., -amount:], x, x[..., :amount]), dim=3)


def symmetrize_texture(x: torch.Tensor) -> torch.Tensor:
    """Even symmetry in u: the half map ``(B, C, H, N)`` → the full map ``(B, C, H, 2N)``.

    The output is ``[flip(x)[..., N//2:], x, flip(x)[..., :N//2]]`` (``flip`` reverses u), so output
    column ``c`` equals output column ``N − 1 − c`` (and ``3N − 1 − c``, modulo 2N): the map is
    mirror-symmetric about u = 1/4 and u = 3/4, the template's x = 0 plane.
    """
    _check_maps(x, "symmetrize_texture input")
    flipped = torch.flip(x, (3,))
    half = x.shape[3] // 2
    return torch.cat((flipped[..., half:], x, flipped[..., :half]), dim=3)


def adjust_poles(x: torch.Tensor) -> torch.Tensor:
    """Replace the first row (north pole) and the last row (south pole) of ``(B, C, H, W)`` by their
    mean over u; the rows between are unchanged. Used on displacement maps only: a pole is one vertex,
    so its displacement must not depend on u. ``H >= 2``."""
    _check_maps(x, "adjust_poles input")
    if x.shape[2] < 2:
        raise ValueError(f"adjust_poles needs at least 2 rows, got shape {tuple(x.shape)}")
    top = x[:, :, :1].mean(dim=3, keepdim=True).expand(-1, -1, -1, x.shape[3])
    bottom = x[:, :, -1:].mean(dim=3, keepdim=True).expand(-1, -1, -1, x.shape[3])
    return torch.cat((top, x[:, :, 1:-1], bottom), dim=2)


def remap_u(u: torch.Tensor, width: int) -> torch.Tensor:
    """u in [0, 1] → u on a map circularly padded by one texel each side: ``(u + 1/(2W)) / ((W+1)/W)``.

    Sampling the padded map ``(…, W + 2)`` at ``(remap_u(u), v)`` with ``align_corners=True`` (u' = 0
    at the left padding column's centre, 1 at the right one's) reads the column ``W·u − 1/2`` of the
    original map, wrapping around: u = 0 falls half-way between the last and the first column.
    """
    return (u + 1.0 / (2 * width)) / ((width + 1) / width)


def pad_for_sampling(uvs: torch.Tensor, texture: torch.Tensor, symmetric: bool = True):
    """What is done to a map and its UVs before ``grid_sample(align_corners=True)``.

    ``uvs`` ``(..., 2)`` in [0, 1] (u, v), ``texture`` ``(B, C, H, W)`` → ``(uvs', texture')``:

    - ``symmetric=True``: ``texture' = circpad(texture, 1)`` ``(B, C, H, W + 2)`` and
      ``u' = remap_u(u, W)`` (texel-centre lookup, wrapping around);
    - ``symmetric=False``: ``texture'`` is the map with its first column appended ``(B, C, H, W + 1)``
      and the UVs are unchanged (column ``W·u``, so u = 0 and u = 1 read the same texel).

    ``v`` is never changed. The renderer then samples at ``(2u' − 1, 1 − 2v)``.
    """
    _check_maps(texture, "texture")
    if uvs.shape[-1] != 2:
        raise ValueError(f"uvs must be (..., 2), got shape {tuple(uvs.shape)}")
    if not symmetric:
        return uvs, torch.cat((texture, texture[..., :1]), dim=3)
    u = remap_u(uvs[..., 0], texture.shape[3])
    return torch.stack((u, uvs[..., 1]), dim=-1), circpad(texture, 1)
