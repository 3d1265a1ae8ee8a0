"""How far can masks alone take one shape? Per-shape fits with the silhouette losses (issue #6).

Before asking a network to learn shapes from masks, this measures what the mask losses of
:mod:`lmnet.methods.silhouette` recover when there is no network at all: for a few test models of a
synthetic set, a cloud is fitted to the model's own 24 masks (known cameras, 4 random views per
Adam step, the training's σ schedule) and scored with the paper protocol (Chamfer ×100, Euclidean,
per-cloud normalisation + ICP) against the ground truth, next to the category medoid (the
mean-shape baseline of the evaluation). Two parameterisations:

- ``free``: 2048 free points, started from the decoder's spread-ball init (radius 0.25), lr 0.01;
- ``latent`` (with ``--ae-run``): a 512-d latent through a frozen autoencoder decoder, started at
  the mean training latent, lr 0.05 — a 3D shape prior, as ``init_ae_run`` gives the trainer.

and three losses: ``all`` (soft-silhouette L2 + mask distance + mask coverage, the trainer's
defaults), ``l2`` (soft-silhouette L2 alone) and ``2d`` (the two 2D-Chamfer terms alone).

    python -m studies.silhouette_fit --data /tmp/lmnet-diversity/data --category chair \\
        --ae-run /tmp/lmnet-diversity/runs/autoencoder --models 3

Writes ``studies/results/silhouette_fit.{md,json}``. No timing target.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from lmnet import projection
from lmnet.methods.silhouette.losses import mask_distance_field
from lmnet.methods.silhouette.losses import mask_coverage_loss, mask_distance_loss, project_views
from lmnet.data.categories import to_synsets
from lmnet.data.dataset import ShapeNetDataset
from lmnet.eval.baselines import medoid_index
from lmnet.eval.protocol import Protocol, evaluate_pair
from lmnet.registry import load_model
from lmnet.atomic_io import write_text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LOSSES = ("all", "l2", "2d")


def _model_views(ds, key: str, size: int):
    import torch


    items = [ds[i] for i in range(len(ds)) if ds.item_key(i)[0] == key]
    masks = projection.mask_to_grid_resolution(torch.stack([it["mask"] for it in items]), size)
    cams = {k: torch.stack([it[k] for it in items]).float()[None] for k in ("azimuth", "elevation", "distance_ratio", "fov")}
    return masks, mask_distance_field(masks), cams, items[0]["points"].numpy()


def fit(make_cloud, params, masks, dist, cams, loss: str, steps: int, lr: float, size: int, seed: int = 0,
        checkpoints=(), score=None) -> dict[int, float]:
    """Adam on ``params`` for ``steps`` steps; ``make_cloud()`` → ``(1, N, 3)``. Returns
    ``{step: score(cloud)}`` at the ``checkpoints``."""
    import torch


    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed)
    out = {}
    for s in range(steps):
        sigma = projection.annealed_sigma(s, steps, 3.0, 0.2)
        v = torch.randperm(masks.shape[0], generator=g)[:4]
        c = [cams[k][:, v] for k in ("azimuth", "elevation", "distance_ratio", "fov")]
        pts = make_cloud()
        total = pts.new_zeros(())
        if loss in ("all", "l2"):
            sil = project_views(pts, *c, sigma=sigma, size=size, depth_bins=size)
            total = total + ((sil - masks[v][None]) ** 2).mean()
        if loss in ("all", "2d"):
            total = total + mask_distance_loss(pts, dist[v][None], *c) + mask_coverage_loss(pts, masks[v][None], *c)
        opt.zero_grad()
        total.backward()
        opt.step()
        if s + 1 in checkpoints:
            with torch.no_grad():
                out[s + 1] = score(make_cloud()[0].numpy())
    return out


def main(argv=None) -> int:
    import numpy as np
    import torch


    p = argparse.ArgumentParser(prog="python -m studies.silhouette_fit", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a synthetic data root with splits/synthetic_{train,test}_models.json")
    p.add_argument("--category", default="chair")
    p.add_argument("--ae-run", default=None, help="autoencoder run for the 'latent' fits (skipped without)")
    p.add_argument("--models", type=int, default=3, help="test models fitted")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--size", type=int, default=32, help="mask / grid resolution")
    p.add_argument("--out", default=str(RESULTS), help="folder for silhouette_fit.{md,json}")
    a = p.parse_args(argv)
    root = Path(a.data)
    cats = to_synsets([a.category])
    train = ShapeNetDataset(root, split=root / "splits" / "synthetic_train_models.json", categories=cats, views=[0],
                            n_points=1024, load_images=False)
    test = ShapeNetDataset(root, split=root / "splits" / "synthetic_test_models.json", categories=cats, views="all",
                           n_points=1024, load_images=True)
    train_clouds = np.stack([train[i]["points"].numpy() for i in range(len(train))])
    medoid = train_clouds[medoid_index(train_clouds)]
    ae = None
    if a.ae_run:

        ae, _ = load_model(a.ae_run, which="best")
        with torch.no_grad():
            mean_latent = ae.encode(torch.from_numpy(train_clouds).float()).mean(0, keepdim=True)
    proto = Protocol(emd=False)
    keys = sorted({test.item_key(i)[0] for i in range(len(test))})[: a.models]
    checkpoints = sorted({max(1, a.steps // 6), a.steps // 3, a.steps})
    t0 = time.perf_counter()
    res = {"args": vars(a), "checkpoints": checkpoints, "models": {}}
    for key in keys:
        masks, dist, cams, gt = _model_views(test, key, a.size)
        score = lambda cloud, gt=gt, key=key: 100.0 * evaluate_pair(cloud, gt, proto, key=key)["cd"]
        entry = {"medoid": score(medoid)}
        for loss in LOSSES:
            g = torch.Generator().manual_seed(0)
            d = torch.randn(2048, 3, generator=g)
            r = 0.25 * torch.rand(2048, 1, generator=g) ** (1 / 3)
            pts = (r * d / d.norm(dim=1, keepdim=True)).requires_grad_(True)
            entry[f"free/{loss}"] = fit(lambda: pts[None], [pts], masks, dist, cams, loss, a.steps, 0.01, a.size,
                                        checkpoints=checkpoints, score=score)
            if ae is not None:
                z = mean_latent.clone().requires_grad_(True)
                entry[f"latent/{loss}"] = {0: score(ae.decoder(z)[0].detach().numpy()),
                                           **fit(lambda: ae.decoder(z), [z], masks, dist, cams, loss, a.steps // 3,
                                                 0.05, a.size, checkpoints=[c // 3 for c in checkpoints], score=score)}
        if ae is not None:
            with torch.no_grad():
                entry["ae_reconstruction"] = score(ae(torch.from_numpy(gt).float()[None])[0].numpy())
        res["models"][key] = entry
        print(key, json.dumps(entry), flush=True)
    res["minutes"] = (time.perf_counter() - t0) / 60
    md = to_markdown(res, "python -m studies.silhouette_fit " + " ".join(argv if argv is not None else sys.argv[1:]))
    out = Path(a.out)

    write_text(out / "silhouette_fit.json", json.dumps(res, indent=1))
    write_text(out / "silhouette_fit.md", md)
    print(md)
    return 0


def to_markdown(res: dict, command: str) -> str:
    import numpy as np

    models = list(res["models"].values())
    methods = [m for m in models[0] if isinstance(models[0][m], dict)]
    lines = ["# Per-shape mask fits (`python -m studies.silhouette_fit`)", "",
             f"Command: `{command}` ({res['minutes']:.1f} min). Chamfer ×100 (paper protocol) against each "
             "test model's ground truth, mean over the models fitted; the cloud is fitted to that model's "
             "own 24 masks (known cameras), so this is an upper bound of what the losses can recover, "
             "not a generalisation result. The medoid is the evaluation's mean-shape baseline.", "",
             "| fit | CD ×100 after n Adam steps (n: CD) |", "|---|---|"]
    for m in methods:
        steps = sorted(int(k) for k in models[0][m])
        cells = [f"{s}: {np.mean([e[m][s] if s in e[m] else e[m][str(s)] for e in models]):.2f}" for s in steps]
        lines.append(f"| {m} | " + " · ".join(cells) + " |")
    lines += ["", f"Medoid: {np.mean([e['medoid'] for e in models]):.2f}"
              + (f"; autoencoder reconstruction of the ground truth: "
                 f"{np.mean([e['ae_reconstruction'] for e in models]):.2f}" if "ae_reconstruction" in models[0] else "")
              + f" (mean over {len(models)} models)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
