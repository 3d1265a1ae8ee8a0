"""Training the point-cloud autoencoder (docs/training.md#defaults-per-kind): Adam 5e-4, batch 32,
Euclidean Chamfer 2048↔N.

Loss: ``chamfer_distance(pred, gt, weights=chamfer_weights)`` — mean Euclidean (not squared) NN
distance pred→gt plus gt→pred, averaged over the batch. Validation column ``val_chamfer_x100``:
the same with weights (1, 1), ×100, averaged over validation clouds.

With ``emd_weight`` > 0 the loss adds ``emd_weight · emd_approx(pred[:, a], gt[:, b])`` for
``emd_points`` random indices ``a`` and ``b`` per step (torch's global generator, so resume
reproduces them; relative tolerance 0.05 of the auction). With ``encoder_points`` k > 0 the encoder
reads k random points of each cloud (one subset per step, the same generator) and the losses compare
the decoded cloud with the whole one.

Training set: the ``train_split`` models, plus every model of ``categories`` under
``extra_train_root`` when it is set (:mod:`.config`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset

from lmnet.data.dataset import ShapeNetDataset

from lmnet.losses.chamfer import chamfer_distance
from lmnet.losses.emd import emd_approx
from lmnet.methods.autoencoder import model as network
from lmnet.methods.autoencoder.config import CONFIG
from lmnet.train.param_groups import weight_decay_groups
from lmnet.train.loop import Trainer


#: auction tolerance of the EMD term: its value is within 5 % of the exact EMD of the two subsets
EMD_REL_EPS = 0.05


class AutoencoderTrainer(Trainer):
    spec = CONFIG
    uses_images = False
    train_columns = ("train_loss",)

    def build_model(self) -> nn.Module:
        return network.new_model(self.config)

    def model_config(self) -> dict:
        return network.model_config(self.config)

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        train, val = super().build_datasets()
        cfg = self.config
        if cfg["extra_train_root"] is None:
            return train, val
        extra = ShapeNetDataset(cfg["extra_train_root"], split=None, categories=cfg["categories"],
                                n_points=cfg["n_points"], load_images=False, skip_bad=cfg["skip_bad"], seed=cfg["seed"])
        return ConcatDataset([train, extra]), val

    def param_groups(self, config: dict) -> list[dict]:
        wd = config["weight_decay"]
        return weight_decay_groups(self.model, lambda layer: wd if isinstance(layer, (nn.Conv1d, nn.Linear)) else 0.0)

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        points = self.to_device(batch["points"])
        n_seen = self.config["encoder_points"]
        seen = (points[:, torch.randperm(points.shape[1])[:n_seen].to(points.device)]
                if 0 < n_seen < points.shape[1] else points)
        with self.autocast():
            pred = self.net(seen)
        pred = pred.float()
        loss = chamfer_distance(pred, points, weights=tuple(self.config["chamfer_weights"]))
        if self.config["emd_weight"] > 0:
            k = self.config["emd_points"]
            a = torch.randperm(pred.shape[1])[:k].to(pred.device)
            b = torch.randperm(points.shape[1])[:k].to(points.device)
            loss = loss + self.config["emd_weight"] * emd_approx(pred[:, a], points[:, b], rel_eps=EMD_REL_EPS)
        return {"loss": loss}

    def validation_sums(self, batch: dict) -> dict[str, float]:
        points = self.to_device(batch["points"])
        with self.autocast():
            pred = self.model(points)
        cd = chamfer_distance(pred.float(), points)  # symmetric, Euclidean, mean over the batch
        return {"val_chamfer_x100": 100.0 * float(cd) * points.shape[0]}

