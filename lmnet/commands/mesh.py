"""Turn a point cloud (.npy, (N, 3), or the first cloud of a (K, N, 3) sample stack) into a
triangle mesh: normals estimated and oriented outward, screened Poisson reconstruction,
low-density trimming, optional decimation. Needs Open3D.

Example:  lmnet mesh --points out/00000.pred.npy --out chair.ply --depth 8
"""

from __future__ import annotations

import argparse

HELP = "point cloud .npy -> Poisson mesh (.ply/.obj)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--points", required=True, help="input .npy, shape (N, 3) or (K, N, 3)")
    p.add_argument("--out", required=True, help="output mesh, .ply or .obj")
    p.add_argument("--depth", type=int, default=8, help="Poisson octree depth (default 8)")
    p.add_argument("--density-quantile", type=float, default=0.02,
                   help="drop vertices below this Poisson-density quantile (default 0.02; 0 = keep all)")
    p.add_argument("--target-triangles", type=int, default=None, help="decimate to at most this many faces")
    p.add_argument("--knn", type=int, default=30, help="neighbours for normal estimation (default 30)")


def run(args) -> int:
    from lmnet import mesh

    pts = mesh.load_points(args.points)
    v, f = mesh.points_to_mesh(pts, depth=args.depth, density_quantile=args.density_quantile,
                               target_triangles=args.target_triangles, k=args.knn)
    path = mesh.write_mesh(args.out, v, f)
    print(f"{len(v)} vertices, {len(f)} faces -> {path}")
    return 0
