"""lmnet.runs: the registry of run kinds, config resolution through it, and the checks consumers use."""

from __future__ import annotations

import pytest

from lmnet import runs
from lmnet.errors import ConfigError
from lmnet.models import ImageToPointCloud, PointAutoencoder
from lmnet.models.pose import SilhouetteNetwork
from lmnet.runs.defaults import ARCH_DEFAULTS, IMAGE_DEFAULTS, META_KEYS
from lmnet.train import TRAINERS


def test_every_kind_has_a_trainer_and_nothing_else_does():
    assert set(TRAINERS) == set(runs.KINDS) == {"autoencoder", "image", "silhouette"}


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(ConfigError, match=r"training kind must be one of \('autoencoder', 'image', 'silhouette'\), "
                                          r"got 'voxels'"):
        runs.resolve_train_config("voxels", {})
    with pytest.raises(ConfigError, match="model kind in checkpoint model_config must be one of"):
        runs.build_model({"kind": "voxels"})


@pytest.mark.parametrize("arch", sorted(ARCH_DEFAULTS))
def test_presets_change_their_defaults_and_an_explicit_value_wins(arch):
    cfg = runs.resolve_train_config("image", {"ae_run": "ae", "arch": arch})
    for key, value in {**{k: IMAGE_DEFAULTS[k] for k in ("weight_decay_fc", "image_input")},
                       **ARCH_DEFAULTS[arch]}.items():
        assert cfg[key] == value
    cfg = runs.resolve_train_config("image", {"ae_run": "ae", "arch": arch, "weight_decay_fc": 0.25})
    assert cfg["weight_decay_fc"] == 0.25
    with pytest.raises(ConfigError, match=r"config key 'arch' must be one of \('lmnet', 'official', 'port'\), got 'tf'"):
        runs.resolve_train_config("image", {"ae_run": "ae", "arch": "tf"})


def test_build_model_follows_the_registry():
    assert isinstance(runs.build_model({"kind": "autoencoder", "n_points": 2048}), PointAutoencoder)
    net = runs.build_model({"kind": "image", "variant": "probabilistic", "image_scaling": "raw255",
                            "latent_dim": 512, "n_points": 2048, "arch": "official"})
    assert isinstance(net, ImageToPointCloud) and net.probabilistic
    sil = runs.build_model({"kind": "silhouette", "image_scaling": "raw255", "latent_dim": 512, "n_points": 2048,
                            "n_pose_candidates": 2, "pose_image_size": 32, "elevation_range": [0.0, 60.0]})
    assert isinstance(sil, SilhouetteNetwork)
    assert runs.get_kind("silhouette").loads_as == "image" and runs.get_kind("image").loads_as is None


def test_require_kind_names_the_run_and_the_need():
    runs.require_kind({"kind": "image"}, "image", "R", "inference")
    with pytest.raises(ConfigError, match=r"^R: inference needs an image run \(kind 'image'\), got kind 'autoencoder'$"):
        runs.require_kind({"kind": "autoencoder"}, "image", "R", "inference")


def test_strip_meta_removes_exactly_the_meta_keys():
    cfg = runs.resolve_train_config("autoencoder", {})
    saved = {**cfg, **{k: "x" for k in META_KEYS}}
    assert runs.strip_meta(saved) == cfg
    assert runs.resolve_train_config("autoencoder", saved) == cfg  # config.json feeds back as a config


def test_val_metrics_are_the_kinds():
    for name, kind in runs.KINDS.items():
        assert "train_loss" not in kind.val_metrics
        cfg = runs.resolve_train_config(name, {"ae_run": "ae"} if name == "image" else {})
        assert cfg["best_metric"] in ("train_loss",) + kind.val_metrics
    with pytest.raises(ConfigError, match="best_metric"):
        runs.resolve_train_config("autoencoder", {"best_metric": "val_iou"})
