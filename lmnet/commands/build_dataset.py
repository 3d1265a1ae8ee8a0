"""Turn a folder of your own meshes (OBJ, PLY, OFF, STL, GLB / glTF) into a dataset in the ShapeNet
layout lmnet trains on: per mesh, 24 RGBA renders (137x137, R2N2-like random views, transparent
background, the mesh's own vertex / face colours or texture, else grey) with
rendering_metadata.txt, and pointcloud_{1024,2048,16384}.npy sampled on the surface, all in the
3D-LMNet frame (centred, unit bounding-box diagonal). Also writes
OUT/splits/meshes_{train,val,test}_models.json and OUT/build_dataset.json.

Categories: each sub-folder of --meshes is a category (a mesh file anywhere below it is one model);
with --category NAME every mesh file under --meshes is a model of NAME. ShapeNet names (airplane,
chair, ...) keep their synset id, other names get a synset-like id starting with 9.

A bad mesh (unreadable, no faces, non-finite or degenerate) is named in one line and skipped.
Resumable: re-running with the same arguments skips finished models. Example:
lmnet build-dataset --meshes my_meshes --out data/mine --up z
"""

from __future__ import annotations

import argparse
import sys

from lmnet.commands._args import non_negative_int, positive_int

HELP = "build a ShapeNet-layout dataset (renders + point clouds + splits) from a folder of your meshes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--meshes", required=True, help="folder of mesh files (one sub-folder per category)")
    p.add_argument("--out", required=True,
                   help="dataset root to write (ShapeNetRendering/, ShapeNet_pointclouds/, splits/); new, empty "
                        "or an earlier build-dataset run with the same arguments")
    p.add_argument("--category", default=None,
                   help="put every mesh file under --meshes in this one category (default: sub-folders are categories)")
    p.add_argument("--up", choices=("y", "z"), default="y",
                   help="the axis that points up in the files (default y, ShapeNet's; z for CAD / Blender exports)")
    p.add_argument("--ratios", default="0.6,0.2,0.2", help="train,val,test proportions (default 0.6,0.2,0.2)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seeds views, points and splits (default 0)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="processes (default: number of CPUs); the files do not depend on it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from lmnet.data.splits import load_split
    from lmnet.errors import ConfigError
    from lmnet.synthetic.from_meshes import build_dataset

    try:
        ratios = tuple(float(x) for x in args.ratios.split(","))
    except ValueError:
        raise ConfigError(f"--ratios expects three numbers like 0.6,0.2,0.2, got {args.ratios!r}") from None
    s = build_dataset(args.meshes, args.out, category=args.category, up=args.up, seed=args.seed, ratios=ratios,
                      workers=args.workers, progress=not args.no_progress)
    n = sum(len(v) for v in s["models"].values())
    cats = ", ".join(f"{name} ({synset}: {len(s['models'][synset])})" for synset, name in sorted(s["categories"].items()))
    print(f"{n} models in {s['out_dir']} ({s['built']} built, {s['reused']} already complete) in "
          f"{s['seconds']:.1f} s; categories: {cats}")
    for name, path in s["splits"].items():
        count = sum(len(v) for v in load_split(path).values())
        print(f"  split {name:5s} -> {path} ({count} models{': EMPTY' if not count else ''})")
    if s["removed"]:
        print(f"removed {len(s['removed'])} model(s) whose file is gone or bad: {', '.join(s['removed'][:5])}"
              + (" ..." if len(s["removed"]) > 5 else ""))
    if s["bad"]:
        print(f"skipped {len(s['bad'])} bad mesh file(s):")
        for line in s["bad"]:
            print(f"  {line}")
    sys.stdout.flush()
    return 0
