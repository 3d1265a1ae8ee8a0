"""Mask-supervised training (docs/training.md#mask-supervised-training): cost of one silhouette loss +
backward per training step, and (``evaluate``) the 3D result of a trained silhouette run against the
mean-shape baseline.

``run(quick)`` times, side by side on the same random cloud batch, the projection part of one
training step in both pose modes: known pose (B items × V views) and unknown pose
(B × V views × K candidates, min over K). Each value is the median of several repeats; the 2 CPU
cores are shared, so timings are "as measured under load".

``evaluate(run_dir, split="test")`` (used for studies/results/silhouette.md) runs the paper protocol
(``lmnet.eval.run.evaluate_run``: subsample 1024, per-cloud normalisation, ICP, Euclidean CD ×100,
EMD off unless asked) with the medoid mean-shape baseline, and for an unknown-pose run the student's
pose error in degrees on the same split (every view as input, 24 supervising views per model).

    python -m benchmarks.bench_silhouette                 # timings
    python -m benchmarks.bench_silhouette RUN_DIR [...]   # evaluate trained runs
"""

from __future__ import annotations

import sys

import torch

from lmnet.losses.pose import aligned_pose_errors, rotations_from_view_angles
from lmnet.methods.silhouette.evaluate import every_view_dataset, predict_poses
from lmnet.methods.silhouette.pose_losses import pose_errors, select_pose_winner
from lmnet.methods.silhouette.losses import mask_coverage_loss, project_views
from lmnet import camera
from lmnet.eval.protocol import Protocol
from lmnet.eval.run import evaluate_run
from lmnet.registry import load_model

try:
    from benchmarks._common import median_time
except ImportError:  # run as a script: python benchmarks/bench_<topic>.py
    from _common import median_time

def _coverage_brute_force(points, masks, azimuth, elevation, distance_ratio, fov):
    """:func:`lmnet.methods.silhouette.losses.mask_coverage_loss` written the direct way (autograd through the
    min of a full pixel × point distance matrix): the reference it is timed against."""

    B, V, S, _ = masks.shape
    N = points.shape[1]
    uv, _ = camera.project_points(points.unsqueeze(1).expand(B, V, N, 3), azimuth, elevation, distance_ratio, fov,
                                  image_size=camera.R2N2_IMAGE_SIZE, crop_offset=camera.CROP_OFFSET)
    c = (torch.arange(S, dtype=points.dtype) + 0.5) * (camera.CROP_SIZE / S)
    pix = torch.stack(torch.meshgrid(c, c, indexing="xy"), -1).reshape(1, S * S, 2)
    d = torch.cdist(pix.expand(B * V, -1, -1), uv.reshape(B * V, N, 2)).min(dim=2).values / camera.CROP_SIZE
    fg = (masks.reshape(B * V, S * S) > 0.5).to(d.dtype)
    return ((d * fg).sum(1) / fg.sum(1).clamp(min=1)).mean()


def run(quick: bool = False) -> dict:
    torch.manual_seed(0)
    B, V, K = (4, 4, 4) if quick else (8, 4, 4)
    repeats = 3 if quick else 5
    sizes = (32,) if quick else (32, 64)
    rows = []
    for size in sizes:
        pts = ((torch.rand(B, 2048, 3) - 0.5) * 0.5).requires_grad_(True)
        masks = (torch.rand(B, V, size, size) > 0.8).float()
        az = torch.rand(B, V) * 360
        el, dr, fov = torch.full((B, V), 27.0), torch.full((B, V), 0.8), torch.full((B, V), 25.0)

        def known():
            s = project_views(pts, az, el, dr, fov, sigma=1.0, size=size, depth_bins=32)
            ((s - masks) ** 2).mean().backward()

        def unknown():
            rep = lambda t: t.unsqueeze(-1).expand(B, V, K).reshape(B, V * K)
            s = project_views(pts, rep(az) + torch.rand(B, V * K) * 90, rep(el), rep(dr), rep(fov), sigma=1.0,
                                  size=size, depth_bins=32).view(B, V, K, size, size)
            best, _ = select_pose_winner(((s - masks.unsqueeze(2)) ** 2).flatten(3).mean(-1))
            best.mean().backward()

        for name, fn, n_proj in (("known pose", known, B * V), (f"unknown pose (K={K})", unknown, B * V * K)):
            t = median_time(fn, repeats, warmup=True)
            rows.append({"case": f"B={B} V={V} grid {size}x{size}x32", "impl": name, "metric": "loss+backward",
                         "value": t * 1e3, "unit": "ms"})
            rows.append({"case": f"B={B} V={V} grid {size}x{size}x32", "impl": name, "metric": "per projection",
                         "value": t * 1e3 / n_proj, "unit": "ms"})
        # the mask-coverage term: lmnet's (nearest point searched without autograd) vs autograd
        # through a full (pixels × points) distance matrix and its min, on masks ~30 % foreground
        cmasks = torch.zeros(B, V, size, size)
        cmasks[..., size // 5: 4 * size // 5, size // 4: 3 * size // 4] = 1.0
        times = {}
        for name, fn in (("lmnet", mask_coverage_loss), ("autograd min (reference)", _coverage_brute_force)):
            times[name] = median_time(lambda: fn(pts, cmasks, az, el, dr, fov).backward(), repeats, warmup=True)
            rows.append({"case": f"B={B} V={V} masks {size}x{size}", "impl": f"mask coverage: {name}",
                         "metric": "loss+backward", "value": times[name] * 1e3, "unit": "ms"})
        rows.append({"case": f"B={B} V={V} masks {size}x{size}", "impl": "mask coverage",
                     "metric": "reference / lmnet", "value": times["autograd min (reference)"] / times["lmnet"],
                     "unit": "x"})
    return {"topic": "silhouette", "rows": rows,
            "notes": ["projection + L2 + backward of one training step (encoder/decoder excluded), 2048 points, "
                      "CPU, median of repeats, measured under load from other jobs",
                      "mask coverage: the 2D Chamfer term from mask pixels to projected points, lmnet's vs the "
                      "direct autograd formulation (same value and gradient, tests/test_silhouette.py)"]}


def evaluate(run_dir: str, split: str = "test", emd: bool = False, workers: int = 2) -> dict:
    """Paper-protocol table (model vs medoid mean shape) and, for unknown-pose runs, pose errors: the
    azimuth / elevation figures of :func:`pose_errors` and DPC's accuracy within 30° / median angle
    after the best global rotation (:func:`lmnet.losses.pose.aligned_pose_errors`, all categories
    together, no symmetries; per category: :mod:`lmnet.eval.silhouette_pose`)."""

    res = evaluate_run(run_dir, split=split, protocol=Protocol(emd=emd), workers=workers)
    out = {"tables": res["tables"], "notes": res["notes"], "n_pairs": res["n_pairs"]}
    model, config = load_model(run_dir)
    if getattr(model, "pose_net", None) is not None:
        pred, gt = predict_poses(model, every_view_dataset(config, split))
        dpc = aligned_pose_errors(rotations_from_view_angles(*pred.T), rotations_from_view_angles(*gt.T))
        out["pose"] = {**pose_errors(pred, gt), "dpc_accuracy_30": dpc.accuracy_30, "dpc_median_deg": dpc.median_deg,
                       "n_views": int(len(pred))}
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1:
        import json

        for rd in sys.argv[1:]:
            r = evaluate(rd)
            print(f"== {rd} ({r['n_pairs']} pairs)")
            for method, rows in r["tables"].items():
                for row in rows:
                    print(f"  {method:45s} {row['category']:10s} n={row['n_pairs']:4d} CD x100 {row['cd_x100']:.3f}")
            if "pose" in r:
                print("  pose:", json.dumps({k: round(v, 3) for k, v in r["pose"].items()}))
    else:
        res = run()
        print(f"{'case':28s} {'impl':24s} {'metric':16s} value")
        for row in res["rows"]:
            print(f"{row['case']:28s} {row['impl']:24s} {row['metric']:16s} {row['value']:.2f} {row['unit']}")
