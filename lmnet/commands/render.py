"""Render point clouds (.npy) to a PNG, or a turntable GIF, headlessly with the torch rasteriser.

One cloud without --gt → one image of --size pixels. Several clouds (or --gt, or a (K, N, 3)
sample stack, which counts as K clouds) → a labelled strip: ground truth first, then each cloud.
--color-by error colours each cloud by its per-point Euclidean distance to --gt (plasma, 0 →
--error-max, clipped). --gif writes a turntable of the first cloud instead (--out should end .gif).

Examples:
  lmnet render --points out/00000.pred.npy --out pred.png
  lmnet render --points pred.npy samples.npy --gt gt.npy --color-by error --view r2n2:45,25,0.8 --out cmp.png
  lmnet render --points pred.npy --gif --out pred.gif
"""

from __future__ import annotations

import argparse

HELP = "point clouds .npy -> PNG (z-buffered splats) or turntable GIF"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--points", nargs="+", required=True, help="one or more .npy, (N, 3) or (K, N, 3)")
    p.add_argument("--gt", default=None, help="ground-truth .npy (N, 3); needed for --color-by error")
    p.add_argument("--color-by", choices=("height", "error", "uniform"), default="height",
                   help="point colours (default height; error needs --gt)")
    p.add_argument("--error-max", type=float, default=None,
                   help="distance mapped to the top of the error colour scale (default 0.05)")
    p.add_argument("--view", default="three_quarter",
                   help="three_quarter (default) or r2n2:AZ,EL,DIST[,FOV] (degrees, distance ratio)")
    p.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    p.add_argument("--backend", choices=("torch", "matplotlib"), default="torch",
                   help="torch rasteriser (default) or the matplotlib fallback (no true occlusion)")
    p.add_argument("--transparent", action="store_true", help="transparent background (single image)")
    p.add_argument("--gif", action="store_true", help="write a turntable GIF of the first cloud")
    p.add_argument("--frames", type=int, default=36, help="GIF frames (default 36)")
    p.add_argument("--out", required=True, help="output .png (or .gif with --gif)")


def _load(path: str):
    import numpy as np

    from lmnet.errors import CorruptFileError, DataError

    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (ValueError, OSError) as exc:
        raise CorruptFileError(path, f"not a readable .npy file ({exc})") from None
    if a.ndim not in (2, 3) or a.shape[-1] != 3 or a.shape[-2] == 0:
        raise CorruptFileError(path, f"expected a point cloud (N, 3) or samples (K, N, 3), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
        raise CorruptFileError(path, f"expected finite float coordinates, got dtype {a.dtype}")
    return a.astype(np.float32)


def run(args) -> int:
    from pathlib import Path

    from lmnet.errors import ConfigError

    if args.size < 16 or args.size > 4096:
        raise ConfigError(f"--size must be in 16..4096, got {args.size}")
    if args.color_by == "error" and args.gt is None:
        raise ConfigError("--color-by error needs --gt")
    from lmnet.render import colors as colors_mod
    from lmnet.render import pointclouds as pc

    try:
        pc.resolve_view(args.view, 1)
    except ValueError as exc:
        raise ConfigError(f"--view: {exc}") from None
    error_max = colors_mod.DEFAULT_ERROR_MAX if args.error_max is None else args.error_max
    if not error_max > 0:
        raise ConfigError(f"--error-max must be > 0, got {args.error_max}")

    clouds, names = [], []
    for path in args.points:
        a = _load(path)
        stem = Path(path).name.removesuffix(".npy")
        if a.ndim == 3:
            clouds += list(a)
            names += [f"{stem}[{k}]" for k in range(len(a))]
        else:
            clouds.append(a)
            names.append(stem)
    gt = _load(args.gt) if args.gt else None
    if gt is not None and gt.ndim != 2:
        raise ConfigError(f"--gt must be one cloud (N, 3), got shape {gt.shape}")

    out = Path(args.out)
    if args.gif:
        if out.suffix.lower() != ".gif":
            raise ConfigError(f"--gif writes a GIF: --out should end with .gif, got {out}")
        pc.turntable_gif(clouds[0], out, n_frames=args.frames, image_size=args.size,
                         color_by=args.color_by, gt=gt, backend=args.backend)
        print(f"turntable of {names[0]} ({args.frames} frames) -> {out}")
        return 0

    from lmnet.render import grids

    kw = dict(view=args.view, image_size=args.size, backend=args.backend, error_max=error_max)
    if len(clouds) == 1 and gt is None:
        img = pc.render_cloud(clouds[0], color_by=args.color_by,
                              background=None if args.transparent else "white", **kw)[0]
        grids.save_png(out, img)
    else:
        cells, titles = [], []
        if gt is not None:
            by = "uniform" if args.color_by == "error" else args.color_by
            cells.append(grids.to_pil(pc.render_cloud(gt, color_by=by, **kw)[0]))
            titles.append(f"GT: {Path(args.gt).name}")
        for c, name in zip(clouds, names):
            cells.append(grids.to_pil(pc.render_cloud(c, color_by=args.color_by, gt=gt, **kw)[0]))
            titles.append(name)
        grids.save_png(out, grids.compose([cells], args.size, titles))
    print(f"{len(clouds)} cloud(s){' + GT' if gt is not None else ''} -> {out}")
    return 0
