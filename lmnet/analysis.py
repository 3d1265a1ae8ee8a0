"""Analyses behind the notebooks: autoencoder reconstructions, latent interpolation, the spread of
Variant II samples against the viewing azimuth, best/worst cases of an evaluation, and tables that
compare several runs. Everything returns plain arrays / dicts / rows for
:func:`lmnet.render.grids.make_grid`, so notebooks stay a few calls per cell.

Conventions: point clouds are ``(N, 3)`` in the 3D-LMNet frame; Chamfer numbers here are the
training monitor's (symmetric, Euclidean — square-rooted NN distances — sum of the two directional
means, ×100, no ICP), not the paper protocol (that is :func:`lmnet.eval.run.evaluate_run`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from lmnet.errors import ConfigError, DataError


# ----------------------------------------------------------------------------- small metrics
def chamfer_x100(pred, gt) -> np.ndarray:
    """``pred (B, N, 3)``, ``gt (B, M, 3)`` → ``(B,)`` symmetric Euclidean Chamfer ×100 (sum of the
    two directional means of the NN distance), computed brute force (fine for a few clouds)."""
    p = torch.tensor(np.asarray(pred), dtype=torch.float32)  # a copy: inputs may be read-only views
    g = torch.tensor(np.asarray(gt), dtype=torch.float32)
    if p.dim() == 2:
        p, g = p[None], g[None]
    if p.shape[0] != g.shape[0] or p.shape[-1] != 3 or g.shape[-1] != 3:
        raise ValueError(f"chamfer_x100: expected (B, N, 3) and (B, M, 3), got {tuple(p.shape)} and {tuple(g.shape)}")
    d = torch.cdist(p, g, compute_mode="donot_use_mm_for_euclid_dist")  # exact: no matmul rounding
    return (100.0 * (d.min(2).values.mean(1) + d.min(1).values.mean(1))).numpy()


def sample_spread(samples) -> float:
    """Spread of ``K`` clouds ``(K, N, 3)`` whose points correspond (one decoder, same point index):
    the mean over points of the RMS distance of the K copies of a point to their mean. 0 for
    identical samples; in the units of the clouds (unit bounding-box diagonal)."""
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim != 3 or s.shape[-1] != 3 or s.shape[0] < 1:
        raise ValueError(f"sample_spread: expected (K, N, 3), got {s.shape}")
    dev = s - s.mean(axis=0, keepdims=True)
    return float(np.sqrt((dev ** 2).sum(-1).mean(0)).mean())


# ----------------------------------------------------------------------------- autoencoder
def _gt_points(root: Path, key: str, n_points: int) -> np.ndarray:
    from lmnet.data import layout

    s, m = key.split("/", 1)
    return layout.read_pointcloud(layout.pointcloud_path(root, s, m, n_points), n_points)


def autoencoder_rows(run_dir, data_root=None, split: str = "val", n: int = 6, which: str = "best",
                     device: str = "cpu") -> list[dict[str, Any]]:
    """Reconstruct ``n`` shapes of ``split`` ("train"/"val", from the run config, or a split-file
    path) with the autoencoder of ``run_dir``: rows ``{"category", "model_id", "gt", "prediction",
    "metrics": {"prediction": "CD×100 …"}, "cd_x100"}`` for :func:`~lmnet.render.grids.make_grid`
    (``columns=["gt", "prediction"]``, ``color_by="error"``). Shapes are taken round-robin over
    the categories so every category shows."""
    from lmnet.data.dataset import select_keys
    from lmnet.runs import load_model

    model, cfg = load_model(run_dir, which=which, device=device)
    require_kind(cfg, "autoencoder", run_dir, "autoencoder analysis")
    root = Path(data_root or cfg.get("data_root") or "data")
    split_file = split if split not in ("train", "val") else cfg.get(f"{split}_split")
    keys = select_keys(root, split_file, cfg.get("categories"), point_clouds_only=True)
    keys = round_robin(keys, n)
    npts = int(cfg.get("n_points", 2048))
    gt = np.stack([_gt_points(root, k, npts) for k in keys])
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
    from lmnet.data.dataset import select_keys
    from lmnet.data.categories import name_of
    from lmnet.eval.baselines import medoid_index
    from lmnet.runs import load_model

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
    train = np.stack([_gt_points(root, k, npts) for k in train_keys])
    train_cat = np.array([k.split("/", 1)[0] for k in train_keys])
    medoid_all = train[medoid_index(train, max_shapes=medoid_max_shapes)]
    medoid_cat = {s: train[train_cat == s][medoid_index(train[train_cat == s], max_shapes=medoid_max_shapes)]
                  for s in sorted(set(train_cat))}
    per: dict[str, dict[str, list[float]]] = {}
    for i in range(0, len(eval_keys), batch_size):
        keys = eval_keys[i:i + batch_size]
        gt = np.stack([_gt_points(root, k, npts) for k in keys])
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


def round_robin(keys: Sequence[str], n: int) -> list[str]:
    """First ``n`` of ``"synset/model"`` keys taken alternately from each synset (in sorted order)."""
    by: dict[str, list[str]] = {}
    for k in keys:
        by.setdefault(k.split("/", 1)[0], []).append(k)
    out, i = [], 0
    groups = [by[s] for s in sorted(by)]
    while len(out) < n and any(i < len(g) for g in groups):
        out += [g[i] for g in groups if i < len(g)][: n - len(out)]
        i += 1
    return out


def round_robin_rows(rows: Sequence[Mapping[str, Any]], n: int, key: str = "category") -> list:
    """First ``n`` of ``rows`` (dicts, e.g. from :func:`load_predictions`) taken alternately from each
    group of equal ``row[key]`` (groups in sorted order, rows in their order within a group)."""
    picked = round_robin([f"{r[key]}/{i}" for i, r in enumerate(rows)], n)
    return [rows[int(k.rsplit("/", 1)[1])] for k in picked]


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


# ----------------------------------------------------------------------------- Variant II
def spread_vs_azimuth(run_dir, split: str = "val", k: int = 8, max_items: int = 64, which: str = "best",
                      data_root=None, views="all", device: str = "cpu", seed: int = 0,
                      batch_size: int = 16) -> dict[str, np.ndarray]:
    """For up to ``max_items`` (shape, view) items of ``split`` (evenly spread over the split),
    draw ``k`` samples per image from a Variant II run and measure their :func:`sample_spread`.

    Returns ``{"azimuth_deg" (n,), "spread" (n,), "sigma_mean" (n,) (mean predicted σ over the
    latent), "keys" [str]}``."""
    from lmnet.data.dataset import ShapeNetDataset, run_background
    from lmnet.runs.splits import resolve_split_file
    from lmnet.runs import load_model

    model, cfg = load_model(run_dir, which=which, device=device)
    if not getattr(model, "probabilistic", False):
        raise ConfigError(f"{run_dir}: spread_vs_azimuth needs a Variant II ('probabilistic') run")
    root = Path(data_root or cfg.get("data_root") or "data")
    split_path = resolve_split_file(cfg, split) if split in ("train", "val", "test") else Path(split)
    ds = ShapeNetDataset(root, split=split_path, categories=cfg.get("categories"), views=views,
                         n_points=1024, image_cache=cfg.get("image_cache", True),
                         background=run_background(cfg))
    n = len(ds) if not max_items else min(len(ds), int(max_items))
    idx = np.unique(np.linspace(0, len(ds) - 1, n).round().astype(int))
    gen = torch.Generator(device=device).manual_seed(int(seed))
    az, spread, sig, keys = [], [], [], []
    for i in range(0, len(idx), batch_size):
        items = [ds[int(j)] for j in idx[i:i + batch_size]]
        images = torch.stack([torch.as_tensor(it["image"]) for it in items]).to(device)
        with torch.no_grad():
            _, logvar = model.encode_image(images)
            samples = model.sample(images, k, generator=gen).cpu().numpy()
        sig += torch.exp(0.5 * logvar).mean(1).cpu().tolist()
        for it, s in zip(items, samples):
            spread.append(sample_spread(s))
            az.append(float(it["azimuth"]) if "azimuth" in it else float("nan"))
            keys.append(f"{it['category']}/{it['model_id']}/{int(it['view']):02d}")
    return {"azimuth_deg": np.asarray(az), "spread": np.asarray(spread), "sigma_mean": np.asarray(sig),
            "keys": keys}


def spread_summary(result: Mapping[str, np.ndarray], theta_deg: float = 20.0) -> dict[str, float]:
    """Summarise :func:`spread_vs_azimuth`: mean spread and mean σ for the views within
    ``theta_deg`` of azimuth 180° (where ``L_div`` asks for σ ≈ α) and for the others (target ≈ 0).

    Returns ``{"items", "items_near_180", "spread_near_180", "spread_elsewhere", "spread_all",
    "sigma_near_180", "sigma_elsewhere"}`` (NaN for an empty group)."""
    az = np.asarray(result["azimuth_deg"], float)
    spread, sigma = np.asarray(result["spread"], float), np.asarray(result["sigma_mean"], float)
    near = np.abs((az - 180.0 + 180.0) % 360.0 - 180.0) <= theta_deg

    def mean(x, m):
        return float(x[m].mean()) if m.any() else math.nan

    return {"items": int(len(az)), "items_near_180": int(near.sum()),
            "spread_near_180": mean(spread, near), "spread_elsewhere": mean(spread, ~near),
            "spread_all": float(spread.mean()) if len(spread) else math.nan,
            "sigma_near_180": mean(sigma, near), "sigma_elsewhere": mean(sigma, ~near)}


def binned_mean(x, y, bins: int = 12, lo: float = 0.0, hi: float = 360.0) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``y`` in ``bins`` equal bins of ``x`` over ``[lo, hi)`` → ``(centres, means)``
    (NaN for an empty bin)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    edges = np.linspace(lo, hi, bins + 1)
    which = np.clip(np.digitize(x, edges) - 1, 0, bins - 1)
    means = np.array([y[which == b].mean() if np.any(which == b) else np.nan for b in range(bins)])
    return 0.5 * (edges[:-1] + edges[1:]), means


def plot_spread_vs_azimuth(results: Mapping[str, Mapping[str, np.ndarray]], bins: int = 12):
    """``{label: spread_vs_azimuth(...)}`` → a matplotlib Figure: points and binned means of the
    sample spread against azimuth (the diversity loss asks for the largest spread at 180°)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for label, r in results.items():
        pts = ax.scatter(r["azimuth_deg"], r["spread"], s=10, alpha=0.35)
        c, m = binned_mean(r["azimuth_deg"], r["spread"], bins)
        ax.plot(c, m, "-o", ms=3, color=pts.get_facecolor()[0][:3], label=f"{label} (mean {np.mean(r['spread']):.4f})")
    ax.axvline(180, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("azimuth of the input view (degrees)")
    ax.set_ylabel("spread of K samples")
    ax.set_xlim(0, 360)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- evaluation
def best_worst(records: Sequence[Mapping[str, Any]], n: int = 3, metric: str = "cd") -> tuple[list, list]:
    """``records`` (one method's per-pair records of :func:`~lmnet.eval.run.evaluate_run`) →
    ``(best n, worst n)`` by ``metric`` (lower is better; NaN records ignored), best first / worst first."""
    recs = [r for r in records if not math.isnan(float(r[metric]))]
    if not recs:
        raise DataError(f"best_worst: no records with a finite {metric!r}")
    recs = sorted(recs, key=lambda r: float(r[metric]))
    return recs[:n], recs[::-1][:n]


def case_rows(run_dir, records: Sequence[Mapping[str, Any]], data_root=None, which: str = "best",
              device: str = "cpu", metric: str = "cd") -> list[dict[str, Any]]:
    """Re-predict the (shape, view) pairs of ``records`` with the image run ``run_dir`` → make_grid
    rows ``{"input", "gt", "prediction", "category", "model_id", "view", "metrics"}`` (GT =
    pointcloud_1024, the evaluation's)."""
    from lmnet.data import layout
    from lmnet.data.dataset import composite, run_background
    from lmnet.data.image_cache import crop
    from lmnet.runs import load_model

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
        rows.append({"input": img, "gt": _gt_points(root, f"{s}/{m}", 1024), "prediction": pred,
                     "category": s, "model_id": m, "view": v,
                     "metrics": {"prediction": f"{metric.upper()}×100 {100 * float(r[metric]):.2f}"}})
    return rows


def compare_tables(results: Mapping[str, Mapping[str, Any]], metric: str = "cd_x100") -> list[dict[str, Any]]:
    """``{run label: evaluate_run(...) result}`` → one row per (run label, method) with the class
    mean and per-category values of ``metric``; a baseline that several runs share (same data and
    autoencoder) appears once per run so differences are visible. Columns: ``run``, ``method``,
    one per category, ``mean``."""
    rows = []
    for label, res in results.items():
        for method, table in res["tables"].items():
            row: dict[str, Any] = {"run": label, "method": method}
            for r in table:
                row[r["category"]] = r[metric]
            rows.append(row)
    return rows


def rows_to_markdown(rows: Sequence[Mapping[str, Any]], digits: int = 2) -> str:
    """Rows of dicts → a markdown table (floats with ``digits`` decimals, union of keys as columns)."""
    if not rows:
        return ""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    if "mean" in cols:  # the class mean last
        cols = [c for c in cols if c != "mean"] + ["mean"]

    def fmt(v):
        if isinstance(v, float):
            return "n/a" if math.isnan(v) else f"{v:.{digits}f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def display_markdown(text: str) -> None:
    """Show markdown in a notebook kernel; print it elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display

        if get_ipython() is not None and hasattr(get_ipython(), "kernel"):
            display(Markdown(text))
            return
    except ImportError:
        pass
    print(text)


def make_user_images(data_root, split_file, out_dir, n: int = 2, size: int = 224, view: int = 5,
                     categories=None) -> list[Path]:
    """Stand-ins for user photos: the rendering ``view`` of ``n`` shapes of ``split_file`` (one per
    category first), resized to ``size``×``size`` and padded onto a wider transparent canvas (so
    :func:`lmnet.infer.prepare_image` has to pad/resize/crop), written as PNGs into ``out_dir``.
    Returns the paths."""
    from PIL import Image

    from lmnet.data import layout
    from lmnet.data.dataset import select_keys

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
