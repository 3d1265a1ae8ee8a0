"""Turn a point cloud (.npy, (N, 3), or one cloud of a (K, N, 3) sample stack chosen with
--sample) into a triangle mesh that follows the shape: isolated outliers removed, then ball
pivoting, trimmed screened Poisson or an alpha shape (--method auto tries all three and keeps the
one that fits the cloud best). Prints the fit: the Chamfer distance x100 between 16,384 points
sampled on the mesh and the input cloud. Needs Open3D.

For rough (predicted) clouds --method poisson measured closer to the true shape than auto
(benchmarks/results/mesh.md): the fit measures closeness to the cloud, noise included.

With --colors (the <id>.colors.npy of lmnet infer --color) each mesh vertex takes the colour of its
nearest point and the mesh is written with vertex colours, as .ply or glTF binary .glb (--out x.glb,
which any viewer opens; without --colors a .glb mesh is grey).

Example:  lmnet mesh --points out/00000.pred.npy --out chair.ply
          lmnet mesh --points out/000000.pred.npy --colors out/000000.colors.npy --out chair.glb
          lmnet mesh --points out/00000.samples.npy --sample 2 --method poisson --out chair2.obj
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import int_in_range

HELP = "point cloud .npy -> mesh (.ply/.obj/.glb, vertex colours with --colors) that follows the shape, with its fit"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from lmnet.mesh.fit import METHODS
    from lmnet.mesh.methods import KNN_RANGE

    p.add_argument("--points", required=True, help="input .npy, shape (N, 3) or (K, N, 3) with --sample")
    p.add_argument("--out", required=True, help="output mesh, .ply, .obj or .glb (glTF binary)")
    p.add_argument("--colors", default=None,
                   help="uint8 (N, 3) .npy of point colours (lmnet infer --color): vertex colours (.ply / .glb)")
    p.add_argument("--sample", type=int, default=None, help="which cloud of a (K, N, 3) stack to mesh")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="bpa (ball pivoting), poisson (screened Poisson, distance-trimmed), alpha (alpha "
                        "shape), or auto: all three, keep the lowest fit (default)")
    p.add_argument("--keep-outliers", action="store_true", help="mesh every point (no radius outlier removal)")
    p.add_argument("--depth", type=int, default=8, help="Poisson octree depth (default 8)")
    p.add_argument("--trim", type=float, default=2.0,
                   help="Poisson: drop mesh vertices farther than this many point spacings from every "
                        "point (default 2; 0 = closed surface)")
    p.add_argument("--density-quantile", type=float, default=0.0,
                   help="Poisson: also drop vertices below this density quantile (default 0)")
    p.add_argument("--target-triangles", type=int, default=None, help="decimate to at most this many faces")
    p.add_argument("--knn", type=int_in_range(*KNN_RANGE), default=30,
                   help=f"neighbours for normal estimation, {KNN_RANGE[0]}..{KNN_RANGE[1]} (default 30)")


def run(args) -> int:
    from lmnet import mesh
    from lmnet.errors import LmnetError
    from lmnet.mesh.io import CLI_MESH_SUFFIXES

    out = mesh.check_mesh_path(args.out, CLI_MESH_SUFFIXES)  # a wrong suffix fails before any work
    pts = mesh.load_points(args.points, sample=args.sample)
    colours = None if args.colors is None else mesh.load_colours(args.colors, len(pts))
    if colours is not None and out.suffix.lower() == ".obj":
        raise LmnetError(f"{out}: .obj has no vertex colours; write .ply or .glb with --colors")
    res = mesh.reconstruct(pts, args.method, clean=not args.keep_outliers, depth=args.depth,
                           trim=args.trim or None, density_quantile=args.density_quantile,
                           target_triangles=args.target_triangles, k=args.knn, name=str(args.points))
    if colours is not None or out.suffix.lower() == ".glb":
        vcol = None if colours is None else mesh.vertex_colours(res.vertices, pts, colours)
        path = mesh.write_coloured_mesh(out, res.vertices, res.faces, vcol)
    else:
        path = mesh.write_mesh(out, res.vertices, res.faces)
    print(res.summary())
    print(f"{len(res.vertices)} vertices, {len(res.faces)} faces -> {path}")
    return 0
