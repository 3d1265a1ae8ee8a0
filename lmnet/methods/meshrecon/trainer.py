"""Training convmesh's mesh estimation (``lmnet train meshrecon``).

Per batch of CMR items (``image`` (B, 3, S, S) RGB·mask in [−1, 1], ``mask`` (B, 1, S, S), the
stored pose and the item ``index``):

1. the network sees ``[image, mask]`` and predicts a texture and a displacement map; the deformed
   template is posed with the item's SfM pose plus its learned offsets and rendered at
   ``render_size`` (:meth:`.model.MeshReconstruction.forward`);
2. ``recon = MSE`` (or L1, ``loss``) between ``[rgb, soft alpha]`` and ``[image, mask]`` over the
   4 channels, means over every pixel and channel;
3. ``flat`` = :func:`lmnet.losses.flatness.flatness_loss` of the object-space mesh;
4. ``loss = recon + mesh_regularization · w · flat`` where ``w = max(flat_warmup − 0.1·step, 1)``
   and ``step`` counts optimiser steps from 0 over the whole run (convmesh's warm-up);
5. one Adam step for the network (``lr``, halved every ``lr_decay_every`` epochs) and the pose
   offsets (``lr_dataset``, constant).

Validation (``val_recon_loss``, ``val_flat_loss``, ``val_iou``): the same losses under the stored
pose plus the *mean* offset (the images are not in the offset table), and the mean over images of
the IoU of ``alpha > 0.5`` with ``mask > 0.5`` (convmesh's ``mean_iou``).
"""

from __future__ import annotations

import torch
from torch import nn

from lmnet.losses.flatness import flatness_loss
from lmnet.methods.meshrecon import model as meshmodel
from lmnet.methods.meshrecon.config import CONFIG
from lmnet.methods.meshrecon.data import base_dataset, build_datasets
from lmnet.train.loop import Trainer

__all__ = ["MeshReconTrainer", "mean_iou", "network_input", "reconstruction_loss"]


def network_input(batch: dict) -> torch.Tensor:
    """``(B, 4, S, S)``: a CMR batch's masked RGB and mask, the network's input."""
    return torch.cat([batch["image"], batch["mask"]], 1)


def mean_iou(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image IoU ``(B,)`` of ``alpha > 0.5`` and ``mask > 0.5`` (both ``(B, 1, H, W)``); an image
    where both are empty counts 1."""
    a, m = alpha > 0.5, mask > 0.5
    inter = (a & m).flatten(1).sum(1).float()
    union = (a | m).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def reconstruction_loss(out: dict, image: torch.Tensor, mask: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Mean over batch, 4 channels and pixels of ``(|·|² or |·|)`` between ``[rgb, alpha]`` and ``[image, mask]``."""
    fake = torch.cat([out["rgb"], out["alpha"]], 1)
    real = torch.cat([image, mask], 1).to(fake.dtype)
    return nn.functional.mse_loss(fake, real) if kind == "mse" else nn.functional.l1_loss(fake, real)


class MeshReconTrainer(Trainer):
    spec = CONFIG
    uses_images = True
    train_columns = ("train_loss", "train_recon", "train_flat", "train_iou")

    def build_datasets(self):
        return build_datasets(self.config)

    def batch_size_of(self, batch: dict) -> int:
        return int(batch["image"].shape[0])

    def _num_images(self) -> int:
        return base_dataset(self.train_set).num_images

    def build_model(self) -> nn.Module:
        return meshmodel.build_model(self.model_config())

    def model_config(self) -> dict:
        return meshmodel.model_config(self.config, self._num_images())

    def param_groups(self, config: dict) -> list[dict]:
        return [{"params": list(self.model.generator.parameters()), "weight_decay": 0.0},
                {"params": list(self.model.dataset_params.parameters()), "weight_decay": 0.0,
                 "lr": config["lr_dataset"]}]

    def _steps_per_epoch(self) -> int:
        n = len(self.train_set) // self.dist.world_size
        bs = self.config["batch_size"]
        return n // bs if n >= bs else 1

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        cfg = self.config
        every = cfg["lr_decay_every"]
        self.optimizer.param_groups[0]["lr"] = cfg["lr"] * 0.5 ** (epoch // every if every else 0)
        self.optimizer.param_groups[1]["lr"] = cfg["lr_dataset"]
        self.step = epoch * self._steps_per_epoch()

    def _targets(self, batch: dict):
        size = self.config["render_size"]
        key = "" if size == self.config["image_size"] else f"_{size}"
        return self.to_device(batch[f"image{key}"]), self.to_device(batch[f"mask{key}"])

    def _forward(self, batch: dict, indices):
        x = self.to_images(network_input(batch))
        pose = [self.to_device(batch[k]) for k in ("scale", "translation", "rotation")]
        with self.autocast():
            return self.net(x, *pose, indices=indices, render_size=self.config["render_size"])

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        cfg = self.config
        out = self._forward(batch, self.to_device(batch["index"]))
        image, mask = self._targets(batch)
        recon = reconstruction_loss(out, image, mask, cfg["loss"])
        faces, ff = (self.model.template.tensor(k, self.device) for k in ("faces", "ff"))
        flat = flatness_loss(out["vertices"], faces, ff)
        weight = cfg["mesh_regularization"] * max(cfg["flat_warmup"] - 0.1 * self.step, 1.0)
        self.step += 1
        with torch.no_grad():
            iou = mean_iou(out["alpha"], mask).mean()
        return {"loss": recon + weight * flat, "recon": recon, "flat": flat, "iou": iou}

    def validation_sums(self, batch: dict) -> dict[str, float]:
        out = self._forward(batch, None)
        image, mask = self._targets(batch)
        b = int(image.shape[0])
        faces, ff = (self.model.template.tensor(k, self.device) for k in ("faces", "ff"))
        return {"val_recon_loss": float(reconstruction_loss(out, image, mask, self.config["loss"])) * b,
                "val_flat_loss": float(flatness_loss(out["vertices"], faces, ff)) * b,
                "val_iou": float(mean_iou(out["alpha"], mask).sum())}
