"""Variant I / II's network (:class:`~lmnet.models.image_to_pointcloud.ImageToPointCloud`: the image
encoder, a log σ² head for Variant II, and the frozen decoder of the autoencoder it was trained on)
and what its checkpoints say about it."""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from lmnet.models.image_to_pointcloud import ImageToPointCloud
from lmnet.models.point_ae import N_OUTPUT_POINTS

LATENT_DIM = 512


def build_model(model_config: Mapping[str, Any]) -> ImageToPointCloud:
    """The network of a checkpoint's ``model_config`` (one saved before the ``arch`` presets has no
    ``arch``: it is ``"lmnet"``)."""
    mc = model_config
    return ImageToPointCloud(variant=mc["variant"], image_scaling=mc["image_scaling"], latent_dim=mc["latent_dim"],
                             n_points=mc["n_points"], arch=mc.get("arch", "lmnet"))


def model_config(config: Mapping[str, Any]) -> dict:
    """The ``model_config`` a checkpoint of a run with ``config`` stores."""
    return {"kind": "image", "variant": config["variant"], "image_scaling": config["image_scaling"],
            "latent_dim": LATENT_DIM, "n_points": N_OUTPUT_POINTS, "arch": config["arch"]}


def new_model(config: Mapping[str, Any], decoder: nn.Module) -> ImageToPointCloud:
    """A fresh image encoder for a run with ``config``, decoding with ``decoder`` (a copy of the
    autoencoder's, frozen)."""
    return ImageToPointCloud(variant=config["variant"], image_scaling=config["image_scaling"], decoder=decoder,
                             arch=config["arch"])
