"""Re-estimating BatchNorm running statistics for the weights a model has now.

During training a BatchNorm layer normalises with the statistics of the current batch, while its
running mean / variance (what evaluation uses) are an exponential average (``momentum`` 0.1, so the
last ~10–20 steps) of batch statistics taken under *earlier* weights. When the weights move fast
relative to that window, the evaluation-mode network is a different function from the one that was
trained: in mask-only training with unknown poses (studies/results/silhouette.md, 2026-12-06) the
train-mode clouds kept validation IoU ≈ 0.7 while the evaluation-mode clouds blew up to 3–7× their
size (validation Chamfer ×100 12 → 39 in one epoch, IoU 0.60 → 0.49; on 200 cars IoU 0.0008), and
re-estimating the statistics with the same weights gave the train-mode result back (Chamfer 38.6 →
9.4). :func:`recalibrate_batch_norm` does that re-estimation.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn


def batch_norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` that track running statistics."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, batches: Iterable, forward: Callable[[object], object],
                           max_batches: int) -> int:
    """Replace the running statistics of every BatchNorm layer of ``model`` by the plain average, over
    up to ``max_batches`` of ``batches``, of the statistics each batch has under the current weights
    (``forward(batch)`` runs the model on one batch; no gradients, no weight changes). The running
    mean becomes the mean of the batch means and the running variance the mean of the (unbiased)
    batch variances — what PyTorch's ``momentum=None`` cumulative average computes. Returns the
    number of batches used (0: the statistics are left as they were). The model's train / eval mode
    and each layer's momentum are restored."""
    layers = batch_norm_layers(model)
    if not layers or max_batches <= 0:
        return 0
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum) for m in layers]
    was_training = model.training
    model.train()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    used = 0
    try:
        for batch in batches:
            if used >= max_batches:
                break
            forward(batch)
            used += 1
    finally:
        for m, (mean, var, count, momentum) in zip(layers, saved):
            m.momentum = momentum
            if used == 0:
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)
        model.train(was_training)
    return used


__all__ = ["batch_norm_layers", "recalibrate_batch_norm"]
