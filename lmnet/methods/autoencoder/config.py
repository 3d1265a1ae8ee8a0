"""The point autoencoder's config: the common keys (:mod:`lmnet.runs.config`) plus its weight decay.

``weight_decay``: L2 on the conv / FC weights (Adam's coupled decay), 0 in the official code.
"""

from __future__ import annotations

from typing import Any

from lmnet.errors import ConfigError
from lmnet.runs.config import COMMON_DEFAULTS, ConfigSpec

DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "weight_decay": 0.0,
}


def check(cfg: dict) -> None:
    """The autoencoder trains on the Chamfer loss alone: both of its weights 0 leave nothing to train."""
    if not any(cfg["chamfer_weights"]):
        raise ConfigError(f"config key 'chamfer_weights' is {cfg['chamfer_weights']}: the autoencoder's only loss "
                          f"would be 0 (nothing to train); give at least one direction a weight > 0")


CONFIG = ConfigSpec("autoencoder", DEFAULTS, val_metrics=("val_chamfer_x100",), check=check)
