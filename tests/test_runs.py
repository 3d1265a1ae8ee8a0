"""lmnet.registry: the one registry of methods, config resolution through it, and the checks consumers use."""

from __future__ import annotations

import pytest

from lmnet import registry, runs
from lmnet.errors import ConfigError
from lmnet.methods.image import ARCH_DEFAULTS
from lmnet.methods.image import DEFAULTS as IMAGE_DEFAULTS
from lmnet.methods.silhouette.model import SilhouetteNetwork
from lmnet.models import ImageToPointCloud, PointAutoencoder
from lmnet.runs.config import META_KEYS


def test_every_kind_has_a_trainer_and_nothing_else_does():
    assert set(registry.METHODS) == {"autoencoder", "image", "silhouette", "meshrecon", "meshgan"}
    for name, method in registry.METHODS.items():  # one registry: a method's trainer trains its own config
        assert method.name == name and method.trainer.spec is method.config


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(ConfigError, match=r"training kind must be one of \('autoencoder', 'image', 'silhouette', 'meshrecon', 'meshgan'\), "
                                          r"got 'voxels'"):
        registry.resolve_train_config("voxels", {})
    with pytest.raises(ConfigError, match="model kind in checkpoint model_config must be one of"):
        registry.build_model({"kind": "voxels"})


@pytest.mark.parametrize("arch", sorted(ARCH_DEFAULTS))
def test_presets_change_their_defaults_and_an_explicit_value_wins(arch):
    cfg = registry.resolve_train_config("image", {"ae_run": "ae", "arch": arch})
    for key, value in {**{k: IMAGE_DEFAULTS[k] for k in ("weight_decay_fc", "image_input")},
                       **ARCH_DEFAULTS[arch]}.items():
        assert cfg[key] == value
    cfg = registry.resolve_train_config("image", {"ae_run": "ae", "arch": arch, "weight_decay_fc": 0.25})
    assert cfg["weight_decay_fc"] == 0.25
    with pytest.raises(ConfigError, match=r"config key 'arch' must be one of \('lmnet', 'official', 'port'\), got 'tf'"):
        registry.resolve_train_config("image", {"ae_run": "ae", "arch": "tf"})


def test_build_model_follows_the_registry():
    assert isinstance(registry.build_model({"kind": "autoencoder", "n_points": 2048}), PointAutoencoder)
    net = registry.build_model({"kind": "image", "variant": "probabilistic", "image_scaling": "raw255",
                            "latent_dim": 512, "n_points": 2048, "arch": "official"})
    assert isinstance(net, ImageToPointCloud) and net.probabilistic
    sil = registry.build_model({"kind": "silhouette", "image_scaling": "raw255", "latent_dim": 512, "n_points": 2048,
                            "n_pose_candidates": 2, "pose_image_size": 32, "elevation_range": [0.0, 60.0]})
    assert isinstance(sil, SilhouetteNetwork)
    assert registry.get_method("silhouette").loads_as == "image" and registry.get_method("image").loads_as is None


def test_require_kind_names_the_run_and_the_need():
    registry.require_kind({"kind": "image"}, "image", "R", "inference")
    with pytest.raises(ConfigError, match=r"^R: inference needs an image run \(kind 'image'\), got kind 'autoencoder'$"):
        registry.require_kind({"kind": "autoencoder"}, "image", "R", "inference")


def test_strip_meta_removes_exactly_the_meta_keys():
    cfg = registry.resolve_train_config("autoencoder", {})
    saved = {**cfg, **{k: "x" for k in META_KEYS}}
    assert runs.strip_meta(saved) == cfg
    assert registry.resolve_train_config("autoencoder", saved) == cfg  # config.json feeds back as a config


def test_val_metrics_are_the_kinds():
    for name, kind in registry.METHODS.items():
        assert "train_loss" not in kind.config.val_metrics
        cfg = registry.resolve_train_config(name, {"ae_run": "ae"} if name == "image" else {})
        assert cfg["best_metric"] in ("train_loss",) + kind.config.val_metrics
    with pytest.raises(ConfigError, match="best_metric"):
        registry.resolve_train_config("autoencoder", {"best_metric": "val_iou"})
