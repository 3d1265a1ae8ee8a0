"""Autoencoder analyses: reconstructions of held-out shapes, the autoencoder against mean-shape
answers that ignore the input, and latent interpolation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmnet.analysis.metrics import chamfer_x100
from lmnet.analysis.selection import round_robin
from lmnet.data import layout
from lmnet.data.categories import name_of
from lmnet.data.splits import select_keys
from lmnet.errors import ConfigError, DataError
from lmnet.eval.baselines import medoid_index
from lmnet.registry import load_model, require_kind


def autoencoder_rows(run_dir, data_root=None, split: str = "val", n: int = 6, which: str = "best",
                     device: str = "cpu") -> list[dict[str, Any]]:
    """Reconstruct ``n`` shapes of ``split`` ("train"/"val", from the run config, or a split-file
    path) with the autoencoder of ``run_dir``: rows ``{"category", "model_id", "gt", "prediction",
    "metrics": {"prediction": "CD×100 …"}, "cd_x100"}`` for :func:`~lmnet.render.grids.make_grid`
    (``columns=["gt", "prediction"]``, ``color_by="error"``). Shapes are taken round-robin over
    the categories so every category shows."""
    model, cfg = load_model(run_dir, which=which, device=device)
    require_kind(cfg, "autoencoder", run_dir, "autoencoder analysis")
    root = Path(data_root or cfg.get("data_root") or "data")
    split_file = split if split not in ("train", "val") else cfg.get(f"{split}_split")
    keys = select_keys(root, split_file, cfg.get("categories"), point_clouds_only=True)
    keys = round_robin(keys, n)
    npts = int(cfg.get("n_points", 2048))
    gt = np.stack([layout.read_model_pointcloud(root, k, npts) for k in keys])
    with torch.no_grad():
        pred = model(torch.from_numpy(gt).to(device)).cpu().numpy()
    cd = chamfer_x100(pred, gt)
    return [{"category": k.split("/")[0], "model_id": k.split("/")[1], "gt": gt[i], "prediction": pred[i],
             "cd_x100": float(cd[i]), "metrics": {"prediction": f"CD×100 {cd[i]:.2f}"}}
            for i, k in enumerate(keys)]


def autoencoder_vs_mean_shape(run_dir, data_root=None, split: str = "val", which: str = "best",
                              device: str = "cpu", medoid_max_shapes: int = 128,
                              batch_size: int = 64) -> list[dict[str, Any]]:
    """Validation Chamfer ×100 (the training monitor: symmetric, Euclidean, dataset frame, no ICP)
    of the autoencoder of ``run_dir`` next to two answers that ignore the input shape:

    - ``mean_shape_all``: one *mean training shape* for every input, the medoid of all training
      shapes (the training shape with the lowest mean Chamfer to the others, see
      :func:`lmnet.eval.baselines.medoid_index`);
    - ``mean_shape_category``: the medoid of the input's own category (an oracle on class).

    Returns one row per category of ``split`` plus a ``"class mean"`` row (mean of the category
    means): ``{"category", "shapes", "autoencoder", "mean_shape_all", "mean_shape_category"}``.
    """
    model, cfg = load_model(run_dir, which=which, device=device)
    require_kind(cfg, "autoencoder", run_dir, "autoencoder analysis")
    root = Path(data_root or cfg.get("data_root") or "data")
    npts = int(cfg.get("n_points", 2048))
    split_file = split if split not in ("train", "val") else cfg.get(f"{split}_split")
    if split_file is None:
        raise ConfigError(f"{run_dir}: the run has no {split}_split; pass a split file")
    eval_keys = select_keys(root, split_file, cfg.get("categories"), point_clouds_only=True)
    train_keys = [k for k in select_keys(root, cfg.get("train_split"), cfg.get("categories"), point_clouds_only=True)
                  if k not in set(eval_keys)]
    if not eval_keys or not train_keys:
        raise DataError(f"{root}: need shapes in both the training split and {split!r} "
                        f"(found {len(train_keys)} and {len(eval_keys)})")
    train = np.stack([layout.read_model_pointcloud(root, k, npts) for k in train_keys])
    train_cat = np.array([k.split("/", 1)[0] for k in train_keys])
    medoid_all = train[medoid_index(train, max_shapes=medoid_max_shapes)]
    medoid_cat = {s: train[train_cat == s][medoid_index(train[train_cat == s], max_shapes=medoid_max_shapes)]
                  for s in sorted(set(train_cat))}
    per: dict[str, dict[str, list[float]]] = {}
    for i in range(0, len(eval_keys), batch_size):
        keys = eval_keys[i:i + batch_size]
        gt = np.stack([layout.read_model_pointcloud(root, k, npts) for k in keys])
        with torch.no_grad():
            pred = model(torch.from_numpy(gt).to(device)).cpu().numpy()
        cats = [k.split("/", 1)[0] for k in keys]
        cols = {"autoencoder": chamfer_x100(pred, gt),
                "mean_shape_all": chamfer_x100(np.broadcast_to(medoid_all, gt.shape), gt)}
        if all(c in medoid_cat for c in cats):
            cols["mean_shape_category"] = chamfer_x100(np.stack([medoid_cat[c] for c in cats]), gt)
        for j, c in enumerate(cats):
            d = per.setdefault(c, {})
            for name, v in cols.items():
                d.setdefault(name, []).append(float(v[j]))
    rows = []
    for s in sorted(per):
        row = {"category": name_of(s), "shapes": len(per[s]["autoencoder"])}
        row.update({name: float(np.mean(v)) for name, v in per[s].items()})
        rows.append(row)
    mean_row = {"category": "class mean", "shapes": sum(r["shapes"] for r in rows)}
    for name in ("autoencoder", "mean_shape_all", "mean_shape_category"):
        vals = [r[name] for r in rows if name in r]
        if len(vals) == len(rows):
            mean_row[name] = float(np.mean(vals))
    return rows + [mean_row]


def interpolate_latents(model, a, b, steps: int = 7) -> np.ndarray:
    """Decode ``steps`` evenly spaced points on the segment between the AE latents of clouds
    ``a (N, 3)`` and ``b (M, 3)`` (endpoints included) → ``(steps, 2048, 3)``."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    dev = next(model.parameters()).device
    with torch.no_grad():
        za = model.encode(torch.as_tensor(np.asarray(a), dtype=torch.float32, device=dev)[None])
        zb = model.encode(torch.as_tensor(np.asarray(b), dtype=torch.float32, device=dev)[None])
        t = torch.linspace(0.0, 1.0, steps, device=dev)[:, None]
        return model.decode((1 - t) * za + t * zb).cpu().numpy()
