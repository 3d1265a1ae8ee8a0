"""Multi-view items for mask-supervised training: one input view of a model plus the masks and
cameras of several views of the same model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from lmnet import projection
from lmnet.errors import ConfigError, DataError
from lmnet.data.dataset import ShapeNetDataset
from lmnet.methods.silhouette.losses import mask_distance_field
from lmnet.train.data import limit_items


class MultiViewDataset(Dataset):
    """Items of ``base`` (a :class:`~lmnet.data.dataset.ShapeNetDataset` with ``views="all"`` and
    images) regrouped per model: the input view's item plus ``n_views`` supervising views.

    ``input_views``: ``"random"`` (one item per model, its view drawn from ``(seed, epoch, index)``),
    ``None`` (every available view of every model) or a list of view indices.
    Extra keys of an item (``V = n_views``; the input view is supervising view 0):

    - ``"sup_mask"`` float32 ``(V, S, S)`` with ``S = mask_size`` (alpha, area-downsampled);
    - ``"sup_dist"`` float32 ``(V, S, S)``: :func:`~lmnet.methods.silhouette.losses.mask_distance_field` of ``sup_mask``;
    - ``"sup_azimuth"``, ``"sup_elevation"`` (degrees), ``"sup_distance_ratio"``, ``"sup_fov"``
      float32 ``(V,)``; ``"sup_view"`` int64 ``(V,)``;
    - with ``pose_images=True``: ``"sup_image"`` float32 ``(V, 3, P, P)``, ``P = pose_image_size``
      (raw 0–255 RGB, area-downsampled).

    The other ``V − 1`` views are drawn without replacement among the model's other views (with
    replacement if it has fewer), from ``numpy.random.default_rng([seed, epoch, index, 1])``.
    """

    def __init__(self, base, n_views: int = 4, input_views="random", seed: int = 0, mask_size: int = 64,
                 pose_images: bool = False, pose_image_size: int = 64):
        if n_views < 1:
            raise ConfigError(f"n_views must be >= 1, got {n_views}")
        self.base, self.n_views, self.seed = base, int(n_views), int(seed)
        self.mask_size, self.pose_images, self.pose_image_size = int(mask_size), bool(pose_images), int(pose_image_size)
        self.epoch = 0
        by_model: dict[str, dict[int, int]] = {}
        for i in range(len(base)):
            key, view = base.item_key(i)
            by_model.setdefault(key, {})[view] = i
        self.models = sorted(by_model)
        self.views_of = [by_model[k] for k in self.models]  # view -> base index, per model
        if input_views == "random":
            self.items = None
        else:
            wanted = None if input_views is None else {int(v) for v in input_views}
            self.items = [(m, v) for m, vs in enumerate(self.views_of) for v in sorted(vs)
                          if wanted is None or v in wanted]
            if not self.items:
                raise DataError(f"MultiViewDataset: no item has an input view in {sorted(wanted or [])}")
        self.input_views = input_views

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.models) if self.items is None else len(self.items)

    def _rng(self, index: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index, stream])

    def supervising_views(self, index: int) -> list[int]:
        """The ``n_views`` views of item ``index`` at the current epoch, input view first."""
        if self.items is None:
            vs = self.views_of[index]
            avail = sorted(vs)
            m, v_in = index, avail[int(self._rng(index, 0).integers(len(avail)))]
        else:
            m, v_in = self.items[index]
            avail = sorted(self.views_of[m])
        others = [v for v in avail if v != v_in]
        k = self.n_views - 1
        if k == 0:
            return [v_in]
        if not others:
            others = [v_in]
        pick = self._rng(index, 1).choice(len(others), size=k, replace=len(others) < k)
        return [v_in] + [others[int(j)] for j in pick]

    def __getitem__(self, index: int) -> dict:
        index = int(index) % len(self)
        m = index if self.items is None else self.items[index][0]
        views = self.supervising_views(index)
        sub = [self.base[self.views_of[m][v]] for v in views]
        item = dict(sub[0])
        masks = torch.stack([s["mask"] for s in sub])  # (V, 1, 128, 128)
        item["sup_mask"] = projection.mask_to_grid_resolution(masks, self.mask_size)
        item["sup_dist"] = mask_distance_field(item["sup_mask"])
        for name in ("azimuth", "elevation", "distance_ratio", "fov"):
            item[f"sup_{name}"] = torch.stack([s[name] for s in sub])
        item["sup_view"] = torch.tensor(views, dtype=torch.int64)
        if self.pose_images:
            imgs = torch.stack([s["image"] for s in sub])
            item["sup_image"] = F.adaptive_avg_pool2d(imgs, self.pose_image_size)
        return item


def build_multiview_dataset(config: dict, which: str) -> Dataset | None:
    """The ``which`` ("train" / "val") :class:`MultiViewDataset` of a resolved
    silhouette config (None for "val" without ``val_split``); ``max_<which>_items`` limits it like
    the other kinds."""
    split = config[f"{which}_split"]
    if which == "val" and split is None:
        return None
    base = ShapeNetDataset(config["data_root"], split=split, categories=config["categories"], views="all",
                           n_points=config["n_points"], load_images=True, image_cache=config["image_cache"],
                           skip_bad=config["skip_bad"], seed=config["seed"], background=config["background"])
    views = config["views"] if which == "train" else config["val_views"]
    ds = MultiViewDataset(base, n_views=config["n_views"], input_views=views, seed=config["seed"],
                          mask_size=config["silhouette_size"], pose_images=config["pose"] == "unknown",
                          pose_image_size=config["pose_image_size"])
    return limit_items(ds, config[f"max_{which}_items"], config["seed"])
