"""The ShapeNet dataset (3D-R2N2 renderings + 3D-LMNet point clouds) as a torch ``Dataset``.

Item (a dict; works with ``default_collate`` and DataLoader workers):

- ``"points"``    float32 ``(n_points, 3)``, canonical 3D-LMNet frame (+x down), as stored;
- ``"category"``  synset id (str); ``"model_id"`` (str); ``"key"`` ``"synset/model_id"``;
  ``"index"`` the dataset index (int);

and with images (``load_images=True``):

- ``"image"``     float32 ``(3, 128, 128)``, RGB in 0–255: the rendering cropped and composited over
  ``background`` (``None``: the stored RGB), :func:`lmnet.data.inputs.composite` (the two input
  conventions are stated there);
- ``"mask"``      float32 ``(1, 128, 128)``: alpha / 255 (the silhouette, 0..1);
- ``"view"``      int 0..23;
- ``"azimuth"``, ``"elevation"`` (degrees), ``"distance_ratio"``, ``"fov"`` (degrees): float32
  0-d tensors from ``rendering_metadata.txt``.

Views: ``"all"`` → 24 items per model; a list of ints → those views; ``"random"`` → one item per
model whose view is drawn from ``numpy.random.default_rng([seed, epoch])`` over all models at
:meth:`ShapeNetDataset.set_epoch` (call it before creating the epoch's DataLoader iterator; with
``persistent_workers=True`` workers keep the view table they were started with).

Bad files: by default a missing or corrupt file raises :class:`~lmnet.errors.CorruptFileError`
naming it when the item is loaded. With ``skip_bad=True`` everything an item needs is validated at
construction (point cloud fully read; metadata parsed; every used PNG decoded — by the image cache
build when the cache is on, otherwise directly) and bad models / views are excluded; they are listed
in ``ds.skipped`` and summarised in a warning on the ``lmnet.data`` logger.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lmnet.data import image_cache as ic
from lmnet.data import layout
from lmnet.data.inputs import composite, crop
from lmnet.data.splits import describe_split, select_keys
from lmnet.errors import ConfigError, CorruptFileError, DataError

log = logging.getLogger("lmnet.data")

META_FIELDS = ("azimuth", "elevation", "inplane", "distance_ratio", "fov")


def _parse_views(views) -> list[int] | str:
    if isinstance(views, str):
        v = views.strip().lower()
        if v in ("all", "random"):
            return v
        try:
            views = [int(x) for x in v.split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"views must be 'all', 'random' or a list of ints 0..23, got {views!r}") from None
    elif isinstance(views, (int, np.integer)):
        views = [int(views)]
    views = [int(x) for x in views]
    if not views or any(not 0 <= x < layout.N_VIEWS for x in views) or len(set(views)) != len(views):
        raise ConfigError(f"views must be 'all', 'random' or distinct ints in 0..23, got {views!r}")
    return views


class ShapeNetDataset(Dataset):
    """See the module docstring. ``ds.keys``: models in order; ``ds.categories``: synsets present;
    ``ds.skipped``: ``"<key>[ view N]: <file>: <reason>"`` for every excluded model/view."""

    def __init__(self, root, split=None, categories=None, views="all", n_points=2048,
                 load_images=True, image_cache=True, skip_bad=False, seed=0, background=255.0):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"dataset root {self.root} does not exist")
        if n_points not in layout.POINT_COUNTS:
            raise ConfigError(f"n_points must be one of {layout.POINT_COUNTS}, got {n_points!r}")
        self.n_points = int(n_points)
        self.load_images = bool(load_images)
        self.views = _parse_views(views)
        self.seed = int(seed)
        self.background = None if background is None else float(background)
        self.skip_bad = bool(skip_bad)
        self.skipped: list[str] = []
        self.epoch = 0

        keys = select_keys(self.root, split, categories, point_clouds_only=not self.load_images)
        if not keys:
            raise DataError(f"no models found under {self.root} for split={describe_split(split)} "
                            f"categories={categories!r} (none of these categories has a model there)")

        self._caches = self._open_caches(keys, image_cache) if self.load_images and image_cache else {}
        wanted_views = list(range(layout.N_VIEWS)) if isinstance(self.views, str) else self.views
        good: list[list[int]] = []
        kept: list[str] = []
        for k in keys:
            gv = self._validate(k, wanted_views) if self.skip_bad else (wanted_views if self.load_images else [])
            if gv is None or (self.load_images and not gv):
                continue
            kept.append(k)
            good.append(gv)
        if self.skipped:
            shown = "; ".join(self.skipped[:5]) + (" …" if len(self.skipped) > 5 else "")
            log.warning("ShapeNetDataset(%s): skipped %d bad model(s)/view(s): %s",
                        self.root, len(self.skipped), shown)
        if not kept:
            raise DataError(f"no usable models under {self.root}: all {len(keys)} were skipped "
                            f"(first: {self.skipped[0] if self.skipped else '-'})")

        self.keys: list[str] = kept
        self.categories: list[str] = sorted({k.split("/", 1)[0] for k in kept})
        self._good_views = good
        if not self.load_images:
            self._item_model = np.arange(len(kept), dtype=np.int64)
            self._item_view = np.full(len(kept), -1, np.int64)
        elif self.views == "random":
            self._item_model = np.arange(len(kept), dtype=np.int64)
            self.set_epoch(0)
        else:
            pairs = [(i, v) for i, gv in enumerate(good) for v in gv]
            self._item_model = np.array([p[0] for p in pairs], np.int64)
            self._item_view = np.array([p[1] for p in pairs], np.int64)

    def _open_caches(self, keys: Sequence[str], image_cache) -> dict[str, ic.ImageCache]:
        """The image cache of each synset of ``keys``, opened or built now in this process."""
        cache_root = ic.default_cache_root(self.root) if image_cache is True else Path(image_cache)
        by_synset: dict[str, list[str]] = {}
        for k in keys:
            s, m = k.split("/", 1)
            by_synset.setdefault(s, []).append(m)
        return {s: ic.open_or_build(self.root, s, ms, cache_root) for s, ms in by_synset.items()}

    # -- validation (skip_bad=True) --------------------------------------------------------------
    def _validate(self, key: str, views: Sequence[int]) -> list[int] | None:
        """The usable views of ``key`` (``[]`` without images), or None when its cloud is bad."""
        s, m = key.split("/", 1)
        try:
            layout.read_pointcloud(layout.pointcloud_path(self.root, s, m, self.n_points), self.n_points)
        except CorruptFileError as exc:
            self.skipped.append(f"{key}: {exc}")
            return None
        if not self.load_images:
            return []
        cache = self._caches.get(s)
        if cache is not None:
            err = cache.bad_meta.get(m)
            if err:
                self.skipped.append(f"{key}: {err[0]}: {err[1]}")
                return []
            ok = set(cache.good_views(m))
            for v in views:
                if v not in ok:
                    err = cache.bad_views[f"{m}/{v}"]
                    self.skipped.append(f"{key} view {v}: {err[0]}: {err[1]}")
            return [v for v in views if v in ok]
        try:
            layout.parse_metadata(layout.metadata_path(self.root, s, m))
        except CorruptFileError as exc:
            self.skipped.append(f"{key}: {exc}")
            return []
        out = []
        for v in views:
            try:
                layout.read_image(layout.image_path(self.root, s, m, v))
                out.append(v)
            except CorruptFileError as exc:
                self.skipped.append(f"{key} view {v}: {exc}")
        return out

    # -- epochs ----------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Redraw the random view of every model from ``(seed, epoch)`` (``views="random"`` only)."""
        self.epoch = int(epoch)
        if self.views != "random" or not self.load_images:
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        u = rng.random(len(self.keys))
        self._item_view = np.array([gv[int(x * len(gv))] for x, gv in zip(u, self._good_views)], np.int64)

    # -- access ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._item_model)

    def item_key(self, index: int) -> tuple[str, int]:
        """``("synset/model", view)`` of item ``index`` (view -1 without images)."""
        return self.keys[self._item_model[index]], int(self._item_view[index])

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        index %= len(self)
        key, view = self.item_key(index)
        synset, model = key.split("/", 1)
        pts = layout.read_pointcloud(layout.pointcloud_path(self.root, synset, model, self.n_points),
                                     self.n_points)
        item = {"points": torch.from_numpy(np.ascontiguousarray(pts)), "category": synset,
                "model_id": model, "key": key, "index": index}
        if not self.load_images:
            return item
        cache = self._caches.get(synset)
        if cache is not None:
            meta = cache.metadata(model)[view]
            rgba = cache.image(model, view)
        else:
            metas = layout.parse_metadata(layout.metadata_path(self.root, synset, model))
            m = metas[view]
            meta = np.array([m.azimuth, m.elevation, m.inplane, m.distance_ratio, m.fov], np.float32)
            rgba = crop(layout.read_image(layout.image_path(self.root, synset, model, view)))
        image, mask = composite(rgba, self.background)
        item.update(image=torch.from_numpy(image), mask=torch.from_numpy(mask), view=view)
        for name, value in zip(META_FIELDS, meta):
            if name != "inplane":
                item[name] = torch.tensor(float(value), dtype=torch.float32)
        return item

    def __repr__(self) -> str:
        return (f"ShapeNetDataset(root={str(self.root)!r}, models={len(self.keys)}, items={len(self)}, "
                f"categories={self.categories}, views={self.views!r}, n_points={self.n_points}, "
                f"load_images={self.load_images}, cached={bool(self._caches)}, skipped={len(self.skipped)})")
