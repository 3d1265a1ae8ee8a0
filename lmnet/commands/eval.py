"""Evaluate a trained image run with the 3D-LMNet protocol (SPEC §4): GT pointcloud_1024,
prediction subsampled to 1024, per-cloud bounding-box normalisation, rigid ICP onto the GT,
Chamfer (Euclidean, sum of the two mean NN distances) and exact EMD, per category ×100, plus the
mean-shape and nearest-training-shape baselines. Writes eval_<split>.csv, eval_<split>.md and
eval_<split>_pairs.csv into the run folder; a previous report there is kept, renamed with the
time it was written (eval_<split>.<YYYYmmdd-HHMMSS>.md ...).

Example:  lmnet eval --run runs/image-l1 --split test --views all
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import non_negative_int, positive_int

HELP = "evaluate a run with the paper's protocol (CD/EMD x100 per category)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="image run folder (config.json + checkpoints/)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--split-file", help="explicit split file (overrides the one resolved from the run)")
    p.add_argument("--data-root", help="dataset root (default: the run's data_root)")
    p.add_argument("--views", default="all", help="'all' (24 per shape, the paper) or indices like 0 or 0,5")
    p.add_argument("--categories", default=None, help="names or synsets, comma separated (default: the run's)")
    p.add_argument("--which", default="best", choices=("best", "last"), help="checkpoint (default best)")
    p.add_argument("--no-icp", action="store_true", help="switch ICP off (the table says so)")
    p.add_argument("--no-normalize", action="store_true", help="switch per-cloud normalisation off")
    p.add_argument("--no-emd", action="store_true", help="skip EMD (the expensive step)")
    p.add_argument("--no-baselines", action="store_true", help="only the model's rows")
    p.add_argument("--workers", type=non_negative_int, default=2, help="evaluation processes (default 2)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-items", type=non_negative_int, default=0, help="first N (shape, view) items only (0 = all)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="subsampling seed")


def run(args) -> int:
    from lmnet.eval.protocol import Protocol
    from lmnet.eval.run import evaluate_run

    proto = Protocol(seed=args.seed, normalize=not args.no_normalize, icp=not args.no_icp, emd=not args.no_emd)
    res = evaluate_run(args.run, split=args.split, views=args.views, categories=args.categories,
                       split_file=args.split_file, data_root=args.data_root, which=args.which, protocol=proto,
                       baselines=not args.no_baselines, workers=args.workers, batch_size=args.batch_size,
                       device=args.device, max_items=args.max_items)
    print(res["paths"]["md"].read_text())
    for k, v in res["paths"].items():
        print(f"{k}: {v}")
    for p in res["kept"]:
        print(f"kept the previous report as {p}")
    return 0
