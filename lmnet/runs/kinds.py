"""The registry of run kinds, in the manner of occupancy_networks' ``method_dict``.

A run kind says what a run folder holds: its config defaults (:mod:`lmnet.runs.defaults`), the
validation metrics it may track, the value checks of its config (:mod:`lmnet.runs.checks`), its
presets (a config key whose value changes other defaults, e.g. ``arch``), how a checkpoint's
``model_config`` becomes a network, and as what kind of run it loads (a silhouette run *is* an
image → point-cloud network). The trainer of each kind is :data:`lmnet.train.TRAINERS` (the
training layer sits above this one); a test checks that both name the same kinds.

Adding a kind: one :class:`RunKind` here, its defaults, and its trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from torch import nn

from lmnet.errors import ConfigError
from lmnet.models import ImageToPointCloud, PointAutoencoder
from lmnet.models.pose import SilhouetteNetwork
from lmnet.runs import checks, defaults


@dataclass(frozen=True)
class RunKind:
    name: str
    defaults: Mapping[str, Any]
    val_metrics: tuple[str, ...]
    build_model: Callable[[Mapping[str, Any]], nn.Module]
    check: Callable[[dict], None] | None = None
    # preset key → {preset value → defaults it changes}; an explicit setting still wins
    presets: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    loads_as: str | None = None  # the kind consumers see (load_model relabels; train_kind keeps the name)


def _autoencoder(mc: Mapping[str, Any]) -> nn.Module:
    return PointAutoencoder(n_points=mc["n_points"])


def _image(mc: Mapping[str, Any]) -> nn.Module:
    return ImageToPointCloud(variant=mc["variant"], image_scaling=mc["image_scaling"], latent_dim=mc["latent_dim"],
                             n_points=mc["n_points"], arch=mc.get("arch", "lmnet"))  # no "arch": saved before presets


def _silhouette(mc: Mapping[str, Any]) -> nn.Module:
    return SilhouetteNetwork(image_scaling=mc["image_scaling"], latent_dim=mc["latent_dim"], n_points=mc["n_points"],
                             n_pose_candidates=mc["n_pose_candidates"], pose_image_size=mc["pose_image_size"],
                             elevation_range=mc["elevation_range"])


KINDS: dict[str, RunKind] = {
    "autoencoder": RunKind("autoencoder", defaults.AE_DEFAULTS, defaults.VAL_METRICS["autoencoder"], _autoencoder),
    "image": RunKind("image", defaults.IMAGE_DEFAULTS, defaults.VAL_METRICS["image"], _image, checks.check_image,
                     presets={"arch": defaults.ARCH_DEFAULTS}),
    # mask-supervised image → point cloud (lmnet.train.silhouette)
    "silhouette": RunKind("silhouette", defaults.SILHOUETTE_DEFAULTS, defaults.VAL_METRICS["silhouette"], _silhouette,
                          checks.check_silhouette, loads_as="image"),
}


def get_kind(name: str, what: str = "training kind") -> RunKind:
    """The registered kind ``name``; an unknown one raises :class:`ConfigError` listing the kinds."""
    if name not in KINDS:
        raise ConfigError(f"{what} must be one of {tuple(KINDS)}, got {name!r}")
    return KINDS[name]
