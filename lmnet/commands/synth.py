"""Generate a synthetic ShapeNet in the exact on-disk format of the real one: procedural chairs,
tables, airplanes, cars and lamps, 24 RGBA renders each (137x137, R2N2-like random views,
transparent background) with rendering_metadata.txt, and pointcloud_{1024,2048,16384}.npy sampled
uniformly on the same surface (3D-LMNet frame). Also writes seeded 60/20/20 split files to
OUT/splits/synthetic_{train,val,test}_models.json.

Deterministic for a given --seed; resumable: re-running with the same arguments skips complete models.
"""

from __future__ import annotations

import argparse

HELP = "generate a synthetic ShapeNet (renders + point clouds) in the real on-disk format"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="dataset root to write (ShapeNetRendering/, ShapeNet_pointclouds/, splits/)")
    p.add_argument("--categories", default="chair,table,airplane,car,lamp",
                   help="comma-separated names or synset ids among chair, table, airplane, car, lamp")
    p.add_argument("--models", type=int, default=40, help="models per category (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="processes (default: number of CPUs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from lmnet.data.synthetic import generate_dataset

    summary = generate_dataset(args.out, categories=args.categories, n_models=args.models, seed=args.seed,
                               workers=args.workers, progress=not args.no_progress)
    n = sum(len(v) for v in summary["models"].values())
    print(f"{n} models in {summary['out_dir']} ({summary['generated']} generated, {summary['skipped']} "
          f"already complete) in {summary['seconds']:.1f} s")
    for name, path in summary["splits"].items():
        print(f"  split {name:5s} -> {path}")
    return 0
