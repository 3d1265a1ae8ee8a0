"""The meshrecon run's datasets: CUB / Pascal3D+ splits (:mod:`lmnet.data.cub`, :mod:`lmnet.data.p3d`)
with convmesh's mirror augmentation.

Training with ``mirror``: an epoch shows every image once, mirrored with probability 1/2 (convmesh
flips each image at random every epoch). The draw is ``numpy.random.default_rng([seed, epoch, 7])``,
so a resumed run sees the same images as an uninterrupted one. The item keeps its index convention
(``N + i`` = image ``i`` mirrored), which the pose offsets rely on.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset, Subset

from lmnet.data.cmr_dataset import CmrDataset
from lmnet.data.cub import CUBDataset
from lmnet.data.p3d import P3DDataset

__all__ = ["RandomMirror", "open_split", "build_datasets", "base_dataset"]

LOADERS = {"cub": CUBDataset, "p3d": P3DDataset}


class RandomMirror(Dataset):
    """``N`` items over a mirrored CMR dataset of ``2N``: item ``i`` is image ``i``, mirrored in the
    epochs whose draw says so (module docstring); call :meth:`set_epoch` before each epoch."""

    def __init__(self, dataset: CmrDataset, seed: int):
        if not dataset.mirror:
            raise ValueError("RandomMirror needs a dataset opened with mirror=True")
        self.dataset, self.seed = dataset, int(seed)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        n = self.dataset.num_images
        self.flips = np.random.default_rng([self.seed, int(epoch), 7]).random(n) < 0.5

    def __len__(self) -> int:
        return self.dataset.num_images

    def __getitem__(self, index: int) -> dict:
        return self.dataset[int(index) + self.dataset.num_images * int(self.flips[int(index)])]


def open_split(config: dict, split: str, *, mirror: bool = False, extra_sizes=()) -> CmrDataset:
    """The ``split`` of the run's dataset at its ``image_size`` (plus ``render_size`` when it differs)."""
    sizes = set(extra_sizes)
    if config["render_size"] != config["image_size"]:
        sizes.add(config["render_size"])
    return LOADERS[config["dataset"]](config["data_root"], split, image_size=config["image_size"], mirror=mirror,
                                      extra_sizes=sorted(sizes))


def _first(ds: Dataset, n: int) -> Dataset:
    return ds if not n or n >= len(ds) else Subset(ds, list(range(n)))


def build_datasets(config: dict) -> tuple[Dataset, Dataset | None]:
    """``(train, val)`` of a resolved meshrecon config; ``max_images`` keeps the first images of each."""
    train = open_split(config, config["train_split"], mirror=config["mirror"])
    if config["mirror"]:
        train = RandomMirror(train, config["seed"])
    val = None
    if config["val_split"] is not None:
        val = _first(open_split(config, config["val_split"]), config["max_images"])
    return _first(train, config["max_images"]), val


def base_dataset(ds: Dataset) -> CmrDataset:
    """The CMR dataset under any ``Subset`` / :class:`RandomMirror` wrappers."""
    while isinstance(ds, (Subset, RandomMirror)):
        ds = ds.dataset
    return ds
