"""The point autoencoder's config: the common keys (:mod:`lmnet.runs.config`) plus its weight decay.

``weight_decay``: L2 on the conv / FC weights (Adam's coupled decay), 0 in the official code.
"""

from __future__ import annotations

from typing import Any

from lmnet.runs.config import COMMON_DEFAULTS, ConfigSpec

DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "weight_decay": 0.0,
}

CONFIG = ConfigSpec("autoencoder", DEFAULTS, val_metrics=("val_chamfer_x100",))
