"""The torch Dataset shared by the CUB-200-2011 and Pascal3D+ loaders (:mod:`lmnet.data.cub`,
:mod:`lmnet.data.p3d`): a checked CMR split (:mod:`lmnet.data.cmr`) whose items are prepared by
:func:`lmnet.data.cmr_item.prepare`.

**Index convention** (convmesh's per-image pose offsets ``DatasetParams`` rely on it): a split of N
images has N items, or 2N with ``mirror=True``; item ``i < N`` is image ``i`` as stored, item
``N + i`` is image ``i`` mirrored. ``item["index"]`` is that item number, so an item's learnable
pose offset is row ``index`` of a 2N-row table. (convmesh mirrors at random each epoch; here every
epoch sees both, deterministically.)

An item (all tensors float32 unless said):

| key | shape | content |
|---|---|---|
| ``image`` | (3, S, S) | ``(rgb · 2 − 1) · mask``: in [−1, 1], background 0 (the network input) |
| ``mask`` | (1, S, S) | bilinear mask in [0, 1] (``> 0.5`` for IoU) |
| ``keypoints`` | (K, 3) | NDC x, y (right, down) and visibility; hidden keypoints are 0 |
| ``scale`` | (1,) | weak-perspective scale in NDC |
| ``translation`` | (2,) | NDC tx, ty (convmesh appends z = 0) |
| ``rotation`` | (4,) | quaternion (w, x, y, z) of the SfM rotation |
| ``class_id`` | int | dataset class (CUB: species 0..199; Pascal3D+: shape label or −1) |
| ``index`` | int | the item number (above) |
| ``mirrored`` | bool | ``index >= N`` |
| ``path`` | str | the image's ``rel_path`` with ``/`` |
| ``image_<R>``, ``mask_<R>`` | (3, R, R), (1, R, R) | the same crop at each of ``extra_sizes`` |

Every ``rel_path`` is resolved inside the images folder when the split is opened
(:func:`lmnet.data.paths.resolve_inside`), so a path that escapes it is refused before any item is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lmnet.data import cmr, cmr_item
from lmnet.data.paths import resolve_inside
from lmnet.errors import ConfigError


def check_size(name: str, value) -> int:
    """A positive whole image size, else :class:`ConfigError` naming the option."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a whole number of pixels >= 1, got {value!r}")
    return int(value)


class CmrDataset(torch.utils.data.Dataset):
    """A checked CMR split: ``anno_path`` / ``sfm_path`` (:mod:`lmnet.data.cmr`), photographs under
    ``images_dir``, the 0-based keypoint mirror permutation ``perm`` and the class of each entry
    (``class_ids``, computed by the subclass from ``self.paths``). Item layout: module docstring."""

    backslashes = False   #: rel_paths use ``\\`` (Pascal3D+)

    def __init__(self, images_dir: str | Path, anno_path: str | Path, sfm_path: str | Path, perm: np.ndarray,
                 image_size: int = 256, mirror: bool = False, extra_sizes: Sequence[int] = ()):
        self.image_size = check_size("image_size", image_size)
        self.extra_sizes = tuple(check_size("extra_sizes", s) for s in extra_sizes)
        self.mirror = bool(mirror)
        self.images_dir, self.anno_path, self.sfm_path = Path(images_dir), Path(anno_path), Path(sfm_path)
        self.perm = np.asarray(perm, np.int64)
        self.annotations = cmr.read_annotations(self.anno_path, len(self.perm))
        self.poses = cmr.read_sfm(self.sfm_path)
        cmr.check_counts(self.anno_path, len(self.annotations), self.sfm_path, len(self.poses))
        self.files = [resolve_inside(self.images_dir, a.rel_path, source=self.anno_path,
                                     field=f"{cmr.ANNOTATION_VAR}[{i}].rel_path", backslashes=self.backslashes)
                      for i, a in enumerate(self.annotations)]
        #: the rel_paths with ``/`` (convmesh's ``get_paths``), as ``poses_metadata.npz`` stores them
        self.paths = [a.rel_path.replace("\\", "/") for a in self.annotations]
        self.class_ids = [-1] * len(self.paths)

    @property
    def num_images(self) -> int:
        return len(self.annotations)

    def __len__(self) -> int:
        return self.num_images * (2 if self.mirror else 1)

    def item_extras(self, image_index: int) -> dict:
        """Dataset-specific entries of an item (the subclass adds e.g. Pascal3D+'s ``labels``)."""
        return {}

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} of a dataset of {len(self)} items")
        n = self.num_images
        i, mirrored = index % n, index >= n
        anno = self.annotations[i]
        photo = cmr_item.read_photo(self.files[i], anno.mask.shape)
        sizes = (self.image_size, *self.extra_sizes)
        prepared = cmr_item.prepare(photo, anno, self.poses[i], sizes, mirrored, self.perm)
        item = {k: torch.from_numpy(prepared[k]) for k in
                ("image", "mask", "keypoints", "scale", "translation", "rotation")}
        for size, (img, mask) in prepared["extra"].items():
            item[f"image_{size}"], item[f"mask_{size}"] = torch.from_numpy(img), torch.from_numpy(mask)
        item.update(class_id=int(self.class_ids[i]), index=index, mirrored=mirrored, path=self.paths[i])
        item.update(self.item_extras(i))
        return item
