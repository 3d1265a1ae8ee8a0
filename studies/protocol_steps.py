"""What each difference between lmnet's protocol and the released one weighs, measured on a run.

    python -m studies.protocol_steps --run RUN [--views 0,6,12,18] [--max-items N] [--pred gt2048]

Predicts the run's test split (the split file's order × the chosen views) — or, with ``--pred
gt2048``, takes each test shape's own ``pointcloud_2048`` (another sample of the same surface: a
near-perfect prediction) — and walks from lmnet's
protocol to the official one, one change at a time, on the same pairs:

A. lmnet: subsample the 2048-point prediction to 1024 (per-pair seeded), normalise each cloud
   (bbox centred, longest side 1), ICP of the prediction onto the GT (≤ 50 it, tol 1e-6), CD and
   exact EMD;
B. + scale the full 2048-point prediction *before* subsampling (same subset as A, float32 scale);
C. + the released subsets (``permutation(2048)[:1024]`` from one stream seeded 1024 per category);
D. + ICP moving the GT onto the prediction (tol 1e-10, ≤ 1000 it), prediction mapped by the exact
   inverse ``(pred − t) @ R``;
E. + the released map ``pred @ R − t`` instead: this is the official protocol's CD and exact EMD;
F. EMD from the released auction schedule instead of the exact one (on E's pairs).

Prints a markdown table (means ×100 over all pairs, the change from the step before, and the
largest per-pair change). Measured figures: docs/results.md#how-the-two-protocols-differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lmnet.data.dataset import ShapeNetDataset
from lmnet.data.inputs import run_background
from lmnet.eval.official_run import released_order
from lmnet.runs.splits import resolve_split_file
from lmnet.registry import load_model
from lmnet.data import layout
from lmnet.eval import official as O
from lmnet.eval import protocol as P
from lmnet.losses.chamfer_numpy import nn_distances


def predictions(run: Path, views, max_items: int = 0, source: str = "model"):
    """``{synset: (preds (P, 2048, 3), gts (P, 1024, 3), keys)}`` in the released order."""
    import torch


    torch.set_num_threads(1)
    model, cfg = load_model(run)
    split = resolve_split_file(cfg, "test")
    ds = ShapeNetDataset(cfg["data_root"], split=split, views=views, n_points=1024, image_cache=False,
                         background=run_background(cfg))
    order = released_order([ds.item_key(i) for i in range(len(ds))], split)
    if max_items:
        order = order[:max_items]
    out: dict[str, list] = {}
    for start in range(0, len(order), 32):
        items = [ds[i] for i in order[start:start + 32]]
        if source == "gt2048":

            preds = np.stack([layout.read_pointcloud(layout.pointcloud_path(cfg["data_root"], it["category"],
                                                                            it["model_id"], 2048), 2048)
                              for it in items])
        else:
            with torch.no_grad():
                preds = model(torch.stack([it["image"] for it in items])).numpy()
        for it, p in zip(items, preds):
            out.setdefault(it["category"], []).append((p, it["points"].numpy(), f"{it['key']}/{it['view']:02d}"))
    return {s: (np.stack([a for a, _, _ in v]), np.stack([b for _, b, _ in v]), [k for _, _, k in v])
            for s, v in out.items()}


def steps(preds, gts, keys) -> dict[str, dict[str, np.ndarray]]:
    """Per-pair ``{"cd", "emd"}`` (raw) of steps A–F for one category's pairs (in order)."""

    res = {k: {"cd": [], "emd": []} for k in "ABCDEF"}
    stream = O.SubsetStream(O.SEED)

    def add(step, p, g):
        d_gp, d_pg = nn_distances(g, p), nn_distances(p, g)
        res[step]["cd"].append(d_gp.mean() + d_pg.mean())
        res[step]["emd"].append(P.emd(p, g))

    for pred, gt, key in zip(preds, gts, keys):
        idx = np.sort(P.pair_rng(0, key).choice(pred.shape[0], size=1024, replace=False))
        g = P.normalize_cloud(gt)
        # A: lmnet
        p = P.normalize_cloud(pred[idx])
        add("A", P.icp(p, g).aligned, g)
        # B: scale the full prediction first (released scale), same subset
        ps, gs = O.scale_released(pred), O.scale_released(gt).astype(np.float64)
        add("B", P.icp(ps[idx].astype(np.float64), gs).aligned, gs)
        # C: the released subset stream
        pc = ps[stream.draw("", pred.shape[0], 1024)].astype(np.float64)
        add("C", P.icp(pc, gs).aligned, gs)
        # D / E: released ICP moving the GT; exact inverse, then the released map
        r, t, _ = O.icp_released(gs, pc)
        add("D", (pc - t) @ r, gs)
        pe = O.apply_released_inverse(pc, r, t)
        add("E", pe, gs)
        res["F"]["cd"].append(res["E"]["cd"][-1])
        res["F"]["emd"].append(O.auction_emd(pe, gs))
    return {k: {m: np.asarray(v) for m, v in d.items()} for k, d in res.items()}


LABELS = {"A": "A. lmnet protocol", "B": "B. + scale before subsampling", "C": "C. + released subsets (seed 1024)",
          "D": "D. + ICP moves the GT (1e-10, 1000 it), exact inverse", "E": "E. + released map pred @ R − t (official)",
          "F": "F. + auction EMD (official EMD column)"}


def table(per_cat: dict[str, dict]) -> str:
    allp = {k: {m: np.concatenate([per_cat[s][k][m] for s in per_cat]) for m in ("cd", "emd")} for k in LABELS}
    n = len(allp["A"]["cd"])
    lines = [f"{n} pairs, {len(per_cat)} categories; means over all pairs ×100", "",
             "| step | CD ×100 | ΔCD | max \\|ΔCD\\| per pair | EMD ×100 | ΔEMD | max \\|ΔEMD\\| per pair |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    prev = None
    for k, label in LABELS.items():
        cd, emd = 100 * allp[k]["cd"], 100 * allp[k]["emd"]
        if prev is None:
            lines.append(f"| {label} | {cd.mean():.3f} | | | {emd.mean():.3f} | | |")
        else:
            dc, de = cd - prev[0], emd - prev[1]
            lines.append(f"| {label} | {cd.mean():.3f} | {dc.mean():+.3f} | {np.abs(dc).max():.3f} | "
                         f"{emd.mean():.3f} | {de.mean():+.3f} | {np.abs(de).max():.3f} |")
        prev = (cd, emd)
    a, f = allp["A"], allp["F"]
    lines += ["", f"official − lmnet: CD {100 * (f['cd'] - a['cd']).mean():+.3f} "
                  f"({100 * ((f['cd'] - a['cd']).mean() / a['cd'].mean()):+.1f} %), EMD (auction vs lmnet exact) "
                  f"{100 * (f['emd'] - a['emd']).mean():+.3f} ({100 * ((f['emd'] - a['emd']).mean() / a['emd'].mean()):+.1f} %)"]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.protocol_steps", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="image run folder")
    p.add_argument("--views", default="0,6,12,18", help="views per test shape (default 0,6,12,18; 'all' = 24)")
    p.add_argument("--max-items", type=int, default=0)
    p.add_argument("--pred", default="model", choices=("model", "gt2048"),
                   help="model (the run's predictions) or gt2048 (each shape's own pointcloud_2048)")
    a = p.parse_args(argv)
    views = "all" if a.views == "all" else [int(v) for v in a.views.split(",")]
    data = predictions(Path(a.run), views, a.max_items, a.pred)
    per_cat = {s: steps(*v) for s, v in sorted(data.items())}
    print(table(per_cat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
