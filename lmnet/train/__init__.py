"""Training loops: the point autoencoder and the image encoder (Variant I / II).

``train_autoencoder(config) -> run_dir`` and ``train_image_encoder(config) -> run_dir`` (configs:
:mod:`lmnet.train.config`); ``lmnet.train.runs.load_model(run_dir)`` loads a trained network. Run
the same entry points under ``torchrun --nproc_per_node=K`` for DistributedDataParallel.
Heavy modules (losses, datasets) are imported on first use.
"""

from __future__ import annotations


def train_autoencoder(config: dict, **datasets):
    from lmnet.train.autoencoder import train_autoencoder as _train

    return _train(config, **datasets)


def train_image_encoder(config: dict, **datasets):
    from lmnet.train.image import train_image_encoder as _train

    return _train(config, **datasets)


def load_model(run_dir, which: str = "best", device="cpu"):
    from lmnet.train.runs import load_model as _load

    return _load(run_dir, which=which, device=device)


__all__ = ["train_autoencoder", "train_image_encoder", "load_model"]
