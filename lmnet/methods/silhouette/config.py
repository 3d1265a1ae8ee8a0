"""The silhouette method's config: the common keys (:mod:`lmnet.runs.config`) plus its mask losses,
projection, pose mode and decoder initialisation (their meaning: :mod:`.trainer`)."""

from __future__ import annotations

from typing import Any

from lmnet.config import check_choice, check_count, check_number
from lmnet.errors import ConfigError
from lmnet.models.image_encoder import IMAGE_SCALINGS
from lmnet.runs.config import COMMON_DEFAULTS, ConfigSpec, check_views

# Mask-supervised image → point cloud (docs/training.md#mask-supervised-training, trainer.py).
# The training loss uses masks only (+ an optional 3D Chamfer term, weight_chamfer, 0 by default);
# val_chamfer_x100 is a monitor against the GT clouds and is never optimised (best_metric defaults to
# the mask loss).
DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "lr": 1e-4,
    "epochs": 50,
    "batch_size": 16,
    "best_metric": "val_silhouette_loss",
    "views": "random",          # input views: "random" (one per model per epoch), None = all 24, list
    "val_views": "random",      # one fixed (seeded) input view per validation model
    "n_views": 4,               # supervising views per item: the input view + n_views-1 other views
    "pose": "known",            # "known" (metadata cameras) or "unknown" (K candidates + student)
    "n_pose_candidates": 4,
    "pose_image_size": 64,      # the pose network sees each view's RGB image at this size
    "elevation_range": [0.0, 60.0],  # degrees; candidate / student elevations live in it
    "weight_silhouette": 1.0,
    "weight_mask_distance": 1.0,  # mask-only: distance of projected points to the masks (image widths)
    "weight_mask_coverage": 1.0,  # mask-only: distance of mask pixels to the nearest projected point
    "weight_chamfer": 0.0,      # optional 3D term (Euclidean Chamfer with chamfer_weights)
    "weight_student": 1.0,      # student pose head regressing the winning candidate
    "sigma_start": 3.0,         # blur σ (voxels), annealed geometrically per step to sigma_end
    "sigma_end": 0.2,
    "silhouette_size": 64,      # masks / projections are size × size
    "depth_bins": 64,
    "init_ae_run": None,        # autoencoder run (or .pt) whose decoder initialises ours; None = scratch
    "init_ae_which": "best",
    "decoder_init_scale": 0.1,  # from scratch: last decoder layer's weights scaled, bias = a spread ball
    "image_scaling": "raw255",
    "weight_decay_conv": 1e-5,
    "weight_decay_fc": 1e-3,
    "image_cache": True,
    "background": 255.0,
    "channels_last": True,
    # after each epoch's steps, BatchNorm running statistics are re-estimated with the epoch's final
    # weights on this many training batches (0 = keep the running averages): trainer.py
    "bn_recalibration_batches": 32,
}

# the two pose columns exist only with pose="unknown" (the trainer drops them otherwise)
VAL_METRICS = ("val_silhouette_loss", "val_iou", "val_chamfer_x100", "val_azimuth_err_deg", "val_elevation_err_deg")


def check(cfg: dict) -> None:
    """The value checks of a silhouette config (see :class:`~lmnet.runs.config.ConfigSpec`)."""
    check_choice(cfg, "pose", ("known", "unknown"))
    check_choice(cfg, "image_scaling", IMAGE_SCALINGS)
    check_choice(cfg, "init_ae_which", ("best", "last"))
    check_views(cfg, "views")
    check_views(cfg, "val_views")
    check_count(cfg, "bn_recalibration_batches")
    for key in ("n_views", "n_pose_candidates", "silhouette_size", "depth_bins"):
        if cfg[key] < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {cfg[key]}")
    if cfg["n_views"] > 24:
        raise ConfigError(f"config key 'n_views' must be <= 24 (views per model), got {cfg['n_views']}")
    if cfg["pose_image_size"] < 16 or cfg["pose_image_size"] % 16:
        raise ConfigError(f"config key 'pose_image_size' must be a positive multiple of 16, got {cfg['pose_image_size']}")
    for key in ("weight_silhouette", "weight_mask_distance", "weight_mask_coverage", "weight_chamfer", "weight_student"):
        check_number(cfg, key, 0, meaning="a loss weight")
    check_number(cfg, "decoder_init_scale", 0, meaning="scale of the last decoder layer's initial weights")
    check_number(cfg, "sigma_start", 0, low_open=True, meaning="blur sigma, voxels")
    check_number(cfg, "background", 0, 255, meaning="grey level of the composite background")
    if not any(cfg[k] > 0 for k in ("weight_silhouette", "weight_mask_distance", "weight_mask_coverage", "weight_chamfer")):
        raise ConfigError("weight_silhouette, weight_mask_distance, weight_mask_coverage and weight_chamfer are all 0: "
                          "nothing to train")
    if not 0 < cfg["sigma_end"] <= cfg["sigma_start"]:
        raise ConfigError(f"config keys 'sigma_start' / 'sigma_end' need 0 < sigma_end <= sigma_start, "
                          f"got {cfg['sigma_start']} / {cfg['sigma_end']}")
    er = cfg["elevation_range"]
    if (len(er) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in er)
            or not -90 <= er[0] < er[1] <= 90):
        raise ConfigError(f"config key 'elevation_range' must be [lo, hi] degrees with -90 <= lo < hi <= 90, got {er!r}")
    cfg["elevation_range"] = [float(x) for x in er]
    if cfg["best_metric"] == "val_iou":
        raise ConfigError("best_metric 'val_iou' is higher-is-better; choose val_silhouette_loss, "
                          "val_chamfer_x100 or train_loss")
    if cfg["pose"] == "known" and cfg["best_metric"] in ("val_azimuth_err_deg", "val_elevation_err_deg"):
        raise ConfigError(f"best_metric {cfg['best_metric']!r} needs pose='unknown'")


CONFIG = ConfigSpec("silhouette", DEFAULTS, val_metrics=VAL_METRICS, check=check)
