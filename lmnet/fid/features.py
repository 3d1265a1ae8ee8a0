"""Running a feature extractor (Inception-v3, the offline proxy) over many images, batch by batch."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from lmnet.errors import ConfigError, DataError
from lmnet.fid.inception import load_inception
from lmnet.fid.proxy_features import ProxyFeatures


def _batches(images: Iterable[torch.Tensor], batch_size: int):
    """Regroup ``images`` (each ``(3, H, W)`` or ``(B, 3, H, W)``) into batches of ``batch_size``
    (the last one smaller)."""
    pending, count = [], 0
    for item in images:
        item = torch.as_tensor(item)
        item = item.unsqueeze(0) if item.ndim == 3 else item
        if item.ndim != 4 or item.shape[1] != 3:
            raise DataError(f"extract_features: expected images (3, H, W) or (B, 3, H, W), got shape {tuple(item.shape)}")
        pending.append(item)
        count += item.shape[0]
        while count >= batch_size:
            joined = torch.cat(pending)
            yield joined[:batch_size]
            pending, count = [joined[batch_size:]], count - batch_size
    if count:
        yield torch.cat(pending)


@torch.no_grad()
def extract_features(extractor: nn.Module, images: Iterable[torch.Tensor], batch_size: int = 50,
                     device: str | torch.device = "cpu",
                     progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Features of every image of ``images`` → ``(N, D)`` float32, in input order.

    ``images``: tensors in [0, 1], each ``(3, H, W)`` or a batch ``(B, 3, H, W)``, all of one size
    within a batch of ``batch_size``; values outside [0, 1] are refused (DataError naming the
    image index), since both Inception-v3 and the proxy map [0, 1] to [−1, 1] themselves.
    ``extractor`` runs in eval mode on ``device``; ``progress(n)`` is called with the number of
    images done after each batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    extractor = extractor.eval().to(device)
    out, done = [], 0
    for batch in _batches(images, batch_size):
        batch = batch.to(device=device, dtype=torch.float32)
        low, high = float(batch.min()), float(batch.max())
        if not (low >= 0.0 and high <= 1.0):  # also refuses NaN
            raise DataError(f"extract_features: images {done}–{done + len(batch) - 1} hold values in "
                            f"[{low:.3g}, {high:.3g}]; expected [0, 1]")
        out.append(extractor(batch).float().cpu().numpy())
        done += len(batch)
        if progress is not None:
            progress(done)
    if not out:
        raise DataError("extract_features: no images")
    return np.concatenate(out)


def feature_extractor(inception_weights=None, proxy: bool = False) -> nn.Module:
    """Inception-v3 loaded from ``inception_weights`` (either published layout,
    :func:`~lmnet.fid.inception.load_inception`), or with ``proxy`` lmnet's offline proxy
    (:class:`~lmnet.fid.proxy_features.ProxyFeatures`); its ``features`` attribute names what the
    numbers use. Exactly one of the two."""
    if proxy == (inception_weights is not None):
        raise ConfigError("give exactly one of --inception-weights FILE (a real FID) and --proxy (offline, "
                          "comparable only with other proxy numbers)")
    return ProxyFeatures() if proxy else load_inception(inception_weights)
