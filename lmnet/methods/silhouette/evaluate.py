"""The pose student of a silhouette model (``pose="unknown"``) run over a multi-view dataset, for
:func:`lmnet.methods.silhouette.pose_losses.pose_errors`."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from lmnet.errors import ConfigError
from lmnet.methods.silhouette.model import SilhouetteNetwork


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
