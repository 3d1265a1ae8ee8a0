"""Generate a synthetic ShapeNet in the exact on-disk format of the real one: procedural chairs,
tables, airplanes, cars and lamps, 24 RGBA renders each (137x137, R2N2-like random views,
transparent background) with rendering_metadata.txt, and pointcloud_{1024,2048,16384}.npy sampled
uniformly on the same surface (3D-LMNet frame). Also writes seeded split files to
OUT/splits/synthetic_{train,val,test}_models.json: 60/20/20 per category, or ``--ratios``.

``--colors`` (shapenet format) gives each part of a shape its own colour in the renders and writes
pointcloud_{1024,2048,16384}_colors.npy (uint8 RGB per point) next to the clouds; off by default.

Deterministic for a given --seed; resumable: re-running with the same arguments skips complete models.

``--format pix3d`` writes a small synthetic Pix3D instead, in the exact released layout
(pix3d.json, img/ in JPG and PNG, mask/, model/<cat>/<shape>/model.obj, pix3d_pointclouds/):
photo-like renders of procedural chairs, sofas and tables at varied sizes and aspect ratios, some
flagged truncated or occluded. Example: lmnet synth --format pix3d --out data/pix3d_synth

``--format cub`` / ``--format p3d`` write synthetic textured birds / cars in the real CUB-200-2011
(train / testval) and Pascal3D+ (train / val) layouts that ``lmnet check-data`` and the loaders
read: UV-sphere meshes deformed by random displacement maps, coloured by class textures, rendered
under SfM-like poses over varied backgrounds, with masks, boxes, keypoints and poses; plus
OUT/truth/<split>/<index>.npz (texture, displacement, vertices, NDC pose, novel-view renders).
``--models`` is the number of train photographs (default 160), ``--val`` of the other split (default
40), ``--classes`` the number of classes (default 6, at most 8). Example:
lmnet synth --format cub --out data/cub_synth
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import int_in_range, non_negative_int, parse_ratios, positive_int

DEFAULT_CATEGORIES = "chair,table,airplane,car,lamp"
HELP = "generate a synthetic ShapeNet (renders + point clouds) in the real on-disk format"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="dataset root to write (ShapeNetRendering/, ShapeNet_pointclouds/, splits/)")
    p.add_argument("--categories", default=DEFAULT_CATEGORIES,
                   help="comma-separated names or synset ids among chair, table, airplane, car, lamp")
    p.add_argument("--format", default="shapenet", choices=("shapenet", "pix3d", "cub", "p3d"),
                   help="shapenet (default), pix3d (categories chair, sofa, table), cub (textured birds) "
                        "or p3d (textured cars)")
    p.add_argument("--models", type=positive_int, default=None,
                   help="models per category (default 40; pix3d: 2); cub / p3d: train photographs (default 160)")
    p.add_argument("--val", type=positive_int, default=40, help="cub / p3d: testval / val photographs (default 40)")
    p.add_argument("--classes", type=int_in_range(1, 8), default=6, help="cub / p3d: classes (default 6, at most 8)")
    p.add_argument("--photos", type=positive_int, default=4, help="pix3d: photographs per model (default 4)")
    p.add_argument("--ratios", default="0.6,0.2,0.2",
                   help="shapenet: train,val,test proportions of each category's models (default 0.6,0.2,0.2)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: number of CPUs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--colors", action="store_true",
                   help="shapenet: a colour per part in the renders, and pointcloud_{n}_colors.npy per model")


def _run_textured(args) -> int:
    from lmnet.synthetic.textured import generate_cmr

    s = generate_cmr(args.out, args.format, n_train=args.models or 160, n_val=args.val, n_classes=args.classes,
                     seed=args.seed, progress=not args.no_progress)
    counts = ", ".join(f"{n} {split}" for split, n in s["splits"].items())
    print(f"synthetic {args.format} in {s['out_dir']}: {counts} photographs of {s['classes']} classes "
          f"({s['generated']} generated, {s['skipped']} already complete) in {s['seconds']:.1f} s")
    return 0


def run(args) -> int:
    if args.colors and args.format != "shapenet":
        from lmnet.errors import ConfigError

        raise ConfigError(f"--colors is for --format shapenet, not {args.format}")
    if args.format in ("cub", "p3d"):
        return _run_textured(args)
    if args.format == "pix3d":
        from lmnet.synthetic.pix3d_synth import generate_pix3d

        cats = "chair,sofa,table" if args.categories == DEFAULT_CATEGORIES else args.categories
        s = generate_pix3d(args.out, categories=[c for c in cats.split(",") if c.strip()],
                           n_models=args.models or 2, n_photos=args.photos, seed=args.seed)
        print(f"synthetic Pix3D in {s['out_dir']}: {s['models']} models, {s['entries']} photographs "
              f"({s['used']} pass the paper's filter)")
        return 0
    from lmnet.data.splits import load_split
    from lmnet.synthetic import generate_dataset

    summary = generate_dataset(args.out, categories=args.categories, n_models=args.models or 40, seed=args.seed,
                               workers=args.workers, progress=not args.no_progress, colors=args.colors,
                               ratios=parse_ratios(args.ratios))
    n = sum(len(v) for v in summary["models"].values())
    print(f"{n} models in {summary['out_dir']} ({summary['generated']} generated, {summary['skipped']} "
          f"already complete) in {summary['seconds']:.1f} s")
    for name, path in summary["splits"].items():
        count = sum(len(v) for v in load_split(path).values())
        print(f"  split {name:5s} -> {path} ({count} models{': EMPTY' if not count else ''})")
    return 0
