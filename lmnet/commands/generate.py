"""Generate textured meshes with a trained GAN run (``lmnet train meshgan``), as the original's
``main.py --save_results`` does: OUT/mesh_{0..15}.obj/.mtl/.png and OUT/samples.png, the 16 meshes
rendered under the poses of random training images (2048 × 512), plus OUT/index.csv. A
class-conditional run samples the classes of those images, or --class N for all; an unconditional
run takes no class. Layout: the lmnet.generate_textured docstring.

Examples:
  lmnet generate --run runs/gan-birds --out results/
  lmnet generate --run runs/gan-birds --class 3 --truncation 0.5 --seed 1 --out results/class3
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import non_negative_int, positive_int

HELP = "generate textured meshes with a meshgan run (OBJ/MTL/PNG + a picture of them)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="a meshgan run folder (or its .pt)")
    p.add_argument("--out", required=True, help="output folder (must be empty, see --overwrite)")
    p.add_argument("--count", type=positive_int, default=16, help="meshes (default 16)")
    p.add_argument("--class", dest="class_id", type=non_negative_int, default=None,
                   help="class of every mesh (0-based; class-conditional runs only)")
    p.add_argument("--truncation", type=float, default=None, help="noise truncation σ (default: the run's)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--which", "--which-epoch", dest="which", choices=("best", "last"), default="best",
                   help="checkpoint: best (lowest FID measured in training; the latest epoch when the run "
                        "measured none) or last")
    p.add_argument("--cache-dir", help="pseudo-GT cache with the poses (default: the run's cache_dir)")
    p.add_argument("--data-root", help="dataset root with the class labels (default: the run's data_root)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--overwrite", action="store_true", help="replace a previous output of lmnet generate")


def run(args) -> int:
    from lmnet.generate_textured import generate

    index = generate(args.run, args.out, count=args.count, class_id=args.class_id, truncation=args.truncation,
                     seed=args.seed, which=args.which, cache_dir=args.cache_dir, data_root=args.data_root,
                     device=args.device, overwrite=args.overwrite)
    print(f"wrote {index}")
    return 0
