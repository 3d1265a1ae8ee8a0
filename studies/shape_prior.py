"""What limits the autoencoder's shape prior (issue #27): does the point autoencoder, given the true
cloud of a shape it never saw, give that shape back, or its category's mean?

    python -m studies.shape_prior --out /tmp/lmnet-prior --tag demo_ae --epochs 60
    python -m studies.shape_prior --out /tmp/lmnet-prior --tag pool400_ep7 --pool 400 --epochs 7
    python -m studies.shape_prior --out /tmp/lmnet-prior --tag pool400_ep7_emd1 --pool 400 --epochs 7 --emd-weight 1
    python -m studies.shape_prior --out /tmp/lmnet-prior --oracle 0,200

The shapes are the demo's (``make demo``: 5 categories × 24 synthetic models, seed 0, the seeded
60/20/20 split, so 14/5/5 train/val/test per category), as point clouds only: the same clouds
:func:`lmnet.synthetic.generate_dataset` writes, without rendering (the autoencoder needs none).
``--pool N`` adds N shapes per category of :mod:`lmnet.synthetic.shape_pool` to the training set
(``extra_train_root``). The autoencoder is trained with lmnet's trainer as the demo trains it
(batch 16, Adam 1e-3, cosine, ``amp="auto"``), for ``--epochs`` epochs, with the EMD term of weight
``--emd-weight`` (:mod:`lmnet.methods.autoencoder.config`).

Measured: each of the 25 test shapes' own ``pointcloud_2048`` through the autoencoder (``last.pt``),
against its ``pointcloud_1024`` under lmnet's protocol (:func:`lmnet.eval.protocol.evaluate_pair`:
1024-point subsample, bounding-box normalisation, ICP, exact EMD); class mean ×100. Gap closed =
(B − M) / (B − F) against the demo's better input-blind baseline B (nearest training shape, CD 7.66
/ EMD 8.84) and the floor F (the shape's own ``pointcloud_2048``, CD 3.52 / EMD 3.83), the figures
issue #27 quotes for the demo.

``--oracle 0,200``: the best any prior that memorises its training shapes could do: per test shape,
the training shape of its category nearest in Chamfer (dataset frame, every 4th point) with the
14 rendered training shapes per category plus 0 or 200 pool shapes, then the same protocol.

Each measurement appends a line to ``<out>/shape_prior.jsonl`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lmnet import atomic_io
from lmnet.data import layout
from lmnet.data.categories import to_synset
from lmnet.data.splits import make_splits, write_splits
from lmnet.eval.protocol import evaluate_pair
from lmnet.losses.chamfer import chamfer_distance
from lmnet.methods.autoencoder import train_autoencoder
from lmnet.registry import load_model
from lmnet.synthetic.generator import model_id, model_pointclouds
from lmnet.synthetic.shape_pool import POOL_FIRST_INDEX, generate_shape_pool

CATEGORIES = ["chair", "table", "airplane", "car", "lamp"]
DEMO_MODELS, SEED = 24, 0
# the demo's figures quoted in issue #27 (class mean ×100): better baseline B and floor F
BASELINE = {"cd": 7.66, "emd": 8.84}
FLOOR = {"cd": 3.52, "emd": 3.83}


def demo_split_indices() -> dict[str, dict[str, list[int]]]:
    """``{split: {category: [model index, ...]}}`` of the demo's synthetic set (seeded split)."""
    models = {to_synset(c): [model_id(SEED, to_synset(c), i) for i in range(DEMO_MODELS)] for c in CATEGORIES}
    splits = make_splits(models, ratios=(0.6, 0.2, 0.2), seed=SEED)
    index = {m: i for ms in models.values() for i, m in enumerate(ms)}
    return {name: {c: sorted(index[k.split("/")[1]] for k in splits[name].get(to_synset(c), []))
                   for c in CATEGORIES} for name in ("train", "val", "test")}


def write_demo_clouds(data: Path) -> None:
    """The demo set's ``pointcloud_2048`` files and split files under ``data`` (no renders)."""
    if (data / "splits").is_dir():
        return
    models = {to_synset(c): [model_id(SEED, to_synset(c), i) for i in range(DEMO_MODELS)] for c in CATEGORIES}
    for c in CATEGORIES:
        for i in range(DEMO_MODELS):
            path = layout.pointcloud_path(data, to_synset(c), model_id(SEED, to_synset(c), i), 2048)
            atomic_io.save_npy(path, model_pointclouds(c, SEED, i)[2048])
    write_splits(data / "splits", make_splits(models, ratios=(0.6, 0.2, 0.2), seed=SEED), prefix="synthetic")


def summarise(tag: str, rows_by_category: dict[str, list[dict]], **extra) -> dict:
    """Class-mean CD / EMD ×100, gap closed, EMD/CD and the per-category means of protocol rows."""
    per = {c: [100 * float(np.mean([r[k] for r in rows])) for k in ("cd", "emd")] for c, rows in rows_by_category.items()}
    cd, emd = (float(np.mean([v[j] for v in per.values()])) for j in (0, 1))
    gap = {k: (BASELINE[k] - v) / (BASELINE[k] - FLOOR[k]) for k, v in (("cd", cd), ("emd", emd))}
    return {"tag": tag, "cd": cd, "emd": emd, "gap_closed_cd": gap["cd"], "gap_closed_emd": gap["emd"],
            "emd_over_cd": emd / cd, "per_category": per, **extra}


def test_clouds() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(category, pointcloud_2048, pointcloud_1024)`` of every demo test shape."""
    out = []
    for c, idx in demo_split_indices()["test"].items():
        for i in idx:
            pcs = model_pointclouds(c, SEED, i)
            out.append((c, pcs[2048], pcs[1024]))
    return out


def measure_autoencoder(out: Path, tag: str, pool: int, epochs: int, lr: float, emd_weight: float = 0.0) -> dict:
    """Train (or resume) the autoencoder run ``<out>/runs/<tag>`` and measure it on the test shapes."""
    data = out / "data"
    write_demo_clouds(data)
    t0 = time.perf_counter()
    pool_root = str(out / f"pool{pool}") if pool else None
    if pool_root:
        generate_shape_pool(pool_root, CATEGORIES, pool, seed=SEED)
    pool_s = time.perf_counter() - t0
    cfg = {"data_root": str(data), "train_split": str(data / "splits" / "synthetic_train_models.json"),
           "val_split": str(data / "splits" / "synthetic_val_models.json"), "categories": CATEGORIES,
           "device": "cpu", "seed": SEED, "num_workers": 0, "resume": True, "progress": False,
           "lr_schedule": "cosine", "epochs": epochs, "batch_size": 16, "lr": lr, "amp": "auto",
           "extra_train_root": pool_root, "emd_weight": emd_weight, "run_dir": str(out / "runs" / tag)}
    t0 = time.perf_counter()
    run = train_autoencoder(cfg)
    train_s = time.perf_counter() - t0
    net, _ = load_model(run, which="last")
    net.eval()
    shapes = test_clouds()
    with torch.no_grad():
        pred = net(torch.from_numpy(np.stack([s[1] for s in shapes]))).numpy()
    rows: dict[str, list[dict]] = {}
    for j, (c, _, gt1024) in enumerate(shapes):
        rows.setdefault(c, []).append(evaluate_pair(pred[j], gt1024, key=f"{tag}/{c}/{j}"))
    return summarise(tag, rows, pool=pool, epochs=epochs, lr=lr, emd_weight=emd_weight, pool_seconds=pool_s, train_seconds=train_s)


def measure_oracle(pool: int) -> dict:
    """Nearest training shape by Chamfer to each test shape (the rendered 14 per category + ``pool``)."""
    train = demo_split_indices()["train"]
    rows: dict[str, list[dict]] = {}
    for c, gt2048, gt1024 in test_clouds():
        idx = train[c] + list(range(POOL_FIRST_INDEX, POOL_FIRST_INDEX + pool))
        clouds = np.stack([model_pointclouds(c, SEED, i)[2048] for i in idx])
        query = torch.from_numpy(gt2048[::4].copy())[None].expand(len(idx), -1, -1).contiguous()
        d = chamfer_distance(query, torch.from_numpy(clouds[:, ::4].copy()), reduction="none")
        rows.setdefault(c, []).append(evaluate_pair(clouds[int(torch.argmin(d))], gt1024))
    return summarise(f"oracle_nearest_{14 + pool}_per_category", rows, pool=pool)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.shape_prior", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="work folder (clouds, pool, runs); reruns resume in it")
    p.add_argument("--tag", default=None, help="name of the autoencoder run to train and measure")
    p.add_argument("--pool", type=int, default=0, help="shape-pool shapes per category added to training")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--emd-weight", type=float, default=0.0, help="weight of the AE's EMD term (0 = Chamfer only)")
    p.add_argument("--oracle", default=None, help="comma-separated pool sizes for the nearest-shape oracle")
    a = p.parse_args(argv)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results = [measure_oracle(int(n)) for n in a.oracle.split(",")] if a.oracle else []
    if a.tag:
        results.append(measure_autoencoder(out, a.tag, a.pool, a.epochs, a.lr, a.emd_weight))
    with open(out / "shape_prior.jsonl", "a", encoding="utf-8") as f:
        for r in results:
            print(json.dumps(r))
            f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
