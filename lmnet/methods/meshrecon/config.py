"""The mesh-estimation method's config (``lmnet train meshrecon``): the run keys of every method
(:data:`lmnet.runs.config.RUN_DEFAULTS`) plus its data, sizes, loss and schedule.

Two presets (``preset``), each a set of defaults an explicit setting still overrides:

- ``faithful``: convmesh's reconstruction run: 256² input, 128² texture, 256² renders, batch 50,
  Adam 1e-4 (the pose offsets too), 1000 epochs with the network's lr halved every 250;
- ``cpu``: the same network, loss and Adam 1e-4 at 64² input / 64² texture / 64² renders, batch 16,
  40 epochs with the lr halved every 15: a run that trains in minutes on two CPU cores. (Adam 1e-3
  makes the zero-initialised mesh head explode into huge displacements within an epoch.)

Keys (their meaning in training: :mod:`.trainer`):

| key | meaning |
|---|---|
| ``dataset`` | ``"cub"`` (birds, 16-ring template) or ``"p3d"`` (Pascal3D+ cars, 31 rings) |
| ``data_root`` | the dataset root (convmesh's ``datasets/cub`` / ``datasets/p3d``: docs/textured.md) |
| ``train_split`` / ``val_split`` | split names; ``val_split`` ``"auto"`` = ``testval`` (CUB) or ``val`` (P3D), None = no validation |
| ``image_size`` | network input side (a multiple of 32, ≥ 64) |
| ``texture_resolution`` | predicted texture side: 64, 128 or 256 |
| ``render_size`` | side of the renders compared with the photograph |
| ``symmetric`` | mirror-symmetric meshes and textures (convmesh's default) |
| ``loss`` | ``"mse"`` or ``"l1"`` over the 4 channels (RGB, alpha) |
| ``mesh_regularization`` | weight of the flatness loss (5e-5) |
| ``flat_warmup`` | the flatness weight starts ``flat_warmup``× higher and falls by 0.1 per step to 1× |
| ``lr_dataset`` | Adam lr of the per-image pose offsets |
| ``lr_decay_every`` | the network's lr halves every this many epochs (0 = never) |
| ``mirror`` | each epoch, every image is seen once, mirrored with probability 1/2 |
| ``optimize_deltas`` | learn a per-image scale and translation offset |
| ``optimize_z0`` | learn a per-image pseudo-perspective distance; None = on for P3D only (convmesh's commands) |
| ``max_images`` | 0 = every image of the split, else the first this many (tiny runs, tests) |
"""

from __future__ import annotations

from typing import Any

from lmnet.config import check_choice, check_number
from lmnet.errors import ConfigError
from lmnet.runs.config import RUN_DEFAULTS, ConfigSpec

DATASETS = ("cub", "p3d")
#: the template's rings per dataset (docs/textured.md#the-uv-sphere-template)
RINGS = {"cub": 16, "p3d": 31}
VAL_SPLITS = {"cub": "testval", "p3d": "val"}
TEXTURE_RESOLUTIONS = (64, 128, 256)

DEFAULTS: dict[str, Any] = {
    **RUN_DEFAULTS,
    "preset": "faithful",
    "dataset": "cub",
    "data_root": "data/cub",
    "train_split": "train",
    "val_split": "auto",
    "max_images": 0,
    "image_size": 256,
    "texture_resolution": 128,
    "render_size": 256,
    "symmetric": True,
    "loss": "mse",
    "mesh_regularization": 5e-5,
    "flat_warmup": 10.0,
    "epochs": 1000,
    "batch_size": 50,
    "lr": 1e-4,
    "lr_dataset": 1e-4,
    "lr_decay_every": 250,
    "mirror": True,
    "optimize_deltas": True,
    "optimize_z0": None,
    "best_metric": "val_recon_loss",
}

PRESETS = {"preset": {
    "faithful": {},
    "cpu": {"image_size": 64, "texture_resolution": 64, "render_size": 64, "batch_size": 16, "epochs": 40,
            "lr_decay_every": 15, "num_workers": 0},
}}

#: validation columns: reconstruction loss and flatness (lower is better) and the mean mask IoU
VAL_METRICS = ("val_recon_loss", "val_flat_loss", "val_iou")


def check(cfg: dict) -> None:
    """The value checks of a meshrecon config (see :class:`~lmnet.runs.config.ConfigSpec`)."""
    check_choice(cfg, "dataset", DATASETS)
    check_choice(cfg, "loss", ("mse", "l1"))
    check_choice(cfg, "texture_resolution", TEXTURE_RESOLUTIONS)
    if not (cfg["optimize_z0"] is None or isinstance(cfg["optimize_z0"], bool)):
        raise ConfigError(f"config key 'optimize_z0' must be None (on for p3d), true or false, got {cfg['optimize_z0']!r}")
    if cfg["optimize_z0"] is None:
        cfg["optimize_z0"] = cfg["dataset"] == "p3d"
    if cfg["val_split"] == "auto":
        cfg["val_split"] = VAL_SPLITS[cfg["dataset"]]
    if cfg["image_size"] < 64 or cfg["image_size"] % 32:
        raise ConfigError(f"config key 'image_size' must be a multiple of 32 and >= 64, got {cfg['image_size']}")
    if not 16 <= cfg["render_size"] <= 2048:
        raise ConfigError(f"config key 'render_size' must be in [16, 2048] pixels, got {cfg['render_size']}")
    for key in ("lr_decay_every", "max_images"):
        if cfg[key] < 0:
            raise ConfigError(f"config key {key!r} must be >= 0, got {cfg[key]}")
    check_number(cfg, "mesh_regularization", 0, meaning="a loss weight")
    check_number(cfg, "flat_warmup", 1, meaning="the initial multiple of the flatness weight")
    check_number(cfg, "lr_dataset", 0, low_open=True, meaning="Adam lr of the pose offsets")
    if cfg["best_metric"] == "val_iou":
        raise ConfigError("best_metric 'val_iou' is higher-is-better; choose val_recon_loss, val_flat_loss "
                          "or train_loss")


CONFIG = ConfigSpec("meshrecon", DEFAULTS, val_metrics=VAL_METRICS, check=check, presets=PRESETS)
