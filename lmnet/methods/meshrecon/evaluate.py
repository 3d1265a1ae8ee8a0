"""How well a mesh-estimation model recovers shape and appearance on synthetic data with known truth
(:mod:`lmnet.synthetic.textured_truth`): the figures of the synthetic-birds study.

Per validation photograph ``i`` (its crop as the dataset gives it, never mirrored):

- ``iou``: IoU of the hard mask of the predicted mesh, rendered under the **true** pose (no learned
  offset) at the input size, with the photograph's mask (both > 0.5);
- ``iou_template``: the same for the undeformed template (the baseline the network must beat);
- ``psnr_novel``: masked PSNR over the truth's novel views: the predicted mesh and texture rendered
  under each novel rotation (the true scale and translation) against the truth's render, over the
  pixels of the truth's mask, RGB in [−1, 1] so ``PSNR = 10 log10(2² / MSE)`` in dB, one MSE per
  photograph over all its views;
- ``psnr_baseline``: the same for the undeformed template carrying ``mean_texture`` (the mean of the
  training set's true textures: the mean-texture-on-template baseline).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lmnet.methods.meshrecon.trainer import mean_iou, network_input
from lmnet.render.template_render import render_template
from lmnet.render.textured import transform_vertices
from lmnet.synthetic.textured_truth import read_truth
from lmnet.uvmesh.template import UVSphereTemplate

__all__ = ["masked_psnr", "mean_truth_texture", "evaluate_on_truth"]

Predict = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def masked_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR in dB of ``pred`` against ``target`` (both ``(N, 3, H, W)`` in [−1, 1], peak-to-peak 2)
    over the pixels where ``mask (N, 1, H, W)`` > 0.5; ``inf`` when they agree exactly there."""
    m = (mask > 0.5).to(pred.dtype)
    n = float(m.sum()) * pred.shape[1]
    if n == 0:
        raise ValueError("masked_psnr: the mask is empty")
    mse = float((((pred - target) ** 2) * m).sum()) / n
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)


def mean_truth_texture(truth_root: str | Path, split: str, count: int) -> torch.Tensor:
    """``(1, 3, T, T)`` mean of the true textures of photographs ``0..count-1`` of ``split``."""
    return torch.from_numpy(np.mean([read_truth(truth_root, split, i)["texture"] for i in range(count)], 0))[None]


def _posed(vertices, truth: dict, rotation) -> torch.Tensor:
    scale = torch.from_numpy(truth["scale"])[None]
    translation = torch.from_numpy(truth["translation"])[None]
    return transform_vertices(vertices[None].float(), scale, translation, torch.as_tensor(rotation)[None].float())


def _item_figures(template: UVSphereTemplate, symmetric: bool, vertices, texture, mean_texture, item, truth) -> dict:
    size = item["mask"].shape[-1]
    mask = item["mask"][None]
    fig = {}
    for name, v in (("iou", vertices), ("iou_template", template.tensor("vertices"))):
        _, _, hard = render_template(template, _posed(v, truth, truth["rotation"]), texture[None], size,
                                     symmetric=symmetric)
        fig[name] = float(mean_iou(hard, mask)[0])
    novel = torch.from_numpy(truth["novel_rgba"])
    side = novel.shape[-1]
    for name, v, tex in (("psnr_novel", vertices, texture), ("psnr_baseline", template.tensor("vertices"), mean_texture[0])):
        rgb = torch.cat([render_template(template, _posed(v, truth, q), tex[None], side, symmetric=symmetric)[0]
                         for q in truth["novel_rotation"]])
        fig[name] = masked_psnr(rgb, novel[:, :3], novel[:, 3:])
    return fig


@torch.no_grad()
def evaluate_on_truth(predict: Predict, dataset, truth_root: str | Path, split: str, template: UVSphereTemplate,
                      mean_texture: torch.Tensor, *, symmetric: bool = True, limit: int = 0) -> dict:
    """The figures of the module docstring for the photographs of ``dataset`` (a CMR dataset opened
    without mirroring, ``split`` of the synthetic set under ``truth_root``).

    ``predict(x (1, 4, S, S)) → (texture (1, 3, T, T), vertices (1, V, 3) object space)``.
    Returns ``{"items": [per-photograph dicts], "mean": {figure: mean}}``.
    """
    rows = []
    n = len(dataset) if not limit else min(limit, len(dataset))
    for i in range(n):
        item = dataset[i]
        texture, vertices = predict(network_input({k: item[k][None] for k in ("image", "mask")}))
        truth = read_truth(truth_root, split, i)
        rows.append(_item_figures(template, symmetric, vertices[0].float(), texture[0].float(), mean_texture,
                                  item, truth))
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}
    return {"items": rows, "mean": mean}
