"""Training configs: plain dicts validated against the defaults below (official 3D-LMNet settings).

``resolve_train_config(kind, overrides)`` fills in defaults, refuses unknown keys / wrong types
(:func:`lmnet.config.resolve_config`) and checks the values that a type cannot (choices, ranges).

Conventions fixed here once:

- ``batch_size`` is **per process**; under ``torchrun --nproc_per_node=K`` the global batch is K×.
- ``chamfer_weights`` = (pred→gt, gt→pred) weights of the training Chamfer (Euclidean, i.e.
  square-rooted NN distances, each direction a mean over points); ``[1.0, 1.0]`` is the symmetric
  default, ``[1.0, 0.5]`` reproduces the original code's operator-precedence slip (SPEC §3).
- Validation Chamfer is always symmetric, Euclidean, sum of the two directional means, ×100, in the
  dataset frame (no re-normalisation, no ICP: it is a training monitor, not the paper protocol).
- ``categories`` / ``views`` / ``val_views``: ``None`` means all; categories accept "chair,car" or
  a list of names/synsets, views accept "random" or a list of view indices 0–23.
- ``max_train_items`` / ``max_val_items``: 0 = everything, else a seeded random subset (fixed for
  the whole run) of that many dataset items, for tiny runs.
- Weight decay is an L2 term ``wd·Σw²/2`` on conv / FC *weights* (not biases, not BatchNorm),
  implemented as Adam's coupled ``weight_decay=wd`` per parameter group — the gradient ``wd·w``
  added before Adam's normalisation, what TFLearn's L2 regulariser would have done. The official
  code *declares* 1e-5 (conv) / 1e-3 (FC) but never adds them to the loss, so its published models
  were trained without decay: the ``"lmnet"`` defaults keep the declared values, the ``"official"``
  and ``"port"`` presets default to 0.
- ``arch`` (image runs): the image-encoder preset (:mod:`lmnet.models.image_encoder`). It also
  changes the defaults of :data:`ARCH_DEFAULTS` (what that code effectively did); an explicit
  setting still wins.
- ``image_input``: ``"composite"`` = RGB composited over ``background`` with the alpha (lmnet's
  default), ``"stored_rgb"`` = the PNG's RGB channels as stored, alpha ignored (black where
  transparent), what both published codes fed (``cv2.imread``).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from lmnet.config import check_choice, resolve_config
from lmnet.errors import ConfigError
from lmnet.train.precision import AMP_CHOICES

KINDS = ("autoencoder", "image", "silhouette")
# Keys written into run_dir/config.json beside the resolved config (not settable).
# (precision: what amp resolved to, lmnet.train.precision; source: where an imported run came from;
# resume_changes: settings changed on resume, lmnet.train.resume)
META_KEYS = ("kind", "git_commit", "lmnet_version", "created", "world_size", "precision", "source",
             "resume_changes")

COMMON_DEFAULTS: dict[str, Any] = {
    "data_root": "data",
    "train_split": None,        # split file (JSON / text); None = every model under data_root
    "val_split": None,          # None = no validation (best.pt then tracks train_loss)
    "categories": None,
    "n_points": 2048,           # ground-truth cloud file: 1024, 2048 or 16384 points
    "epochs": 500,
    "batch_size": 32,
    "lr": 5e-4,
    "beta1": 0.9,
    "beta2": 0.999,
    "lr_schedule": "none",      # "none" (official) or "cosine" (to 0 over `epochs`)
    "grad_clip": 0.0,           # max global grad norm; 0 = off
    "chamfer_weights": [1.0, 1.0],
    "best_metric": "val_chamfer_x100",   # lower is better
    "val_every": 1,
    "device": "auto",           # "auto" (CUDA when available), "cpu", "cuda", "cuda:1"
    "amp": "auto",              # "auto" (mixed precision only where it is fast), True, False: lmnet.train.precision
    "seed": 0,
    "num_workers": 2,
    "run_dir": None,            # None = runs/<kind>-<YYYYmmdd-HHMMSS>
    "resume": False,
    "max_train_items": 0,
    "max_val_items": 0,
    "skip_bad": False,
    "progress": True,
}

AE_DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "weight_decay": 0.0,
}

IMAGE_DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "lr": 5e-5,
    "epochs": 50,
    "ae_run": None,             # autoencoder run folder (or a .pt checkpoint): required
    "ae_which": "best",         # "best" or "last" checkpoint of that run
    "variant": "l1",            # "l1", "l2" (Variant I) or "probabilistic" (Variant II)
    "lambda_div": 5.5,
    "alpha": 0.2,
    "theta_deg": 20.0,
    # Variant II only, not in the official code (0 / None = official): the last
    # `logvar_head_epochs` of `epochs` train the log σ² head alone on the frozen best trunk
    # (lmnet.train.image) at learning rate `logvar_head_lr` (None = lr), with L2
    # `weight_decay_logvar` on its weights (None = weight_decay_fc).
    "logvar_head_epochs": 0,
    "logvar_head_lr": None,
    "weight_decay_logvar": None,
    "image_scaling": "raw255",  # "raw255" (published), "unit" (/255), "standardize" (per image)
    "weight_decay_conv": 1e-5,
    "weight_decay_fc": 1e-3,
    "views": None,              # training views: None = all 24 items per model
    "val_views": None,
    "image_cache": True,        # on-disk decoded-image cache (lmnet.data.image_cache)
    "background": 255.0,
    "channels_last": True,      # NHWC image-encoder activations: the same network, faster CPU convolutions
    "arch": "lmnet",            # image-encoder preset: "lmnet", "official" (TF graph), "port" (PyTorch port)
    "image_input": "composite",  # "composite" over `background`, or "stored_rgb" (alpha ignored)
}

# Defaults that follow the image-encoder preset: what the official TF code / the port effectively did
# (no weight decay applied, the PNG's RGB as stored).
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "lmnet": {},
    "official": {"weight_decay_conv": 0.0, "weight_decay_fc": 0.0, "image_input": "stored_rgb"},
    "port": {"weight_decay_conv": 0.0, "weight_decay_fc": 0.0, "image_input": "stored_rgb"},
}
IMAGE_INPUTS = ("composite", "stored_rgb")

# Mask-supervised image → point cloud (SPEC §5, lmnet.train.silhouette). The training loss uses
# masks only (+ an optional 3D Chamfer term, weight_chamfer, 0 by default); val_chamfer_x100 is a
# monitor against the GT clouds and is never optimised (best_metric defaults to the mask loss).
SILHOUETTE_DEFAULTS: dict[str, Any] = {
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
}

VAL_METRICS = {
    "autoencoder": ("val_chamfer_x100",),
    "image": ("val_latent_loss", "val_chamfer_x100"),
    # the two pose columns exist only with pose="unknown" (the trainer drops them otherwise)
    "silhouette": ("val_silhouette_loss", "val_iou", "val_chamfer_x100", "val_azimuth_err_deg",
                   "val_elevation_err_deg"),
}


def defaults_for(kind: str) -> dict:
    if kind not in KINDS:
        raise ConfigError(f"training kind must be one of {KINDS}, got {kind!r}")
    if kind == "silhouette":
        return SILHOUETTE_DEFAULTS
    return AE_DEFAULTS if kind == "autoencoder" else IMAGE_DEFAULTS


def strip_meta(config: Mapping[str, Any]) -> dict:
    """Drop the run metadata keys of a saved ``config.json`` so it can be fed back as a config."""
    return {k: v for k, v in config.items() if k not in META_KEYS}


def _check_views(cfg: dict, key: str) -> None:
    v = cfg[key]
    if v is None or v == "random":
        return
    if isinstance(v, str) and v == "all":
        cfg[key] = None
        return
    if isinstance(v, (list, tuple)) and v and all(isinstance(i, int) and 0 <= i < 24 for i in v):
        cfg[key] = [int(i) for i in v]
        return
    raise ConfigError(f"config key {key!r} must be None/'all', 'random' or a list of view indices 0-23, got {v!r}")


def resolve_train_config(kind: str, overrides: Mapping[str, Any] | None = None) -> dict:
    """Validate ``overrides`` against the defaults of ``kind`` ("autoencoder" or "image")."""
    overrides = strip_meta(overrides or {})
    amp = overrides.pop("amp", "auto")  # "auto" or a bool: one key of two types, checked here
    if amp not in AMP_CHOICES or not isinstance(amp, (bool, str)):
        raise ConfigError(f"config key 'amp' must be 'auto', true or false, got {amp!r}")
    defaults = defaults_for(kind)
    if kind == "image":
        arch = overrides.get("arch", defaults["arch"])
        if arch not in ARCH_DEFAULTS:
            raise ConfigError(f"config key 'arch' must be one of {tuple(ARCH_DEFAULTS)}, got {arch!r}")
        defaults = {**defaults, **ARCH_DEFAULTS[arch]}
    cfg = resolve_config(defaults, overrides, name=f"{kind} config")
    cfg["amp"] = amp
    for key in ("epochs", "batch_size", "val_every"):
        if cfg[key] < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {cfg[key]}")
    for key in ("max_train_items", "max_val_items", "num_workers", "seed"):
        if cfg[key] < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {cfg[key]}")
    if not 0 < cfg["lr"] < math.inf:
        raise ConfigError(f"config key 'lr' must be a finite number > 0, got {cfg['lr']}")
    for key in ("beta1", "beta2"):
        if not 0 <= cfg[key] < 1:
            raise ConfigError(f"config key {key!r} (Adam) must be in [0, 1), got {cfg[key]}")
    if not 0 <= cfg["grad_clip"] < math.inf:
        raise ConfigError(f"config key 'grad_clip' must be a finite max gradient norm >= 0 (0 = off), "
                          f"got {cfg['grad_clip']}")
    for key in ("weight_decay", "weight_decay_conv", "weight_decay_fc"):
        if key in cfg and not 0 <= cfg[key] < math.inf:
            raise ConfigError(f"config key {key!r} must be a finite number >= 0, got {cfg[key]}")
    check_choice(cfg, "n_points", (1024, 2048, 16384))
    check_choice(cfg, "lr_schedule", ("none", "cosine"))
    w = cfg["chamfer_weights"]
    if len(w) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in w):
        raise ConfigError(f"config key 'chamfer_weights' must be two non-negative numbers, got {w!r}")
    cfg["chamfer_weights"] = [float(x) for x in w]
    if cfg["categories"] is not None and not isinstance(cfg["categories"], (str, list, tuple)):
        raise ConfigError(f"config key 'categories' must be None, 'chair,car' or a list, got {cfg['categories']!r}")
    valid_metrics = ("train_loss",) + VAL_METRICS[kind]
    check_choice(cfg, "best_metric", valid_metrics)
    if kind == "image":
        check_choice(cfg, "variant", ("l1", "l2", "probabilistic"))
        check_choice(cfg, "image_scaling", ("raw255", "unit", "standardize"))
        check_choice(cfg, "ae_which", ("best", "last"))
        check_choice(cfg, "image_input", IMAGE_INPUTS)
        if not cfg["ae_run"]:
            raise ConfigError("config key 'ae_run' is required: the autoencoder run folder (or .pt checkpoint)")
        if cfg["theta_deg"] <= 0:
            raise ConfigError(f"config key 'theta_deg' must be > 0, got {cfg['theta_deg']}")
        _check_logvar_head(cfg)
        _check_views(cfg, "views")
        _check_views(cfg, "val_views")
    if kind == "silhouette":
        _check_silhouette(cfg)
    return cfg


def _check_logvar_head(cfg: dict) -> None:
    n = cfg["logvar_head_epochs"]
    if n < 0:
        raise ConfigError(f"config key 'logvar_head_epochs' must be >= 0, got {n}")
    if n and cfg["variant"] != "probabilistic":
        raise ConfigError(f"config key 'logvar_head_epochs' ({n}) needs variant='probabilistic' "
                          f"(only Variant II has a log σ² head), got variant={cfg['variant']!r}")
    if n >= cfg["epochs"]:
        raise ConfigError(f"config key 'logvar_head_epochs' ({n}) must be < 'epochs' ({cfg['epochs']}): "
                          f"the head-only epochs are the last ones of the run, after the joint ones")
    lr = cfg["logvar_head_lr"]
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0):
        raise ConfigError(f"config key 'logvar_head_lr' must be None (= lr) or a number > 0, got {lr!r}")
    wd = cfg["weight_decay_logvar"]
    if wd is not None and (isinstance(wd, bool) or not isinstance(wd, (int, float)) or wd < 0):
        raise ConfigError(f"config key 'weight_decay_logvar' must be None (= weight_decay_fc) or a number >= 0, "
                          f"got {wd!r}")


def _check_silhouette(cfg: dict) -> None:
    check_choice(cfg, "pose", ("known", "unknown"))
    check_choice(cfg, "image_scaling", ("raw255", "unit", "standardize"))
    check_choice(cfg, "init_ae_which", ("best", "last"))
    _check_views(cfg, "views")
    _check_views(cfg, "val_views")
    for key in ("n_views", "n_pose_candidates", "silhouette_size", "depth_bins"):
        if cfg[key] < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {cfg[key]}")
    if cfg["n_views"] > 24:
        raise ConfigError(f"config key 'n_views' must be <= 24 (views per model), got {cfg['n_views']}")
    if cfg["pose_image_size"] < 16 or cfg["pose_image_size"] % 16:
        raise ConfigError(f"config key 'pose_image_size' must be a positive multiple of 16, got {cfg['pose_image_size']}")
    for key in ("weight_silhouette", "weight_mask_distance", "weight_mask_coverage", "weight_chamfer", "weight_student",
                "decoder_init_scale"):
        if cfg[key] < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {cfg[key]}")
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
