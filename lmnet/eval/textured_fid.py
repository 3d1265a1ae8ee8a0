"""FID and KID of a textured-mesh GAN run (``lmnet eval fid``; convmesh's evaluation, [docs/fid.md]).

Real and fake images as :mod:`lmnet.methods.meshgan.fid` makes them (the pseudo-GT crops on 0.5
grey; renders under each real image's stored pose and class). Three variants (convmesh's):

- ``full``: generated mesh + generated texture;
- ``texture``: the image's pseudo-GT mesh + generated texture;
- ``mesh``: generated mesh + the image's pseudo-GT texture.

Two rows put the numbers in context: ``mean texture`` (the pseudo-GT mesh carrying the mean
pseudo-GT texture; a generator that learned nothing about textures lands near it) and
``real vs real`` (the two halves of the real images against each other: the floor a finite sample
allows). Every table names its features (``features``): Inception-v3 with the torchvision weights
(convmesh's FID, not comparable with TF-FID), with the TF-FID weights, or lmnet's offline proxy
(comparable only with other proxy numbers).
"""

from __future__ import annotations

import numpy as np
import torch

from lmnet.errors import ConfigError
from lmnet.fid.features import extract_features, feature_extractor
from lmnet.fid.metrics import activation_statistics, frechet_distance, kernel_inception_distance
from lmnet.methods.meshgan.data import PseudoGTDataset
from lmnet.methods.meshgan.fid import real_images, sample_fakes
from lmnet.registry import build_model, load_model, require_kind
from lmnet.runs.folder import load_run

__all__ = ["VARIANTS", "textured_fid", "format_fid_table"]

VARIANTS = ("full", "texture", "mesh")


def _split_half_row(real: np.ndarray, kid_subsets: int) -> dict:
    half = len(real) // 2
    a, b = real[:half], real[half:2 * half]
    return _scores(a, activation_statistics(b), b, kid_subsets)


def _scores(acts: np.ndarray, real_stats, real: np.ndarray, kid_subsets: int) -> dict:
    size = min(len(acts), len(real), 1000)
    kid, kid_std = kernel_inception_distance(acts, real, subsets=kid_subsets, subset_size=size)
    return {"fid": frechet_distance(*activation_statistics(acts), *real_stats), "kid": kid, "kid_std": kid_std,
            "images": int(len(acts))}


@torch.no_grad()
def textured_fid(run, *, inception_weights=None, proxy: bool = False, which: str = "best", limit: int = 0,
                 batch_size: int = 16, seed: int = 0, kid_subsets: int = 50, device: str = "cpu",
                 cache_dir=None, data_root=None, untrained: bool = False) -> dict:
    """The FID / KID rows of the module docstring for the GAN run ``run`` over its pseudo-GT cache
    (the first ``limit`` images, 0 = all). ``untrained``: also score the run's architecture with
    fresh weights (a row that shows what training bought). Returns ``{"features", "images",
    "rows": {name: {"fid", "kid", "kid_std", "images"}}}``."""
    extractor = feature_extractor(inception_weights, proxy)
    model, config = load_model(run, which=which, device=device)
    require_kind(config, "meshgan", run, "the GAN FID")
    ds = PseudoGTDataset(cache_dir or config["cache_dir"], data_root or config["data_root"], config["dataset"],
                         config["texture_resolution"], config["conditional"], mirror=False)
    n = len(ds) if not limit else min(limit, len(ds))
    if n < 4:
        raise ConfigError(f"the FID needs at least 4 images, the cache {ds.cache_dir} gives {n}")
    images, pose = real_images(ds, n)
    items = [ds[i] for i in range(n)]
    size = images.shape[-1]
    real = extract_features(extractor, images, batch_size, device)
    real_stats = activation_statistics(real)
    template = model.template
    generators = {"model": model}
    if untrained:
        torch.manual_seed(seed)
        generators["untrained"] = build_model(load_run(run, which)[0]["model_config"]).to(device)
    rows = {}
    for name, m in generators.items():
        g = torch.Generator().manual_seed(seed)
        classes = None if m.generator_running_avg.conditioning == "none" else torch.stack([it["class_id"] for it in items])
        tex, _, verts = m.sample(n, classes, None, g)
        pgt_mesh = template.vertex_positions(torch.stack([it["mesh"] for it in items]))
        pgt_tex = torch.stack([it["texture"] for it in items])
        choices = {"full": (verts.cpu(), tex.cpu()), "texture": (pgt_mesh, tex.cpu()), "mesh": (verts.cpu(), pgt_tex)}
        for variant in (VARIANTS if name == "model" else ("full",)):
            v, t = choices[variant]
            fakes = sample_fakes(template, v, t, pose, size, batch_size)
            label = variant if name == "model" else f"untrained generator ({variant})"
            rows[label] = _scores(extract_features(extractor, fakes, batch_size, device), real_stats, real, kid_subsets)
    mean_tex = pgt_tex.mean(0, keepdim=True).expand(n, -1, -1, -1)
    fakes = sample_fakes(template, pgt_mesh, mean_tex, pose, size, batch_size)
    rows["mean texture"] = _scores(extract_features(extractor, fakes, batch_size, device), real_stats, real, kid_subsets)
    rows["real vs real (split halves)"] = _split_half_row(real, kid_subsets)
    return {"features": extractor.features, "images": n, "rows": rows}


def format_fid_table(result: dict, run) -> str:
    """A Markdown table of :func:`textured_fid`'s result, labelled with its features."""
    lines = [f"# FID / KID of {run}", "", f"features: `{result['features']}`, {result['images']} images "
             f"(real: pseudo-GT crops on grey; fake: renders under each image's pose and class)", "",
             "| images | FID | KID ×1000 (± std) |", "|---|---:|---:|"]
    for name, r in result["rows"].items():
        lines.append(f"| {name} | {r['fid']:.3f} | {1000 * r['kid']:.3f} ± {1000 * r['kid_std']:.3f} |")
    if result["features"].startswith("proxy"):
        lines += ["", "Proxy features: comparable only with other proxy numbers, never with published FIDs."]
    elif result["features"] == "inception-torchvision":
        lines += ["", "torchvision's ImageNet Inception weights, as convmesh: not comparable with TF-FID."]
    return "\n".join(lines) + "\n"
