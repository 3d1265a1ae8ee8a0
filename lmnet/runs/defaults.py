"""The defaults of every run kind's config (official 3D-LMNet settings unless said otherwise).

:func:`lmnet.runs.config.resolve_train_config` fills them in and validates; the kinds that use
them are registered in :mod:`lmnet.runs.kinds`.

Conventions fixed here once:

- ``batch_size`` is **per process**; under ``torchrun --nproc_per_node=K`` the global batch is K×.
- ``chamfer_weights`` = (pred→gt, gt→pred) weights of the training Chamfer (Euclidean, i.e.
  square-rooted NN distances, each direction a mean over points); ``[1.0, 1.0]`` is the symmetric
  default, ``[1.0, 0.5]`` reproduces the original code's operator-precedence slip
  (docs/training.md#chamfer-weights-of-the-original-code).
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

from typing import Any

# `amp`: "auto" (mixed precision only where it is fast, lmnet.train.precision), True or False
AMP_CHOICES = ("auto", True, False)
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

# Mask-supervised image → point cloud (docs/training.md#mask-supervised-training, lmnet.train.silhouette).
# The training loss uses masks only (+ an optional 3D Chamfer term, weight_chamfer, 0 by default);
# val_chamfer_x100 is a monitor against the GT clouds and is never optimised (best_metric defaults to
# the mask loss).
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
