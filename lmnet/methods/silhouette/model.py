"""Networks of mask-supervised training (docs/models.md#silhouette-network): the image → point-cloud
network with a trainable decoder and, for unknown pose, a pose network with K candidates and a student
head.

Pose convention: an R2N2 view is ``(azimuth, elevation)`` in **degrees** exactly as in
``rendering_metadata.txt`` (:mod:`lmnet.camera`); the distance ratio and fov are always taken from
the metadata (known), so the scale of the predicted cloud is fixed by the camera and not ambiguous.

:class:`PoseNet` (a small CNN on the view's RGB image downsampled to ``image_size``) outputs

- ``candidates (B, K, 2)``: candidate ``k`` has azimuth ``360·k/K + AZIMUTH_SPREAD·a_k`` (``a_k``
  unbounded, starting near 0 so the K candidates initially cover the circle evenly) and elevation
  ``lo + (hi − lo)·sigmoid(e_k)`` with ``(lo, hi) = elevation_range``;
- ``student (B, 2)``: azimuth ``atan2(s, c)`` of a predicted ``(c, s)`` pair (in ``[0, 360)``) and an
  elevation parameterised like the candidates. The student is what is used at test time.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from lmnet.models.image_to_pointcloud import ImageToPointCloud
from lmnet.models.point_ae import N_OUTPUT_POINTS

AZIMUTH_SPREAD = 60.0  # degrees per unit of the raw azimuth output of a candidate


class PoseNet(nn.Module):
    """``(B, 3, S, S)`` raw 0–255 RGB → ``(candidates (B, K, 2), student (B, 2))`` in degrees."""

    def __init__(self, n_candidates: int = 4, image_size: int = 64, elevation_range=(0.0, 60.0)):
        super().__init__()
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be >= 1, got {n_candidates}")
        if image_size % 16 != 0 or image_size < 16:
            raise ValueError(f"PoseNet image_size must be a multiple of 16, got {image_size}")
        lo, hi = (float(x) for x in elevation_range)
        if not lo < hi:
            raise ValueError(f"elevation_range must be (lo, hi) with lo < hi, got {elevation_range!r}")
        self.n_candidates, self.image_size, self.elevation_range = n_candidates, image_size, (lo, hi)
        layers, c_in = [], 3
        for c_out in (32, 64, 128, 128):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        feat = 128 * (image_size // 16) ** 2
        self.trunk = nn.Sequential(nn.Linear(feat, 256), nn.ReLU())
        self.candidates_head = nn.Linear(256, 2 * n_candidates)
        self.student_head = nn.Linear(256, 3)
        for head in (self.candidates_head, self.student_head):
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)
        self.register_buffer("azimuth_offsets", torch.arange(n_candidates, dtype=torch.float32) * 360.0 / n_candidates,
                             persistent=False)

    def _elevation(self, raw: torch.Tensor) -> torch.Tensor:
        lo, hi = self.elevation_range
        return lo + (hi - lo) * torch.sigmoid(raw)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, self.image_size, self.image_size):
            raise ValueError(f"PoseNet expects images (B, 3, {self.image_size}, {self.image_size}), "
                             f"got {tuple(images.shape)}")
        h = self.trunk(self.convs(images / 255.0).flatten(1))
        raw = self.candidates_head(h).view(-1, self.n_candidates, 2)
        cand = torch.stack([self.azimuth_offsets + AZIMUTH_SPREAD * raw[..., 0], self._elevation(raw[..., 1])], -1)
        s = self.student_head(h)
        az = torch.rad2deg(torch.atan2(s[:, 1], s[:, 0] + 1.0)) % 360.0  # +1: defined (0°) at init
        return cand, torch.stack([az, self._elevation(s[:, 2])], -1)


class SilhouetteNetwork(ImageToPointCloud):
    """:class:`ImageToPointCloud` (``forward(images) -> (B, 2048, 3)``, ``encode_image``, ``decoder``)
    whose decoder **trains** (mask supervision, no frozen autoencoder), plus an optional
    :class:`PoseNet` (``n_pose_candidates > 0``, unknown-pose training). The cloud is always in the
    canonical 3D-LMNet frame; the pose network gives the cameras it is projected with."""

    def __init__(self, image_scaling: str = "raw255", latent_dim: int = 512, n_points: int = 2048,
                 n_pose_candidates: int = 0, pose_image_size: int = 64, elevation_range=(0.0, 60.0)):
        super().__init__(variant="l1", image_scaling=image_scaling, latent_dim=latent_dim, n_points=n_points)
        for p in self.decoder.parameters():
            p.requires_grad_(True)
        self.pose_net = (PoseNet(n_pose_candidates, pose_image_size, elevation_range)
                         if n_pose_candidates > 0 else None)

    def train(self, mode: bool = True):
        nn.Module.train(self, mode)  # the decoder trains here: no frozen eval mode
        return self

    def trainable_parameters(self):
        return [p for p in self.parameters() if p.requires_grad]


LATENT_DIM = 512
INIT_RADIUS = 0.25  # radius of the uniform ball the from-scratch decoder starts from (unit-diagonal frame)


def build_model(model_config: Mapping[str, Any]) -> SilhouetteNetwork:
    """The network of a checkpoint's ``model_config``."""
    mc = model_config
    return SilhouetteNetwork(image_scaling=mc["image_scaling"], latent_dim=mc["latent_dim"], n_points=mc["n_points"],
                             n_pose_candidates=mc["n_pose_candidates"], pose_image_size=mc["pose_image_size"],
                             elevation_range=mc["elevation_range"])


def model_config(config: Mapping[str, Any]) -> dict:
    """The ``model_config`` a checkpoint of a run with ``config`` stores (no pose network with known poses)."""
    return {"kind": "silhouette", "image_scaling": config["image_scaling"], "latent_dim": LATENT_DIM,
            "n_points": N_OUTPUT_POINTS,
            "n_pose_candidates": config["n_pose_candidates"] if config["pose"] == "unknown" else 0,
            "pose_image_size": config["pose_image_size"], "elevation_range": list(config["elevation_range"])}


def new_model(config: Mapping[str, Any], init_decoder: nn.Module | None = None) -> SilhouetteNetwork:
    """A fresh network for a run with ``config``; its decoder starts as ``init_decoder`` (an
    autoencoder's) when given, else spread for mask training (:func:`spread_decoder_init`)."""
    model = build_model(model_config(config))
    if init_decoder is not None:
        model.decoder.load_state_dict(init_decoder.state_dict())
    else:
        spread_decoder_init(model, config["seed"], config["decoder_init_scale"])
    return model


def spread_decoder_init(model: SilhouetteNetwork, seed: int, scale: float) -> None:
    """Start the decoder from a spread, compact cloud. The occupancy is clamped at 1, so points in a
    saturated voxel get no gradient: the default init (a cloud covering the whole image at σ≈3) has
    no gradient anywhere, and a merely shrunk one piles every point into a few central voxels that
    never move. So the last layer's weights are scaled by ``scale`` and its bias set to a seeded
    uniform ball of radius :data:`INIT_RADIUS`: the first cloud is spread, compact and only slightly
    image-dependent."""
    last = model.decoder.mlp[-1]
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(model.decoder.n_points, 3, generator=g)
    r = INIT_RADIUS * torch.rand(model.decoder.n_points, 1, generator=g) ** (1 / 3)
    with torch.no_grad():
        last.weight.mul_(scale)
        last.bias.copy_((r * d / d.norm(dim=1, keepdim=True)).reshape(-1))


__all__ = ["PoseNet", "SilhouetteNetwork", "AZIMUTH_SPREAD", "INIT_RADIUS", "build_model", "model_config", "new_model"]
