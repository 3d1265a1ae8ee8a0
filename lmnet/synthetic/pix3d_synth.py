"""Write a small synthetic Pix3D in the exact released layout (see :mod:`lmnet.data.pix3d`), so the
real-photo evaluation path runs and is tested offline.

Per category (chair, sofa, table) ``n_models`` procedural shapes — chairs and tables from
:mod:`.shapes`, sofas from :func:`sofa` here — each written as ``model/<cat>/<shape>/model.obj`` in
Pix3D's model frame (y up, unit bbox diagonal; the same frame as ShapeNet v1, which
:func:`lmnet.data.pix3d.to_lmnet_frame` maps into 3D-LMNet's) with its official-style
``pix3d_pointclouds/<cat>/<shape>/pcl_1024.npy`` (1024 surface points, same frame). Per shape
``n_photos`` "photographs": the mesh rendered by lmnet's rasteriser from a random view at a
random size, placed on a noisy colour-gradient canvas of random width and height (aspect 0.6–1.7),
saved as JPG or PNG (alternating), with its mask (PNG, 0/255) and bbox. Every 4th photograph is
truncated (the object runs off the canvas edge, ``truncated: true``), every 5th occluded (a
rectangle covers part of it, ``occluded: true``); the paper's filter drops both.

Deterministic for a given seed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from lmnet import atomic_io
from lmnet.camera import LMNET_FROM_V1
from lmnet.data import pix3d
from lmnet.data.meshes import normalize_unit_diagonal, sample_surface
from lmnet.render import render_mesh
from lmnet.synthetic.primitives import PartList, box
from lmnet.synthetic.shapes import BUILDERS, _grey, _leg


def sofa(rng: np.random.Generator):
    """A sofa in the y-up frame, front towards −z: base, seat cushion, back, two arms, short legs."""
    parts = PartList()
    color = np.clip(rng.uniform(0.3, 0.8, 3), 0, 1)
    w, d = rng.uniform(1.4, 2.2), rng.uniform(0.7, 0.95)
    leg_h, base_h = rng.uniform(0.04, 0.12), rng.uniform(0.18, 0.3)
    seat_t, back_h, back_t = rng.uniform(0.08, 0.15), rng.uniform(0.35, 0.6), rng.uniform(0.12, 0.22)
    arm_w, arm_h = rng.uniform(0.1, 0.22), rng.uniform(0.15, 0.32)
    y_base = leg_h + base_h
    parts.add(box([0, leg_h + base_h / 2, 0], [w, base_h, d]), color)
    parts.add(box([0, y_base + seat_t / 2, -back_t / 2], [w - 2 * arm_w, seat_t, d - back_t]), color * 0.95)
    parts.add(box([0, y_base + back_h / 2, d / 2 - back_t / 2], [w, back_h, back_t]), color)
    for sx in (-1, 1):
        parts.add(box([sx * (w / 2 - arm_w / 2), y_base + arm_h / 2, 0], [arm_w, arm_h, d]), color)
    leg = _grey(rng, 0.2, 0.4)
    for sx in (-1, 1):
        for sz in (-1, 1):
            _leg(parts, False, sx * (w / 2 - 0.06), sz * (d / 2 - 0.06), 0.0, leg_h, 0.05, leg)
    return parts.mesh()


def _mesh(category: str, rng: np.random.Generator):
    builder = sofa if category == "sofa" else BUILDERS[category]
    v, f, c = builder(rng)
    return normalize_unit_diagonal(v), f, c


def _write_obj(path: Path, v: np.ndarray, f: np.ndarray) -> None:
    lines = ["# lmnet synthetic Pix3D model (y up)"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in v]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f]
    atomic_io.write_text(path, "\n".join(lines) + "\n")


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    c0, c1 = rng.uniform(40, 230, 3), rng.uniform(40, 230, 3)
    t = np.linspace(0, 1, h)[:, None, None]
    img = c0 * (1 - t) + c1 * t + rng.normal(0, 6, (h, w, 3))
    return np.broadcast_to(img, (h, w, 3))


def _photo(rng: np.random.Generator, v_lmnet, f, colors, truncated: bool, occluded: bool):
    """``(rgb uint8 (H, W, 3), mask uint8 (H, W), bbox [x0, y0, x1, y1])`` of one photograph."""
    import torch

    size = int(rng.integers(96, 260))
    rgba = render_mesh(torch.from_numpy(v_lmnet).float(), torch.from_numpy(f),
                       torch.tensor([rng.uniform(0, 360)]), torch.tensor([rng.uniform(5, 35)]),
                       torch.tensor([rng.uniform(0.6, 0.8)]), torch.tensor([25.0]), image_size=size,
                       color=torch.from_numpy(colors).float(), cull_backfaces=True)[0].numpy()
    aspect = rng.uniform(0.6, 1.7)
    w = int(size * rng.uniform(1.1, 1.6) * max(1.0, aspect))
    h = int(size * rng.uniform(1.1, 1.6) * max(1.0, 1 / aspect))
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    if truncated:  # push the object over the right edge
        x = w - size // 2
    canvas = _background(rng, h, w).copy()
    alpha = np.zeros((h, w))
    ys, xs = slice(y, min(h, y + size)), slice(x, min(w, x + size))
    part = rgba[: ys.stop - y, : xs.stop - x]
    a = part[..., 3:4] / 255.0
    canvas[ys, xs] = part[..., :3] * a + canvas[ys, xs] * (1 - a)
    alpha[ys, xs] = part[..., 3]
    mask = np.where(alpha >= 128, 255, 0).astype(np.uint8)
    if occluded:  # a box in front of the lower-left part of the object
        rows, cols = np.nonzero(mask)
        r0, c0 = int(np.median(rows)), int(cols.min())
        canvas[r0:, c0:c0 + max(4, (cols.max() - c0) // 2)] = rng.uniform(0, 255, 3)
        mask[r0:, c0:c0 + max(4, (cols.max() - c0) // 2)] = 0
    rows, cols = np.nonzero(mask)
    bbox = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
    return np.clip(canvas, 0, 255).astype(np.uint8), mask, bbox


def _save_image(path: Path, arr: np.ndarray, mode: str) -> None:
    from PIL import Image

    fmt = "JPEG" if path.suffix == ".jpg" else "PNG"
    with atomic_io.atomic_path(path, suffix=path.suffix) as tmp:
        Image.fromarray(arr, mode).save(tmp, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))


def generate_pix3d(out_dir: str | Path, categories: Sequence[str] = pix3d.CATEGORIES, n_models: int = 2,
                   n_photos: int = 4, seed: int = 0) -> dict:
    """Write the set under ``out_dir``; returns ``{"out_dir", "entries", "used", "models"}`` (counts)."""
    import torch

    out = Path(out_dir)
    cats = pix3d.parse_categories(list(categories))
    a = LMNET_FROM_V1.numpy().astype(np.float64)
    entries = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for ci, cat in enumerate(cats):
            for mi in range(n_models):
                rng = np.random.default_rng([seed, ci, mi])
                v, f, colors = _mesh(cat, rng)
                shape = f"SYNTH_{cat.upper()}_{mi:02d}"
                model_rel = f"model/{cat}/{shape}/model.obj"
                _write_obj(out / model_rel, v, f)
                pts = sample_surface(v, f, pix3d.GT_POINTS, rng).astype(np.float32)
                atomic_io.save_npy(out / pix3d.POINTCLOUD_DIR / cat / shape / "pcl_1024.npy", pts)
                for pi in range(n_photos):
                    k = len(entries)
                    truncated, occluded = k % 4 == 3, k % 5 == 4
                    rgb, mask, bbox = _photo(rng, v @ a, f, colors, truncated, occluded)
                    name = f"{mi * n_photos + pi:04d}"
                    img_rel = f"img/{cat}/{name}.{'jpg' if k % 2 == 0 else 'png'}"
                    mask_rel = f"mask/{cat}/{name}.png"
                    _save_image(out / img_rel, rgb, "RGB")
                    _save_image(out / mask_rel, mask, "L")
                    h, w = mask.shape
                    entries.append({
                        "img": img_rel, "category": cat, "img_size": [w, h], "2d_keypoints": [],
                        "mask": mask_rel, "img_source": "lmnet-synthetic", "model": model_rel,
                        "model_raw": model_rel, "model_source": "lmnet-synthetic",
                        "3d_keypoints": "", "voxel": "", "rot_mat": np.eye(3).tolist(),
                        "trans_mat": [0.0, 0.0, 2.0], "focal_length": 35.0, "cam_position": [0.0, 0.0, -2.0],
                        "inplane_rotation": 0.0, "truncated": truncated, "occluded": occluded,
                        "slightly_occluded": False, "bbox": bbox})
    finally:
        torch.set_num_threads(threads)
    atomic_io.write_text(out / pix3d.INDEX_FILE, json.dumps(entries, indent=1) + "\n")
    used = len(pix3d.select(entries, cats))
    return {"out_dir": out, "entries": len(entries), "used": used, "models": len(cats) * n_models}
