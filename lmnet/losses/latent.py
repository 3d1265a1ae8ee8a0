"""Losses on latent codes of the image → point-cloud network (Variants I and II).

Both regress the image latent onto the frozen autoencoder latent ``z_pc = AE.encode(gt_points)``.
"mean" is over the batch and the latent entries (TensorFlow ``reduce_mean``); nothing is ×100.
"""

from __future__ import annotations

import math

import torch


def latent_loss(z: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean absolute (``"l1"``) or mean squared (``"l2"``) difference of ``z (B, D)`` and
    ``target (B, D)`` over batch and latent dims → scalar."""
    if kind == "l1":
        return (z - target).abs().mean()
    if kind == "l2":
        return (z - target).pow(2).mean()
    raise ValueError(f"latent loss must be 'l1' or 'l2', got {kind!r}")


def diversity_target(azimuth_rad: torch.Tensor, alpha: float = 0.2,
                     theta_rad: float = math.radians(20.0)) -> torch.Tensor:
    """The mean σ that :func:`diversity_loss` asks for: ``α·exp(−(azimuth − π)² / θ²)``, ``(B,)``
    from azimuths ``(B,)`` in radians (α at azimuth π, ~0 elsewhere)."""
    return alpha * torch.exp(-((azimuth_rad - math.pi) ** 2) / theta_rad ** 2)


def diversity_loss(logvar: torch.Tensor, azimuth_rad: torch.Tensor, alpha: float = 0.2,
                   theta_rad: float = math.radians(20.0)) -> torch.Tensor:
    """Variant II view-dependent diversity loss → scalar.

    ``L_div = mean_b ( mean_j σ_bj − α·exp(−(azimuth_b − π)² / θ²) )²`` with ``σ = exp(logvar/2)``
    for ``logvar (B, D)``; ``azimuth_rad`` ``(B,)`` in radians (column 0 of
    ``rendering_metadata.txt`` converted), ``θ`` in radians. The target spread peaks (α) at
    azimuth π and falls to ~0 elsewhere.
    """
    sigma_mean = torch.exp(0.5 * logvar).mean(dim=1)
    target = diversity_target(azimuth_rad.to(logvar.dtype), alpha, theta_rad)
    return ((sigma_mean - target) ** 2).mean()
