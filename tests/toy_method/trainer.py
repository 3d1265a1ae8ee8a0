"""The toy method's trainer: Chamfer to the ground-truth cloud, through the generic loop."""

import torch
from torch import nn

from lmnet.losses.chamfer import chamfer_distance
from lmnet.train.loop import Trainer
from lmnet.train.param_groups import weight_decay_groups
from . import model
from .config import CONFIG


class ToyTrainer(Trainer):
    spec = CONFIG
    uses_images = False

    def build_model(self) -> nn.Module:
        return model.build_model(model.model_config(self.config))

    def model_config(self) -> dict:
        return model.model_config(self.config)

    def param_groups(self, config: dict) -> list[dict]:
        return weight_decay_groups(self.model, lambda layer: 0.0)

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        points = self.to_device(batch["points"])
        return {"loss": chamfer_distance(self.net(points), points)}

    def validation_sums(self, batch: dict) -> dict[str, float]:
        points = self.to_device(batch["points"])
        return {"val_chamfer_x100": 100.0 * float(chamfer_distance(self.model(points), points)) * points.shape[0]}
