"""Datasets and DataLoaders for training, built from a resolved training config.

Reproducibility: the training order of epoch ``e`` is a permutation drawn from ``(seed, e)`` alone
(:class:`EpochShuffle`; under torch.distributed a ``DistributedSampler`` seeded the same way and
sharded), never from the DataLoader's internals, so it is the same whatever ``num_workers`` is and
after a resume. Worker processes derive their NumPy / ``random`` seeds from the loader's seeded
``torch.Generator`` (whose state goes into checkpoints; :func:`~lmnet.train.runtime.seed_worker`);
datasets draw their own randomness from ``(seed, epoch, index)``, so items do not depend on which
process loads them. The validation set is sharded by plain striding ``rank::world_size`` (no
padding duplicates, so metrics are exact).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset

from lmnet.data.dataset import ShapeNetDataset
from lmnet.data.inputs import run_background
from lmnet.errors import DataError
from lmnet.train.runtime import Dist, seed_worker


def build_dataset(config: dict, which: str, *, images: bool) -> Dataset | None:
    """The ``which`` ("train" or "val") ShapeNetDataset of ``config``; None when ``val_split`` is None."""
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


def unwrap_subset(ds: Dataset | None) -> Dataset | None:
    """The dataset inside any number of ``Subset`` wrappers (``ds`` itself when there are none)."""
    while isinstance(ds, Subset):
        ds = ds.dataset
    return ds


def set_dataset_epoch(ds: Dataset | None, epoch: int) -> None:
    """Forward ``set_epoch`` to the dataset (through ``Subset`` wrappers) when it has one."""
    ds = unwrap_subset(ds)
    if ds is not None and hasattr(ds, "set_epoch"):
        ds.set_epoch(epoch)


class EpochShuffle(Sampler):
    """Indices ``0..n-1`` in the order ``numpy.random.default_rng([seed, epoch, 104729]).permutation(n)``;
    call :meth:`set_epoch` before each epoch's iterator."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        return iter(np.random.default_rng([self.seed, self.epoch, 104729]).permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


def train_loader(ds: Dataset, config: dict, dist: Dist, generator: torch.Generator,
                 pin_memory: bool = False) -> DataLoader:
    """Shuffled loader (:class:`EpochShuffle` or a ``DistributedSampler``); drops the last partial batch (BatchNorm needs > 1 sample) when a full one exists."""
    bs = config["batch_size"]
    sampler = EpochShuffle(len(ds), config["seed"])
    n_local = len(ds)
    if dist.enabled:
        sampler = DistributedSampler(ds, num_replicas=dist.world_size, rank=dist.rank, shuffle=True,
                                     seed=config["seed"], drop_last=True)
        n_local = len(sampler)
    if n_local < 2:
        raise DataError(f"the training set has {len(ds)} item(s) for {dist.world_size} process(es): BatchNorm "
                        "needs at least 2 samples per batch (raise max_train_items or add models)")
    return DataLoader(ds, batch_size=bs, shuffle=False, sampler=sampler,
                      drop_last=n_local >= bs, num_workers=config["num_workers"], worker_init_fn=seed_worker,
                      generator=generator, pin_memory=pin_memory)


def val_loader(ds: Dataset, config: dict, dist: Dist, pin_memory: bool = False) -> DataLoader:
    if dist.enabled:
        ds = Subset(ds, list(range(dist.rank, len(ds), dist.world_size)))
    g = torch.Generator()
    g.manual_seed(config["seed"])
    return DataLoader(ds, batch_size=config["batch_size"], shuffle=False, num_workers=config["num_workers"],
                      worker_init_fn=seed_worker, generator=g, pin_memory=pin_memory)
