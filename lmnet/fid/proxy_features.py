"""An offline stand-in for Inception features: a fixed random convolutional network whose weights
come from a counter-based bit stream, so every machine builds the same network without a download
and without touching torch's random state (docs/fid.md#offline-proxy-features).

``proxy-randconv-v1``, ``(B, 3, H, W)`` in (0, 1) → ``(B, 1008)``:

1. resize bilinearly to 128×128 (``align_corners=False``), map to (−1, 1) by ``2x − 1``;
2. four stages of conv 3×3, stride 2, padding 1, no bias, ReLU: 3 → 32 → 64 → 128 → 256 channels
   (grids 64, 32, 16, 8). Weights: NumPy ``PCG64(20260501).random_raw`` words, drawn stage after
   stage in ``(out, in, 3, 3)`` order, each turned into ``u = (word >> 11) · 2⁻⁵³`` ∈ [0, 1) and
   then into ``(2u − 1) · √3 · √(2 / fan_in)`` (uniform, He variance);
3. features: per stage and channel, the spatial mean and standard deviation of the ReLU output
   (2 · 480 = 960 values), then the mean colour of the resized (0, 1) image over a 4×4 grid
   (48 values, channel-major).

Proxy FIDs and KIDs are comparable only with other numbers computed with the same features name —
never with published (Inception) FIDs. Any change of this definition gets a new name.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PROXY_NAME = "proxy-randconv-v1"
PROXY_SEED = 20260501
PROXY_SIZE = 128
PROXY_WIDTHS = (32, 64, 128, 256)
PROXY_GRID = 4
PROXY_DIM = 2 * sum(PROXY_WIDTHS) + 3 * PROXY_GRID * PROXY_GRID


def proxy_weights() -> list[np.ndarray]:
    """The four conv weights ``(out, in, 3, 3)`` (float32) of ``proxy-randconv-v1`` (module docstring)."""
    bits = np.random.PCG64(PROXY_SEED)
    weights, cin = [], 3
    for cout in PROXY_WIDTHS:
        shape = (cout, cin, 3, 3)
        words = bits.random_raw(math.prod(shape))
        u = (words >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
        bound = math.sqrt(3.0) * math.sqrt(2.0 / (cin * 9))
        weights.append(((2.0 * u - 1.0) * bound).reshape(shape).astype(np.float32))
        cin = cout
    return weights


class ProxyFeatures(nn.Module):
    """``proxy-randconv-v1``: images ``(B, 3, H, W)`` in (0, 1) → features ``(B, 1008)``. The
    weights are buffers (nothing to train, nothing drawn from torch's generator)."""

    features = PROXY_NAME
    feature_dim = PROXY_DIM

    def __init__(self):
        super().__init__()
        for i, w in enumerate(proxy_weights()):
            self.register_buffer(f"weight{i}", torch.from_numpy(w))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images, size=(PROXY_SIZE, PROXY_SIZE), mode="bilinear", align_corners=False)
        colour = F.adaptive_avg_pool2d(x, PROXY_GRID).flatten(1)
        x = 2.0 * x - 1.0
        stats = []
        for i in range(len(PROXY_WIDTHS)):
            x = F.relu(F.conv2d(x, getattr(self, f"weight{i}"), stride=2, padding=1))
            flat = x.flatten(2)
            stats += [flat.mean(dim=2), flat.std(dim=2, unbiased=False)]
        return torch.cat(stats + [colour], dim=1)
