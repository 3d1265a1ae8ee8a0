"""The toy method's config: the common keys plus the size of its template."""

from lmnet.errors import ConfigError
from lmnet.runs.config import COMMON_DEFAULTS, ConfigSpec

DEFAULTS = {**COMMON_DEFAULTS, "template_points": 256, "lr": 1e-2}


def check(cfg: dict) -> None:
    if cfg["template_points"] < 1:
        raise ConfigError(f"config key 'template_points' must be >= 1, got {cfg['template_points']}")


CONFIG = ConfigSpec("toy", DEFAULTS, val_metrics=("val_chamfer_x100",), check=check)
