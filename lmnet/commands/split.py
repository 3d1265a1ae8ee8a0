"""Write seeded per-category train/val/test lists for the models found under --root (or listed in
--models). No model id ever lands in two splits; --holdout forces a split file's models (e.g. the
official 3D-LMNet test set) into test only.
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import non_negative_int, parse_ratios

HELP = "write seeded, disjoint train/val/test split files"


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--root", help="dataset root holding ShapeNetRendering/ and/or ShapeNet_pointclouds/")
    src.add_argument("--models", help="a split file (JSON or text) listing all models to split")
    p.add_argument("--out", default="splits", help="output folder (default: splits)")
    p.add_argument("--prefix", default="lmnet", help="file name prefix (default: lmnet)")
    p.add_argument("--ratios", default="0.6,0.2,0.2", help="train,val,test proportions (default 0.6,0.2,0.2)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--categories", default="all", help="names or synset ids, comma separated")
    p.add_argument("--holdout", help="split file whose models go to test only (e.g. the official test set)")
    p.add_argument("--format", choices=("json", "txt"), default="json")


def run(args) -> int:
    from lmnet.data import layout, splits
    from lmnet.data.categories import to_synsets
    from lmnet.errors import DataError

    ratios = parse_ratios(args.ratios)
    wanted = to_synsets(args.categories)
    if args.root:
        synsets = wanted or layout.list_synsets(args.root)
        models = {s: layout.list_models(args.root, s) for s in synsets}
    else:
        listed = splits.load_split(args.models)
        models = {s: v for s, v in listed.items() if wanted is None or s in wanted}
    models = {s: m for s, m in models.items() if m}
    if not models:
        raise DataError(f"no models found ({'under ' + args.root if args.root else 'in ' + args.models})")
    holdout = splits.split_keys(splits.load_split(args.holdout)) if args.holdout else None
    result = splits.make_splits(models, ratios=ratios, seed=args.seed, holdout=holdout)
    paths = splits.write_splits(args.out, result, prefix=args.prefix, fmt=args.format)
    for name, path in paths.items():
        n = sum(len(v) for v in result[name].values())
        print(f"{name:5s} {n:6d} models -> {path}")
    return 0

