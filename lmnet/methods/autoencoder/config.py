"""The point autoencoder's config: the common keys (:mod:`lmnet.runs.config`) plus its weight decay.

``weight_decay``: L2 on the conv / FC weights (Adam's coupled decay), 0 in the official code.

``extra_train_root``: None (the official training), or a folder in the ShapeNet layout of which only
``ShapeNet_pointclouds/`` is read: its models of ``categories`` are added to the training set (never
to validation). lmnet's synthetic shape pool (:mod:`lmnet.synthetic.shape_pool`) is such a folder:
the autoencoder needs no renders, so it can learn its shape prior from many more shapes than the
image networks see (measured: studies/results/shape_prior.md).

``emd_weight``: 0 (the official Chamfer-only loss), or the weight of an approximate EMD term
(:func:`lmnet.losses.emd.emd_approx`) between ``emd_points`` random points of the prediction and as
many of the ground truth, drawn afresh each step. Chamfer alone lets the decoder clump its points
(the EMD of its clouds is about twice their Chamfer, against 1.15 for real shapes); the EMD term
asks for the GT's density (measured: studies/results/shape_prior.md).

``encoder_points``: 0 (the official training: the encoder reads all ``n_points``), or k: each step the
encoder reads k random points of each training cloud (one random subset per step), while the losses
still compare the decoded cloud with all ``n_points``. The encoder's per-point work is most of a
step, so a step costs about k / ``n_points`` of the encoder's share; a cloud is a random sample of a
surface, so a random k-subset is another sample of the same shape. Validation and inference encode
the whole cloud.
"""

from __future__ import annotations

from typing import Any

from lmnet.errors import ConfigError
from lmnet.runs.config import COMMON_DEFAULTS, ConfigSpec

DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "weight_decay": 0.0,
    "extra_train_root": None,
    "emd_weight": 0.0,
    "emd_points": 512,
    "encoder_points": 0,
}


def check(cfg: dict) -> None:
    """The Chamfer weights must not both be 0 (the EMD term alone is not the autoencoder's loss);
    ``extra_train_root`` is None or a folder path; ``emd_weight`` >= 0; ``emd_points`` fits both clouds."""
    extra = cfg["extra_train_root"]
    if extra is not None and not (isinstance(extra, str) and extra.strip()):
        raise ConfigError(f"config key 'extra_train_root' must be None or the path of a folder holding "
                          f"ShapeNet_pointclouds/, got {extra!r}")
    if not 0 <= cfg["emd_weight"] < float("inf"):
        raise ConfigError(f"config key 'emd_weight' must be a finite number >= 0 (0 = Chamfer only), "
                          f"got {cfg['emd_weight']}")
    if not 1 <= cfg["emd_points"] <= min(cfg["n_points"], 2048):
        raise ConfigError(f"config key 'emd_points' must be between 1 and {min(cfg['n_points'], 2048)} "
                          f"(the points of the GT file and of the prediction), got {cfg['emd_points']}")
    if not (cfg["encoder_points"] == 0 or 16 <= cfg["encoder_points"] <= cfg["n_points"]):
        raise ConfigError(f"config key 'encoder_points' must be 0 (all n_points) or between 16 and n_points "
                          f"({cfg['n_points']}), got {cfg['encoder_points']}")
    if not any(cfg["chamfer_weights"]):
        raise ConfigError(f"config key 'chamfer_weights' is {cfg['chamfer_weights']}: the autoencoder's only loss "
                          f"would be 0 (nothing to train); give at least one direction a weight > 0")


CONFIG = ConfigSpec("autoencoder", DEFAULTS, val_metrics=("val_chamfer_x100",), check=check)
