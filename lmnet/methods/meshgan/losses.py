"""The GAN's masked hinge losses (convmesh's ``GANLoss`` in hinge mode, with masks and weights).

Each discriminator ``k`` returns scores ``D_k (B, 1, h, w)`` and a mask ``m_k (B, 1, h, w)`` (the
texture's α average-pooled to the scores' grid). A score counts by its mask, per sample, then the
batch is averaged:

    ⟨X⟩_k = mean_b [ Σ_hw X·m_k / Σ_hw m_k ]

and the discriminators are combined with weights ``w`` (None: uniform): ``Σ_k w_k ⟨·⟩_k / Σ_k w_k``.

- discriminator, real samples: ``L_real = −Σ_k w_k ⟨min(D_k − 1, 0)⟩_k / Σ w``;
- discriminator, fake samples: ``L_fake = −Σ_k w_k ⟨min(−D_k − 1, 0)⟩_k / Σ w``; ``L_D = L_fake + L_real``;
- generator: ``L_G = −Σ_k w_k ⟨D_k(fake)⟩_k / Σ w`` (the trainer adds the flatness term).

A sample whose mask is zero everywhere (nothing of its texture visible) contributes 0 (the sum
of its mask is clamped to 1e-12; the original divides by zero).
"""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["masked_mean", "hinge_d_loss", "hinge_g_loss", "discriminator_weights"]


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mean_b [Σ_hw x·m / Σ_hw m]`` of ``x, mask (B, C, H, W)`` → scalar."""
    if x.shape != mask.shape:
        raise ValueError(f"scores {tuple(x.shape)} and mask {tuple(mask.shape)} must have one shape")
    per_sample = (x * mask).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3)).clamp_min(1e-12)
    return per_sample.mean()


def _combine(terms: Sequence[torch.Tensor], weights: Sequence[float] | None) -> torch.Tensor:
    if weights is None:
        return sum(terms) / len(terms)
    if len(weights) != len(terms):
        raise ValueError(f"{len(weights)} discriminator weights for {len(terms)} discriminators")
    return sum(w * t for w, t in zip(weights, terms)) / sum(weights)


def hinge_d_loss(scores: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], real: bool,
                 weights: Sequence[float] | None = None) -> torch.Tensor:
    """``L_real`` (``real=True``) or ``L_fake`` of the module docstring → scalar."""
    sign = 1.0 if real else -1.0
    terms = [-masked_mean(torch.clamp(sign * d - 1, max=0), m) for d, m in zip(scores, masks)]
    return _combine(terms, weights)


def hinge_g_loss(scores: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
                 weights: Sequence[float] | None = None) -> torch.Tensor:
    """``L_G`` of the module docstring (without the flatness term) → scalar."""
    return _combine([-masked_mean(d, m) for d, m in zip(scores, masks)], weights)


def discriminator_weights(num_discriminators: int, texture_resolution: int) -> list[float] | None:
    """The original's weights: ``[2, 1]`` (texture over mesh) with two discriminators at 512 or more
    (Pascal3D+), None (uniform) otherwise."""
    return [2.0, 1.0] if num_discriminators == 2 and texture_resolution >= 512 else None
