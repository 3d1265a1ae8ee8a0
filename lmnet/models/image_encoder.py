"""The 3D-LMNet image encoder (docs/models.md#image-encoder): 16 conv layers on a 3×128×128 image → FC → 512-d latent.

Layout (kernel, stride, out channels), every conv with TensorFlow-style "same" padding::

    3×3 s1 32, 3×3 s1 32,                    128×128
    3×3 s2 64, 3×3 s1 64, 3×3 s1 64,          64×64
    3×3 s2 128, 3×3 s1 128, 3×3 s1 128,       32×32
    3×3 s2 256, 3×3 s1 256, 3×3 s1 256,       16×16
    3×3 s2 512, 3×3 s1 512 ×3,                 8×8
    5×5 s2 512                                 4×4   → flatten 4·4·512 = 8192 → FC 8192→512

"Same" padding follows TensorFlow exactly: with stride 2 on an even map the extra row/column of
zeros goes at the bottom/right (``F.pad`` asymmetric), so the receptive fields match the original
rather than the symmetric ``padding=k//2`` approximation.

Architecture presets (``arch``; the final FC is always linear, no BN, no activation):

- ``"lmnet"`` (this package's default): each conv is ``Conv (no bias) → BatchNorm → ReLU``, TF
  "same" padding, features flattened channel-major (PyTorch ``C·16 + h·4 + w``) → FC 8192→512.
- ``"official"`` (the TensorFlow graph of 3D-LMNet, TFLearn ``conv_2d(activation='relu')``): each
  conv is ``Conv + bias → ReLU``, no BatchNorm, TF "same" padding; features flattened in TF's NHWC
  order (``(h·4 + w)·512 + c``) so a TF ``FullyConnected/W [8192, 512]`` is used as ``W.T`` as is.
- ``"port"`` (the public PyTorch port): ``Conv + bias → ReLU``, no BatchNorm; stride-1 convs padded
  ``k // 2`` (= "same"), the five stride-2 convs **unpadded**, so the maps go
  128→63→31→15→7→2 and the FC is 2·2·512 = 2048→512 (channel-major flatten).

Input scaling (``image_scaling``) is applied inside :meth:`ImageEncoder.forward`, so callers always
pass the dataset's raw RGB floats in 0–255:

- ``"raw255"``: fed as is (both published codes did this; the default);
- ``"unit"``: ``x / 255`` → [0, 1];
- ``"standardize"``: per image, ``(x − mean) / max(std, 1/sqrt(numel))`` over all its pixels and
  channels (TensorFlow's ``per_image_standardization``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lmnet.image_sizes import CROP_SIZE

IMAGE_SCALINGS = ("raw255", "unit", "standardize")
# (kernel, stride, out_channels) for the 16 conv layers.
CONV_LAYOUT = (
    (3, 1, 32), (3, 1, 32),
    (3, 2, 64), (3, 1, 64), (3, 1, 64),
    (3, 2, 128), (3, 1, 128), (3, 1, 128),
    (3, 2, 256), (3, 1, 256), (3, 1, 256),
    (3, 2, 512), (3, 1, 512), (3, 1, 512), (3, 1, 512),
    (5, 2, 512),
)
FEATURE_DIM = 4 * 4 * 512
ARCHS = ("lmnet", "official", "port")


def feature_dim(arch: str = "lmnet") -> int:
    """Length of the flattened conv features the FC layer(s) read: 8192, or 2048 for ``"port"``."""
    return 2 * 2 * 512 if arch == "port" else FEATURE_DIM


def scale_images(images: torch.Tensor, mode: str) -> torch.Tensor:
    """Map raw RGB floats in 0–255 ``(B, 3, H, W)`` to the network's input range (see module doc)."""
    if mode == "raw255":
        return images
    if mode == "unit":
        return images / 255.0
    if mode == "standardize":
        flat = images.flatten(1)
        mean = flat.mean(dim=1).view(-1, 1, 1, 1)
        floor = 1.0 / math.sqrt(flat.shape[1])
        std = flat.std(dim=1, unbiased=False).clamp_min(floor).view(-1, 1, 1, 1)
        return (images - mean) / std
    raise ValueError(f"image_scaling must be one of {IMAGE_SCALINGS}, got {mode!r}")


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "same" padding (output size ``ceil(in / stride)``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]  # (left, right) then (top, bottom)
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class ImageEncoder(nn.Module):
    """``(B, 3, 128, 128)`` raw 0–255 RGB → ``(B, 512)`` latent.

    :meth:`features` gives the flattened ``(B, feature_dim)`` conv features (8192; 2048 for the
    ``"port"`` preset; Variant II puts a second head on them); :attr:`fc` is the features→512 layer.
    """

    def __init__(self, latent_dim: int = 512, image_scaling: str = "raw255", arch: str = "lmnet"):
        super().__init__()
        if image_scaling not in IMAGE_SCALINGS:
            raise ValueError(f"image_scaling must be one of {IMAGE_SCALINGS}, got {image_scaling!r}")
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
        self.image_scaling = image_scaling
        self.arch = arch
        layers, c_in = [], 3
        for k, s, c_out in CONV_LAYOUT:
            if arch == "lmnet":
                layers += [SameConv2d(c_in, c_out, k, stride=s, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            elif arch == "official":
                layers += [SameConv2d(c_in, c_out, k, stride=s), nn.ReLU()]
            else:  # port: unpadded stride-2 convs, symmetric k // 2 padding (= "same") at stride 1
                layers += [nn.Conv2d(c_in, c_out, k, stride=s, padding=0 if s > 1 else k // 2), nn.ReLU()]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.feature_dim = feature_dim(arch)
        self.fc = nn.Linear(self.feature_dim, latent_dim)
        self.latent_dim = latent_dim

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, CROP_SIZE, CROP_SIZE):
            raise ValueError(f"ImageEncoder expects images of shape (B, 3, {CROP_SIZE}, {CROP_SIZE}), "
                             f"got {tuple(images.shape)}")
        maps = self.convs(scale_images(images, self.image_scaling))  # (B, 512, h, w)
        if self.arch == "official":
            maps = maps.permute(0, 2, 3, 1)  # NHWC flatten, as TensorFlow's reshape
        return maps.flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(images))
