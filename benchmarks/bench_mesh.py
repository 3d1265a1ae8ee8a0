"""Meshing: how close each meshing method's surface is to the true shape, and how long it takes.

For each synthetic shape (``lmnet synth`` categories chair, table, airplane, car, lamp; 10 models
each, seed 0; the clouds are regenerated exactly as ``lmnet synth`` writes them, without renders):

- **mesh CD**: Chamfer ×100 (:func:`lmnet.losses.chamfer_terms`: mean Euclidean NN distance each
  way, summed, not squared, raw frame: no normalisation or ICP) between 16,384 points sampled
  uniformly on the mesh of the 2,048-point cloud and the dense ``pointcloud_16384``;
- **input CD**: the same number for the 2,048-point cloud itself; **ratio** = mesh CD / input CD
  per shape (acceptance: mean ≤ 2 per category, ≤ 3 for every shape);
- **time per mesh**: wall time of :func:`lmnet.mesh.reconstruct` (checks, outlier removal,
  reconstruction, fit) on one 2,048-point cloud, Open3D's default threads (all cores): median and
  worst over the shapes of each call above, and separately the median of 5 repeats on one clean
  cloud per category (target: ``auto`` under 2 s on 2 cores). The machine's load average is
  recorded next to them.

Two inputs: the clean ground-truth cloud, and a stand-in for a predicted cloud (the same cloud with
Gaussian noise of σ = 2 point spacings on every coordinate and 5 % of points moved to uniform
random positions in the bounding box, seeded). Methods: ``auto`` (ours, the default), ``bpa``,
``poisson`` (distance-trimmed), ``alpha``, and ``poisson-closed`` (the earlier default: closed
Poisson at depth 8, 2 % density trim, no outlier removal).

``python -m benchmarks.bench_mesh`` also writes ``benchmarks/results/mesh.{md,json}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from lmnet.mesh import point_spacing
from lmnet import mesh
from lmnet.synthetic.generator import model_pointclouds
from lmnet.losses.chamfer_numpy import chamfer_terms as chamfer
from lmnet.mesh import sample_mesh
from lmnet.atomic_io import write_text

try:
    from benchmarks._common import median_time, print_result
except ImportError:  # run as a script: python benchmarks/bench_mesh.py
    from _common import median_time, print_result

CATEGORIES = ("chair", "table", "airplane", "car", "lamp")
METHODS = ("auto", "bpa", "poisson", "alpha", "poisson-closed")
CONDITIONS = ("clean", "noisy")
RESULTS = Path(__file__).resolve().parent / "results"


def noisy_copy(points: np.ndarray, seed: int, *, sigma: float = 2.0, outliers: float = 0.05) -> np.ndarray:
    """``points (N, 3)`` + Gaussian noise of ``sigma`` × point spacing, and a fraction ``outliers``
    of the points replaced by uniform positions in the bounding box (seeded)."""

    rng = np.random.default_rng(seed)
    out = points + rng.normal(scale=sigma * point_spacing(points), size=points.shape)
    idx = rng.choice(len(points), int(outliers * len(points)), replace=False)
    out[idx] = rng.uniform(points.min(0), points.max(0), size=(len(idx), 3))
    return out


def mesh_with(method: str, points: np.ndarray):
    """``(vertices, faces, seconds, chosen method)`` of one method on ``points (N, 3)``."""

    t = time.perf_counter()
    if method == "poisson-closed":
        v, f = mesh.points_to_mesh(points)
        return v, f, time.perf_counter() - t, method
    res = mesh.reconstruct(points, method)
    return res.vertices, res.faces, time.perf_counter() - t, res.method


def measure(n_models: int, conditions=CONDITIONS, seed: int = 0) -> list[dict]:
    """One record per (condition, category, model, method)."""

    recs = []
    for cat in CATEGORIES:
        for i in range(n_models):
            clouds = model_pointclouds(cat, seed, i)
            dense = clouds[16384].astype(np.float64)
            for cond in conditions:
                pts = clouds[2048].astype(np.float64)
                if cond == "noisy":
                    pts = noisy_copy(pts, seed=1000 * CATEGORIES.index(cat) + i)
                base = 100 * chamfer(pts, dense)["cd"]
                for m in METHODS:
                    v, f, sec, chosen = mesh_with(m, pts)
                    cd = 100 * chamfer(sample_mesh(v, f), dense)["cd"]
                    recs.append({"condition": cond, "category": cat, "model": i, "method": m, "chosen": chosen,
                                 "input_cd": base, "mesh_cd": cd, "ratio": cd / base, "seconds": sec})
    return recs


def summarize(recs: list[dict]) -> list[dict]:
    """Per (condition, category, method): means, worst ratio, median time; plus an 'all' category."""
    out = []
    keys = sorted({(r["condition"], r["method"]) for r in recs}, key=lambda k: (CONDITIONS.index(k[0]), METHODS.index(k[1])))
    for cond, m in keys:
        for cat in CATEGORIES + ("all",):
            rs = [r for r in recs if r["condition"] == cond and r["method"] == m and cat in ("all", r["category"])]
            if not rs:
                continue
            chosen = {c: sum(r["chosen"] == c for r in rs) for c in sorted({r["chosen"] for r in rs})}
            out.append({"condition": cond, "category": cat, "method": m, "n": len(rs),
                        "input_cd": float(np.mean([r["input_cd"] for r in rs])),
                        "mesh_cd": float(np.mean([r["mesh_cd"] for r in rs])),
                        "ratio_mean": float(np.mean([r["ratio"] for r in rs])),
                        "ratio_max": float(np.max([r["ratio"] for r in rs])),
                        "seconds": float(np.median([r["seconds"] for r in rs])),
                        "seconds_max": float(np.max([r["seconds"] for r in rs])), "chosen": chosen})
    return out


def timing(repeats: int = 5, seed: int = 0) -> list[dict]:
    """Median of ``repeats`` calls of ``reconstruct(cloud, method)`` per category and method, one clean
    2,048-point cloud each (model 0)."""

    out = []
    for cat in CATEGORIES:
        pts = model_pointclouds(cat, seed, 0)[2048].astype(np.float64)
        for m in METHODS[:4]:
            out.append({"category": cat, "method": m, "seconds": median_time(lambda: mesh.reconstruct(pts, m), repeats,
                                                                              warmup=True)})
    return out


def run(quick: bool = False) -> dict:
    n = 2 if quick else 10
    conds = ("clean",) if quick else CONDITIONS
    load0 = os.getloadavg()[0]
    recs = measure(n, conds)
    times = timing(2 if quick else 5)
    load1 = os.getloadavg()[0]
    rows = []
    for s in summarize(recs):
        case = f"{s['condition']} {s['category']} ({s['n']} shapes)"
        impl = "ours: auto" if s["method"] == "auto" else s["method"]
        rows += [{"case": case, "impl": impl, "metric": "mesh CD x100", "value": s["mesh_cd"], "unit": "x100"},
                 {"case": case, "impl": impl, "metric": "mesh/input CD mean", "value": s["ratio_mean"], "unit": "ratio"},
                 {"case": case, "impl": impl, "metric": "mesh/input CD worst", "value": s["ratio_max"], "unit": "ratio"},
                 {"case": case, "impl": impl, "metric": "time per mesh", "value": s["seconds"], "unit": "s"}]
    for t in times:
        rows.append({"case": f"2048 points, {t['category']} (median of repeats)",
                     "impl": "ours: auto" if t["method"] == "auto" else t["method"], "metric": "time per mesh",
                     "value": t["seconds"], "unit": "s"})
    notes = [f"{n} synthetic models per category (seed 0), inputs: {', '.join(conds)}; Open3D threads: "
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} on {os.cpu_count()} CPUs; "
             f"measured on a shared, busy machine (1-min load average {load0:.1f} at the start, {load1:.1f} "
             "at the end)",
             "input CD of the 2,048-point cloud itself, mean: " + ", ".join(
                 f"{s['condition']} {s['category']} {s['input_cd']:.3f}" for s in summarize(recs)
                 if s["method"] == "auto")]
    return {"topic": "mesh", "rows": rows, "notes": notes, "records": recs, "timing": times}


def to_markdown(recs: list[dict], header: str, times: list[dict] = ()) -> str:
    summ = summarize(recs)
    lines = ["# Meshing: mesh surface vs the true shape", "", header, "",
             "Chamfer ×100 = mean Euclidean nearest-neighbour distance both ways, summed (not squared), "
             "raw frame, between 16,384 uniform samples on the mesh and the dense `pointcloud_16384`; "
             "the input's is the same number for the 2,048-point cloud meshed. ratio = mesh / input, "
             "per shape. Acceptance: mean ratio ≤ 2 per category, every shape ≤ 3.", ""]
    for cond in CONDITIONS:
        rs = [s for s in summ if s["condition"] == cond]
        if not rs:
            continue
        title = ("clean ground-truth cloud (2,048 points)" if cond == "clean" else
                 "noisy cloud: σ = 2 spacings Gaussian noise + 5 % uniform outliers (a predicted-cloud stand-in)")
        lines += [f"## {title}", "", "| method | category | input CD | mesh CD | ratio mean | ratio worst | "
                  "s / mesh median | s / mesh worst | auto chose |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for s in rs:
            chose = ", ".join(f"{k} {v}" for k, v in s["chosen"].items()) if s["method"] == "auto" else ""
            lines.append(f"| {s['method']} | {s['category']} | {s['input_cd']:.3f} | {s['mesh_cd']:.3f} | "
                         f"{s['ratio_mean']:.2f} | {s['ratio_max']:.2f} | {s['seconds']:.2f} | "
                         f"{s['seconds_max']:.2f} | {chose} |")
        lines.append("")
    lines += ["`s / mesh` columns: one call per shape, so they carry every stall of a shared machine; the "
              "timing figure is the table of repeat medians below.", ""]
    if times:
        cats = list(dict.fromkeys(t["category"] for t in times))
        meths = list(dict.fromkeys(t["method"] for t in times))
        lines += ["## time per mesh, 2,048 clean points (median of 5 repeats, model 0 of each category)", "",
                  "| method | " + " | ".join(cats) + " |", "|---|" + "---:|" * len(cats)]
        for m in meths:
            lines.append(f"| {m} | " + " | ".join(f"{t['seconds']:.2f} s" for c in cats for t in times
                                                  if t["category"] == c and t["method"] == m) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_mesh", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 shapes per category, clean only; writes nothing")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    res = run(quick=args.quick)
    print_result({k: v for k, v in res.items() if k not in ("records", "timing")})
    if args.quick:
        return 0
    import platform

    header = (f"Measured {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs shared with other jobs (so times are upper bounds), Open3D default "
              f"threads, in {time.perf_counter() - t0:.0f} s: `python -m benchmarks.bench_mesh`. " + res["notes"][0] + ".")

    write_text(RESULTS / "mesh.json", json.dumps({k: res[k] for k in ("records", "timing", "notes")}, indent=1))
    write_text(RESULTS / "mesh.md", to_markdown(res["records"], header, res["timing"]))
    print(f"wrote {RESULTS / 'mesh.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
