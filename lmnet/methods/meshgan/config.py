"""The textured-mesh GAN's config (``lmnet train meshgan``): the run keys of every method
(:data:`lmnet.runs.config.RUN_DEFAULTS`) plus its data, networks and schedule.

Two presets (``preset``), each a set of defaults an explicit setting still overrides:

- ``faithful``: convmesh's class-conditional run: 512² textures, batch 32, 600 epochs, Adam
  β = (0, 0.9) with lr 1e-4 (generator) and 4e-4 (discriminator), 2 discriminator steps per
  generator step, EMA generator 0.999;
- ``cpu``: the same losses and schedule at 64² textures with networks 1/8 as wide (0.47 M generator
  and 0.08 M discriminator parameters), batch 8, 30 epochs. A generator step takes about 0.1 s on one
  CPU thread (measured), so 30 epochs over a few hundred synthetic images take minutes; over
  CUB's 5964 images, an estimated 75 s an epoch (745 steps). FID every 10 epochs.

FID in training (convmesh's every 20 epochs; :mod:`.fid`): every ``val_every`` epochs and at the
last one, the Full FID of the EMA generator over the first ``fid_images`` training images goes into
``history.csv`` as ``fid`` and ``best.pt`` is the epoch of the lowest (``best_metric`` ``"fid"``,
convmesh's ``--which_epoch best``). ``fid_features`` says with which features: ``"proxy"`` (lmnet's
offline proxy, the default: comparable only with other proxy numbers), a path to Inception-v3
weights (torchvision's ``inception_v3_google-*.pth``: convmesh's FID; pytorch-fid's
``pt_inception-*.pth``: TF-FID), or ``"none"`` (no FID; ``best_metric`` then becomes
``"train_loss"``, and ``best.pt`` follows the latest epoch).

Keys (their meaning in training: :mod:`.trainer`):

| key | meaning |
|---|---|
| ``dataset`` | ``"cub"`` (birds, 16-ring template, 200 species) or ``"p3d"`` (Pascal3D+ cars, 31 rings, ImageNet images only) |
| ``data_root`` | the dataset root: where the class labels are read (CUB ``CUB_200_2011/images.txt``, ``image_class_labels.txt``; P3D ``p3d_labels.csv``) |
| ``cache_dir`` | convmesh's cache folder: ``poses_metadata.npz`` and ``pseudogt_<R>x<R>/<index>.npz`` (``lmnet pseudogt``) |
| ``texture_resolution`` | side ``R`` of the generated and pseudo-GT textures: 64, 128, 256 or 512 |
| ``width`` | channel multiplier of every network (1 = the original) |
| ``conditional`` | ``"class"`` (species / car shape), ``"none"``, or ``"class_color"`` (P3D: shape and primary colour) |
| ``lr`` / ``lr_d`` | Adam lr of the generator / of the discriminators |
| ``d_steps`` | discriminator steps per generator step (each step takes the next batch) |
| ``ema`` | α of the generator's exponential moving average (α¹⁰⁰ in epochs 1–10, α¹⁰ in 11–100) |
| ``mesh_regularization`` | weight of the flatness loss in the generator's loss |
| ``truncation`` | σ of the truncated noise for samples; None = the original's choice per dataset and conditioning |
| ``mirror`` | each epoch, every item is mirrored in UV space with probability 1/2 |
| ``max_images`` | 0 = every image of the cache, else the first this many (tiny runs, tests) |
| ``fid_features`` | ``"proxy"``, a path to Inception-v3 weights, or ``"none"`` (FID in training, above) |
| ``fid_images`` | how many training images the FID in training uses (0 = all) |
| ``val_every`` | epochs between two FID measurements (the last epoch is always measured) |
"""

from __future__ import annotations

from typing import Any

from lmnet.config import check_choice, check_number
from lmnet.errors import ConfigError
from lmnet.runs.config import RUN_DEFAULTS, ConfigSpec

DATASETS = ("cub", "p3d")
#: the template's rings per dataset (docs/textured.md#the-uv-sphere-template)
RINGS = {"cub": 16, "p3d": 31}
TEXTURE_RESOLUTIONS = (64, 128, 256, 512)
CONDITIONAL = ("class", "none", "class_color")
#: the original's truncation σ for samples, per (dataset, conditional)
TRUNCATION = {("cub", "class"): 0.25, ("cub", "none"): 1.0, ("p3d", "class"): 0.75,
              ("p3d", "class_color"): 0.5, ("p3d", "none"): 1.0}

DEFAULTS: dict[str, Any] = {
    **RUN_DEFAULTS,
    "preset": "faithful",
    "dataset": "cub",
    "data_root": "data/cub",
    "cache_dir": "cache/cub",
    "max_images": 0,
    "texture_resolution": 512,
    "width": 1.0,
    "conditional": "class",
    "epochs": 600,
    "batch_size": 32,
    "lr": 1e-4,
    "lr_d": 4e-4,
    "beta1": 0.0,
    "beta2": 0.9,
    "d_steps": 2,
    "ema": 0.999,
    "mesh_regularization": 1e-4,
    "truncation": None,
    "mirror": True,
    "val_every": 20,
    "fid_features": "proxy",
    "fid_images": 0,
    "best_metric": "fid",
}

PRESETS = {"preset": {
    "faithful": {},
    "cpu": {"texture_resolution": 64, "width": 0.125, "batch_size": 8, "epochs": 30, "num_workers": 0,
            "val_every": 10},
}}


def num_discriminators(dataset: str, texture_resolution: int) -> int:
    """The original's choice: 3 (the third at /4) for CUB at 512 and more, else 2."""
    return 3 if dataset == "cub" and texture_resolution >= 512 else 2


def check(cfg: dict) -> None:
    """The value checks of a meshgan config (see :class:`~lmnet.runs.config.ConfigSpec`)."""
    check_choice(cfg, "dataset", DATASETS)
    check_choice(cfg, "texture_resolution", TEXTURE_RESOLUTIONS)
    check_choice(cfg, "conditional", CONDITIONAL)
    if cfg["conditional"] == "class_color" and cfg["dataset"] != "p3d":
        raise ConfigError("config key 'conditional': 'class_color' exists for dataset 'p3d' only "
                          f"(dataset is {cfg['dataset']!r})")
    check_number(cfg, "width", 0, 4, low_open=True, meaning="the channel multiplier")
    check_number(cfg, "lr_d", 0, low_open=True, meaning="Adam lr of the discriminators")
    check_number(cfg, "mesh_regularization", 0, meaning="a loss weight")
    _check_fid(cfg)
    for key, low in (("d_steps", 1), ("max_images", 0), ("fid_images", 0)):
        if cfg[key] < low:
            raise ConfigError(f"config key {key!r} must be >= {low}, got {cfg[key]}")
    if not 0 <= cfg["ema"] < 1:
        raise ConfigError(f"config key 'ema' must be in [0, 1) (the EMA generator's α), got {cfg['ema']}")
    check_number(cfg, "truncation", 0, low_open=True, meaning="σ of the truncated noise", none_ok=True)
    if cfg["truncation"] is None:
        cfg["truncation"] = TRUNCATION[(cfg["dataset"], cfg["conditional"])]


def _check_fid(cfg: dict) -> None:
    """``fid_features`` is "proxy", "none" or a weights file's path; without FID, ``best_metric``
    "fid" becomes "train_loss" (best.pt = the latest epoch; module docstring)."""
    features = cfg["fid_features"]
    if not isinstance(features, str) or not features:
        raise ConfigError("config key 'fid_features' must be 'proxy', 'none' or the path of an Inception-v3 "
                          f"weights file, got {features!r}")
    if features == "none" and cfg["best_metric"] == "fid":
        cfg["best_metric"] = "train_loss"


CONFIG = ConfigSpec("meshgan", DEFAULTS, val_metrics=("fid",), check=check, presets=PRESETS)
