"""Training the image encoder against a frozen autoencoder (Variant I and II; docs/models.md,
docs/training.md#image-runs-latent-losses).

The autoencoder comes from ``ae_run`` (run folder or ``.pt``; ``ae_which`` best/last). Its encoder
gives the latent targets ``z_pc = AE.encode(gt_points)`` under ``no_grad`` in eval mode; a copy of
its decoder becomes the frozen decoder of the :class:`ImageToPointCloud` being trained, so image
runs are self-contained. Only the image encoder (+ the log σ² head) trains, with Adam and the
official L2 weight decay (1e-5 conv weights, 1e-3 FC weights; see :mod:`lmnet.methods.image.config`).

Variant II option (not in the official code, off by default): with ``logvar_head_epochs = n > 0``
the last ``n`` of ``epochs`` train the log σ² head **alone**. At the first of them the weights of
``best.pt`` are loaded (so the frozen trunk and μ head are the best-by-validation ones), the image
encoder is put in eval mode (its BatchNorm uses running statistics, as at inference) and its
features are computed under ``no_grad``; only the head moves, at the constant learning rate
``logvar_head_lr`` (``None`` = ``lr``; any ``lr_schedule`` is suspended) with L2
``weight_decay_logvar`` on its weights (``None`` = ``weight_decay_fc``). Its loss is the joint one
with the latent L2 of the sampled ``z`` replaced by its expectation over ε,
``mean((μ − z_pc)² + σ²)`` (μ is frozen: the same expected gradient without sampling noise), plus
``lambda_div``·L_div; ``train_latent_loss`` reports that expectation in these epochs. Every such
epoch rewrites ``best.pt`` (its μ, hence its validation metrics, are those of the best epoch).
The head's Adam moments restart at the first head epoch: the second moments of the joint phase
(large, noisy sampled-loss gradients; β2 = 0.999) would damp its steps for about 1000 steps. The
head runs in float32 even under ``amp`` (the view-dependent part of log σ² is small).
Without decay the 8192-wide head can make log σ² steep in the features: on chairs at lr 5e-4 it
blew up after ~400 steps (one batch with σ ≫ 1, then σ → 0 for good), at 1e-4 it stayed bounded.
Why the phase: trained jointly for a few hundred steps the head ignores the view although the
features carry it, and the official 1e-3 FC decay keeps it from using it; fitted alone without
decay it does (``studies/results/diversity.md``).

Decoded-Chamfer option (not in the official code, off by default): with ``weight_decoded_chamfer
= w > 0`` the loss adds ``w · Chamfer(decoder(μ), gt)`` (Euclidean, not squared, raw units;
``chamfer_weights``), the frozen decoder passing the gradient to μ. Latent matching alone weighs
every latent entry alike, whatever it changes in the decoded cloud; the term weighs μ's error by
what it does to the shape the model outputs. Measured on the demo (w = 5, ``docs/results.md``): with
the running averages, better training losses but far worse evaluation-mode results (stale BatchNorm
statistics); with ``bn_recalibration_batches`` the same test error as the plain run, so it stays
off. In the log σ² head phase μ is frozen and the term is left out.

BatchNorm option (not in the official code, off by default): with ``bn_recalibration_batches = n
> 0`` the image encoder's running statistics are re-estimated after each joint epoch with the
epoch's final weights on ``n`` training batches (:func:`lmnet.train.batchnorm.recalibrate_batch_norm`):
the running averages that evaluation uses lag the weights, and with the decoded-Chamfer term they
lagged far enough to ruin the evaluation-mode model (``docs/results.md``). The plain run's lag is
small: with or without the option its demo test error is the same.

Training columns: ``train_loss`` (what is optimised), ``train_latent_loss`` (L1 / L2 to ``z_pc``;
for Variant II the L2 of the sampled ``z``), ``train_div_loss`` (Variant II ``L_div``, else 0) and,
with the option on, ``train_decoded_chamfer`` (the unweighted Chamfer).
Validation: ``val_latent_loss`` (same kind as training, on μ, no sampling) and
``val_chamfer_x100`` (decoded μ vs ground truth, symmetric Euclidean Chamfer ×100).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from lmnet.data.augment import tint_objects
from lmnet.losses.chamfer import chamfer_distance
from lmnet.losses.latent import diversity_loss, latent_loss
from lmnet.methods.image import model as network
from lmnet.methods.image.config import CONFIG
from lmnet.models.image_to_pointcloud import ImageToPointCloud, reparameterize
from lmnet.runs.folder import checkpoint_path, load_checkpoint
from lmnet.runs.latent_ood import LATENT_OOD_FILE, MAX_REFERENCE, write_latent_ood
from lmnet.train.loop import Trainer
from lmnet.train.param_groups import conv_fc_weight_decay_groups
from lmnet.train.teacher import load_autoencoder


class _ImageLatents(nn.Module):
    """What DDP wraps: images → ``(mu,)`` or ``(mu, logvar)`` (DDP must see the forward that
    produces the gradients; the frozen decoder is not part of it)."""

    def __init__(self, model: ImageToPointCloud):
        super().__init__()
        self.model = model
        self.head_only = False  # True: trunk + μ head under no_grad, only the log σ² head gets gradients

    def forward(self, images: torch.Tensor):
        if self.head_only:
            with torch.no_grad():
                features = self.model.encoder.features(images)
                mu = self.model.encoder.fc(features)
            with torch.autocast(device_type=images.device.type, enabled=False):  # the head in float32
                return mu, self.model.logvar_head(features.float())
        mu, logvar = self.model.encode_image(images)
        return (mu,) if logvar is None else (mu, logvar)


class ImageTrainer(Trainer):
    spec = CONFIG
    uses_images = True

    @property
    def train_columns(self) -> tuple[str, ...]:
        extra = ("train_decoded_chamfer",) if self._decoded_chamfer_on() else ()
        return ("train_loss", "train_latent_loss", "train_div_loss", *extra)

    def _decoded_chamfer_on(self) -> bool:
        return float(self.config["weight_decoded_chamfer"]) > 0

    def build_model(self) -> nn.Module:
        cfg = self.config
        ae = load_autoencoder(cfg["ae_run"], cfg["ae_which"], "ae_run")
        self.teacher = ae.to(self.device).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        return network.new_model(cfg, copy.deepcopy(ae.decoder))

    def model_config(self) -> dict:
        return network.model_config(self.config)

    def trainable_module(self) -> nn.Module:
        self.latents = _ImageLatents(self.model)
        return self.latents

    def param_groups(self, config: dict) -> list[dict]:
        wd = config.get("weight_decay_logvar")
        overrides = {self.model.logvar_head: wd} if wd is not None and self.model.logvar_head is not None else None
        return conv_fc_weight_decay_groups(self.model, config, overrides)

    # -- the optional log σ² head phase (Variant II) ---------------------------------------------
    def _first_head_epoch(self) -> int | None:
        n = self.config["logvar_head_epochs"]
        return self.config["epochs"] - n if n > 0 else None

    def _head_only(self, epoch: int) -> bool:
        first = self._first_head_epoch()
        return first is not None and epoch >= first

    def ddp_find_unused_parameters(self) -> bool:
        return self._first_head_epoch() is not None

    def start_epoch(self, epoch: int) -> None:
        self.net.train()
        self.latents.head_only = self._head_only(epoch)
        if not self.latents.head_only:
            return
        if epoch == self._first_head_epoch():
            best = checkpoint_path(self.run_dir, "best")
            from_best = self.val_set is not None and best.is_file()
            if from_best:
                self.model.load_state_dict(load_checkpoint(best)["model"])
            for p in self.model.logvar_head.parameters():  # a new problem: fresh Adam moments
                self.optimizer.state.pop(p, None)
            self.log(f"epochs {epoch + 1}..{self.config['epochs']}: log σ² head only, on the frozen trunk of "
                     + (f"best.pt (epoch {self.best_epoch})" if from_best else "the last epoch"))
        self.model.encoder.eval()
        head_lr = self.config["logvar_head_lr"]
        for group in self.optimizer.param_groups:  # constant: an lr_schedule is suspended in the phase
            group["lr"] = float(self.config["lr"] if head_lr is None else head_lr)

    def counts_as_best(self, epoch: int, value: float) -> bool:
        # In the head phase μ is frozen at the best epoch's: the (μ-only) validation metrics are the
        # best ones, and best.pt must carry the fitted head.
        if self._head_only(epoch) and self.val_set is not None and self.best_metric_name != "train_loss":
            return True
        return super().counts_as_best(epoch, value)

    def batch_norm_forward(self, epoch: int):
        """The image encoder and its forward, for re-estimating its BatchNorm statistics after a joint
        epoch (``bn_recalibration_batches`` > 0; module docstring). The frozen decoder keeps the
        autoencoder's statistics; nothing in the log σ² head phase, whose trunk is frozen in eval
        mode with the best epoch's statistics."""
        if self._head_only(epoch):
            return None

        def forward(batch):
            with self.autocast():
                self.model.encode_image(self.to_images(self._jittered(batch)))
        return self.model.encoder, forward

    def _latent_kind(self) -> str:
        return "l1" if self.config["variant"] == "l1" else "l2"

    def _jittered(self, batch: dict) -> torch.Tensor:
        """The batch's images, their objects recoloured when ``colour_jitter`` > 0 (gains from torch's
        global generator, so a resumed run draws the same ones)."""
        s = float(self.config["colour_jitter"])
        if s <= 0:
            return batch["image"]
        gains = torch.exp((torch.rand(batch["image"].shape[0], 3) * 2.0 - 1.0) * s)
        return tint_objects(batch["image"], batch["mask"], float(self.config["background"]), gains)

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        cfg = self.config
        images, points = self.to_images(self._jittered(batch)), self.to_device(batch["points"])
        with torch.no_grad():
            target = self.teacher.encode(points)
        with self.autocast():
            out = self.net(images)
        mu = out[0].float()
        if cfg["variant"] == "probabilistic":
            logvar = out[1].float()
            if self.latents.head_only:  # E_ε[(μ + σε − z_pc)²], see the module docstring
                lat = ((mu - target).pow(2) + logvar.exp()).mean()
            else:
                lat = latent_loss(reparameterize(mu, logvar), target, "l2")
            azimuth = torch.deg2rad(self.to_device(batch["azimuth"]).float())
            div = diversity_loss(logvar, azimuth, alpha=cfg["alpha"], theta_rad=math.radians(cfg["theta_deg"]))
            out = {"loss": lat + cfg["lambda_div"] * div, "latent_loss": lat, "div_loss": div}
        else:
            lat = latent_loss(mu, target, cfg["variant"])
            out = {"loss": lat, "latent_loss": lat, "div_loss": torch.zeros((), device=mu.device)}
        if self._decoded_chamfer_on() and not self.latents.head_only:
            with self.autocast():
                pred = self.model.decoder(mu)
            cd = chamfer_distance(pred.float(), points.float(), weights=cfg["chamfer_weights"])
            out["loss"] = out["loss"] + float(cfg["weight_decoded_chamfer"]) * cd
            out["decoded_chamfer"] = cd
        return out

    def validation_sums(self, batch: dict) -> dict[str, float]:
        images, points = self.to_images(batch["image"]), self.to_device(batch["points"])
        target = self.teacher.encode(points)
        with self.autocast():
            mu, _ = self.model.encode_image(images)
            pred = self.model.decoder(mu)
        b = points.shape[0]
        lat = latent_loss(mu.float(), target, self._latent_kind())
        cd = chamfer_distance(pred.float(), points)
        return {"val_latent_loss": float(lat) * b, "val_chamfer_x100": 100.0 * float(cd) * b}

    # -- what inference compares a photo's latent with (lmnet.runs.latent_ood) -------------------

    def finish(self) -> None:
        """Write ``latent_ood.npz``: the best checkpoint's μ of up to ``MAX_REFERENCE`` training
        images and the validation images' distances to them. Skipped without a validation set."""
        best = checkpoint_path(self.run_dir, "best")
        if self.val_set is None or len(self.val_set) == 0 or not best.is_file():
            self.log("no validation set: latent_ood.npz not written (lmnet infer skips the latent check)")
            return
        model = copy.deepcopy(self.model)
        model.load_state_dict(load_checkpoint(best)["model"])
        model.eval()
        reference = self._latents(model, self.train_set, MAX_REFERENCE)
        write_latent_ood(self.run_dir, reference, self._latents(model, self.val_set, len(self.val_set)))

    def finish_done(self) -> bool:
        """``latent_ood.npz`` exists and was written after ``best.pt`` (:meth:`finish` writes it
        atomically from that checkpoint)."""
        ood, best = self.run_dir / LATENT_OOD_FILE, checkpoint_path(self.run_dir, "best")
        return ood.is_file() and best.is_file() and ood.stat().st_mtime_ns >= best.stat().st_mtime_ns

    @torch.no_grad()
    def _latents(self, model: ImageToPointCloud, dataset, limit: int):
        """μ ``(n, D)`` (NumPy float32) of up to ``limit`` items of ``dataset``, evenly spread."""
        n = min(limit, len(dataset))
        picked = torch.utils.data.Subset(dataset, torch.linspace(0, len(dataset) - 1, n).round().long().tolist())
        loader = torch.utils.data.DataLoader(picked, batch_size=self.config["batch_size"], shuffle=False)
        return torch.cat([model.encode_image(self.to_images(b["image"]))[0].float().cpu() for b in loader]).numpy()
