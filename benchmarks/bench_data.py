"""Data loading throughput: decoding PNGs every time vs the uint8 memmap image cache.

Writes a fake ShapeNet (R2N2-like renderings: a smooth shaded blob on a transparent background,
137×137 RGBA PNG; 2048-point clouds) into a temp folder, then measures ``ShapeNetDataset`` items/s
through a DataLoader (batch 32, shuffled) with num_workers 0 and 2, plus the one-off cache build.
Worker runs use ``persistent_workers=True`` and time the second epoch only (no start-up cost).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from lmnet.data.dataset import ShapeNetDataset

try:
    from benchmarks._common import median_time, print_result
except ImportError:  # run as a script: python benchmarks/bench_<topic>.py
    from _common import median_time, print_result

def _write_fake(root: Path, synsets: list[str], n_models: int, seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:137, :137].astype(np.float32)
    for s in synsets:
        for i in range(n_models):
            m = f"bench{i:04d}"
            rd = root / "ShapeNetRendering" / s / m / "rendering"
            rd.mkdir(parents=True)
            for v in range(24):
                cy, cx = rng.uniform(45, 92, 2)
                ry, rx = rng.uniform(20, 40, 2)
                r2 = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
                inside = r2 <= 1
                shade = np.clip(200 - 120 * r2 + rng.normal(0, 3, r2.shape), 0, 255)
                rgba = np.zeros((137, 137, 4), np.uint8)
                rgba[..., 0] = np.where(inside, shade, 0)
                rgba[..., 1] = np.where(inside, shade * 0.8, 0)
                rgba[..., 2] = np.where(inside, shade * 0.6, 0)
                rgba[..., 3] = np.where(inside, 255, 0)
                Image.fromarray(rgba, "RGBA").save(rd / f"{v:02d}.png")
            lines = [f"{rng.uniform(0, 360):.6f} {rng.uniform(25, 30):.6f} 0 {rng.uniform(0.65, 0.9):.6f} 25"
                     for _ in range(24)]
            (rd / "rendering_metadata.txt").write_text("\n".join(lines) + "\n")
            pd = root / "ShapeNet_pointclouds" / s / m
            pd.mkdir(parents=True)
            np.save(pd / "pointcloud_2048.npy", rng.uniform(-0.5, 0.5, (2048, 3)).astype(np.float32))


def _items_per_s(ds, workers: int, repeats: int) -> float:
    from torch.utils.data import DataLoader

    rates = []
    if workers:
        dl = DataLoader(ds, batch_size=32, shuffle=True, num_workers=workers, persistent_workers=True)
        for _ in dl:  # warm-up epoch: start workers
            pass
    else:
        dl = DataLoader(ds, batch_size=32, shuffle=True, num_workers=0)
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = sum(len(b["index"]) for b in dl)
        rates.append(n / (time.perf_counter() - t0))
    del dl
    return statistics.median(rates)


def run(quick: bool = False) -> dict:
    import torch


    torch.set_num_threads(1)
    synsets = ["02691156", "03001627"]
    n_models = 4 if quick else 16
    repeats = 3
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="lmnet-bench-data-") as tmp:
        root = Path(tmp) / "data"
        _write_fake(root, synsets, n_models)
        n_items = len(synsets) * n_models * 24
        builds = []
        for r in range(repeats):
            t0 = time.perf_counter()
            ShapeNetDataset(root, image_cache=Path(tmp) / f"cache{r}")  # builds the cache
            builds.append(time.perf_counter() - t0)
        rows.append({"case": f"build cache ({n_items} views)", "impl": "ours: cache build (threads)",
                     "metric": "time per view", "value": 1e6 * statistics.median(builds) / n_items,
                     "unit": "us/view"})
        cold = ShapeNetDataset(root, image_cache=False)
        warm = ShapeNetDataset(root, image_cache=Path(tmp) / "cache0")
        for workers in (0, 2):
            for impl, ds in (("png decode every time", cold), ("ours: memmap cache", warm)):
                rate = _items_per_s(ds, workers, repeats)
                case = f"{n_items} items, batch 32, num_workers={workers}"
                rows.append({"case": case, "impl": impl, "metric": "throughput", "value": rate,
                             "unit": "items/s"})
                rows.append({"case": case, "impl": impl, "metric": "time per item", "value": 1e6 / rate,
                             "unit": "us/item"})
    notes.append(f"fake R2N2-like PNGs, {len(synsets)} categories × {n_models} models × 24 views, "
                 f"n_points=2048; median of {repeats} epochs; measured on a shared, loaded machine")
    notes.append("cache on disk: 65,536 B per view (uint8 128×128×4), ~1.5 MiB per model")
    return {"topic": "data", "rows": rows, "notes": notes}


if __name__ == "__main__":
    import sys

    print_result(run(quick="--quick" in sys.argv))
