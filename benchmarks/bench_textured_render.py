"""Differentiable textured renderer (docs/textured.md#differentiable-textured-renderer): seconds per
batch and peak extra memory of :func:`lmnet.render.textured.render_textured`, forward + backward, on
the 960-face UV-sphere template (32 segments × 16 rings) under random poses with a 3×128×128
texture; loss = mean(rgb) + mean(alpha), gradients to the vertices and the texture.

For scale, lmnet's (non-differentiable) point-splat rasteriser :func:`lmnet.render.render_points`
renders the same batch size and image size, forward only, side by side in the same run: 2048-point
clouds on the same sphere, one sample per pixel and its default 2×2 supersampling.

The acceptance line of the textured renderer is batch 16 at 128², forward + backward ≤ 2 s on
2 CPU cores. Each value is the median of several repeats after a warm-up; the 2 cores are shared
with other jobs, so figures are "as measured under load" (the notes give the load average). On an
oversubscribed machine OpenMP's idle threads spin and slow torch's 2-thread runs 2-3×;
``OMP_WAIT_POLICY=PASSIVE`` avoids that, so the 1-thread row is kept alongside.

    python -m benchmarks --only textured_render      # recorded in benchmarks/results/<host>.*
    python benchmarks/bench_textured_render.py       # printed only
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lmnet.render import render_points, three_quarter_view
from lmnet.render.textured import render_textured, transform_vertices

try:
    from benchmarks._common import median_time, peak_rss_delta, print_result
except ImportError:  # run as a script: python benchmarks/bench_<topic>.py
    from _common import median_time, peak_rss_delta, print_result

TEXTURE = 128
N_POINTS = 2048


def template(segments: int = 32, rings: int = 16):
    """The UV-sphere template: vertices ``(V, 3)`` (unit sphere, poles on ±y), faces ``(F, 3)``
    counter-clockwise seen from outside, per-corner UVs ``(F, 3, 2)``; 32 × 16 gives 482 vertices
    and 960 faces (one triangle per segment at each pole, two per quad in between)."""
    verts = [[0.0, 1.0, 0.0]]
    for r in range(1, rings):
        th = math.pi * r / rings
        verts += [[math.sin(th) * math.sin(2 * math.pi * s / segments), math.cos(th),
                   math.sin(th) * math.cos(2 * math.pi * s / segments)] for s in range(segments)]
    verts.append([0.0, -1.0, 0.0])

    def vid(r, s):
        return 0 if r == 0 else len(verts) - 1 if r == rings else 1 + (r - 1) * segments + s % segments

    faces, uvs = [], []
    for r in range(rings):
        for s in range(segments):
            a, b, c, d = (r, s), (r + 1, s), (r + 1, s + 1), (r, s + 1)
            for tri in [(a, b, c)] if r == 0 else [(a, b, d)] if r == rings - 1 else [(a, b, c), (a, c, d)]:
                faces.append([vid(*k) for k in tri])
                uvs.append([[k[1] / segments, 1 - k[0] / rings] for k in tri])
    return torch.tensor(verts), torch.tensor(faces), torch.tensor(uvs)


def _inputs(batch: int, seed: int = 0):
    """Template vertices (leaf, grad), poses, face UVs and a random texture (leaf, grad)."""
    verts, faces, uvs = template()
    gen = torch.Generator().manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(batch, 4, generator=gen), dim=-1)
    scale = 0.55 + 0.2 * torch.rand(batch, 1, generator=gen)
    trans = 0.2 * (torch.rand(batch, 2, generator=gen) - 0.5)
    v = verts.expand(batch, -1, -1).clone().requires_grad_(True)
    tex = torch.rand(batch, 3, TEXTURE, TEXTURE, generator=gen).requires_grad_(True)
    return v, faces, uvs.unsqueeze(0), tex, (scale, trans, q)


def _textured_step(batch: int, size: int, backward: bool):
    v, faces, uvs, tex, pose = _inputs(batch)

    def step():
        v.grad = tex.grad = None
        with torch.set_grad_enabled(backward):
            rgb, alpha, _ = render_textured(transform_vertices(v, *pose), faces, uvs, tex, size)
            if backward:
                (rgb.mean() + alpha.mean()).backward()
    return step


def _points_step(batch: int, size: int, supersample: int):
    gen = torch.Generator().manual_seed(0)
    pts = torch.nn.functional.normalize(torch.randn(batch, N_POINTS, 3, generator=gen), dim=-1) * 0.35
    cam = three_quarter_view(batch)
    return lambda: render_points(pts, cam, image_size=size, supersample=supersample, radius=0.01)


def _fresh_process_peak(batch: int, size: int) -> float:
    """Peak extra RSS (MB) of one forward + backward, measured in a fresh process (in this one, the
    allocator would serve it from memory the timing loops already freed)."""
    res = subprocess.run([sys.executable, __file__, "--peak", str(batch), str(size)], capture_output=True,
                         text=True, timeout=300, check=True)
    return float(res.stdout.split()[-1])


def run(quick: bool = False) -> dict:
    load_before = os.getloadavg()[0]
    reps = 3 if quick else 5
    cases = [(4, 64)] if quick else [(16, 128), (8, 256)]
    rows = []

    def row(case, impl, metric, value, unit):
        rows.append({"case": case, "impl": impl, "metric": metric, "value": float(value), "unit": unit})

    for batch, size in cases:
        case = f"batch {batch}, {size}x{size}"
        mesh = "ours: textured mesh, 960 faces"
        row(case, mesh, "s/batch forward+backward", median_time(_textured_step(batch, size, True), reps,
                                                                warmup=True), "s")
        threads = torch.get_num_threads()
        if threads > 1:  # OpenMP threads spin on a loaded machine; one thread shows how much
            torch.set_num_threads(1)
            row(case, f"{mesh}, 1 thread", "s/batch forward+backward",
                median_time(_textured_step(batch, size, True), reps, warmup=True), "s")
            torch.set_num_threads(threads)
        row(case, mesh, "s/batch forward", median_time(_textured_step(batch, size, False), reps, warmup=True), "s")
        for ss in (1, 2):
            row(case, f"render_points {N_POINTS} pts, ss {ss} (no grad)", "s/batch forward",
                median_time(_points_step(batch, size, ss), reps, warmup=True), "s")
        row(case, mesh, "peak extra RSS forward+backward", _fresh_process_peak(batch, size), "MB")
    notes = [f"CPU torch with {torch.get_num_threads()} threads; median of {reps} after a warm-up; the cores "
             f"are shared with other jobs (1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after); "
             f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}",
             "textured: random unit-quaternion poses, scale 0.55-0.75, texture 3x128x128, loss mean(rgb)+mean(alpha), "
             "gradients to vertices and texture",
             "peak extra RSS: one forward+backward in a fresh process (inputs built first), psutil sampling ~1 ms",
             f"render_points: {N_POINTS}-point clouds on a radius-0.35 sphere, 3/4 view, shaded splats, uint8 output"]
    return {"topic": "textured_render", "rows": rows, "notes": notes}


if __name__ == "__main__":
    if "--peak" in sys.argv:  # the child of _fresh_process_peak
        at = sys.argv.index("--peak")
        print(peak_rss_delta(_textured_step(int(sys.argv[at + 1]), int(sys.argv[at + 2]), True)))
    else:
        print_result(run(quick="--quick" in sys.argv))
