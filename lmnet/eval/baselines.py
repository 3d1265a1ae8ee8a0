"""Baselines that need no image network, reported as rows of the same tables.

- **Mean shape** (per category, one cloud answers every image of that category):
  * with an autoencoder: decode the mean of the category's training-shape AE latents
    (:func:`mean_latent_shapes`, method label ``"mean shape (decoded mean AE latent)"``);
  * without one: the training shape whose mean Chamfer distance to the other training shapes is
    lowest, the category *medoid* (:func:`medoid_shapes`, label ``"mean shape (medoid training
    shape)"``). The search uses a seeded subset of at most ``max_shapes`` shapes, each subsampled to
    ``n_points`` points, because the exact medoid is O(n²) Chamfers.
  Note: the mean-shape baseline uses the GT category (an oracle on the class, as usual for it).
- **Nearest training shape** (:func:`nearest_training_shape`): retrieval without any oracle — the
  image latent is compared with the AE latents of all training shapes (every category) and the
  training shape with the nearest latent (Euclidean) is the answer; its ground-truth cloud is the
  prediction.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from lmnet.losses.chamfer import chamfer_distance

MEAN_LATENT_LABEL = "mean shape (decoded mean AE latent)"
MEDOID_LABEL = "mean shape (medoid training shape)"
NEAREST_LABEL = "nearest training shape (latent retrieval)"


def mean_latent_shapes(latents_by_category: Mapping[str, np.ndarray | torch.Tensor],
                       decode: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, np.ndarray]:
    """``{synset: (n, D) training AE latents}`` and ``decode((B, D)) -> (B, P, 3)`` →
    ``{synset: (P, 3) float32}``, the decoded mean latent of each category."""
    syns = sorted(latents_by_category)
    if not syns:
        return {}
    means = []
    for s in syns:
        z = torch.as_tensor(np.asarray(latents_by_category[s]), dtype=torch.float32)
        if z.ndim != 2 or z.shape[0] == 0:
            raise ValueError(f"mean_latent_shapes: category {s}: expected (n>=1, D) latents, got {tuple(z.shape)}")
        means.append(z.mean(dim=0))
    with torch.no_grad():
        clouds = decode(torch.stack(means)).detach().cpu().numpy().astype(np.float32)
    return {s: clouds[i] for i, s in enumerate(syns)}


def _pairwise_chamfer(clouds: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """``(n, P, 3)`` → ``(n, n)`` Chamfer (:func:`lmnet.losses.chamfer.chamfer_distance`: mean Euclidean
    NN distance both ways, summed), by its brute-force ``cdist`` backend ``batch`` pairs at a time."""
    n = clouds.shape[0]
    out = torch.zeros(n, n, dtype=clouds.dtype)
    for i in range(n):
        a = clouds[i]
        for j0 in range(0, n, batch):
            b = clouds[j0:j0 + batch]
            out[i, j0:j0 + b.shape[0]] = chamfer_distance(a.expand(b.shape[0], -1, -1), b, reduction="none",
                                                          backend="brute")
    return out


def medoid_index(clouds, *, max_shapes: int = 128, n_points: int = 512, seed: int = 0) -> int:
    """Index (into ``clouds``) of the shape with the lowest mean Chamfer distance to the others.

    ``clouds``: ``(n, P, 3)`` array. With more than ``max_shapes`` shapes, a seeded random subset of
    ``max_shapes`` is searched; each cloud is subsampled (seeded) to ``n_points`` points.
    """
    arr = np.asarray(clouds, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0:
        raise ValueError(f"medoid_index: expected (n>=1, P, 3) clouds, got {arr.shape}")
    rng = np.random.default_rng(seed)
    cand = np.arange(arr.shape[0])
    if arr.shape[0] > max_shapes:
        cand = np.sort(rng.choice(arr.shape[0], size=max_shapes, replace=False))
    sub = arr[cand]
    if sub.shape[1] > n_points:
        sub = sub[:, np.sort(rng.choice(sub.shape[1], size=n_points, replace=False))]
    if len(cand) == 1:
        return int(cand[0])
    d = _pairwise_chamfer(torch.from_numpy(sub))
    score = d.sum(dim=1) / (len(cand) - 1)  # diagonal is 0
    return int(cand[int(torch.argmin(score))])


def medoid_shapes(clouds_by_category: Mapping[str, np.ndarray], **kwargs) -> dict[str, np.ndarray]:
    """``{synset: (n, P, 3) training clouds}`` → ``{synset: (P, 3)}`` medoid cloud per category
    (keyword arguments go to :func:`medoid_index`)."""
    return {s: np.asarray(c, dtype=np.float32)[medoid_index(c, **kwargs)]
            for s, c in sorted(clouds_by_category.items())}


def nearest_training_shape(query_latents, train_latents) -> np.ndarray:
    """``(B, D)`` image latents, ``(M, D)`` training AE latents → ``(B,)`` int64 index of the
    training shape whose latent is nearest (Euclidean; ties → the lowest index)."""
    q = torch.as_tensor(np.asarray(query_latents), dtype=torch.float32)
    t = torch.as_tensor(np.asarray(train_latents), dtype=torch.float32)
    if q.ndim != 2 or t.ndim != 2 or q.shape[1] != t.shape[1] or t.shape[0] == 0:
        raise ValueError(f"nearest_training_shape: expected (B, D) and (M>=1, D), got "
                         f"{tuple(q.shape)} and {tuple(t.shape)}")
    out = []
    for i in range(0, q.shape[0], 1024):
        out.append(torch.cdist(q[i:i + 1024].double(), t.double()).argmin(dim=1))
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, dtype=np.int64)
