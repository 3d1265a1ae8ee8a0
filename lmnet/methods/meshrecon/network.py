"""convmesh's reconstruction network (``ReconstructionNetwork``): a photograph → a UV texture and a
displacement map of the UV-sphere template.

The layer names are the original ones (``conv1e``, ``bn1e``, …, ``blk1``, ``blk3b_tex``,
``conv_mesh``), so the original checkpoints' ``generator`` state dicts load into it unchanged.

- **Input** ``(B, 4, S, S)``: RGB in [−1, 1] multiplied by the mask, then the mask (a CMR dataset
  item's ``image`` and ``mask``). ``S`` is a multiple of 32; convmesh uses 256 (``fc1e`` then sees
  64·8·8 = 4096 features, in general 64·(S/32)²).
- **Encoder**: conv 5×5 s2 4→64, conv 3×3 s2 64→128→256→512→64 (BN, ReLU each), FC → 256 (BN,
  ReLU), FC → 1024 (BN, ReLU).
- **Decoder trunk**: FC 1024 → 256×4×2 (×4×4 without symmetry), ResBlocks 256→512→256→256 each
  followed by a ×2 upsampling (nearest) → 256×32×16.
- **Mesh head**: ResBlock 256→64, ReLU, conv 5×5 → 3 (zero-initialised: the first prediction is the
  undeformed sphere), :func:`~lmnet.uvmesh.maps.adjust_poles`, then (symmetric) mirrored to
  ``(B, 3, 32, 32)``.
- **Texture head**: one more ResBlock + ×2 per doubling above 64 (``blk3b_tex`` for 128,
  ``blk3c_tex`` for 256), ResBlock → 128 + ×2, ResBlock → 64, ReLU, conv 5×5 → 3, tanh, then
  (symmetric) mirrored to ``(B, 3, T, T)`` in [−1, 1].

Padding in u (the map's width) is replicate with symmetry (the half map's edges are the mirror
plane) and circular otherwise; in v it is zero (the conv's own padding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmnet.uvmesh.maps import adjust_poles, circpad, symmetrize_texture

__all__ = ["ResBlock", "ReconstructionNetwork", "TEXTURE_RESOLUTIONS"]

TEXTURE_RESOLUTIONS = (64, 128, 256)


def _replicate_u(x: torch.Tensor, amount: int) -> torch.Tensor:
    return F.pad(x, (amount, amount, 0, 0), mode="replicate")


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class ResBlock(nn.Module):
    """Two 3×3 convs (BN, ReLU) padded in u by ``pad_fn``, plus a 1×1 shortcut when the width changes."""

    def __init__(self, ch_in: int, ch_out: int, pad_fn):
        super().__init__()
        self.conv1 = nn.Conv2d(ch_in, ch_in, 3, padding=(1, 0), bias=False)
        self.conv2 = nn.Conv2d(ch_in, ch_out, 3, padding=(1, 0), bias=False)
        self.bn1 = nn.BatchNorm2d(ch_in)
        self.bn2 = nn.BatchNorm2d(ch_out)
        self.pad_fn = pad_fn
        self.shortcut = nn.Conv2d(ch_in, ch_out, 1, bias=False) if ch_in != ch_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        x = F.relu(self.bn1(self.conv1(self.pad_fn(x, 1))))
        x = F.relu(self.bn2(self.conv2(self.pad_fn(x, 1))))
        return x + shortcut


class ReconstructionNetwork(nn.Module):
    """Image → ``(texture (B, 3, T, T), displacement (B, 3, 32, 32))`` (module docstring)."""

    def __init__(self, symmetric: bool = True, texture_res: int = 128, image_size: int = 256):
        super().__init__()
        if texture_res not in TEXTURE_RESOLUTIONS:
            raise ValueError(f"texture_res must be one of {TEXTURE_RESOLUTIONS}, got {texture_res}")
        if image_size < 64 or image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32 and >= 64, got {image_size}")
        self.symmetric, self.texture_res, self.image_size = bool(symmetric), int(texture_res), int(image_size)
        self.pad = _replicate_u if symmetric else circpad
        self.conv1e = nn.Conv2d(4, 64, 5, stride=2, padding=2, bias=False)
        self.bn1e = nn.BatchNorm2d(64)
        self.conv2e = nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False)
        self.bn2e = nn.BatchNorm2d(128)
        self.conv3e = nn.Conv2d(128, 256, 3, stride=2, padding=1, bias=False)
        self.bn3e = nn.BatchNorm2d(256)
        self.conv4e = nn.Conv2d(256, 512, 3, stride=2, padding=1, bias=False)
        self.bn4e = nn.BatchNorm2d(512)
        self.conv5e = nn.Conv2d(512, 64, 3, stride=2, padding=1, bias=False)
        self.bn5e = nn.BatchNorm2d(64)
        self.fc1e = nn.Linear(64 * (image_size // 32) ** 2, 256, bias=False)
        self.bnfc1e = nn.BatchNorm1d(256)
        self.fc3e = nn.Linear(256, 1024, bias=False)
        self.bnfc3e = nn.BatchNorm1d(1024)
        self.base_res_h, self.base_res_w = 4, (2 if symmetric else 4)
        self.fc1_tex = nn.Linear(1024, self.base_res_h * self.base_res_w * 256)
        self.blk1 = ResBlock(256, 512, self.pad)
        self.blk2 = ResBlock(512, 256, self.pad)
        self.blk3 = ResBlock(256, 256, self.pad)
        if texture_res >= 128:
            self.blk3b_tex = ResBlock(256, 256, self.pad)
        if texture_res >= 256:
            self.blk3c_tex = ResBlock(256, 256, self.pad)
        self.blk4_tex = ResBlock(256, 128, self.pad)
        self.blk5_tex = ResBlock(128, 64, self.pad)
        self.conv_tex = nn.Conv2d(64, 3, 5, padding=(2, 0))
        self.blk4_mesh = ResBlock(256, 64, self.pad)
        self.conv_mesh = nn.Conv2d(64, 3, 5, padding=(2, 0))
        nn.init.zeros_(self.conv_mesh.weight)   # the first prediction is the undeformed template
        nn.init.zeros_(self.conv_mesh.bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 4, S, S)`` → the 1024-d code ``(B, 1024)``."""
        if x.dim() != 4 or x.shape[1:] != (4, self.image_size, self.image_size):
            raise ValueError(f"input must be (B, 4, {self.image_size}, {self.image_size}) RGB·mask + mask, "
                             f"got {tuple(x.shape)}")
        for conv, bn in ((self.conv1e, self.bn1e), (self.conv2e, self.bn2e), (self.conv3e, self.bn3e),
                         (self.conv4e, self.bn4e), (self.conv5e, self.bn5e)):
            x = F.relu(bn(conv(x)))
        z = F.relu(self.bnfc1e(self.fc1e(x.flatten(1))))
        return F.relu(self.bnfc3e(self.fc3e(z)))

    def forward(self, x: torch.Tensor):
        """``(B, 4, S, S)`` → ``(texture (B, 3, T, T) in [−1, 1], displacement (B, 3, 32, 32))``."""
        z = self.encode(x)
        bb = self.fc1_tex(z).view(z.shape[0], -1, self.base_res_h, self.base_res_w)
        bb = _up(self.blk3(_up(self.blk2(_up(self.blk1(bb))))))
        mesh_map = self.conv_mesh(self.pad(F.relu(self.blk4_mesh(bb)), 2))
        mesh_map = adjust_poles(mesh_map)
        if self.texture_res >= 128:
            bb = _up(self.blk3b_tex(bb))
        if self.texture_res >= 256:
            bb = _up(self.blk3c_tex(bb))
        tex = self.blk5_tex(_up(self.blk4_tex(bb)))
        tex = torch.tanh(self.conv_tex(self.pad(F.relu(tex), 2)))
        if self.symmetric:
            tex, mesh_map = symmetrize_texture(tex), symmetrize_texture(mesh_map)
        return tex, mesh_map
