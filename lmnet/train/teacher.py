"""The trained point autoencoder that the image methods start from: Variant I / II train against
its frozen encoder and decode with a copy of its decoder; the silhouette method may initialise its
decoder from it."""

from __future__ import annotations

from pathlib import Path

from lmnet.errors import ConfigError
from lmnet.models.point_ae import PointAutoencoder, build_point_autoencoder
from lmnet.runs.folder import load_run


def load_autoencoder(run: str | Path, which: str, key: str) -> PointAutoencoder:
    """The autoencoder of run folder (or ``.pt``) ``run`` (``which``: "best" / "last"), in eval mode
    on CPU; ``key`` is the config key that named it, for the error when ``run`` holds another kind."""
    ckpt, _ = load_run(run, which)
    if ckpt["model_config"].get("kind") != "autoencoder":
        raise ConfigError(f"config key {key!r} must point to an autoencoder run, got {str(run)!r}")
    model = build_point_autoencoder(ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    return model.eval()
