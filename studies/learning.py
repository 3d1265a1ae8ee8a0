"""Proof that the networks learn (issues #3, #27): one command trains the autoencoder, Variant I (L1,
L2) and Variant II (several λ) on the synthetic set and writes the figures to
``studies/results/learning.{json,md}``.

The autoencoder trains lmnet's recipe of the demo, longer (:data:`FULL`): the rendered training
shapes plus a pool of point-cloud-only synthetic shapes (``extra_train_root``,
:mod:`lmnet.synthetic.shape_pool`), an EMD term (``emd_weight``) and a random half of each cloud in
its encoder (``encoder_points``); studies/results/shape_prior.md measured why. The three keys are off
by default in the autoencoder's config, which trains as published (Chamfer only, rendered shapes).

    python -m studies.learning --out /tmp/lmnet-learning            # the recorded run (duration: studies/README.md)
    python -m studies.learning --out /tmp/lmnet-learning-q --quick  # a small smoke run (~8 min on 2 cores)

Every stage is resumable: rerunning the command skips finished runs (``resume=True``) and
re-measures. Nothing here is timed against a target; wall times are printed for information.

What is measured (all Chamfer values ×100, Euclidean = square-rooted NN distances):

1. Autoencoder: the training monitor (symmetric Chamfer, dataset frame, no ICP) on the validation
   shapes after epoch 1 and at the end, and next to it two answers that ignore the input
   (:func:`lmnet.analysis.autoencoder_vs_mean_shape`): one mean training shape for everything (the
   medoid of all training shapes) and the medoid of the input's own category.
2. Variant I (L1, L2) and Variant II (μ): the paper protocol (:func:`lmnet.eval.run.evaluate_run`,
   docs/evaluation.md) on every view of the held-out test shapes, next to the per-category mean-shape baseline
   (decoded mean AE latent, a class oracle) and nearest-training-shape retrieval, the floor (each
   test shape's own ``pointcloud_2048``), the AE ceiling (the autoencoder fed each test shape's own
   cloud: how well the shape prior returns *unseen* shapes) and the gap closed (lmnet.eval.gap:
   (B − M) / (B − F) with B the better baseline, F the floor), the F-scores and EMD / CD.
3. Variant II: the spread of K samples per test image (:func:`lmnet.analysis.sample_spread`),
   near azimuth 180° (within θ, where L_div asks for σ ≈ α) and elsewhere (target ≈ 0), per λ.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from lmnet.runs import read_history
from lmnet.synthetic import generate_dataset
from lmnet.synthetic.shape_pool import generate_shape_pool
from lmnet.notebook.configs import SHAPE_POOL_DIR
from lmnet.methods.autoencoder import train_autoencoder
from lmnet.methods.image import train_image_encoder
from lmnet.analysis import autoencoder_vs_mean_shape, spread_summary, spread_vs_azimuth
from lmnet.eval.run import evaluate_run
from lmnet.eval import baselines as bl
from lmnet.eval.compare import FLOOR_PREFIX
from lmnet.atomic_io import write_text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

CATEGORIES = ["chair", "table", "airplane", "car", "lamp"]
# ae_pool: point-cloud-only shapes per category beside the rendered ones; 2120 shapes = 133 steps
# per epoch at batch 16, so 40 epochs = 5320 steps (the shape-prior study: 2709 steps closed 61 % of
# the demo's gap and were still improving). image_epochs: Variant I (6 passes over every view: 5 left
# the demo's encoder still improving); image_epochs_variant2: each Variant II run (two λ only: an
# image epoch takes about 3 min on 2 cores, and studies/diversity.py measures the diversity loss).
FULL = {"models": 40, "ae_pool": 400, "ae_emd_weight": 1.0, "ae_encoder_points": 1024, "ae_epochs": 40,
        "ae_batch": 16, "ae_lr": 1e-3, "image_epochs": 6, "image_epochs_variant2": 2, "image_batch": 16,
        "image_lr": 5e-4, "lambdas": [0.0, 5.5], "spread_k": 8}
QUICK = {"models": 10, "ae_pool": 10, "ae_emd_weight": 1.0, "ae_encoder_points": 1024, "ae_epochs": 3,
         "ae_batch": 16, "ae_lr": 1e-3, "image_epochs": 1, "image_epochs_variant2": 1, "image_batch": 16,
         "image_lr": 5e-4, "lambdas": [0.0, 5.5], "spread_k": 4}


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _history(run: Path) -> list[dict]:

    return read_history(run)


def data_and_autoencoder(out: Path, categories: list[str], size: dict, log=print) -> tuple[dict, Path]:
    """Generate the synthetic set (``size["models"]`` per category) under ``out/data`` and train (or
    resume) the autoencoder ``out/runs/autoencoder``; returns ``(common training config, AE run)``.
    ``size`` keys ``ae_pool`` (pool shapes per category, under ``out/data/ae_shape_pool``),
    ``ae_emd_weight`` and ``ae_encoder_points`` default to 0: the Chamfer-only recipe on the
    rendered shapes (what studies/diversity.py trains)."""

    data = out / "data"
    t0 = time.perf_counter()
    generate_dataset(data, categories=categories, n_models=size["models"], seed=0, progress=False)
    pool, n_pool = data / SHAPE_POOL_DIR, int(size.get("ae_pool", 0))
    if n_pool > 0:
        generate_shape_pool(pool, categories, n_pool, seed=0)
    log(f"data: {data} ({time.perf_counter() - t0:.0f} s)")
    splits = {s: str(data / "splits" / f"synthetic_{s}_models.json") for s in ("train", "val", "test")}
    common = {"data_root": str(data), "train_split": splits["train"], "val_split": splits["val"],
              "categories": list(categories), "device": "cpu", "seed": 0, "num_workers": 0, "resume": True,
              "progress": False, "lr_schedule": "cosine"}
    ae_run = out / "runs" / "autoencoder"
    t0 = time.perf_counter()
    train_autoencoder({**common, "run_dir": str(ae_run), "epochs": size["ae_epochs"],
                       "batch_size": size["ae_batch"], "lr": size["ae_lr"],
                       "extra_train_root": str(pool) if n_pool > 0 else None,
                       "emd_weight": float(size.get("ae_emd_weight", 0.0)),
                       "encoder_points": int(size.get("ae_encoder_points", 0))})
    log(f"autoencoder: {ae_run} ({time.perf_counter() - t0:.0f} s)")
    return common, ae_run


def train_all(out: Path, size: dict, log=print) -> dict[str, Path]:
    """Generate the data and train every run (skipping finished ones); returns ``{name: run_dir}``."""

    common, ae_run = data_and_autoencoder(out, CATEGORIES, size, log)
    runs = {"autoencoder": ae_run}
    image_common = {**common, "ae_run": str(runs["autoencoder"]), "epochs": size["image_epochs"],
                    "batch_size": size["image_batch"], "lr": size["image_lr"], "views": None,
                    "val_views": [0, 6, 12, 18], "amp": "auto"}
    jobs = [("variant1_l1", {"variant": "l1"}), ("variant1_l2", {"variant": "l2"})]
    jobs += [(f"variant2_lambda{lam:g}", {"variant": "probabilistic", "lambda_div": float(lam),
                                          "epochs": size["image_epochs_variant2"]})
             for lam in size["lambdas"]]
    for name, extra in jobs:
        runs[name] = out / "runs" / name
        t0 = time.perf_counter()
        train_image_encoder({**image_common, "run_dir": str(runs[name]), **extra})
        log(f"{name}: {runs[name]} ({time.perf_counter() - t0:.0f} s)")
    return runs


def measure(runs: dict[str, Path], size: dict, log=print) -> dict:
    """Every figure of the module docstring, as a JSON-able dict."""

    res: dict = {"size": size, "runs": {k: str(v) for k, v in runs.items()}}
    hist = _history(runs["autoencoder"])
    val = [float(h["val_chamfer_x100"]) for h in hist]
    res["autoencoder"] = {"val_chamfer_x100_epoch1": val[0], "val_chamfer_x100_last": val[-1],
                          "val_chamfer_x100_best": min(val), "epochs": len(val),
                          "ratio_last_to_epoch1": val[-1] / val[0],
                          "train_seconds": float(sum(float(h["epoch_time_s"]) for h in hist)),
                          "vs_mean_shape_val": autoencoder_vs_mean_shape(runs["autoencoder"], split="val")}
    log(f"autoencoder: val CD x100 {val[0]:.2f} -> {val[-1]:.2f}")
    res["image"] = {}
    for name, run in runs.items():
        if name == "autoencoder":
            continue
        h = _history(run)
        t0 = time.perf_counter()
        ev = evaluate_run(run, split="test", views="all", workers=2)
        entry = {"val_chamfer_x100_epoch1": float(h[0]["val_chamfer_x100"]),
                 "val_chamfer_x100_last": float(h[-1]["val_chamfer_x100"]), "epochs": len(h),
                 "train_seconds": float(sum(float(x["epoch_time_s"]) for x in h)),
                 "n_pairs": ev["n_pairs"], "tables": ev["tables"], "notes": ev["notes"]}
        log(f"{name}: evaluated {ev['n_pairs']} pairs ({time.perf_counter() - t0:.0f} s)")
        if name.startswith("variant2"):
            sp = spread_vs_azimuth(run, split="test", k=size["spread_k"], max_items=0, views="all")
            entry["spread"] = {"k": size["spread_k"], **spread_summary(sp)}
        res["image"][name] = entry
    return res


def _class_mean(rows: list[dict], key: str = "cd_x100") -> float:
    for r in rows:
        if r.get("category") == "mean":
            return float(r.get(key, math.nan))
    return math.nan


def _floor_label(tables: dict) -> str | None:
    """The table's floor method (its label names the floor's point count: lmnet.eval.compare.FLOOR_PREFIX)."""
    return next((m for m in tables if m.startswith(FLOOR_PREFIX)), None)


def summary(res: dict) -> dict:
    """Issue #27's acceptance figures from the measured tables (class means): per image run its
    CD / EMD gap closed and EMD / CD, and the AE ceiling's gap closed against the same run's baselines."""
    out: dict = {"runs": {}}
    for name, e in res["image"].items():
        t = e["tables"]
        ae = bl.AE_CEILING_LABEL if bl.AE_CEILING_LABEL in t else None
        cd, emd = _class_mean(t["model"]), _class_mean(t["model"], "emd_x100")
        out["runs"][name] = {
            "cd_gap_closed_pct": _class_mean(t["model"], "cd_gap_closed_pct"),
            "emd_gap_closed_pct": _class_mean(t["model"], "emd_gap_closed_pct"),
            "emd_over_cd": emd / cd if cd > 0 else math.nan,
            "ae_cd_gap_closed_pct": _class_mean(t[ae], "cd_gap_closed_pct") if ae else math.nan,
            "ae_emd_gap_closed_pct": _class_mean(t[ae], "emd_gap_closed_pct") if ae else math.nan}
    v1 = [out["runs"][n] for n in ("variant1_l1", "variant1_l2") if n in out["runs"]]
    if v1:
        out["acceptance"] = {
            "autoencoder closes >= 70 % of the CD gap": all(r["ae_cd_gap_closed_pct"] >= 70 for r in v1),
            "Variant I (L1, L2) closes >= 50 % of the CD gap": all(r["cd_gap_closed_pct"] >= 50 for r in v1),
            "Variant I (L1, L2) closes >= 30 % of the EMD gap": all(r["emd_gap_closed_pct"] >= 30 for r in v1),
            "Variant I's EMD / CD <= 1.4": all(r["emd_over_cd"] <= 1.4 for r in v1)}
    return out


def _pct(v: float) -> str:
    return "–" if math.isnan(v) else f"{v:.1f} %"


def to_markdown(res: dict, command: str) -> str:
    ae = res["autoencoder"]
    lines = ["# Does it learn? (`python -m studies.learning`)", "",
             f"Command: `{command}` — commit {res['commit']}, {res['date']}, {res['machine']}; this "
             f"invocation took {res['total_minutes']:.1f} min (runs it found finished or resumed are timed by "
             "their own epoch times below, not by this figure).", "",
             f"Synthetic set: {len(CATEGORIES)} categories × {res['size']['models']} models "
             "(60/20/20 train/val/test per category, seeded), 24 views each. Sizes: "
             + ", ".join(f"{k} {v}" for k, v in res["size"].items()) + ". The autoencoder also trains on "
             f"{res['size']['ae_pool']} point-cloud-only pool shapes per category (never rendered, never a test "
             f"shape), with an EMD term of weight {res['size']['ae_emd_weight']:g} and a random "
             f"{res['size']['ae_encoder_points']} of each cloud's points in its encoder. All Chamfer "
             "values ×100, Euclidean (square-rooted NN distances), sum of the two directional means.", "",
             "## Autoencoder (validation shapes, training monitor: dataset frame, no ICP)", "",
             f"Epoch 1: **{ae['val_chamfer_x100_epoch1']:.2f}** → epoch {ae['epochs']}: "
             f"**{ae['val_chamfer_x100_last']:.2f}** (ratio {ae['ratio_last_to_epoch1']:.2f}; best "
             f"{ae['val_chamfer_x100_best']:.2f}); {ae['train_seconds'] / 60:.1f} min of training.", "",
             "| category | shapes | autoencoder | mean training shape (medoid of all) | medoid of the category (class oracle) |",
             "|---|---:|---:|---:|---:|"]
    for r in ae["vs_mean_shape_val"]:
        lines.append(f"| {r['category']} | {r['shapes']} | {r['autoencoder']:.2f} | {r['mean_shape_all']:.2f} | "
                     f"{r.get('mean_shape_category', math.nan):.2f} |")
    lines += ["", "## Variant I / II on held-out test images (paper protocol, docs/evaluation.md, every view)", "",
              "Prediction subsampled to 1024, per-cloud bounding-box normalisation, ICP onto the GT "
              "`pointcloud_1024`, exact EMD. Class mean = mean of the 5 category means. Gap closed = "
              "(B − M) / (B − F) (docs/evaluation.md#gap-closed): B the better of the two baselines, F the "
              "floor, both on the same pairs. F-score at τ = 1 % and 2 % of the normalised size, ×100.", "",
              "| run | val CD epoch 1 → last | test CD | test EMD | EMD / CD | F@1% | F@2% | CD gap closed | "
              "EMD gap closed | train min |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    summ = summary(res)
    for name, e in res["image"].items():
        t, s = e["tables"], summ["runs"][name]
        lines.append(f"| {name} | {e['val_chamfer_x100_epoch1']:.2f} → {e['val_chamfer_x100_last']:.2f} | "
                     f"**{_class_mean(t['model']):.2f}** | {_class_mean(t['model'], 'emd_x100'):.2f} | "
                     f"{s['emd_over_cd']:.2f} | {_class_mean(t['model'], 'fscore_1pct_x100'):.1f} | "
                     f"{_class_mean(t['model'], 'fscore_2pct_x100'):.1f} | **{_pct(s['cd_gap_closed_pct'])}** | "
                     f"**{_pct(s['emd_gap_closed_pct'])}** | {e['train_seconds'] / 60:.1f} |")
    lines += ["", "The reference rows of each run's table (CD / EMD): the baselines, the floor, and the AE ceiling "
              "with its gap closed against the same run's baselines (how much of the gap the shape prior "
              "closes on unseen test shapes given their own clouds).", "",
              "| run | mean shape (decoded mean AE latent) | nearest training shape (latent retrieval) | floor | "
              "AE ceiling | AE ceiling gap closed CD / EMD |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, e in res["image"].items():
        t, s = e["tables"], summ["runs"][name]

        def both(label):
            return (f"{_class_mean(t[label]):.2f} / {_class_mean(t[label], 'emd_x100'):.2f}"
                    if label and label in t else "–")
        lines.append(f"| {name} | {both(bl.MEAN_LATENT_LABEL)} | {both(bl.NEAREST_LABEL)} | {both(_floor_label(t))} | "
                     f"{both(bl.AE_CEILING_LABEL)} | {_pct(s['ae_cd_gap_closed_pct'])} / "
                     f"{_pct(s['ae_emd_gap_closed_pct'])} |")
    if "acceptance" in summ:
        lines += ["", "Issue #27's lines for this study, as measured here:", ""]
        lines += [f"- {k}: **{'met' if v else 'not met'}**" for k, v in summ["acceptance"].items()]
    first = next(iter(res["image"].values()))
    lines += ["", "Per category (test CD, the first run's table; every run's full table is in learning.json):", "",
              "| category | pairs | " + " | ".join(first["tables"]) + " |",
              "|---|---:|" + "---:|" * len(first["tables"])]
    methods = list(first["tables"])
    for i, r in enumerate(first["tables"]["model"]):
        vals = [first["tables"][m][i]["cd_x100"] for m in methods]
        lines.append(f"| {r['category']} | {r['n_pairs']} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
    lines += ["", "## Variant II: spread of K samples per test image", "",
              "Spread = mean over points of the RMS distance of the K decoded samples of a point to their "
              "mean (`lmnet.analysis.sample_spread`). L_div (docs/models.md#diversity-loss) asks for a mean σ of α = 0.2 at "
              "azimuth 180° (views within θ = 20°) and ≈ 0 elsewhere, so the spread should grow with λ "
              "near 180°.", "",
              "| λ | items near 180° | spread near 180° | spread elsewhere | mean σ near 180° | mean σ elsewhere |",
              "|---:|---:|---:|---:|---:|---:|"]
    for name, e in res["image"].items():
        if "spread" in e:
            s = e["spread"]
            lam = name.replace("variant2_lambda", "")
            lines.append(f"| {lam} | {s['items_near_180']} / {s['items']} | {s['spread_near_180']:.5f} | "
                         f"{s['spread_elsewhere']:.5f} | {s['sigma_near_180']:.4f} | {s['sigma_elsewhere']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.learning", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="work folder (data + runs); reruns resume in it")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test, results not written to "
                   "studies/results unless --write)")
    p.add_argument("--write", action="store_true", help="with --quick: still write studies/results/learning.*")
    a = p.parse_args(argv)
    size = dict(QUICK if a.quick else FULL)
    out = Path(a.out).resolve()
    t0 = time.perf_counter()
    runs = train_all(out, size)
    res = measure(runs, size)
    res.update({"commit": _git_commit(), "date": time.strftime("%Y-%m-%d"), "total_minutes": (time.perf_counter() - t0) / 60,
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch CPU"})
    res["summary"] = summary(res)
    command = "python -m studies.learning --out " + str(a.out) + (" --quick" if a.quick else "")
    md = to_markdown(res, command)
    (out / "learning.json").write_text(json.dumps(res, indent=1, default=str))
    (out / "learning.md").write_text(md)
    if not a.quick or a.write:

        write_text(RESULTS / "learning.json", json.dumps(res, indent=1, default=str))
        write_text(RESULTS / "learning.md", md)
    print(md)
    print(f"total {res['total_minutes']:.1f} min; written to {out}" + ("" if a.quick and not a.write else f" and {RESULTS}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
