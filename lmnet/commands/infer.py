"""Run a trained image → point-cloud network on a dataset split or on your own images and write
.npy files (input image, ground truth when known, prediction, and K samples for Variant II) plus an
index.csv. Layout: see the lmnet.infer module docstring.

With a mesh-estimation run (``lmnet train meshrecon``) and --images, each photograph becomes a
textured mesh instead: <id>.obj/.mtl, its texture <id>.png, a picture <id>.render.png, the network's
input <id>.input.png (and <id>.turntable.gif with --gif); the object's mask comes from --masks,
the photo's alpha channel or an automatic estimate (layout: the lmnet.infer_textured docstring).

A photo without alpha is cut out (--masks, else an automatic estimate; --background rembg uses the
optional rembg package) and framed as the training renders frame their object; <id>.input.png shows
what the network saw, and a photo unlike the training data gets a one-line warning.

Examples:
  lmnet infer --checkpoint runs/image-l1 --split test --views 0 --limit 50 --out preds/
  lmnet infer --checkpoint runs/image-l1 --images chair.jpg --mask chair_mask.png --out preds/
  lmnet infer --checkpoint runs/image-prob --images chair.png sofa.jpg --samples 5 --out preds/
  lmnet infer --checkpoint runs/image-l1 --images chair.png --color --format glb --out preds/
  lmnet infer --checkpoint runs/meshrecon-birds --images bird.jpg --gif --out meshes/
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import non_negative_int, positive_int

HELP = "predict point clouds for a split or image files (.npy), or textured meshes from photos (.obj)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="run folder (config.json + checkpoints/best.pt) or a .pt")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--split", choices=("train", "val", "test"), help="dataset split of the run's data_root")
    src.add_argument("--images", nargs="+", help="PNG/JPG files (any size; fed in the run's input convention)")
    p.add_argument("--split-file", help="explicit split file (overrides the one resolved from the run)")
    p.add_argument("--data-root", help="dataset root (default: the run's data_root)")
    p.add_argument("--views", default="0", help="'all' or comma-separated view indices (default 0)")
    p.add_argument("--categories", default=None, help="names or synsets, comma separated (default: the run's)")
    p.add_argument("--limit", type=non_negative_int, default=0, help="only the first N (shape, view) items (0 = all)")
    p.add_argument("--samples", type=non_negative_int, default=0, help="K samples per image (Variant II runs only)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed")
    p.add_argument("--masks", "--mask", nargs="+", dest="masks",
                   help="one object mask per image (PNG/JPG, >127 = object); default: the image's alpha, else found")
    p.add_argument("--background", choices=("auto", "rembg"), default="auto",
                   help="how a photo without alpha or mask is cut out: auto (offline estimate from the photo's "
                        "borders) or rembg (needs the optional rembg package and its model file)")
    p.add_argument("--gif", action="store_true", help="meshrecon runs: also write a turntable GIF per image")
    p.add_argument("--color", action="store_true",
                   help="colour each predicted point from the input image: <id>.colors.npy and <id>.pred.ply")
    p.add_argument("--format", choices=("ply", "glb"), default="ply",
                   help="with --color: the coloured cloud as .ply (default) or glTF binary .glb")
    p.add_argument("--out", required=True, help="output folder (must be empty, see --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the previous outputs in --out (deleted first; other files are never touched)")


def run(args) -> int:
    import sys

    try:
        return _run(args)
    except KeyboardInterrupt:  # index.csv is written last: an interrupted --out has none
        print(f"interrupted; {args.out} holds a partial result without index.csv: run again with --overwrite",
              file=sys.stderr)
        return 130


def _run(args) -> int:
    from lmnet import infer, infer_textured
    from lmnet.errors import ConfigError

    if infer_textured.run_kind(args.checkpoint) == "meshrecon":
        if not args.images:
            raise ConfigError(f"{args.checkpoint} is a mesh-estimation run: give photographs with --images")
        if args.color:
            raise ConfigError("--color is for point-cloud runs; a mesh-estimation run's meshes are textured already")
        index = infer_textured.predict_textured(args.checkpoint, args.images, args.out, masks=args.masks,
                                                device=args.device, gif=args.gif, overwrite=args.overwrite,
                                                background=args.background)
        print(f"wrote {index}")
        return 0
    if args.gif:
        raise ConfigError("--gif is for mesh-estimation (meshrecon) runs")
    if args.masks and not args.images:
        raise ConfigError("--masks goes with --images (one mask per image)")
    if args.images:
        index = infer.predict_images(args.checkpoint, args.images, args.out, samples=args.samples,
                                     batch_size=args.batch_size, device=args.device, seed=args.seed,
                                     overwrite=args.overwrite, masks=args.masks, background=args.background,
                                     color=args.color, color_format=args.format)
    else:
        index = infer.predict_split(args.checkpoint, args.out, split=args.split, split_file=args.split_file,
                                    views=args.views, categories=args.categories, samples=args.samples,
                                    batch_size=args.batch_size, device=args.device, seed=args.seed,
                                    limit=args.limit, data_root=args.data_root, overwrite=args.overwrite,
                                    color=args.color, color_format=args.format)
    print(f"wrote {index}")
    return 0
