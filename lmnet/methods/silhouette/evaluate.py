"""The pose student of a silhouette model (``pose="unknown"``) run over a multi-view dataset, for
:func:`lmnet.methods.silhouette.pose_losses.pose_errors` and the DPC-style metrics of
:func:`lmnet.losses.pose.aligned_pose_errors` (:func:`student_poses_of_split`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lmnet.data.categories import to_synsets
from lmnet.data.dataset import ShapeNetDataset
from lmnet.data.inputs import run_background
from lmnet.errors import ConfigError
from lmnet.methods.silhouette.data import MultiViewDataset
from lmnet.methods.silhouette.model import SilhouetteNetwork
from lmnet.runs.splits import resolve_split_file


@torch.no_grad()
def predict_poses(model: SilhouetteNetwork, dataset: Dataset, batch_size: int = 32,
                  device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Student poses of every supervising view of ``dataset`` (items with ``sup_image``) →
    ``(pred (R, 2), gt (R, 2))`` degrees (azimuth, elevation), ``R = len(dataset) · n_views``."""
    if model.pose_net is None:
        raise ConfigError("predict_poses needs a model trained with pose='unknown'")
    model.eval().to(device)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    preds, gts = [], []
    for batch in loader:
        _, student = model.pose_net(batch["sup_image"].to(device).float().flatten(0, 1))
        preds.append(student.cpu().numpy())
        gts.append(torch.stack([batch["sup_azimuth"], batch["sup_elevation"]], -1).flatten(0, 1).numpy())
    return np.concatenate(preds), np.concatenate(gts)


def every_view_dataset(config: dict, split: str = "test", split_file: str | Path | None = None) -> MultiViewDataset:
    """Every (model, view) of a run's ``split`` as a one-view item with its pose image: the student
    sees each view once. ``config``: the run's ``config.json``."""
    base = ShapeNetDataset(config["data_root"], split=resolve_split_file(config, split, split_file),
                           categories=to_synsets(config["categories"]), views="all", n_points=1024,
                           image_cache=config.get("image_cache", True), background=run_background(config))
    return MultiViewDataset(base, n_views=1, input_views=None, pose_images=True,
                            pose_image_size=config["pose_image_size"], mask_size=config["silhouette_size"])


def student_poses_of_split(model: SilhouetteNetwork, config: dict, split: str = "test", *,
                           split_file: str | Path | None = None, device: str | torch.device = "cpu") -> dict:
    """The student's pose of every view of ``split`` (:func:`every_view_dataset`) →
    ``{"synset": (R,) str, "pred": (R, 2), "true": (R, 2)}``, angles (azimuth, elevation) in degrees."""
    ds = every_view_dataset(config, split, split_file)
    pred, true = predict_poses(model, ds, device=device)
    synsets = np.array([ds.models[m].split("/", 1)[0] for m, _ in ds.items])
    return {"synset": synsets, "pred": pred, "true": true}
