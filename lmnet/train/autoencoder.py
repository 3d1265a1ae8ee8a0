"""Training the point-cloud autoencoder (docs/training.md#defaults-per-kind): Adam 5e-4, batch 32,
Euclidean Chamfer 2048↔N.

Loss: ``chamfer_distance(pred, gt, weights=chamfer_weights)`` — mean Euclidean (not squared) NN
distance pred→gt plus gt→pred, averaged over the batch. Validation column ``val_chamfer_x100``:
the same with weights (1, 1), ×100, averaged over validation clouds.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lmnet.losses.chamfer import chamfer_distance
from lmnet.models import PointAutoencoder
from lmnet.train.loop import Trainer, weight_decay_groups


class AutoencoderTrainer(Trainer):
    kind = "autoencoder"
    uses_images = False
    train_columns = ("train_loss",)

    def build_model(self) -> nn.Module:
        return PointAutoencoder(n_points=2048)

    def model_config(self) -> dict:
        return {"kind": "autoencoder", "n_points": 2048, "latent_dim": 512}

    def param_groups(self, config: dict) -> list[dict]:
        wd = config["weight_decay"]
        return weight_decay_groups(self.model, lambda layer: wd if isinstance(layer, (nn.Conv1d, nn.Linear)) else 0.0)

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        points = self.to_device(batch["points"])
        with self.autocast():
            pred = self.net(points)
        loss = chamfer_distance(pred.float(), points, weights=tuple(self.config["chamfer_weights"]))
        return {"loss": loss}

    def validation_sums(self, batch: dict) -> dict[str, float]:
        points = self.to_device(batch["points"])
        with self.autocast():
            pred = self.model(points)
        cd = chamfer_distance(pred.float(), points)  # symmetric, Euclidean, mean over the batch
        return {"val_chamfer_x100": 100.0 * float(cd) * points.shape[0]}


def train_autoencoder(config: dict, **datasets) -> Path:
    """Train a :class:`PointAutoencoder` with ``config`` (see :mod:`lmnet.runs.defaults`); returns the
    run folder. ``datasets``: optional ``train_set=`` / ``val_set=`` replacing the ShapeNet ones."""
    return AutoencoderTrainer(config, **datasets).fit()
