"""Training the image encoder against a frozen autoencoder (Variant I and II, SPEC §2–3).

The autoencoder comes from ``ae_run`` (run folder or ``.pt``; ``ae_which`` best/last). Its encoder
gives the latent targets ``z_pc = AE.encode(gt_points)`` under ``no_grad`` in eval mode; a copy of
its decoder becomes the frozen decoder of the :class:`ImageToPointCloud` being trained, so image
runs are self-contained. Only the image encoder (+ the log σ² head) trains, with Adam and the
official L2 weight decay (1e-5 conv weights, 1e-3 FC weights; see :mod:`lmnet.train.config`).

Training columns: ``train_loss`` (what is optimised), ``train_latent_loss`` (L1 / L2 to ``z_pc``;
for Variant II the L2 of the sampled ``z``), ``train_div_loss`` (Variant II ``L_div``, else 0).
Validation: ``val_latent_loss`` (same kind as training, on μ, no sampling) and
``val_chamfer_x100`` (decoded μ vs ground truth, symmetric Euclidean Chamfer ×100).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
from torch import nn

from lmnet.errors import ConfigError
from lmnet.losses import chamfer_distance
from lmnet.models import ImageToPointCloud, PointAutoencoder, diversity_loss, latent_loss, reparameterize
from lmnet.train.loop import Trainer, conv_fc_weight_decay_groups
from lmnet.train.runs import load_model


class _ImageLatents(nn.Module):
    """What DDP wraps: images → ``(mu,)`` or ``(mu, logvar)`` (DDP must see the forward that
    produces the gradients; the frozen decoder is not part of it)."""

    def __init__(self, model: ImageToPointCloud):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        mu, logvar = self.model.encode_image(images)
        return (mu,) if logvar is None else (mu, logvar)


class ImageTrainer(Trainer):
    kind = "image"
    uses_images = True
    train_columns = ("train_loss", "train_latent_loss", "train_div_loss")

    def build_model(self) -> nn.Module:
        cfg = self.config
        ae, _ = load_model(cfg["ae_run"], which=cfg["ae_which"])
        if not isinstance(ae, PointAutoencoder):
            raise ConfigError(f"config key 'ae_run' must point to an autoencoder run, got {cfg['ae_run']!r}")
        self.teacher = ae.to(self.device).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        return ImageToPointCloud(variant=cfg["variant"], image_scaling=cfg["image_scaling"],
                                 decoder=copy.deepcopy(ae.decoder))

    def model_config(self) -> dict:
        return {"kind": "image", "variant": self.config["variant"], "image_scaling": self.config["image_scaling"],
                "latent_dim": 512, "n_points": 2048}

    def trainable_module(self) -> nn.Module:
        return _ImageLatents(self.model)

    def param_groups(self) -> list[dict]:
        return conv_fc_weight_decay_groups(self.model, self.config)

    def _latent_kind(self) -> str:
        return "l1" if self.config["variant"] == "l1" else "l2"

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        cfg = self.config
        images, points = self.to_device(batch["image"]), self.to_device(batch["points"])
        with torch.no_grad():
            target = self.teacher.encode(points)
        with self.autocast():
            out = self.net(images)
        mu = out[0].float()
        if cfg["variant"] == "probabilistic":
            logvar = out[1].float()
            z = reparameterize(mu, logvar)
            lat = latent_loss(z, target, "l2")
            azimuth = torch.deg2rad(self.to_device(batch["azimuth"]).float())
            div = diversity_loss(logvar, azimuth, alpha=cfg["alpha"], theta_rad=math.radians(cfg["theta_deg"]))
            return {"loss": lat + cfg["lambda_div"] * div, "latent_loss": lat, "div_loss": div}
        lat = latent_loss(mu, target, cfg["variant"])
        return {"loss": lat, "latent_loss": lat, "div_loss": torch.zeros((), device=mu.device)}

    def validation_sums(self, batch: dict) -> dict[str, float]:
        images, points = self.to_device(batch["image"]), self.to_device(batch["points"])
        target = self.teacher.encode(points)
        with self.autocast():
            mu, _ = self.model.encode_image(images)
            pred = self.model.decoder(mu)
        b = points.shape[0]
        lat = latent_loss(mu.float(), target, self._latent_kind())
        cd = chamfer_distance(pred.float(), points)
        return {"val_latent_loss": float(lat) * b, "val_chamfer_x100": 100.0 * float(cd) * b}


def train_image_encoder(config: dict, **datasets) -> Path:
    """Train an :class:`ImageToPointCloud` (``variant`` l1 / l2 / probabilistic) on top of the
    frozen autoencoder ``config["ae_run"]``; returns the run folder."""
    return ImageTrainer(config, **datasets).fit()
