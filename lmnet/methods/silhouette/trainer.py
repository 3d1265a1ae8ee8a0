"""Reconstruction without rendering (docs/training.md#mask-supervised-training): image → point cloud
trained from silhouettes only.

``train_silhouette(config) -> run_dir`` (kind ``"silhouette"``, config :data:`~lmnet.methods.silhouette.config.
DEFAULTS`). The network (:class:`~lmnet.methods.silhouette.model.SilhouetteNetwork`) is the 3D-LMNet
ImageEncoder + a PointDecoder that trains (from scratch, or initialised from the decoder of
``init_ae_run``); it predicts the cloud ``(B, 2048, 3)`` in the **canonical 3D-LMNet frame**.

Supervision, per training item (:class:`~lmnet.methods.silhouette.data.MultiViewDataset`): the input image of one view of a model
and the masks + metadata cameras of ``n_views`` views of the same model — the input view itself
first, then ``n_views − 1`` other views drawn at random (seeded by ``(seed, epoch, item)``). The
cloud is projected into each of them with :func:`lmnet.projection.soft_silhouette` (grid
``silhouette_size``², ``depth_bins`` slices, blur σ annealed geometrically per optimiser step from
``sigma_start`` to ``sigma_end`` voxels) and compared with the mask area-downsampled to
``silhouette_size`` (:func:`~lmnet.projection.mask_to_grid_resolution`):

``silhouette_loss`` = mean over items and views of the per-pixel mean squared difference (L2,
:func:`~lmnet.methods.silhouette.losses.silhouette_l2`);
``mask_distance_loss`` (:func:`~lmnet.methods.silhouette.losses.mask_distance_loss`) = mean distance-to-mask (in image widths) of
every point's projection in every view, from the masks' distance transforms; it pulls stray points
into the silhouettes, which the clamped occupancy of the soft silhouette cannot do (a lone point
outside every mask gets no useful gradient from the L2);
``mask_coverage_loss`` (:func:`~lmnet.methods.silhouette.losses.mask_coverage_loss`) = mean distance from each foreground mask pixel
to the nearest projected point (the other direction of that 2D Chamfer): it spreads points over the
whole silhouette, which the L2 alone fails to do for points piled in saturated voxels;
``loss = weight_silhouette · silhouette_loss + weight_mask_distance · mask_distance_loss +
weight_mask_coverage · mask_coverage_loss + weight_chamfer · Chamfer(pred, gt) [+ weight_student · student_loss]``, where the optional Chamfer
(Euclidean, ``chamfer_weights``) is the only 3D term and is off by default.

Pose modes (``pose``):

- ``"known"``: each view is projected with its metadata camera (azimuth, elevation, distance ratio,
  fov).
- ``"unknown"``: azimuth and elevation of **every** supervising view are unknown; a
  :class:`~lmnet.methods.silhouette.model.PoseNet` sees that view's RGB image (``pose_image_size``²) and proposes
  K = ``n_pose_candidates`` (azimuth, elevation) pairs. The canonical-frame cloud is projected with
  each candidate, the candidate with the lowest silhouette loss wins (min over K; only the winner
  gets the gradient) and a student head regresses the winner (:func:`~lmnet.methods.silhouette.pose_losses.student_loss` = squared distance of
  the azimuth unit vectors + ((Δelevation) / 30°)², detached target). Distance ratio and fov stay
  known (from the metadata): they fix the scale of the cloud, which would otherwise trade off with
  the camera distance. Because the cloud frame is canonical and the poses are absolute, the
  student's angles are directly comparable with ``rendering_metadata.txt``; whether the learned
  frame coincides with the dataset frame is up to the data (a frame rotated about the vertical is
  an equally good solution), so :func:`~lmnet.methods.silhouette.pose_losses.pose_errors` also reports the error after the best global
  azimuth offset.

BatchNorm statistics: after each epoch's optimiser steps, and so before validation and the
checkpoints, the running statistics of every BatchNorm layer (image encoder, decoder, pose network)
are re-estimated with the epoch's final weights on ``bn_recalibration_batches`` training batches
(:func:`lmnet.train.batchnorm.recalibrate_batch_norm`). Training normalises with batch statistics;
the running averages that evaluation uses lag the weights, and in unknown-pose runs that lag made
the evaluation-mode clouds several times too large while the training-mode ones were right (the
"collapse" of studies/results/silhouette.md, 2026-12-06).

Validation columns: ``val_silhouette_loss`` (σ = ``sigma_end``; known cameras, or the winning
candidate), ``val_iou`` (thresholded 0.5, same projections), ``val_chamfer_x100`` (symmetric
Euclidean Chamfer ×100 vs the GT cloud, a monitor only: never optimised, and ``best_metric`` defaults
to ``val_silhouette_loss`` so model selection is mask-only too) and, with ``pose="unknown"``,
``val_azimuth_err_deg`` / ``val_elevation_err_deg`` (student vs metadata, mean absolute wrapped
error in degrees over the supervising views).

:func:`lmnet.registry.load_model` loads a silhouette run as an :class:`ImageToPointCloud`
(``forward(images) -> (B, 2048, 3)``), so ``lmnet eval`` / ``lmnet infer`` use it unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from lmnet import projection
from lmnet.camera import wrap_degrees
from lmnet.losses.chamfer import chamfer_distance
from lmnet.methods.silhouette import model as network
from lmnet.methods.silhouette.model import SilhouetteNetwork
from lmnet.methods.silhouette.config import CONFIG
from lmnet.methods.silhouette.data import build_multiview_dataset
from lmnet.methods.silhouette.losses import (mask_coverage_loss, mask_distance_loss, project_views, silhouette_l2,
                                             winning_candidate_silhouettes)
from lmnet.methods.silhouette.pose_losses import student_loss
from lmnet.train.data import unwrap_subset
from lmnet.train.loop import Trainer
from lmnet.train.param_groups import conv_fc_weight_decay_groups
from lmnet.train.teacher import load_autoencoder


# ------------------------------------------------------------------------------------------ trainer
class _Forward(nn.Module):
    """What DDP wraps: ``(images, pose_images or None)`` → ``(points, candidates, student)``."""

    def __init__(self, model: SilhouetteNetwork):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, pose_images: torch.Tensor | None = None):
        points = self.model(images)
        if pose_images is None or self.model.pose_net is None:
            return points, None, None
        cand, student = self.model.pose_net(pose_images)
        return points, cand, student


class SilhouetteTrainer(Trainer):
    spec = CONFIG
    uses_images = True

    def __init__(self, config: dict, *, train_set: Dataset | None = None, val_set: Dataset | None = None):
        cfg = config
        self.unknown = cfg["pose"] == "unknown"
        self.train_columns = ("train_loss", "train_silhouette_loss", "train_mask_distance_loss",
                              "train_mask_coverage_loss", "train_chamfer_loss", "train_sigma") + (
            ("train_student_loss",) if self.unknown else ())
        if train_set is None:
            train_set = build_multiview_dataset(cfg, "train")
            val_set = build_multiview_dataset(cfg, "val")
        super().__init__(cfg, train_set=train_set, val_set=val_set)
        if not self.unknown and self.val_set is not None:
            self.val_columns = [c for c in self.val_columns if "_err_deg" not in c]
            self.columns = ["epoch", *self.train_columns, *self.val_columns, "lr", "epoch_time_s"]
        per_process = len(self.train_set) // max(1, self.dist.world_size)
        bs = cfg["batch_size"]
        self.steps_per_epoch = max(1, per_process // bs if per_process >= bs else 1)
        self._step_epoch, self._step_in_epoch = -1, 0

    # -- model ------------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        cfg = self.config
        ae = load_autoencoder(cfg["init_ae_run"], cfg["init_ae_which"], "init_ae_run") if cfg["init_ae_run"] else None
        return network.new_model(cfg, None if ae is None else ae.decoder)

    def model_config(self) -> dict:
        return network.model_config(self.config)

    def trainable_module(self) -> nn.Module:
        return _Forward(self.model)

    def param_groups(self, config: dict) -> list[dict]:
        return conv_fc_weight_decay_groups(self.model, config)

    # -- σ schedule -------------------------------------------------------------------------------
    def current_sigma(self) -> float:
        """σ of this optimiser step (advances the per-epoch step counter)."""
        epoch = getattr(unwrap_subset(self.train_set), "epoch", 0)
        if epoch != self._step_epoch:
            self._step_epoch, self._step_in_epoch = epoch, 0
        step = epoch * self.steps_per_epoch + min(self._step_in_epoch, self.steps_per_epoch - 1)
        self._step_in_epoch += 1
        cfg = self.config
        return projection.annealed_sigma(step, cfg["epochs"] * self.steps_per_epoch, cfg["sigma_start"], cfg["sigma_end"])

    # -- BatchNorm statistics (re-estimated after each epoch: the module docstring) -----------------
    def batch_norm_forward(self, epoch: int):
        def forward(batch):
            images = self.to_images(batch["image"]).float()
            with self.autocast():
                self.model(images)
                if self.unknown:
                    self.model.pose_net(self._pose_images(batch))
        return self.model, forward

    # -- losses -----------------------------------------------------------------------------------
    def _cameras(self, batch: dict):
        return tuple(self.to_device(batch[f"sup_{k}"]).float() for k in ("azimuth", "elevation", "distance_ratio", "fov"))

    def _loss_cameras(self, batch: dict, win):
        """The cameras the mask losses project with: the metadata cameras, with the winning
        candidate's (azimuth, elevation) ``win (B, V, 2)`` in place of the metadata angles when given."""
        az, el, dr, fov = self._cameras(batch)
        if win is not None:
            az, el = win[..., 0], win[..., 1]
        return az, el, dr, fov

    def _silhouettes(self, points, batch, cand, sigma):
        """→ ``(per-view loss (B, V), winning silhouettes (B, V, S, S), winner angles (B, V, 2) or None)``."""
        cfg = self.config
        masks = self.to_device(batch["sup_mask"]).float()
        az, el, dr, fov = self._cameras(batch)
        B, V = az.shape
        kw = dict(sigma=sigma, size=cfg["silhouette_size"], depth_bins=cfg["depth_bins"])
        if cand is None:
            sil = project_views(points, az, el, dr, fov, **kw)
            per = silhouette_l2(sil, masks)
            return per, sil, None
        best, win_sil, win, _ = winning_candidate_silhouettes(points, masks, cand.view(B, V, -1, 2), dr, fov, **kw)
        return best, win_sil, win

    def _pose_images(self, batch):
        if not self.unknown:
            return None
        return self.to_device(batch["sup_image"]).float().flatten(0, 1)

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        cfg = self.config
        sigma = self.current_sigma()
        images = self.to_images(batch["image"]).float()
        with self.autocast():
            points, cand, student = self.net(images, self._pose_images(batch))
        points = points.float()
        per, _, win = self._silhouettes(points, batch, None if cand is None else cand.float(), sigma)
        sil_loss = per.mean()
        zero = torch.zeros((), device=points.device)
        loss = cfg["weight_silhouette"] * sil_loss
        md = mc = zero
        if cfg["weight_mask_distance"] > 0:
            md = mask_distance_loss(points, self.to_device(batch["sup_dist"]).float(), *self._loss_cameras(batch, win))
            loss = loss + cfg["weight_mask_distance"] * md
        if cfg["weight_mask_coverage"] > 0:
            mc = mask_coverage_loss(points, self.to_device(batch["sup_mask"]).float(), *self._loss_cameras(batch, win))
            loss = loss + cfg["weight_mask_coverage"] * mc
        cd = zero
        if cfg["weight_chamfer"] > 0:
            cd = chamfer_distance(points, self.to_device(batch["points"]).float(), weights=cfg["chamfer_weights"])
            loss = loss + cfg["weight_chamfer"] * cd
        out = {"silhouette_loss": sil_loss, "mask_distance_loss": md, "mask_coverage_loss": mc, "chamfer_loss": cd, "sigma": torch.tensor(sigma)}
        if self.unknown:
            st = student_loss(student.float(), win.reshape(-1, 2))
            loss = loss + cfg["weight_student"] * st
            out["student_loss"] = st
        out["loss"] = loss
        return out

    def validation_sums(self, batch: dict) -> dict[str, float]:
        cfg = self.config
        images = self.to_images(batch["image"]).float()
        gt = self.to_device(batch["points"]).float()
        with self.autocast():
            points = self.model(images)
            cand = student = None
            if self.unknown:
                cand, student = self.model.pose_net(self._pose_images(batch))
        points = points.float()
        per, sil, _ = self._silhouettes(points, batch, None if cand is None else cand.float(), cfg["sigma_end"])
        masks = self.to_device(batch["sup_mask"]).float()
        B, V = per.shape
        iou = projection.silhouette_iou(sil.flatten(0, 1), masks.flatten(0, 1)).view(B, V).mean(1)
        out = {"val_silhouette_loss": float(per.mean(1).sum()), "val_iou": float(iou.sum()),
               "val_chamfer_x100": 100.0 * float(chamfer_distance(points, gt, reduction="sum"))}
        if self.unknown:
            az, el = self._cameras(batch)[:2]
            st = student.float().view(B, V, 2)
            out["val_azimuth_err_deg"] = float(wrap_degrees(st[..., 0] - az).abs().mean(1).sum())
            out["val_elevation_err_deg"] = float((st[..., 1] - el).abs().mean(1).sum())
        return out

