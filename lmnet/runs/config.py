"""Run configs: plain dicts validated against the defaults of their kind.

``resolve_train_config(kind, overrides)`` fills in the kind's defaults (:mod:`lmnet.runs.defaults`,
where the conventions of every key are stated), applies its presets, refuses unknown keys / wrong
types (:func:`lmnet.config.resolve_config`) and checks the values that a type cannot (the common
ranges here, the kind's own in :mod:`lmnet.runs.checks`). What it returns is what ``config.json``
holds beside the checkpoints, plus :data:`~lmnet.runs.defaults.META_KEYS`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from lmnet.config import check_choice, resolve_config
from lmnet.errors import ConfigError
from lmnet.runs.defaults import AMP_CHOICES, META_KEYS
from lmnet.runs.kinds import get_kind


def defaults_for(kind: str) -> dict:
    """The config defaults of the run kind ``kind`` (before presets)."""
    return dict(get_kind(kind).defaults)


def strip_meta(config: Mapping[str, Any]) -> dict:
    """Drop the run metadata keys of a saved ``config.json`` so it can be fed back as a config."""
    return {k: v for k, v in config.items() if k not in META_KEYS}


def resolve_train_config(kind: str, overrides: Mapping[str, Any] | None = None) -> dict:
    """Validate ``overrides`` against the defaults of the run kind ``kind`` (:data:`lmnet.runs.kinds.KINDS`)."""
    overrides = strip_meta(overrides or {})
    amp = overrides.pop("amp", "auto")  # "auto" or a bool: one key of two types, checked here
    if amp not in AMP_CHOICES or not isinstance(amp, (bool, str)):
        raise ConfigError(f"config key 'amp' must be 'auto', true or false, got {amp!r}")
    spec = get_kind(kind)
    defaults = dict(spec.defaults)
    for key, choices in spec.presets.items():
        value = overrides.get(key, defaults[key])
        if value not in choices:
            raise ConfigError(f"config key {key!r} must be one of {tuple(choices)}, got {value!r}")
        defaults.update(choices[value])
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
    check_choice(cfg, "best_metric", ("train_loss",) + spec.val_metrics)
    if spec.check is not None:
        spec.check(cfg)
    return cfg
