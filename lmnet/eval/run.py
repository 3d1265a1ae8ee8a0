"""Evaluate a trained image → point-cloud run folder with the paper's protocol, end to end.

:func:`evaluate_run` loads ``checkpoints/<which>.pt`` and ``config.json`` of an image run
(:func:`lmnet.registry.load_model`), predicts every (test shape × chosen view), evaluates each pair
with :mod:`lmnet.eval.protocol` in worker processes while the network keeps predicting, adds the
baselines of :mod:`lmnet.eval.baselines` as extra rows, and writes into the run folder
(atomically, see :mod:`lmnet.eval.report`): ``eval_<split>.csv``, ``eval_<split>.md``,
``eval_<split>_pairs.csv``. With the official protocol (:class:`lmnet.eval.official.OfficialProtocol`)
the pairs run in the released order through :mod:`lmnet.eval.official_run` and the files are
``eval_<split>_official.{csv,md}``, ``eval_<split>_official_pairs.csv`` and the released-layout
``eval_<split>_official/<category>.csv``.

Which split file is evaluated: :func:`lmnet.runs.splits.resolve_split_file`.

Baseline training shapes are the models of the config's ``train_split`` (every model on disk when it
is ``None``) **minus every model of the evaluated split**, so no baseline ever sees a test shape.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from lmnet.data import layout
from lmnet.data.categories import to_synsets
from lmnet.data.dataset import ShapeNetDataset, select_keys
from lmnet.data.inputs import run_background
from lmnet.errors import ConfigError, DataError
from lmnet.eval import baselines as bl
from lmnet.eval import official_run as orun
from lmnet.eval.official import COLUMN_TITLES as OFFICIAL_TITLES
from lmnet.eval.official import METRICS as OFFICIAL_METRICS
from lmnet.eval.official import OfficialProtocol
from lmnet.eval.parallel import PairEvaluator
from lmnet.eval.protocol import Protocol
from lmnet.eval.report import write_report
from lmnet.registry import load_model, require_kind
from lmnet.runs.predictions import check_finite
from lmnet.runs.splits import resolve_split_file

MODEL_LABEL = "model"


def _encode_training_shapes(ae, root: Path, keys: Sequence[str], n_points: int, device, batch: int = 64):
    lat = []
    for i in range(0, len(keys), batch):
        pts = np.stack([layout.read_model_pointcloud(root, k, n_points) for k in keys[i:i + batch]])
        with torch.no_grad():
            lat.append(ae.encode(torch.from_numpy(pts).to(device)).cpu())
    return torch.cat(lat).numpy()


class _CloudCache:
    """LRU of training clouds read by key (nearest-shape retrieval reuses popular shapes)."""

    def __init__(self, root: Path, n_points: int, size: int = 4096):
        self.root, self.n_points, self.size = root, n_points, size
        self._d: OrderedDict[str, np.ndarray] = OrderedDict()

    def __getitem__(self, key: str) -> np.ndarray:
        if key in self._d:
            self._d.move_to_end(key)
            return self._d[key]
        arr = layout.read_model_pointcloud(self.root, key, self.n_points)
        self._d[key] = arr
        if len(self._d) > self.size:
            self._d.popitem(last=False)
        return arr


def evaluate_run(run_dir: str | Path, split: str = "test", views: str | Sequence[int] = "all",
                 categories=None, *, split_file: str | Path | None = None, data_root: str | Path | None = None,
                 which: str = "best", protocol: Protocol | OfficialProtocol | None = None, baselines: bool = True,
                 workers: int = 2, batch_size: int = 32, device: str = "cpu", max_items: int = 0,
                 progress: bool = False, medoid_max_shapes: int = 128, plm_mean: bool = False) -> dict[str, Any]:
    """Evaluate an image run; returns ``{"tables": {method: rows}, "paths": {...}, "notes": [...],
    "n_pairs": int, "records": {method: [record, ...]}, "medoid_keys": {synset: "synset/model"}}``
    (``medoid_keys`` is empty unless the medoid fallback of the mean-shape baseline was used).

    ``views``: ``"all"`` (24 per shape, the paper) or a list such as ``[0]``; ``categories``: names
    or synsets (default: the run's categories); ``max_items``: evaluate only the first N
    (shape, view) items (0 = all) for quick checks. Table values: mean over pairs per category,
    class mean = mean of category means, ×100 (:mod:`lmnet.eval.report`).
    ``protocol``: :class:`Protocol` (lmnet's, the default) or :class:`OfficialProtocol` (the
    released computation; a Variant II model is then evaluated on one sample per image unless
    ``plm_mean``).
    """

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
        raise ConfigError(f"max_items must be a whole number >= 0 (0 = all), got {max_items!r}")
    proto = protocol or Protocol()
    run_dir = Path(run_dir)
    model, config = load_model(run_dir, which=which, device=device)
    require_kind(config, "image", run_dir, "evaluate_run")
    root = Path(data_root or config.get("data_root") or "data")
    split_path = resolve_split_file(config, split, split_file)
    cats = to_synsets(categories if categories is not None else config.get("categories"))
    ds = ShapeNetDataset(root, split=split_path, categories=cats, views=views, n_points=1024,
                         load_images=True, image_cache=config.get("image_cache", True),
                         background=run_background(config))
    n_items = len(ds) if not max_items else min(len(ds), int(max_items))
    official = isinstance(proto, OfficialProtocol)
    probabilistic = bool(getattr(model, "probabilistic", False))
    notes = [f"run: {run_dir} (checkpoint {which}); split file: {split_path}; "
             f"views: {views if isinstance(views, str) else list(views)}; {n_items} (shape, view) pairs",
             orun.prediction_note(probabilistic, plm_mean, getattr(proto, "seed", 0), official)]
    if official:
        order = orun.released_order([ds.item_key(i) for i in range(len(ds))], split_path)[:n_items]
        feed = orun.OfficialFeed(proto)
        gen = torch.Generator().manual_seed(proto.seed)
        notes.append("official pair order: categories, then models in the split file's order, then views; "
                     "the released numbers need --views all and no --max-items")
    else:
        order = list(range(n_items))

    # ---------------------------------------------------------------- baselines
    mean_shape: dict[str, np.ndarray] = {}
    mean_label = None
    medoid_keys: dict[str, str] = {}
    train_latents = train_keys = None
    cloud_cache = None
    if baselines:
        test_keys = set(ds.keys)
        tr_split = config.get("train_split")
        train_all = select_keys(root, tr_split, ds.categories, point_clouds_only=True)
        train_keys = [k for k in train_all if k not in test_keys]
        if not train_keys:
            notes.append("baselines skipped: no training shapes outside the evaluated split")
            baselines = False
    if baselines:
        ae = None
        if config.get("ae_run"):
            try:
                ae, ae_cfg = load_model(config["ae_run"], which=config.get("ae_which", "best"), device=device)
            except DataError as exc:
                notes.append(f"autoencoder run not loadable ({exc}); mean shape falls back to the medoid")
        ae_points = int(ae_cfg.get("n_points", 2048)) if ae is not None else 2048
        cloud_cache = _CloudCache(root, ae_points)
        if ae is not None:
            train_latents = _encode_training_shapes(ae, root, train_keys, ae_points, device)
            by_cat: dict[str, list[int]] = {}
            for i, k in enumerate(train_keys):
                by_cat.setdefault(k.split("/", 1)[0], []).append(i)
            mean_shape = bl.mean_latent_shapes({s: train_latents[ix] for s, ix in by_cat.items()},
                                               lambda z: model.decoder(z.to(device)))
            mean_label = bl.MEAN_LATENT_LABEL
            notes.append(f"'{bl.MEAN_LATENT_LABEL}': the frozen AE decoder applied to the mean AE latent of "
                         f"the category's {len(train_keys)} training shapes (the GT category is known: an oracle on class)")
            notes.append(f"'{bl.NEAREST_LABEL}': image latent (μ) → nearest training AE latent (Euclidean, over "
                         f"all {len(train_keys)} training shapes of the evaluated categories) → that shape's "
                         f"pointcloud_{ae_points}")
        else:
            for s in ds.categories:
                rng = np.random.default_rng([0, int(s) if s.isdigit() else 0])  # per category
                ks = [k for k in train_keys if k.startswith(s + "/")]
                if not ks:
                    continue
                if len(ks) > medoid_max_shapes:
                    ks = [ks[i] for i in np.sort(rng.choice(len(ks), medoid_max_shapes, replace=False))]
                clouds = np.stack([cloud_cache[k] for k in ks])
                j = bl.medoid_index(clouds, max_shapes=medoid_max_shapes)
                mean_shape[s] = clouds[j]
                medoid_keys[s] = ks[j]
            mean_label = bl.MEDOID_LABEL
            notes.append(f"'{bl.MEDOID_LABEL}': no autoencoder; per category the training shape with the lowest "
                         f"mean Chamfer to the others (searched over a seeded subset of <= {medoid_max_shapes}): "
                         + ", ".join(medoid_keys.values()))
            notes.append(f"'{bl.NEAREST_LABEL}' skipped: needs the autoencoder's latents")

    # ---------------------------------------------------------------- predict + evaluate (streamed)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, order), batch_size=batch_size,
                                         shuffle=False, num_workers=0)

    def submit(method: str, preds, gt_batch, batch_keys, synsets) -> None:
        if official:
            preds, gt_batch = feed.prepare(method, preds, gt_batch, synsets)
        ev.submit(preds, gt_batch, batch_keys)

    meta: list[tuple[str, str, str, int]] = []  # (method, synset, model_id, view) per submitted pair
    with PairEvaluator(proto, workers=workers, progress_total=None) as ev:
        for batch in loader:
            images = batch["image"].to(device)
            gts = batch["points"].numpy()
            preds, mu = orun.predict(model, images, plm_mean=plm_mean or not official,
                                     generator=gen if official else None)
            syn = list(batch["category"])
            mids = list(batch["model_id"])
            vws = [int(v) for v in batch["view"]]
            keys = [f"{s}/{m}/{v:02d}" for s, m, v in zip(syn, mids, vws)]
            check_finite(preds, keys, f"{run_dir} (checkpoint {which})")
            submit(MODEL_LABEL, preds, gts, keys, syn)
            meta += [(MODEL_LABEL, s, m, v) for s, m, v in zip(syn, mids, vws)]
            if baselines and mean_shape:
                sel = [i for i, s in enumerate(syn) if s in mean_shape]
                submit(mean_label, [mean_shape[syn[i]] for i in sel], gts[sel], [keys[i] for i in sel],
                       [syn[i] for i in sel])
                meta += [(mean_label, syn[i], mids[i], vws[i]) for i in sel]
            if baselines and train_latents is not None:
                idx = bl.nearest_training_shape(mu.cpu().numpy(), train_latents)
                submit(bl.NEAREST_LABEL, [cloud_cache[train_keys[j]] for j in idx], gts, keys, syn)
                meta += [(bl.NEAREST_LABEL, s, m, v) for s, m, v in zip(syn, mids, vws)]
        records = ev.results()

    by_method: dict[str, list[dict[str, Any]]] = {}
    for (method, s, m, v), rec in zip(meta, records):
        by_method.setdefault(method, []).append({"key": rec["key"], "category": s, "model_id": m, "view": v,
                                                 **{k: x for k, x in rec.items() if k != "key"}})
    if official:
        out = write_report(run_dir, f"{split}_official", by_method, protocol_line=proto.describe(), notes=notes,
                           protocol="official", metrics=OFFICIAL_METRICS, titles=OFFICIAL_TITLES,
                           title=f"Evaluation on split '{split}'")
        released = orun.write_released_csvs(run_dir, f"eval_{split}_official", by_method.get(MODEL_LABEL, []))
    else:
        out = write_report(run_dir, split, by_method, protocol_line=proto.describe(), notes=notes)
        released = {}
    return {"tables": out["tables"], "paths": {k: out[k] for k in ("csv", "md", "pairs")}, "kept": out["kept"],
            "notes": notes, "n_pairs": n_items, "records": by_method, "medoid_keys": medoid_keys,
            "released_csvs": released}
