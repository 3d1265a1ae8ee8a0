"""Inputs to look at: the (shape, view) pairs of an evaluation re-predicted for a figure, and
stand-ins for user photos made from the renderings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from lmnet.analysis.selection import round_robin
from lmnet.data import layout
from lmnet.data.splits import select_keys
from lmnet.data.inputs import composite, crop, run_background
from lmnet.registry import load_model


def case_rows(run_dir, records: Sequence[Mapping[str, Any]], data_root=None, which: str = "best",
              device: str = "cpu", metric: str = "cd") -> list[dict[str, Any]]:
    """Re-predict the (shape, view) pairs of ``records`` with the image run ``run_dir`` → make_grid
    rows ``{"input", "gt", "prediction", "category", "model_id", "view", "metrics"}`` (GT =
    pointcloud_1024, the evaluation's)."""
    model, cfg = load_model(run_dir, which=which, device=device)
    root = Path(data_root or cfg.get("data_root") or "data")
    bg = run_background(cfg)
    rows = []
    for r in records:
        s, m, v = str(r["category"]), str(r["model_id"]), int(r["view"])
        rgba = layout.read_image(layout.image_path(root, s, m, v))
        img, _ = composite(crop(rgba), bg)  # the network input, as in ShapeNetDataset
        img = np.asarray(img, dtype=np.float32)
        with torch.no_grad():
            pred = model(torch.from_numpy(img)[None].to(device))[0].cpu().numpy()
        rows.append({"input": img, "gt": layout.read_model_pointcloud(root, f"{s}/{m}", 1024), "prediction": pred,
                     "category": s, "model_id": m, "view": v,
                     "metrics": {"prediction": f"{metric.upper()}×100 {100 * float(r[metric]):.2f}"}})
    return rows


def make_user_images(data_root, split_file, out_dir, n: int = 2, size: int = 224, view: int = 5,
                     categories=None) -> list[Path]:
    """Stand-ins for user photos: the rendering ``view`` of ``n`` shapes of ``split_file`` (one per
    category first), resized to ``size``×``size`` and padded onto a wider transparent canvas (so
    :func:`lmnet.infer.prepare_image` has to pad/resize/crop), written as PNGs into ``out_dir``.
    Returns the paths."""
    keys = round_robin(select_keys(Path(data_root), split_file, categories), n)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in keys:
        s, m = k.split("/", 1)
        rgba = Image.fromarray(layout.read_image(layout.image_path(Path(data_root), s, m, view)))
        rgba = rgba.resize((size, size), Image.LANCZOS)
        canvas = Image.new("RGBA", (size + size // 4, size), (0, 0, 0, 0))
        canvas.paste(rgba, (size // 8, 0))
        p = out_dir / f"{s}_{m[:8]}_v{view:02d}.png"
        canvas.save(p)
        paths.append(p)
    return paths
