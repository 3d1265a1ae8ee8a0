"""The photo front end (docs/usage.md#your-own-photo): how well the automatic mask finds the object,
and how close the prediction from a photo without alpha comes to the one from the RGBA render.

Photos are made from the R2N2-like renders of ``lmnet synth`` (137 px RGBA): each render is enlarged
×3 (Lanczos, alpha premultiplied), composited over one of four backgrounds and saved as a JPEG
(quality 90), so the photo has no alpha; the truth is the enlarged alpha > 0.5. Backgrounds:

- ``white`` (255), ``grey`` (128): plain;
- ``gradient``: a smooth two-axis colour ramp (light blue-grey to sand);
- ``noise``: textured, Gaussian-smoothed uniform colour noise (σ = 2 px) with its contrast ×6.

Mask: :func:`lmnet.data.photo_mask.estimate_foreground` on the JPEG, IoU with the truth (mean, 5th
percentile and minimum over the renders; an estimate that finds no object counts as IoU 0).

Prediction (with a run): :func:`lmnet.infer.reconstruct` of the 137 px JPEG on white and on grey
(automatic mask, framed by :func:`lmnet.data.inputs.frame_photo`) against that of the RGBA render
(fed as the dataset feeds it); Chamfer distance (the evaluation's ×100 Euclidean CD, no ICP) of each prediction to
the shape's ``pointcloud_1024``; the table gives the mean CD of both and their relative difference.

    python -m benchmarks.bench_photo_mask DATA_ROOT [RUN --split TEST_SPLIT] [--renders N] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from lmnet.data.photo_mask import NoObjectError, estimate_foreground
from lmnet.infer import reconstruct
from lmnet.losses.chamfer import chamfer_distance

BACKGROUNDS = ("white", "grey", "gradient", "noise")
SCALE = 3  #: the render is enlarged this many times to make the photo


def background(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A background ``float64 (h, w, 3)`` in [0, 1] of one of :data:`BACKGROUNDS`."""
    if kind == "white":
        return np.ones((h, w, 3))
    if kind == "grey":
        return np.full((h, w, 3), 128 / 255)
    yy, xx = np.mgrid[:h, :w] / max(h, w)
    if kind == "gradient":
        return np.stack([0.9 - 0.4 * yy, 0.85 - 0.3 * xx, 0.6 + 0.3 * yy], -1)
    noise = ndimage.gaussian_filter(rng.uniform(0, 1, (h, w, 3)), (2, 2, 0))
    return np.clip((noise - noise.mean()) * 6 + 0.5, 0, 1)


def enlarged(render: Path, scale: int = SCALE) -> np.ndarray:
    """A render's RGBA → ``float64 (137·scale, 137·scale, 4)`` in [0, 1], enlarged (premultiplied Lanczos)."""
    with Image.open(render) as im:
        big = im.convert("RGBa").resize((im.width * scale, im.height * scale), Image.LANCZOS).convert("RGBA")
    return np.asarray(big, dtype=np.float64) / 255


def photo_jpeg(rgba: np.ndarray, bg: np.ndarray, quality: int = 90) -> bytes:
    """``rgba (H, W, 4)`` over ``bg (H, W, 3)`` (both [0, 1]) → the JPEG's bytes (no alpha)."""
    a = rgba[..., 3:]
    rgb = rgba[..., :3] * a + bg * (1 - a)
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def decode(jpeg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64) / 255


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def pick_renders(data_root: Path, n: int, seed: int = 0, split: Path | None = None) -> list[Path]:
    """``n`` renders of ``data_root``'s ShapeNetRendering (of the models of the ``split`` file's
    ``{synset: ["synset/model", ...]}`` only, when given), drawn without replacement (seeded)."""
    renders = sorted((data_root / "ShapeNetRendering").glob("*/*/rendering/*.png"))
    if split is not None:
        keep = {key for keys in json.loads(split.read_text()).values() for key in keys}
        renders = [r for r in renders if f"{r.parts[-4]}/{r.parts[-3]}" in keep]
    rng = np.random.default_rng(seed)
    return [renders[i] for i in sorted(rng.choice(len(renders), min(n, len(renders)), replace=False))]


def mask_ious(renders: list[Path], seed: int = 0) -> dict[str, dict]:
    """``{background: {"iou": [...], "seconds": [...], "refused": n}}`` of the automatic mask."""
    rng = np.random.default_rng(seed)
    out = {k: {"iou": [], "seconds": [], "refused": 0} for k in BACKGROUNDS}
    for render in renders:
        rgba = enlarged(render)
        truth = rgba[..., 3] > 0.5
        for kind in BACKGROUNDS:
            rgb = decode(photo_jpeg(rgba, background(kind, *truth.shape, rng)))
            t = time.perf_counter()
            try:
                mask = estimate_foreground(rgb, str(render)) > 0.5
            except NoObjectError:
                mask = np.zeros_like(truth)
                out[kind]["refused"] += 1
            out[kind]["seconds"].append(time.perf_counter() - t)
            out[kind]["iou"].append(iou(mask, truth))
    return out


def mask_table(results: dict[str, dict]) -> list[str]:
    lines = ["| background | renders | mean IoU | 5th pct IoU | min IoU | refused | s / photo |",
             "|---|---|---|---|---|---|---|"]
    for kind, r in results.items():
        v = np.array(r["iou"])
        lines.append(f"| {kind} | {len(v)} | {v.mean():.3f} | {np.quantile(v, 0.05):.3f} | {v.min():.3f} | "
                     f"{r['refused']} | {np.mean(r['seconds']):.3f} |")
    return lines


def prediction_rows(data_root: Path, run: Path, renders: list[Path], tmp: Path) -> list[str]:
    """CD ×100 (no ICP) to ``pointcloud_1024`` of the predictions from the RGBA renders and from their
    JPEGs over white and grey (automatic mask, reframed), through :func:`lmnet.reconstruct`."""
    rng = np.random.default_rng(0)
    gts = [np.load(data_root / "ShapeNet_pointclouds" / r.parts[-4] / r.parts[-3] / "pointcloud_1024.npy")
           for r in renders]
    lines = ["| input | renders | mean CD ×100 | vs RGBA |", "|---|---|---|---|"]
    ref = None
    for kind in ("rgba", "white", "grey"):
        files = renders
        if kind != "rgba":
            files = []
            for i, r in enumerate(renders):
                rgba = np.asarray(Image.open(r).convert("RGBA"), dtype=np.float64) / 255
                files.append(tmp / f"{kind}{i}.jpg")
                files[-1].write_bytes(photo_jpeg(rgba, background(kind, 137, 137, rng)))
        preds = reconstruct(files, run)
        cd = np.mean([100 * float(chamfer_distance(torch.from_numpy(p)[None], torch.from_numpy(g)[None]))
                      for p, g in zip(preds, gts)])
        ref = cd if ref is None else ref
        lines.append(f"| {kind} | {len(files)} | {cd:.3f} | {100 * (cd - ref) / ref:+.1f} % |")
    return lines


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_root", type=Path)
    p.add_argument("run", nargs="?", type=Path)
    p.add_argument("--renders", type=int, default=40)
    p.add_argument("--out", type=Path)
    p.add_argument("--split", type=Path, help="the run's test split file: the prediction rows use its models only")
    args = p.parse_args(argv)
    renders = pick_renders(args.data_root, args.renders)
    lines = mask_table(mask_ious(renders))
    if args.run:
        with tempfile.TemporaryDirectory() as tmp:
            test = pick_renders(args.data_root, args.renders // 2, split=args.split)
            lines += [""] + prediction_rows(args.data_root, args.run, test, Path(tmp))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
