"""Evaluate an image run on Pix3D's real photographs (the paper's real-image table).

:func:`evaluate_pix3d` is :func:`lmnet.eval.runner.evaluate` on a :class:`Pix3DSource`: it predicts
one cloud per used photograph of :class:`lmnet.data.pix3d.Pix3DDataset`
(``pix3d.json`` order), evaluates each (photograph, GT) pair with the chosen protocol (lmnet's, or
the official one with one subset stream per category, as the released ``--dataset pix3d`` run)
and writes into the run folder ``eval_pix3d.{csv,md}`` and ``eval_pix3d_pairs.csv`` (official:
``eval_pix3d_official.*`` and the released ``eval_pix3d_official/<category>.csv``). A prediction
that is NaN or infinite stops the evaluation, naming the photograph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from lmnet.data import pix3d
from lmnet.data.pix3d import Pix3DDataset
from lmnet.eval.official import OfficialProtocol
from lmnet.eval.protocol import Protocol
from lmnet.eval.runner import FLOOR_POINTS, MODEL_LABEL, EvalOptions, Source, evaluate, floor_skip_note
from lmnet.registry import load_model

#: the seed of the floor's points when they are sampled on the OBJ (the GT's is lmnet.data.pix3d.GT_SEED)
FLOOR_SEED = 2048

__all__ = ["MODEL_LABEL", "Pix3DSource", "evaluate_pix3d", "pix3d_case_rows"]


class Pix3DSource(Source):
    """The used photographs of :class:`lmnet.data.pix3d.Pix3DDataset` (``pix3d.json`` order), keyed
    by their Pix3D entry; records carry ``category`` (synset), ``pix3d_category``, ``model`` and
    ``gt_source``. No baselines (their training shapes are ShapeNet's)."""

    purpose = "Pix3D evaluation"
    stem = "pix3d"
    title = "Evaluation on Pix3D"

    def __init__(self, root: str | Path, categories=None):
        self.root, self.categories = root, categories
        self.gt_sources: dict[str, int] = {}
        self._own: dict[tuple[str, int], np.ndarray] = {}
        self.skip_note = ""

    def open(self, config: Mapping[str, Any]) -> Pix3DDataset:
        self.ds = Pix3DDataset(self.root, categories=self.categories)
        self.gt_sources, self._own = {}, {}
        missing = [pix3d.entry_file(self.ds.root, e, "model") for e in self.ds.entries
                   if not pix3d.pointcloud_path(self.ds.root, e, FLOOR_POINTS).is_file()
                   and not pix3d.entry_file(self.ds.root, e, "model").is_file()]
        self.skip_note = floor_skip_note(missing, len(self.ds.entries), "photographs' shapes") if missing else ""
        return self.ds

    def intro_notes(self, run: str, n_items: int) -> list[str]:
        return [f"run: {run}; Pix3D root: {self.ds.root}; categories: {', '.join(self.ds.categories)}; "
                f"{n_items} photographs (not truncated / occluded / slightly occluded)",
                "input: RGB x mask, cropped to the bbox, longest side resized to 93 (bilinear), "
                "black-padded to 128x128"]

    def describe(self, batch: Mapping[str, Any]) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        syn = list(batch["category"])
        fields = []
        for s, c, m, src in zip(syn, batch["pix3d_category"], batch["model"], batch["gt_source"]):
            fields.append({"category": s, "pix3d_category": c, "model": m, "gt_source": src})
            self.gt_sources[src] = self.gt_sources.get(src, 0) + 1
        return list(batch["key"]), syn, fields

    floor_label = "floor (own GT, 2048 points: pcl_2048 or sampled on model.obj)"
    floor_note = (f"'{floor_label}': each photograph's own shape as the prediction, 2048 points "
                  "(pix3d_pointclouds pcl_2048 when present, else sampled on model.obj with a seed of its own, "
                  "not the GT's points), evaluated like the model against the same GT: the error of sampling alone")

    def own_clouds(self, batch: Mapping[str, Any], n_points: int) -> list[np.ndarray] | None:
        """Each photograph's shape as ``n_points`` points in 3D-LMNet's frame (cached per model):
        :func:`lmnet.data.pix3d.load_gt` with :data:`FLOOR_SEED`, so a sample on the OBJ is drawn
        independently of the GT's. ``None`` when some shape has neither ``pcl_2048`` nor its OBJ."""
        if self.skip_note:
            return None
        out = []
        for i, model in zip(batch["index"], batch["model"]):
            key = (str(model), int(n_points))
            if key not in self._own:
                self._own[key] = pix3d.load_gt(self.ds.root, self.ds.entries[int(i)], n_points, seed=FLOOR_SEED)[0]
            out.append(self._own[key])
        return out

    def closing_notes(self) -> list[str]:
        return [self.skip_note] * bool(self.skip_note) + ["ground truth: " + ", ".join(f"{v} {k}" for k, v in sorted(self.gt_sources.items()))
                + " (official = pix3d_pointclouds pcl_1024, sampled = 1024 area-weighted points from model.obj); "
                "rotated into 3D-LMNet's frame (x, y, z) -> (-y, -x, -z)"]


def evaluate_pix3d(run_dir: str | Path, root: str | Path, *, categories=None, which: str = "best",
                   protocol: Protocol | OfficialProtocol | None = None, workers: int = 2, batch_size: int = 32,
                   device: str = "cpu", max_items: int = 0, plm_mean: bool = False) -> dict[str, Any]:
    """Evaluate ``run_dir`` on the Pix3D root ``root``; returns what :func:`lmnet.eval.run.evaluate_run`
    returns (:func:`lmnet.eval.runner.evaluate`). ``categories``: some of chair, sofa, table
    (default all three); ``max_items``: the first N used photographs only (0 = all); the other
    keywords: :class:`lmnet.eval.runner.EvalOptions`."""
    options = EvalOptions(which=which, protocol=protocol, workers=workers, batch_size=batch_size, device=device,
                          max_items=max_items, plm_mean=plm_mean)
    return evaluate(Pix3DSource(root, categories), run_dir, options)


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
