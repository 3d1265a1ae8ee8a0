"""Datasets and DataLoaders for training, built from a resolved training config.

Reproducibility: the training loader shuffles with its own seeded ``torch.Generator`` (whose state
goes into checkpoints); worker processes derive their NumPy / ``random`` seeds from it
(:func:`~lmnet.train.runtime.seed_worker`). Under torch.distributed the training set is sharded by
a ``DistributedSampler`` (seeded, reshuffled per epoch by ``set_epoch``) and the validation set by
plain striding ``rank::world_size`` (no padding duplicates, so metrics are exact).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from lmnet.errors import DataError
from lmnet.train.runtime import Dist, seed_worker


def build_dataset(config: dict, which: str, *, images: bool) -> Dataset | None:
    """The ``which`` ("train" or "val") ShapeNetDataset of ``config``; None when ``val_split`` is None."""
    from lmnet.data.dataset import ShapeNetDataset, run_background

    split = config[f"{which}_split"]
    if which == "val" and split is None:
        return None
    kwargs = {}
    if images:
        views = config["views"] if which == "train" else config["val_views"]
        kwargs = {"views": "all" if views is None else views, "image_cache": config["image_cache"],
                  "background": run_background(config)}
    ds = ShapeNetDataset(config["data_root"], split=split, categories=config["categories"],
                         n_points=config["n_points"], load_images=images, skip_bad=config["skip_bad"],
                         seed=config["seed"], **kwargs)
    return limit_items(ds, config[f"max_{which}_items"], config["seed"])


def limit_items(ds: Dataset, max_items: int, seed: int) -> Dataset:
    """A fixed, seeded random subset of ``max_items`` items (sorted indices); 0 or ≥ len → ``ds``."""
    if not max_items or max_items >= len(ds):
        return ds
    idx = np.sort(np.random.default_rng([seed, 7919]).choice(len(ds), size=max_items, replace=False))
    return Subset(ds, idx.tolist())


def set_dataset_epoch(ds: Dataset | None, epoch: int) -> None:
    """Forward ``set_epoch`` to the dataset (through ``Subset`` wrappers) when it has one."""
    while isinstance(ds, Subset):
        ds = ds.dataset
    if ds is not None and hasattr(ds, "set_epoch"):
        ds.set_epoch(epoch)


def train_loader(ds: Dataset, config: dict, dist: Dist, generator: torch.Generator,
                 pin_memory: bool = False) -> DataLoader:
    """Shuffled loader; drops the last partial batch (BatchNorm needs > 1 sample) when a full one exists."""
    bs = config["batch_size"]
    sampler = None
    n_local = len(ds)
    if dist.enabled:
        sampler = DistributedSampler(ds, num_replicas=dist.world_size, rank=dist.rank, shuffle=True,
                                     seed=config["seed"], drop_last=True)
        n_local = len(sampler)
    if n_local < 2:
        raise DataError(f"the training set has {len(ds)} item(s) for {dist.world_size} process(es): BatchNorm "
                        "needs at least 2 samples per batch (raise max_train_items or add models)")
    return DataLoader(ds, batch_size=bs, shuffle=sampler is None, sampler=sampler,
                      drop_last=n_local >= bs, num_workers=config["num_workers"], worker_init_fn=seed_worker,
                      generator=generator, pin_memory=pin_memory)


def val_loader(ds: Dataset, config: dict, dist: Dist, pin_memory: bool = False) -> DataLoader:
    if dist.enabled:
        ds = Subset(ds, list(range(dist.rank, len(ds), dist.world_size)))
    g = torch.Generator()
    g.manual_seed(config["seed"])
    return DataLoader(ds, batch_size=config["batch_size"], shuffle=False, num_workers=config["num_workers"],
                      worker_init_fn=seed_worker, generator=g, pin_memory=pin_memory)
