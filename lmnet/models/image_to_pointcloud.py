"""Image → point cloud: the image encoder (+ a log σ² head for Variant II) and a frozen AE decoder.

Variants (docs/models.md#variant-i-latent-regression), all regressing the image latent onto the frozen
autoencoder latent ``z_pc = AE.encode(gt_points)``:

- ``"l1"`` (Variant I, official): loss ``mean |z − z_pc|``;
- ``"l2"`` (Variant I): loss ``mean (z − z_pc)²``;
- ``"probabilistic"`` (Variant II): heads μ and log σ², ``z = μ + ε·σ`` with ``ε ~ N(0, I)``, loss
  ``mean (z − z_pc)² + λ·L_div`` (:func:`lmnet.losses.diversity_loss`).

"mean" is over the batch and the 512 latent entries (TensorFlow ``reduce_mean``); the losses live
in :mod:`lmnet.losses.latent`.
"""

from __future__ import annotations

import torch
from torch import nn

from lmnet.models.image_encoder import ImageEncoder
from lmnet.models.point_ae import PointDecoder

VARIANTS = ("l1", "l2", "probabilistic")


class ImageToPointCloud(nn.Module):
    """``forward(images (B, 3, 128, 128) raw 0–255) -> (B, 2048, 3)``; ``arch``: the image-encoder
    preset (:mod:`lmnet.models.image_encoder`).

    The decoder is frozen: its parameters have ``requires_grad=False`` and it stays in eval mode
    (BatchNorm running statistics of the autoencoder) even when the module is put in train mode.
    """

    def __init__(self, variant: str = "l1", image_scaling: str = "raw255", latent_dim: int = 512,
                 n_points: int = 2048, decoder: PointDecoder | None = None, arch: str = "lmnet"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.variant = variant
        self.encoder = ImageEncoder(latent_dim=latent_dim, image_scaling=image_scaling, arch=arch)
        self.arch = arch
        self.logvar_head = nn.Linear(self.encoder.feature_dim, latent_dim) if variant == "probabilistic" else None
        self.decoder = decoder if decoder is not None else PointDecoder(n_points=n_points)
        for p in self.decoder.parameters():
            p.requires_grad_(False)
        self.decoder.eval()

    @property
    def probabilistic(self) -> bool:
        return self.logvar_head is not None

    def train(self, mode: bool = True):
        super().train(mode)
        self.decoder.eval()  # frozen: always the AE's running BatchNorm statistics
        return self

    def trainable_parameters(self):
        """The image-side parameters (everything except the frozen decoder)."""
        return [p for n, p in self.named_parameters() if not n.startswith("decoder.")]

    def encode_image(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, 3, 128, 128)`` → ``(mu (B, 512), logvar (B, 512) or None)``; Variant I returns ``(z, None)``."""
        features = self.encoder.features(images)
        mu = self.encoder.fc(features)
        logvar = self.logvar_head(features) if self.logvar_head is not None else None
        return mu, logvar

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction ``(B, 2048, 3)`` (μ for Variant II)."""
        mu, _ = self.encode_image(images)
        return self.decoder(mu)

    def sample(self, images: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``k`` reconstructions per image ``(B, k, 2048, 3)`` from ``z ~ N(μ, σ²)`` (Variant II).

        Variant I models are deterministic: the ``k`` copies are identical.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        mu, logvar = self.encode_image(images)
        z = mu.unsqueeze(1).expand(-1, k, -1)
        if logvar is not None:
            eps = torch.randn(z.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = z + eps * torch.exp(0.5 * logvar).unsqueeze(1)
        b = images.shape[0]
        return self.decoder(z.reshape(b * k, -1)).view(b, k, self.decoder.n_points, 3)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``z = μ + ε·σ`` with ``σ = exp(logvar / 2)`` and ``ε ~ N(0, I)`` from the global torch RNG."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
