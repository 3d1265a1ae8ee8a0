"""Synthetic ShapeNet generator and torch rasteriser timings.

Rows:
- generator: seconds per model and per PNG (24 renders + 3 point clouds + files), one process;
- triangles: one synthetic chair, 24 views at 137x137 (3x3 supersampling), ours vs Open3D's
  offscreen renderer (same mesh, same image size) when Open3D can open an offscreen context;
- splats: 2048 points at 512x512 (2x2 supersampling), per image.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from lmnet.synthetic import build_mesh, generate_model
from lmnet.render import render_mesh, render_points, three_quarter_view
from lmnet.data.meshes import sample_surface

_O3D_SCRIPT = r"""
import sys, time, numpy as np, open3d as o3d
v = np.load(sys.argv[1]); f = np.load(sys.argv[2]); n = int(sys.argv[3])
r = o3d.visualization.rendering.OffscreenRenderer(137, 137)
mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(v), o3d.utility.Vector3iVector(f))
mesh.compute_vertex_normals()
mat = o3d.visualization.rendering.MaterialRecord(); mat.shader = "defaultLit"
r.scene.add_geometry("m", mesh, mat)
r.scene.set_background([0, 0, 0, 0])
times = []
for i in range(n):
    a = 2 * np.pi * i / n
    r.setup_camera(49.1, [0, 0, 0], [1.2 * np.sin(a), -0.6, 1.2 * np.cos(a)], [-1, 0, 0])
    t = time.perf_counter(); np.asarray(r.render_to_image()); times.append(time.perf_counter() - t)
print(sorted(times)[len(times) // 2])
"""

try:
    from benchmarks._common import median_time, print_result
except ImportError:  # run as a script: python benchmarks/bench_<topic>.py
    from _common import median_time, print_result

def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(quick: bool = False) -> dict:
    import numpy as np
    import torch


    rows, notes = [], []
    torch.set_num_threads(1)
    notes.append("torch.set_num_threads(1) (as in the generator's workers); timings under whatever load "
                 "the machine had")

    # --- generator -----------------------------------------------------------------------
    n_models = 2 if quick else 6
    per_model = []
    tmp = tempfile.mkdtemp(prefix="bench_synth_")
    try:
        generate_model(tmp, "chair", 999, seed=123)  # warm-up (imports, allocator)
        cats = ("chair", "table", "airplane", "car", "lamp")
        for i in range(n_models):
            t = time.perf_counter()
            generate_model(tmp, cats[i % len(cats)], i, seed=123)
            per_model.append(time.perf_counter() - t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    s_model = statistics.median(per_model)
    rows += [
        {"case": "generate 1 model (24 PNG + 3 clouds)", "impl": "ours", "metric": "time", "value": s_model, "unit": "s"},
        {"case": "generate 1 model (24 PNG + 3 clouds)", "impl": "ours", "metric": "throughput",
         "value": 1.0 / s_model, "unit": "models/s"},
        {"case": "generate, per PNG", "impl": "ours", "metric": "time", "value": s_model / 24, "unit": "s"},
    ]
    notes.append(f"generator: median over {n_models} models of mixed categories, one process; "
                 f"`lmnet synth` runs one model per worker process")

    # --- triangles -------------------------------------------------------------------------
    v, f, c = build_mesh("chair", 0, 3)
    vt, ft, ct = torch.from_numpy(v).float(), torch.from_numpy(f), torch.from_numpy(c).float()
    az = torch.linspace(0, 345, 24)
    el, dr = torch.full((24,), 27.0), torch.full((24,), 0.8)
    t_ours = _median_time(lambda: render_mesh(vt, ft, az, el, dr, color=ct), 3 if quick else 5) / 24
    case = f"mesh {len(f)} tris, 137x137, per view"
    rows.append({"case": case, "impl": "ours", "metric": "time", "value": t_ours, "unit": "s"})
    with tempfile.TemporaryDirectory() as d:
        np.save(f"{d}/v.npy", v)
        np.save(f"{d}/f.npy", f.astype(np.int32))
        try:
            out = subprocess.run([sys.executable, "-c", _O3D_SCRIPT, f"{d}/v.npy", f"{d}/f.npy", "3" if quick else "6"],
                                 capture_output=True, text=True, timeout=300)
            if out.returncode == 0:
                rows.append({"case": case, "impl": "open3d-offscreen", "metric": "time",
                             "value": float(out.stdout.strip().splitlines()[-1]), "unit": "s"})
            else:
                last = (out.stderr.strip().splitlines() or ["?"])[-1]
                notes.append(f"Open3D offscreen renderer unavailable here, skipped: {last}")
        except (subprocess.TimeoutExpired, OSError) as exc:
            notes.append(f"Open3D offscreen renderer skipped: {exc}")

    # --- splats ------------------------------------------------------------------------------

    pts = torch.from_numpy(sample_surface(v, f, 2048, np.random.default_rng(0))).float().unsqueeze(0)
    cam = three_quarter_view()
    render_points(pts, cam, 512, radius=0.01)
    t_pts = _median_time(lambda: render_points(pts, cam, 512, radius=0.01), 3 if quick else 7)
    rows.append({"case": "2048 points, 512x512, per image", "impl": "ours", "metric": "time", "value": t_pts, "unit": "s"})
    return {"topic": "synth", "rows": rows, "notes": notes}


if __name__ == "__main__":
    print_result(run(quick="--quick" in sys.argv))
