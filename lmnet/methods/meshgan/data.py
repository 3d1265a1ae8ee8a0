"""The GAN's "real" data: convmesh's pseudo-ground-truth textures and displacement maps, with class
labels and UV-space mirroring.

:class:`PseudoGTDataset` reads ``<cache_dir>/poses_metadata.npz`` (the image order) and
``<cache_dir>/pseudogt_<R>x<R>/<index>.npz`` (:mod:`lmnet.data.cmr_cache`, no pickles run) and the
labels from the dataset root:

- CUB: every image of the cache; its species ``0..199`` from ``images.txt`` and
  ``image_class_labels.txt`` (:func:`lmnet.data.cub.read_classes`);
- Pascal3D+: the ImageNet images only (``car_imagenet/…``, as the original), labelled by file name
  in ``p3d_labels.csv`` (:func:`lmnet.data.p3d.read_labels`): the shape, and the primary colour.

An item is ``{"texture" (3, R, R) in [−1, 1], "texture_alpha" (1, R, R), "mesh" (3, 32, 32), "class_id"
(K,) int64, "index"}``: ``class_id`` is ``[class]`` (CUB species, P3D shape) or ``[shape, colour]``
(``class_color``), ``index`` the item's position in the dataset.

**Mirroring** (``mirror``): in each epoch every item is mirrored with probability 1/2, the draw
``numpy.random.default_rng([seed, epoch, 11])`` (so a resumed run sees the same items). The three maps
are mirrored alike by :func:`mirror_uv`: ``out[..., j] = in[..., (W/2 − 1 − j) mod W]``, a flip of u
followed by a shift of half the width, which is what mirroring the photograph and projecting it
again gives on the symmetric template (the original's ``mirror_tex``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lmnet.data import cmr_cache
from lmnet.data.cub import read_classes
from lmnet.data.p3d import read_labels
from lmnet.errors import DataError

__all__ = ["PseudoGTDataset", "mirror_uv", "build_datasets"]

#: the number of classes of CUB (the original's fixed count; species ids are 0..199)
CUB_CLASSES = 200
P3D_IMAGENET_PREFIX = "car_imagenet/"


def mirror_uv(maps: torch.Tensor) -> torch.Tensor:
    """Mirror UV maps ``(..., H, W)`` (W even): ``out[..., j] = in[..., (W/2 − 1 − j) mod W]``. An involution."""
    width = maps.shape[-1]
    if width % 2:
        raise ValueError(f"mirror_uv needs an even width, got {width}")
    return torch.roll(torch.flip(maps, dims=(-1,)), shifts=width // 2, dims=-1)


def _cub_labels(data_root: Path, paths: list[str]) -> tuple[list[int], list[list[int]], tuple[int, ...]]:
    classes = read_classes(data_root)
    missing = [p for p in paths if p not in classes]
    if missing:
        raise DataError(f"{data_root}: {len(missing)} image(s) of the pseudo-GT cache have no class in "
                        f"CUB_200_2011/images.txt, e.g. {missing[0]!r}")
    bad = [p for p in paths if classes[p] >= CUB_CLASSES]
    if bad:
        raise DataError(f"{data_root}: image {bad[0]!r} has class {classes[bad[0]] + 1} (CUB classes are 1..200)")
    return list(range(len(paths))), [[classes[p]] for p in paths], (CUB_CLASSES,)


def _p3d_labels(data_root: Path, paths: list[str]) -> tuple[list[int], list[list[int]], tuple[int, ...]]:
    mapping, names = read_labels(data_root)
    indices = [i for i, p in enumerate(paths) if p.startswith(P3D_IMAGENET_PREFIX)]
    files = [paths[i].rsplit("/", 1)[-1] for i in indices]
    missing = [f for f in files if f not in mapping]
    if missing:
        raise DataError(f"{data_root / 'p3d_labels.csv'}: no labels for {len(missing)} ImageNet image(s) of the "
                        f"pseudo-GT cache, e.g. {missing[0]!r}")
    labels = [[int(mapping[f][0]), int(mapping[f][1])] for f in files]
    return indices, labels, (len(names["shape"]), len(names["primary"]))


class PseudoGTDataset(Dataset):
    """Pseudo-GT items of a convmesh cache (module docstring). ``resolution``: R of
    ``pseudogt_<R>x<R>``; ``conditional``: ``"class"``, ``"none"`` or ``"class_color"``."""

    def __init__(self, cache_dir: str | Path, data_root: str | Path, dataset: str = "cub", resolution: int = 512,
                 conditional: str = "class", mirror: bool = True, seed: int = 0):
        self.cache_dir, self.resolution = Path(cache_dir), int(resolution)
        self.mirror, self.seed = bool(mirror), int(seed)
        poses_path = self.cache_dir / cmr_cache.POSES_FILE
        if not poses_path.is_file():
            raise DataError(f"{poses_path}: no such file (write the pseudo-GT cache with: "
                            f"lmnet pseudogt --run RUN --out {cache_dir})")
        paths = cmr_cache.read_poses_metadata(poses_path)["path"]
        read = _cub_labels if dataset == "cub" else _p3d_labels
        self.image_indices, labels, num_classes = read(Path(data_root), paths)
        width = 2 if conditional == "class_color" else 1
        self.class_ids = [torch.tensor(lab[:width], dtype=torch.int64) for lab in labels]
        self.num_classes = num_classes[:width]
        self.files = [cmr_cache.pseudogt_path(self.cache_dir, self.resolution, i) for i in self.image_indices]
        missing = [f for f in self.files if not f.is_file()]
        if missing:
            raise DataError(f"{cmr_cache.pseudogt_dir(self.cache_dir, self.resolution)}: {len(missing)} of "
                            f"{len(self.files)} pseudo-GT files missing, e.g. {missing[0].name} (write them at "
                            f"texture resolution {self.resolution}: lmnet pseudogt --resolution {self.resolution})")
        if not self.files:
            raise DataError(f"{poses_path}: no image to train on")
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw which items epoch ``epoch`` mirrors (module docstring)."""
        self.flips = np.random.default_rng([self.seed, int(epoch), 11]).random(len(self.files)) < 0.5

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        path = self.files[index]
        data = cmr_cache.read_pseudogt(path)
        texture, alpha, mesh = data["texture"].float(), data["texture_alpha"].float(), data["mesh"]
        if texture.shape[1] != self.resolution or mesh.shape[1:] != (32, 32):
            raise DataError(f"{path}: texture {tuple(texture.shape)} and mesh {tuple(mesh.shape)}; expected "
                            f"(3, {self.resolution}, {self.resolution}) and (3, 32, 32)")
        if self.mirror and self.flips[index]:
            texture, alpha, mesh = mirror_uv(texture), mirror_uv(alpha), mirror_uv(mesh)
        return {"texture": texture, "texture_alpha": alpha, "mesh": mesh, "class_id": self.class_ids[index],
                "index": index}


def build_datasets(config: dict) -> tuple[Dataset, None]:
    """``(train, None)`` of a resolved meshgan config (a GAN has no validation set here);
    ``max_images`` keeps the first items."""
    ds = PseudoGTDataset(config["cache_dir"], config["data_root"], config["dataset"], config["texture_resolution"],
                         config["conditional"], config["mirror"], config["seed"])
    n = config["max_images"]
    return (ds if not n or n >= len(ds) else torch.utils.data.Subset(ds, list(range(n)))), None
