"""Evaluate an image run on Pix3D's real photographs (the paper's real-image table).

:func:`evaluate_pix3d` predicts one cloud per used photograph of :class:`lmnet.data.pix3d.Pix3DDataset`
(``pix3d.json`` order), evaluates each (photograph, GT) pair with the chosen protocol (lmnet's, or
the official one with one subset stream per category, as the released ``--dataset pix3d`` run)
and writes into the run folder ``eval_pix3d.{csv,md}`` and ``eval_pix3d_pairs.csv`` (official:
``eval_pix3d_official.*`` and the released ``eval_pix3d_official/<category>.csv``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lmnet.data import pix3d
from lmnet.data.pix3d import Pix3DDataset
from lmnet.eval import official_run as orun
from lmnet.eval.official import COLUMN_TITLES as OFFICIAL_TITLES
from lmnet.eval.official import METRICS as OFFICIAL_METRICS
from lmnet.eval.official import OfficialProtocol
from lmnet.eval.parallel import PairEvaluator
from lmnet.eval.protocol import Protocol
from lmnet.eval.report import write_report
from lmnet.registry import load_model, require_kind

MODEL_LABEL = "model"


def evaluate_pix3d(run_dir: str | Path, root: str | Path, *, categories=None, which: str = "best",
                   protocol: Protocol | OfficialProtocol | None = None, workers: int = 2, batch_size: int = 32,
                   device: str = "cpu", max_items: int = 0, plm_mean: bool = False) -> dict[str, Any]:
    """Evaluate ``run_dir`` on the Pix3D root ``root``; returns ``{"tables", "paths", "notes",
    "n_pairs", "records", "released_csvs"}`` like :func:`lmnet.eval.run.evaluate_run`.
    ``categories``: some of chair, sofa, table (default all three); ``max_items``: the first N used
    photographs only (0 = all)."""

    proto = protocol or Protocol()
    run_dir = Path(run_dir)
    model, config = load_model(run_dir, which=which, device=device)
    require_kind(config, "image", run_dir, "Pix3D evaluation")
    ds = Pix3DDataset(root, categories=categories)
    n = len(ds) if not max_items else min(len(ds), int(max_items))
    official = isinstance(proto, OfficialProtocol)
    probabilistic = bool(getattr(model, "probabilistic", False))
    notes = [f"run: {run_dir} (checkpoint {which}); Pix3D root: {ds.root}; categories: {', '.join(ds.categories)}; "
             f"{n} photographs (not truncated / occluded / slightly occluded)",
             "input: RGB x mask, cropped to the bbox, longest side resized to 93 (bilinear), black-padded to 128x128",
             orun.prediction_note(probabilistic, plm_mean, getattr(proto, "seed", 0), official)]
    feed = orun.OfficialFeed(proto) if official else None
    gen = torch.Generator().manual_seed(proto.seed) if official else None
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(n)), batch_size=batch_size,
                                         shuffle=False, num_workers=0)
    meta: list[dict[str, Any]] = []
    sources: dict[str, int] = {}
    with PairEvaluator(proto, workers=workers) as ev:
        for batch in loader:
            preds, _ = orun.predict(model, batch["image"].to(device), plm_mean=plm_mean or not official,
                                    generator=gen)
            gts = batch["points"].numpy()
            syn = list(batch["category"])
            if official:
                preds, gts = feed.prepare(MODEL_LABEL, preds, gts, syn)
            ev.submit(preds, gts, list(batch["key"]))
            for s, c, m, src in zip(syn, batch["pix3d_category"], batch["model"], batch["gt_source"]):
                meta.append({"category": s, "pix3d_category": c, "model": m, "gt_source": src})
                sources[src] = sources.get(src, 0) + 1
        records = ev.results()
    notes.append("ground truth: " + ", ".join(f"{v} {k}" for k, v in sorted(sources.items()))
                 + " (official = pix3d_pointclouds pcl_1024, sampled = 1024 area-weighted points from model.obj); "
                 "rotated into 3D-LMNet's frame (x, y, z) -> (-y, -x, -z)")
    recs = [{"key": r["key"], **m, **{k: v for k, v in r.items() if k != "key"}} for r, m in zip(records, meta)]
    by_method = {MODEL_LABEL: recs}
    if official:
        out = write_report(run_dir, "pix3d_official", by_method, protocol_line=proto.describe(), notes=notes,
                           protocol="official", metrics=OFFICIAL_METRICS, titles=OFFICIAL_TITLES,
                           title="Evaluation on Pix3D")
        released = orun.write_released_csvs(run_dir, "eval_pix3d_official", recs)
    else:
        out = write_report(run_dir, "pix3d", by_method, protocol_line=proto.describe(), notes=notes,
                           title="Evaluation on Pix3D")
        released = {}
    return {"tables": out["tables"], "paths": {k: out[k] for k in ("csv", "md", "pairs")}, "notes": notes,
            "n_pairs": n, "records": by_method, "released_csvs": released}


def pix3d_case_rows(run_dir: str | Path, root: str | Path, records, *, which: str = "best", device: str = "cpu",
                    metric: str = "cd") -> list[dict[str, Any]]:
    """Re-predict the photographs of ``records`` (the ``"model"`` records of :func:`evaluate_pix3d`)
    → :func:`lmnet.render.grids.make_grid` rows ``{"input", "gt", "prediction", "category",
    "model_id", "metrics"}``: the network input (cropped, masked, padded), the Pix3D GT in
    3D-LMNet's frame and the deterministic prediction (μ for Variant II)."""

    model, _ = load_model(run_dir, which=which, device=device)
    ds = Pix3DDataset(root)
    by_key = {pix3d.entry_key(e): i for i, e in enumerate(ds.entries)}
    rows = []
    for r in records:
        item = ds[by_key[str(r["key"])]]
        with torch.no_grad():
            pred = model(item["image"][None].to(device))[0].cpu().numpy()
        rows.append({"input": item["image"].numpy(), "gt": item["points"].numpy(), "prediction": pred,
                     "category": item["category"], "model_id": item["key"],
                     "metrics": {"prediction": f"{metric.upper()}×100 {100 * float(r[metric]):.2f}"}})
    return rows
