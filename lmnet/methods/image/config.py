"""Variant I / II's config: the common keys (:mod:`lmnet.runs.config`) plus the image encoder's, its
``arch`` presets and the CLI names ``variant1`` / ``variant2``.

Conventions of its keys:

- Weight decay is an L2 term ``wd·Σw²/2`` on conv / FC *weights* (not biases, not BatchNorm),
  implemented as Adam's coupled ``weight_decay=wd`` per parameter group — the gradient ``wd·w``
  added before Adam's normalisation, what TFLearn's L2 regulariser would have done. The official
  code *declares* 1e-5 (conv) / 1e-3 (FC) but never adds them to the loss, so its published models
  were trained without decay: the ``"lmnet"`` defaults keep the declared values, the ``"official"``
  and ``"port"`` presets default to 0.
- ``arch``: the image-encoder preset (:mod:`lmnet.models.image_encoder`). It also changes the
  defaults of :data:`ARCH_DEFAULTS` (what that code effectively did); an explicit setting still wins.
- ``image_input``: ``"composite"`` (lmnet's default) or ``"stored_rgb"`` (what both published codes
  fed); the two conventions are defined at :func:`lmnet.data.inputs.composite`.
"""

from __future__ import annotations

from typing import Any

from lmnet.config import check_choice, check_count, check_number
from lmnet.data.inputs import IMAGE_INPUTS
from lmnet.errors import ConfigError
from lmnet.models.image_encoder import IMAGE_SCALINGS
from lmnet.models.image_to_pointcloud import VARIANTS
from lmnet.runs.config import COMMON_DEFAULTS, ConfigSpec, check_views

DEFAULTS: dict[str, Any] = {
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
    # (trainer.py) at learning rate `logvar_head_lr` (None = lr), with L2
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
    # not in the official code (0 = off): s > 0 recolours each training image's object by RGB gains
    # exp(U(-s, s)) per channel (lmnet.data.augment.tint_objects), so that a coloured photo is not
    # unlike the grey-shaded renders; "composite" input only
    "colour_jitter": 0.0,
    # not in the official code (0 = off, pure latent matching as published): Variant I / II add
    # w · Chamfer(decoder(μ), gt) (Euclidean, chamfer_weights) through the frozen decoder (trainer.py)
    "weight_decoded_chamfer": 0.0,
    # not in the official code (0 = off: the running averages, as published): after each epoch's
    # steps the image encoder's BatchNorm running statistics are re-estimated with the epoch's final
    # weights on this many training batches (trainer.py; lmnet.train.batchnorm)
    "bn_recalibration_batches": 0,
}

# Defaults that follow the image-encoder preset: what the official TF code / the port effectively did
# (no weight decay applied, the PNG's RGB as stored).
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "lmnet": {},
    "official": {"weight_decay_conv": 0.0, "weight_decay_fc": 0.0, "image_input": "stored_rgb"},
    "port": {"weight_decay_conv": 0.0, "weight_decay_fc": 0.0, "image_input": "stored_rgb"},
}


def check(cfg: dict) -> None:
    """The value checks of an image config (see :class:`~lmnet.runs.config.ConfigSpec`)."""
    check_choice(cfg, "variant", VARIANTS)
    check_choice(cfg, "image_scaling", IMAGE_SCALINGS)
    check_choice(cfg, "ae_which", ("best", "last"))
    check_choice(cfg, "image_input", IMAGE_INPUTS)
    if not cfg["ae_run"]:
        raise ConfigError("config key 'ae_run' is required: the autoencoder run folder (or .pt checkpoint)")
    check_number(cfg, "lambda_div", 0, meaning="weight of the diversity loss")
    check_number(cfg, "alpha", 0, meaning="the diversity target's peak sigma")
    check_number(cfg, "theta_deg", 0, low_open=True, meaning="width of the diversity target, degrees")
    check_number(cfg, "background", 0, 255, meaning="grey level of the composite background")
    check_number(cfg, "colour_jitter", 0, 5, meaning="log-range of the per-channel object colour gains")
    if cfg["colour_jitter"] > 0 and cfg["image_input"] != "composite":
        raise ConfigError(f"config key 'colour_jitter' ({cfg['colour_jitter']}) needs image_input='composite' (it "
                          f"recolours the object against the composite background), got {cfg['image_input']!r}")
    check_number(cfg, "weight_decoded_chamfer", 0, meaning="weight of the decoded-μ Chamfer term, 0 = off")
    check_count(cfg, "bn_recalibration_batches")
    _check_logvar_head(cfg)
    check_views(cfg, "views")
    check_views(cfg, "val_views")


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
    check_number(cfg, "logvar_head_lr", 0, low_open=True, meaning="None = lr", none_ok=True)
    check_number(cfg, "weight_decay_logvar", 0, meaning="None = weight_decay_fc", none_ok=True)



def cli_variant1(raw: dict, sets: dict) -> dict:
    """``lmnet train variant1``: Variant I, ``variant`` l1 (default) or l2; a file's other value is
    overridden, a conflicting ``--set`` is an error."""
    variant = raw.get("variant", "l1")
    if variant not in ("l1", "l2"):
        if "variant" in sets:
            raise ConfigError(f"variant1 takes variant=l1 or variant=l2, got {variant!r} "
                              f"(use 'lmnet train variant2' for the probabilistic model)")
        variant = "l1"
    return {**raw, "variant": variant}


def cli_variant2(raw: dict, sets: dict) -> dict:
    """``lmnet train variant2``: Variant II (``variant`` probabilistic)."""
    if sets.get("variant", "probabilistic") != "probabilistic":
        raise ConfigError(f"variant2 is the probabilistic model; got variant={sets['variant']!r} "
                          f"(use 'lmnet train variant1' for l1 / l2)")
    return {**raw, "variant": "probabilistic"}


CONFIG = ConfigSpec("image", DEFAULTS, val_metrics=("val_latent_loss", "val_chamfer_x100"), check=check,
                    presets={"arch": ARCH_DEFAULTS})
