"""The images convmesh's FID compares, and the FID a GAN run measures of itself while it trains.

Real images: the masked crops the pseudo-ground-truth stores (``image``, in [−1, 1] with background
0), mapped ``x/2 + 0.5``, so the background is 0.5 grey, as convmesh's. Fake images: one per real
image, rendered at the same size under **that** image's stored pose (``poses_metadata.npz``) and
with its class, the background 0.5 grey (the renderer's 0 mapped the same way).

:class:`FidMonitor` is the training-time measure (``fid_every`` epochs, convmesh's every 20):
the **Full** FID (generated mesh + generated texture) of the EMA generator's samples, noise drawn
from a generator seeded by the run's seed (the same noise every time, and the training's random
streams untouched), against the real images of the first ``fid_images`` training items, whose
statistics are computed once. ``best.pt`` is then the epoch of the lowest FID, as convmesh's
``--which_epoch best``. ``lmnet eval fid`` (:mod:`lmnet.eval.textured_fid`) scores a finished run
with all three variants and its baselines, from the same functions.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset

from lmnet.data import cmr_cache
from lmnet.fid.features import extract_features, feature_extractor
from lmnet.fid.metrics import activation_statistics, frechet_distance
from lmnet.render.template_render import render_template
from lmnet.render.textured import transform_vertices

__all__ = ["FidMonitor", "grey", "fake_images", "real_images", "sample_fakes"]


def grey(rgb: torch.Tensor) -> torch.Tensor:
    """Images in [−1, 1] (background 0) → [0, 1] on 0.5 grey."""
    return (rgb / 2 + 0.5).clamp(0, 1)


def fake_images(template, vertices, texture, poses: dict, size: int) -> torch.Tensor:
    """``(B, 3, size, size)`` in [0, 1]: meshes ``vertices (B, V, 3)`` with ``texture (B, 3, T, T)``
    rendered under ``poses`` (``scale (B, 1)``, ``translation (B, 2)``, ``rotation (B, 4)``) on 0.5 grey."""
    v_img = transform_vertices(vertices.float(), poses["scale"].float(), poses["translation"].float(),
                               poses["rotation"].float())
    return grey(render_template(template, v_img, texture.float(), size)[0])


def real_images(ds, n: int) -> tuple[torch.Tensor, dict]:
    """The real images of the first ``n`` items of a
    :class:`~lmnet.methods.meshgan.data.PseudoGTDataset`: ``(images (n, 3, S, S) in [0, 1], poses)``
    with ``poses`` the items' rows of the cache's ``poses_metadata.npz``."""
    poses = cmr_cache.read_poses_metadata(ds.cache_dir / cmr_cache.POSES_FILE)
    images = torch.stack([grey(cmr_cache.read_pseudogt(ds.files[i])["image"].float()) for i in range(n)])
    rows = [ds.image_indices[i] for i in range(n)]
    return images, {k: torch.as_tensor(poses[k])[rows] for k in ("scale", "translation", "rotation")}


def sample_fakes(template, vertices, texture, pose: dict, size: int, batch_size: int) -> torch.Tensor:
    """:func:`fake_images` of ``n`` meshes, ``batch_size`` at a time → ``(n, 3, size, size)``."""
    n = vertices.shape[0]
    return torch.cat([fake_images(template, vertices[i:i + batch_size], texture[i:i + batch_size],
                                  {k: p[i:i + batch_size] for k, p in pose.items()}, size)
                      for i in range(0, n, batch_size)])


def _underlying(ds: Dataset):
    """The :class:`PseudoGTDataset` under ``ds`` and how many of its first items ``ds`` holds."""
    n = len(ds)
    while isinstance(ds, Subset):
        ds = ds.dataset
    return ds, n


class FidMonitor:
    """The Full FID of a MeshGAN's EMA generator on the training images (module docstring).

    ``train_set``: the run's training set (a PseudoGTDataset or a Subset of its first items);
    ``images``: how many of them (0 = all); ``inception_weights``: an Inception-v3 weights file, or
    None for lmnet's proxy features (``features`` names which)."""

    def __init__(self, train_set: Dataset, *, images: int = 0, inception_weights=None, seed: int = 0,
                 batch_size: int = 16, device: str | torch.device = "cpu"):
        ds, n = _underlying(train_set)
        self.dataset, self.n = ds, (n if not images else min(images, n))
        self.inception_weights, self.seed = inception_weights, int(seed)
        self.batch_size, self.device = int(batch_size), device
        self.extractor = feature_extractor(inception_weights, proxy=inception_weights is None)
        self.features = self.extractor.features
        self._real = None

    def _real_statistics(self):
        if self._real is None:
            images, pose = real_images(self.dataset, self.n)
            acts = extract_features(self.extractor, images, self.batch_size, self.device)
            self._real = (pose, images.shape[-1], activation_statistics(acts))
        return self._real

    @torch.no_grad()
    def score(self, model) -> float:
        """The Full FID of ``model`` (a MeshGAN) against the real images (lower is better)."""
        pose, size, real_stats = self._real_statistics()
        conditional = model.generator_running_avg.conditioning != "none"
        classes = torch.stack(self.dataset.class_ids[:self.n]) if conditional else None
        g = torch.Generator().manual_seed(self.seed)
        texture, _, vertices = model.sample(self.n, classes, None, g)
        fakes = sample_fakes(model.template, vertices.cpu(), texture.cpu(), pose, size, self.batch_size)
        acts = extract_features(self.extractor, fakes, self.batch_size, self.device)
        return frechet_distance(*activation_statistics(acts), *real_stats)
