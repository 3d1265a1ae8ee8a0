"""Value checks of the run kinds' configs that a type check cannot make (choices, ranges, pairs of
keys). Each takes the resolved config dict and raises :class:`~lmnet.errors.ConfigError` naming the
key, or normalises a value in place (``views``: ``"all"`` → ``None``)."""

from __future__ import annotations

from lmnet.config import check_choice
from lmnet.errors import ConfigError
from lmnet.runs.defaults import IMAGE_INPUTS


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


def check_image(cfg: dict) -> None:
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


def check_silhouette(cfg: dict) -> None:
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
