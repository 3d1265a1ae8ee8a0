"""Training loops: the point autoencoder, the image encoder (Variant I / II) and the mask-supervised
network, one trainer per run kind of :data:`lmnet.runs.kinds.KINDS`.

``train(kind, config) -> run_dir`` dispatches through :data:`TRAINERS`; ``train_autoencoder``,
``train_image_encoder`` and ``train_silhouette`` are the same entry points by name (configs:
:mod:`lmnet.runs.defaults`). ``lmnet.runs.load_model(run_dir)`` loads a trained network. Run the
same entry points under ``torchrun --nproc_per_node=K`` for DistributedDataParallel. A trainer
module is imported when its kind is first trained.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from lmnet.runs.kinds import get_kind

# run kind → (module, function) of its trainer; the kinds themselves live in lmnet.runs.kinds
TRAINERS = {
    "autoencoder": ("lmnet.train.autoencoder", "train_autoencoder"),
    "image": ("lmnet.train.image", "train_image_encoder"),
    "silhouette": ("lmnet.train.silhouette", "train_silhouette"),
}


def train(kind: str, config: dict, **datasets) -> Path:
    """Train (or resume) a run of ``kind`` with ``config``; returns the run folder."""
    get_kind(kind)
    module, name = TRAINERS[kind]
    return getattr(import_module(module), name)(config, **datasets)


def train_autoencoder(config: dict, **datasets) -> Path:
    return train("autoencoder", config, **datasets)


def train_image_encoder(config: dict, **datasets) -> Path:
    return train("image", config, **datasets)


def train_silhouette(config: dict, **datasets) -> Path:
    return train("silhouette", config, **datasets)


__all__ = ["TRAINERS", "train", "train_autoencoder", "train_image_encoder", "train_silhouette"]
