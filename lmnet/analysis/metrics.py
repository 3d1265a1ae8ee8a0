"""Small per-cloud metrics of the analyses. Chamfer here is the training monitor's convention
(symmetric, Euclidean — square-rooted NN distances — sum of the two directional means, ×100, no
ICP), not the paper protocol (:func:`lmnet.eval.run.evaluate_run`)."""

from __future__ import annotations

import numpy as np
import torch

from lmnet.losses.chamfer import chamfer_distance


def chamfer_x100(pred, gt) -> np.ndarray:
    """``pred (B, N, 3)``, ``gt (B, M, 3)`` (or unbatched ``(N, 3)``, ``(M, 3)``) → ``(B,)``
    symmetric Euclidean Chamfer ×100 (:func:`lmnet.losses.chamfer.chamfer_distance`, exact, float32)."""
    p = torch.tensor(np.asarray(pred), dtype=torch.float32)  # a copy: inputs may be read-only views
    g = torch.tensor(np.asarray(gt), dtype=torch.float32)
    if p.dim() == 2:
        p, g = p[None], g[None]
    if p.dim() != 3 or p.shape[0] != g.shape[0] or p.shape[-1] != 3 or g.shape[-1] != 3:
        raise ValueError(f"chamfer_x100: expected (B, N, 3) and (B, M, 3), got {tuple(p.shape)} and {tuple(g.shape)}")
    with torch.no_grad():
        return (100.0 * chamfer_distance(p, g, reduction="none")).numpy()


def sample_spread(samples) -> float:
    """Spread of ``K`` clouds ``(K, N, 3)`` whose points correspond (one decoder, same point index):
    the mean over points of the RMS distance of the K copies of a point to their mean. 0 for
    identical samples; in the units of the clouds (unit bounding-box diagonal)."""
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim != 3 or s.shape[-1] != 3 or s.shape[0] < 1:
        raise ValueError(f"sample_spread: expected (K, N, 3), got {s.shape}")
    dev = s - s.mean(axis=0, keepdims=True)
    return float(np.sqrt((dev ** 2).sum(-1).mean(0)).mean())
