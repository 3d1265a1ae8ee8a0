"""Variant II diversity study (issue #3): does the spread of the samples grow with λ, and where?

The paper studies the diversity loss on chairs; so does this script. It trains a chair-only point
autoencoder, then Variant II image encoders with several λ on the same data and seed, and measures
for every (shape, view) of the training and test splits the mean predicted σ and the spread of K
decoded samples (:func:`lmnet.analysis.spread_vs_azimuth`, last checkpoint: the best-by-Chamfer
checkpoint judges μ only), split into views within θ of azimuth 180° (where L_div asks for
σ ≈ α) and the rest (target ≈ 0). Writes ``benchmarks/results/diversity.{md,json}`` and a
spread-vs-azimuth plot ``diversity_spread_vs_azimuth.png``.

    python -m benchmarks.diversity --out /tmp/lmnet-diversity            # the recorded run (2 cores)
    python -m benchmarks.diversity --out /tmp/lmnet-diversity-q --quick  # smoke run (~2 min)

Resumable: rerunning skips finished training runs. No timing target; wall times are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

FULL = {"category": "chair", "models": 40, "ae_epochs": 150, "ae_batch": 16, "ae_lr": 1e-3,
        "image_epochs": 15, "image_batch": 16, "image_lr": 5e-4, "spread_k": 8,
        "runs": {"lambda0": {"lambda_div": 0.0}, "lambda5.5": {"lambda_div": 5.5},
                 "lambda5.5_no_fc_decay": {"lambda_div": 5.5, "weight_decay_fc": 0.0}}}
QUICK = {"category": "chair", "models": 8, "ae_epochs": 4, "ae_batch": 16, "ae_lr": 1e-3,
         "image_epochs": 1, "image_batch": 16, "image_lr": 5e-4, "spread_k": 4,
         "runs": {"lambda0": {"lambda_div": 0.0}, "lambda5.5": {"lambda_div": 5.5}}}


def train_all(out: Path, size: dict, log=print) -> dict[str, Path]:
    """Generate the chair set and train the autoencoder and one Variant II run per λ (skipping
    finished runs); returns ``{name: run_dir}``."""
    from lmnet.train import train_image_encoder

    from benchmarks.learning import data_and_autoencoder

    common, ae_run = data_and_autoencoder(out, [size["category"]], size, log)
    runs = {"autoencoder": ae_run}
    for name, extra in size["runs"].items():
        runs[name] = out / "runs" / name
        t0 = time.perf_counter()
        train_image_encoder({**common, "run_dir": str(runs[name]), "ae_run": str(ae_run),
                             "variant": "probabilistic", **extra,
                             "epochs": size["image_epochs"], "batch_size": size["image_batch"],
                             "lr": size["image_lr"], "views": None, "val_views": [0, 6, 12, 18], "amp": True})
        log(f"{name}: {runs[name]} ({time.perf_counter() - t0:.0f} s)")
    return runs


def measure(runs: dict[str, Path], size: dict, log=print) -> tuple[dict, dict]:
    """``(results, raw)``: per λ and split the :func:`~lmnet.analysis.spread_summary` figures plus
    the training history's last latent / L_div losses; ``raw`` holds the per-item arrays for the plot."""
    from lmnet.analysis import spread_summary, spread_vs_azimuth
    from lmnet.train.runs import read_history

    res: dict = {"size": size, "runs": {k: str(v) for k, v in runs.items()}, "variant2": {}}
    raw: dict = {}
    for name, run in runs.items():
        if name == "autoencoder":
            continue
        h = read_history(run)
        entry = {"config": size["runs"][name], "epochs": len(h), "train_minutes": sum(float(x["epoch_time_s"]) for x in h) / 60,
                 "last": {k: float(v) for k, v in h[-1].items()
                          if k in ("train_latent_loss", "train_div_loss", "val_chamfer_x100")}}
        for split in ("train", "test"):
            sp = spread_vs_azimuth(run, split=split, k=size["spread_k"], max_items=0, views="all", which="last")
            entry[split] = spread_summary(sp)
            raw[(name, split)] = sp
            s = entry[split]
            log(f"{name} {split}: sigma near 180 {s['sigma_near_180']:.4f} elsewhere {s['sigma_elsewhere']:.4f}; "
                f"spread near 180 {s['spread_near_180']:.5f} elsewhere {s['spread_elsewhere']:.5f}")
        res["variant2"][name] = entry
    return res, raw


def plot(raw: dict, path: Path) -> None:
    from lmnet.analysis import plot_spread_vs_azimuth

    fig = plot_spread_vs_azimuth({f"{n} ({s})": r
                                  for (n, s), r in raw.items() if s == "test"})
    fig.savefig(path, dpi=110, bbox_inches="tight")


def to_markdown(res: dict, command: str) -> str:
    size = res["size"]
    lines = ["# Variant II diversity study (`python -m benchmarks.diversity`)", "",
             f"Command: `{command}` — commit {res['commit']}, {res['date']}, {res['machine']}; "
             f"{res['total_minutes']:.1f} min in total.", "",
             f"Synthetic {size['category']}s only (the paper's diversity study is on chairs): {size['models']} "
             "models, 60/20/20 train/val/test, 24 views each. Sizes: "
             + ", ".join(f"{k} {v}" for k, v in size.items()) + ".", "",
             "L_div (SPEC §2) asks for a mean σ of α = 0.2 for a view from behind (azimuth 180°, "
             "Gaussian of width θ = 20°) and ≈ 0 elsewhere; the latent L2 loss pushes σ to 0 everywhere. "
             "σ = mean predicted standard deviation over the 512 latent dimensions; spread = mean over "
             "points of the RMS distance of K decoded samples to their mean (cloud units, unit "
             "bounding-box diagonal). Last checkpoint of each run.", "",
             "| run | λ | split | items near 180° | σ near 180° | σ elsewhere | ratio | spread near 180° | "
             "spread elsewhere | last train latent loss | last train L_div |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, e in res["variant2"].items():
        lam = e["config"].get("lambda_div")
        for split in ("train", "test"):
            s = e[split]
            ratio = s["sigma_near_180"] / s["sigma_elsewhere"] if s["sigma_elsewhere"] else float("nan")
            lines.append(f"| {name} | {lam:g} | {split} | {s['items_near_180']} / {s['items']} | {s['sigma_near_180']:.4f} | "
                         f"{s['sigma_elsewhere']:.4f} | {ratio:.2f} | {s['spread_near_180']:.5f} | "
                         f"{s['spread_elsewhere']:.5f} | {e['last'].get('train_latent_loss', float('nan')):.4f} | "
                         f"{e['last'].get('train_div_loss', float('nan')):.5f} |")
    lines += ["", "![spread vs azimuth](diversity_spread_vs_azimuth.png)"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.diversity", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="work folder (data + runs); reruns resume in it")
    p.add_argument("--quick", action="store_true", help="tiny sizes (results not written to benchmarks/results)")
    p.add_argument("--epochs", type=int, default=None, help="override image_epochs")
    p.add_argument("--runs", default=None, help="comma-separated subset of the runs (default: all of "
                   f"{', '.join(FULL['runs'])})")
    a = p.parse_args(argv)
    size = dict(QUICK if a.quick else FULL)
    if a.epochs:
        size["image_epochs"] = a.epochs
    if a.runs:
        names = [n.strip() for n in a.runs.split(",") if n.strip()]
        unknown = [n for n in names if n not in size["runs"]]
        if unknown:
            p.error(f"--runs: unknown run(s) {unknown}; valid: {sorted(size['runs'])}")
        size["runs"] = {n: size["runs"][n] for n in names}
    out = Path(a.out).resolve()
    t0 = time.perf_counter()
    runs = train_all(out, size)
    res, raw = measure(runs, size)
    from benchmarks.learning import _git_commit

    res.update({"commit": _git_commit(), "date": time.strftime("%Y-%m-%d"),
                "total_minutes": (time.perf_counter() - t0) / 60,
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch CPU"})
    command = "python -m benchmarks.diversity --out " + str(a.out) + (" --quick" if a.quick else "") \
        + (f" --epochs {a.epochs}" if a.epochs else "") + (f" --runs {a.runs}" if a.runs else "")
    md = to_markdown(res, command)
    dest = RESULTS if not a.quick else out
    from lmnet.atomic_io import write_text

    plot(raw, dest / "diversity_spread_vs_azimuth.png")
    write_text(dest / "diversity.json", json.dumps(res, indent=1, default=str))
    write_text(dest / "diversity.md", md)
    print(md)
    print(f"written to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
