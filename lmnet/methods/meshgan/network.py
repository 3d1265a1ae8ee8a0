"""convmesh's class-conditional GAN networks: a generator of UV textures and displacement maps of the
UV-sphere template, and the multi-scale discriminator that judges them.

The module and parameter names are the original ones (``emb_class``, ``fc``, ``blk1.conv1.weight_orig``,
``blk1.norm1.norm.running_mean``, ``blk1.norm1.fc_gamma.weight``, ``d1.conv1.weight_orig``,
``d2.projector.weight``, …), so the original checkpoints' ``generator``, ``generator_running_avg`` and
``discriminator`` state dicts load unchanged (the original's ``norm_g=batch`` / ``syncbatch`` and
``norm_d=none``). ``width`` scales every channel count (1 = the original; names do not change).

**Generator** (:class:`Generator`), for ``z (B, 64)`` ~ N(0, I) and class ids ``c (B, K)``:

- the code is ``[z, emb_class(c[:, 0])]`` (``class``: a 64-d embedding) or
  ``[z, emb_class(c[:, 0]), emb_color(c[:, 1])]`` (``class_color``: two 32-d ones) or ``z`` alone;
- FC → 512×8×4 (the half map of a symmetric model; 8×8 otherwise);
- ResBlockUp blocks: two 3×3 convs (spectral norm, no bias), each followed by conditional BatchNorm
  (``BatchNorm2d(affine=False)``, then ``x·(1 + γ(code)) + β(code)`` with ``fc_gamma`` / ``fc_beta``
  linear in the code) and LeakyReLU 0.2, plus a 1×1 spectral-norm shortcut when the width changes;
  nearest ×2 upsampling between blocks: ``blk1`` 512 (8×4 → 16×8), ``blk2`` 256 (→ 32×16);
- texture branch: ``blk3a`` (256 and 512) and ``blk3b`` (512) 256 with ×2 each, ``blk4`` 128 ×2,
  ``blk5`` 128 ×2 (no ×2 at texture 64, lmnet's smallest size), ``blk6`` 64, LeakyReLU,
  ``conv_final`` 5×5 → 3, tanh, mirrored to ``(B, 3, T, T)`` in [−1, 1];
- mesh branch at 32×16: ``blk3_mesh`` 64, LeakyReLU, ``conv_mesh`` 5×5 → 3 (zero-initialised: the
  first meshes are the sphere), :func:`~lmnet.uvmesh.maps.adjust_poles`, mirrored to ``(B, 3, 32, 32)``.

Padding in u is replicate for the symmetric half map (its edges are the mirror planes) and circular
otherwise; in v it is zero.

**Discriminators** (:class:`MultiScaleDiscriminator`), on ``x = [texture·α, α] (B, 4, T, T)``, the
displacement map ``(B, 3, 32, 32)`` and the class ids:

- ``d1`` :class:`TextureDiscriminator` on ``x`` plus 4 positional-encoding channels; ``d2``
  :class:`MeshDiscriminator` on ``x`` average-pooled to 32², the displacement map and the
  encoding; ``d3`` (CUB at 512 only) a texture discriminator on ``x`` pooled by 4;
- spectral-norm convs (5×5 first and last, 4×4 stride 2 between), LeakyReLU 0.2, circular padding in
  u; a texture discriminator at 512 (or more) and full scale starts with a 4×4 stride-2 conv;
- projection term: ``y += Σ_channels features · projector(c[:, 0])`` (``+ projector_col1(c[:, 1])``);
- each returns ``(scores (B, 1, h, w), α average-pooled to (h, w))``: the loss weighs each score by
  the share of the texels it sees that are visible (:mod:`.losses`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmnet.uvmesh.maps import adjust_poles, circpad, symmetrize_texture

__all__ = ["CONDITIONING", "TEXTURE_RESOLUTIONS", "Generator", "MultiScaleDiscriminator", "MeshDiscriminator",
           "TextureDiscriminator", "ResBlockUp", "ConditionalBatchNorm2d", "positional_encoding"]

TEXTURE_RESOLUTIONS = (64, 128, 256, 512)
#: how the networks are conditioned: on nothing, a class id, or a class id and a colour id (P3D)
CONDITIONING = ("none", "class", "class_color")
#: the random vector z's size (convmesh's ``latent_dim``)
LATENT_DIM = 64


def _sn(module: nn.Module) -> nn.Module:
    """Spectral normalisation with the original's parameter names (``weight_orig``, ``weight_u``, ``weight_v``)."""
    return nn.utils.spectral_norm(module)


def _ch(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _replicate_u(x: torch.Tensor, amount: int) -> torch.Tensor:
    return F.pad(x, (amount, amount, 0, 0), mode="replicate")


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def positional_encoding(height: int, width: int) -> torch.Tensor:
    """``(1, 4, H, W)`` float32: ``cos, sin`` of the polar angle ``π·row/H`` (constant along u), then
    ``cos, sin`` of the azimuth ``−π + 2π·col/W`` (constant along v): smooth across the seam in u."""
    ty = np.linspace(0, np.pi, height, endpoint=False)
    tx = np.linspace(-np.pi, np.pi, width, endpoint=False)
    azimuth, polar = np.meshgrid(tx, ty)
    enc = np.stack((np.cos(polar), np.sin(polar), np.cos(azimuth), np.sin(azimuth)))
    return torch.from_numpy(enc).float().unsqueeze(0)


class ConditionalBatchNorm2d(nn.Module):
    """``BatchNorm2d(affine=False)`` followed by ``x·(1 + γ) + β``, ``γ, β (B, C)`` linear in the code."""

    def __init__(self, channels: int, code_dim: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.fc_gamma = nn.Linear(code_dim, channels)
        self.fc_beta = nn.Linear(code_dim, channels)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        gamma = self.fc_gamma(code)[:, :, None, None]
        beta = self.fc_beta(code)[:, :, None, None]
        return x * (1 + gamma) + beta


class ResBlockUp(nn.Module):
    """Two conditional-BN conv layers (module docstring) and a shortcut; no upsampling inside."""

    def __init__(self, ch_in: int, ch_out: int, code_dim: int, pad_fn):
        super().__init__()
        middle = min(ch_in, ch_out)
        self.conv1 = _sn(nn.Conv2d(ch_in, middle, 3, padding=(1, 0), bias=False))
        self.conv2 = _sn(nn.Conv2d(middle, ch_out, 3, padding=(1, 0), bias=False))
        self.norm1 = ConditionalBatchNorm2d(middle, code_dim)
        self.norm2 = ConditionalBatchNorm2d(ch_out, code_dim)
        self.shortcut = _sn(nn.Conv2d(ch_in, ch_out, 1, bias=False)) if ch_in != ch_out else None
        self.pad = pad_fn

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        x = _lrelu(self.norm1(self.conv1(self.pad(x, 1)), code))
        x = _lrelu(self.norm2(self.conv2(self.pad(x, 1)), code))
        return x + shortcut


class Generator(nn.Module):
    """``(z (B, 64), c (B, K) long or None)`` → ``(texture (B, 3, T, T), displacement (B, 3, 32, 32))``
    (module docstring). ``num_classes``: ``(classes,)`` or ``(classes, colours)``."""

    def __init__(self, texture_resolution: int = 512, conditioning: str = "class", num_classes=(200,),
                 width: float = 1.0, symmetric: bool = True):
        super().__init__()
        if texture_resolution not in TEXTURE_RESOLUTIONS:
            raise ValueError(f"texture_resolution must be one of {TEXTURE_RESOLUTIONS}, got {texture_resolution}")
        if conditioning not in CONDITIONING:
            raise ValueError(f"conditioning must be one of {CONDITIONING}, got {conditioning!r}")
        self.texture_resolution, self.conditioning = int(texture_resolution), conditioning
        self.symmetric = bool(symmetric)
        self.height, self.width = 8, 4 if symmetric else 8
        self.pad = _replicate_u if symmetric else circpad
        code_dim = LATENT_DIM
        if conditioning == "class_color":
            self.emb_class = nn.Embedding(num_classes[0], LATENT_DIM // 2)
            self.emb_color = nn.Embedding(num_classes[1], LATENT_DIM // 2)
            code_dim += LATENT_DIM
        elif conditioning == "class":
            self.emb_class = nn.Embedding(num_classes[0], LATENT_DIM)
            code_dim += LATENT_DIM
        c512, c256, c128, c64 = (_ch(c, width) for c in (512, 256, 128, 64))
        self.fc = nn.Linear(code_dim, self.height * self.width * c512)
        self.blk1 = ResBlockUp(c512, c512, code_dim, self.pad)
        self.blk2 = ResBlockUp(c512, c256, code_dim, self.pad)
        if texture_resolution >= 256:
            self.blk3a = ResBlockUp(c256, c256, code_dim, self.pad)
        if texture_resolution >= 512:
            self.blk3b = ResBlockUp(c256, c256, code_dim, self.pad)
        self.blk4 = ResBlockUp(c256, c128, code_dim, self.pad)
        self.blk5 = ResBlockUp(c128, c128, code_dim, self.pad)
        self.blk6 = ResBlockUp(c128, c64, code_dim, self.pad)
        self.conv_final = nn.Conv2d(c64, 3, 5, padding=(2, 0))
        self.blk3_mesh = ResBlockUp(c256, c64, code_dim, self.pad)
        self.conv_mesh = nn.Conv2d(c64, 3, 5, padding=(2, 0))
        with torch.no_grad():
            self.conv_mesh.weight.zero_()
            self.conv_mesh.bias.zero_()

    def code(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """``(B, 64 or 128)``: ``z`` with the class (and colour) embeddings appended."""
        if self.conditioning == "none":
            return z
        if c is None:
            raise ValueError(f"a {self.conditioning}-conditional generator needs class ids c (B, K)")
        parts = [z, self.emb_class(c[:, 0])]
        if self.conditioning == "class_color":
            parts.append(self.emb_color(c[:, 1]))
        return torch.cat(parts, dim=1)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None):
        code = self.code(z, c)
        x = self.fc(code).view(z.shape[0], -1, self.height, self.width)
        x = _up(self.blk1(x, code))
        x = _up(self.blk2(x, code))                      # (B, 256, 32, 16)
        tex = x
        for name in ("blk3a", "blk3b"):
            if hasattr(self, name):
                tex = _up(getattr(self, name)(tex, code))
        tex = _up(self.blk4(tex, code))
        tex = self.blk5(tex, code)
        if self.texture_resolution > 64:
            tex = _up(tex)
        tex = _lrelu(self.blk6(tex, code))
        tex = torch.tanh(self.conv_final(self.pad(tex, 2)))
        mesh = _lrelu(self.blk3_mesh(x, code))
        mesh = adjust_poles(self.conv_mesh(self.pad(mesh, 2)))
        if self.symmetric:
            tex, mesh = symmetrize_texture(tex), symmetrize_texture(mesh)
        return tex, mesh


class _ProjectionHead(nn.Module):
    """Shared parts of the discriminators: positional encoding, the projection term."""

    def _with_encoding(self, x: torch.Tensor) -> torch.Tensor:
        enc = positional_encoding(x.shape[2], x.shape[3]).to(x.device, x.dtype)
        return torch.cat((x, enc.expand(x.shape[0], -1, -1, -1)), dim=1)

    def _add_projection(self, y: torch.Tensor, features: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if not hasattr(self, "projector"):
            return y
        emb = self.projector(c[:, 0])
        if hasattr(self, "projector_col1"):
            emb = emb + self.projector_col1(c[:, 1])
        return y + (features * emb[:, :, None, None]).sum(dim=1, keepdim=True)

    def _projectors(self, conditioning: str, num_classes, channels: int) -> None:
        if conditioning in ("class", "class_color"):
            self.projector = nn.Embedding(num_classes[0], channels)
        if conditioning == "class_color":
            self.projector_col1 = nn.Embedding(num_classes[1], channels)


def _down(ch_in: int, ch_out: int) -> nn.Module:
    return _sn(nn.Conv2d(ch_in, ch_out, 4, padding=(1, 0), stride=2))


class TextureDiscriminator(_ProjectionHead):
    """``[texture·α, α] (B, 4, T, T)`` (pooled by ``downsample`` first) → ``(scores, pooled α)``."""

    def __init__(self, texture_resolution: int, conditioning: str, num_classes, downsample: int = 1,
                 width: float = 1.0, in_channels: int = 4):
        super().__init__()
        c64, c128, c256, c512 = (_ch(c, width) for c in (64, 128, 256, 512))
        self.downsample = int(downsample)
        self.stride_first = (downsample == 1 and texture_resolution >= 512) or texture_resolution >= 1024
        nc = in_channels + 4
        self.conv1 = _down(nc, c64) if self.stride_first else _sn(nn.Conv2d(nc, c64, 5, padding=(2, 0)))
        self.conv2 = _down(c64, c128)
        self.conv3 = _down(c128, c256)
        self.conv4 = _down(c256, c512)
        self.conv5 = _sn(nn.Conv2d(c512, 1, 5, padding=(2, 0)))
        self._projectors(conditioning, num_classes, c512)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None):
        if self.downsample > 1:
            x = F.avg_pool2d(x, self.downsample)
        with torch.no_grad():
            mask = F.avg_pool2d(x[:, 3:4], 16 if self.stride_first else 8)
        x = self._with_encoding(x)
        x = _lrelu(self.conv1(circpad(x, 1 if self.stride_first else 2)))
        for conv in (self.conv2, self.conv3, self.conv4):
            x = _lrelu(conv(circpad(x, 1)))
        y = self.conv5(circpad(x, 2))
        return self._add_projection(y, x, c), mask


class MeshDiscriminator(_ProjectionHead):
    """``[texture·α, α] (B, 4, T, T)`` pooled to the displacement map's size, with the map
    ``(B, 3, 32, 32)`` → ``(scores (B, 1, 8, 8), α pooled to 8×8)``."""

    def __init__(self, conditioning: str, num_classes, width: float = 1.0, in_channels: int = 7):
        super().__init__()
        c64, c128, c256 = (_ch(c, width) for c in (64, 128, 256))
        self.conv1 = _sn(nn.Conv2d(in_channels + 4, c64, 5, padding=(2, 0)))
        self.conv2 = _down(c64, c128)
        self.conv3 = _down(c128, c256)
        self.conv4 = _sn(nn.Conv2d(c256, 1, 5, padding=(2, 0)))
        self._projectors(conditioning, num_classes, c256)

    def forward(self, texture: torch.Tensor, mesh: torch.Tensor, c: torch.Tensor | None = None):
        x = F.avg_pool2d(texture, texture.shape[2] // mesh.shape[2])
        with torch.no_grad():
            mask = F.avg_pool2d(x[:, 3:4], 4)
        x = self._with_encoding(torch.cat((x, mesh), dim=1))
        x = _lrelu(self.conv1(circpad(x, 2)))
        x = _lrelu(self.conv2(circpad(x, 1)))
        x = _lrelu(self.conv3(circpad(x, 1)))
        y = self.conv4(circpad(x, 2))
        return self._add_projection(y, x, c), mask


class MultiScaleDiscriminator(nn.Module):
    """``d1`` texture, ``d2`` mesh, ``d3`` texture at /4 when ``num_discriminators == 3``;
    ``(x, mesh, c)`` → ``([scores], [masks])``, one of each per discriminator."""

    def __init__(self, texture_resolution: int = 512, conditioning: str = "class", num_classes=(200,),
                 num_discriminators: int = 3, width: float = 1.0):
        super().__init__()
        if num_discriminators not in (2, 3):
            raise ValueError(f"num_discriminators must be 2 or 3, got {num_discriminators}")
        if num_discriminators == 3 and texture_resolution < 512:
            raise ValueError("a third discriminator (at /4) needs textures of at least 512")
        self.d1 = TextureDiscriminator(texture_resolution, conditioning, num_classes, 1, width)
        self.d2 = MeshDiscriminator(conditioning, num_classes, width)
        if num_discriminators == 3:
            self.d3 = TextureDiscriminator(texture_resolution, conditioning, num_classes, 4, width)

    def forward(self, x: torch.Tensor, mesh: torch.Tensor, c: torch.Tensor | None = None):
        outputs = [self.d1(x, c), self.d2(x, mesh, c)]
        if hasattr(self, "d3"):
            outputs.append(self.d3(x, c))
        return [y for y, _ in outputs], [m for _, m in outputs]
