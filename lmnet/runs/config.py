"""Run configs: plain dicts validated against the defaults of their method.

A method's config is described by a :class:`ConfigSpec` (its defaults, presets, value checks and
validation metrics; each method declares one in ``lmnet/methods/<name>/config.py``).
:func:`resolve_run_config` fills in the defaults, applies the presets, refuses unknown keys / wrong
types (:func:`lmnet.config.resolve_config`) and checks the values that a type cannot (the common
ranges here, the method's own in ``spec.check``). What it returns is what ``config.json`` holds
beside the checkpoints, plus :data:`META_KEYS`.

Conventions of the keys every method shares (:data:`COMMON_DEFAULTS`), fixed here once:

- ``batch_size`` is **per process**; under ``torchrun --nproc_per_node=K`` the global batch is K×.
- ``chamfer_weights`` = (pred→gt, gt→pred) weights of the training Chamfer (Euclidean, i.e.
  square-rooted NN distances, each direction a mean over points); ``[1.0, 1.0]`` is the symmetric
  default, ``[1.0, 0.5]`` reproduces the original code's operator-precedence slip
  (docs/training.md#chamfer-weights-of-the-original-code).
- Validation Chamfer is always symmetric, Euclidean, sum of the two directional means, ×100, in the
  dataset frame (no re-normalisation, no ICP: it is a training monitor, not the paper protocol).
- ``categories`` / ``views`` / ``val_views``: ``None`` means all; categories accept "chair,car" or
  a list of names/synsets, views accept "random" or a list of view indices 0–23 (:func:`check_views`).
- ``max_train_items`` / ``max_val_items``: 0 = everything, else a seeded random subset (fixed for
  the whole run) of that many dataset items, for tiny runs.
- ``amp``: "auto" (mixed precision only where it is fast, :mod:`lmnet.train.precision`), True or False.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from lmnet.config import check_choice, resolve_config
from lmnet.errors import ConfigError

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

#: the keys of the methods that train on ShapeNet point clouds (data, splits, clouds, Chamfer)
SHAPENET_KEYS = ("data_root", "train_split", "val_split", "categories", "n_points", "chamfer_weights", "skip_bad")
#: the keys of every run, whatever it trains on (epochs, optimiser, device, run folder, ...)
RUN_DEFAULTS: dict[str, Any] = {k: v for k, v in COMMON_DEFAULTS.items() if k not in SHAPENET_KEYS}


@dataclass(frozen=True)
class ConfigSpec:
    """What a method's config is: its ``name`` (the run kind written into ``config.json`` and the
    checkpoints), its ``defaults`` (:data:`COMMON_DEFAULTS` plus its own keys), the validation
    ``val_metrics`` it may track (lower is better), ``check`` (its value checks: takes the resolved
    dict, raises :class:`ConfigError` naming the key or normalises a value in place) and its
    ``presets`` (preset key → {preset value → the defaults it changes}; an explicit setting still wins)."""

    name: str
    defaults: Mapping[str, Any]
    val_metrics: tuple[str, ...]
    check: Callable[[dict], None] | None = None
    presets: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)


def strip_meta(config: Mapping[str, Any]) -> dict:
    """Drop the run metadata keys of a saved ``config.json`` so it can be fed back as a config."""
    return {k: v for k, v in config.items() if k not in META_KEYS}


def resolve_run_config(spec: ConfigSpec, overrides: Mapping[str, Any] | None = None) -> dict:
    """Validate ``overrides`` (a saved ``config.json`` too: its metadata keys are dropped) against
    ``spec``: defaults → presets → overrides → checks. Returns the resolved dict."""
    overrides = strip_meta(overrides or {})
    amp = overrides.pop("amp", "auto")  # "auto" or a bool: one key of two types, checked here
    if amp not in AMP_CHOICES or not isinstance(amp, (bool, str)):
        raise ConfigError(f"config key 'amp' must be 'auto', true or false, got {amp!r}")
    defaults = dict(spec.defaults)
    for key, choices in spec.presets.items():
        value = overrides.get(key, defaults[key])
        if value not in choices:
            raise ConfigError(f"config key {key!r} must be one of {tuple(choices)}, got {value!r}")
        defaults.update(choices[value])
    cfg = resolve_config(defaults, overrides, name=f"{spec.name} config")
    cfg["amp"] = amp
    _check_common(cfg)
    check_choice(cfg, "best_metric", ("train_loss",) + tuple(spec.val_metrics))
    if spec.check is not None:
        spec.check(cfg)
    return cfg


def _check_common(cfg: dict) -> None:
    """The value checks of :data:`COMMON_DEFAULTS` (and the weight-decay keys where a method has them)."""
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
    check_choice(cfg, "lr_schedule", ("none", "cosine"))
    if "n_points" not in cfg:   # a method that does not train on ShapeNet (RUN_DEFAULTS only)
        return
    check_choice(cfg, "n_points", (1024, 2048, 16384))
    w = cfg["chamfer_weights"]
    if len(w) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < math.inf for x in w):
        raise ConfigError(f"config key 'chamfer_weights' (loss weights) must be two finite non-negative numbers, "
                          f"got {w!r}")
    cfg["chamfer_weights"] = [float(x) for x in w]
    if cfg["categories"] is not None and not isinstance(cfg["categories"], (str, list, tuple)):
        raise ConfigError(f"config key 'categories' must be None, 'chair,car' or a list, got {cfg['categories']!r}")


def check_views(cfg: dict, key: str) -> None:
    """Check the view selection ``cfg[key]`` (``views`` / ``val_views`` of the image-input methods):
    ``None`` or ``"all"`` (→ ``None``: all 24), ``"random"`` (one per model per epoch) or a non-empty
    list of view indices 0–23 (normalised to ints in place)."""
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
