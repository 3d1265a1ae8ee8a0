"""The textured-mesh GAN on synthetic birds (issue #26): does ``lmnet train meshgan`` (CPU preset)
learn class-conditional textures and renders closer to the photographs than its baselines?

Pipeline, each stage resumable: synthetic CUB birds (``lmnet synth --format cub``: 160 train
photographs of 6 classes) → mesh estimation (``lmnet train meshrecon``, the ``cpu`` preset, as
``studies.meshrecon_synthetic``) → pseudo-ground-truth (``lmnet pseudogt``: 64² textures, 512² renders)
→ the GAN (``lmnet train meshgan``, the ``cpu`` preset). Measures:

- **class accuracy**: a small CNN trained on the real pseudo-GT textures (visible texels) to tell the
  classes apart; then ``per_class`` generated textures of each class, masked by the visibility of a
  random real texture of that class, are classified: the share recognised as their conditioning class
  (chance 1/6);
- **proxy FID / KID** (``lmnet eval fid --proxy --untrained``): the EMA generator's Full / Texture /
  Mesh renders, the mean texture on the pseudo-GT meshes, the untrained generator, and the split-half
  real-vs-real floor, all under the same poses.

Writes ``studies/results/meshgan_synthetic.{md,json}`` with wall times.

    python -m studies.meshgan_synthetic --out /tmp/lmnet-meshgan            # the recorded run
    python -m studies.meshgan_synthetic --out /tmp/lmnet-meshgan-q --quick  # smoke run (~1 min)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lmnet import atomic_io, registry
from lmnet.eval.textured_fid import format_fid_table, textured_fid
from lmnet.infer_textured import pseudogt_from_run
from lmnet.methods.meshgan.data import PseudoGTDataset
from lmnet.synthetic import generate_cmr

RESULTS = Path(__file__).resolve().parent / "results"


def _classifier(classes: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(32 * 16, classes))


def class_accuracy(gan_run, ds: PseudoGTDataset, per_class: int, steps: int, seed: int = 0) -> dict:
    """Train the texture classifier on ``ds`` (pseudo-GT texture × alpha), then score generated ones."""
    torch.manual_seed(seed)
    items = [ds[i] for i in range(len(ds))]
    x = torch.stack([it["texture"] * it["texture_alpha"] for it in items])
    labels = torch.stack([it["class_id"][0] for it in items])
    names = sorted(set(labels.tolist()))
    y = torch.tensor([names.index(v) for v in labels.tolist()])
    net = _classifier(len(names))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for step in range(steps):
        idx = torch.randint(len(x), (32,))
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    model, _ = registry.load_model(gan_run)
    rng = np.random.default_rng(seed)
    correct, train_correct = 0, int((net(x).argmax(1) == y).sum())
    for k, name in enumerate(names):
        tex, _, _ = model.sample(per_class, torch.full((per_class, 1), name), None, torch.Generator().manual_seed(k))
        own = [i for i in range(len(items)) if y[i] == k]
        alpha = torch.stack([items[int(rng.choice(own))]["texture_alpha"] for _ in range(per_class)])
        with torch.no_grad():
            correct += int((net(tex * alpha).argmax(1) == k).sum())
    return {"classes": len(names), "accuracy": correct / (per_class * len(names)),
            "train_accuracy": train_correct / len(x), "chance": 1 / len(names)}


def run(out: Path, quick: bool) -> dict:
    n_train, rec_epochs, gan_epochs, per_class, steps = (24, 3, 2, 4, 50) if quick else (160, 40, 30, 50, 400)
    t = {"start": time.perf_counter()}
    data = out / "cub"
    generate_cmr(data, "cub", n_train=n_train, n_val=8 if quick else 40, progress=False)
    recon = registry.train("meshrecon", {"preset": "cpu", "data_root": str(data), "epochs": rec_epochs,
                                         "run_dir": str(out / "meshrecon"), "resume": True, "progress": False})
    t["meshrecon"] = time.perf_counter()
    cache = out / "cache"
    pseudogt_from_run(recon, cache, resolution=64, render_size=512, image_size=128, progress=False)
    t["pseudogt"] = time.perf_counter()
    gan = registry.train("meshgan", {"preset": "cpu", "data_root": str(data), "cache_dir": str(cache),
                                     "epochs": gan_epochs, "run_dir": str(out / "meshgan"), "resume": True,
                                     "progress": False})
    t["meshgan"] = time.perf_counter()
    ds = PseudoGTDataset(cache, data, "cub", 64, "class", mirror=False)
    accuracy = class_accuracy(gan, ds, per_class, steps)
    fid = textured_fid(gan, proxy=True, untrained=True)
    t["measures"] = time.perf_counter()
    seconds = {k: round(t[k] - t[prev], 1) for prev, k in zip(list(t)[:-1], list(t)[1:])}
    return {"images": n_train, "gan_epochs": gan_epochs, "accuracy": accuracy, "fid": fid,
            "fid_table": format_fid_table(fid, "the meshgan run"), "seconds": seconds,
            "total_seconds": round(t["measures"] - t["start"], 1)}


def report(r: dict) -> str:
    a = r["accuracy"]
    return "\n".join([
        "# The textured-mesh GAN on synthetic birds", "",
        f"{r['images']} synthetic birds of {a['classes']} classes; `cpu` presets; GAN {r['gan_epochs']} epochs.", "",
        f"**Class accuracy** of generated textures (a CNN trained on the real pseudo-GT textures, "
        f"{a['train_accuracy']:.2f} on them): **{a['accuracy']:.3f}** (chance {a['chance']:.3f}).", "",
        r["fid_table"].replace("# FID / KID of the meshgan run", "## Proxy FID / KID"),
        f"Wall time per stage (s): {r['seconds']}; total {r['total_seconds']} s.", ""])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    result = run(args.out, args.quick)
    text = report(result)
    print(text)
    if not args.quick:
        atomic_io.write_json(RESULTS / "meshgan_synthetic.json", result)
        atomic_io.write_text(RESULTS / "meshgan_synthetic.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
