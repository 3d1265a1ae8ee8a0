"""Evaluate a trained image → point-cloud run folder on ShapeNet renderings with the paper's protocol.

:func:`evaluate_run` is :func:`lmnet.eval.runner.evaluate` on a :class:`ShapeNetSource`: it loads
``checkpoints/<which>.pt`` and ``config.json`` of an image run (:func:`lmnet.registry.load_model`),
predicts every (test shape × chosen view), evaluates each pair with :mod:`lmnet.eval.protocol` in
worker processes while the network keeps predicting, adds the baselines of
:mod:`lmnet.eval.baselines` as extra rows, and writes into the run folder (atomically, see
:mod:`lmnet.eval.report`): ``eval_<split>.csv``, ``eval_<split>.md``, ``eval_<split>_pairs.csv``.
With the official protocol (:class:`lmnet.eval.official.OfficialProtocol`) the pairs run in the
released order (:mod:`lmnet.eval.official_run`) and the files are ``eval_<split>_official.{csv,md}``,
``eval_<split>_official_pairs.csv`` and the released-layout ``eval_<split>_official/<category>.csv``.

Which split file is evaluated: :func:`lmnet.runs.splits.resolve_split_file`.

Baseline training shapes are the models of the config's ``train_split`` (every model on disk when it
is ``None``) **minus every model of the evaluated split**, so no baseline ever sees a test shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from lmnet.data import layout
from lmnet.data.categories import to_synsets
from lmnet.data.dataset import ShapeNetDataset
from lmnet.data.splits import select_keys
from lmnet.data.inputs import run_background
from lmnet.eval import official_run as orun
from lmnet.eval.baselines import TrainingShapes
from lmnet.eval.camera_frame import VIEW_FIELDS
from lmnet.eval.official import OfficialProtocol
from lmnet.eval.protocol import Protocol
from lmnet.eval.runner import FLOOR_POINTS, MODEL_LABEL, EvalOptions, Source, evaluate, floor_skip_note
from lmnet.runs.splits import resolve_split_file

__all__ = ["MODEL_LABEL", "ShapeNetSource", "evaluate_run"]


class ShapeNetSource(Source):
    """The renderings of a split: one item per (shape, view), keyed ``"synset/model/VV"``; records
    carry ``category``, ``model_id``, ``view`` and the view's ``azimuth``, ``elevation``,
    ``distance_ratio`` (``rendering_metadata.txt``). ``split``, ``views``, ``categories``, ``split_file``,
    ``data_root``: as in :func:`evaluate_run`."""

    purpose = "evaluate_run"

    def __init__(self, split: str = "test", views: str | Sequence[int] = "all", categories=None, *,
                 split_file: str | Path | None = None, data_root: str | Path | None = None):
        self.split, self.views, self.categories = split, views, categories
        self.split_file, self.data_root = split_file, data_root
        self.stem, self.title = split, f"Evaluation on split '{split}'"
        self.skip_note = ""  #: set by open() when some shape has no pointcloud_2048 (no floor, no AE ceiling)

    def open(self, config: Mapping[str, Any]) -> ShapeNetDataset:
        self.root = Path(self.data_root or config.get("data_root") or "data")
        self.split_path = resolve_split_file(config, self.split, self.split_file)
        cats = to_synsets(self.categories if self.categories is not None else config.get("categories"))
        self.ds = ShapeNetDataset(self.root, split=self.split_path, categories=cats, views=self.views, n_points=1024,
                                  load_images=True, image_cache=config.get("image_cache", True),
                                  background=run_background(config))
        paths = (layout.pointcloud_path(self.root, *k.split("/", 1), FLOOR_POINTS) for k in self.ds.keys)
        missing = [q for q in paths if not q.is_file()]
        self.skip_note = floor_skip_note(missing, len(self.ds.keys), "shapes") if missing else ""
        return self.ds

    def intro_notes(self, run: str, n_items: int) -> list[str]:
        views = self.views if isinstance(self.views, str) else list(self.views)
        return [f"run: {run}; split file: {self.split_path}; views: {views}; {n_items} (shape, view) pairs"]

    def order(self, n_items: int, official: bool) -> tuple[Sequence[int], list[str]]:
        if not official:
            return list(range(n_items)), []
        order = orun.released_order([self.ds.item_key(i) for i in range(len(self.ds))], self.split_path)[:n_items]
        return order, ["official pair order: categories, then models in the split file's order, then views; "
                       "the released numbers need --views all and no --max-items"]

    def training_shapes(self, config: Mapping[str, Any]) -> TrainingShapes:
        test_keys = set(self.ds.keys)
        train_all = select_keys(self.root, config.get("train_split"), self.ds.categories, point_clouds_only=True)
        return TrainingShapes(self.root, [k for k in train_all if k not in test_keys], list(self.ds.categories))

    def describe(self, batch: Mapping[str, Any]) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        syn = list(batch["category"])
        mids = list(batch["model_id"])
        vws = [int(v) for v in batch["view"]]
        keys = [f"{s}/{m}/{v:02d}" for s, m, v in zip(syn, mids, vws)]
        cams = zip(*(batch[k].tolist() for k in VIEW_FIELDS))  # the view's camera (Mesh R-CNN's protocols)
        return keys, syn, [{"category": s, "model_id": m, "view": v, **dict(zip(VIEW_FIELDS, c))}
                           for s, m, v, c in zip(syn, mids, vws, cams)]

    def closing_notes(self) -> list[str]:
        return [self.skip_note] if self.skip_note else []

    def own_clouds(self, batch: Mapping[str, Any], n_points: int) -> list[np.ndarray] | None:
        """``pointcloud_<n_points>.npy`` of each item's shape (:func:`lmnet.data.layout.read_model_pointcloud`);
        ``None`` when some shape of the split has no ``pointcloud_2048.npy`` (said in the notes)."""
        if self.skip_note:
            return None
        return [layout.read_model_pointcloud(self.root, f"{s}/{m}", n_points)
                for s, m in zip(batch["category"], batch["model_id"])]


def evaluate_run(run_dir: str | Path, split: str = "test", views: str | Sequence[int] = "all",
                 categories=None, *, split_file: str | Path | None = None, data_root: str | Path | None = None,
                 which: str = "best", protocol: Protocol | OfficialProtocol | None = None, baselines: bool = True,
                 workers: int = 2, batch_size: int = 32, device: str = "cpu", max_items: int = 0,
                 progress: bool = False, medoid_max_shapes: int = 128, plm_mean: bool = False) -> dict[str, Any]:
    """Evaluate an image run; returns :func:`lmnet.eval.runner.evaluate`'s ``{"tables": {method:
    rows}, "paths": {...}, "kept", "notes": [...], "n_pairs": int, "records": {method: [record,
    ...]}, "medoid_keys": {synset: "synset/model"}, "released_csvs"}`` (``medoid_keys`` is empty
    unless the medoid fallback of the mean-shape baseline was used).

    ``views``: ``"all"`` (24 per shape, the paper) or a list such as ``[0]``; ``categories``: names
    or synsets (default: the run's categories); ``max_items``: evaluate only the first N
    (shape, view) items (0 = all) for quick checks. Table values: mean over pairs per category,
    class mean = mean of category means, ×100 (:mod:`lmnet.eval.report`).
    ``protocol``: :class:`Protocol` (lmnet's, the default) or :class:`OfficialProtocol` (the
    released computation; a Variant II model is then evaluated on one sample per image unless
    ``plm_mean``) or another paper's protocol (:func:`lmnet.eval.protocols.paper_protocol`:
    ``"pix3d"``, ``"meshrcnn"``, ``"p2m"``; files ``eval_<split>_<name>.*``). The other keywords: :class:`lmnet.eval.runner.EvalOptions`; ``progress`` is
    accepted for older callers and shows nothing.
    """
    options = EvalOptions(which=which, protocol=protocol, baselines=baselines, workers=workers, batch_size=batch_size,
                          device=device, max_items=max_items, medoid_max_shapes=medoid_max_shapes, plm_mean=plm_mean)
    source = ShapeNetSource(split, views, categories, split_file=split_file, data_root=data_root)
    return evaluate(source, run_dir, options)
