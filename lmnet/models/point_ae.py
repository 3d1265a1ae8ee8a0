"""The point-cloud autoencoder of 3D-LMNet (docs/models.md#point-autoencoder), official geometry.

Encoder: a shared per-point MLP (``Conv1d`` with kernel 1) 3→64→128→128→256→512, each layer
followed by BatchNorm and ReLU, then a max over the points → a 512-d latent. Because the last ReLU
comes before the max-pool, every latent entry is ≥ 0.

Decoder: FC 512→256→256 (each BatchNorm + ReLU) → FC 256→2048·3 (linear, no activation),
reshaped to ``(B, 2048, 3)``.

Points are in the 3D-LMNet canonical frame (``lmnet.camera``): ``(B, N, 3)`` with ``N`` any count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ENCODER_CHANNELS = (3, 64, 128, 128, 256, 512)
DECODER_WIDTHS = (512, 256, 256)
LATENT_DIM = 512
N_OUTPUT_POINTS = 2048


class PointEncoder(nn.Module):
    """``(B, N, 3)`` points → ``(B, 512)`` latent (per-point MLP + max-pool, order invariant)."""

    def __init__(self, channels=ENCODER_CHANNELS):
        super().__init__()
        layers = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv1d(c_in, c_out, kernel_size=1, bias=False), nn.BatchNorm1d(c_out), nn.ReLU()]
        self.mlp = nn.Sequential(*layers)
        self.latent_dim = channels[-1]

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """The same computation as ``self.mlp`` on ``(B, 3, N)`` followed by a max over N, run on the
        points as ``(B·N, C)`` rows: each kernel-1 ``Conv1d`` is a matrix product with its
        ``(out, in, 1)`` weight, and ``BatchNorm1d`` over rows normalises over the same B·N values per
        channel (same statistics, same running-stat update). On CPUs this is faster: one GEMM per layer
        instead of a convolution and its layout copies (``ae_step B=16 … (encoder layout)`` in
        benchmarks/bench_train.py)."""
        if points.dim() != 3 or points.shape[-1] != 3:
            raise ValueError(f"PointEncoder expects points of shape (B, N, 3), got {tuple(points.shape)}")
        b, n, _ = points.shape
        rows = points.reshape(b * n, 3)
        for layer in self.mlp:
            rows = F.linear(rows, layer.weight.squeeze(-1)) if isinstance(layer, nn.Conv1d) else layer(rows)
        return rows.view(b, n, -1).max(dim=1).values  # (B, 512)


class PointDecoder(nn.Module):
    """``(B, 512)`` latent → ``(B, 2048, 3)`` points (FC stack, last layer linear)."""

    def __init__(self, widths=DECODER_WIDTHS, n_points: int = N_OUTPUT_POINTS):
        super().__init__()
        layers = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out, bias=False), nn.BatchNorm1d(w_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], n_points * 3))
        self.mlp = nn.Sequential(*layers)
        self.n_points = n_points
        self.latent_dim = widths[0]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"PointDecoder expects latents of shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return self.mlp(z).view(z.shape[0], self.n_points, 3)


class PointAutoencoder(nn.Module):
    """``forward(points (B, N, 3)) -> (B, 2048, 3)``; ``encode`` → ``(B, 512)``; ``decode`` → ``(B, 2048, 3)``."""

    def __init__(self, n_points: int = N_OUTPUT_POINTS):
        super().__init__()
        self.encoder = PointEncoder()
        self.decoder = PointDecoder(n_points=n_points)

    def encode(self, points: torch.Tensor) -> torch.Tensor:
        return self.encoder(points)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(points))


def build_point_autoencoder(model_config) -> PointAutoencoder:
    """The :class:`PointAutoencoder` a checkpoint's ``model_config`` describes (``n_points``)."""
    return PointAutoencoder(n_points=model_config["n_points"])
