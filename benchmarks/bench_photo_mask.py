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

Prediction (with a run): :func:`lmnet.infer.reconstruct_photo`-style inputs through
:func:`lmnet.data.inputs.frame_photo` for the JPEG on white and grey, against the RGBA render as the
dataset feeds it; Chamfer distance (the evaluation's ×100 Euclidean CD, no ICP) of each prediction to
the shape's ``pointcloud_1024``; the table gives the mean CD of both and their relative difference.

    python -m benchmarks.bench_photo_mask DATA_ROOT [RUN] [--renders N] [--out benchmarks/results/photo_mask.md]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from lmnet.data.photo_mask import NoObjectError, estimate_foreground

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


def pick_renders(data_root: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` renders of ``data_root``'s ShapeNetRendering, drawn without replacement (seeded)."""
    renders = sorted((data_root / "ShapeNetRendering").glob("*/*/rendering/*.png"))
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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_root", type=Path)
    p.add_argument("run", nargs="?", type=Path)
    p.add_argument("--renders", type=int, default=40)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    renders = pick_renders(args.data_root, args.renders)
    lines = mask_table(mask_ious(renders))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
