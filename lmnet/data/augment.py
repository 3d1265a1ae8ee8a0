"""Training-time augmentation of the image runs' inputs (off unless a config asks for it)."""

from __future__ import annotations

import torch


def tint_objects(images: torch.Tensor, masks: torch.Tensor, background: float, gains: torch.Tensor) -> torch.Tensor:
    """Recolour the object of composited renders: ``images (B, 3, H, W)`` in 0–255 (``composite``
    over ``background``), ``masks (B, 1, H, W)`` their alpha in 0–1, ``gains (B, 3)`` per-image RGB
    factors → ``(B, 3, H, W)``, clamped to 0–255.

    The object's colour is multiplied by the gains before compositing: with
    ``x = rgb·a + background·(1 − a)``, the result is ``rgb·g·a + background·(1 − a)
    = x + (g − 1)·(x − background·(1 − a))``, so the background and the anti-aliased edge blend stay
    consistent. A grey render with unequal gains becomes a coloured object; equal gains change its
    brightness. Used by the image runs' ``colour_jitter`` (:mod:`lmnet.methods.image.config`)."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"tint_objects: images must be (B, 3, H, W), got {tuple(images.shape)}")
    if masks.shape != (images.shape[0], 1, *images.shape[2:]):
        raise ValueError(f"tint_objects: masks must be {(images.shape[0], 1, *images.shape[2:])}, got {tuple(masks.shape)}")
    if gains.shape != (images.shape[0], 3):
        raise ValueError(f"tint_objects: gains must be ({images.shape[0]}, 3), got {tuple(gains.shape)}")
    object_rgb = images - background * (1.0 - masks)  # rgb·a
    return (images + (gains[:, :, None, None] - 1.0) * object_rgb).clamp(0.0, 255.0)
