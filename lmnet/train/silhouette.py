"""Reconstruction without rendering (SPEC §5): image → point cloud trained from silhouettes only.

``train_silhouette(config) -> run_dir`` (kind ``"silhouette"``, config :data:`~lmnet.runs.defaults.
SILHOUETTE_DEFAULTS`). The network (:class:`~lmnet.models.pose.SilhouetteNetwork`) is the 3D-LMNet
ImageEncoder + a PointDecoder that trains (from scratch, or initialised from the decoder of
``init_ae_run``); it predicts the cloud ``(B, 2048, 3)`` in the **canonical 3D-LMNet frame**.

Supervision, per training item (:class:`MultiViewDataset`): the input image of one view of a model
and the masks + metadata cameras of ``n_views`` views of the same model — the input view itself
first, then ``n_views − 1`` other views drawn at random (seeded by ``(seed, epoch, item)``). The
cloud is projected into each of them with :func:`lmnet.projection.soft_silhouette` (grid
``silhouette_size``², ``depth_bins`` slices, blur σ annealed geometrically per optimiser step from
``sigma_start`` to ``sigma_end`` voxels) and compared with the mask area-downsampled to
``silhouette_size`` (:func:`~lmnet.projection.mask_to_grid_resolution`):

``silhouette_loss`` = mean over items and views of the per-pixel mean squared difference (L2);
``mask_distance_loss`` (:func:`mask_distance_loss`) = mean distance-to-mask (in image widths) of
every point's projection in every view, from the masks' distance transforms; it pulls stray points
into the silhouettes, which the clamped occupancy of the soft silhouette cannot do (a lone point
outside every mask gets no useful gradient from the L2);
``mask_coverage_loss`` (:func:`mask_coverage_loss`) = mean distance from each foreground mask pixel
to the nearest projected point (the other direction of that 2D Chamfer): it spreads points over the
whole silhouette, which the L2 alone fails to do for points piled in saturated voxels;
``loss = weight_silhouette · silhouette_loss + weight_mask_distance · mask_distance_loss +
weight_mask_coverage · mask_coverage_loss + weight_chamfer · Chamfer(pred, gt) [+ weight_student · student_loss]``, where the optional Chamfer
(Euclidean, ``chamfer_weights``) is the only 3D term and is off by default.

Pose modes (``pose``):

- ``"known"``: each view is projected with its metadata camera (azimuth, elevation, distance ratio,
  fov).
- ``"unknown"``: azimuth and elevation of **every** supervising view are unknown; a
  :class:`~lmnet.models.pose.PoseNet` sees that view's RGB image (``pose_image_size``²) and proposes
  K = ``n_pose_candidates`` (azimuth, elevation) pairs. The canonical-frame cloud is projected with
  each candidate, the candidate with the lowest silhouette loss wins (min over K; only the winner
  gets the gradient) and a student head regresses the winner (``student_loss`` = squared distance of
  the azimuth unit vectors + ((Δelevation) / 30°)², detached target). Distance ratio and fov stay
  known (from the metadata): they fix the scale of the cloud, which would otherwise trade off with
  the camera distance. Because the cloud frame is canonical and the poses are absolute, the
  student's angles are directly comparable with ``rendering_metadata.txt``; whether the learned
  frame coincides with the dataset frame is up to the data (a frame rotated about the vertical is
  an equally good solution), so :func:`pose_errors` also reports the error after the best global
  azimuth offset.

Validation columns: ``val_silhouette_loss`` (σ = ``sigma_end``; known cameras, or the winning
candidate), ``val_iou`` (thresholded 0.5, same projections), ``val_chamfer_x100`` (symmetric
Euclidean Chamfer ×100 vs the GT cloud, a monitor only: never optimised, and ``best_metric`` defaults
to ``val_silhouette_loss`` so model selection is mask-only too) and, with ``pose="unknown"``,
``val_azimuth_err_deg`` / ``val_elevation_err_deg`` (student vs metadata, mean absolute wrapped
error in degrees over the supervising views).

:func:`lmnet.runs.load_model` loads a silhouette run as an :class:`ImageToPointCloud`
(``forward(images) -> (B, 2048, 3)``), so ``lmnet eval`` / ``lmnet infer`` use it unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, Subset

from lmnet import projection
from lmnet.errors import ConfigError, DataError
from lmnet.models.pose import SilhouetteNetwork, azimuth_unit, wrap_degrees
from lmnet.runs.config import resolve_train_config
from lmnet.train.data import limit_items
from lmnet.train.loop import Trainer, conv_fc_weight_decay_groups

STUDENT_ELEVATION_SCALE = 30.0
INIT_RADIUS = 0.25  # radius of the uniform ball the from-scratch decoder starts from (unit-diagonal frame)  # degrees: Δelevation / 30° is weighted like the azimuth unit vectors


# ------------------------------------------------------------------------------------------ data
class MultiViewDataset(Dataset):
    """Items of ``base`` (a :class:`~lmnet.data.dataset.ShapeNetDataset` with ``views="all"`` and
    images) regrouped per model: the input view's item plus ``n_views`` supervising views.

    ``input_views``: ``"random"`` (one item per model, its view drawn from ``(seed, epoch, index)``),
    ``None`` (every available view of every model) or a list of view indices.
    Extra keys of an item (``V = n_views``; the input view is supervising view 0):

    - ``"sup_mask"`` float32 ``(V, S, S)`` with ``S = mask_size`` (alpha, area-downsampled);
    - ``"sup_dist"`` float32 ``(V, S, S)``: :func:`mask_distance_field` of ``sup_mask``;
    - ``"sup_azimuth"``, ``"sup_elevation"`` (degrees), ``"sup_distance_ratio"``, ``"sup_fov"``
      float32 ``(V,)``; ``"sup_view"`` int64 ``(V,)``;
    - with ``pose_images=True``: ``"sup_image"`` float32 ``(V, 3, P, P)``, ``P = pose_image_size``
      (raw 0–255 RGB, area-downsampled).

    The other ``V − 1`` views are drawn without replacement among the model's other views (with
    replacement if it has fewer), from ``numpy.random.default_rng([seed, epoch, index, 1])``.
    """

    def __init__(self, base, n_views: int = 4, input_views="random", seed: int = 0, mask_size: int = 64,
                 pose_images: bool = False, pose_image_size: int = 64):
        if n_views < 1:
            raise ConfigError(f"n_views must be >= 1, got {n_views}")
        self.base, self.n_views, self.seed = base, int(n_views), int(seed)
        self.mask_size, self.pose_images, self.pose_image_size = int(mask_size), bool(pose_images), int(pose_image_size)
        self.epoch = 0
        by_model: dict[str, dict[int, int]] = {}
        for i in range(len(base)):
            key, view = base.item_key(i)
            by_model.setdefault(key, {})[view] = i
        self.models = sorted(by_model)
        self.views_of = [by_model[k] for k in self.models]  # view -> base index, per model
        if input_views == "random":
            self.items = None
        else:
            wanted = None if input_views is None else {int(v) for v in input_views}
            self.items = [(m, v) for m, vs in enumerate(self.views_of) for v in sorted(vs)
                          if wanted is None or v in wanted]
            if not self.items:
                raise DataError(f"MultiViewDataset: no item has an input view in {sorted(wanted or [])}")
        self.input_views = input_views

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.models) if self.items is None else len(self.items)

    def _rng(self, index: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index, stream])

    def supervising_views(self, index: int) -> list[int]:
        """The ``n_views`` views of item ``index`` at the current epoch, input view first."""
        if self.items is None:
            vs = self.views_of[index]
            avail = sorted(vs)
            m, v_in = index, avail[int(self._rng(index, 0).integers(len(avail)))]
        else:
            m, v_in = self.items[index]
            avail = sorted(self.views_of[m])
        others = [v for v in avail if v != v_in]
        k = self.n_views - 1
        if k == 0:
            return [v_in]
        if not others:
            others = [v_in]
        pick = self._rng(index, 1).choice(len(others), size=k, replace=len(others) < k)
        return [v_in] + [others[int(j)] for j in pick]

    def __getitem__(self, index: int) -> dict:
        index = int(index) % len(self)
        m = index if self.items is None else self.items[index][0]
        views = self.supervising_views(index)
        sub = [self.base[self.views_of[m][v]] for v in views]
        item = dict(sub[0])
        masks = torch.stack([s["mask"] for s in sub])  # (V, 1, 128, 128)
        item["sup_mask"] = projection.mask_to_grid_resolution(masks, self.mask_size)
        item["sup_dist"] = mask_distance_field(item["sup_mask"])
        for name in ("azimuth", "elevation", "distance_ratio", "fov"):
            item[f"sup_{name}"] = torch.stack([s[name] for s in sub])
        item["sup_view"] = torch.tensor(views, dtype=torch.int64)
        if self.pose_images:
            imgs = torch.stack([s["image"] for s in sub])
            item["sup_image"] = F.adaptive_avg_pool2d(imgs, self.pose_image_size)
        return item


def mask_distance_field(masks: torch.Tensor) -> torch.Tensor:
    """``(V, S, S)`` masks → ``(V, S, S)`` Euclidean distance from each pixel centre to the nearest
    pixel with mask > 0.5, in units of the image width (pixels / S); 0 inside the mask. An empty mask
    gives 0 everywhere (no signal rather than an infinite one)."""
    from scipy.ndimage import distance_transform_edt

    out = np.zeros(tuple(masks.shape), np.float32)
    for i, m in enumerate(masks.numpy() > 0.5):
        if m.any():
            out[i] = distance_transform_edt(~m) / m.shape[-1]
    return torch.from_numpy(out)


def build_multiview_dataset(config: dict, which: str) -> Dataset | None:
    """The ``which`` ("train" / "val") :class:`MultiViewDataset` of a resolved silhouette config
    (None for "val" without ``val_split``); ``max_<which>_items`` limits it like the other kinds."""
    from lmnet.data.dataset import ShapeNetDataset

    split = config[f"{which}_split"]
    if which == "val" and split is None:
        return None
    base = ShapeNetDataset(config["data_root"], split=split, categories=config["categories"], views="all",
                           n_points=config["n_points"], load_images=True, image_cache=config["image_cache"],
                           skip_bad=config["skip_bad"], seed=config["seed"], background=config["background"])
    views = config["views"] if which == "train" else config["val_views"]
    ds = MultiViewDataset(base, n_views=config["n_views"], input_views=views, seed=config["seed"],
                          mask_size=config["silhouette_size"], pose_images=config["pose"] == "unknown",
                          pose_image_size=config["pose_image_size"])
    return limit_items(ds, config[f"max_{which}_items"], config["seed"])


def _unwrap(ds):
    while isinstance(ds, Subset):
        ds = ds.dataset
    return ds


# ------------------------------------------------------------------------------------------ losses
def project_views(points: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor,
                  distance_ratio: torch.Tensor, fov: torch.Tensor, *, sigma: float, size: int,
                  depth_bins: int) -> torch.Tensor:
    """Soft silhouettes of each cloud from several cameras.

    ``points (B, N, 3)``; camera tensors ``(B, C)`` (degrees / ratio / degrees) → ``(B, C, size, size)``.
    """
    B, C = azimuth.shape
    pts = points.unsqueeze(1).expand(B, C, *points.shape[1:]).reshape(B * C, *points.shape[1:])
    sil = projection.soft_silhouette(pts, azimuth.reshape(-1), elevation.reshape(-1), distance_ratio.reshape(-1),
                                     fov.reshape(-1), size=size, depth_bins=depth_bins, sigma=sigma)
    return sil.view(B, C, size, size)


def mask_distance_loss(points: torch.Tensor, dist: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor,
                       distance_ratio: torch.Tensor, fov: torch.Tensor) -> torch.Tensor:
    """Mean over items, views and points of the mask distance field ``dist (B, V, S, S)`` (image
    widths, :func:`mask_distance_field`) sampled bilinearly at each point's projection into each view
    (cameras ``(B, V)``): pulls points that project outside a mask towards it (mask-only, the
    "precision" direction of a 2D Chamfer). Points projecting outside the image take the border
    value (no gradient)."""
    from lmnet import camera

    B, V = azimuth.shape
    N = points.shape[1]
    pts = points.unsqueeze(1).expand(B, V, N, 3)
    uv, _ = camera.project_points(pts, azimuth, elevation, distance_ratio, fov,
                                  image_size=camera.R2N2_IMAGE_SIZE, crop_offset=camera.CROP_OFFSET)
    grid = (uv / camera.CROP_SIZE * 2.0 - 1.0).reshape(B * V, 1, N, 2)  # edges of the crop at ±1
    val = F.grid_sample(dist.reshape(B * V, 1, *dist.shape[-2:]), grid, mode="bilinear",
                        padding_mode="border", align_corners=False)
    return val.mean()


def mask_coverage_loss(points: torch.Tensor, masks: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor,
                       distance_ratio: torch.Tensor, fov: torch.Tensor) -> torch.Tensor:
    """Mean over items and views of the mean, over the foreground pixels (mask > 0.5) of
    ``masks (B, V, S, S)``, of the 2D Euclidean distance from the pixel centre to the nearest
    projected point, in image widths (the "coverage" direction of a 2D Chamfer, mask-only). It pulls
    points towards parts of the silhouette that no point reaches — the soft silhouette's clamped
    occupancy gives points piled inside saturated voxels no gradient. Views with an empty mask
    count 0."""
    from lmnet import camera
    from lmnet.losses import nearest_neighbors
    from lmnet.losses.chamfer import safe_norm

    B, V, S, _ = masks.shape
    N = points.shape[1]
    pts = points.unsqueeze(1).expand(B, V, N, 3)
    uv, _ = camera.project_points(pts, azimuth, elevation, distance_ratio, fov,
                                  image_size=camera.R2N2_IMAGE_SIZE, crop_offset=camera.CROP_OFFSET)
    c = (torch.arange(S, device=points.device, dtype=points.dtype) + 0.5) * (camera.CROP_SIZE / S)
    pix = torch.stack(torch.meshgrid(c, c, indexing="xy"), -1).reshape(S * S, 2)  # (u, v) per pixel, row-major
    uv = uv.reshape(B * V, N, 2)
    fg = masks.reshape(B * V, S * S) > 0.5
    # Nearest projected point of each foreground pixel, found without autograd by the Chamfer loss's
    # exact nearest-neighbour search (pixels and points lifted to z = 0); the distances to those
    # points are then recomputed with autograd: the same value and gradient as autograd through a
    # full (pixels × points) cdist + min (ties aside), which kept that whole tensor per view for the
    # backward (2.7 s per step at 8 × 4 views of 64²). Pixels are packed foreground first, padded
    # to the largest foreground count; padding never counts.
    n_fg = fg.sum(1)
    P = max(int(n_fg.max()), 1)
    order = torch.argsort((~fg).to(torch.int8), dim=1, stable=True)[:, :P]  # foreground pixels first
    valid = torch.arange(P, device=points.device)[None] < n_fg[:, None]      # (B·V, P)
    q = pix[order]                                                              # (B·V, P, 2)
    _, nearest = nearest_neighbors(F.pad(q, (0, 1)), F.pad(uv.detach(), (0, 1)))
    hit = uv.gather(1, nearest[..., None].expand(-1, -1, 2))
    d = safe_norm(q - hit) / camera.CROP_SIZE * valid.to(q.dtype)
    return (d.sum(1) / n_fg.clamp(min=1).to(d.dtype)).mean()


def select_pose_winner(losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``losses (B, V, K)`` per candidate → ``(min loss (B, V), winner index (B, V))``; the gradient
    flows only through each view's winning candidate (ties: the lowest index)."""
    best, idx = losses.min(dim=-1)
    return best, idx


def student_loss(student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``‖u(az_s) − u(az_t)‖² + ((el_s − el_t) / 30°)²`` for ``(R, 2)`` angle pairs
    in degrees (``u`` = unit vector of the azimuth); ``target`` is treated as a constant."""
    target = target.detach()
    d_az = (azimuth_unit(student[:, 0]) - azimuth_unit(target[:, 0])).pow(2).sum(-1)
    d_el = ((student[:, 1] - target[:, 1]) / STUDENT_ELEVATION_SCALE).pow(2)
    return (d_az + d_el).mean()


def pose_errors(pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray) -> dict[str, float]:
    """Angle errors of predicted vs true ``(R, 2)`` (azimuth, elevation) in degrees.

    Returns ``azimuth_mean_deg`` / ``azimuth_median_deg`` (absolute wrapped difference),
    ``elevation_mean_deg``, ``azimuth_within_15_deg`` (fraction) and the same azimuth figures after
    the single global azimuth offset (searched in 1° steps) that minimises the mean error
    (``aligned_*``, ``azimuth_offset_deg``): the learned frame may be rotated about the vertical.
    """
    pred = torch.as_tensor(np.asarray(pred), dtype=torch.float64)
    gt = torch.as_tensor(np.asarray(gt), dtype=torch.float64)
    d = wrap_degrees(pred[:, 0] - gt[:, 0]).abs()
    offsets = torch.arange(0.0, 360.0, 1.0, dtype=torch.float64)
    da = wrap_degrees(pred[None, :, 0] - offsets[:, None] - gt[None, :, 0]).abs()
    j = int(da.mean(1).argmin())
    return {"azimuth_mean_deg": float(d.mean()), "azimuth_median_deg": float(d.median()),
            "azimuth_within_15_deg": float((d <= 15).double().mean()),
            "elevation_mean_deg": float((pred[:, 1] - gt[:, 1]).abs().mean()),
            "azimuth_offset_deg": float(offsets[j]), "aligned_azimuth_mean_deg": float(da[j].mean()),
            "aligned_azimuth_median_deg": float(da[j].median()),
            "aligned_azimuth_within_15_deg": float((da[j] <= 15).double().mean())}


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
    kind = "silhouette"
    uses_images = True

    def __init__(self, config: dict, *, train_set: Dataset | None = None, val_set: Dataset | None = None):
        cfg = resolve_train_config(self.kind, config)
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
        model = SilhouetteNetwork(image_scaling=cfg["image_scaling"],
                                  n_pose_candidates=cfg["n_pose_candidates"] if cfg["pose"] == "unknown" else 0,
                                  pose_image_size=cfg["pose_image_size"], elevation_range=cfg["elevation_range"])
        if cfg["init_ae_run"]:
            from lmnet.models import PointAutoencoder
            from lmnet.runs import load_model

            ae, _ = load_model(cfg["init_ae_run"], which=cfg["init_ae_which"])
            if not isinstance(ae, PointAutoencoder):
                raise ConfigError(f"config key 'init_ae_run' must point to an autoencoder run, got {cfg['init_ae_run']!r}")
            model.decoder.load_state_dict(ae.decoder.state_dict())
        else:
            # The occupancy is clamped at 1, so points in a saturated voxel get no gradient. The default
            # init (a cloud covering the whole image at σ≈3) has no gradient anywhere, and a merely
            # shrunk one piles every point into a few central voxels that never move. So: last-layer
            # weights scaled by decoder_init_scale and its bias set to a seeded uniform ball of radius
            # INIT_RADIUS — the first cloud is spread, compact and image-dependent only slightly.
            last = model.decoder.mlp[-1]
            g = torch.Generator().manual_seed(cfg["seed"])
            d = torch.randn(model.decoder.n_points, 3, generator=g)
            r = INIT_RADIUS * torch.rand(model.decoder.n_points, 1, generator=g) ** (1 / 3)
            with torch.no_grad():
                last.weight.mul_(cfg["decoder_init_scale"])
                last.bias.copy_((r * d / d.norm(dim=1, keepdim=True)).reshape(-1))
        return model

    def model_config(self) -> dict:
        cfg = self.config
        return {"kind": "silhouette", "image_scaling": cfg["image_scaling"], "latent_dim": 512, "n_points": 2048,
                "n_pose_candidates": cfg["n_pose_candidates"] if self.unknown else 0,
                "pose_image_size": cfg["pose_image_size"], "elevation_range": list(cfg["elevation_range"])}

    def trainable_module(self) -> nn.Module:
        return _Forward(self.model)

    def param_groups(self, config: dict) -> list[dict]:
        return conv_fc_weight_decay_groups(self.model, config)

    # -- σ schedule -------------------------------------------------------------------------------
    def current_sigma(self) -> float:
        """σ of this optimiser step (advances the per-epoch step counter)."""
        epoch = getattr(_unwrap(self.train_set), "epoch", 0)
        if epoch != self._step_epoch:
            self._step_epoch, self._step_in_epoch = epoch, 0
        step = epoch * self.steps_per_epoch + min(self._step_in_epoch, self.steps_per_epoch - 1)
        self._step_in_epoch += 1
        cfg = self.config
        return projection.annealed_sigma(step, cfg["epochs"] * self.steps_per_epoch, cfg["sigma_start"], cfg["sigma_end"])

    # -- losses -----------------------------------------------------------------------------------
    def _cameras(self, batch: dict):
        return tuple(self.to_device(batch[f"sup_{k}"]).float() for k in ("azimuth", "elevation", "distance_ratio", "fov"))

    def _silhouettes(self, points, batch, cand, sigma):
        """→ ``(per-view loss (B, V), winning silhouettes (B, V, S, S), winner angles (B, V, 2) or None)``."""
        cfg = self.config
        masks = self.to_device(batch["sup_mask"]).float()
        az, el, dr, fov = self._cameras(batch)
        B, V = az.shape
        kw = dict(sigma=sigma, size=cfg["silhouette_size"], depth_bins=cfg["depth_bins"])
        if cand is None:
            sil = project_views(points, az, el, dr, fov, **kw)
            per = ((sil - masks) ** 2).flatten(2).mean(-1)
            return per, sil, None
        K = cand.shape[1]
        cand = cand.view(B, V, K, 2)
        rep = lambda t: t.unsqueeze(-1).expand(B, V, K).reshape(B, V * K)
        sil = project_views(points, cand[..., 0].reshape(B, V * K), cand[..., 1].reshape(B, V * K),
                            rep(dr), rep(fov), **kw).view(B, V, K, *masks.shape[-2:])
        losses = ((sil - masks.unsqueeze(2)) ** 2).flatten(3).mean(-1)  # (B, V, K)
        best, idx = select_pose_winner(losses)
        take = idx[..., None, None, None].expand(B, V, 1, *masks.shape[-2:])
        win_sil = sil.gather(2, take).squeeze(2)
        win = cand.gather(2, idx[..., None, None].expand(B, V, 1, 2)).squeeze(2)
        return best, win_sil, win

    def _pose_images(self, batch):
        if not self.unknown:
            return None
        return self.to_device(batch["sup_image"]).float().flatten(0, 1)

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        from lmnet.losses import chamfer_distance

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
        md = zero
        if cfg["weight_mask_distance"] > 0:
            az, el, dr, fov = self._cameras(batch)
            if win is not None:
                az, el = win[..., 0], win[..., 1]
            md = mask_distance_loss(points, self.to_device(batch["sup_dist"]).float(), az, el, dr, fov)
            loss = loss + cfg["weight_mask_distance"] * md
        mc = zero
        if cfg["weight_mask_coverage"] > 0:
            az, el, dr, fov = self._cameras(batch)
            if win is not None:
                az, el = win[..., 0], win[..., 1]
            mc = mask_coverage_loss(points, self.to_device(batch["sup_mask"]).float(), az, el, dr, fov)
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
        from lmnet.losses import chamfer_distance

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


def train_silhouette(config: dict, **datasets) -> Path:
    """Train a :class:`~lmnet.models.pose.SilhouetteNetwork` from masks (see the module docstring);
    ``datasets``: optional ``train_set`` / ``val_set`` (:class:`MultiViewDataset`-like items).
    Returns the run folder."""
    return SilhouetteTrainer(config, **datasets).fit()


@torch.no_grad()
def predict_poses(model: SilhouetteNetwork, dataset: Dataset, batch_size: int = 32,
                  device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Student poses of every supervising view of ``dataset`` (items with ``sup_image``) →
    ``(pred (R, 2), gt (R, 2))`` degrees (azimuth, elevation), ``R = len(dataset) · n_views``."""
    if model.pose_net is None:
        raise ConfigError("predict_poses needs a model trained with pose='unknown'")
    model.eval().to(device)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    preds, gts = [], []
    for batch in loader:
        _, student = model.pose_net(batch["sup_image"].to(device).float().flatten(0, 1))
        preds.append(student.cpu().numpy())
        gts.append(torch.stack([batch["sup_azimuth"], batch["sup_elevation"]], -1).flatten(0, 1).numpy())
    return np.concatenate(preds), np.concatenate(gts)
