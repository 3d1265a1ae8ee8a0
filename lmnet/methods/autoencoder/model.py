"""The autoencoder's network (:class:`~lmnet.models.point_ae.PointAutoencoder`, shared with the image
methods, which decode with its decoder) and what its checkpoints say about it."""

from __future__ import annotations

from typing import Any, Mapping

from lmnet.models.point_ae import N_OUTPUT_POINTS, PointAutoencoder, build_point_autoencoder

LATENT_DIM = 512


def build_model(model_config: Mapping[str, Any]) -> PointAutoencoder:
    """The network of a checkpoint's ``model_config``."""
    return build_point_autoencoder(model_config)


def model_config(config: Mapping[str, Any]) -> dict:
    """The ``model_config`` a checkpoint of this method stores (the run's ``config`` does not change it)."""
    return {"kind": "autoencoder", "n_points": N_OUTPUT_POINTS, "latent_dim": LATENT_DIM}


def new_model(config: Mapping[str, Any]) -> PointAutoencoder:
    """A freshly initialised network for a run with ``config``."""
    return build_model(model_config(config))
