"""Write convmesh's pseudo-ground-truth with a trained mesh-estimation run: for every image of the
run's training split (never mirrored), the photograph projected into UV space where the predicted
mesh is visible, as ``OUT/pseudogt_<R>x<R>/<index>.npz`` and ``OUT/poses_metadata.npz`` in the
original formats (docs/textured.md#pseudo-ground-truth). Resumable: run the same command again
after an interruption.

Examples:
  lmnet pseudogt --run runs/meshrecon-cub --out cache/cub
  lmnet pseudogt --run runs/meshrecon-cub --out /tmp/pgt --resolution 128 --render-size 256
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import positive_int

HELP = "write convmesh's pseudo-ground-truth (UV textures from photographs) with a meshrecon run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="a meshrecon run folder (or its .pt)")
    p.add_argument("--out", required=True, help="the cache folder to write (convmesh: cache/<dataset>)")
    p.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint (default best)")
    p.add_argument("--data-root", help="dataset root (default: the run's data_root)")
    p.add_argument("--split", help="split (default: the run's train_split)")
    p.add_argument("--resolution", type=positive_int, default=512, help="stored texture side (default 512)")
    p.add_argument("--render-size", type=positive_int, default=1024, help="projection render side (default 1024)")
    p.add_argument("--image-size", type=positive_int, default=299, help="stored image side (default 299)")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    import sys

    from lmnet.infer_textured import pseudogt_from_run

    try:
        summary = pseudogt_from_run(args.run, args.out, which=args.which, data_root=args.data_root, split=args.split,
                                    resolution=args.resolution, render_size=args.render_size,
                                    image_size=args.image_size, batch_size=args.batch_size, device=args.device,
                                    progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"interrupted; run the same command again to finish {args.out}", file=sys.stderr)
        return 130
    print(f"pseudo-ground-truth of {summary['images']} images in {summary['pseudogt_dir']} "
          f"({summary['written']} written, {summary['kept']} kept), poses in {summary['poses']}")
    return 0
