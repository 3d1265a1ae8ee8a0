"""Training convmesh's textured-mesh GAN (``lmnet train meshgan``).

Each batch of pseudo-GT items (``texture`` (B, 3, R, R), ``texture_alpha`` (B, 1, R, R), ``mesh``
(B, 3, 32, 32), ``class_id`` (B, K)) is one step, alternating as the original does: step ``i``
(counted over the whole run from 0) is a generator step when ``i mod (1 + d_steps) == 0``, a
discriminator step otherwise. ``z`` (B, 64) ~ N(0, I) is drawn anew for every step.

- **generator step**: ``fake = [G(z, c).texture · α, α]`` with the batch's α (the real texture's
  visibility), ``L_G = hinge_g(D(fake, G(z, c).mesh, c)) + mesh_regularization · L_flat`` where
  ``L_flat`` is :func:`lmnet.losses.flatness.flatness_loss` of the generated meshes (the template
  deformed symmetrically by the displacement maps); one Adam step of the generator only (the
  discriminators' parameters take no gradient), then the EMA generator moves towards it by
  :func:`.model.ema_alpha` of the epoch;
- **discriminator step**: the generator (train mode, no gradient) makes ``fake``; real is
  ``[texture, α]`` with the real mesh; fake and real go through the discriminators as one batch of
  2B; ``L_D = L_fake + L_real`` (:mod:`.losses`, discriminator weights
  :func:`.losses.discriminator_weights`); one Adam step of the discriminators only.

One Adam holds both: group 0 the generator (``lr``), group 1 the discriminators (``lr_d``), β from
``beta1``/``beta2`` (0, 0.9); a parameter without a gradient is not stepped, so the two groups
behave as the original's two optimisers. History columns: ``train_loss`` (``L_G``), ``train_g``
(its hinge part), ``train_flat``, each a mean over the epoch's generator steps; ``train_d_fake``,
``train_d_real`` over its discriminator steps.

There is no validation set: every ``val_every`` epochs (and at the last) the trainer measures the
Full FID of its EMA generator on the training images (:class:`.fid.FidMonitor`, on rank 0; column
``fid``) and ``best.pt`` is the epoch of the lowest FID. With ``fid_features="none"`` it measures
nothing and ``best.pt`` is the latest epoch, like ``last.pt`` without the optimiser.

Under ``torchrun`` each process trains on its share of the batches with its own noise; after each
backward pass the gradients of the stepped networks are averaged over the processes (what DDP does,
done by hand because a GAN step uses only one of its two networks), so every process holds the same
weights; BatchNorm statistics are rank 0's after each epoch, as in the other methods.
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as torch_dist
from torch import nn

from lmnet.errors import ConfigError
from lmnet.losses.flatness import flatness_loss
from lmnet.methods.meshgan import model as ganmodel
from lmnet.methods.meshgan.config import CONFIG
from lmnet.methods.meshgan.data import build_datasets
from lmnet.methods.meshgan.fid import FidMonitor
from lmnet.methods.meshgan.losses import discriminator_weights, hinge_d_loss, hinge_g_loss
from lmnet.methods.meshgan.network import LATENT_DIM
from lmnet.train.loop import Trainer
from lmnet.train.step import optimizer_step

__all__ = ["MeshGANTrainer", "frozen"]


@contextlib.contextmanager
def frozen(module: nn.Module):
    """Within the block ``module``'s parameters record no gradient (restored after)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


class MeshGANTrainer(Trainer):
    spec = CONFIG
    uses_images = False
    train_columns = ("train_loss", "train_g", "train_flat", "train_d_fake", "train_d_real")

    def __init__(self, config: dict, **datasets):
        super().__init__(config, **datasets)
        if self.val_set is not None:
            raise ConfigError("meshgan has no validation set: pass train_set only")
        self.iteration, self.epoch = 0, 0
        self.fid_monitor = None
        if self.measures_itself and self.dist.is_main:  # a missing weights file is refused now, not after an epoch
            features = self.config["fid_features"]
            self.fid_monitor = FidMonitor(self.train_set, images=self.config["fid_images"], seed=self.config["seed"],
                                          inception_weights=None if features == "proxy" else features,
                                          device=self.device)
            self.log(f"FID every {self.config['val_every']} epochs on {self.fid_monitor.n} images, "
                     f"features {self.fid_monitor.features}; best.pt = the lowest")

    @property
    def measures_itself(self) -> bool:
        return self.config["fid_features"] != "none"

    def measure(self) -> dict[str, float]:
        """The Full FID of the EMA generator (:class:`.fid.FidMonitor`)."""
        return {"fid": self.fid_monitor.score(self.model)}

    def build_datasets(self):
        return build_datasets(self.config)

    def batch_size_of(self, batch: dict) -> int:
        return int(batch["texture"].shape[0])

    def _num_classes(self):
        ds = self.train_set
        while isinstance(ds, torch.utils.data.Subset):
            ds = ds.dataset
        return ds.num_classes

    def build_model(self) -> nn.Module:
        return ganmodel.build_model(self.model_config())

    def model_config(self) -> dict:
        return ganmodel.model_config(self.config, self._num_classes())

    def param_groups(self, config: dict) -> list[dict]:
        return [{"params": list(self.model.generator.parameters()), "weight_decay": 0.0, "lr": config["lr"]},
                {"params": list(self.model.discriminator.parameters()), "weight_decay": 0.0, "lr": config["lr_d"]}]

    def _steps_per_epoch(self) -> int:
        """Batches per epoch and process (the loader drops a last partial batch when a full one exists)."""
        n, bs = len(self.train_set), self.config["batch_size"]
        if self.dist.enabled:
            n //= self.dist.world_size  # DistributedSampler(drop_last=True)
        return n // bs if n >= bs else 1

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        self.optimizer.param_groups[0]["lr"] = self.config["lr"]
        self.optimizer.param_groups[1]["lr"] = self.config["lr_d"]
        self.epoch, self.iteration = epoch, epoch * self._steps_per_epoch()

    def counts_as_best(self, epoch: int, value: float) -> bool:
        if self.best_metric_name == "fid":
            return value < self.best_metric
        return True   # no FID: best.pt follows the latest epoch (module docstring)

    def _generator_step(self) -> bool:
        return self.iteration % (1 + self.config["d_steps"]) == 0

    def _inputs(self, batch: dict):
        tex, alpha, mesh = (self.to_device(batch[k]) for k in ("texture", "texture_alpha", "mesh"))
        c = self.to_device(batch["class_id"]) if self.config["conditional"] != "none" else None
        z = torch.randn(tex.shape[0], LATENT_DIM, device=self.device)
        return tex, alpha, mesh, c, z

    def _weights(self):
        mc = self.model_config()
        return discriminator_weights(mc["num_discriminators"], mc["texture_resolution"])

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """The losses of this step's phase (module docstring); ``"loss"`` is the one to optimise."""
        tex, alpha, mesh, c, z = self._inputs(batch)
        gen, disc, weights = self.model.generator, self.model.discriminator, self._weights()
        if self._generator_step():
            with frozen(disc), self.autocast():
                fake_tex, fake_mesh = gen(z, c)
                scores, masks = disc(torch.cat((fake_tex * alpha, alpha), 1), fake_mesh, c)
                g = hinge_g_loss(scores, masks, weights)
            faces, ff = (self.model.template.tensor(k, self.device) for k in ("faces", "ff"))
            flat = flatness_loss(self.model.template.vertex_positions(fake_mesh.float(), True), faces, ff)
            return {"loss": g + self.config["mesh_regularization"] * flat, "g": g, "flat": flat}
        with self.autocast():
            with torch.no_grad():
                fake_tex, fake_mesh = gen(z, c)
                x = torch.cat((torch.cat((fake_tex * alpha, alpha), 1), torch.cat((tex, alpha), 1)))
                meshes = torch.cat((fake_mesh, mesh))
                cc = None if c is None else torch.cat((c, c))
            scores, masks = disc(x, meshes, cc)
        b = tex.shape[0]
        d_fake = hinge_d_loss([s[:b] for s in scores], [m[:b] for m in masks], False, weights)
        d_real = hinge_d_loss([s[b:] for s in scores], [m[b:] for m in masks], True, weights)
        return {"loss": d_fake + d_real, "d_fake": d_fake, "d_real": d_real}

    def train_step(self, batch: dict, on_non_finite) -> dict[str, torch.Tensor]:
        """One generator or discriminator step (module docstring); records the generator's losses
        under ``loss``, ``g``, ``flat`` and the discriminators' under ``d_fake``, ``d_real``."""
        generator_step = self._generator_step()
        losses = self.compute_losses(batch)
        optimizer_step(losses["loss"], self.optimizer, self.scaler, grad_clip=self.config["grad_clip"],
                       on_non_finite=on_non_finite, after_backward=self._average_gradients)
        self.iteration += 1
        if not generator_step:
            return {k: v for k, v in losses.items() if k != "loss"}
        ganmodel.update_ema(self.model.generator_running_avg, self.model.generator,
                            ganmodel.ema_alpha(self.epoch, self.config["ema"]))
        return losses

    def _average_gradients(self) -> None:
        """Under torchrun: each gradient becomes its mean over the processes (one all-reduce of them
        all). Every process computed gradients for the same parameters (the same phase)."""
        if not self.dist.enabled:
            return
        grads = [p.grad for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch_dist.all_reduce(flat, op=torch_dist.ReduceOp.SUM)
        flat /= self.dist.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def validation_sums(self, batch: dict) -> dict[str, float]:
        raise ConfigError("meshgan has no validation set (its val_metrics are empty)")
