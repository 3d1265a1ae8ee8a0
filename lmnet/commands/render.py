"""Render point clouds (.npy) or a textured mesh (.obj) to a PNG, or a turntable GIF, headlessly.

--points: one cloud without --gt → one image of --size pixels. Several clouds (or --gt, or a
(K, N, 3) sample stack, which counts as K clouds) → a labelled strip: ground truth first, then each
cloud. --colors FILE.npy gives the one cloud's own RGB per point (lmnet infer --color's
<id>.colors.npy). --color-by error colours each cloud by its per-point Euclidean distance to --gt (plasma, 0 →
--error-max, clipped). --gif writes a turntable of the first cloud instead (--out should end .gif).
Clouds are drawn in the 3D-LMNet frame (centred, unit diagonal): a cloud with no point in the view
is an error, not a blank image.

--mesh: one triangle OBJ (with its MTL and PNG texture beside it, as `lmnet` and convmesh write
them; an OBJ without `mtllib` is drawn flat grey) → one image, or with --gif a turntable, on white,
with soft shading. The mesh is centred and scaled to fill about 85 % of the picture; the file's +y
is up, and azimuth 0 looks along its -x axis: the side of a bird or a car, whose mirror plane is
x = 0. --view AZ,EL picks the view in degrees (default three_quarter = 30,20); a GIF turns from
that azimuth at that elevation.

The image format follows --out: .png, or .jpg / .jpeg (JPEG, on white). The pixels held (cells ×
size², or frames × size²) are limited by LMNET_MAX_RENDER_PIXELS.

Examples:
  lmnet render --points out/00000.pred.npy --out pred.png
  lmnet render --points pred.npy samples.npy --gt gt.npy --color-by error --view r2n2:45,25,0.8 --out cmp.png
  lmnet render --points pred.npy --gif --out pred.gif
  lmnet render --mesh results/mesh_0.obj --out bird.png
  lmnet render --mesh results/mesh_0.obj --gif --frames 48 --view 0,15 --out bird.gif
"""

from __future__ import annotations

import argparse

from lmnet.commands._args import int_in_range

HELP = "point clouds .npy or a textured mesh .obj -> PNG/JPEG or turntable GIF"
#: ``--view three_quarter`` for a mesh: azimuth, elevation in degrees
MESH_THREE_QUARTER = (30.0, 20.0)
MAX_FRAMES = 1000  #: a turntable of 80 s at the default 80 ms per frame


def add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--points", nargs="+", help="one or more .npy, (N, 3) or (K, N, 3)")
    what.add_argument("--mesh", default=None, help="a triangle .obj (textured: its .mtl and .png beside it)")
    p.add_argument("--gt", default=None, help="ground-truth .npy (N, 3); needed for --color-by error")
    p.add_argument("--color-by", choices=("height", "error", "uniform"), default=None,
                   help="point colours (default height; error needs --gt)")
    p.add_argument("--colors", default=None,
                   help="uint8 (N, 3) RGB per point of the one --points cloud (.npy: lmnet infer --color's "
                        "<id>.colors.npy); replaces --color-by")
    p.add_argument("--error-max", type=float, default=None,
                   help="distance mapped to the top of the error colour scale (default 0.05)")
    p.add_argument("--view", default="three_quarter",
                   help="three_quarter (default) or, for --points, r2n2:AZ,EL,DIST[,FOV] (degrees, distance "
                        "ratio), for --mesh, AZ,EL (degrees)")
    p.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    p.add_argument("--backend", choices=("torch", "matplotlib"), default=None,
                   help="--points: torch rasteriser (default) or the matplotlib fallback (no true occlusion)")
    p.add_argument("--transparent", action="store_true", help="transparent background (single image)")
    p.add_argument("--gif", action="store_true", help="write a turntable GIF (of the first cloud, or of the mesh)")
    p.add_argument("--frames", type=int_in_range(1, MAX_FRAMES), default=36,
                   help=f"GIF frames, 1..{MAX_FRAMES} (default 36)")
    p.add_argument("--out", required=True, help="output .png or .jpg (or .gif with --gif)")


def _load(path: str):
    import numpy as np

    from lmnet.data.layout import load_npy
    from lmnet.errors import CorruptFileError

    a = load_npy(path, "point cloud")
    if a.ndim not in (2, 3) or a.shape[-1] != 3 or a.shape[-2] == 0:
        raise CorruptFileError(path, f"expected a point cloud (N, 3) or samples (K, N, 3), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
        raise CorruptFileError(path, f"expected finite float coordinates, got dtype {a.dtype}")
    return a.astype(np.float32)


def _check_output(args):
    """``--out`` as a Path, refused before any work when its extension does not match what is written."""
    from pathlib import Path

    from lmnet.errors import ConfigError
    from lmnet.render.grids import IMAGE_FORMATS

    out = Path(args.out)
    suffix = out.suffix.lower()
    if args.gif and suffix != ".gif":
        raise ConfigError(f"--gif writes a GIF: --out should end with .gif, got {out}")
    if not args.gif and suffix not in IMAGE_FORMATS:
        raise ConfigError(f"--out {out}: the image format follows the extension; use "
                          f"{', '.join(IMAGE_FORMATS)}{' (or .gif with --gif)' if suffix == '.gif' else ''}")
    if args.transparent and IMAGE_FORMATS.get(suffix) == "JPEG":
        raise ConfigError(f"--transparent needs a PNG: JPEG ({out}) has no alpha channel")
    return out


def _check_options(args) -> float:
    """Refuse bad --size / --color-by / --view / --error-max; returns the error scale's top."""
    from lmnet.errors import ConfigError
    from lmnet.render import colors as colors_mod
    from lmnet.render import pointclouds as pc

    if args.size < 16 or args.size > 4096:
        raise ConfigError(f"--size must be in 16..4096, got {args.size}")
    if args.color_by == "error" and args.gt is None:
        raise ConfigError("--color-by error needs --gt")
    try:
        pc.resolve_view(args.view, 1)
    except ValueError as exc:
        raise ConfigError(f"--view: {exc}") from None
    error_max = colors_mod.DEFAULT_ERROR_MAX if args.error_max is None else args.error_max
    if not error_max > 0:
        raise ConfigError(f"--error-max must be > 0, got {args.error_max}")
    return error_max


def _read_clouds(args):
    """The clouds of --points (a (K, N, 3) stack counts K), their titles and sources (file, and
    ``[k]`` in a stack), and the --gt cloud."""
    from pathlib import Path

    from lmnet.errors import ConfigError

    clouds, names, sources = [], [], []
    for path in args.points:
        a = _load(path)
        stem = Path(path).name.removesuffix(".npy")
        if a.ndim == 3:
            clouds += list(a)
            names += [f"{stem}[{k}]" for k in range(len(a))]
            sources += [f"{path}[{k}]" for k in range(len(a))]
        else:
            clouds.append(a)
            names.append(stem)
            sources.append(path)
    gt = _load(args.gt) if args.gt else None
    if gt is not None and gt.ndim != 2:
        raise ConfigError(f"--gt must be one cloud (N, 3), got shape {gt.shape}")
    return clouds, names, sources, gt


def _read_colours(args, clouds, gt, alone: bool):
    """``--colors``: the one cloud's ``uint8 (N, 3)`` RGB (:func:`lmnet.mesh.load_colours`) as float32
    ``(N, 3)`` in [0, 1], the ``color_by`` of :func:`lmnet.render.pointclouds.render_cloud`; refused
    with --color-by, --gt or several clouds."""
    import numpy as np

    from lmnet.errors import ConfigError
    from lmnet.mesh import load_colours

    if not alone or gt is not None or len(clouds) != 1:
        raise ConfigError("--colors colours one --points cloud (N, 3): not with --color-by, --gt, "
                          "several clouds or a sample stack")
    return load_colours(args.colors, len(clouds[0])).astype(np.float32) / 255


def _drawn(img, name: str, args):
    """``img`` (one render, ``uint8 (H, W, 4)``) if any point was drawn, else a one-line error:
    a blank image would hide a cloud outside the frame, 1e30 coordinates or sub-pixel splats."""
    from lmnet.errors import DataError

    rgb, alpha = img[..., :3], img[..., 3]
    if not bool(((alpha > 0) & ((rgb < 255).any(-1) | (alpha < 255))).any()):
        raise DataError(f"{name}: no point is drawn in the view {args.view!r} at {args.size} px; lmnet render draws "
                        "the 3D-LMNet frame: centred at the origin, bounding-box diagonal 1 (normalise the cloud)")
    return img


def _mesh_view(text: str) -> tuple[float, float]:
    """``--view`` for a mesh: ``three_quarter`` or ``AZ,EL`` (degrees) → ``(azimuth, elevation)``."""
    import math

    from lmnet.errors import ConfigError

    if text == "three_quarter":
        return MESH_THREE_QUARTER
    try:
        az, el = (float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--view {text!r}: with --mesh, use three_quarter or AZ,EL in degrees (e.g. 30,20)") from None
    if not (math.isfinite(az) and math.isfinite(el)):
        raise ConfigError(f"--view {text!r}: the angles must be finite numbers")
    return az, el


def _check_mesh_options(args) -> tuple[float, float]:
    """Refuse the --points-only options and a bad --size / --view for --mesh; returns the view."""
    from lmnet.errors import ConfigError

    given = [name for name, value in (("--gt", args.gt), ("--color-by", args.color_by), ("--colors", args.colors),
                                      ("--error-max", args.error_max), ("--backend", args.backend),
                                      ("--transparent", args.transparent or None)) if value is not None]
    if given:
        raise ConfigError(f"{', '.join(given)}: only for --points, not with --mesh")
    if args.size < 16 or args.size > 4096:
        raise ConfigError(f"--size must be in 16..4096, got {args.size}")
    return _mesh_view(args.view)


def _run_mesh(args) -> int:
    """``--mesh``: one picture, or a turntable GIF, of the OBJ (module docstring)."""
    from lmnet.envvars import MAX_RENDER_PIXELS
    from lmnet.errors import DataError
    from lmnet.render import grids
    from lmnet.render import textured_views as tv
    from lmnet.uvmesh.obj_io import read_obj

    out = _check_output(args)
    azimuth, elevation = _check_mesh_options(args)
    n = args.frames if args.gif else 1
    MAX_RENDER_PIXELS.check(n * args.size ** 2, f"render of {n} frame(s) of {args.size}x{args.size}",
                            hint="render fewer frames or a smaller --size")
    mesh = read_obj(args.mesh)
    texture = None if mesh.texture is None else mesh.texture.transpose(2, 0, 1) / 255.0
    try:
        frames = tv.render_textured_mesh(mesh.vertices, mesh.faces, mesh.uvs, mesh.face_uvs, texture,
                                         tv.view_rotations(n, elevation, azimuth), args.size)
    except ValueError as exc:
        raise DataError(f"{args.mesh}: {exc}") from None
    if not bool((frames < 1).any()):
        raise DataError(f"{args.mesh}: no face of the mesh covers a pixel at {args.size} px (are its faces "
                        "degenerate?)")
    if args.gif:
        tv.write_gif(tv.to_uint8(frames), out)
    else:
        grids.save_image(out, tv.to_uint8(frames[0]))
    kind = "textured" if mesh.texture is not None else "untextured"
    print(f"{kind} mesh {args.mesh} ({len(mesh.faces)} faces) -> {out}" + (f" ({n} frames)" if args.gif else ""))
    return 0


def run(args) -> int:
    from pathlib import Path

    from lmnet.envvars import MAX_RENDER_PIXELS
    from lmnet.errors import DataError
    from lmnet.render import grids
    from lmnet.render import pointclouds as pc

    if args.mesh is not None:
        return _run_mesh(args)
    colours_given = args.colors is not None and args.color_by is None
    args.color_by = args.color_by or "height"
    args.backend = args.backend or "torch"
    out = _check_output(args)
    error_max = _check_options(args)
    clouds, names, sources, gt = _read_clouds(args)
    if args.colors is not None:
        args.color_by = _read_colours(args, clouds, gt, colours_given)
    n = args.frames if args.gif else len(clouds) + (gt is not None)
    what = f"{n} GIF frames" if args.gif else f"{n} image cell(s)"
    MAX_RENDER_PIXELS.check(n * args.size ** 2, f"render of {what} of {args.size}x{args.size}",
                            hint="render fewer clouds or frames or a smaller --size")
    if args.gif:
        try:
            pc.turntable_gif(clouds[0], out, n_frames=args.frames, image_size=args.size,
                             color_by=args.color_by, gt=gt, backend=args.backend)
        except ValueError as exc:
            raise DataError(f"{sources[0]}: {exc}") from None
        print(f"turntable of {names[0]} ({args.frames} frames) -> {out}")
        return 0

    kw = dict(view=args.view, image_size=args.size, backend=args.backend, error_max=error_max)
    if len(clouds) == 1 and gt is None:
        img = pc.render_cloud(clouds[0], color_by=args.color_by,
                              background=None if args.transparent else "white", **kw)[0]
        grids.save_image(out, _drawn(img, sources[0], args))
    else:
        cells, titles = [], []
        if gt is not None:
            by = "uniform" if args.color_by == "error" else args.color_by
            titles.append(f"GT: {Path(args.gt).name}")
            cells.append(grids.to_pil(_drawn(pc.render_cloud(gt, color_by=by, **kw)[0], args.gt, args)))
        for c, name, source in zip(clouds, names, sources):
            cells.append(grids.to_pil(_drawn(pc.render_cloud(c, color_by=args.color_by, gt=gt, **kw)[0], source, args)))
            titles.append(name)
        grids.save_image(out, grids.compose([cells], args.size, titles))
    print(f"{len(clouds)} cloud(s){' + GT' if gt is not None else ''} -> {out}")
    return 0
