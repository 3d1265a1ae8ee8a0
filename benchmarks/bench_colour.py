"""Colour in 3D: how well :func:`lmnet.render.point_colours.colour_points` colours a cloud from its image.

Data: ``lmnet synth --colors`` (categories chair, table, airplane, car, lamp; ``--models`` per
category, seed 0), written to a temporary folder exactly as the command writes it: unlit renders with
a colour per part, and ``pointcloud_{n}_colors.npy``. For each model and each of the views 0 and 12,
the 128 px crop of the rendering (its alpha is the mask) colours a "prediction":

- **gt**: the ground-truth ``pointcloud_2048`` itself (the camera is fitted, not read from the metadata);
- **noisy**: a stand-in for a predicted cloud, the same cloud with Gaussian noise of σ = 2 point
  spacings on every coordinate and 5 % of the points moved to uniform positions in its bounding box
  (seeded; as ``benchmarks/bench_mesh.py``);
- **prediction** (with ``--run RUN --split TEST_SPLIT``): the run's own prediction
  (:func:`lmnet.reconstruct`) from the coloured render, for models of the run's test split (a run
  trained on ``lmnet synth``'s grey renders, e.g. ``make demo``'s Variant I: the same shapes, seed 0);
- **gt, lit renders** (view 0 only): the same model rendered in memory with lmnet's default key +
  fill lighting instead of unlit, to show what shading costs (the pixel colours are then darker than
  the parts' colours).

Error of a point: the mean over R, G, B of ``|colour − colour of the nearest point of the dense
pointcloud_16384|`` (0–255). Baseline: every point coloured with the image's mean object colour (the
mean RGB of the pixels with alpha > 127). Both are averaged over the points that ``colour_points``
finds visible, and separately over the hidden ones, per image, then over images. Acceptance: visible
error ≤ 1/3 of the baseline's, hidden error below the baseline's.

``python -m benchmarks.bench_colour [--run RUN --split TEST_SPLIT]`` writes ``benchmarks/results/colour.md``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from lmnet.atomic_io import write_text
from lmnet.data import layout
from lmnet.data.categories import to_synset
from lmnet.data.inputs import crop, read_rgba
from lmnet.infer import reconstruct
from lmnet.mesh import point_spacing
from lmnet.render import render_mesh
from lmnet.render.point_colours import colour_points
from lmnet.synthetic import generator

try:
    from benchmarks._common import print_result
except ImportError:  # run as a script: python benchmarks/bench_colour.py
    from _common import print_result

CATEGORIES = ("chair", "table", "airplane", "car", "lamp")
VIEWS = (0, 12)
CONDITIONS = ("gt", "noisy", "prediction", "gt, lit renders")
RESULTS = Path(__file__).resolve().parent / "results"


def noisy_copy(points: np.ndarray, seed: int, *, sigma: float = 2.0, outliers: float = 0.05) -> np.ndarray:
    """``points (N, 3)`` + Gaussian noise of ``sigma`` point spacings, ``outliers`` of them uniform in the box."""
    rng = np.random.default_rng(seed)
    out = points + rng.normal(scale=sigma * point_spacing(points), size=points.shape)
    idx = rng.choice(len(points), int(outliers * len(points)), replace=False)
    out[idx] = rng.uniform(points.min(0), points.max(0), size=(len(idx), 3))
    return out.astype(np.float32)


def score(pred: np.ndarray, rgba: np.ndarray, ref: np.ndarray, ref_colours: np.ndarray, meta) -> dict:
    """Colour ``pred (N, 3)`` from ``rgba (128, 128, 4)``; errors against the dense coloured cloud."""
    t = time.perf_counter()
    res = colour_points(pred, rgba)
    seconds = time.perf_counter() - t
    truth = ref_colours[cKDTree(ref).query(pred)[1]].astype(np.float64)
    err = np.abs(res.colours.astype(np.float64) - truth).mean(1)
    base = np.abs(rgba[..., :3][rgba[..., 3] > 127].mean(0) - truth).mean(1)
    vis = res.visible
    return {"vis_err": err[vis].mean(), "vis_base": base[vis].mean(), "hid_err": err[~vis].mean(),
            "hid_base": base[~vis].mean(), "visible": vis.mean(), "iou": res.camera.iou, "seconds": seconds,
            "az_err": abs((res.camera.azimuth - meta.azimuth + 180.0) % 360.0 - 180.0)}


def _lit_render(category: str, index: int, meta) -> np.ndarray:
    """The coloured model ``index`` of ``category`` from view ``meta``, default lighting: crop (128, 128, 4)."""
    verts, faces, face_colours = generator.build_mesh(category, 0, index, colors=True)
    img = render_mesh(torch.from_numpy(verts).float(), torch.from_numpy(faces), meta.azimuth, meta.elevation,
                      meta.distance_ratio, meta.fov, color=torch.from_numpy(face_colours).float(),
                      cull_backfaces=True)[0].numpy()
    return np.ascontiguousarray(crop(img))


def model_indices(synset: str, n_models: int, split: Path | None) -> list[int]:
    """The first ``n_models`` model indices (seed 0) of ``synset``, or of those in the ``split`` file."""
    if split is None:
        return list(range(n_models))
    keys = set(json.loads(split.read_text()).get(synset, []))
    found = [i for i in range(10_000) if f"{synset}/{generator.model_id(0, synset, i)}" in keys]
    return found[:n_models]


def measure(root: Path, models: dict[str, list[int]], run: Path | None = None) -> list[dict]:
    recs = []
    for ci, cat in enumerate(CATEGORIES):
        synset = to_synset(cat)
        for i in models[cat]:
            mid = generator.model_id(0, synset, i)
            pts = np.load(layout.pointcloud_path(root, synset, mid, 2048))
            ref = np.load(layout.pointcloud_path(root, synset, mid, 16384))
            ref_col = np.load(layout.pointcloud_colours_path(root, synset, mid, 16384))
            metas = layout.parse_metadata(layout.metadata_path(root, synset, mid))
            for v in VIEWS:
                rgba = np.ascontiguousarray(crop(read_rgba(layout.image_path(root, synset, mid, v))))
                preds = {"gt": pts, "noisy": noisy_copy(pts, 1000 * ci + 10 * i + v)}
                if run is not None:
                    preds["prediction"] = reconstruct(layout.image_path(root, synset, mid, v), run)[0]
                for cond, pred in preds.items():
                    recs.append({"condition": cond, "category": cat, "model": i, "view": v,
                                 **score(pred, rgba, ref, ref_col, metas[v])})
                if v == VIEWS[0]:
                    recs.append({"condition": "gt, lit renders", "category": cat, "model": i, "view": v,
                                 **score(pts, _lit_render(cat, i, metas[v]), ref, ref_col, metas[v])})
    return recs


def summarize(recs: list[dict]) -> list[dict]:
    out = []
    for cond in CONDITIONS:
        for cat in CATEGORIES + ("all",):
            rs = [r for r in recs if r["condition"] == cond and cat in (r["category"], "all")]
            if rs:
                mean = {k: float(np.mean([r[k] for r in rs])) for k in rs[0] if isinstance(rs[0][k], float)}
                out.append({"condition": cond, "category": cat, "n": len(rs), **mean,
                            "az_median": float(np.median([r["az_err"] for r in rs]))})
    return out


def run(quick: bool = False, n_models: int = 2, run_dir: Path | None = None, split: Path | None = None) -> dict:
    load0 = os.getloadavg()[0]
    models = {cat: model_indices(to_synset(cat), 1 if quick else n_models, split) for cat in CATEGORIES}
    with tempfile.TemporaryDirectory(prefix="lmnet-bench-colour-") as tmp:
        for cat, indices in models.items():
            for i in indices:
                generator.generate_model(tmp, cat, i, seed=0, colors=True)
        recs = measure(Path(tmp), models, run_dir)
    load1 = os.getloadavg()[0]
    rows = []
    for s in summarize(recs):
        case = f"{s['condition']}, {s['category']} ({s['n']} images)"
        rows += [{"case": case, "impl": "ours", "metric": "visible error / mean colour",
                  "value": s["vis_err"] / s["vis_base"], "unit": "ratio"},
                 {"case": case, "impl": "ours", "metric": "hidden error / mean colour",
                  "value": s["hid_err"] / s["hid_base"], "unit": "ratio"}]
    notes = [f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} on {os.cpu_count()} CPUs, a shared "
             f"busy machine (1-min load average {load0:.1f} at the start, {load1:.1f} at the end)"]
    return {"topic": "colour", "rows": rows, "notes": notes, "records": recs}


def to_markdown(recs: list[dict], header: str) -> str:
    lines = ["# Colour in 3D: point colours from the input image", "", header, "",
             "Errors are mean |ΔRGB| (0–255) against the colour of the nearest point of the dense coloured "
             "ground truth; *mean colour* is the baseline that colours every point with the image's mean "
             "object colour. Acceptance: visible ≤ 1/3 of the baseline, hidden below it.", "",
             "| prediction | category | images | visible points | visible error | mean colour | ratio | "
             "hidden error | mean colour | ratio | azimuth error (median) | mask IoU | s / cloud |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summarize(recs):
        lines.append(f"| {s['condition']} | {s['category']} | {s['n']} | {100 * s['visible']:.0f} % | "
                     f"{s['vis_err']:.1f} | {s['vis_base']:.1f} | {s['vis_err'] / s['vis_base']:.2f} | "
                     f"{s['hid_err']:.1f} | {s['hid_base']:.1f} | {s['hid_err'] / s['hid_base']:.2f} | "
                     f"{s['az_median']:.0f}° | {s['iou']:.3f} | {s['seconds']:.2f} |")
    lines += ["", "Visible and hidden are as `colour_points` decides them (z-buffer of the splatted points under "
              "the fitted camera, the point's pixel at least `MASK_INSET` = 2 px inside the mask). Tables are often fitted half a turn "
              "or a quarter turn away (their silhouettes nearly repeat); their parts' colours then land "
              "on the mirrored side. `s / cloud`: one `colour_points` call, on a shared machine.", ""]
    lines += ["Acceptance over all images (visible ratio ≤ 0.33 and hidden ratio < 1):", ""]
    for r in (s for s in summarize(recs) if s["category"] == "all"):
        vis, hid = r["vis_err"] / r["vis_base"], r["hid_err"] / r["hid_base"]
        lines.append(f"- {r['condition']}: visible {vis:.2f} ({'met' if vis <= 1 / 3 else 'not met'}), "
                     f"hidden {hid:.2f} ({'met' if hid < 1 else 'not met'})")
    if not any(r["condition"] == "prediction" for r in recs):
        lines += ["", "No trained run's predictions are measured here (`--run`); *noisy* stands in for them.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse
    import platform

    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_colour", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 model per category; writes nothing")
    ap.add_argument("--models", type=int, default=2, help="models per category (default 2)")
    ap.add_argument("--run", type=Path, help="an image run (e.g. make demo's runs/variant1_l1): adds its predictions")
    ap.add_argument("--split", type=Path, help="with --run: its test split file; the models are drawn from it")
    args = ap.parse_args(argv)
    if (args.run is None) != (args.split is None):
        ap.error("--run and --split go together")
    t0 = time.perf_counter()
    res = run(quick=args.quick, n_models=args.models, run_dir=args.run, split=args.split)
    print_result({k: v for k, v in res.items() if k != "records"})
    if args.quick:
        return 0
    header = (f"Measured {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()} in "
              f"{time.perf_counter() - t0:.0f} s: `python -m benchmarks.bench_colour --models {args.models}"
              + (f" --run {args.run} --split {args.split}" if args.run else "") +
              f"`, {args.models} models per category, views {VIEWS}. " + res["notes"][0] + ".")
    write_text(RESULTS / "colour.md", to_markdown(res["records"], header))
    print(f"wrote {RESULTS / 'colour.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
