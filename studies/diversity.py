"""Variant II diversity study (issue #3): does the spread of the samples grow with λ, and where?

The paper studies the diversity loss on chairs; so does this script. It trains a chair-only point
autoencoder, then Variant II image encoders with several λ on the same data and seed (joint
training, as published), then extends each of λ = 0, 0.5, 5.5 by ``head_epochs`` epochs that fit
the log σ² head alone on the frozen best trunk without weight decay (``logvar_head_epochs``,
:mod:`lmnet.methods.image.trainer`; the ``+head`` runs), and measures
for every (shape, view) of the training and test splits the mean predicted σ and the spread of K
decoded samples (:func:`lmnet.analysis.spread_vs_azimuth`, last checkpoint: the best-by-Chamfer
checkpoint judges μ only), split into views within θ of azimuth 180° (where L_div asks for
σ ≈ α) and the rest (target ≈ 0). Writes ``studies/results/diversity.{md,json}`` and a
spread-vs-azimuth plot ``diversity_spread_vs_azimuth.png``, and ``diversity_samples.png`` (samples of
the ``+head`` runs for one test chair). ``diagnose`` explains why the joint runs alone do not
show a view-dependent spread.

``--study official`` (issue #14) trains as the official code did: weight decay 0 everywhere and
joint training only, no head phase (``official_*``: the official encoder preset; ``wd0_lambda5.5``:
lmnet's encoder without decay), and writes ``studies/results/diversity_official.*``.

    python -m studies.diversity --out /tmp/lmnet-diversity            # the recorded run (2 cores)
    python -m studies.diversity --out /tmp/lmnet-diversity --study official  # same data and autoencoder
    python -m studies.diversity --out /tmp/lmnet-diversity-q --quick  # smoke run (~2 min)

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
from lmnet.methods.image import train_image_encoder
from lmnet.analysis import spread_summary, spread_vs_azimuth
from lmnet.runs import read_history
from lmnet.data.dataset import ShapeNetDataset
from lmnet.data.inputs import run_background
from lmnet.runs.splits import resolve_split_file
from lmnet.losses.latent import diversity_loss, diversity_target as target
from lmnet.registry import load_model
from lmnet.analysis import sample_spread
from lmnet.camera import wrap_degrees
from lmnet.render.grids import make_grid, save_png
from lmnet.analysis import plot_spread_vs_azimuth
from lmnet.atomic_io import write_text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

FULL = {"category": "chair", "models": 40, "ae_epochs": 150, "ae_batch": 16, "ae_lr": 1e-3,
        "image_epochs": 15, "image_batch": 16, "image_lr": 5e-4, "spread_k": 8,
        "head_epochs": 40, "head_lr": 1e-4,
        "runs": {"lambda0": {"lambda_div": 0.0}, "lambda0.5": {"lambda_div": 0.5}, "lambda5.5": {"lambda_div": 5.5},
                 "lambda5.5_no_fc_decay": {"lambda_div": 5.5, "weight_decay_fc": 0.0},
                 # the same joint runs extended by a log σ² head phase (lmnet.methods.image.trainer), no head decay
                 "lambda0+head": {"from": "lambda0", "lambda_div": 0.0, "head": True},
                 "lambda0.5+head": {"from": "lambda0.5", "lambda_div": 0.5, "head": True},
                 "lambda5.5+head": {"from": "lambda5.5", "lambda_div": 5.5, "head": True}}}
QUICK = {"category": "chair", "models": 8, "ae_epochs": 4, "ae_batch": 16, "ae_lr": 1e-3,
         "image_epochs": 1, "image_batch": 16, "image_lr": 5e-4, "spread_k": 4, "head_epochs": 1, "head_lr": 1e-4,
         "runs": {"lambda0": {"lambda_div": 0.0}, "lambda5.5": {"lambda_div": 5.5},
                  "lambda0+head": {"from": "lambda0", "lambda_div": 0.0, "head": True},
                  "lambda5.5+head": {"from": "lambda5.5", "lambda_div": 5.5, "head": True}}}
# The study as the official code trained (issue #14): no weight decay anywhere, joint training only
# (no log σ² head phase). ``official_*`` use the official image-encoder preset (no BatchNorm, the RGB
# as stored, weight decay 0); ``wd0_lambda5.5`` keeps lmnet's encoder and only drops the decay, which
# separates the effect of the decay from that of the architecture.
# ``official_lr5e-5_*`` also take the official image learning rate (5e-5, lmnet's image default):
# at the study's 5e-4 the official encoder, which has no BatchNorm, collapses to one output for
# every image (the latent loss stays at the variance of the targets).
OFFICIAL_RUNS = {"official_lambda0": {"lambda_div": 0.0, "arch": "official"},
                 "official_lambda0.5": {"lambda_div": 0.5, "arch": "official"},
                 "official_lambda5.5": {"lambda_div": 5.5, "arch": "official"},
                 "wd0_lambda5.5": {"lambda_div": 5.5, "weight_decay_conv": 0.0, "weight_decay_fc": 0.0},
                 "official_lr5e-5_lambda0": {"lambda_div": 0.0, "arch": "official", "lr": 5e-5},
                 "official_lr5e-5_lambda0.5": {"lambda_div": 0.5, "arch": "official", "lr": 5e-5},
                 "official_lr5e-5_lambda5.5": {"lambda_div": 5.5, "arch": "official", "lr": 5e-5}}
STUDIES = {"lmnet": {"full": FULL, "quick": QUICK, "prefix": "diversity"},
           "official": {"full": {**FULL, "runs": OFFICIAL_RUNS},
                        "quick": {**QUICK, "runs": {n: OFFICIAL_RUNS[n] for n in ("official_lambda0", "official_lambda5.5")}},
                        "prefix": "diversity_official"}}


def run_config(spec: dict, size: dict) -> dict:
    """The image-training overrides of one run spec: ``lambda_div`` and other config keys as given;
    ``"head": True`` adds ``size["head_epochs"]`` head-only epochs (lr ``size["head_lr"]``, no head
    weight decay) after the ``image_epochs`` joint ones; ``"from"`` (a run it extends) is not a
    config key."""
    cfg = {k: v for k, v in spec.items() if k not in ("from", "head")}
    epochs = size["image_epochs"]
    if spec.get("head"):
        cfg.update(logvar_head_epochs=size["head_epochs"], logvar_head_lr=size["head_lr"], weight_decay_logvar=0.0)
        epochs += size["head_epochs"]
    return {**cfg, "epochs": epochs}


def train_all(out: Path, size: dict, log=print) -> dict[str, Path]:
    """Generate the chair set and train the autoencoder and one Variant II run per λ (skipping
    finished runs; a run ``"from"`` another starts as a copy of that finished run and resumes it);
    returns ``{name: run_dir}``."""
    import shutil


    from studies.learning import data_and_autoencoder

    common, ae_run = data_and_autoencoder(out, [size["category"]], size, log)
    runs = {"autoencoder": ae_run}
    for name, spec in size["runs"].items():
        runs[name] = out / "runs" / name
        t0 = time.perf_counter()
        if spec.get("from") and not runs[name].exists():
            if spec["from"] not in runs:
                raise ValueError(f"run {name!r} extends {spec['from']!r}, which must come before it in 'runs'")
            shutil.copytree(runs[spec["from"]], runs[name])
        train_image_encoder({**common, "run_dir": str(runs[name]), "ae_run": str(ae_run),
                             "variant": "probabilistic", "batch_size": size["image_batch"],
                             "lr": size["image_lr"], "views": None, "val_views": [0, 6, 12, 18], "amp": "auto",
                             **run_config(spec, size)})  # a run spec's keys (e.g. its own lr) win
        log(f"{name}: {runs[name]} ({time.perf_counter() - t0:.0f} s)")
    return runs


def measure(runs: dict[str, Path], size: dict, log=print) -> tuple[dict, dict]:
    """``(results, raw)``: per λ and split the :func:`~lmnet.analysis.spread_summary` figures plus
    the training history's last latent / L_div losses; ``raw`` holds the per-item arrays for the plot."""

    res: dict = {"size": size, "runs": {k: str(v) for k, v in runs.items()}, "variant2": {},
                 "autoencoder_train_minutes": sum(float(x["epoch_time_s"]) for x in read_history(runs["autoencoder"])) / 60}
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


def _split_dataset(cfg: dict, split: str):
    """Every (shape, view) item, with images and 1024-point clouds, of ``split`` of the run config ``cfg``."""

    # run_background: the run's input convention (composite over its background, or the stored RGB)
    return ShapeNetDataset(Path(cfg["data_root"]), split=resolve_split_file(cfg, split), categories=cfg["categories"],
                           views="all", n_points=1024, image_cache=True, background=run_background(cfg))


def _head_inputs(model, cfg: dict, split: str):
    """The features the logvar head of ``model`` (run config ``cfg``) sees for every (shape, view)
    of ``split`` → ``(features (n, 8192) float32, azimuth (n,) radians)``."""
    import torch

    ds = _split_dataset(cfg, split)
    feats, az = [], []
    hook = model.logvar_head.register_forward_hook(lambda m, inp, out: feats.append(inp[0].detach().float()))
    try:
        for i in range(0, len(ds), 32):
            items = [ds[j] for j in range(i, min(len(ds), i + 32))]
            with torch.no_grad():
                model.encode_image(torch.stack([torch.as_tensor(it["image"]) for it in items]))
            az += [float(it["azimuth"]) for it in items]
    finally:
        hook.remove()
    return torch.cat(feats), torch.deg2rad(torch.tensor(az))


def diagnose(run: Path, lambda_div: float, steps: int = 540, log=print) -> dict:
    """Is the view information there, and can the logvar head use it? On the features the logvar
    head of ``run`` sees (trunk frozen at its last checkpoint):

    - ``probe_corr_test``: correlation, on the test views, of a ridge regression (fit on the train
      views, standardised features, λ_ridge = 100) of the L_div target ``t(azimuth)`` with ``t``;
    - ``refit``: the logvar head alone re-trained from the run's weights for ``steps`` Adam steps
      (lr 5e-4, batch 16, loss ``mean σ² + λ·L_div``, the expected latent-L2 cost of σ plus the
      diversity loss) with the official FC weight decay 1e-3 and with none: test σ near 180° /
      elsewhere and the correlation of σ with ``t``."""
    import copy

    import numpy as np
    import torch


    model, cfg = load_model(run, which="last", device="cpu")
    f_tr, a_tr = _head_inputs(model, cfg, "train")
    f_te, a_te = _head_inputs(model, cfg, "test")

    def corr(x, y):
        return float(np.corrcoef(np.asarray(x, float), np.asarray(y, float))[0, 1])

    m, sd = f_tr.double().mean(0), f_tr.double().std(0) + 1e-6
    xa, xb = (f_tr.double() - m) / sd, (f_te.double() - m) / sd
    y = target(a_tr).double()
    gram = xa @ xa.T
    alpha = torch.linalg.solve(gram + 100.0 * torch.eye(len(gram), dtype=gram.dtype), y - y.mean())
    out = {"probe_corr_test": corr((xb @ xa.T @ alpha).numpy(), target(a_te).numpy()), "refit": {}}
    near = (torch.rad2deg(a_te) - 180.0).abs() <= 20.0

    def sigma_stats(head):
        with torch.no_grad():
            sig = torch.exp(0.5 * head(f_te)).mean(1)
        return {"sigma_near_180": float(sig[near].mean()), "sigma_elsewhere": float(sig[~near].mean()),
                "corr_sigma_target": corr(sig.numpy(), target(a_te).numpy())}

    out["trained_head"] = sigma_stats(model.logvar_head)
    for wd in (1e-3, 0.0):
        torch.manual_seed(0)
        head = copy.deepcopy(model.logvar_head)
        opt = torch.optim.Adam([{"params": [head.weight], "weight_decay": wd},
                                {"params": [head.bias], "weight_decay": 0.0}], lr=5e-4)
        gen = torch.Generator().manual_seed(0)
        for _ in range(steps):
            idx = torch.randint(0, len(f_tr), (16,), generator=gen)
            lv = head(f_tr[idx])
            loss = torch.exp(lv).mean() + lambda_div * diversity_loss(lv, a_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        out["refit"][f"weight_decay {wd:g}"] = sigma_stats(head)
    log(f"diagnosis {run.name}: probe corr {out['probe_corr_test']:.3f}; trained head {out['trained_head']}; "
        f"refit {out['refit']}")
    return out


def samples_figure(runs: dict[str, Path], names: list[str], path: Path, k: int = 4, seed: int = 0) -> dict:
    """One test chair seen from the view nearest azimuth 180° (where L_div asks for σ ≈ α) and the
    view nearest 0°: input, ground truth, μ and ``k`` samples of each run in ``names`` (rows), rendered to
    ``path``. Returns ``{"model": key, "views": {...}, "spread": {run: {view: spread}}}``."""
    import torch


    _, cfg = load_model(runs[names[0]], which="last")
    ds = _split_dataset(cfg, "test")
    first = ds.item_key(0)[0]
    items = [ds[i] for i in range(len(ds)) if ds.item_key(i)[0] == first]
    az = torch.tensor([float(it["azimuth"]) for it in items])
    pick = {"az180": int(wrap_degrees(az - 180.0).abs().argmin()), "az0": int(wrap_degrees(az).abs().argmin())}
    rows, info = [], {"model": first, "views": {n: {"view": int(items[i]["view"]), "azimuth": float(az[i])}
                                                 for n, i in pick.items()}, "spread": {}}
    for name in names:
        model, _ = load_model(runs[name], which="last")
        info["spread"][name] = {}
        for label, i in pick.items():
            img = torch.as_tensor(items[i]["image"])[None]
            gen = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                mu = model(img)[0].numpy()
                smp = model.sample(img, k, generator=gen)[0].numpy()
            sp = float(sample_spread(smp))
            info["spread"][name][label] = sp
            rows.append({"input": items[i]["image"], "gt": items[i]["points"], "prediction": mu, "samples": list(smp),
                         "title": f"{name}, view {int(items[i]['view'])} (azimuth {float(az[i]):.0f}°): spread {sp:.4f}"})
    save_png(path, make_grid(rows, cell=150, max_samples=k))
    return info


def plot(raw: dict, path: Path) -> None:

    fig = plot_spread_vs_azimuth({f"{n} ({s})": r
                                  for (n, s), r in raw.items() if s == "test"})
    fig.savefig(path, dpi=110, bbox_inches="tight")


def to_markdown(res: dict, command: str, prefix: str = "diversity", title: str = "Variant II diversity study") -> str:
    size = res["size"]
    lines = [f"# {title} (`python -m studies.diversity`)", "",
             f"Command: `{command}` — commit {res['commit']}, {res['date']}, {res['machine']}; "
             f"{res['total_minutes']:.1f} min for this invocation (finished runs are reused); training time "
             f"from the run histories: autoencoder {res['autoencoder_train_minutes']:.1f} min, "
             + ", ".join(f"{n} {e['train_minutes']:.1f} min" for n, e in res["variant2"].items()) + ".", "",
             f"Synthetic {size['category']}s only (the paper's diversity study is on chairs): {size['models']} "
             "models, 60/20/20 train/val/test, 24 views each. Sizes: "
             + ", ".join(f"{k} {v}" for k, v in size.items()) + ".", "",
             "L_div ([docs/models.md](../../docs/models.md#diversity-loss)) asks for a mean σ of α = 0.2 for views near azimuth 180° ("
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
    groups: dict[str, list] = {}  # runs that differ only in λ: the head-phase runs, or each joint setting
    for e in res["variant2"].values():
        c = e["config"]
        rest = {k: v for k, v in c.items() if k not in ("lambda_div", "from", "head")}
        label = "Head-phase runs" if c.get("head") else (
            "Joint runs (" + (", ".join(f"{k} {v}" for k, v in sorted(rest.items())) or "lmnet defaults") + ")")
        if c.get("head") or not any(r.get("head") for r in res["size"]["runs"].values()):
            groups.setdefault(label, []).append((c.get("lambda_div", 0.0), e["test"]))
    for label, runs_ in groups.items():
        head = sorted(runs_, key=lambda r: r[0])
        if len(head) < 2:
            continue
        near = [t["spread_near_180"] for _, t in head]
        grows = all(b > a for a, b in zip(near, near[1:]))
        listed = ", ".join(f"λ = {lam:g}: {v:.5f}" for (lam, _), v in zip(head, near))
        lines += ["", f"**{label}, test views, spread near 180°: {listed} — "
                  + ("it grows with λ.**" if grows else "it does not grow with λ.**"),
                  "Over all test views: " + ", ".join(f"λ = {lam:g}: {t['spread_all']:.5f}" for lam, t in head) + ".",
                  "σ near 180° / σ elsewhere (test): "
                  + ", ".join(f"λ = {lam:g}: {t['sigma_near_180'] / t['sigma_elsewhere']:.2f}" for lam, t in head
                              if t["sigma_elsewhere"]) + "."]
    lines += ["", f"![spread vs azimuth]({prefix}_spread_vs_azimuth.png)"]
    if res.get("diagnosis"):
        d = res["diagnosis"]
        lines += ["", f"## Diagnosis ({d['run']}, trunk frozen at its last checkpoint)", "",
                  "Does the trunk carry the view, and can the logvar head use it "
                  "(`studies.diversity.diagnose`)? A ridge probe of the L_div target t(azimuth) on the "
                  "features the logvar head sees, fit on the train views, correlates "
                  f"**{d['probe_corr_test']:.2f}** with t on the test views. The head itself:", "",
                  "| logvar head | σ near 180° (test) | σ elsewhere (test) | corr(σ, t) (test) |",
                  "|---|---:|---:|---:|"]
        rows = {"as trained (jointly with the trunk)": d["trained_head"],
                **{f"refit alone, {d['steps']} steps, {k}": v for k, v in d["refit"].items()}}
        for label, r in rows.items():
            lines.append(f"| {label} | {r['sigma_near_180']:.4f} | {r['sigma_elsewhere']:.4f} | "
                         f"{r['corr_sigma_target']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.diversity", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="work folder (data + runs); reruns resume in it")
    p.add_argument("--quick", action="store_true", help="tiny sizes (results not written to studies/results)")
    p.add_argument("--epochs", type=int, default=None, help="override image_epochs")
    p.add_argument("--study", choices=sorted(STUDIES), default="lmnet",
                   help="lmnet: lmnet's encoder and decay, joint runs and log σ² head phases (diversity.md); "
                   "official: weight decay 0 and joint training only, as the official code trained "
                   "(diversity_official.md)")
    p.add_argument("--runs", default=None, help="comma-separated subset of the study's runs (default: all; "
                   f"lmnet: {', '.join(FULL['runs'])}; official: {', '.join(OFFICIAL_RUNS)})")
    a = p.parse_args(argv)
    study = STUDIES[a.study]
    prefix = study["prefix"]
    size = dict(study["quick"] if a.quick else study["full"])
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
    joint = {n: c for n, c in size["runs"].items() if not c.get("head") and "weight_decay_fc" not in c}
    diag_run = max(reversed(list(joint)), key=lambda n: joint[n].get("lambda_div", 0), default=None)  # the last of the largest λ
    diag_run = diag_run if diag_run and joint[diag_run].get("lambda_div", 0) > 0 else None
    if diag_run:
        lam = float(size["runs"][diag_run]["lambda_div"])
        steps = 540 if not a.quick else 20
        res["diagnosis"] = {"run": diag_run, "lambda_div": lam, "steps": steps,
                            **diagnose(runs[diag_run], lam, steps=steps)}
    from studies.learning import _git_commit

    res.update({"commit": _git_commit(), "date": time.strftime("%Y-%m-%d"),
                "total_minutes": (time.perf_counter() - t0) / 60,
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch CPU"})
    command = "python -m studies.diversity --out " + str(a.out) + (" --quick" if a.quick else "") \
        + (f" --epochs {a.epochs}" if a.epochs else "") + (f" --runs {a.runs}" if a.runs else "") \
        + (f" --study {a.study}" if a.study != "lmnet" else "")
    title = "Variant II diversity study" + (", trained as the official code did" if a.study == "official" else "")
    md = to_markdown(res, command, prefix, title)
    dest = RESULTS if not a.quick else out

    plot(raw, dest / f"{prefix}_spread_vs_azimuth.png")
    head_runs = [n for n, c in size["runs"].items() if c.get("head")]
    shown = head_runs or list(size["runs"])
    res["samples_figure"] = samples_figure(runs, shown, dest / f"{prefix}_samples.png", k=4)
    md += ("\n## Samples for one image\n\nOne test chair from the views nearest azimuth 180° and 0°; input, ground "
           "truth, μ and 4 samples z ~ N(μ, σ²) of each " + ("head-phase " if head_runs else "") + "run (last "
           f"checkpoint); spread as in the table.\n\n![samples]({prefix}_samples.png)\n")
    write_text(dest / f"{prefix}.json", json.dumps(res, indent=1, default=str))
    write_text(dest / f"{prefix}.md", md)
    print(md)
    print(f"written to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
