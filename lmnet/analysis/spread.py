"""Variant II: the spread of K decoded samples per image against the viewing azimuth (the
diversity loss asks for σ ≈ α within θ of azimuth 180° and ≈ 0 elsewhere)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from lmnet.analysis.metrics import sample_spread
from lmnet.data.dataset import ShapeNetDataset
from lmnet.data.inputs import run_background
from lmnet.errors import ConfigError
from lmnet.registry import load_model
from lmnet.runs.splits import resolve_split_file


def spread_vs_azimuth(run_dir, split: str = "val", k: int = 8, max_items: int = 64, which: str = "best",
                      data_root=None, views="all", device: str = "cpu", seed: int = 0,
                      batch_size: int = 16) -> dict[str, np.ndarray]:
    """For up to ``max_items`` (shape, view) items of ``split`` (evenly spread over the split),
    draw ``k`` samples per image from a Variant II run and measure their :func:`sample_spread`.

    Returns ``{"azimuth_deg" (n,), "spread" (n,), "sigma_mean" (n,) (mean predicted σ over the
    latent), "keys" [str]}``."""
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
