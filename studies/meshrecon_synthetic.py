"""Mesh estimation on synthetic birds (issue #25): does ``lmnet train meshrecon`` (CPU preset) learn
shape and appearance beyond the undeformed template?

Generates a synthetic CUB set (``lmnet synth --format cub``: 160 train / 40 testval photographs, truth
kept aside), trains the ``cpu`` preset on it, and measures on the 40 testval photographs
(:mod:`lmnet.methods.meshrecon.evaluate`): mask IoU under the true pose against the undeformed
template's, and masked PSNR on novel views against the mean-texture-on-template baseline. Writes
``studies/results/meshrecon_synthetic.{md,json}`` with the wall times.

    python -m studies.meshrecon_synthetic --out /tmp/lmnet-meshrecon            # the recorded run
    python -m studies.meshrecon_synthetic --out /tmp/lmnet-meshrecon-q --quick  # smoke run (~1 min)

Resumable: rerunning skips the finished data and training (``resume=True``) and re-measures.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lmnet import atomic_io, registry
from lmnet.data.cub import CUBDataset
from lmnet.methods.meshrecon.evaluate import evaluate_on_truth, mean_truth_texture
from lmnet.runs import load_checkpoint
from lmnet.synthetic import generate_cmr

RESULTS = Path(__file__).resolve().parent / "results"


def run(out: Path, quick: bool) -> dict:
    n_train, n_val, epochs = (24, 8, 3) if quick else (160, 40, 40)
    t0 = time.perf_counter()
    data = out / "cub"
    generate_cmr(data, "cub", n_train=n_train, n_val=n_val, progress=False)
    t_data = time.perf_counter() - t0
    run_dir = registry.train("meshrecon", {"preset": "cpu", "data_root": str(data), "epochs": epochs,
                                           "run_dir": str(out / "run"), "resume": True, "progress": False})
    t_train = time.perf_counter() - t0 - t_data
    model, cfg = registry.load_model(run_dir, "best")
    dataset = CUBDataset(data, "testval", image_size=cfg["image_size"])

    def predict(x):
        texture, _, vertices = model.predict(x)
        return texture, vertices

    figures = evaluate_on_truth(predict, dataset, data, "testval", model.template,
                                mean_truth_texture(data, "train", n_train), symmetric=cfg["symmetric"])
    return {"n_train": n_train, "n_val": n_val, "epochs": epochs, "config": {k: cfg[k] for k in (
                "preset", "image_size", "texture_resolution", "render_size", "batch_size", "lr", "lr_decay_every")},
            "best_epoch": int(load_checkpoint(Path(run_dir) / "checkpoints" / "best.pt")["epoch"]), "mean": figures["mean"],
            "seconds": {"data": round(t_data, 1), "train": round(t_train, 1),
                        "total": round(time.perf_counter() - t0, 1)}}


def report(result: dict) -> str:
    m = result["mean"]
    return "\n".join([
        "# Mesh estimation on synthetic birds",
        "",
        f"{result['n_train']} train / {result['n_val']} testval synthetic birds, `cpu` preset "
        f"({result['epochs']} epochs, best epoch {result['best_epoch']}); figures over the testval photographs.",
        "",
        "| figure | model | baseline | gain |",
        "|---|---|---|---|",
        f"| mask IoU under the true pose (vs undeformed template) | {m['iou']:.3f} | {m['iou_template']:.3f} | "
        f"{m['iou'] - m['iou_template']:+.3f} |",
        f"| masked PSNR on novel views, dB (vs mean texture on template) | {m['psnr_novel']:.2f} | "
        f"{m['psnr_baseline']:.2f} | {m['psnr_novel'] - m['psnr_baseline']:+.2f} |",
        "",
        f"Wall time: data {result['seconds']['data']} s, training {result['seconds']['train']} s, "
        f"total {result['seconds']['total']} s.",
        "",
    ])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    result = run(args.out, args.quick)
    text = report(result)
    print(text)
    if not args.quick:
        atomic_io.write_json(RESULTS / "meshrecon_synthetic.json", result)
        atomic_io.write_text(RESULTS / "meshrecon_synthetic.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
